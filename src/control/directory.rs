//! The room directory: which shard is each room's home, and which shards host a copy
//! of it (a room spans several once it passes `spread_after` participants, see
//! `room::spread`). New rooms go to the shard with the fewest rooms; where a join goes
//! is decided by the control thread from its connections (`control::spread`).

use std::collections::HashMap;

/// Where one room is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomPlace {
    /// The shard that owns the room's own state and emits its webhooks.
    pub home: usize,
    /// Every shard with a copy of the room, the home included, ascending.
    pub hosts: Vec<usize>,
}

/// What a shard closing its copy of a room changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// Not a host of the room (a stale close): nothing.
    Ignored,
    /// It was the last host: the room is gone.
    Gone,
    /// Others still host it (the home may have moved).
    Remaining(RoomPlace),
}

#[derive(Debug)]
pub struct Directory {
    rooms: HashMap<String, RoomPlace>,
    rooms_per_shard: Vec<usize>,
}

impl Directory {
    pub fn new(shards: usize) -> Self {
        Directory {
            rooms: HashMap::new(),
            rooms_per_shard: vec![0; shards.max(1)],
        }
    }

    /// The room's home shard.
    pub fn lookup(&self, room: &str) -> Option<usize> {
        self.rooms.get(room).map(|p| p.home)
    }

    pub fn place_of(&self, room: &str) -> Option<&RoomPlace> {
        self.rooms.get(room)
    }

    /// The shards hosting `room` (none for an unknown room).
    pub fn hosts(&self, room: &str) -> Vec<usize> {
        self.rooms
            .get(room)
            .map(|p| p.hosts.clone())
            .unwrap_or_default()
    }

    /// The home of `room`, placing it on the shard with the fewest homes if it is new.
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
        self.rooms.insert(
            room.to_string(),
            RoomPlace {
                home: shard,
                hosts: vec![shard],
            },
        );
        self.rooms_per_shard[shard] += 1;
        (shard, true)
    }

    /// Records that `shard` now has a copy of `room`.
    pub fn add_host(&mut self, room: &str, shard: usize) {
        if let Some(place) = self.rooms.get_mut(room) {
            if let Err(i) = place.hosts.binary_search(&shard) {
                place.hosts.insert(i, shard);
            }
        }
    }

    /// `shard` closed its copy of `room`. When the home closes while other shards
    /// still host the room, the lowest of them becomes its home.
    pub fn remove(&mut self, room: &str, shard: usize) -> Closed {
        let Some(place) = self.rooms.get_mut(room) else {
            return Closed::Ignored;
        };
        let Ok(i) = place.hosts.binary_search(&shard) else {
            return Closed::Ignored;
        };
        place.hosts.remove(i);
        let old_home = place.home;
        let Some(&new_home) = place.hosts.first() else {
            self.rooms.remove(room);
            self.rooms_per_shard[old_home] = self.rooms_per_shard[old_home].saturating_sub(1);
            return Closed::Gone;
        };
        if shard == old_home {
            place.home = new_home;
            self.rooms_per_shard[old_home] = self.rooms_per_shard[old_home].saturating_sub(1);
            self.rooms_per_shard[new_home] += 1;
        }
        Closed::Remaining(place.clone())
    }

    /// Forgets `room` on every shard (it was deleted).
    pub fn forget(&mut self, room: &str) {
        if let Some(place) = self.rooms.remove(room) {
            self.rooms_per_shard[place.home] = self.rooms_per_shard[place.home].saturating_sub(1);
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

/// Where a join goes, given the room's `home`, how many participants each shard has
/// in this room (`in_room`) and in all (`load`): the home while it has fewer than
/// `spread_after` of the room's participants (0: always), else the least-loaded shard,
/// preferring one that already hosts the room (`hosts`) on a tie.
pub fn join_shard(
    home: usize,
    hosts: &[usize],
    in_room: &[usize],
    load: &[usize],
    spread_after: usize,
) -> usize {
    let at_home = in_room.get(home).copied().unwrap_or(0);
    if spread_after == 0 || at_home < spread_after {
        return home;
    }
    (0..load.len())
        .min_by_key(|s| (load[*s], !hosts.contains(s), *s != home, *s))
        .unwrap_or(home)
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
        assert_eq!(d.remove("b", 1), Closed::Gone);
        assert_eq!(d.lookup("b"), None);
        assert_eq!(d.place("d"), (1, true));
    }

    #[test]
    fn stale_remove_is_ignored() {
        let mut d = Directory::new(2);
        d.place("a");
        assert_eq!(d.remove("a", 1), Closed::Ignored);
        assert_eq!(d.lookup("a"), Some(0));
    }

    #[test]
    fn a_spread_room_stays_until_its_last_host_closes_and_its_home_moves() {
        let mut d = Directory::new(3);
        d.place("a");
        d.add_host("a", 2);
        d.add_host("a", 1);
        d.add_host("a", 1);
        assert_eq!(d.hosts("a"), [0, 1, 2]);
        let left = d.remove("a", 0);
        assert_eq!(
            left,
            Closed::Remaining(RoomPlace {
                home: 1,
                hosts: vec![1, 2]
            })
        );
        // The next new room avoids shard 1, which is now a home.
        assert_eq!(d.place("b"), (0, true));
        assert_eq!(
            d.remove("a", 2),
            Closed::Remaining(d.place_of("a").unwrap().clone())
        );
        assert_eq!(d.remove("a", 1), Closed::Gone);
        assert_eq!(d.hosts("a"), Vec::<usize>::new());
    }

    #[test]
    fn joins_stay_home_until_the_threshold_then_go_to_the_least_loaded_shard() {
        // Below the threshold, or with spreading off: home, however loaded.
        assert_eq!(join_shard(0, &[0], &[2, 0], &[9, 0], 3), 0);
        assert_eq!(join_shard(0, &[0], &[50, 0], &[50, 0], 0), 0);
        // At it: the least-loaded shard.
        assert_eq!(join_shard(0, &[0], &[3, 0, 0], &[3, 5, 1], 3), 2);
        // Ties: a shard that hosts the room already, then home, then the lowest.
        assert_eq!(join_shard(0, &[0, 2], &[3, 0, 1], &[3, 1, 1], 3), 2);
        assert_eq!(join_shard(1, &[1], &[0, 3, 0], &[3, 3, 3], 3), 1);
        assert_eq!(join_shard(2, &[2], &[0, 0, 1], &[0, 0, 1], 1), 0);
    }
}
