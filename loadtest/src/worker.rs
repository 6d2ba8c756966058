//! A worker thread: many clients multiplexed on one loop. Each turn takes new clients
//! from the ramp, lets each client that has input (epoll said one of its sockets is
//! readable) or is due (str0m timers, media, pings) do its work, then waits in epoll
//! for a socket or the earliest deadline (2 ms at most).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use crate::client::{Client, Config, Ctx, Spec};
use crate::clock;
use crate::ready::{Ready, Watch};
use crate::stats::{Latencies, Shared};

/// Longest wait, so that clients handed over by the ramp start promptly.
const MAX_WAIT: Duration = Duration::from_millis(2);
/// Every client is looked at this often even with no input and nothing due (a signal
/// write that waited for room, a join timeout). Looking at every client on every wake
/// made polling, recvfrom and WebSocket reads that found nothing a fifth of loadtest's
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
    let mut sockets: Vec<(i32, u64)> = Vec::new();
    let mut watch: Vec<Watch> = Vec::new();
    let mut ready = match Ready::new() {
        Ok(r) => Some(r),
        Err(e) => {
            shared.error(
                "epoll",
                format!("epoll_create1: {e}; clients are swept every 2 ms"),
            );
            None
        }
    };
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
            let wait = next.saturating_duration_since(clock::now());
            let Some(ready) = ready.as_mut() else {
                // No epoll: every client looks for input on each turn.
                std::thread::sleep(wait);
                let woke = clock::now();
                due.iter_mut().for_each(|at| *at = woke);
                continue;
            };
            watch.clear();
            for (i, c) in clients.iter().enumerate() {
                sockets.clear();
                c.sockets(&mut sockets);
                watch.extend(sockets.iter().map(|&(fd, id)| Watch { fd, id, owner: i }));
            }
            if let Err(e) = ready.sync(&watch) {
                shared.error("epoll", format!("epoll_ctl: {e}"));
            }
            let woke = clock::now();
            let r = ready.wait(wait, |c| {
                if let Some(at) = due.get_mut(c) {
                    *at = woke;
                }
            });
            if let Err(e) = r {
                shared.error("epoll", format!("epoll_wait: {e}"));
            }
        }
    }
    WorkerResult { latency, clients }
}
