//! Datagram buffers used again: every packet `own_egress` seals needs one, and the
//! shard is done with it as soon as `sendmmsg` has copied it into the kernel. Taking
//! them from a free list the shard fills after each send makes a forwarded packet cost
//! no allocation. Each shard is one thread and both ends run on it, so the list is
//! thread-local: no lock, no sharing.

use std::cell::RefCell;

/// Every buffer holds at least this much, so any RTP packet fits whichever it gets.
const CAPACITY: usize = 1500;
/// Buffers larger than this are not kept (a rare jumbo datagram does not pin memory).
const MAX_KEPT_CAPACITY: usize = 4096;
/// The most buffers kept per thread: a keyframe for a few hundred subscribers, about
/// 6 MB at most.
const MAX_FREE: usize = 4096;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer that holds at least `len` bytes without growing.
pub fn take(len: usize) -> Vec<u8> {
    let reused = FREE.with(|f| f.borrow_mut().pop());
    match reused {
        Some(b) if b.capacity() >= len => b,
        _ => Vec::with_capacity(len.max(CAPACITY)),
    }
}

/// A buffer whose contents were sent: kept for `take`, or dropped when it is of an
/// odd size or enough are kept.
pub fn give_back(mut buffer: Vec<u8>) {
    if !(CAPACITY..=MAX_KEPT_CAPACITY).contains(&buffer.capacity()) {
        return;
    }
    buffer.clear();
    FREE.with(|f| {
        let mut free = f.borrow_mut();
        if free.len() < MAX_FREE {
            free.push(buffer);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_and_odd_ones_are_dropped() {
        let mut b = take(100);
        assert!(b.capacity() >= CAPACITY);
        b.extend_from_slice(&[7; 1200]);
        let at = b.as_ptr();
        give_back(b);
        let again = take(1300);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), at, "the same buffer");
        give_back(Vec::with_capacity(10));
        give_back(Vec::with_capacity(1 << 20));
        let fresh = take(10);
        assert!((CAPACITY..=MAX_KEPT_CAPACITY).contains(&fresh.capacity()));
        // Too small for what is asked: a new one.
        give_back(fresh);
        assert!(take(3000).capacity() >= 3000);
    }

    #[test]
    fn the_free_list_is_bounded() {
        for _ in 0..MAX_FREE + 10 {
            give_back(Vec::with_capacity(CAPACITY));
        }
        assert_eq!(FREE.with(|f| f.borrow().len()), MAX_FREE);
        FREE.with(|f| f.borrow_mut().clear());
    }
}
