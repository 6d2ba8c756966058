//! The runtime of the control thread and of each shard: one thread, pinned where
//! `core-affinity.toml` says, running a single-threaded tokio runtime (epoll) with a
//! `LocalSet`, so that tasks may hold `Rc`s and share their thread's state without locks.
//!
//! Epoll rather than io_uring (glommio, which the shards ran on until 2026-12): a
//! parked glommio executor spent a `membarrier` and several `io_uring_enter`s on every
//! wake, where epoll spends one `epoll_wait`; at the fan-out load a shard used 3–9 %
//! less CPU per packet on epoll (README, "Threads").

use std::future::Future;
use std::thread::JoinHandle;

/// Starts a thread named `name`: `make` builds the main future on that thread, which
/// runs until it completes. `core`: the CPU to pin to, `None` for unpinned.
/// `before_park` runs each time the thread is about to wait for its sockets and timers
/// (the control thread's quiet grid, `control::quiet`). The thread ends with an error
/// when its runtime cannot be built.
pub fn spawn<F, Fut, P>(
    name: &str,
    core: Option<usize>,
    before_park: P,
    make: F,
) -> std::io::Result<JoinHandle<Result<(), String>>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
    P: Fn() + Send + Sync + 'static,
{
    let name_for_log = name.to_string();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            if let Some(id) = core {
                if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
                    tracing::warn!(
                        thread = name_for_log,
                        core = id,
                        "cannot pin the thread; running unpinned"
                    );
                }
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .on_thread_park(before_park)
                .build()
                .map_err(|e| format!("cannot build the runtime of {name_for_log}: {e}"))?;
            tokio::task::LocalSet::new().block_on(&runtime, make());
            Ok(())
        })
}
