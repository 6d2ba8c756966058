//! Entry points for the fuzz targets (`fuzz/`) into room logic that only the shard
//! driver reaches: a shard's rooms with two joined participants, and the data channel
//! relay (whose decoder runs on every message a publisher sends).

use std::net::SocketAddr;
use std::time::Instant;

use livekit_protocol as lk;

use super::participant::{ConnId, JoinParams};
use super::rooms::{NodeInfo, RoomDefaults, RoomLimits, Rooms};

/// The shard address the rooms advertise.
pub const SERVER: &str = "10.0.0.2:7882";

/// A shard's rooms (LiveKit's default timeouts, no limits) advertising [`SERVER`].
pub fn rooms() -> Rooms {
    let defaults = RoomDefaults {
        empty_timeout: 300,
        departure_timeout: 20,
        max_participants: 0,
    };
    let mut rooms = Rooms::new(defaults, RoomLimits::default(), NodeInfo::default());
    let server: SocketAddr = SERVER.parse().expect("a socket address");
    rooms.set_local_candidates(vec![server]);
    rooms
}

/// Joining room "r" as `identity`, auto-subscribing, allowed to publish media and data.
pub fn join_params(identity: &str) -> JoinParams {
    JoinParams {
        room: "r".into(),
        identity: identity.into(),
        auto_create: true,
        auto_subscribe: true,
        permission: lk::ParticipantPermission {
            can_subscribe: true,
            can_publish: true,
            can_publish_data: true,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Rooms with "alice" (conn 1) and "bob" (conn 2) joined to room "r".
pub fn two_joined(now: Instant) -> Rooms {
    let mut rooms = rooms();
    let mut out = Vec::new();
    for (conn, identity) in [(1, "alice"), (2, "bob")] {
        rooms
            .join(conn, &join_params(identity), now, 0, &mut out)
            .expect("a fresh room accepts two participants");
    }
    rooms
}

/// A join on `conn` (a v1 one handles its tracks and offer too); a refusal is fine.
pub fn join(rooms: &mut Rooms, conn: ConnId, params: &JoinParams, now: Instant) {
    let mut out = Vec::new();
    let _ = rooms.join(conn, params, now, 0, &mut out);
}

/// One message on `from`'s data channel `label`, as the media plane hands it over.
pub fn relay_data(rooms: &mut Rooms, from: ConnId, label: &str, data: &[u8]) {
    let mut touched = Vec::new();
    rooms.relay_data(from, label, data, &mut touched);
}
