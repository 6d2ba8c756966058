//! What the control thread and a shard say to each other. Both directions travel over
//! bounded glommio `shared_channel`s, which wake the receiving executor.

use crate::rtc::{RoomError, RoomOp, RoomReply};

#[derive(Debug)]
pub enum ToShard {
    /// Apply a room operation and answer with [`FromShard::Reply`] carrying `req_id`.
    Room { req_id: u64, op: RoomOp },
    /// Stop the worker loop.
    Shutdown,
}

#[derive(Debug)]
pub enum FromShard {
    Reply {
        req_id: u64,
        result: Box<Result<RoomReply, RoomError>>,
    },
    /// A room closed on its own (empty or departure timeout): drop it from the directory.
    RoomClosed { shard: usize, name: String },
    /// Sent every second; its absence tells the control thread a shard is stuck.
    Stats(ShardStats),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardStats {
    pub shard: usize,
    pub rooms: usize,
    pub participants: usize,
    pub tracks: usize,
    pub bytes_per_sec: u64,
}
