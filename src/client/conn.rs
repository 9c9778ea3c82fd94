//! The channel's connection: lazy connect, reconnect with the gRPC connection-backoff
//! algorithm, and the connectivity state.

use std::io;
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::client::proxy::{self, Route};
use crate::client::resolver::AddressBook;
use crate::client::target::Target;
use crate::h2::conn::{Connection, Role};
use crate::h2::settings::Config as H2Config;
use crate::status::Status;
use crate::transport::driver::{lock, run_reader, Shared};
use crate::transport::tls;

/// A channel's TLS settings: the rustls configuration and the name to verify the server as.
#[derive(Clone)]
pub(crate) struct ClientTls {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: String,
}

/// The connectivity state of a channel (gRPC's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectivityState {
    /// No connection and no attempt under way; the next call connects.
    Idle,
    /// Connecting now.
    Connecting,
    /// Connected.
    Ready,
    /// The last attempt failed; waiting for the back-off to pass.
    TransientFailure,
    /// The channel was closed.
    Shutdown,
}

/// Back-off parameters (gRPC connection-backoff spec defaults).
#[derive(Debug, Clone, Copy)]
pub struct BackoffConfig {
    /// Delay after the first failure (1 s).
    pub initial: Duration,
    /// Growth factor per failure (1.6).
    pub multiplier: f64,
    /// Random spread, as a fraction of the delay (0.2).
    pub jitter: f64,
    /// Upper bound on the delay (120 s).
    pub max: Duration,
    /// Shortest time one connection attempt is given (20 s).
    pub min_connect_timeout: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_secs(1),
            multiplier: 1.6,
            jitter: 0.2,
            max: Duration::from_secs(120),
            min_connect_timeout: Duration::from_secs(20),
        }
    }
}

/// The back-off state between failed attempts.
#[derive(Debug)]
pub(crate) struct Backoff {
    cfg: BackoffConfig,
    current: Duration,
    rng: u64,
}

impl Backoff {
    pub fn new(cfg: BackoffConfig) -> Backoff {
        // Seed from the clock and this value's address: enough to de-synchronise clients.
        let seed = Instant::now().elapsed().as_nanos() as u64
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0))
            | 1;
        Backoff {
            cfg,
            current: cfg.initial,
            rng: seed,
        }
    }

    /// The delay before the next attempt: the current back-off with jitter, then grows it.
    pub fn next_delay(&mut self) -> Duration {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
        let base = self.current.as_secs_f64();
        let spread = base * self.cfg.jitter * (2.0 * r - 1.0);
        let delay = Duration::from_secs_f64((base + spread).max(0.0));
        let grown = (base * self.cfg.multiplier).min(self.cfg.max.as_secs_f64());
        self.current = Duration::from_secs_f64(grown);
        delay
    }

    pub fn reset(&mut self) {
        self.current = self.cfg.initial;
    }

    pub fn min_connect_timeout(&self) -> Duration {
        self.cfg.min_connect_timeout
    }
}

/// Where one connection attempt goes.
#[derive(Clone)]
enum Dial {
    /// Straight to this address.
    Direct(std::net::SocketAddr),
    /// Through the proxy to this `host:port`.
    Tunnel(String),
}

impl std::fmt::Display for Dial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dial::Direct(a) => write!(f, "{a}"),
            Dial::Tunnel(t) => write!(f, "{t} (through the proxy)"),
        }
    }
}

struct Slot {
    conn: Option<Arc<Shared>>,
    connecting: bool,
    backoff: Backoff,
    retry_at: Option<Instant>,
    last_error: Option<String>,
    shutdown: bool,
}

