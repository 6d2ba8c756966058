//! A room's participants: stored in dense slots, found by identity, and for each
//! published track the slots of the participants subscribed to it. Forwarding walks
//! that per-track list and nothing else: a packet costs nothing for the room's
//! participants who do not subscribe to its track, and no String is hashed or
//! compared per downtrack to find the subscriber.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::participant::Participant;

/// A participant's place in its room's slots, stable while it stays.
pub type Slot = usize;

use super::keyed_slots::KeySlot as DownSlot;

#[derive(Default)]
pub struct Members {
    slots: Vec<Option<Participant>>,
    free: Vec<Slot>,
    by_identity: BTreeMap<String, Slot>,
    /// Track sid → the slots whose participant has a downtrack of it. Built when a
    /// track's first packet after a change needs it; dropped when a downtrack of the
    /// track is added (`subscribed`) or a participant comes or goes. A slot whose
    /// participant dropped the downtrack since is skipped by the walk, so removals
    /// need not touch it.
    fanout: HashMap<Arc<str>, Vec<(Slot, DownSlot)>>,
}

impl Members {
    pub fn len(&self) -> usize {
        self.by_identity.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_identity.is_empty()
    }

    pub fn get(&self, identity: &str) -> Option<&Participant> {
        self.at(self.slot_of(identity)?)
    }

    pub fn get_mut(&mut self, identity: &str) -> Option<&mut Participant> {
        self.at_mut(self.slot_of(identity)?)
    }

    /// The slot of a participant: stable while it stays (a rejoin under the same
    /// identity keeps it), reused after it leaves.
    pub fn slot_of(&self, identity: &str) -> Option<Slot> {
        self.by_identity.get(identity).copied()
    }

    pub fn at(&self, slot: Slot) -> Option<&Participant> {
        self.slots.get(slot)?.as_ref()
    }

    pub fn at_mut(&mut self, slot: Slot) -> Option<&mut Participant> {
        self.slots.get_mut(slot)?.as_mut()
    }

    /// Adds (or replaces) the participant with this identity.
    pub fn insert(&mut self, identity: String, participant: Participant) -> Option<Participant> {
        self.fanout.clear();
        if let Some(&slot) = self.by_identity.get(&identity) {
            return self.slots[slot].replace(participant);
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(participant);
                slot
            }
            None => {
                self.slots.push(Some(participant));
                self.slots.len() - 1
            }
        };
        self.by_identity.insert(identity, slot);
        None
    }

    pub fn remove(&mut self, identity: &str) -> Option<Participant> {
        let slot = self.by_identity.remove(identity)?;
        self.fanout.clear();
        self.free.push(slot);
        self.slots.get_mut(slot)?.take()
    }

    /// In identity order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Participant)> {
        self.by_identity
            .iter()
            .filter_map(|(identity, &slot)| Some((identity, self.slots.get(slot)?.as_ref()?)))
    }

    /// In identity order.
    pub fn values(&self) -> impl Iterator<Item = &Participant> {
        self.iter().map(|(_, p)| p)
    }

    /// With their slots, in identity order.
    pub fn slots(&self) -> impl Iterator<Item = (Slot, &Participant)> {
        (self.by_identity.values())
            .filter_map(|&slot| Some((slot, self.slots.get(slot)?.as_ref()?)))
    }

    /// With their slots, in slot order.
    pub fn slots_mut(&mut self) -> impl Iterator<Item = (Slot, &mut Participant)> {
        (self.slots.iter_mut().enumerate()).filter_map(|(slot, p)| Some((slot, p.as_mut()?)))
    }

    /// In slot order (the order they came in, reusing the places of those who left).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Participant> {
        self.slots_mut().map(|(_, p)| p)
    }

    /// A downtrack of `track_sid` was added to some participant: its list is rebuilt
    /// at the track's next packet.
    pub fn subscribed(&mut self, track_sid: &str) {
        self.fanout.remove(track_sid);
    }

    /// The slots subscribed to `track_sid` (see `fanout`), each with its downtrack's
    /// slot, and the slots to reach them through.
    pub fn fan_out(
        &mut self,
        track_sid: &Arc<str>,
    ) -> (&[(Slot, DownSlot)], &mut [Option<Participant>]) {
        if !self.fanout.contains_key(&**track_sid) {
            let list = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(slot, p)| {
                    let down = p.as_ref()?.media.downtracks.slot_of(track_sid)?;
                    Some((slot, down))
                })
                .collect();
            self.fanout.insert(track_sid.clone(), list);
        }
        let list = self.fanout.get(&**track_sid).map_or(&[][..], Vec::as_slice);
        (list, &mut self.slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::MediaKind;
    use crate::sfu::downtrack::DownTrack;

    fn member(conn: u64) -> Participant {
        Participant {
            info: Default::default(),
            conn,
            auto_subscribe: true,
            adaptive_stream: false,
            media: Default::default(),
            departs_at: None,
            last_reliable_seq: 0,
            mirrored: None,
        }
    }

    fn subscribe(m: &mut Members, identity: &str, track: &str) {
        let down = DownTrack::new(MediaKind::Audio, Default::default(), None);
        let p = m.get_mut(identity).expect("member");
        p.media.downtracks.insert(track.to_string(), down);
        m.subscribed(track);
    }

    /// The conns on the list of `track` (the walk also skips a slot whose
    /// participant dropped the downtrack since; no list here has one).
    fn reached(m: &mut Members, track: &str) -> Vec<u64> {
        let track: Arc<str> = track.into();
        let (list, slots) = m.fan_out(&track);
        let mut conns: Vec<u64> = list
            .iter()
            .filter_map(|&(s, _)| slots[s].as_ref())
            .map(|p| p.conn)
            .collect();
        conns.sort_unstable();
        conns
    }

    #[test]
    fn a_track_reaches_its_subscribers_only_through_joins_and_leaves() {
        let mut m = Members::default();
        for (i, who) in ["carol", "alice", "bob"].iter().enumerate() {
            assert!(m.insert(who.to_string(), member(i as u64)).is_none());
        }
        let order: Vec<&str> = m.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(order, ["alice", "bob", "carol"], "identity order");
        subscribe(&mut m, "alice", "TR_a");
        assert_eq!(reached(&mut m, "TR_a"), [1]);
        subscribe(&mut m, "bob", "TR_a");
        assert_eq!(
            reached(&mut m, "TR_a"),
            [1, 2],
            "a new downtrack rebuilds the list"
        );
        assert!(reached(&mut m, "TR_none").is_empty());

        // Alice leaves; dave takes her slot and subscribes to nothing.
        assert_eq!(m.remove("alice").map(|p| p.conn), Some(1));
        assert!(m.insert("dave".into(), member(9)).is_none());
        assert_eq!(m.len(), 3);
        assert_eq!(reached(&mut m, "TR_a"), [2]);
        // Bob rejoins under the same identity (replaced in place).
        assert_eq!(m.insert("bob".into(), member(7)).map(|p| p.conn), Some(2));
        assert!(reached(&mut m, "TR_a").is_empty());
        assert_eq!(m.get("bob").map(|p| p.conn), Some(7));
        assert!(m.get("alice").is_none());
    }
}
