//! The thread-pool gRPC server: the Rust twin of
//! `grpc.server(futures.ThreadPoolExecutor(max_workers=10))`.
//!
//! ```no_run
//! use grpc_sync::{Server, Service, ServerContext, Status};
//! # #[derive(Clone, PartialEq, grpc_sync::prost::Message)] struct Msg { #[prost(string, tag = "1")] s: String }
//! let server = Server::builder()
//!     .max_workers(10)
//!     .add_service(
//!         Service::builder("demo.Echo")
//!             .unary("Echo", |m: Msg, _: &ServerContext| Ok::<_, Status>(m)),
//!     )
//!     .build();
//! let port = server.add_insecure_port("[::]:50051")?;
//! server.start()?;
//! println!("listening on {port}");
//! server.wait_for_termination(None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Threads: `io_threads` I/O loops (default: one per core) poll every connection's
//! non-blocking socket, accept, run TLS handshakes, decode requests and answer protocol-level
//! errors; exactly `max_workers` handler threads run handlers, at most `max_workers` at once.
//! A unary request reaches a handler only once its whole message has arrived. A quick unary
//! handler runs on the I/O thread itself when a worker permit is free (no hand-off; see
//! [`ServerBuilder::inline_unary`]), others on a worker. No thread ever waits on a socket: the
//! thread that ran the handler hands the response to its connection, which writes what the
//! socket and the client's window take now and leaves the rest to the I/O loop.
//!
//! Interceptors ([`ServerBuilder::intercept`], [`ServerInterceptor`]) run around every call of
//! every service: before its handler, where the handler would run, and once when it ends.

pub(crate) mod conn;
pub mod context;
pub(crate) mod dispatch;
mod handoff;
pub mod interceptor;
pub(crate) mod io;
pub mod pool;
pub mod service;
pub mod sink;

use std::collections::{HashMap, HashSet};
use std::io as stdio;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use self::io::{IoLoops, ListenSock, Listener};

use crate::h2::error::Reason;
use crate::h2::settings::Config as H2Config;
use crate::transport::driver::{lock, ConnLost, Shared};
use crate::transport::tls::{HandshakeError, HandshakeHook, ServerCredentials};

pub use context::ServerContext;
pub use interceptor::{CallEnd, CallStart, Extensions, MethodKind, ServerInterceptor};
pub use pool::{PoolStats, QUEUE_WAIT_BUCKETS_US};
pub use service::{
    BidiStreamingHandler, ClientStreamingHandler, DetachedStreamingHandler, ResponseStream,
    ServerStreamingHandler, Service, ServiceBuilder, UnaryHandler,
};
pub use sink::{ResponseSink, TrySendError};

use service::Method;

/// Server-wide settings, fixed at `build`.
#[derive(Clone, Debug)]
pub(crate) struct ServerConfig {
    pub max_workers: usize,
    pub max_concurrent_rpcs: Option<usize>,
    pub max_receive_message_length: usize,
    pub max_send_message_length: usize,
    pub max_streaming_rpcs_per_connection: usize,
    pub handshake_timeout: Duration,
    /// Default response coding, used when the client accepts it.
    pub compression: Option<crate::compression::CompressionEncoding>,
    pub h2: H2Config,
    /// Told about failed TLS handshakes (secure ports).
    pub on_handshake_error: Option<HandshakeHook>,
    /// Whether I/O threads run unary handlers in place when a worker permit is free.
    pub inline_unary: bool,
    /// I/O loop threads.
    pub io_threads: usize,
    /// Bytes a connection may have queued and not yet written before the server stops
    /// reading it.
    pub output_budget: usize,
    /// How long queued output may make no progress before the connection is ended.
    pub send_stall_timeout: Duration,
    /// Whether `grpc.absolute_max_metadata_size` was given (it wins over
    /// `grpc.max_metadata_size`).
    pub absolute_metadata_size_given: bool,
    /// gRPC-Web (HTTP/1.1 on the port, `application/grpc-web*` requests), when on.
    pub web: Option<Arc<crate::web::GrpcWebConfig>>,
}

/// Errors from configuring or starting a [`Server`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// `start` was called twice, or a service was added after `start`.
    AlreadyStarted,
    /// `start` was called on a server with no port.
    NoPorts,
    /// The server was stopped and cannot be started again.
    Stopped,
    /// Two services with the same name were added.
    DuplicateService(String),
    /// Binding or accepting failed.
    Io(stdio::Error),
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::AlreadyStarted => f.write_str("the server has already been started"),
            ServerError::NoPorts => f.write_str(
                "the server has no ports: call add_insecure_port or add_secure_port before start",
            ),
            ServerError::Stopped => f.write_str("the server was stopped and cannot be restarted"),
            ServerError::DuplicateService(s) => write!(f, "service {s} was added twice"),
            ServerError::Io(e) => write!(f, "server I/O error: {e}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<stdio::Error> for ServerError {
    fn from(e: stdio::Error) -> Self {
        ServerError::Io(e)
    }
}