/// Owns the channel's current connection and decides when to make a new one.
pub(crate) struct Connector {
    target: Target,
    /// Where the addresses come from (the resolver's output, or the literal list).
    book: Arc<AddressBook>,
    /// A subchannel of a `round_robin` channel: only this address.
    only: Option<std::net::SocketAddr>,
    /// The addresses came from a user's resolver: each is checked against `no_proxy` on its
    /// own (a `dns:` name is checked once, by name).
    custom_resolver: bool,
    h2: H2Config,
    backoff_cfg: BackoffConfig,
    /// The keepalive interval for the next connection, in milliseconds (0: off): the
    /// configured one, doubled each time a server answered our pings with GOAWAY
    /// ENHANCE_YOUR_CALM `too_many_pings` (as grpc-go and the C core do).
    keepalive_ms: std::sync::atomic::AtomicU64,
    tls: Option<ClientTls>,
    /// A local channel (`ChannelBuilder::local`): TCP only to loopback addresses.
    loopback_only: bool,
    /// The HTTP CONNECT proxy and the hosts reached without it.
    proxy: Option<Route>,
    slot: Mutex<Slot>,
    changed: Condvar,
}

/// Whether the server sent GOAWAY ENHANCE_YOUR_CALM `too_many_pings`.
fn too_many_pings(shared: &Shared) -> bool {
    let st = shared.lock();
    matches!(st.goaway, Some((_, r)) if r == crate::h2::error::Reason::ENHANCE_YOUR_CALM)
        && st.goaway_debug.as_deref() == Some(&b"too_many_pings"[..])
}

pub(crate) fn usable(shared: &Shared) -> bool {
    shared.lock().takes_new_streams()
}

