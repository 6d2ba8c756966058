//! A worker thread: many clients multiplexed on one loop. Each turn takes new clients
//! from the ramp, lets each client that has input (ppoll said one of its sockets is
//! readable) or is due (str0m timers, media, pings) do its work, then waits in ppoll
//! for a socket or the earliest deadline (2 ms at most).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use crate::client::{Client, Config, Ctx, Spec};
use crate::clock;
use crate::stats::{Latencies, Shared};

/// Longest wait, so that clients handed over by the ramp start promptly.
const MAX_WAIT: Duration = Duration::from_millis(2);
/// Every client is looked at this often even with no input and nothing due (a signal
/// write that waited for room, a join timeout). Looking at every client on every wake
/// made ppoll, recvfrom and WebSocket reads that found nothing a fifth of loadtest's
/// CPU at 60 subscribers.
const SWEEP: Duration = Duration::from_millis(20);

pub struct WorkerResult {
    pub latency: Latencies,
    pub clients: Vec<Client>,
}

pub fn run(inbox: Receiver<Spec>, cfg: Arc<Config>, shared: Arc<Shared>) -> WorkerResult {
    let mut latency = Latencies::new();
    let mut clients: Vec<Client> = Vec::new();
    // When each client (same index) wants its next look.
    let mut due: Vec<std::time::Instant> = Vec::new();
    let mut raw: Vec<i32> = Vec::new();
    // The client (index) of each fd in `fds`.
    let mut owner: Vec<usize> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut inbox_open = true;
    {
        let mut ctx = Ctx::new(&cfg, &shared, &mut latency);
        loop {
            while inbox_open {
                match inbox.try_recv() {
                    Ok(spec) => {
                        let now = clock::now();
                        clients.push(Client::start(spec, &cfg, &shared, now));
                        due.push(now);
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => inbox_open = false,
                }
            }
            let now = clock::now();
            for (pfd, &c) in fds.iter().zip(&owner) {
                if pfd.revents != 0 {
                    due[c] = now;
                }
            }
            // Leaving is news to every client.
            let everyone = shared.leave.load(Relaxed);
            let mut next = now + MAX_WAIT;
            for (c, at) in clients.iter_mut().zip(due.iter_mut()) {
                if everyone || *at <= now {
                    *at = c.poll(now, &mut ctx).min(now + SWEEP);
                }
                next = next.min(*at);
            }
            if !inbox_open && shared.leave.load(Relaxed) && clients.iter().all(Client::is_done) {
                break;
            }
            raw.clear();
            owner.clear();
            for (i, c) in clients.iter().enumerate() {
                c.fds(&mut raw);
                owner.resize(raw.len(), i);
            }
            fds.clear();
            fds.extend(raw.iter().map(|&fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            }));
            let wait = next.saturating_duration_since(clock::now());
            if !wait.is_zero() {
                let ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: wait.as_nanos().min(999_999_999) as libc::c_long,
                };
                // SAFETY: `fds` is a valid array of `fds.len()` pollfds for the call.
                unsafe {
                    libc::ppoll(
                        fds.as_mut_ptr(),
                        fds.len() as libc::nfds_t,
                        &ts,
                        std::ptr::null(),
                    )
                };
            }
        }
    }
    WorkerResult { latency, clients }
}
