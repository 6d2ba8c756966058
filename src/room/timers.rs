//! When each peer connection of a shard wants its next timeout, in a min-heap, so that
//! a shard wakes exactly when some session is due and then touches only those. An idle
//! str0m session asks for about one timeout a second; scanning every participant on
//! a fixed 10 ms tick cost far more than the sessions' own work.
//!
//! Entries are never updated in place: a session that reschedules pushes a new entry,
//! and an entry whose time is no longer its session's deadline is stale and skipped
//! when it comes up (the caller says which are current).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::media::PeerKey;

/// Stale entries beyond this multiple of the live sessions trigger a rebuild.
const STALE_FACTOR: usize = 4;
const MIN_REBUILD: usize = 1024;

#[derive(Debug, Default)]
pub struct DeadlineHeap {
    heap: BinaryHeap<Reverse<(Instant, PeerKey)>>,
}

impl DeadlineHeap {
    /// `key` wants a timeout at `at`.
    pub fn schedule(&mut self, key: PeerKey, at: Instant) {
        self.heap.push(Reverse((at, key)));
    }

    /// Whether the heap has grown well past `live` sessions with stale entries: then
    /// the caller rebuilds it from the sessions' deadlines (`rebuild`).
    pub fn needs_rebuild(&self, live: usize) -> bool {
        self.heap.len() > (live * STALE_FACTOR).max(MIN_REBUILD)
    }

    pub fn rebuild(&mut self, current: impl Iterator<Item = (PeerKey, Instant)>) {
        self.heap = current.map(|(k, at)| Reverse((at, k))).collect();
    }

    /// The earliest current deadline: stale entries on top are dropped on the way.
    /// `current(key)` is the session's deadline now (`None`: gone or none).
    pub fn next(&mut self, current: impl Fn(PeerKey) -> Option<Instant>) -> Option<Instant> {
        while let Some(Reverse((at, key))) = self.heap.peek().copied() {
            if current(key) == Some(at) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Takes every current entry due at `now`, in deadline order, into `due`.
    pub fn pop_due(
        &mut self,
        now: Instant,
        current: impl Fn(PeerKey) -> Option<Instant>,
        due: &mut Vec<PeerKey>,
    ) {
        while let Some(Reverse((at, key))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            // A duplicate entry (same key and time) ticks the session twice in
            // one turn, which str0m takes as a no-op; cheaper than searching.
            if current(key) == Some(at) {
                due.push(key);
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::room::media::Side;

    #[test]
    fn only_current_due_deadlines_come_out_in_order() {
        let t0 = crate::clock::mono();
        let ms = |n| t0 + Duration::from_millis(n);
        let a = (1, Side::Publisher);
        let b = (2, Side::Subscriber);
        let c = (3, Side::Publisher);
        let mut now: HashMap<PeerKey, Instant> = HashMap::new();
        let mut h = DeadlineHeap::default();
        for (k, at) in [(a, ms(30)), (b, ms(10)), (c, ms(20))] {
            h.schedule(k, at);
            now.insert(k, at);
        }
        // a reschedules earlier, c later: their first entries go stale.
        h.schedule(a, ms(5));
        now.insert(a, ms(5));
        h.schedule(c, ms(50));
        now.insert(c, ms(50));
        let cur = |k: PeerKey| now.get(&k).copied();
        assert_eq!(h.next(cur), Some(ms(5)));
        let mut due = Vec::new();
        h.pop_due(ms(25), cur, &mut due);
        assert_eq!(due, vec![a, b], "c's stale 20 ms entry is skipped");
        assert!(!due.contains(&c));
        // b is gone; a's stale 30 ms entry is dropped when it comes up.
        now.remove(&b);
        now.insert(a, ms(40));
        h.schedule(a, ms(40));
        let cur = |k: PeerKey| now.get(&k).copied();
        assert_eq!(h.next(cur), Some(ms(40)));
        due.clear();
        h.pop_due(ms(100), cur, &mut due);
        assert_eq!(due, vec![a, c]);
        assert!(h.is_empty());
    }

    #[test]
    fn a_heap_of_stale_entries_is_rebuilt() {
        let t0 = crate::clock::mono();
        let mut h = DeadlineHeap::default();
        let key = (1, Side::Publisher);
        for i in 0..5000u64 {
            h.schedule(key, t0 + Duration::from_micros(i));
        }
        assert!(h.needs_rebuild(1));
        h.rebuild([(key, t0)].into_iter());
        assert_eq!(h.len(), 1);
        assert!(!h.needs_rebuild(1));
    }
}
