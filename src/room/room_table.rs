//! A shard's rooms in dense slots, found by name through one map: the media path
//! reaches a participant from its connection id through two slot indices (see
//! `Rooms::place_of`), without hashing a room name or searching an identity per
//! datagram. Everything else keeps the name-keyed API a `HashMap` gave.

use std::collections::HashMap;

use super::rooms::RoomState;

/// Index of a room's slot; stable while the room lives, reused after it closes.
pub(super) type RoomSlot = usize;

#[derive(Default)]
pub(super) struct RoomTable {
    slots: Vec<Option<(String, RoomState)>>,
    free: Vec<RoomSlot>,
    by_name: HashMap<String, RoomSlot>,
}

impl RoomTable {
    pub(super) fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub(super) fn contains_key(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    pub(super) fn slot_of(&self, name: &str) -> Option<RoomSlot> {
        self.by_name.get(name).copied()
    }

    pub(super) fn get(&self, name: &str) -> Option<&RoomState> {
        self.at(self.slot_of(name)?)
    }

    pub(super) fn get_mut(&mut self, name: &str) -> Option<&mut RoomState> {
        self.at_mut(self.slot_of(name)?)
    }

    pub(super) fn at(&self, slot: RoomSlot) -> Option<&RoomState> {
        self.slots.get(slot)?.as_ref().map(|(_, r)| r)
    }

    pub(super) fn at_mut(&mut self, slot: RoomSlot) -> Option<&mut RoomState> {
        self.slots.get_mut(slot)?.as_mut().map(|(_, r)| r)
    }

    /// Adds (or replaces) the room with this name; returns the one replaced.
    pub(super) fn insert(&mut self, name: String, room: RoomState) -> Option<RoomState> {
        if let Some(&slot) = self.by_name.get(&name) {
            let old = self.slots[slot].replace((name, room));
            return old.map(|(_, r)| r);
        }
        let entry = Some((name.clone(), room));
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = entry;
                slot
            }
            None => {
                self.slots.push(entry);
                self.slots.len() - 1
            }
        };
        self.by_name.insert(name, slot);
        None
    }

    pub(super) fn remove(&mut self, name: &str) -> Option<RoomState> {
        let slot = self.by_name.remove(name)?;
        self.free.push(slot);
        self.slots.get_mut(slot)?.take().map(|(_, r)| r)
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &RoomState> {
        self.slots.iter().flatten().map(|(_, r)| r)
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut RoomState> {
        self.slots.iter_mut().flatten().map(|(_, r)| r)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&String, &RoomState)> {
        self.slots.iter().flatten().map(|(n, r)| (n, r))
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut RoomState)> {
        self.slots.iter_mut().flatten().map(|(n, r)| (&*n, r))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use livekit_protocol as lk;

    use super::super::participant::JoinParams;
    use super::super::rooms::{NodeInfo, RoomDefaults, RoomLimits, Rooms};

    fn params(room: &str, identity: &str) -> JoinParams {
        JoinParams {
            room: room.into(),
            identity: identity.into(),
            auto_create: true,
            permission: lk::ParticipantPermission {
                can_subscribe: true,
                can_publish: true,
                ..Default::default()
            },
            ..Default::default()
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
        let defaults = RoomDefaults {
            empty_timeout: 300,
            departure_timeout: 20,
            max_participants: 0,
        };
        let mut rooms = Rooms::new(defaults, RoomLimits::default(), NodeInfo::default());
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