/// Builds a [`Server`]: pool size, limits, services, interceptors.
pub struct ServerBuilder {
    pub(crate) config: ServerConfig,
    services: Vec<Service>,
    interceptors: Vec<Arc<dyn ServerInterceptor>>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("config", &self.config)
            .field("services", &self.services)
            .field("interceptors", &self.interceptors.len())
            .finish()
    }
}

/// Default [`ServerBuilder::output_budget`]: 1 MiB per connection.
pub const DEFAULT_OUTPUT_BUDGET: usize = 1024 * 1024;

/// Default [`ServerBuilder::send_stall_timeout`]: 30 s.
pub const DEFAULT_SEND_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Python's `ThreadPoolExecutor` default: `min(32, cpus + 4)`.
fn default_workers() -> usize {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (cpus + 4).min(32)
}

impl Default for ServerBuilder {
    fn default() -> Self {
        let workers = default_workers();
        ServerBuilder {
            config: ServerConfig {
                max_workers: workers,
                max_concurrent_rpcs: None,
                max_receive_message_length: 4 * 1024 * 1024,
                max_send_message_length: usize::MAX,
                max_streaming_rpcs_per_connection: usize::MAX,
                handshake_timeout: Duration::from_secs(10),
                compression: None,
                h2: H2Config {
                    // grpcio's server default: ping a client after 2 h of silence.
                    keepalive: crate::h2::keepalive::KeepaliveConfig {
                        time: Some(Duration::from_secs(2 * 60 * 60)),
                        ..Default::default()
                    },
                    ..H2Config::default()
                },
                on_handshake_error: None,
                inline_unary: true,
                io_threads: std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1),
                output_budget: DEFAULT_OUTPUT_BUDGET,
                send_stall_timeout: DEFAULT_SEND_STALL_TIMEOUT,
                absolute_metadata_size_given: false,
                web: None,
            },
            services: Vec::new(),
            interceptors: Vec::new(),
        }
    }
}

impl ServerBuilder {
    /// Handler threads in the pool (default `min(32, cpus + 4)`, as Python's
    /// `ThreadPoolExecutor`). RPCs wait in FIFO order while all are busy. A streaming RPC holds
    /// its worker for the life of the stream.
    pub fn max_workers(mut self, n: usize) -> Self {
        self.config.max_workers = n.max(1);
        self
    }

    /// I/O threads, each running a readiness loop over its share of the connections (default:
    /// the number of cores). They accept, run TLS handshakes, read and decode requests, write
    /// what handlers could not write at once, and serve deadlines; an idle connection costs
    /// them nothing but a few KiB of memory.
    ///
    /// ```
    /// let builder = grpc_sync::Server::builder().io_threads(2).max_workers(16);
    /// # drop(builder);
    /// ```
    pub fn io_threads(mut self, n: usize) -> Self {
        self.config.io_threads = n.max(1);
        self
    }

    /// Bytes a connection may have queued for its peer and not yet written (responses the
    /// socket or the client's flow-control window has not taken) before the server stops
    /// admitting more from that peer (default 1 MiB, [`DEFAULT_OUTPUT_BUDGET`]).
    ///
    /// Over it, the server stops reading a peer whose socket does not take our writes, refuses
    /// new streams (REFUSED_STREAM) from one whose window holds responses back, and makes
    /// streaming handlers wait (on their stream) before they queue more.
    pub fn output_budget(mut self, bytes: usize) -> Self {
        self.config.output_budget = bytes.max(16 * 1024);
        self
    }

    /// How long a connection's queued output may make no progress at all (the peer reads
    /// nothing, or keeps its window shut) before the server ends the connection with GOAWAY
    /// (default 30 s, [`DEFAULT_SEND_STALL_TIMEOUT`]). What that connection held (its queued
    /// responses, its streams) is freed.
    pub fn send_stall_timeout(mut self, timeout: Duration) -> Self {
        self.config.send_stall_timeout = timeout;
        self
    }

    /// Fixes the HTTP/2 stream receive window at `bytes` (SETTINGS_INITIAL_WINDOW_SIZE) and
    /// turns BDP probing off (default: 1 MiB, grown with the measured bandwidth-delay product
    /// up to 16 MiB).
    pub fn initial_window_size(mut self, bytes: u32) -> Self {
        self.config.h2.initial_window_size = bytes;
        self.config.h2.bdp_probe = false;
        self
    }

