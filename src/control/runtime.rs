//! The control thread's runtime: one thread, pinned where `core-affinity.toml` says,
//! running a single-threaded tokio runtime (epoll) with a `LocalSet`, so that tasks
//! may hold `Rc`s as they did on a glommio executor.

use std::future::Future;
use std::thread::JoinHandle;

/// Starts the control thread: `make` builds the main future on that thread, which runs
/// until it completes. `core`: the CPU to pin to, `None` for unpinned. `before_park`
/// runs each time the thread is about to wait for its sockets and timers (the quiet
/// grid, `control::quiet`). The thread ends with an error when its runtime cannot be
/// built.
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
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            if let Some(id) = core {
                if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
                    tracing::warn!(core = id, "cannot pin the control thread; running unpinned");
                }
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .on_thread_park(before_park)
                .build()
                .map_err(|e| format!("cannot build the control runtime: {e}"))?;
            tokio::task::LocalSet::new().block_on(&runtime, make());
            Ok(())
        })
}
