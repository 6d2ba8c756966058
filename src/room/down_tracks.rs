//! A subscriber's downtracks in dense slots, found by track sid through one map. A
//! track's fan-out list (`members::fan_out`) keeps each subscriber's slot here, so
//! that forwarding reaches a downtrack without hashing the sid per subscriber per
//! packet; the slot is checked against the sid (a short compare), since a removed
//! downtrack's slot may be reused before the list is rebuilt.

use std::collections::HashMap;

use crate::sfu::downtrack::DownTrack;

/// Index of a downtrack's slot; stable while the downtrack lives.
pub type DownSlot = usize;

#[derive(Default)]
pub struct DownTracks {
    slots: Vec<Option<(String, DownTrack)>>,
    free: Vec<DownSlot>,
    by_sid: HashMap<String, DownSlot>,
}

impl DownTracks {
    pub fn len(&self) -> usize {
        self.by_sid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_sid.is_empty()
    }

    pub fn contains_key(&self, sid: &str) -> bool {
        self.by_sid.contains_key(sid)
    }

    pub fn slot_of(&self, sid: &str) -> Option<DownSlot> {
        self.by_sid.get(sid).copied()
    }

    pub fn get(&self, sid: &str) -> Option<&DownTrack> {
        let slot = self.slot_of(sid)?;
        self.slots.get(slot)?.as_ref().map(|(_, d)| d)
    }

    pub fn get_mut(&mut self, sid: &str) -> Option<&mut DownTrack> {
        let slot = self.slot_of(sid)?;
        self.slots.get_mut(slot)?.as_mut().map(|(_, d)| d)
    }

    /// The downtrack in `slot` if it is still the one of `sid`.
    pub fn at_mut(&mut self, slot: DownSlot, sid: &str) -> Option<&mut DownTrack> {
        match self.slots.get_mut(slot)? {
            Some((s, d)) if s == sid => Some(d),
            _ => None,
        }
    }

    /// Adds (or replaces) the downtrack of `sid`; returns the one replaced.
    pub fn insert(&mut self, sid: String, down: DownTrack) -> Option<DownTrack> {
        if let Some(&slot) = self.by_sid.get(&sid) {
            return self.slots[slot].replace((sid, down)).map(|(_, d)| d);
        }
        let entry = Some((sid.clone(), down));
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
        self.by_sid.insert(sid, slot);
        None
    }

    pub fn remove(&mut self, sid: &str) -> Option<DownTrack> {
        let slot = self.by_sid.remove(sid)?;
        self.free.push(slot);
        self.slots.get_mut(slot)?.take().map(|(_, d)| d)
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.iter().map(|(sid, _)| sid)
    }

    pub fn values(&self) -> impl Iterator<Item = &DownTrack> {
        self.iter().map(|(_, d)| d)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut DownTrack> {
        self.iter_mut().map(|(_, d)| d)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &DownTrack)> {
        self.slots.iter().flatten().map(|(s, d)| (s, d))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut DownTrack)> {
        self.slots.iter_mut().flatten().map(|(s, d)| (&*s, d))
    }
}

/// `downtracks[sid]`, for sids known to be there (taken from the same map).
impl<Q: AsRef<str> + ?Sized> std::ops::Index<&Q> for DownTracks {
    type Output = DownTrack;

    fn index(&self, sid: &Q) -> &DownTrack {
        match self.get(sid.as_ref()) {
            Some(d) => d,
            None => panic!("no downtrack of {}", sid.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::MediaKind;

    fn down(kind: MediaKind) -> DownTrack {
        DownTrack::new(kind, Default::default(), None)
    }

    #[test]
    fn a_reused_slot_is_not_taken_for_the_track_that_left_it() {
        let mut d = DownTracks::default();
        assert!(d.insert("TR_a".into(), down(MediaKind::Audio)).is_none());
        assert!(d.insert("TR_v".into(), down(MediaKind::Video)).is_none());
        let a = d.slot_of("TR_a").unwrap();
        assert_ne!(a, d.slot_of("TR_v").unwrap());
        assert!(d.at_mut(a, "TR_a").is_some());
        assert!(d.at_mut(a, "TR_v").is_none(), "another track's slot");
        // TR_a goes, TR_b takes its slot: a fan-out list still naming (a, TR_a) misses.
        assert!(d.remove("TR_a").is_some());
        assert!(d.insert("TR_b".into(), down(MediaKind::Video)).is_none());
        assert_eq!(d.slot_of("TR_b"), Some(a));
        assert!(d.at_mut(a, "TR_a").is_none());
        assert_eq!(d.at_mut(a, "TR_b").map(|x| x.kind), Some(MediaKind::Video));
        assert_eq!(d.len(), 2);
        let mut keys: Vec<&String> = d.keys().collect();
        keys.sort();
        assert_eq!(keys, ["TR_b", "TR_v"]);
        assert!(
            d.insert("TR_v".into(), down(MediaKind::Audio)).is_some(),
            "replaced"
        );
        assert_eq!(d["TR_v"].kind, MediaKind::Audio);
    }
}
