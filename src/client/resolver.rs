//! Name resolution: where a channel's server addresses come from.
//!
//! A `dns:` target (or a user's [`Resolver`]) is resolved on the channel's own resolver
//! thread, never on a caller's: the first time the channel needs addresses, and again when a
//! connection is lost or the server sends GOAWAY, at most once per
//! `min_time_between_resolutions` (30 s by default, grpcio's
//! `grpc.dns_min_time_between_resolutions_ms`). A failed lookup keeps the addresses of the
//! last good one. `ipv4:`/`ipv6:`/`unix:` targets are static and need no thread.
//!
//! The [`AddressBook`] is the meeting point: the resolver thread publishes into it, the
//! connectors read from it and ask it for fresh addresses, and the load balancer's
//! subchannels use its change counter to wake the callers waiting for a connection.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A source of server addresses for a channel: a static list, a file, your own discovery.
///
/// Give one to [`ChannelBuilder::resolver`](crate::ChannelBuilder::resolver); the target
/// string then only names the server (the `:authority` and the TLS name). A closure
/// returning the addresses is a resolver:
///
/// ```
/// use std::net::SocketAddr;
/// let addrs: Vec<SocketAddr> = vec!["127.0.0.1:50051".parse()?, "127.0.0.1:50052".parse()?];
/// let channel = grpc_sync::Channel::builder("my-service:50051")
///     .resolver(move || Ok(addrs.clone()))
///     .lb_policy("round_robin")
///     .build()?;
/// # drop(channel);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `resolve` runs on the channel's resolver thread, so it may block (read a file, ask a
/// registry); calls wait for its first answer, bounded by their deadlines.
pub trait Resolver: Send + Sync + 'static {
    /// The current addresses of the service.
    ///
    /// # Errors
    /// A message saying why there are none; the channel keeps the addresses it had, and calls
    /// that have no address fail with UNAVAILABLE carrying this message.
    fn resolve(&self) -> Result<Vec<SocketAddr>, String>;
}

impl<F> Resolver for F
where
    F: Fn() -> Result<Vec<SocketAddr>, String> + Send + Sync + 'static,
{
    fn resolve(&self) -> Result<Vec<SocketAddr>, String> {
        self()
    }
}

/// The system resolver (`getaddrinfo`) for a `host:port`.
pub(crate) struct Dns {
    pub host_port: String,
}

impl Resolver for Dns {
    fn resolve(&self) -> Result<Vec<SocketAddr>, String> {
        let addrs: Vec<SocketAddr> = self
            .host_port
            .to_socket_addrs()
            .map_err(|e| format!("DNS resolution failed for {}: {e}", self.host_port))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("{} resolved to no addresses", self.host_port));
        }
        Ok(addrs)
    }
}

/// grpcio's default for `grpc.dns_min_time_between_resolutions_ms`.
pub(crate) const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(30);

/// After a failed lookup with no addresses to fall back on, the next may come this soon
/// (growing ×1.6 per failure up to the minimum interval), so a channel whose first lookup
/// failed does not wait 30 s to try again.
const FAILED_RETRY: Duration = Duration::from_secs(1);

struct BookState {
    addrs: Option<Arc<Vec<SocketAddr>>>,
    /// The last lookup's error, if it failed.
    error: Option<String>,
    /// Bumped by every new address list.
    generation: u64,
    /// Bumped by every change anybody waiting on the book cares about (addresses, a
    /// subchannel's state).
    version: u64,
    /// A resolution was asked for and has not run yet.
    wanted: bool,
    /// When the next lookup may start.
    next_allowed: Option<Instant>,
    failures: u32,
    /// Whether a resolver thread exists (static books have none).
    dynamic: bool,
    thread_started: bool,
    shutdown: bool,
}

/// A channel's current addresses and the signal for changes to them (see the module docs).
pub(crate) struct AddressBook {
    state: Mutex<BookState>,
    changed: Condvar,
    min_interval: Duration,
    /// What the resolver thread asks; `None` for a static book.
    resolver: Mutex<Option<Arc<dyn Resolver>>>,
    /// Names the target in errors.
    name: String,
}

