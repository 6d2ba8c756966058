//! When a shard may stop waking for every datagram. A shard whose participants move
//! no media, send no data and do no signalling still receives a trickle of datagrams:
//! each peer connection's ICE consent checks (a browser sends one every ~5 s) and
//! SCTP heartbeats. Waking the thread for each costs far more than answering it (a
//! context switch per park; on glommio, where shards first ran, io_uring calls and a
//! membarrier too), and made an idle participant cost ~0.3 ms of CPU a second. A quiet
//! shard instead takes what is queued on its sockets on a fixed grid (they are not
//! even registered with epoll meanwhile, `udp_io::Sockets::park`), so its wakes no
//! longer grow with its participants; a consent check waits at most one grid step,
//! which ICE does not notice (consent expires after 30 s without an answer). The step
//! is the longest that stays well inside that: at 100 ms the grid alone was half of an
//! idle shard's CPU (each wake costs ~300 µs on these VMs, mostly the park and the
//! context switch), and 250 ms halved it. The session timers and the stats report of a
//! quiet shard fall on the same grid, so one wake serves all three.
//!
//! Media (RTP/RTCP), data channel messages and any signalling make the shard active
//! for [`QUIET_AFTER`]: a join's ICE and DTLS, and forwarding, never wait for the grid.

use std::time::{Duration, Instant};

/// A shard with no activity for this long turns quiet.
pub const QUIET_AFTER: Duration = Duration::from_secs(2);
/// How often a quiet shard looks at its sockets (and serves its session timers).
pub const QUIET_POLL: Duration = Duration::from_millis(250);

/// Whether a datagram is RTP or RTCP (RFC 7983: first byte 128..=191), the traffic
/// that must never wait. STUN (0..=3) and DTLS (20..=63) are told apart by the rooms.
pub fn is_media(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| (128..=191).contains(b))
}

/// The shard's last activity.
#[derive(Debug, Default, Clone, Copy)]
pub struct Activity {
    active_until: Option<Instant>,
}

impl Activity {
    /// Something happened at `now` that must be served without delay. Returns whether
    /// the shard was quiet until now (then its receivers must be woken).
    pub fn touch(&mut self, now: Instant) -> bool {
        let was_quiet = self.is_quiet(now);
        self.active_until = Some(now + QUIET_AFTER);
        was_quiet
    }

    /// Whether receivers should poll on the grid instead of waiting on each datagram.
    pub fn is_quiet(&self, now: Instant) -> bool {
        self.active_until.is_none_or(|until| now >= until)
    }
}

/// The first multiple of `grid` since `epoch` strictly after `now`: when a quiet
/// shard polls next (`grid` = [`QUIET_POLL`]) or reports its stats. `epoch` is the
/// origin the timer grid shares, so that polls, timer slots and reports coincide and
/// one wake serves them all.
pub fn next_slot(epoch: Instant, now: Instant, grid: Duration) -> Instant {
    grid_ceil(epoch, now + Duration::from_nanos(1), grid)
}

/// The first multiple of `grid` since `epoch` at or after `at` (the shard's timer
/// slots and quiet polls both lie on such grids).
pub fn grid_ceil(epoch: Instant, at: Instant, grid: Duration) -> Instant {
    let grid = grid.as_nanos();
    let slots = at
        .saturating_duration_since(epoch)
        .as_nanos()
        .div_ceil(grid);
    epoch + Duration::from_nanos((slots * grid).min(u64::MAX as u128) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_shard_is_quiet_and_activity_lasts_quiet_after() {
        let t0 = crate::clock::mono();
        let mut a = Activity::default();
        assert!(a.is_quiet(t0));
        assert!(a.touch(t0), "was quiet");
        assert!(!a.is_quiet(t0 + QUIET_AFTER - Duration::from_millis(1)));
        assert!(!a.touch(t0 + Duration::from_secs(1)), "already active");
        assert!(
            !a.is_quiet(t0 + QUIET_AFTER),
            "extended by the second touch"
        );
        assert!(a.is_quiet(t0 + Duration::from_secs(1) + QUIET_AFTER));
    }

    #[test]
    fn polls_fall_on_the_grid_strictly_after_now() {
        let epoch = crate::clock::mono();
        let ms = |n| epoch + Duration::from_millis(n);
        assert_eq!(next_slot(epoch, ms(0), QUIET_POLL), ms(250));
        assert_eq!(next_slot(epoch, ms(249), QUIET_POLL), ms(250));
        assert_eq!(next_slot(epoch, ms(250), QUIET_POLL), ms(500));
        assert_eq!(next_slot(epoch, ms(1_234), QUIET_POLL), ms(1_250));
    }

    #[test]
    fn only_rtp_and_rtcp_count_as_media() {
        assert!(is_media(&[0x80, 0x60]), "RTP");
        assert!(is_media(&[0x81, 0xc8]), "RTCP SR");
        assert!(!is_media(&[0x00, 0x01]), "STUN binding request");
        assert!(!is_media(&[23, 0xfe, 0xfd]), "DTLS application data");
        assert!(!is_media(&[]));
    }
}
