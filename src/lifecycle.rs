//! Process lifecycle shared between the main thread (signals) and the control thread:
//! whether the node is draining, and how many signal connections are still open.
//! Plain atomics, read a few times a second, never on the media path; the control
//! thread learns that a drain started from a oneshot the main thread completes, so it
//! does not poll for it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_channel::oneshot;

use tracing::{info, warn};

#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: AtomicBool,
    open_conns: AtomicUsize,
    /// Set by the control thread once a drain has nothing left to send (webhooks).
    finished: AtomicBool,
    /// Who waits for the drain to start ([`drain_started`](Self::drain_started)).
    drain_waiters: Mutex<Vec<oneshot::Sender<()>>>,
}

impl Lifecycle {
    pub fn new() -> Arc<Self> {
        Arc::new(Lifecycle::default())
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
        let waiters = std::mem::take(&mut *self.waiters());
        for w in waiters {
            let _ = w.send(());
        }
    }

    /// Completes once a drain has started (at once if one has). The main thread's
    /// `start_draining` wakes the waiting executor: nothing polls the flag.
    pub async fn drain_started(&self) {
        let rx = {
            let mut waiters = self.waiters();
            if self.is_draining() {
                return;
            }
            let (tx, rx) = oneshot::channel();
            waiters.push(tx);
            rx
        };
        let _ = rx.await;
    }

    fn waiters(&self) -> std::sync::MutexGuard<'_, Vec<oneshot::Sender<()>>> {
        // A panic while holding it leaves only a Vec of senders behind: still usable.
        self.drain_waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn conn_opened(&self) {
        self.open_conns.fetch_add(1, Ordering::Relaxed);
    }

    pub fn conn_closed(&self) {
        self.open_conns.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn open_conns(&self) -> usize {
        self.open_conns.load(Ordering::Relaxed)
    }

    pub fn finish(&self) {
        self.finished.store(true, Ordering::Release);
    }

    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

/// How long the control thread may take, once every participant is gone, to deliver
/// the webhooks still queued (the last participant_left among them).
pub const WEBHOOK_FLUSH: Duration = Duration::from_secs(5);

/// SIGTERM and SIGINT, caught from now on (the ones that arrive before
/// `wait_for_shutdown` are kept for it).
pub fn shutdown_signals() -> std::io::Result<signal_hook::iterator::Signals> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
}

/// Blocks the main thread until SIGTERM or SIGINT, then drains: participants are told
/// to leave (by the control thread), and the process exits 0 once they are gone or
/// `timeout` passes. A second signal exits at once.
pub fn wait_for_shutdown(
    lifecycle: &Lifecycle,
    mut signals: signal_hook::iterator::Signals,
    timeout: Duration,
) {
    if let Some(signal) = signals.forever().next() {
        info!(
            signal,
            open = lifecycle.open_conns(),
            ?timeout,
            "draining: no new participants, asking connected ones to leave"
        );
        lifecycle.start_draining();
    }
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    loop {
        if lifecycle.open_conns() == 0 {
            wait_for_control(lifecycle, &mut signals);
            info!("drained, exiting");
            return;
        }
        if waited >= timeout {
            warn!(
                open = lifecycle.open_conns(),
                "drain timeout reached, exiting"
            );
            return;
        }
        if signals.pending().next().is_some() {
            warn!("second signal, exiting now");
            return;
        }
        std::thread::sleep(step);
        waited += step;
    }
}

/// Gives the control thread a bounded time to deliver what it still has queued.
fn wait_for_control(lifecycle: &Lifecycle, signals: &mut signal_hook::iterator::Signals) {
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    // Its flush is bounded by WEBHOOK_FLUSH; the rest covers a last round trip to the
    // shards before it.
    while !lifecycle.is_finished() && waited < WEBHOOK_FLUSH + Duration::from_secs(1) {
        if signals.pending().next().is_some() {
            warn!("second signal, exiting now");
            return;
        }
        std::thread::sleep(step);
        waited += step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_started_completes_when_another_thread_starts_the_drain() {
        let lifecycle = Lifecycle::new();
        let starter = Arc::clone(&lifecycle);
        let waiting = std::thread::spawn(move || {
            futures_lite::future::block_on(starter.drain_started());
            starter.is_draining()
        });
        // Whether the waiter registered before or after this, it must wake.
        lifecycle.start_draining();
        assert!(waiting.join().expect("the waiter returns"));
    }

    #[test]
    fn drain_started_completes_at_once_once_draining() {
        let lifecycle = Lifecycle::new();
        lifecycle.start_draining();
        futures_lite::future::block_on(lifecycle.drain_started());
        assert!(lifecycle
            .drain_waiters
            .lock()
            .expect("unpoisoned")
            .is_empty());
    }
}
