//! What happens when the engine thread dies: the worker loop runs under `catch_unwind`, a
//! panic is logged (`tracing`, level error) and its message kept, and
//! [`EngineHandle::failure`](crate::EngineHandle::failure) reports it, so that a server can
//! answer its health check truthfully and exit for a supervisor to restart it.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::OnceLock;

/// Runs the engine loop `f`; if it panics, records why in `failure` and logs it. Unwinding
/// has already dropped the worker's state (every request's event sender, so their receivers
/// end), and nothing of it is used again: `AssertUnwindSafe` holds.
pub(crate) fn run_catching(failure: &OnceLock<String>, f: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        let reason = format!("the engine thread panicked: {}", message(&*payload));
        tracing::error!("{reason}");
        let _ = failure.set(reason);
    }
}

/// The failure to report: a recorded panic, else a thread that `finished` although no
/// shutdown was requested.
pub(crate) fn reason(
    failure: &OnceLock<String>,
    finished: bool,
    shutting_down: bool,
) -> Option<String> {
    if let Some(r) = failure.get() {
        return Some(r.clone());
    }
    (finished && !shutting_down).then(|| "the engine thread exited unexpectedly".to_string())
}

fn message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(a panic without a message)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_recorded_and_a_clean_exit_is_not() {
        let failure = OnceLock::new();
        run_catching(&failure, || {});
        assert_eq!(reason(&failure, true, true), None);
        assert_eq!(
            reason(&failure, true, false).as_deref(),
            Some("the engine thread exited unexpectedly")
        );
        assert_eq!(reason(&failure, false, false), None);
        run_catching(&failure, || panic!("boom {}", 7));
        assert_eq!(
            reason(&failure, true, true).as_deref(),
            Some("the engine thread panicked: boom 7")
        );
    }
}
