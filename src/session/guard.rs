//! Containing a panic inside str0m to the one session it happened in. str0m 0.25 has
//! assertions a client's input can reach (its TWCC receive register, see
//! `tests_guard`); a panic unwinding through the shard would take every other room on
//! it down. Each entry into str0m runs under `catch_unwind`; after a panic the
//! session is poisoned: every later call fails, so the shard ends it like any failed
//! peer connection.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{PeerSession, SessionError};

/// The test-only hook (`CORELAY_TEST_PANIC_HOOK=1`): a data message whose payload
/// contains [`PANIC_MARKER`] makes its session panic while it is being drained.
static PANIC_HOOK: AtomicBool = AtomicBool::new(false);
pub const PANIC_MARKER: &[u8] = b"corelay-test-panic-now";

/// Arms the hook; only the interop tests do this.
pub fn enable_test_panic_hook() {
    PANIC_HOOK.store(true, Ordering::Relaxed);
}

pub(super) fn maybe_test_panic(data: &[u8]) {
    if PANIC_HOOK.load(Ordering::Relaxed)
        && data.windows(PANIC_MARKER.len()).any(|w| w == PANIC_MARKER)
    {
        panic!("test panic hook: a data message asked this session to panic");
    }
}

impl PeerSession {
    /// Runs `f` (which calls into str0m), turning a panic into
    /// [`SessionError::Panicked`] and poisoning the session.
    pub(super) fn guarded<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, SessionError>,
    ) -> Result<T, SessionError> {
        if let Some(why) = &self.poisoned {
            return Err(SessionError::Panicked(why.clone()));
        }
        self.str0m_touched = true;
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(r) => r,
            Err(payload) => {
                let why = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                self.poisoned = Some(why.clone());
                Err(SessionError::Panicked(why))
            }
        }
    }

    /// Whether a panic ended this session.
    #[cfg(test)]
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }
}
