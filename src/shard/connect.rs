//! Connecting the two ends of a glommio `shared_channel` without hanging.
//!
//! glommio 0.9 re-checks a pending `connect()` only when its executor next runs; the
//! peer connecting does not wake it. An executor with nothing else to do can sleep
//! through its peer's connect: caught at start-up (about 1 start in 125 under load,
//! thread dumps showed the shard parked in `io_uring_enter` before its first log line
//! while the control thread waited for it), which leaves a node that listens and
//! never answers. A short timer while the connect is pending makes the executor look
//! again.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use futures_lite::future::or;

/// How often a pending connect is looked at again.
const RECHECK: Duration = Duration::from_millis(2);

/// Awaits a `shared_channel` end's `connect()`.
pub async fn connected<F: Future>(connect: F) -> F::Output {
    let mut connect = pin!(connect);
    loop {
        let step = or(async { Some(connect.as_mut().await) }, async {
            glommio::timer::sleep(RECHECK).await;
            None
        })
        .await;
        if let Some(done) = step {
            return done;
        }
    }
}