    /// Fixes the HTTP/2 connection receive window at `bytes` and turns BDP probing off
    /// (default: 4 MiB, grown with BDP probing).
    pub fn initial_connection_window_size(mut self, bytes: u32) -> Self {
        self.config.h2.connection_window_size = bytes;
        self.config.h2.bdp_probe = false;
        self
    }

    /// Whether to grow the receive windows with the measured bandwidth-delay product
    /// (grpcio's `grpc.http2.bdp_probe`; default true): one stream then fills a long fat link
    /// instead of one window per round trip.
    pub fn bdp_probe(mut self, on: bool) -> Self {
        self.config.h2.bdp_probe = on;
        self
    }

    /// Pings a client after this long without hearing from it, and drops the connection if
    /// the client does not answer within [`keepalive_timeout`](Self::keepalive_timeout)
    /// (grpcio's `grpc.keepalive_time_ms`; default 2 h). Frees the calls and workers of a
    /// client that vanished without a FIN.
    pub fn keepalive_time(mut self, time: Duration) -> Self {
        self.config.h2.keepalive.time = Some(time);
        self
    }

    /// How long a keepalive PING may go unanswered (`grpc.keepalive_timeout_ms`; default 20 s).
    pub fn keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.config.h2.keepalive.timeout = timeout;
        self
    }

    /// Ping enforcement: accept a client's PINGs while it has no call open as often as
    /// [`min_recv_ping_interval_without_data`](Self::min_recv_ping_interval_without_data)
    /// (grpcio's `grpc.keepalive_permit_without_calls` on a server; default false: such PINGs
    /// less than two hours apart are strikes).
    pub fn keepalive_permit_without_calls(mut self, permit: bool) -> Self {
        self.config.h2.keepalive.permit_without_calls = permit;
        self
    }

    /// Ping enforcement: PINGs closer together than this are strikes
    /// (`grpc.http2.min_recv_ping_interval_without_data_ms`; default 5 min). Sending data or
    /// headers forgives them.
    pub fn min_recv_ping_interval_without_data(mut self, interval: Duration) -> Self {
        self.config.h2.keepalive.min_recv_ping_interval_without_data = interval;
        self
    }

    /// Ping enforcement: strikes tolerated before GOAWAY ENHANCE_YOUR_CALM `too_many_pings`
    /// (`grpc.http2.max_ping_strikes`; default 2, 0 for no limit).
    pub fn max_ping_strikes(mut self, strikes: u32) -> Self {
        self.config.h2.keepalive.max_ping_strikes = strikes;
        self
    }

    /// Closes a connection gracefully (GOAWAY) once it has had no call for this long
    /// (`grpc.max_connection_idle_ms`; default off).
    pub fn max_connection_idle(mut self, idle: Duration) -> Self {
        self.config.h2.keepalive.max_connection_idle = Some(idle);
        self
    }

    /// Closes a connection gracefully (GOAWAY) once it is this old, give or take 10 % so that
    /// clients do not all reconnect at once (`grpc.max_connection_age_ms`; default off). Lets
    /// an L4 load balancer spread long-lived clients again. Calls running then may finish
    /// within [`max_connection_age_grace`](Self::max_connection_age_grace); new calls go to
    /// a new connection without failing.
    pub fn max_connection_age(mut self, age: Duration) -> Self {
        self.config.h2.keepalive.max_connection_age = Some(age);
        self
    }

    /// How long calls may run on after the age GOAWAY before the connection is closed anyway
    /// (`grpc.max_connection_age_grace_ms`; default: no limit).
    pub fn max_connection_age_grace(mut self, grace: Duration) -> Self {
        self.config.h2.keepalive.max_connection_age_grace = Some(grace);
        self
    }

    /// Whether an I/O thread may run a unary handler itself when a worker is free (default
    /// true), instead of always handing it to a pool thread.
    ///
    /// Either way at most `max_workers` handlers run at once. Running in place saves a thread
    /// hand-off per RPC (a wake-up and a context switch: about as much CPU as the rest of a small
    /// RPC). Only methods whose handlers usually finish within 200 µs run in place (a running
    /// mean per method; blocking handlers go to the pool after their first calls). While the
    /// handler runs, its I/O loop waits; if the handler is still running after about a
    /// millisecond, or blocks on a stream, the loop moves to another thread, so the loop's
    /// connections (pings, cancellations, deadlines, other RPCs) are served as usual.
    /// Turn it off to run every handler on the pool's threads, as grpcio does.
    ///
    /// ```
    /// let builder = grpc_sync::Server::builder().max_workers(8).inline_unary(false);
    /// # drop(builder);
    /// ```
    pub fn inline_unary(mut self, on: bool) -> Self {
        self.config.inline_unary = on;
        self
    }

    /// RPCs admitted at once, running or queued (default unlimited). Past it, new RPCs are
    /// answered at once with `RESOURCE_EXHAUSTED` (grpcio's `maximum_concurrent_rpcs`).
    pub fn max_concurrent_rpcs(mut self, n: usize) -> Self {
        self.config.max_concurrent_rpcs = Some(n);
        self
    }

    /// Largest request message accepted (default 4 MiB); larger ones fail with
    /// `RESOURCE_EXHAUSTED`.
    pub fn max_receive_message_length(mut self, n: usize) -> Self {
        self.config.max_receive_message_length = n;
        self
    }

    /// Largest response message sent (default unlimited).
    pub fn max_send_message_length(mut self, n: usize) -> Self {
        self.config.max_send_message_length = n;
        self
    }

    /// Streaming RPCs one connection may run at once (each holds a worker). Default: no limit
    /// beyond the pool; set it below `max_workers` so one client cannot occupy every worker.
    pub fn max_streaming_rpcs_per_connection(mut self, n: usize) -> Self {
        self.config.max_streaming_rpcs_per_connection = n.max(1);
        self
    }

    /// Compresses responses with `encoding` by default (grpcio's `grpc.server(...,
    /// compression=)`), for clients that accept it (`grpc-accept-encoding`); others get
    /// uncompressed responses. Handlers can override it per call with
    /// [`ServerContext::set_compression`] and per message with
    /// [`ServerContext::disable_next_message_compression`]. Compressed requests in gzip and
    /// deflate are always accepted.
    pub fn compression(mut self, encoding: crate::compression::CompressionEncoding) -> Self {
        self.config.compression = Some(encoding).filter(|e| e.is_compressed());
        self
    }

    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients (default 100).
    pub fn max_concurrent_streams(mut self, n: u32) -> Self {
        self.config.h2.max_concurrent_streams = n;
        self
    }

    /// The HTTP/2 connection settings and limits in full.
    pub fn http2_config(mut self, config: H2Config) -> Self {
        self.config.h2 = config;
        self
    }

    /// How long a new connection may take to show what it speaks: the HTTP/2 preface on
    /// insecure ports, the whole TLS handshake on secure ports (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.config.handshake_timeout = timeout;
        self
    }

    /// Calls `f(peer, error)` on the connection's thread whenever a TLS handshake on a secure
    /// port fails (an unknown client CA, a missing client certificate, a plaintext client…):
    /// the server's side of the story, for logs. The connection is closed either way.
    pub fn on_handshake_error(
        mut self,
        f: impl Fn(&str, &HandshakeError) + Send + Sync + 'static,
    ) -> Self {
        self.config.on_handshake_error = Some(HandshakeHook(Arc::new(f)));
        self
    }

    /// Serves gRPC-Web on the server's ports too (default off): browsers call the same
    /// services, over HTTP/1.1 or HTTP/2, with no proxy in between. `config` says which page
    /// origins may call (CORS). Unary and server-streaming methods only; see [`crate::web`].
    ///
    /// ```
    /// use grpc_sync::{GrpcWebConfig, Server};
    /// let builder = Server::builder()
    ///     .grpc_web(GrpcWebConfig::new().allow_origin("http://127.0.0.1:8080"));
    /// # drop(builder);
    /// ```
    pub fn grpc_web(mut self, config: crate::web::GrpcWebConfig) -> Self {
        self.config.web = Some(Arc::new(config));
        self
    }

    /// Adds a service (generated `XServer::new(impl)`, or one built with [`Service::builder`]).
    pub fn add_service(mut self, service: impl Into<Service>) -> Self {
        self.services.push(service.into());
        self
    }

    /// Registers several services at once, such as both versions of server reflection
    /// ([`ReflectionService::services`](crate::reflection::ReflectionService::services)).
    pub fn add_services<S: Into<Service>>(mut self, services: impl IntoIterator<Item = S>) -> Self {
        self.services.extend(services.into_iter().map(Into::into));
        self
    }

    /// Adds an interceptor: code that runs before the handler of every RPC (every service and
    /// every kind, health and reflection included) and once when each RPC ends. Interceptors
    /// run in the order they were added; their end hooks in reverse order. See
    /// [`ServerInterceptor`].
    ///
    /// ```
    /// use grpc_sync::server::CallStart;
    /// use grpc_sync::{Server, Status};
    ///
    /// let server = Server::builder()
    ///     .intercept(|call: &mut CallStart<'_>| {
    ///         match call.metadata().get("authorization") {
    ///             Some("Bearer secret-token") => Ok(()),
    ///             _ => Err(Status::unauthenticated("a valid bearer token is required")),
    ///         }
    ///     })
    ///     .build();
    /// # drop(server);
    /// ```
    pub fn intercept(mut self, interceptor: impl ServerInterceptor) -> Self {
        self.interceptors.push(Arc::new(interceptor));
        self
    }

    /// Builds the server. Add ports with [`Server::add_insecure_port`], then [`Server::start`].
    pub fn build(self) -> Server {
        Server {
            inner: Arc::new(ServerInner {
                state: Mutex::new(ServerState {
                    phase: Phase::Created,
                    services: self.services,
                    listeners: Vec::new(),
                    addrs: Vec::new(),
                    unix_paths: Vec::new(),
                    final_stats: None,
                    core: None,
                    loops: None,
                }),
                terminated: Condvar::new(),
                config: self.config,
                interceptors: self.interceptors.into(),
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Created,
    Running,
    Stopping,
    Stopped,
}

struct ServerState {
    phase: Phase,
    services: Vec<Service>,
    listeners: Vec<Listener>,
    addrs: Vec<SocketAddr>,
    /// Unix socket paths listened on: woken at stop, removed after.
    unix_paths: Vec<std::path::PathBuf>,
    /// The pool's statistics when the server stopped (every worker joined).
    final_stats: Option<PoolStats>,
    core: Option<Arc<ServerCore>>,
    loops: Option<Arc<IoLoops>>,
}

struct ServerInner {
    state: Mutex<ServerState>,
    terminated: Condvar,
    config: ServerConfig,
    interceptors: interceptor::Interceptors,
}

/// The method table's hasher: SipHash costs more than the rest of the routing. Peers choose
/// the paths looked up but cannot add entries, so a crafted path only ever meets the few
/// methods of its bucket: no flooding is possible.
type PathHash = std::hash::BuildHasherDefault<crate::h2::conn::IdHasher>;

/// What every connection of a running server shares.
pub(crate) struct ServerCore {
    pub config: ServerConfig,
    /// Handlers by `:path`, with the path as the contexts share it and the handlers' usual
    /// running time.
    pub methods: HashMap<String, (Arc<str>, Method, Arc<dispatch::HandlerTime>), PathHash>,
    pub services: HashSet<String>,
    /// Run around every call, in order (empty: the dispatch path skips them entirely).
    pub interceptors: interceptor::Interceptors,
    pub pool: pool::Pool,
    /// Moves a connection's reading to another thread when its reader runs a slow handler.
    pub handoff: Arc<handoff::Handoff>,
    pub active_rpcs: AtomicUsize,
    pub stopping: AtomicBool,
    conns: Mutex<HashMap<u64, Arc<Shared>>>,
    conns_changed: Condvar,
    pub next_conn: AtomicU64,
}

impl ServerCore {
    /// Adds a live connection; false if the server is stopping (the connection is dropped).
    pub fn register_conn(&self, id: u64, shared: Arc<Shared>) -> bool {
        let mut conns = lock(&self.conns);
        if self.stopping.load(Ordering::Acquire) {
            drop(conns);
            shared.close(ConnLost::Closed);
            return false;
        }
        conns.insert(id, shared);
        true
    }

    /// Forgets a connection that ended.
    pub fn unregister_conn(&self, id: u64) {
        lock(&self.conns).remove(&id);
        self.conns_changed.notify_all();
    }

    fn goaway_all(&self) {
        let conns: Vec<Arc<Shared>> = lock(&self.conns).values().cloned().collect();
        for shared in conns {
            let mut st = shared.lock();
            if st.lost.is_none() {
                st.conn.go_away(Reason::NO_ERROR, b"server shutting down");
            }
            shared.flush(st);
        }
    }

    fn close_all(&self) {
        let conns: Vec<Arc<Shared>> = lock(&self.conns).values().cloned().collect();
        for shared in conns {
            // The final GOAWAY (the real last stream id) before the close: the first one said
            // 2^31-1, and a client that wrote a request since then learns from this one that
            // the request was never seen, so it can retry it elsewhere.
            let mut st = shared.lock();
            if st.lost.is_none() {
                st.conn.go_away(Reason::NO_ERROR, b"server shutting down");
            }
            shared.flush(st);
            shared.close(ConnLost::Closed);
        }
    }

    /// Waits until no connection is left, or `deadline`.
    fn wait_conns_gone(&self, deadline: Instant) {
        let mut conns = lock(&self.conns);
        while !conns.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            conns = self
                .conns_changed
                .wait_timeout(conns, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// A gRPC server. Cheap to share by reference across threads; dropping it stops it.
pub struct Server {
    inner: Arc<ServerInner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = lock(&self.inner.state);
        f.debug_struct("Server")
            .field("phase", &st.phase)
            .field("addrs", &st.addrs)
            .finish()
    }
}

/// Formats a bind address the way grpcio accepts it: `[::]:50051`, `0.0.0.0:0`,
/// `localhost:50051`, or `:50051` (all interfaces).
fn resolve_bind(addr: &str) -> stdio::Result<Vec<SocketAddr>> {
    let addr = addr.trim();
    let addr = if let Some(port) = addr.strip_prefix(':') {
        format!("[::]:{port}")
    } else {
        addr.to_string()
    };
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(stdio::Error::new(
            stdio::ErrorKind::InvalidInput,
            format!("{addr} resolves to no address"),
        ));
    }
    Ok(addrs)
}

impl Server {
    /// Starts configuring a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Adds a service before [`start`](Self::start).
    ///
    /// # Errors
    /// [`ServerError::AlreadyStarted`] once the server runs.
    pub fn add_service(&self, service: impl Into<Service>) -> Result<(), ServerError> {
        let mut st = lock(&self.inner.state);
        if st.phase != Phase::Created {
            return Err(ServerError::AlreadyStarted);
        }
        st.services.push(service.into());
        Ok(())
    }

    /// Listens on `addr` without TLS and returns the bound port (`:0` picks a free one).
    ///
    /// Binds at once, like grpcio's `add_insecure_port`; accepting starts with `start` (or at
    /// once if the server is already running).
    ///
    /// # Errors
    /// The bind error, with the address in its message.
    pub fn add_insecure_port(&self, addr: &str) -> stdio::Result<u16> {
        if let Some(path) = addr.trim().strip_prefix("unix:") {
            return self.add_unix_port(path.strip_prefix("//").unwrap_or(path));
        }
        self.add_port(addr, None)
    }

    /// Listens on `addr` with TLS and returns the bound port (`:0` picks a free one): grpcio's
    /// `add_secure_port(addr, ssl_server_credentials(...))`.
    ///
    /// Clients must negotiate ALPN `h2`; with [`ServerCredentials::with_client_ca`] they must
    /// (or may) present a certificate, whose identity handlers read through
    /// [`ServerContext::auth_context`]. Secure and insecure ports can be mixed on one server.
    ///
    /// # Errors
    /// The bind error, with the address in its message, or an unusable configuration.
    pub fn add_secure_port(
        &self,
        addr: &str,
        credentials: ServerCredentials,
    ) -> stdio::Result<u16> {
        let mut config = credentials.server_config()?;
        if self.inner.config.web.is_some() {
            // gRPC-Web: browsers may speak HTTP/1.1 over TLS too.
            let mut c = (*config).clone();
            c.alpn_protocols.push(b"http/1.1".to_vec());
            config = Arc::new(c);
        }
        self.add_port(addr, Some(config))
    }

    /// Listens on a Unix domain socket; a stale socket file at `path` is replaced. Returns 0
    /// (a Unix socket has no port).
    #[cfg(unix)]
    fn add_unix_port(&self, path: &str) -> stdio::Result<u16> {
        use std::os::unix::fs::FileTypeExt;
        if path.is_empty() {
            return Err(stdio::Error::new(
                stdio::ErrorKind::InvalidInput,
                "empty unix socket path",
            ));
        }
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if meta.file_type().is_socket() {
                let _ = std::fs::remove_file(path);
            }
        }
        let l = std::os::unix::net::UnixListener::bind(path).map_err(|e| {
            stdio::Error::new(e.kind(), format!("cannot listen on unix:{path}: {e}"))
        })?;
        let mut st = lock(&self.inner.state);
        let listener = Listener {
            sock: ListenSock::Unix(l),
            tls: None,
        };
        match st.phase {
            Phase::Created => st.listeners.push(listener),
            Phase::Running => {
                let loops = st.loops.clone().expect("running server has loops");
                loops.add_listener(listener);
            }
            _ => return Err(stdio::Error::other("the server is stopped")),
        }
        st.unix_paths.push(path.into());
        Ok(0)
    }

    #[cfg(not(unix))]
    fn add_unix_port(&self, path: &str) -> stdio::Result<u16> {
        Err(stdio::Error::new(
            stdio::ErrorKind::Unsupported,
            format!("unix:{path}: Unix domain sockets are not available on this platform"),
        ))
    }

    fn add_port(&self, addr: &str, tls: Option<Arc<rustls::ServerConfig>>) -> stdio::Result<u16> {
        let addrs = resolve_bind(addr)?;
        let mut last_err = None;
        for a in addrs {
            match TcpListener::bind(a) {
                Ok(l) => {
                    let local = l.local_addr()?;
                    let mut st = lock(&self.inner.state);
                    let listener = Listener {
                        sock: ListenSock::Tcp(l),
                        tls,
                    };
                    match st.phase {
                        Phase::Created => st.listeners.push(listener),
                        Phase::Running => {
                            let loops = st.loops.clone().expect("running server has loops");
                            loops.add_listener(listener);
                        }
                        _ => {
                            return Err(stdio::Error::other("the server is stopped"));
                        }
                    }
                    st.addrs.push(local);
                    return Ok(local.port());
                }
                Err(e) => last_err = Some(e),
            }
        }
        let e = last_err.expect("at least one address");
        Err(stdio::Error::new(
            e.kind(),
            format!("cannot listen on {addr}: {e}"),
        ))
    }

    /// The addresses the server listens on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        lock(&self.inner.state).addrs.clone()
    }

    /// Starts the worker pool and accepting connections.
    ///
    /// # Errors
    /// [`ServerError::AlreadyStarted`], [`ServerError::Stopped`], [`ServerError::NoPorts`],
    /// [`ServerError::DuplicateService`].
    pub fn start(&self) -> Result<(), ServerError> {
        let mut st = lock(&self.inner.state);
        match st.phase {
            Phase::Created => {}
            Phase::Running => return Err(ServerError::AlreadyStarted),
            _ => return Err(ServerError::Stopped),
        }
        if st.listeners.is_empty() {
            return Err(ServerError::NoPorts);
        }
        let mut methods = HashMap::default();
        let mut services = HashSet::new();
        for svc in &st.services {
            if !services.insert(svc.name().to_string()) {
                return Err(ServerError::DuplicateService(svc.name().to_string()));
            }
            for (m, h) in &svc.methods {
                let path = format!("/{}/{}", svc.name(), m);
                let timing = Arc::new(dispatch::HandlerTime::default());
                methods.insert(path.clone(), (Arc::from(path), h.clone(), timing));
            }
        }
        let config = self.inner.config.clone();
        let core = Arc::new(ServerCore {
            pool: pool::Pool::new(config.max_workers, "grpc-worker"),
            // A spare thread only ever takes over an I/O loop: at most one per loop is needed.
            handoff: handoff::Handoff::new(Duration::from_millis(1), config.io_threads),
            config,
            methods,
            services,
            interceptors: self.inner.interceptors.clone(),
            active_rpcs: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            conns_changed: Condvar::new(),
            next_conn: AtomicU64::new(1),
        });
        let listeners = std::mem::take(&mut st.listeners);
        let loops = IoLoops::start(&core, core.config.io_threads, listeners)?;
        st.loops = Some(loops);
        st.core = Some(core);
        st.phase = Phase::Running;
        Ok(())
    }

    /// Statistics of the worker pool: busy workers, queue length, RPCs started and finished, and
    /// the queue-wait histogram. All zero before `start`.
    pub fn pool_stats(&self) -> PoolStats {
        let st = lock(&self.inner.state);
        if let Some(core) = &st.core {
            return core.pool.stats();
        }
        match &st.final_stats {
            Some(stats) => stats.clone(),
            None => PoolStats {
                workers: self.inner.config.max_workers,
                busy: 0,
                queued: 0,
                started: 0,
                finished: 0,
                panicked: 0,
                queue_wait_histogram: vec![0; QUEUE_WAIT_BUCKETS_US.len()],
                mean_queue_wait: Duration::ZERO,
            },
        }
    }

    /// Bytes queued for clients and not yet written, over all connections: responses waiting
    /// for a client's flow-control window or for its socket to take them. Each connection
    /// holds at most about its [`ServerBuilder::output_budget`] (plus one response).
    pub fn queued_output(&self) -> usize {
        let core = lock(&self.inner.state).core.clone();
        let Some(core) = core else { return 0 };
        let conns: Vec<Arc<Shared>> = lock(&core.conns).values().cloned().collect();
        conns.iter().map(|c| c.lock().queued()).sum()
    }

    /// Connections the server holds open now (HTTP/2, or gRPC-Web's HTTP/1.1, started; not
    /// counting ones still in their TLS handshake).
    pub fn connections(&self) -> usize {
        let core = lock(&self.inner.state).core.clone();
        core.map(|c| lock(&c.conns).len()).unwrap_or(0)
    }

    /// Stops the server (grpcio's `stop(grace)`).
    ///
    /// Stops accepting at once and sends GOAWAY to every connection, so new RPCs are refused.
    /// RPCs already running may finish until `grace` runs out (`None`: no grace, they are
    /// cancelled now); then every connection is closed. Returns a handle whose
    /// [`wait`](StopHandle::wait) blocks until everything has stopped.
    pub fn stop(&self, grace: Option<Duration>) -> StopHandle {
        let (core, loops, unix_paths, stop_hooks) = {
            let mut st = lock(&self.inner.state);
            match st.phase {
                Phase::Created => {
                    st.phase = Phase::Stopped;
                    st.listeners.clear();
                    self.inner.terminated.notify_all();
                    return StopHandle {
                        inner: self.inner.clone(),
                    };
                }
                Phase::Stopping | Phase::Stopped => {
                    return StopHandle {
                        inner: self.inner.clone(),
                    }
                }
                Phase::Running => {}
            }
            st.phase = Phase::Stopping;
            (
                st.core.clone().expect("running server has a core"),
                st.loops.clone().expect("running server has loops"),
                st.unix_paths.clone(),
                st.services
                    .iter()
                    .flat_map(|svc| svc.stop_hooks.iter().cloned())
                    .collect::<Vec<_>>(),
            )
        };
        // The services' own stop hooks (`ServiceBuilder::on_server_stop`) run first, while
        // every stream is still open: health turns NOT_SERVING here, ahead of the GOAWAY.
        for hook in stop_hooks {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook()));
        }
        core.stopping.store(true, Ordering::Release);
        // The loops close their listeners when they see `stopping`.
        loops.wake_all();
        core.goaway_all();
        let inner = self.inner.clone();
        let stopper = move || {
            for p in &unix_paths {
                let _ = std::fs::remove_file(p);
            }
            if let Some(g) = grace {
                let deadline = Instant::now() + g;
                // Connections whose RPCs finish close themselves after the GOAWAY; wait for
                // that or for the grace to run out.
                core.wait_idle(deadline);
            }
            core.close_all();
            core.wait_conns_gone(Instant::now() + Duration::from_secs(5));
            loops.exit(Instant::now() + Duration::from_secs(5));
            core.pool.shutdown();
            core.pool.join(Duration::from_secs(5));
            core.handoff.shutdown();
            let mut st = lock(&inner.state);
            st.phase = Phase::Stopped;
            st.final_stats = Some(core.pool.stats());
            st.core = None;
            st.loops = None;
            inner.terminated.notify_all();
        };
        let _ = std::thread::Builder::new()
            .name("grpc-server-stop".into())
            .spawn(stopper);
        StopHandle {
            inner: self.inner.clone(),
        }
    }

    /// Blocks until the server has stopped, or `timeout` passes (`None`: no limit). Returns
    /// true if the server has stopped (grpcio's `wait_for_termination`).
    pub fn wait_for_termination(&self, timeout: Option<Duration>) -> bool {
        wait_stopped(&self.inner, timeout)
    }
}

