//! When the control thread may stop waking for every signal message. Idle participants
//! still send the control thread a trickle of messages: every SDK pings every 5 s, so
//! 100 idle participants wake it 20 times a second, and a wake (~100 µs on these VMs,
//! mostly the context switch) costs more than the ping (~35 µs). A quiet control thread
//! instead parks on a grid: before it waits for its sockets it sleeps until the next
//! [`QUIET_GRID`] slot, then serves everything that arrived meanwhile in one wake. A
//! pong then waits at most one slot, which only shows in the SDK's signal RTT.
//!
//! New connections never wait: the sleep is an `epoll_wait` on the listening sockets,
//! so a join or an API call on a fresh connection ends it at once. Any request other
//! than a ping, and anything the shards send but their stats, makes the thread active
//! for [`QUIET_AFTER`], so a join's or a publish's exchange never waits for the grid.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::shard::quiet::next_slot;

/// A control thread with no activity for this long turns quiet.
pub const QUIET_AFTER: Duration = Duration::from_secs(2);
/// How often a quiet control thread looks at its connections: a request on an open
/// connection (a mute, a subscription change, a Twirp call on a kept-alive connection)
/// after a quiet spell waits up to one slot. A shard's step too. At 100 idle
/// participants the control thread spent 2.4–2.8 ms/s with 100 ms, 1.5–1.6 with 250 ms
/// (loadtest, per-thread schedstat): a wake costs more than the pings it batches.
pub const QUIET_GRID: Duration = Duration::from_millis(250);

/// The control thread's activity, shared by its tasks (which touch it) and its park
/// hook (which sleeps while it is quiet).
pub struct Quiet {
    epoch: Instant,
    /// Nanoseconds after `epoch` until which the thread stays active.
    active_until: AtomicU64,
    /// The listening sockets, whose readiness ends a quiet sleep; `None` when it could
    /// not be made (then the thread never sleeps).
    listeners: Option<OwnedFd>,
}

impl Quiet {
    /// `listeners`: the raw fds of the listening sockets, which must outlive this.
    pub fn new(epoch: Instant, listeners: &[RawFd]) -> Self {
        Quiet {
            epoch,
            active_until: AtomicU64::new(QUIET_AFTER.as_nanos() as u64),
            listeners: watch(listeners)
                .map_err(|e| tracing::warn!(error = %e, "control thread stays awake: no epoll"))
                .ok(),
        }
    }

    /// The instant the grid counts from (the node's start).
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Something happened at `now` that the next ones after it must not wait for.
    pub fn touch(&self, now: Instant) {
        let until = now.saturating_duration_since(self.epoch) + QUIET_AFTER;
        self.active_until
            .fetch_max(until.as_nanos() as u64, Ordering::Relaxed);
    }

    /// How long the thread should sleep before it waits on its sockets: until the next
    /// grid slot when quiet, `None` while active.
    pub fn pause(&self, now: Instant) -> Option<Duration> {
        let since = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        if since < self.active_until.load(Ordering::Relaxed) {
            return None;
        }
        Some(next_slot(self.epoch, now, QUIET_GRID).saturating_duration_since(now))
    }

    /// The park hook: sleeps out the pause, or until a listener has a connection.
    pub fn before_park(&self) {
        let Some(epoll) = &self.listeners else {
            return;
        };
        let Some(pause) = self.pause(crate::clock::mono()) else {
            return;
        };
        let timeout_ms = pause.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let _ = ready_listener(epoll, timeout_ms);
    }
}

/// Waits up to `timeout_ms` for a listener in the set to have a connection; its fd, or
/// `None` when none had one in time.
fn ready_listener(epoll: &OwnedFd, timeout_ms: i32) -> Option<RawFd> {
    let mut event = [libc::epoll_event { events: 0, u64: 0 }; 1];
    // SAFETY: `event` is a valid buffer of the length passed; the fd is ours.
    let n = unsafe { libc::epoll_wait(epoll.as_raw_fd(), event.as_mut_ptr(), 1, timeout_ms) };
    (n > 0).then(|| event[0].u64 as RawFd)
}

/// An epoll set holding `listeners` (level-triggered: a connection tokio has not yet
/// accepted keeps ending sleeps until it has).
fn watch(listeners: &[RawFd]) -> std::io::Result<OwnedFd> {
    // SAFETY: plain syscalls; the new fd is owned right away.
    let raw = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh fd nobody else owns.
    let epoll = unsafe { OwnedFd::from_raw_fd(raw) };
    for &fd in listeners {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        // SAFETY: both fds are open; `event` lives across the call.
        if unsafe { libc::epoll_ctl(raw, libc::EPOLL_CTL_ADD, fd, &mut event) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(epoll)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_after_a_touch_then_quiet_on_the_grid() {
        let t0 = crate::clock::mono();
        let quiet = Quiet::new(t0, &[]);
        // Active for QUIET_AFTER from the start: a fresh node serves its first joins.
        assert_eq!(quiet.pause(t0 + Duration::from_secs(1)), None);
        let slot = QUIET_AFTER.as_nanos() / QUIET_GRID.as_nanos();
        let on_grid = t0 + QUIET_GRID * (slot as u32 + 1);
        let at = on_grid - Duration::from_millis(30);
        assert_eq!(quiet.pause(at), Some(Duration::from_millis(30)));
        quiet.touch(at);
        assert_eq!(quiet.pause(at + Duration::from_secs(1)), None);
        // A late touch never shortens a later one's activity.
        quiet.touch(t0);
        assert_eq!(quiet.pause(at + Duration::from_secs(1)), None);
        let later = at + QUIET_AFTER;
        assert_eq!(quiet.pause(later), Some(Duration::from_millis(30)));
    }

    #[test]
    fn a_pending_connection_is_what_ends_a_sleep() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let quiet = Quiet::new(crate::clock::mono(), &[listener.as_raw_fd()]);
        let epoll = quiet.listeners.as_ref().expect("an epoll set");
        assert_eq!(
            ready_listener(epoll, 0),
            None,
            "nothing to accept: a sleep would last its slot"
        );
        let _client = std::net::TcpStream::connect(addr).expect("connect");
        assert_eq!(ready_listener(epoll, 0), Some(listener.as_raw_fd()));
    }
}
