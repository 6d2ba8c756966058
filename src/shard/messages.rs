//! What the control thread and a shard say to each other. Both directions travel over
//! bounded tokio `mpsc` channels: a send wakes the receiving task on either side (a
//! parked shard runtime takes a wake from another thread through its eventfd).

use livekit_protocol as lk;

use super::latency::LatencyHistogram;
use crate::room::spread::{Seed, SpreadMsg, SpreadOut};
use crate::room::{ConnId, Counters, Outbound, RoomError, RoomEvent, RoomOp, RoomReply};

#[derive(Debug)]
pub enum ToShard {
    /// Apply a room operation and answer with [`FromShard::Reply`] carrying `req_id`.
    Room { req_id: u64, op: RoomOp },
    /// A request from a participant's signal connection.
    Signal {
        conn: ConnId,
        request: Box<lk::SignalRequest>,
    },
    /// The signal connection closed: its participant leaves.
    Disconnect { conn: ConnId },
    /// The signal connection dropped without a leave: its participant may resume.
    SignalLost { conn: ConnId },
    /// The shards hosting a room changed (`room::spread`): `peers` are the others,
    /// `home` says whether this shard is the room's home; `seed` opens a copy here.
    Peers {
        room: String,
        peers: Vec<usize>,
        home: bool,
        seed: Option<Box<Seed>>,
    },
    /// News from another shard hosting the room.
    Spread {
        room: String,
        from: usize,
        msg: SpreadMsg,
    },
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
    /// A message for one participant's signal connection.
    Out(Outbound),
    /// Something happened in a room (webhooks).
    Event(Box<RoomEvent>),
    /// News for the other shards hosting a room.
    Spread { shard: usize, out: Box<SpreadOut> },
    /// Sent every second; its absence tells the control thread a shard is stuck.
    Stats(Box<ShardStats>),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardStats {
    pub shard: usize,
    pub rooms: usize,
    pub participants: usize,
    pub tracks: usize,
    pub subscribed: usize,
    pub bytes_per_sec: u64,
    pub counters: Counters,
    /// Microseconds the shard spent in turns rather than waiting (see `shard::busy`).
    pub busy_us: u64,
    /// From a datagram's receipt to the flush of the packets it had forwarded.
    pub forward_latency: LatencyHistogram,
    /// Datagrams the kernel dropped on this shard's sockets (receive buffer full):
    /// media the shard could not keep up with.
    pub udp_receive_drops: u64,
    /// ICE/TCP connections closed for garbage, oversized frames or silence, or refused
    /// at the connection cap; and packets for a gone or backed-up TCP connection.
    pub tcp_refused: u64,
    pub tcp_dropped: u64,
    /// Packets relayed to other shards for spread rooms, and those dropped because
    /// the receiving shard's relay queue was full.
    pub relayed: u64,
    pub relay_dropped: u64,
}
