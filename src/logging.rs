//! What the library logs, and a limiter for the lines a remote peer can cause at will.
//!
//! Lines go through the [`log`] facade with the default targets (the module paths:
//! `grpc_sync::server::conn`, `grpc_sync::transport::driver`, …), so `RUST_LOG=grpc_sync=debug`
//! with `env_logger` shows all of them. Nothing is logged per request; the levels:
//!
//! - `error`: a handler panicked (its client got UNKNOWN); an I/O loop's poller failed;
//! - `warn`: a TLS handshake failed on a server; a GOAWAY with an error code was sent (the
//!   peer broke the protocol, flooded us, pinged too often, stopped reading) or received; a
//!   client could not connect, or its keepalive PING went unanswered, or the server told it
//!   `too_many_pings`; accepting failed (out of file descriptors);
//! - `debug`: connections opened and closed, and why; a peer's stream-level protocol errors;
//!   what a plaintext port was sent instead of HTTP/2 (a TLS ClientHello, HTTP/1); a server's
//!   keepalive timeout (a client that vanished); a graceful GOAWAY.
//!
//! Lines a peer can cause as often as it likes (a port scanner's failed handshakes, a flood
//! of broken connections, a request that makes a handler panic) go through a [`Limiter`] per
//! kind: at most [`PER_SECOND`] lines a second, then one line saying how many were left out
//! (when the next line of that kind comes in a later second, or when a server stops).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use log::Level;

/// Lines of one kind logged per second, at most.
pub(crate) const PER_SECOND: u32 = 10;

/// Server: failed TLS handshakes.
pub(crate) static TLS_HANDSHAKE: Limiter = Limiter::new("failed TLS handshakes", Level::Warn);
/// GOAWAYs with an error code that we sent (the peer broke the protocol or misbehaved).
pub(crate) static GOAWAY_SENT: Limiter = Limiter::new("GOAWAYs sent", Level::Warn);
/// GOAWAYs with an error code that the peer sent.
pub(crate) static GOAWAY_RECEIVED: Limiter = Limiter::new("GOAWAYs received", Level::Warn);
/// Client: failed connection attempts and keepalive timeouts.
pub(crate) static CLIENT_CONN: Limiter = Limiter::new("client connection failures", Level::Warn);
/// Server: handler panics.
pub(crate) static HANDLER_PANIC: Limiter = Limiter::new("handler panics", Level::Error);

/// Logs through a [`Limiter`] at its level: `log_limited!(logging::TLS_HANDSHAKE, "…", args)`.
///
/// The level check comes first (with the caller's module as the target, as `log!` does), so
/// a disabled level costs neither the limiter nor the formatting.
macro_rules! log_limited {
    ($limiter:expr, $($arg:tt)+) => {{
        let limiter: &$crate::logging::Limiter = &$limiter;
        if log::log_enabled!(limiter.level()) && limiter.allow() {
            log::log!(limiter.level(), $($arg)+);
        }
    }};
}
pub(crate) use log_limited;

/// Seconds since the first use, plus one (0 means "no window yet").
fn now_secs() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_secs() + 1
}

/// At most [`PER_SECOND`] lines a second for one kind of event, then a count of the rest.
///
/// Lock-free: a window (the current second), a count in it and the number left out. Two
/// threads crossing into a new second at once may let a line or two more through; the bound
/// still holds within a small factor.
pub(crate) struct Limiter {
    kind: &'static str,
    level: Level,
    window: AtomicU64,
    count: AtomicU32,
    suppressed: AtomicU64,
    /// The window in which lines were first left out, for the summary.
    suppressed_since: AtomicU64,
}

impl Limiter {
    /// A limiter for lines about `kind` (plural: "failed TLS handshakes") at `level`.
    pub(crate) const fn new(kind: &'static str, level: Level) -> Limiter {
        Limiter {
            kind,
            level,
            window: AtomicU64::new(0),
            count: AtomicU32::new(0),
            suppressed: AtomicU64::new(0),
            suppressed_since: AtomicU64::new(0),
        }
    }

    /// The level its lines are logged at.
    pub(crate) fn level(&self) -> Level {
        self.level
    }

    /// Whether one more line may be logged now. Entering a new second first logs how many
    /// lines the earlier ones left out, if any.
    pub(crate) fn allow(&self) -> bool {
        let now = now_secs();
        let window = self.window.load(Ordering::Relaxed);
        if window != now
            && self
                .window
                .compare_exchange(window, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.count.store(0, Ordering::Relaxed);
            self.report(now);
        }
        if self.count.fetch_add(1, Ordering::Relaxed) < PER_SECOND {
            return true;
        }
        if self.suppressed.fetch_add(1, Ordering::Relaxed) == 0 {
            self.suppressed_since.store(now, Ordering::Relaxed);
        }
        false
    }

    /// Logs the count of lines left out, if any, and starts counting again.
    fn report(&self, now: u64) {
        let n = self.suppressed.swap(0, Ordering::Relaxed);
        if n == 0 {
            return;
        }
        let since = self.suppressed_since.load(Ordering::Relaxed);
        let secs = now.saturating_sub(since).max(1);
        log::log!(
            self.level,
            "grpc-sync: {n} more {} were not logged in the last {secs} s (at most {PER_SECOND} \
             lines a second of each kind)",
            self.kind
        );
    }
}

/// Logs the counts of lines the limiters left out so far (a server is stopping: there may be
/// no later line to carry them).
pub(crate) fn flush_suppressed() {
    let now = now_secs();
    // Listed here, not in a `const`: Rust 1.85 (the rust-version) refuses a `const` that
    // refers to statics with interior mutability.
    for l in [
        &TLS_HANDSHAKE,
        &GOAWAY_SENT,
        &GOAWAY_RECEIVED,
        &CLIENT_CONN,
        &HANDLER_PANIC,
    ] {
        l.report(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_cut_to_the_limit_and_counted() {
        let l = Limiter::new("test lines", Level::Warn);
        let allowed = (0..1000).filter(|_| l.allow()).count();
        let per_second = PER_SECOND as usize;
        // The burst may straddle a second boundary: two windows' worth at most.
        assert!(
            (per_second..=2 * per_second).contains(&allowed),
            "{allowed}"
        );
        let left_out = l.suppressed.load(Ordering::Relaxed) as usize;
        if allowed == per_second {
            assert_eq!(left_out, 1000 - per_second);
        }
        l.report(now_secs());
        assert_eq!(l.suppressed.load(Ordering::Relaxed), 0);
    }
}
