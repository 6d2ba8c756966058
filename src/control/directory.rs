//! The room directory: which shard owns which room. New rooms go to the shard with the
//! fewest rooms, so load spreads without any shard knowing about the others.

use std::collections::HashMap;

#[derive(Debug)]
pub struct Directory {
    rooms: HashMap<String, usize>,
    rooms_per_shard: Vec<usize>,
}

impl Directory {
    pub fn new(shards: usize) -> Self {
        Directory {
            rooms: HashMap::new(),
            rooms_per_shard: vec![0; shards.max(1)],
        }
    }

    pub fn lookup(&self, room: &str) -> Option<usize> {
        self.rooms.get(room).copied()
    }

    /// The shard that owns `room`, placing it on the least-loaded shard if it is new.
    /// Returns the shard and whether the room was placed by this call.
    pub fn place(&mut self, room: &str) -> (usize, bool) {
        if let Some(shard) = self.lookup(room) {
            return (shard, false);
        }
        let shard = self
            .rooms_per_shard
            .iter()
            .enumerate()
            .min_by_key(|(i, n)| (**n, *i))
            .map(|(i, _)| i)
            .unwrap_or(0);
        self.rooms.insert(room.to_string(), shard);
        self.rooms_per_shard[shard] += 1;
        (shard, true)
    }

    /// Forgets `room` if `shard` still owns it (a stale close must not drop a newer room).
    pub fn remove(&mut self, room: &str, shard: usize) {
        if self.rooms.get(room) == Some(&shard) {
            self.rooms.remove(room);
            self.rooms_per_shard[shard] = self.rooms_per_shard[shard].saturating_sub(1);
        }
    }

    /// Every room this node hosts.
    pub fn names(&self) -> Vec<String> {
        self.rooms.keys().cloned().collect()
    }

    pub fn shard_count(&self) -> usize {
        self.rooms_per_shard.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_on_least_loaded_and_is_sticky() {
        let mut d = Directory::new(3);
        assert_eq!(d.place("a"), (0, true));
        assert_eq!(d.place("b"), (1, true));
        assert_eq!(d.place("c"), (2, true));
        assert_eq!(d.place("a"), (0, false));
        d.remove("b", 1);
        assert_eq!(d.lookup("b"), None);
        assert_eq!(d.place("d"), (1, true));
    }

    #[test]
    fn stale_remove_is_ignored() {
        let mut d = Directory::new(2);
        d.place("a");
        d.remove("a", 1);
        assert_eq!(d.lookup("a"), Some(0));
    }
}