fn lock(m: &Mutex<BookState>) -> MutexGuard<'_, BookState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AddressBook {
    /// A book that never changes: literal addresses.
    pub fn fixed(addrs: Vec<SocketAddr>, name: String) -> Arc<AddressBook> {
        Arc::new(AddressBook {
            state: Mutex::new(BookState {
                addrs: Some(Arc::new(addrs)),
                error: None,
                generation: 1,
                version: 1,
                wanted: false,
                next_allowed: None,
                failures: 0,
                dynamic: false,
                thread_started: false,
                shutdown: false,
            }),
            changed: Condvar::new(),
            min_interval: DEFAULT_MIN_INTERVAL,
            resolver: Mutex::new(None),
            name,
        })
    }

    /// A book filled by `resolver` on its own thread, started on first need.
    pub fn resolved(
        resolver: Arc<dyn Resolver>,
        min_interval: Duration,
        name: String,
    ) -> Arc<AddressBook> {
        Arc::new(AddressBook {
            state: Mutex::new(BookState {
                addrs: None,
                error: None,
                generation: 0,
                version: 0,
                wanted: false,
                next_allowed: None,
                failures: 0,
                dynamic: true,
                thread_started: false,
                shutdown: false,
            }),
            changed: Condvar::new(),
            min_interval,
            resolver: Mutex::new(Some(resolver)),
            name,
        })
    }

    /// The current address list and its generation (`None` before the first good lookup).
    pub fn current(&self) -> (u64, Option<Arc<Vec<SocketAddr>>>) {
        let s = lock(&self.state);
        (s.generation, s.addrs.clone())
    }

    /// The change counter: compare with a later value to see whether anything changed.
    pub fn version(&self) -> u64 {
        lock(&self.state).version
    }

    /// Tells everyone waiting on the book that something changed (a subchannel connected or
    /// failed).
    pub fn bump(&self) {
        let mut s = lock(&self.state);
        s.version += 1;
        drop(s);
        self.changed.notify_all();
    }

    /// Waits until the version differs from `seen` or `until` passes (forever if `None`).
    pub fn wait_change(&self, seen: u64, until: Option<Instant>) {
        let mut s = lock(&self.state);
        while s.version == seen && !s.shutdown {
            match until {
                None => s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(u) => {
                    let left = u.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return;
                    }
                    s = self
                        .changed
                        .wait_timeout(s, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    /// Asks for fresh addresses (a connection was lost, the server said GOAWAY, or there are
    /// none yet). The lookup runs on the resolver thread once the minimum interval allows.
    pub fn request_resolution(self: &Arc<Self>) {
        let mut s = lock(&self.state);
        if !s.dynamic || s.shutdown || s.wanted {
            return;
        }
        s.wanted = true;
        let start = !s.thread_started;
        s.thread_started = true;
        drop(s);
        self.changed.notify_all();
        if start {
            self.spawn();
        }
    }

    /// The addresses, waiting for the first lookup if there has been none (bounded by
    /// `deadline`).
    ///
    /// # Errors
    /// The lookup's error when it failed and no earlier lookup succeeded, or a timeout.
    pub fn wait_addrs(
        self: &Arc<Self>,
        deadline: Option<Instant>,
    ) -> Result<Arc<Vec<SocketAddr>>, String> {
        let mut s = lock(&self.state);
        loop {
            if let Some(a) = &s.addrs {
                return Ok(a.clone());
            }
            if s.shutdown {
                return Err("the channel was closed".into());
            }
            if let Some(e) = &s.error {
                if !s.wanted {
                    // This caller saw the failure; the next one asks again.
                    let e = e.clone();
                    drop(s);
                    self.request_resolution();
                    return Err(e);
                }
            }
            if !s.wanted {
                drop(s);
                self.request_resolution();
                s = lock(&self.state);
                continue;
            }
            let seen = s.version;
            drop(s);
            self.wait_change(seen, deadline);
            s = lock(&self.state);
            if s.version == seen && deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(format!("name resolution for {} timed out", self.name));
            }
        }
    }

    /// The last lookup's error, when there are no addresses to use.
    pub fn error(&self) -> Option<String> {
        let s = lock(&self.state);
        s.addrs.is_none().then(|| s.error.clone()).flatten()
    }

    /// Stops the resolver thread.
    pub fn shutdown(&self) {
        let mut s = lock(&self.state);
        s.shutdown = true;
        drop(s);
        self.changed.notify_all();
    }

    fn spawn(self: &Arc<Self>) {
        let book = self.clone();
        let spawned = std::thread::Builder::new()
            .name("grpc-resolver".into())
            .stack_size(256 * 1024)
            .spawn(move || book.run());
        if spawned.is_err() {
            let mut s = lock(&self.state);
            s.error = Some("cannot spawn the channel's resolver thread".into());
            s.wanted = false;
            s.version += 1;
            drop(s);
            self.changed.notify_all();
        }
    }

    /// The resolver thread: one lookup per request, spaced by the minimum interval.
    fn run(self: Arc<Self>) {
        let Some(resolver) = self
            .resolver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            return;
        };
        loop {
            let mut s = lock(&self.state);
            loop {
                if s.shutdown {
                    return;
                }
                let now = Instant::now();
                match s.next_allowed {
                    _ if !s.wanted => {
                        s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
                    }
                    Some(at) if now < at => {
                        s = self
                            .changed
                            .wait_timeout(s, at - now)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    _ => break,
                }
            }
            drop(s);
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| resolver.resolve()))
                    .unwrap_or_else(|_| Err("the resolver panicked".into()));
            let mut s = lock(&self.state);
            s.wanted = false;
            match result {
                Ok(addrs) if !addrs.is_empty() => {
                    s.failures = 0;
                    s.error = None;
                    s.next_allowed = Some(Instant::now() + self.min_interval);
                    if s.addrs.as_deref() != Some(&addrs) {
                        log::debug!("grpc-sync: {} resolved to {addrs:?}", self.name);
                        s.addrs = Some(Arc::new(addrs));
                        s.generation += 1;
                    }
                }
                other => {
                    let e = match other {
                        Err(e) => e,
                        Ok(_) => format!("{} resolved to no addresses", self.name),
                    };
                    crate::logging::log_limited!(
                        crate::logging::CLIENT_CONN,
                        "grpc-sync: name resolution for {} failed: {e}{}",
                        self.name,
                        if s.addrs.is_some() {
                            "; keeping the last addresses"
                        } else {
                            ""
                        }
                    );
                    // With addresses to fall back on, wait the full interval; without, retry
                    // sooner, growing towards it.
                    let wait = if s.addrs.is_some() {
                        self.min_interval
                    } else {
                        FAILED_RETRY
                            .mul_f64(1.6f64.powi(s.failures.min(20) as i32))
                            .min(self.min_interval)
                    };
                    s.failures += 1;
                    s.error = Some(e);
                    s.next_allowed = Some(Instant::now() + wait);
                }
            }
            s.version += 1;
            drop(s);
            self.changed.notify_all();
        }
    }
}