impl ServerCore {
    /// Counts one admitted RPC as finished; wakes a stopping server when none is left.
    pub fn end_rpc(&self) {
        if self.active_rpcs.fetch_sub(1, Ordering::AcqRel) == 1
            && self.stopping.load(Ordering::Acquire)
        {
            // Under the lock the stopper waits with, so the wake-up cannot be lost.
            let _g = lock(&self.conns);
            self.conns_changed.notify_all();
        }
    }

    /// Waits until no RPC is admitted, or `deadline`.
    fn wait_idle(&self, deadline: Instant) {
        let mut conns = lock(&self.conns);
        loop {
            if self.active_rpcs.load(Ordering::Acquire) == 0 {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            conns = self
                .conns_changed
                .wait_timeout(conns, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

fn wait_stopped(inner: &ServerInner, timeout: Option<Duration>) -> bool {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut st = lock(&inner.state);
    loop {
        if st.phase == Phase::Stopped {
            return true;
        }
        match deadline {
            None => st = inner.terminated.wait(st).unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return false;
                }
                st = inner
                    .terminated
                    .wait_timeout(st, d - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }
}

/// Returned by [`Server::stop`]: wait for the stop to complete.
#[derive(Clone)]
pub struct StopHandle {
    inner: Arc<ServerInner>,
}

impl StopHandle {
    /// Blocks until the server has fully stopped.
    pub fn wait(&self) {
        wait_stopped(&self.inner, None);
    }

    /// Blocks until the server has stopped or `timeout` passes; true if it stopped.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        wait_stopped(&self.inner, Some(timeout))
    }
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StopHandle")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop(None).wait_timeout(Duration::from_secs(10));
    }
}