impl Connector {
    pub fn new(
        target: Target,
        book: Arc<AddressBook>,
        h2: H2Config,
        backoff: BackoffConfig,
    ) -> Connector {
        Connector {
            target,
            book,
            only: None,
            custom_resolver: false,
            backoff_cfg: backoff,
            keepalive_ms: std::sync::atomic::AtomicU64::new(h2.keepalive.time.map_or(0, |t| {
                u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)
            })),
            h2,
            tls: None,
            loopback_only: false,
            proxy: None,
            slot: Mutex::new(Slot {
                conn: None,
                connecting: false,
                backoff: Backoff::new(backoff),
                retry_at: None,
                last_error: None,
                shutdown: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// Makes every connection of this connector a TLS one.
    pub fn with_tls(mut self, tls: ClientTls) -> Connector {
        self.tls = Some(tls);
        self
    }

    /// Connects only to loopback addresses (and Unix sockets): a local channel, which may
    /// carry call credentials without TLS. It never goes through a proxy.
    pub fn loopback_only(mut self) -> Connector {
        self.loopback_only = true;
        self.proxy = None;
        self
    }

    /// Connects through `route`'s proxy, for the hosts its `no_proxy` list leaves to it
    /// (never for a local channel).
    pub fn with_proxy(mut self, route: Option<Route>) -> Connector {
        if !self.loopback_only {
            self.proxy = route;
        }
        self
    }

    /// Marks the book as fed by a user's [`Resolver`](crate::client::Resolver).
    pub fn with_custom_resolver(mut self) -> Connector {
        self.custom_resolver = true;
        self
    }

    /// A connector with the same settings for one address only: a subchannel of a
    /// `round_robin` channel, with its own connection, state and back-off.
    pub fn subchannel(&self, addr: std::net::SocketAddr) -> Connector {
        let mut h2 = self.h2.clone();
        let ms = self.keepalive_ms.load(std::sync::atomic::Ordering::Relaxed);
        h2.keepalive.time = (ms > 0).then(|| Duration::from_millis(ms));
        let mut c = Connector::new(self.target.clone(), self.book.clone(), h2, self.backoff_cfg);
        c.only = Some(addr);
        c.custom_resolver = self.custom_resolver;
        c.tls = self.tls.clone();
        c.loopback_only = self.loopback_only;
        c.proxy = self.proxy.clone();
        c
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn book(&self) -> &Arc<AddressBook> {
        &self.book
    }

    /// Whether every connection goes through the proxy to the target's name (which the
    /// proxy resolves): then there is one address to balance over, the proxy.
    pub fn tunnels_name(&self) -> bool {
        match &self.target {
            Target::Dns { host_port } if !self.custom_resolver => {
                let port = host_port
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse().ok())
                    .unwrap_or(443);
                self.proxy
                    .as_ref()
                    .is_some_and(|route| route.applies_to(&self.target.host(), port))
            }
            _ => false,
        }
    }

    /// Gives up on `conn`, which connected but never became usable, as on a failed attempt:
    /// the next one waits for the back-off.
    pub fn discard(&self, conn: &Arc<Shared>, error: String) {
        conn.close(crate::transport::driver::ConnLost::Closed);
        let mut s = lock(&self.slot);
        if s.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            s.conn = None;
        }
        let delay = s.backoff.next_delay();
        s.retry_at = Some(Instant::now() + delay);
        s.last_error = Some(error);
        drop(s);
        self.book.request_resolution();
    }

    /// The shortest time one connection attempt is given.
    pub fn min_connect_timeout(&self) -> Duration {
        self.backoff_cfg.min_connect_timeout
    }

    /// The current connection if it is usable; never connects.
    pub fn current(&self) -> Option<Arc<Shared>> {
        let s = lock(&self.slot);
        s.conn.as_ref().filter(|c| usable(c)).cloned()
    }

    /// When the back-off after the last failed attempt ends, and that attempt's error.
    pub fn backoff_until(&self) -> (Option<Instant>, Option<String>) {
        let s = lock(&self.slot);
        (s.retry_at, s.last_error.clone())
    }

    /// The current state; with `try_to_connect`, an idle channel starts connecting (on this
    /// thread, bounded by the minimum connect timeout).
    pub fn state(&self, try_to_connect: bool) -> ConnectivityState {
        let s = lock(&self.slot);
        if s.shutdown {
            return ConnectivityState::Shutdown;
        }
        if s.connecting {
            return ConnectivityState::Connecting;
        }
        if let Some(c) = &s.conn {
            if usable(c) {
                return ConnectivityState::Ready;
            }
        }
        if let Some(at) = s.retry_at {
            if Instant::now() < at {
                return ConnectivityState::TransientFailure;
            }
        }
        drop(s);
        if try_to_connect {
            let deadline = Instant::now() + Duration::from_secs(20);
            if self.get(false, Some(deadline)).is_ok() {
                return ConnectivityState::Ready;
            }
            return self.state(false);
        }
        ConnectivityState::Idle
    }

    /// A usable connection: the current one, or a new one.
    ///
    /// Fails fast with UNAVAILABLE while in back-off unless `wait_for_ready`; then waits for
    /// the next attempt, until `deadline`.
    pub fn get(
        &self,
        wait_for_ready: bool,
        deadline: Option<Instant>,
    ) -> Result<Arc<Shared>, Status> {
        let mut s = lock(&self.slot);
        loop {
            if s.shutdown {
                return Err(Status::cancelled("the channel was closed"));
            }
            if let Some(c) = &s.conn {
                if usable(c) {
                    return Ok(c.clone());
                }
                // Lost or going away: the next call connects anew, without back-off.
                if too_many_pings(c) {
                    use std::sync::atomic::Ordering;
                    let ms = self.keepalive_ms.load(Ordering::Relaxed);
                    self.keepalive_ms
                        .store(ms.saturating_mul(2), Ordering::Relaxed);
                    log::warn!(
                        "grpc-sync: the server at {} said too_many_pings: the next connection \
                         pings every {} ms (twice the last keepalive time)",
                        self.name(),
                        ms.saturating_mul(2)
                    );
                }
                // A lost connection or a GOAWAY may mean the servers moved.
                self.book.request_resolution();
                s.conn = None;
            }
            let now = Instant::now();
            if let Some(d) = deadline {
                if now >= d {
                    return Err(Status::deadline_exceeded(match &s.last_error {
                        Some(e) => format!(
                            "Deadline Exceeded while waiting for a connection; the last \
                             attempt failed: {e}"
                        ),
                        None => "Deadline Exceeded while waiting for a connection".into(),
                    }));
                }
            }
            let wait_until = if s.connecting {
                Some(deadline)
            } else {
                match s.retry_at {
                    Some(at) if now < at => {
                        if !wait_for_ready {
                            return Err(Status::unavailable(
                                s.last_error
                                    .clone()
                                    .unwrap_or_else(|| "connection failed".into()),
                            ));
                        }
                        Some(Some(match deadline {
                            Some(d) => d.min(at),
                            None => at,
                        }))
                    }
                    _ => None,
                }
            };
            if let Some(until) = wait_until {
                s = match until {
                    None => self.changed.wait(s).unwrap_or_else(|e| e.into_inner()),
                    Some(u) => {
                        self.changed
                            .wait_timeout(s, u.saturating_duration_since(now))
                            .unwrap_or_else(|e| e.into_inner())
                            .0
                    }
                };
                continue;
            }
            s.connecting = true;
            let connect_deadline = {
                let min = now + s.backoff.min_connect_timeout();
                match deadline {
                    Some(d) => d.min(min),
                    None => min,
                }
            };
            drop(s);
            let res = self.connect(connect_deadline);
            s = lock(&self.slot);
            s.connecting = false;
            self.changed.notify_all();
            match res {
                Ok(c) => {
                    s.backoff.reset();
                    s.retry_at = None;
                    s.last_error = None;
                    if s.shutdown {
                        c.close(crate::transport::driver::ConnLost::Closed);
                        continue;
                    }
                    s.conn = Some(c.clone());
                    return Ok(c);
                }
                Err(e) => {
                    let delay = s.backoff.next_delay();
                    crate::logging::log_limited!(
                        crate::logging::CLIENT_CONN,
                        "grpc-sync: cannot connect to {}: {e}; next attempt in {delay:.1?}",
                        self.name()
                    );
                    s.retry_at = Some(Instant::now() + delay);
                    s.last_error = Some(e.clone());
                    self.book.request_resolution();
                    if !wait_for_ready {
                        return Err(Status::unavailable(e));
                    }
                }
            }
        }
    }

    /// Closes the channel: no new calls; the connection closes once its calls are done.
    pub fn shutdown(&self) {
        let mut s = lock(&self.slot);
        s.shutdown = true;
        if let Some(c) = s.conn.take() {
            c.close_when_idle();
        }
        self.changed.notify_all();
    }

    /// One connection attempt over every address of the target.
    fn connect(&self, deadline: Instant) -> Result<Arc<Shared>, String> {
        #[cfg(unix)]
        if let (Target::Unix(path), None) = (&self.target, &self.tls) {
            let sock = std::os::unix::net::UnixStream::connect(path)
                .map_err(|e| format!("failed to connect to unix:{path}: {e}"))?;
            let (rd, wr, closer) = (
                sock.try_clone().map_err(|e| e.to_string())?,
                sock.try_clone().map_err(|e| e.to_string())?,
                sock,
            );
            return Ok(self.start(
                format!("server unix:{path}"),
                Box::new(rd),
                Box::new(wr),
                true,
                Box::new(move || {
                    let _ = closer.shutdown(std::net::Shutdown::Both);
                }),
            ));
        }
        if let (Target::Unix(path), Some(_)) = (&self.target, &self.tls) {
            return Err(format!(
                "TLS over Unix domain sockets is not supported (unix:{path}): use an insecure channel"
            ));
        }
        let mut errors = Vec::new();
        let mut dials = self.dials(deadline)?;
        if self.loopback_only {
            dials.retain(|dial| match dial {
                Dial::Direct(a) if !a.ip().to_canonical().is_loopback() => {
                    errors.push(format!(
                        "{a}: not a loopback address, and a local channel (ChannelBuilder::local) \
                         connects only to loopback addresses or Unix sockets"
                    ));
                    false
                }
                _ => true,
            });
        }
        let single = dials.len() == 1;
        let mut race = Race::new(dials, self.proxy.clone(), deadline);
        while let Some((dial, opened)) = race.next() {
            let (sock, first) = match opened {
                Ok(opened) => opened,
                // Through a proxy, its own words name it and the target.
                Err(e) if single && matches!(dial, Dial::Tunnel(_)) => return Err(e),
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            match self.establish(sock, first, format!("server {dial}"), deadline) {
                Ok(shared) => return Ok(shared),
                Err(e) => errors.push(format!("{dial}: {e}")),
            }
        }
        errors.extend(race.timed_out());
        if self.only.is_some() {
            // A subchannel: its one address names itself in the error.
            return Err(errors.join("; "));
        }
        Err(format!(
            "failed to connect to all addresses of {}; {}",
            self.target,
            errors.join("; ")
        ))
    }

    /// The target, or for a subchannel its address and the target it belongs to (log lines).
    fn name(&self) -> String {
        match self.only {
            Some(a) => format!("{a} (a subchannel of {})", self.target),
            None => self.target.to_string(),
        }
    }

    /// Where this attempt connects: a tunnel through the proxy to the target's name, unless
    /// `no_proxy` names the host (the proxy resolves it: the client may have no DNS for it);
    /// else the addresses the resolver gave (one, for a subchannel), each through the proxy
    /// if it applies to that address.
    fn dials(&self, deadline: Instant) -> Result<Vec<Dial>, String> {
        let by_address = |a: std::net::SocketAddr| {
            let proxied = self
                .proxy
                .as_ref()
                .is_some_and(|route| route.applies_to(&a.ip().to_string(), a.port()));
            // A resolved name was checked against no_proxy by name already.
            let by_ip = self.custom_resolver || !matches!(self.target, Target::Dns { .. });
            match proxied && by_ip {
                true => Dial::Tunnel(a.to_string()),
                false => Dial::Direct(a),
            }
        };
        if let Some(a) = self.only {
            return Ok(vec![by_address(a)]);
        }
        if let Target::Dns { host_port } = &self.target {
            if self.tunnels_name() {
                return Ok(vec![Dial::Tunnel(host_port.clone())]);
            }
        }
        let addrs = self.book.wait_addrs(Some(deadline))?;
        Ok(addrs.iter().copied().map(by_address).collect())
    }

    /// TLS (if the channel has it) and then HTTP/2 on a connected socket; `first` holds the
    /// server's bytes a proxy's reply came with.
    fn establish(
        &self,
        sock: TcpStream,
        first: Vec<u8>,
        peer: String,
        deadline: Instant,
    ) -> Result<Arc<Shared>, String> {
        let _ = sock.set_nodelay(true);
        if self.tls.is_some() {
            return self.start_tls(sock, &first, peer, deadline);
        }
        let (rd, wr) = match (sock.try_clone(), sock.try_clone()) {
            (Ok(r), Ok(w)) => (r, w),
            (Err(e), _) | (_, Err(e)) => return Err(e.to_string()),
        };
        Ok(self.start(
            peer,
            Box::new(tls::PlainClientReader::new(proxy::Prefixed::new(first, rd))),
            Box::new(wr),
            true,
            Box::new(move || {
                let _ = sock.shutdown(std::net::Shutdown::Both);
            }),
        ))
    }

    /// The TLS handshake on a connected socket, bounded by `deadline` and the TLS handshake
    /// timeout, then the HTTP/2 connection over it.
    fn start_tls(
        &self,
        sock: TcpStream,
        first: &[u8],
        peer: String,
        deadline: Instant,
    ) -> Result<Arc<Shared>, String> {
        let Some(tls) = &self.tls else {
            return Err("no TLS configuration".into());
        };
        let timeout = deadline
            .saturating_duration_since(Instant::now())
            .min(tls::DEFAULT_HANDSHAKE_TIMEOUT);
        let est = tls::connect(&tls.config, &tls.server_name, &sock, first, timeout)
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        Ok(self.start(
            format!("{peer} (TLS)"),
            Box::new(est.reader),
            Box::new(est.writer),
            false,
            Box::new(move || {
                let _ = sock.shutdown(std::net::Shutdown::Both);
            }),
        ))
    }

    /// Starts HTTP/2 on a connected socket; `peer` names the server in log lines.
    fn start(
        &self,
        peer: String,
        rd: Box<dyn crate::transport::driver::ReadHalf>,
        wr: Box<dyn io::Write + Send>,
        exact: bool,
        closer: Box<dyn Fn() + Send + Sync>,
    ) -> Arc<Shared> {
        let mut config = self.h2.clone();
        let ms = self.keepalive_ms.load(std::sync::atomic::Ordering::Relaxed);
        config.keepalive.time = (ms > 0).then(|| Duration::from_millis(ms));
        let conn = Connection::new(Role::Client, config);
        let shared = Shared::with_closer(conn, wr, exact, closer);
        log::debug!("grpc-sync: connected to {peer}");
        shared.lock().peer = peer;
        let s2 = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("grpc-client-reader".into())
            .stack_size(256 * 1024)
            .spawn(move || run_reader(s2, rd));
        if spawned.is_err() {
            shared.close(crate::transport::driver::ConnLost::Io(
                "cannot spawn the connection's reader thread".into(),
            ));
        }
        shared
    }
}

/// gRFC A61's "connection attempt delay": the next address is tried when the current
/// attempt has not finished after this long, without giving up on the current one.
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

type Opened = Result<(TcpStream, Vec<u8>), String>;

/// Opens TCP connections (or proxy tunnels) to a list of addresses in order, staggered as
/// pick_first does (gRFC A61): an attempt starts when the one before failed or has run for
/// [`ATTEMPT_DELAY`]; results come back in the order they finish. One address is dialled on
/// the caller's thread; more get a short-lived thread per attempt, and a socket that
/// connects after another won is closed as it arrives.
struct Race {
    queue: std::collections::VecDeque<Dial>,
    proxy: Option<Route>,
    deadline: Instant,
    /// Indices into `started` of the attempts not finished.
    in_flight: Vec<usize>,
    last_start: Instant,
    tx: crossbeam_channel::Sender<(usize, Opened)>,
    rx: crossbeam_channel::Receiver<(usize, Opened)>,
    started: Vec<Dial>,
}

fn open_dial(dial: &Dial, proxy: Option<&Route>, deadline: Instant) -> Opened {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(format!("{dial}: connect timed out"));
    }
    match (dial, proxy) {
        (Dial::Direct(a), _) => TcpStream::connect_timeout(a, left)
            .map(|sock| (sock, Vec::new()))
            .map_err(|e| format!("{a}: {e}")),
        (Dial::Tunnel(authority), Some(route)) => proxy::tunnel(&route.proxy, authority, deadline),
        (Dial::Tunnel(_), None) => Err("no proxy".to_string()),
    }
}

impl Race {
    fn new(dials: Vec<Dial>, proxy: Option<Route>, deadline: Instant) -> Race {
        let (tx, rx) = crossbeam_channel::unbounded();
        Race {
            queue: dials.into(),
            proxy,
            deadline,
            in_flight: Vec::new(),
            last_start: Instant::now(),
            tx,
            rx,
            started: Vec::new(),
        }
    }

    /// The next finished attempt; `None` when every address was tried or the deadline passed.
    fn next(&mut self) -> Option<(Dial, Opened)> {
        loop {
            if self.in_flight.is_empty() {
                let dial = self.queue.pop_front()?;
                if self.queue.is_empty() && self.started.is_empty() {
                    // The only address: no thread needed.
                    let opened = open_dial(&dial, self.proxy.as_ref(), self.deadline);
                    self.started.push(dial.clone());
                    return Some((dial, opened));
                }
                self.launch(dial);
                continue;
            }
            let until = match self.queue.is_empty() {
                true => self.deadline,
                false => (self.last_start + ATTEMPT_DELAY).min(self.deadline),
            };
            match self.rx.recv_deadline(until) {
                Ok((i, opened)) => {
                    let dial = self.started[i].clone();
                    self.in_flight.retain(|&j| j != i);
                    if opened.is_err() {
                        if let Some(next) = self.queue.pop_front() {
                            self.launch(next);
                        }
                    }
                    return Some((dial, opened));
                }
                Err(_) if Instant::now() >= self.deadline => return None,
                Err(_) => {
                    if let Some(next) = self.queue.pop_front() {
                        self.launch(next);
                    }
                }
            }
        }
    }

    fn launch(&mut self, dial: Dial) {
        let i = self.started.len();
        self.started.push(dial.clone());
        self.in_flight.push(i);
        self.last_start = Instant::now();
        let (tx, proxy, deadline) = (self.tx.clone(), self.proxy.clone(), self.deadline);
        let spawned = std::thread::Builder::new()
            .name("grpc-connect".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                // A send to a race already decided drops (closes) the socket.
                let _ = tx.send((i, open_dial(&dial, proxy.as_ref(), deadline)));
            });
        if spawned.is_err() {
            let _ = self
                .tx
                .send((i, Err("cannot spawn a connect thread".to_string())));
        }
    }

    /// The attempts still under way when the deadline passed, as errors.
    fn timed_out(&self) -> Vec<String> {
        let mut left: Vec<String> = self
            .in_flight
            .iter()
            .map(|&i| format!("{}: connect timed out", self.started[i]))
            .collect();
        left.extend(
            self.queue
                .iter()
                .map(|d| format!("{d}: not tried before the deadline")),
        );
        left
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Server, ServerContext, Service, Status};

    #[derive(Clone, PartialEq, prost::Message)]
    struct Empty {}

    #[test]
    fn a_local_channel_never_uses_a_proxy() {
        let env = |name: &str| (name == "https_proxy").then(|| "http://127.0.0.1:9".to_string());
        let route = || proxy::route(&proxy::ProxyOptions::default(), &env).unwrap();
        assert!(route().is_some(), "the environment names a proxy");
        let target = || Target::parse("127.0.0.1:1").unwrap();
        let book = || AddressBook::fixed(vec![([127, 0, 0, 1], 1).into()], "t".into());
        let new = || {
            Connector::new(
                target(),
                book(),
                H2Config::default(),
                BackoffConfig::default(),
            )
        };
        assert!(new().with_proxy(route()).loopback_only().proxy.is_none());
        assert!(new().loopback_only().with_proxy(route()).proxy.is_none());
        assert!(new().with_proxy(route()).proxy.is_some());
    }

    #[test]
    fn too_many_pings_doubles_the_keepalive_time_of_the_next_connection() {
        // Our server's default enforcement against a client pinging every 50 ms without calls:
        // GOAWAY ENHANCE_YOUR_CALM too_many_pings, and the next connection pings half as often.
        let server = Server::builder()
            .add_service(
                Service::builder("t.S")
                    .unary("M", |m: Empty, _: &ServerContext| Ok::<_, Status>(m))
                    .build(),
            )
            .build();
        let port = server.add_insecure_port("127.0.0.1:0").unwrap();
        server.start().unwrap();
        let mut h2 = H2Config::default();
        h2.keepalive.time = Some(Duration::from_millis(50));
        h2.keepalive.permit_without_calls = true;
        h2.keepalive.max_pings_without_data = 0;
        let target = Target::parse(&format!("127.0.0.1:{port}")).unwrap();
        let book = AddressBook::fixed(vec![([127, 0, 0, 1], port).into()], "t".into());
        let c = Connector::new(target, book, h2, BackoffConfig::default());
        let deadline = Instant::now() + Duration::from_secs(10);
        let first = c.get(false, Some(deadline)).unwrap();
        while !too_many_pings(&first) {
            assert!(
                Instant::now() < deadline,
                "no too_many_pings from the server"
            );
            std::thread::yield_now();
        }
        let second = c.get(false, Some(deadline)).unwrap();
        assert!(!Arc::ptr_eq(&first, &second), "a new connection");
        assert_eq!(
            second.lock().conn.config().keepalive.time,
            Some(Duration::from_millis(100))
        );
        drop(server);
    }
}
