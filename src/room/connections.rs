//! Which room and identity each signal connection of a shard belongs to, and where
//! its participant was last found (room slot, member slot). The media path reaches a
//! participant from a connection id through those slots; the place is a hint checked
//! against the participant's connection id on every use (a slot is reused after its
//! participant or room goes), and found again by name only when it no longer holds.

use std::collections::HashMap;

use super::members::Slot;
use super::participant::{ConnId, Participant};
use super::room_table::{RoomSlot, RoomTable};

/// A participant's place: its room's slot and its own slot in that room.
pub type Place = (RoomSlot, Slot);

#[derive(Debug, Default)]
pub struct Connections {
    names: HashMap<ConnId, (String, String)>,
    places: HashMap<ConnId, Place>,
}

impl Connections {
    /// `conn` is participant `identity` of `room` from now on.
    pub fn bind(&mut self, conn: ConnId, room: String, identity: String) {
        self.places.remove(&conn);
        self.names.insert(conn, (room, identity));
    }

    /// Forgets `conn`, returning its room and identity.
    pub fn forget(&mut self, conn: ConnId) -> Option<(String, String)> {
        self.places.remove(&conn);
        self.names.remove(&conn)
    }

    /// The room and identity of `conn`.
    pub fn names(&self, conn: ConnId) -> Option<(&str, &str)> {
        self.names
            .get(&conn)
            .map(|(room, identity)| (room.as_str(), identity.as_str()))
    }

    /// The room of `conn`, owned: for callers that go on to change the rooms.
    pub fn room(&self, conn: ConnId) -> Option<String> {
        self.names.get(&conn).map(|(room, _)| room.clone())
    }

    /// The room and identity of `conn`, owned.
    pub fn owned_names(&self, conn: ConnId) -> Option<(String, String)> {
        self.names.get(&conn).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// `conn`'s place, remembered for next time when it had to be found by name.
    pub fn place(&mut self, rooms: &RoomTable, conn: ConnId) -> Option<Place> {
        let (place, found) = self.locate(rooms, conn)?;
        if found {
            self.places.insert(conn, place);
        }
        Some(place)
    }

    /// `conn`'s place: the remembered one while it still holds, else found by room name
    /// and identity (then `true`: worth remembering).
    fn locate(&self, rooms: &RoomTable, conn: ConnId) -> Option<(Place, bool)> {
        if let Some(&place) = self.places.get(&conn) {
            if holds(rooms, place, conn) {
                return Some((place, false));
            }
        }
        let (room, identity) = self.names.get(&conn)?;
        let room_slot = rooms.slot_of(room)?;
        let slot = rooms.at(room_slot)?.participants.slot_of(identity)?;
        Some(((room_slot, slot), true))
    }

    /// `conn`'s participant, through its place where that still holds.
    pub fn participant<'a>(&self, rooms: &'a RoomTable, conn: ConnId) -> Option<&'a Participant> {
        let ((room, slot), _) = self.locate(rooms, conn)?;
        rooms.at(room)?.participants.at(slot)
    }
}

/// Whether the participant at `place` is the one of `conn`.
fn holds(rooms: &RoomTable, (room, slot): Place, conn: ConnId) -> bool {
    rooms
        .at(room)
        .and_then(|r| r.participants.at(slot))
        .is_some_and(|p| p.conn == conn)
}