impl std::fmt::Debug for AddressBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressBook")
            .field("name", &self.name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn resolves_on_first_need_and_keeps_old_addresses_after_a_failure() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let book = AddressBook::resolved(
            Arc::new(move || match c.fetch_add(1, Ordering::SeqCst) {
                0 => Ok(vec![addr(1)]),
                _ => Err("lookup failed".to_string()),
            }),
            Duration::ZERO,
            "test".into(),
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing before first need");
        let deadline = Instant::now() + Duration::from_secs(10);
        assert_eq!(*book.wait_addrs(Some(deadline)).unwrap(), vec![addr(1)]);
        let v = book.version();
        book.request_resolution();
        while book.version() == v {
            book.wait_change(v, Some(deadline));
            assert!(Instant::now() < deadline);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(*book.wait_addrs(Some(deadline)).unwrap(), vec![addr(1)]);
        assert_eq!(book.error(), None, "addresses are kept, so no error shows");
        book.shutdown();
    }

    #[test]
    fn a_first_failure_is_reported_to_the_waiting_caller() {
        let book = AddressBook::resolved(
            Arc::new(|| Err("no such host".to_string())),
            Duration::from_secs(30),
            "test".into(),
        );
        let deadline = Some(Instant::now() + Duration::from_secs(10));
        assert_eq!(book.wait_addrs(deadline).unwrap_err(), "no such host");
        book.shutdown();
    }

    #[test]
    fn lookups_are_spaced_by_the_minimum_interval() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let book = AddressBook::resolved(
            Arc::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(vec![addr(2)])
            }),
            Duration::from_secs(3600),
            "test".into(),
        );
        let deadline = Some(Instant::now() + Duration::from_secs(10));
        book.wait_addrs(deadline).unwrap();
        for _ in 0..100 {
            book.request_resolution();
        }
        // The thread is parked until the interval passes: still one lookup.
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        book.shutdown();
    }

    #[test]
    fn a_static_book_has_no_thread_and_no_errors() {
        let book = AddressBook::fixed(vec![addr(3)], "ipv4:127.0.0.1:3".into());
        book.request_resolution();
        assert_eq!(*book.wait_addrs(None).unwrap(), vec![addr(3)]);
        assert_eq!(book.current().0, 1);
    }

    #[test]
    fn dns_names_resolve() {
        let dns = Dns {
            host_port: "127.0.0.1:80".into(),
        };
        assert_eq!(dns.resolve().unwrap(), vec![addr(80)]);
        let bad = Dns {
            host_port: "no-such-host.invalid:80".into(),
        };
        assert!(bad.resolve().unwrap_err().contains("no-such-host.invalid"));
    }
}
