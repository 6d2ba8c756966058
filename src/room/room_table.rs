//! A shard's rooms in dense slots, found by name through one map: the media path
//! reaches a participant from its connection id through two slot indices (see
//! `Rooms::place_of`), without hashing a room name or searching an identity per
//! datagram. Everything else keeps the name-keyed API a `HashMap` gave.

use super::keyed_slots::{KeySlot, KeyedSlots};
use super::one_room::Room;

/// A shard's rooms by name.
pub(super) type RoomTable = KeyedSlots<Room>;
/// Index of a room's slot; stable while the room lives, reused after it closes.
pub(super) type RoomSlot = KeySlot;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use livekit_protocol as lk;

    use super::super::fuzzing::{join_params, rooms};
    use super::super::participant::JoinParams;
    use super::super::rooms::Rooms;

    fn params(room: &str, identity: &str) -> JoinParams {
        JoinParams {
            room: room.into(),
            ..join_params(identity)
        }
    }

    fn identity(rooms: &mut Rooms, conn: u64) -> Option<String> {
        rooms
            .participant_by_conn(conn)
            .map(|p| p.info.identity.clone())
    }

    #[test]
    fn a_connection_finds_its_participant_through_slots_that_others_reuse() {
        let t0 = crate::clock::now().mono;
        let mut rooms = rooms();
        let mut out = Vec::new();
        for (conn, room, who) in [(1, "r", "alice"), (2, "r", "bob"), (4, "s", "dave")] {
            rooms
                .join(conn, &params(room, who), t0, 0, &mut out)
                .unwrap();
        }
        let (alice, bob, dave) = (
            rooms.place_of(1).unwrap(),
            rooms.place_of(2).unwrap(),
            rooms.place_of(4).unwrap(),
        );
        assert_eq!(alice.0, bob.0, "one room");
        assert_ne!(alice.1, bob.1);
        assert_ne!(alice.0, dave.0);

        // alice leaves and carol takes her slot: alice's cached place no longer holds.
        let leave = lk::SignalRequest {
            message: Some(lk::signal_request::Message::Leave(
                lk::LeaveRequest::default(),
            )),
        };
        rooms.signal(1, leave, t0, &mut out);
        rooms
            .join(3, &params("r", "carol"), t0, 0, &mut out)
            .unwrap();
        assert_eq!(rooms.place_of(3), Some(alice), "the slot is reused");
        assert_eq!(identity(&mut rooms, 1), None);
        assert_eq!(identity(&mut rooms, 3).as_deref(), Some("carol"));
        assert_eq!(identity(&mut rooms, 2).as_deref(), Some("bob"));

        // Room s closes and room t takes its slot: dave is found nowhere.
        rooms.disconnect(4, t0, &mut out);
        assert_eq!(rooms.expire(t0 + Duration::from_secs(20)), ["s"]);
        rooms
            .join(5, &params("t", "erin"), t0, 0, &mut out)
            .unwrap();
        assert_eq!(rooms.place_of(5).map(|p| p.0), Some(dave.0));
        assert_eq!(identity(&mut rooms, 4), None);
        assert_eq!(identity(&mut rooms, 5).as_deref(), Some("erin"));
        assert!(rooms.rooms.contains_key("t") && !rooms.rooms.contains_key("s"));
    }
}
