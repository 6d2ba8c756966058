//! Values in dense slots, found by a String key through one map: a shard's rooms
//! (`room_table`) and a subscriber's downtracks (`participant::DownTracks`). The media
//! path keeps slot indices (a connection's place, a track's fan-out list) and reaches
//! values without hashing a key per packet; a slot is reused after its value goes, so a
//! kept index is checked (against a connection id, or the key: `at_mut_keyed`).

use std::collections::HashMap;

/// Index of a value's slot; stable while the value stays under its key.
pub type KeySlot = usize;

pub struct KeyedSlots<V> {
    slots: Vec<Option<(String, V)>>,
    free: Vec<KeySlot>,
    by_key: HashMap<String, KeySlot>,
}

impl<V> Default for KeyedSlots<V> {
    fn default() -> Self {
        KeyedSlots {
            slots: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
        }
    }
}

impl<V> KeyedSlots<V> {
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.by_key.contains_key(key)
    }

    pub fn slot_of(&self, key: &str) -> Option<KeySlot> {
        self.by_key.get(key).copied()
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.at(self.slot_of(key)?)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.at_mut(self.slot_of(key)?)
    }

    /// Whatever `slot` holds now.
    pub fn at(&self, slot: KeySlot) -> Option<&V> {
        self.slots.get(slot)?.as_ref().map(|(_, v)| v)
    }

    pub fn at_mut(&mut self, slot: KeySlot) -> Option<&mut V> {
        self.slots.get_mut(slot)?.as_mut().map(|(_, v)| v)
    }

    /// The value in `slot` if it is still the one under `key` (a short compare).
    pub fn at_mut_keyed(&mut self, slot: KeySlot, key: &str) -> Option<&mut V> {
        match self.slots.get_mut(slot)? {
            Some((k, v)) if k == key => Some(v),
            _ => None,
        }
    }

    /// Adds (or replaces) the value under `key`; returns the one replaced.
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        if let Some(&slot) = self.by_key.get(&key) {
            return self.slots[slot].replace((key, value)).map(|(_, v)| v);
        }
        let entry = Some((key.clone(), value));
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
        self.by_key.insert(key, slot);
        None
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        let slot = self.by_key.remove(key)?;
        self.free.push(slot);
        self.slots.get_mut(slot)?.take().map(|(_, v)| v)
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.iter_mut().map(|(_, v)| v)
    }

    /// In slot order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.slots.iter().flatten().map(|(k, v)| (k, v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut V)> {
        self.slots.iter_mut().flatten().map(|(k, v)| (&*k, v))
    }
}

/// `slots[key]`, for keys known to be there (taken from the same map).
impl<V, Q: AsRef<str> + ?Sized> std::ops::Index<&Q> for KeyedSlots<V> {
    type Output = V;

    fn index(&self, key: &Q) -> &V {
        match self.get(key.as_ref()) {
            Some(v) => v,
            None => panic!("no value under {}", key.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_is_not_taken_for_the_key_that_left_it() {
        let mut d = KeyedSlots::default();
        assert!(d.insert("TR_a".to_string(), 1).is_none());
        assert!(d.insert("TR_v".to_string(), 2).is_none());
        let a = d.slot_of("TR_a").unwrap();
        assert_ne!(a, d.slot_of("TR_v").unwrap());
        assert_eq!(d.at_mut_keyed(a, "TR_a"), Some(&mut 1));
        assert_eq!(d.at_mut_keyed(a, "TR_v"), None, "another key's slot");
        // TR_a goes, TR_b takes its slot: a list still naming (a, TR_a) misses.
        assert_eq!(d.remove("TR_a"), Some(1));
        assert!(d.insert("TR_b".to_string(), 3).is_none());
        assert_eq!(d.slot_of("TR_b"), Some(a));
        assert_eq!(d.at_mut_keyed(a, "TR_a"), None);
        assert_eq!(d.at(a), Some(&3), "unchecked: whatever is there");
        assert_eq!(d.len(), 2);
        let mut keys: Vec<&String> = d.keys().collect();
        keys.sort();
        assert_eq!(keys, ["TR_b", "TR_v"]);
        assert_eq!(
            d.insert("TR_v".to_string(), 4),
            Some(2),
            "replaced in place"
        );
        assert_eq!(d["TR_v"], 4);
        assert_eq!(d.values().sum::<i32>(), 7);
    }
}
