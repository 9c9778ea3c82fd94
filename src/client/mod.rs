//! The blocking client: [`Channel`] and the four kinds of call.
//!
//! ```no_run
//! use grpc_sync::{Channel, Request};
//! use std::time::Duration;
//! # #[derive(Clone, PartialEq, grpc_sync::prost::Message)] struct Msg { #[prost(string, tag = "1")] s: String }
//! let channel = Channel::insecure("localhost:50051")?;
//! let req = Request::new(Msg { s: "hi".into() }).with_timeout(Duration::from_secs(1));
//! let reply: Msg = channel.unary("/demo.Echo/Echo", req)?.into_inner();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Threads: a channel keeps one HTTP/2 connection with one reader thread. The calling thread
//! encodes and writes its own request and then sleeps until the reader wakes it with the
//! response: one hand-off per unary call. Client- and bidi-streaming calls drain the request
//! iterator on a helper thread so that responses can be read at the same time.

mod call;
mod conn;
mod credentials;
mod future;
mod health;
mod hedge;
mod interceptor;
mod lb;
mod proxy;
mod resolver;
mod retry;
mod retry_call;
mod service_config;
mod target;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use prost::Message;

use crate::codec::{self, MessageDecoder};
use crate::compression::{CompressionEncoding, ACCEPT_ENCODING};
use crate::h2::conn::SendError;
use crate::h2::error::Reason;
use crate::h2::hpack::Header;
use crate::h2::settings::Config as H2Config;
use crate::metadata::MetadataMap;
use crate::status::{Code, Status};
use crate::streaming::{MessageSource, Streaming};
use crate::timeout::encode_grpc_timeout;
use crate::transport::driver::{lock, Recv, Shared, StreamError, StreamHandle, Whole};

pub use call::{CallOptions, IntoRequest, IntoStreamingRequest, Request, Response};
pub use conn::{BackoffConfig, ConnectivityState};
pub use credentials::{
    AuthMetadataContext, AuthMetadataPlugin, CallCredentials, CompositeChannelCredentials,
};
pub use future::CallFuture;
pub use interceptor::{intercept_channel, CallEnd, CallKind, ClientCallDetails, ClientInterceptor};
pub use resolver::Resolver;
pub use target::{Target, TargetError};

/// Settings of a [`Channel`].
#[derive(Debug, Clone)]
pub struct ChannelBuilder {
    pub(crate) target: String,
    pub(crate) max_send: usize,
    pub(crate) max_recv: usize,
    pub(crate) user_agent: String,
    pub(crate) backoff: BackoffConfig,
    pub(crate) h2: H2Config,
    pub(crate) authority: Option<String>,
    pub(crate) compression: Option<CompressionEncoding>,
    pub(crate) tls: Option<crate::transport::tls::ChannelCredentials>,
    /// `grpc.ssl_target_name_override`, applied to `tls` at `build`.
    pub(crate) ssl_target_name_override: Option<String>,
    /// Whether `grpc.absolute_max_metadata_size` was given.
    pub(crate) absolute_metadata_size_given: bool,
    /// Call credentials for every call (TLS or local channels only).
    pub(crate) call_credentials: Option<CallCredentials>,
    /// grpcio's `local_channel_credentials`: an insecure channel to loopback or a Unix socket
    /// that may carry call credentials.
    pub(crate) local: bool,
    /// HTTP CONNECT proxy settings (`proxy.rs` has the builder methods).
    pub(crate) proxy: proxy::ProxyOptions,
    /// The service config's JSON, parsed at `build`.
    pub(crate) service_config: Option<String>,
    /// `grpc.lb_policy_name`; the service config's choice wins.
    pub(crate) lb_policy: Option<String>,
    /// A user's resolver in place of the target's.
    pub(crate) resolver: Option<UserResolver>,
    /// `grpc.dns_min_time_between_resolutions_ms`.
    pub(crate) min_time_between_resolutions: Duration,
    /// `grpc.inhibit_health_checking`: ignore the service config's `healthCheckConfig`.
    pub(crate) inhibit_health_checking: bool,
    /// Whether retry policies are acted on, and the per-call retry buffer.
    pub(crate) retry: retry::RetryOptions,
}

/// A user's [`Resolver`], held by a [`ChannelBuilder`].
#[derive(Clone)]
pub(crate) struct UserResolver(Arc<dyn Resolver>);

impl std::fmt::Debug for UserResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

impl ChannelBuilder {
    /// Compresses request messages with `encoding` by default (grpcio's channel
    /// `compression=`); a call can override it with [`CallOptions::compression`]. Responses
    /// in gzip, deflate or identity are always accepted.
    pub fn compression(mut self, encoding: CompressionEncoding) -> Self {
        self.compression = Some(encoding);
        self
    }

    /// Largest request message sent (default unlimited); larger ones fail with
    /// RESOURCE_EXHAUSTED before anything is sent.
    pub fn max_send_message_length(mut self, n: usize) -> Self {
        self.max_send = n;
        self
    }

    /// Largest response message accepted (default 4 MiB).
    pub fn max_receive_message_length(mut self, n: usize) -> Self {
        self.max_recv = n;
        self
    }

    /// A prefix for the `user-agent` header (grpcio's `grpc.primary_user_agent`).
    pub fn user_agent(mut self, ua: &str) -> Self {
        self.user_agent = format!("{ua} grpc-sync/{}", env!("CARGO_PKG_VERSION"));
        self
    }

    /// Reconnect back-off parameters.
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// Overrides the `:authority` sent with requests (default: the target's `host:port`).
    pub fn authority(mut self, authority: &str) -> Self {
        self.authority = Some(authority.to_string());
        self
    }

    /// The HTTP/2 connection settings and limits in full.
    pub fn http2_config(mut self, config: H2Config) -> Self {
        self.h2 = config;
        self
    }

    /// Fixes the HTTP/2 stream receive window at `bytes` (SETTINGS_INITIAL_WINDOW_SIZE) and
    /// turns BDP probing off (default: 1 MiB, grown with the measured bandwidth-delay product
    /// up to 16 MiB).
    pub fn initial_window_size(mut self, bytes: u32) -> Self {
        self.h2.initial_window_size = bytes;
        self.h2.bdp_probe = false;
        self
    }

    /// Fixes the HTTP/2 connection receive window at `bytes` and turns BDP probing off
    /// (default: 4 MiB, grown with BDP probing).
    pub fn initial_connection_window_size(mut self, bytes: u32) -> Self {
        self.h2.connection_window_size = bytes;
        self.h2.bdp_probe = false;
        self
    }

    /// Whether to grow the receive windows with the measured bandwidth-delay product
    /// (grpcio's `grpc.http2.bdp_probe`; default true): one stream then fills a long fat link
    /// instead of one window per round trip.
    pub fn bdp_probe(mut self, on: bool) -> Self {
        self.h2.bdp_probe = on;
        self
    }

    /// Pings the server after this long without hearing from it while calls are open, and
    /// fails the connection's calls with UNAVAILABLE if it does not answer within
    /// [`keepalive_timeout`](Self::keepalive_timeout) (grpcio's `grpc.keepalive_time_ms`;
    /// default off). Finds a server that vanished behind a NAT or a load balancer (no FIN, no
    /// RST) in seconds instead of TCP's hours; the channel then reconnects with its back-off.
    /// A server that answers with GOAWAY `too_many_pings` makes the channel double it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = grpc_sync::Channel::builder("localhost:50051")
    ///     .keepalive_time(Duration::from_secs(30))
    ///     .keepalive_timeout(Duration::from_secs(5));
    /// # drop(b);
    /// ```
    pub fn keepalive_time(mut self, time: Duration) -> Self {
        self.h2.keepalive.time = Some(time);
        self
    }

    /// How long a keepalive PING may go unanswered (`grpc.keepalive_timeout_ms`; default 20 s).
    pub fn keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.h2.keepalive.timeout = timeout;
        self
    }

    /// How long the channel keeps its connection without any call (grpcio's
    /// `grpc.client_idle_timeout_ms`; default 30 min). Then it closes it (GOAWAY) and goes
    /// idle; the next call connects again. `None` keeps connections forever.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.h2.keepalive.max_connection_idle = timeout;
        self
    }

    /// Sends keepalive PINGs even when no call is open (`grpc.keepalive_permit_without_calls`;
    /// default false). Servers reject that unless they permit it too.
    pub fn keepalive_permit_without_calls(mut self, permit: bool) -> Self {
        self.h2.keepalive.permit_without_calls = permit;
        self
    }

    /// Keepalive PINGs sent without data or headers sent in between, at most
    /// (`grpc.http2.max_pings_without_data`; default 2, 0 for no limit).
    pub fn max_pings_without_data(mut self, n: u32) -> Self {
        self.h2.keepalive.max_pings_without_data = n;
        self
    }

    /// Connects with TLS (ALPN `h2`), trusting and presenting what `credentials` say; requests
    /// then carry `:scheme https`. [`CompositeChannelCredentials`] also bring call credentials
    /// for every call.
    pub fn tls(mut self, credentials: impl Into<CompositeChannelCredentials>) -> Self {
        let c = credentials.into();
        self.tls = Some(c.channel);
        if let Some(call) = c.call {
            self = self.call_credentials(call);
        }
        self
    }

    /// Sends `credentials`' metadata with every call (after any given before). The channel
    /// must be TLS or [`local`](Self::local): on another, every call fails with
    /// UNAUTHENTICATED ("call credentials require a secure channel …") and the credentials are
    /// never sent.
    ///
    /// ```
    /// use grpc_sync::{CallCredentials, Channel};
    /// // A sidecar on the same machine: no TLS, but the token may go (grpcio's
    /// // `composite_channel_credentials(local_channel_credentials(), access_token_call_credentials(..))`).
    /// let channel = Channel::builder("127.0.0.1:50051")
    ///     .local()
    ///     .call_credentials(CallCredentials::access_token("secret-token"))
    ///     .build()?;
    /// # drop(channel);
    /// # Ok::<(), grpc_sync::Status>(())
    /// ```
    pub fn call_credentials(mut self, credentials: CallCredentials) -> Self {
        self.call_credentials = Some(match self.call_credentials.take() {
            Some(c) => c.and(credentials),
            None => credentials,
        });
        self
    }

    /// Marks an insecure channel as local (grpcio's `local_channel_credentials`): it connects
    /// only to loopback addresses (127.0.0.0/8, ::1) or Unix sockets, refusing any other
    /// address a name resolves to, and it may carry call credentials, which no other insecure
    /// channel sends. Requests still say `:scheme http`; plugins see an `http://` service URL.
    /// Ignored on a TLS channel.
    pub fn local(mut self) -> Self {
        self.local = true;
        self
    }

    /// Sets the service config (gRPC's JSON format, as grpcio's `grpc.service_config`
    /// option): per-method timeouts, `waitForReady`, message size limits and retry policies,
    /// matched by service and method name. A call's own timeout and the config's: the shorter
    /// wins; a call's own `wait_for_ready` wins over the config's; the size limits are the
    /// smaller of the channel's and the config's. `loadBalancingConfig` (or the older
    /// `loadBalancingPolicy`) picks `pick_first` or `round_robin` (see
    /// [`lb_policy`](Self::lb_policy)), and `healthCheckConfig.serviceName` turns on
    /// round_robin's health checking of each server. The JSON is parsed by
    /// [`build`](Self::build).
    ///
    /// **Retries** (gRFC A6), with a `retryPolicy` and, optionally, `retryThrottling`:
    /// - an attempt that fails with one of `retryableStatusCodes` before the response headers
    ///   came (a trailers-only response, or a stream reset or connection lost before them) is
    ///   retried, while fewer than `maxAttempts` (at most 5) attempts were made, after a
    ///   random back-off in `[0, min(initialBackoff × backoffMultiplier^(n-1), maxBackoff)]`,
    ///   or after exactly the server's `grpc-retry-pushback-ms` (a negative or unparsable
    ///   one stops retries). Once response headers arrive the call is committed to that
    ///   attempt. The call's deadline covers every attempt and back-off;
    /// - each retry carries `grpc-previous-rpc-attempts` (the attempts made before it);
    /// - the request is kept to be sent again: up to
    ///   [`per_rpc_retry_buffer_size`](Self::per_rpc_retry_buffer_size) (256 KiB) per call and
    ///   16 MiB per channel. A client or bidi stream that sends more is committed: it is not
    ///   retried, and its status message says so ("(not retried: the 300 KiB sent exceed the
    ///   256 KiB retry buffer)");
    /// - `retryThrottling` is a token bucket per channel: it starts at `maxTokens`, a failed
    ///   attempt with a retryable code takes one token, a successful call gives back
    ///   `tokenRatio`; calls retry only while more than `maxTokens / 2` tokens are left;
    /// - every call kind retries, except [`Channel::bidi_interactive`], which is committed at
    ///   once (its messages go out as the caller sends them, with nothing kept to replay).
    ///   Interceptors see each call end once, whatever the number of attempts; a
    ///   [`CallFuture`] with a retry policy runs its attempts on a thread of its own.
    ///   Streams the server never saw are retried transparently, with a policy or without.
    ///
    /// **Hedging** (gRFC A6), with a `hedgingPolicy` (`maxAttempts`, `hedgingDelay`,
    /// optional `nonFatalStatusCodes`; never beside a `retryPolicy`) — hedging applies to
    /// unary calls ([`Channel::unary`], [`Channel::unary_future`]); other kinds are sent as
    /// plain calls:
    /// - the first attempt goes at once, another every `hedgingDelay` while none committed, up
    ///   to `maxAttempts` (at most 5), each with `grpc-previous-rpc-attempts`;
    /// - the first attempt to get response headers, or to end with a status not in
    ///   `nonFatalStatusCodes`, is the call's, and the others are cancelled;
    /// - a non-fatal failure starts the next attempt at once, a server's
    ///   `grpc-retry-pushback-ms` after that long (a negative one: no more attempts); if all
    ///   fail, the last failure is the call's status; the deadline bounds it all;
    /// - `retryThrottling` and the retry buffer apply as for retries (a throttled call sends
    ///   only its first attempt; a request over the buffer is not hedged).
    ///
    /// [`enable_retries(false)`](Self::enable_retries) turns all of this off.
    ///
    /// ```
    /// let channel = grpc_sync::Channel::builder("localhost:50051")
    ///     .service_config(
    ///         r#"{"methodConfig": [{
    ///             "name": [{"service": "helloworld.Greeter"}],
    ///             "timeout": "1.5s",
    ///             "waitForReady": true,
    ///             "maxRequestMessageBytes": 1048576,
    ///             "retryPolicy": {
    ///                 "maxAttempts": 3,
    ///                 "initialBackoff": "0.1s",
    ///                 "maxBackoff": "1s",
    ///                 "backoffMultiplier": 2,
    ///                 "retryableStatusCodes": ["UNAVAILABLE"]
    ///             }
    ///         }],
    ///         "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}}"#,
    ///     )
    ///     .build()?;
    /// # drop(channel);
    /// # Ok::<(), grpc_sync::Status>(())
    /// ```
    pub fn service_config(mut self, json: &str) -> Self {
        self.service_config = Some(json.to_string());
        self
    }

    /// The load-balancing policy (grpcio's `grpc.lb_policy_name`): `pick_first` (the
    /// default: one connection, to the first address that answers, trying the next after
    /// 250 ms) or `round_robin` (a connection to every address the target resolves to, calls
    /// rotated over the READY ones; a lost one reconnects in the background while the others
    /// carry the calls). A service config's `loadBalancingConfig` wins over this. An unknown
    /// name fails [`build`](Self::build) with INVALID_ARGUMENT.
    ///
    /// ```
    /// let channel = grpc_sync::Channel::builder("dns:///my-service.internal:50051")
    ///     .lb_policy("round_robin")
    ///     .build()?;
    /// # drop(channel);
    /// # Ok::<(), grpc_sync::Status>(())
    /// ```
    pub fn lb_policy(mut self, name: &str) -> Self {
        self.lb_policy = Some(name.to_string());
        self
    }

    /// Takes the server addresses from `resolver` instead of resolving the target, which then
    /// only names the server (`:authority`, the TLS name). See [`Resolver`].
    pub fn resolver(mut self, resolver: impl Resolver) -> Self {
        self.resolver = Some(UserResolver(Arc::new(resolver)));
        self
    }

    /// The shortest time between two lookups of the target's name (grpcio's
    /// `grpc.dns_min_time_between_resolutions_ms`; default 30 s). The channel looks the name
    /// up again when a connection is lost or the server sends GOAWAY, not more often than
    /// this; a failed lookup keeps the addresses it had.
    pub fn min_time_between_resolutions(mut self, interval: Duration) -> Self {
        self.min_time_between_resolutions = interval;
        self
    }

    /// Ignores the service config's `healthCheckConfig` (grpcio's
    /// `grpc.inhibit_health_checking`).
    pub fn inhibit_health_checking(mut self, inhibit: bool) -> Self {
        self.inhibit_health_checking = inhibit;
        self
    }

    /// Whether the service config's retry policies are acted on (grpcio's
    /// `grpc.enable_retries`; default true). Off, no call is retried by policy; streams the
    /// server never saw are still sent again.
    ///
    /// ```
    /// let b = grpc_sync::Channel::builder("localhost:50051").enable_retries(false);
    /// # drop(b);
    /// ```
    pub fn enable_retries(mut self, on: bool) -> Self {
        self.retry.enabled = on;
        self
    }

    /// The request bytes one call keeps to send again on a retry (grpcio's
    /// `grpc.per_rpc_retry_buffer_size`; default 256 KiB). A call whose request grows past it
    /// (or past the channel's 16 MiB for all calls) is not retried.
    ///
    /// ```
    /// let b = grpc_sync::Channel::builder("localhost:50051").per_rpc_retry_buffer_size(1 << 20);
    /// # drop(b);
    /// ```
    pub fn per_rpc_retry_buffer_size(mut self, bytes: usize) -> Self {
        self.retry.per_call_buffer = bytes;
        self
    }

    /// Builds the channel. Nothing connects until the first call (or
    /// [`Channel::wait_for_ready`]).
    ///
    /// # Errors
    /// INVALID_ARGUMENT if the target or the [`http_proxy`](Self::http_proxy) URL cannot be
    /// parsed, or the [`service_config`](Self::service_config) is malformed (the message names
    /// the field).
    pub fn build(mut self) -> Result<Channel, Status> {
        let service_config = match &self.service_config {
            Some(json) => Some(
                service_config::ServiceConfig::parse(json)
                    .map_err(|e| Status::invalid_argument(format!("invalid service config: {e}")))?
                    .with_retries(self.retry),
            ),
            None => None,
        };
        if let Some(name) = &self.ssl_target_name_override {
            self.tls = self.tls.take().map(|c| c.with_server_name_override(name));
        }
        let target =
            Target::parse(&self.target).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let authority = self.authority.unwrap_or_else(|| target.authority());
        let route =
            proxy::route(&self.proxy, &proxy::process_env).map_err(Status::invalid_argument)?;
        let secure = self.tls.is_some();
        let local = self.local && !secure;
        let interval = self.min_time_between_resolutions;
        let name = target.to_string();
        let book = match (&self.resolver, &target) {
            (Some(r), _) => resolver::AddressBook::resolved(r.0.clone(), interval, name),
            (None, Target::Dns { host_port }) => resolver::AddressBook::resolved(
                Arc::new(resolver::Dns {
                    host_port: host_port.clone(),
                }),
                interval,
                name,
            ),
            (None, Target::Addrs(a)) => resolver::AddressBook::fixed(a.clone(), name),
            (None, Target::Unix(_)) => resolver::AddressBook::fixed(Vec::new(), name),
        };
        let (mut policy, mut health) = (None, None);
        if let Some(c) = &service_config {
            (policy, health) = lb::from_service_config(c)
                .map_err(|e| Status::invalid_argument(format!("invalid service config: {e}")))?;
        }
        if let (None, Some(name)) = (policy, &self.lb_policy) {
            policy = Some(lb::Policy::from_name(name).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "unknown load-balancing policy {name:?} (grpc.lb_policy_name): this client \
                     has pick_first and round_robin"
                ))
            })?);
        }
        if self.inhibit_health_checking {
            health = None;
        }
        let mut connector =
            conn::Connector::new(target.clone(), book, self.h2, self.backoff).with_proxy(route);
        if self.resolver.is_some() {
            connector = connector.with_custom_resolver();
        }
        if local {
            connector = connector.loopback_only();
        }
        if let Some(creds) = &self.tls {
            let config = creds
                .client_config()
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            let server_name = creds
                .server_name_override()
                .map(str::to_string)
                .unwrap_or_else(|| target.host());
            connector = connector.with_tls(conn::ClientTls {
                config,
                server_name,
            });
        }
        let authority = Bytes::from(authority);
        let health = lb::HealthSettings {
            service: health,
            authority: authority.clone(),
            secure,
        };
        let lb = lb::Balancer::new(policy.unwrap_or(lb::Policy::PickFirst), connector, health);
        Ok(Channel {
            inner: Arc::new(ChannelInner {
                lb,
                secure,
                authority,
                user_agent: Bytes::from(self.user_agent),
                max_send: self.max_send,
                max_recv: self.max_recv,
                compression: self.compression,
                call_credentials: self.call_credentials,
                local,
                service_config,
            }),
            interceptors: None,
        })
    }
}

struct ChannelInner {
    lb: lb::Balancer,
    /// TLS: requests say `:scheme https`.
    secure: bool,
    authority: Bytes,
    user_agent: Bytes,
    max_send: usize,
    max_recv: usize,
    compression: Option<CompressionEncoding>,
    call_credentials: Option<CallCredentials>,
    /// An insecure channel the user marked local: call credentials may go.
    local: bool,
    service_config: Option<service_config::ServiceConfig>,
}

/// A connection to a gRPC server: cheap to clone, safe to share between threads; calls from
/// every clone share one HTTP/2 connection as concurrent streams.
///
/// [`intercept_channel`] wraps one in [`ClientInterceptor`]s; stubs made from the result see
/// them on every call.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<ChannelInner>,
    /// Outermost first; `None` (not an empty list) keeps the call path free of them.
    interceptors: Option<interceptor::Interceptors>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("target", &self.inner.lb.target().to_string())
            .field(
                "interceptors",
                &self.interceptors.as_ref().map_or(0, |i| i.len()),
            )
            .finish()
    }
}

/// A call ready to be sent: its options once interceptors and call credentials have run.
struct Prepared {
    opts: CallOptions,
    deadline: Option<Instant>,
    /// The message size limits: the channel's, lowered by the service config's.
    max_send: usize,
    max_recv: usize,
    /// Reports the call's end to the interceptors (`None` without any).
    guard: Option<interceptor::CallGuard>,
    /// The method's retry policy, when the channel acts on one.
    retry: Option<retry::RetryPolicy>,
    /// The method's hedging policy, when the channel acts on one (unary calls only).
    hedge: Option<retry::HedgingPolicy>,
}

impl Prepared {
    /// Reports `outcome` to the interceptors and hands it on.
    fn finish<T>(&mut self, outcome: Result<T, Status>) -> Result<T, Status> {
        if let Some(g) = &mut self.guard {
            g.finish_with(&outcome);
        }
        outcome
    }

    /// Reports `outcome` if it is an error (the call ended before its stream was made).
    fn finish_if_err<T>(&mut self, outcome: Result<T, Status>) -> Result<T, Status> {
        match outcome {
            Ok(v) => Ok(v),
            Err(s) => self.finish(Err(s)),
        }
    }
}

/// The status for a stream that failed under a call.
fn stream_status(e: &StreamError) -> Status {
    match e {
        StreamError::Reset { reason, remote } => {
            if !remote && *reason == Reason::CANCEL {
                return Status::cancelled("Locally cancelled by application!");
            }
            // gRPC's RST_STREAM error code mapping (PROTOCOL-HTTP2).
            Status::from_h2_reason(reason.0)
        }
        StreamError::Lost(l) => Status::unavailable(l.to_string()),
        StreamError::Timeout => Status::deadline_exceeded("Deadline Exceeded"),
        StreamError::Refused => {
            Status::unavailable("the server is going away and did not process the call (GOAWAY)")
        }
        StreamError::Unsent(l) => Status::unavailable(format!("{l} (before the call was sent)")),
    }
}

/// Reads a response: head, messages, trailers, status. Shared by every call kind.
pub(crate) struct ResponseReader {
    handle: StreamHandle,
    decoder: MessageDecoder,
    /// DATA payloads taken from the stream in one go, on their way into `decoder` (kept for
    /// its capacity).
    batch: VecDeque<Bytes>,
    deadline: Option<Instant>,
    initial: Option<MetadataMap>,
    trailing: Option<MetadataMap>,
    /// The final status once known (`Some(Ok)` for OK).
    status: Option<Status>,
    /// Set by a request-sender thread that failed (for example a message over the send limit).
    sender_error: Option<Arc<std::sync::Mutex<Option<Status>>>>,
    /// The server never processed the stream (REFUSED_STREAM, or above a GOAWAY's last id):
    /// the call is safe to retry on another stream.
    refused: bool,
    /// What [`StreamHandle::recv_whole`] took, read before the handle is asked again.
    pre: Option<Whole>,
    /// A response stream's interceptors, told its status once known (unary kinds report
    /// their own, after retries and the one-message check).
    guard: Option<interceptor::CallGuard>,
    /// The call's retry state, when its method has a retry policy (`None` costs nothing).
    retry: Option<Box<retry_call::Retrier>>,
}

/// A unary response up to this size is taken in one go (see `ResponseReader::read_unary`).
const UNARY_IN_ONE_GO: usize = 256 * 1024;

impl ResponseReader {
    fn new(handle: StreamHandle, max_recv: usize, deadline: Option<Instant>) -> ResponseReader {
        ResponseReader {
            handle,
            decoder: MessageDecoder::new(max_recv),
            batch: VecDeque::new(),
            deadline,
            initial: None,
            trailing: None,
            status: None,
            sender_error: None,
            refused: false,
            pre: None,
            guard: None,
            retry: None,
        }
    }

    /// Tells the interceptors the final status, once it is known (not while a retry may
    /// still follow).
    fn report(&mut self) {
        if self.retry.as_ref().is_some_and(|r| r.live()) {
            return;
        }
        if let (Some(g), Some(s)) = (&mut self.guard, &self.status) {
            g.finish(s);
        }
    }

    /// After an attempt ended with `s` (a retried call): Ok with a new attempt under way, or
    /// the call's final status, then reported. Without a retry policy: `s` as it is.
    fn retry_or_end(&mut self, s: Status) -> Result<(), Status> {
        let Some(r) = self.retry.as_mut() else {
            return Err(s);
        };
        if !r.live() {
            return Err(s);
        }
        let refused = std::mem::take(&mut self.refused);
        // The failed attempt is over: its stream must not take more requests.
        self.handle.reset(Reason::CANCEL);
        match r.after_failure(&s, refused, self.trailing.as_ref()) {
            Ok(handle) => {
                // A fresh attempt: forget everything the failed one left.
                let max_recv = self.decoder.max_recv();
                self.handle = handle;
                self.decoder = MessageDecoder::new(max_recv);
                self.batch.clear();
                self.initial = None;
                self.trailing = None;
                self.status = None;
                self.pre = None;
                Ok(())
            }
            Err(end) => {
                self.status = Some(end.clone());
                self.report();
                Err(end)
            }
        }
    }

    /// Reads the head, retrying failed attempts (trailers-only or broken before headers)
    /// as the policy allows.
    fn read_head_retrying(&mut self) -> Result<(), Status> {
        loop {
            let r = self.read_head();
            if self.retry.is_none() {
                return r;
            }
            let failed = match r {
                Err(s) => s,
                Ok(()) => match &self.status {
                    Some(s) if s.code() != Code::Ok => s.clone(),
                    _ => return Ok(()),
                },
            };
            self.retry_or_end(failed)?;
        }
    }

    fn recv_head(&mut self) -> Result<Vec<Header>, StreamError> {
        if let Some(h) = self.pre.as_mut().and_then(|p| p.head.take()) {
            return Ok(h);
        }
        self.handle.recv_head(self.deadline)
    }

    fn recv_data(&mut self) -> Result<Recv, StreamError> {
        if let Some(p) = &mut self.pre {
            if !p.data.is_empty() {
                self.batch.append(&mut p.data);
                return Ok(Recv::Data);
            }
            if p.end {
                return Ok(Recv::End);
            }
            self.pre = None;
        }
        self.handle.recv_data(&mut self.batch, self.deadline)
    }

    fn take_trailers(&mut self) -> Option<Vec<Header>> {
        match &mut self.pre {
            Some(p) if p.end => p.trailers.take(),
            _ => self.handle.take_trailers(),
        }
    }

    fn fail(&mut self, s: Status) -> Status {
        if self.status.is_none() {
            self.status = Some(s.clone());
        }
        self.report();
        // Nothing more will be read: cancel the stream if it is still open.
        self.handle.reset(Reason::CANCEL);
        s
    }

    fn stream_failed(&mut self, e: &StreamError) -> Status {
        self.refused = matches!(
            e,
            StreamError::Refused
                | StreamError::Unsent(_)
                | StreamError::Reset {
                    reason: Reason::REFUSED_STREAM,
                    remote: true,
                }
        );
        let sent = self
            .sender_error
            .as_ref()
            .and_then(|cell| lock(cell).take());
        if let Some(s) = sent {
            return self.fail(s);
        }
        let s = stream_status(e);
        self.fail(s)
    }

    /// Reads and checks the response head. Ok(true) means a trailers-only response, whose
    /// status is now in `self.status`.
    fn read_head(&mut self) -> Result<(), Status> {
        if self.initial.is_some() {
            return Ok(());
        }
        let head = match self.recv_head() {
            Ok(h) => h,
            Err(e) => return Err(self.stream_failed(&e)),
        };
        let http = Header::find(&head, b":status")
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.parse::<u16>().ok());
        let has_status = Header::find(&head, b"grpc-status").is_some();
        if http != Some(200) {
            let s = if has_status {
                Status::from_trailers(&head)
                    .unwrap_or_else(|| Status::internal("malformed grpc-status"))
            } else {
                match http {
                    Some(code) => Status::from_http_status(code),
                    None => Status::internal("the response has no :status"),
                }
            };
            return Err(self.fail(s));
        }
        self.initial = Some(MetadataMap::from_headers(&head));
        if has_status {
            // Trailers-only: the head is also the end.
            let s = Status::from_trailers(&head)
                .unwrap_or_else(|| Status::internal("malformed grpc-status"));
            self.trailing = Some(MetadataMap::from_headers(&head));
            self.status = Some(s);
            self.report();
            return Ok(());
        }
        if let Some(r) = &mut self.retry {
            // Response headers: the call is committed to this attempt (A6).
            r.commit();
        }
        let ct = Header::find(&head, b"content-type").unwrap_or(b"");
        if !ct.starts_with(b"application/grpc") {
            let s = Status::unknown(format!(
                "the server answered with content-type {:?}, not application/grpc",
                String::from_utf8_lossy(ct)
            ));
            return Err(self.fail(s));
        }
        if let Some(enc) = Header::find(&head, b"grpc-encoding") {
            match CompressionEncoding::from_name(enc) {
                Some(e) => self.decoder.set_encoding(Some(e)),
                None => {
                    let s = Status::internal(format!(
                        "the server compresses responses with {:?}, which this client does not \
                         support (it accepts {ACCEPT_ENCODING})",
                        String::from_utf8_lossy(enc)
                    ));
                    return Err(self.fail(s));
                }
            }
        }
        Ok(())
    }

    /// The next response message; `None` at the end (then `status` is set). A retried call
    /// starts new attempts here while it may.
    fn next_message(&mut self) -> Option<Result<Bytes, Status>> {
        loop {
            let r = self.next_message_once();
            let Some(retry) = &mut self.retry else {
                return r;
            };
            match r {
                Some(Err(s)) => match self.retry_or_end(s) {
                    Ok(()) => {}
                    Err(end) => return Some(Err(end)),
                },
                None => {
                    retry.succeeded();
                    self.report();
                    return None;
                }
                Some(Ok(m)) => return Some(Ok(m)),
            }
        }
    }

    fn next_message_once(&mut self) -> Option<Result<Bytes, Status>> {
        if let Err(s) = self.read_head() {
            return Some(Err(s));
        }
        loop {
            if let Some(s) = &self.status {
                return match s.code() {
                    Code::Ok => None,
                    _ => Some(Err(s.clone())),
                };
            }
            match self.decoder.next_message() {
                Ok(Some(m)) => return Some(Ok(m)),
                Ok(None) => {}
                Err(s) => return Some(Err(self.fail(s))),
            }
            match self.recv_data() {
                Ok(Recv::Data) => self.batch.drain(..).for_each(|b| self.decoder.push(b)),
                Ok(Recv::End) => {
                    if let Err(s) = self.decoder.finish() {
                        return Some(Err(self.fail(s)));
                    }
                    let trailers = self.take_trailers().unwrap_or_default();
                    let s = Status::from_trailers(&trailers).unwrap_or_else(|| {
                        Status::internal("the server closed the stream without a grpc-status")
                    });
                    self.trailing = Some(MetadataMap::from_headers(&trailers));
                    self.status = Some(s);
                    self.report();
                }
                Err(e) => return Some(Err(self.stream_failed(&e))),
            }
        }
    }

    /// Reads exactly one message and the status (unary and client-streaming responses).
    fn read_unary(&mut self) -> Result<Response<Bytes>, Status> {
        if self.initial.is_none() && self.status.is_none() && self.pre.is_none() {
            match self.handle.recv_whole(self.deadline, UNARY_IN_ONE_GO) {
                Ok(w) => self.pre = Some(w),
                Err(e) => {
                    // Retried, the next attempt is read message by message.
                    let s = self.stream_failed(&e);
                    self.retry_or_end(s)?;
                }
            }
        }
        let first = match self.next_message() {
            Some(Ok(m)) => m,
            Some(Err(s)) => return Err(s),
            None => {
                return Err(Status::unimplemented(
                    "the server sent no response message for a unary call",
                ))
            }
        };
        let compressed = self.decoder.last_compressed();
        match self.next_message() {
            None => {}
            Some(Ok(_)) => {
                return Err(self.fail(Status::internal(
                    "the server sent more than one response message for a unary call",
                )))
            }
            Some(Err(s)) => return Err(s),
        }
        Ok(Response::new(
            first,
            self.initial.take().unwrap_or_default(),
            self.trailing.take().unwrap_or_default(),
        )
        .with_compressed(compressed))
    }
}

impl MessageSource for ResponseReader {
    fn next_message(&mut self) -> Option<Result<Bytes, Status>> {
        ResponseReader::next_message(self)
    }

    fn initial_metadata(&mut self) -> Option<&MetadataMap> {
        if self.read_head_retrying().is_err() {
            return None;
        }
        self.initial.as_ref()
    }

    fn trailing_metadata(&self) -> Option<&MetadataMap> {
        self.trailing.as_ref()
    }

    fn last_message_compressed(&self) -> bool {
        self.decoder.last_compressed()
    }

    fn cancel(&mut self) {
        if self.status.is_none() {
            self.status = Some(Status::cancelled("Locally cancelled by application!"));
        }
        if let Some(r) = &mut self.retry {
            r.end();
        }
        self.report();
        self.handle.reset(Reason::CANCEL);
    }

    fn abort(&mut self, status: &Status) {
        if let Some(r) = &mut self.retry {
            r.end();
        }
        self.fail(status.clone());
    }
}

fn decode<T: Message + Default>(b: Bytes) -> Result<T, Status> {
    T::decode(b)
        .map_err(|e| Status::internal(format!("failed to decode the response message: {e}")))
}

/// Where a streaming call's sender thread writes: the stream, or (with a retry policy) the
/// replay buffer that also sends on the current attempt.
enum Sink {
    Direct(StreamHandle),
    Replay(Arc<retry_call::StreamReplay>),
}

impl Sink {
    /// Sends one framed message; false once the call ended (stop pulling requests).
    fn send(&self, framed: &[u8], deadline: Option<Instant>) -> bool {
        match self {
            Sink::Direct(view) => view.send_stream_message(framed, deadline).is_ok(),
            Sink::Replay(r) => r.send(framed, deadline),
        }
    }

    fn end(&self, deadline: Option<Instant>) {
        match self {
            Sink::Direct(view) => {
                let _ = view.send_data(&[], true, deadline);
            }
            Sink::Replay(r) => r.end(deadline),
        }
    }

    fn fail(&self) {
        match self {
            Sink::Direct(view) => view.reset(Reason::CANCEL),
            Sink::Replay(r) => r.fail(),
        }
    }
}

/// Writes the request messages of a streaming call; ends with END_STREAM.
fn spawn_sender<Req, I>(
    sink: Sink,
    iter: I,
    max_send: usize,
    encoding: Option<CompressionEncoding>,
    deadline: Option<Instant>,
    error: Arc<std::sync::Mutex<Option<Status>>>,
) where
    Req: Message + 'static,
    I: Iterator<Item = Req> + Send + 'static,
{
    let body = move || {
        let mut buf = BytesMut::new();
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for msg in iter {
                buf.clear();
                codec::encode_message_with(&msg, &mut buf, max_send, encoding)?;
                if !sink.send(&buf, deadline) {
                    // The call ended (response, reset, deadline): stop pulling requests.
                    return Ok(());
                }
            }
            sink.end(deadline);
            Ok(())
        }));
        let err = match res {
            Ok(Ok(())) => None,
            Ok(Err(s)) => Some(s),
            Err(_) => Some(Status::unknown("the request iterator panicked")),
        };
        if let Some(s) = err {
            *lock(&error) = Some(s);
            sink.fail();
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("grpc-request-sender".into())
        .spawn(body)
    {
        // No thread: fail the call rather than hang it.
        let _ = e;
    }
}

/// The sending half of an interactive bidi call: send messages one by one, then
/// [`close`](RequestSender::close) (dropping it closes too).
pub struct RequestSender<T> {
    view: StreamHandle,
    max_send: usize,
    /// The call's coding (named in its `grpc-encoding`), if it compresses.
    encoding: Option<CompressionEncoding>,
    /// Whether the next messages are compressed (when the call compresses).
    compress: bool,
    deadline: Option<Instant>,
    closed: bool,
    buf: BytesMut,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T: Message> RequestSender<T> {
    /// Sends one message, blocking while the server's window is closed.
    ///
    /// # Errors
    /// The call's failure (the server ended it, deadline, connection lost), or
    /// RESOURCE_EXHAUSTED for a message over the send limit.
    pub fn send(&mut self, msg: T) -> Result<(), Status> {
        if self.closed {
            return Err(Status::failed_precondition("the request stream is closed"));
        }
        self.buf.clear();
        let enc = self.encoding.filter(|_| self.compress);
        codec::encode_message_with(&msg, &mut self.buf, self.max_send, enc)?;
        self.view
            .send_data(&self.buf, false, self.deadline)
            .map_err(|e| stream_status(&e))
    }

    /// Turns compression of the following messages off or back on (grpc-java's
    /// `setMessageCompression`). It only matters when the call compresses (per-call or
    /// channel [`CompressionEncoding`]); messages are compressed by default then.
    pub fn set_message_compression(&mut self, on: bool) {
        self.compress = on;
    }

    /// Half-closes: tells the server no more requests come.
    pub fn close(mut self) -> Result<(), Status> {
        self.half_close()
    }

    fn half_close(&mut self) -> Result<(), Status> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.view
            .send_data(&[], true, self.deadline)
            .map_err(|e| stream_status(&e))
    }
}

impl<T> Drop for RequestSender<T> {
    fn drop(&mut self) {
        if !self.closed {
            self.closed = true;
            let _ = self.view.send_data(&[], true, self.deadline);
        }
    }
}

impl<T> std::fmt::Debug for RequestSender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSender")
            .field("stream", &self.view.id())
            .field("closed", &self.closed)
            .finish()
    }
}

impl Channel {
    /// A channel without TLS to `target` (`host:port`, `dns:///host:port`, `ipv4:…`,
    /// `[::1]:port`, `unix:/path`); grpcio's `insecure_channel`. Connects lazily.
    ///
    /// # Errors
    /// INVALID_ARGUMENT if the target cannot be parsed.
    pub fn insecure(target: &str) -> Result<Channel, Status> {
        Channel::builder(target).build()
    }

    /// Configures a channel to `target`.
    pub fn builder(target: &str) -> ChannelBuilder {
        ChannelBuilder {
            target: target.to_string(),
            max_send: usize::MAX,
            max_recv: 4 * 1024 * 1024,
            user_agent: format!("grpc-sync/{}", env!("CARGO_PKG_VERSION")),
            backoff: BackoffConfig::default(),
            h2: H2Config {
                // grpcio's client_idle_timeout: a channel without calls for 30 min lets go of
                // its connection; the next call reconnects.
                keepalive: crate::h2::keepalive::KeepaliveConfig {
                    max_connection_idle: Some(Duration::from_secs(30 * 60)),
                    ..Default::default()
                },
                ..H2Config::default()
            },
            authority: None,
            compression: None,
            tls: None,
            ssl_target_name_override: None,
            absolute_metadata_size_given: false,
            call_credentials: None,
            local: false,
            proxy: proxy::ProxyOptions::default(),
            service_config: None,
            lb_policy: None,
            resolver: None,
            min_time_between_resolutions: resolver::DEFAULT_MIN_INTERVAL,
            inhibit_health_checking: false,
            retry: retry::RetryOptions::default(),
        }
    }

    /// A TLS channel to `target` (grpcio's `secure_channel(target, ssl_channel_credentials(..))`).
    /// Connects lazily; the server must negotiate ALPN `h2`, and its certificate must chain to
    /// the credentials' roots and match the target's host (or the name override).
    /// Credentials made with
    /// [`ChannelCredentials::with_call_credentials`](crate::ChannelCredentials::with_call_credentials)
    /// also send call credentials with every call (grpcio's `composite_channel_credentials`).
    ///
    /// # Errors
    /// INVALID_ARGUMENT if the target cannot be parsed or the credentials are unusable.
    pub fn secure(
        target: &str,
        credentials: impl Into<CompositeChannelCredentials>,
    ) -> Result<Channel, Status> {
        Channel::builder(target).tls(credentials).build()
    }

    /// Connects now, waiting through back-off until `timeout` (grpcio's
    /// `channel_ready_future(channel).result(timeout)`).
    ///
    /// # Errors
    /// DEADLINE_EXCEEDED if no connection was made in time; the message names the last
    /// connection error.
    pub fn wait_for_ready(&self, timeout: Duration) -> Result<(), Status> {
        self.inner
            .lb
            .pick(true, Some(Instant::now() + timeout))
            .map(|_| ())
    }

    /// The connectivity state; with `try_to_connect`, an idle channel connects. A
    /// `round_robin` channel aggregates its subchannels as gRPC does: READY if any is READY
    /// (and SERVING, with health checking), else CONNECTING if any is connecting, else IDLE
    /// if any is idle, else TRANSIENT_FAILURE.
    pub fn state(&self, try_to_connect: bool) -> ConnectivityState {
        self.inner.lb.state(try_to_connect)
    }

    /// Closes the channel: new calls fail with CANCELLED; calls in flight finish.
    pub fn close(&self) {
        self.inner.lb.shutdown();
    }

    fn request_headers(
        &self,
        path: &'static str,
        opts: &CallOptions,
        deadline: Option<Instant>,
    ) -> Vec<Header> {
        let mut h = Vec::with_capacity(8 + opts.metadata.len());
        h.push(Header::from_static(b":method", b"POST"));
        if self.inner.secure {
            h.push(Header::from_static(b":scheme", b"https"));
        } else {
            h.push(Header::from_static(b":scheme", b"http"));
        }
        h.push(Header::new(
            Bytes::from_static(b":path"),
            Bytes::from_static(path.as_bytes()),
        ));
        h.push(Header::new(
            Bytes::from_static(b":authority"),
            self.inner.authority.clone(),
        ));
        h.push(Header::from_static(b"content-type", b"application/grpc"));
        h.push(Header::from_static(b"te", b"trailers"));
        h.push(Header::new(
            Bytes::from_static(b"user-agent"),
            self.inner.user_agent.clone(),
        ));
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            h.push(Header::new(
                Bytes::from_static(b"grpc-timeout"),
                Bytes::from(encode_grpc_timeout(left)),
            ));
        }
        if let Some(e) = self.call_encoding(opts) {
            h.push(Header::new(
                Bytes::from_static(b"grpc-encoding"),
                Bytes::from_static(e.as_str().as_bytes()),
            ));
        }
        h.push(Header::new(
            Bytes::from_static(b"grpc-accept-encoding"),
            Bytes::from_static(ACCEPT_ENCODING.as_bytes()),
        ));
        opts.metadata.to_headers(&mut h);
        h
    }

    /// The channel's retry state (throttle, buffer), when it acts on retry policies.
    fn retry_state(&self) -> Option<&retry::ChannelRetry> {
        self.inner.service_config.as_ref()?.retry.as_deref()
    }

    /// The coding of a call's requests: its own, else the channel's; `None` for identity.
    fn call_encoding(&self, opts: &CallOptions) -> Option<CompressionEncoding> {
        opts.compression
            .or(self.inner.compression)
            .filter(|e| e.is_compressed())
    }

    /// Opens a stream for `path`, optionally with a whole (framed) request that ends it.
    /// Retries transparently on a new connection when the old one refused the stream before
    /// the server saw it.
    fn open(
        &self,
        path: &'static str,
        opts: &CallOptions,
        deadline: Option<Instant>,
        request: Option<&[u8]>,
    ) -> Result<StreamHandle, Status> {
        opts.check()?;
        let headers = self.request_headers(path, opts, deadline);
        loop {
            let shared: Arc<Shared> = self.inner.lb.pick(opts.wait_for_ready, deadline)?;
            let mut st = shared.lock();
            let id = loop {
                if st.lost.is_some() || st.write_failed || st.goaway.is_some() {
                    break None;
                }
                if st.conn.can_open_stream() {
                    let head_at = st.taken + st.conn.pending_output() as u64;
                    match st.conn.open_stream(&headers, false) {
                        Ok(id) => break Some((id, head_at)),
                        Err(SendError::StreamLimit) => {}
                        // Over the server's SETTINGS_MAX_HEADER_LIST_SIZE: no connection
                        // would take it (grpcio fails the call the same way).
                        Err(SendError::HeaderListTooLarge) => {
                            return Err(Status::resource_exhausted(format!(
                                "the request's metadata exceeds the server's header list \
                                 limit of {} bytes",
                                st.conn.remote_settings().max_header_list_size
                            )));
                        }
                        Err(_) => break None,
                    }
                }
                // Wait for a free stream (MAX_CONCURRENT_STREAMS) rather than fail.
                let cv = st.conn_cv.clone();
                let (g, timed_out) = shared.wait(&cv, st, deadline);
                st = g;
                if timed_out {
                    return Err(Status::deadline_exceeded(
                        "Deadline Exceeded while waiting for a free stream",
                    ));
                }
            };
            let Some((id, head_at)) = id else {
                // This connection cannot take new streams: the connector makes a new one.
                drop(st);
                continue;
            };
            st.insert_slot(id);
            if let Some(slot) = st.streams.get_mut(&id) {
                slot.head_at = Some(head_at);
            }
            let handle = StreamHandle::attach(shared.clone(), &mut st, id);
            let mut rest: &[u8] = &[];
            if let Some(req) = request {
                match st.conn.send_data(id, req, true) {
                    Ok(n) if n == req.len() => {
                        if let Some(slot) = st.streams.get_mut(&id) {
                            slot.sent_end = true;
                        }
                    }
                    Ok(n) => rest = &req[n..],
                    Err(_) => rest = req,
                }
            }
            shared.flush(st);
            if request.is_some() && !rest.is_empty() {
                match handle.send_data(rest, true, deadline) {
                    Ok(()) => {}
                    // The server ended the stream before reading all of the request (a
                    // request over its size limit: trailers, then RST_STREAM NO_ERROR, as
                    // RFC 9113 §8.1 allows). Its response says why; the reader finds it, or
                    // reports the reset if there is none.
                    Err(StreamError::Reset { remote: true, .. }) => {}
                    Err(e) => return Err(stream_status(&e)),
                }
            }
            return Ok(handle);
        }
    }

    fn encode<Req: Message>(&self, msg: &Req, p: &Prepared) -> Result<BytesMut, Status> {
        let mut buf = BytesMut::with_capacity(5 + msg.encoded_len());
        let enc = self.call_encoding(&p.opts);
        codec::encode_message_with(msg, &mut buf, p.max_send, enc)?;
        Ok(buf)
    }

    /// Runs the interceptors' `before_call` hooks and the call credentials, and fixes the
    /// deadline. Without interceptors or credentials this only computes the deadline.
    ///
    /// # Errors
    /// A status from an interceptor or the credentials (already reported to the
    /// interceptors).
    fn prepare(
        &self,
        path: &'static str,
        kind: CallKind,
        mut opts: CallOptions,
    ) -> Result<Prepared, Status> {
        let (mut max_send, mut max_recv) = (self.inner.max_send, self.inner.max_recv);
        let (mut retry, mut hedge) = (None, None);
        if let Some(c) = &self.inner.service_config {
            if let Some(m) = c.method(path) {
                m.apply(&mut opts);
                max_send = max_send.min(m.max_request_bytes.unwrap_or(usize::MAX));
                max_recv = max_recv.min(m.max_response_bytes.unwrap_or(usize::MAX));
                // `c.retry` is there only when retries are on.
                retry = m.retry_policy.filter(|_| c.retry.is_some());
                hedge = m.hedging_policy.filter(|_| c.retry.is_some());
            }
        }
        let creds = self.inner.call_credentials.is_some() || opts.credentials.is_some();
        if self.interceptors.is_none() && !creds {
            return Ok(Prepared {
                deadline: opts.timeout.map(|t| Instant::now() + t),
                opts,
                max_send,
                max_recv,
                guard: None,
                retry,
                hedge,
            });
        }
        let mut guard = None;
        if let Some(list) = &self.interceptors {
            let (mut g, r) = interceptor::CallGuard::start(list, path, kind, &mut opts);
            if let Err(s) = r {
                g.finish(&s);
                return Err(s);
            }
            guard = Some(g);
        }
        // Counted from here: the time the interceptors took is not the server's.
        let mut p = Prepared {
            deadline: opts.timeout.map(|t| Instant::now() + t),
            opts,
            max_send,
            max_recv,
            guard,
            retry,
            hedge,
        };
        let res = self.add_credentials(path, &mut p);
        p.finish_if_err(res)?;
        Ok(p)
    }

    /// Adds the channel's and then the call's call credentials to the request metadata.
    fn add_credentials(&self, path: &'static str, p: &mut Prepared) -> Result<(), Status> {
        let inner = &self.inner;
        let (channel, call) = (&inner.call_credentials, &p.opts.credentials);
        if channel.is_none() && call.is_none() {
            return Ok(());
        }
        if !inner.secure && !inner.local {
            // grpcio's check: the token must not travel in clear text. Nothing is sent.
            return Err(Status::unauthenticated(
                "call credentials require a secure channel (TLS) or one marked local \
                 (ChannelBuilder::local); this channel is insecure, so the call was not sent \
                 (established channel does not have a sufficient security level to transfer \
                 call credential)",
            ));
        }
        let scheme = if inner.secure { "https" } else { "http" };
        let authority = String::from_utf8_lossy(&inner.authority);
        let ctx = AuthMetadataContext::for_call(scheme, &authority, path);
        let mut md = MetadataMap::new();
        for c in [channel, call].into_iter().flatten() {
            c.apply(&ctx, p.deadline, &mut md)?;
        }
        p.opts.metadata.merge(md);
        Ok(())
    }

    /// Sends one request and reads the whole response, retrying when the server refused the
    /// stream unseen.
    fn unary_raw(
        &self,
        path: &'static str,
        framed: &[u8],
        p: &Prepared,
    ) -> Result<Response<Bytes>, Status> {
        if let Some(policy) = p.hedge {
            if let Some(res) = hedge::unary(self, path, framed, p, policy, None) {
                return res;
            }
        }
        let retry = self.whole_retrier(path, framed, p);
        self.unary_attempts(path, framed, p, retry)
    }

    /// A retrier for a call with a single request, if its method has a retry policy.
    fn whole_retrier(
        &self,
        path: &'static str,
        framed: &[u8],
        p: &Prepared,
    ) -> Option<Box<retry_call::Retrier>> {
        let policy = p.retry?;
        retry_call::Retrier::whole(self, path, &p.opts, p.deadline, policy, framed).map(Box::new)
    }

    /// Opens the first attempt of a call with a single request. With a retry policy, a
    /// stream that cannot be opened (no connection) is a failed attempt like any other.
    fn open_first(
        &self,
        path: &'static str,
        p: &Prepared,
        framed: &[u8],
        retry: &mut Option<Box<retry_call::Retrier>>,
    ) -> Result<StreamHandle, Status> {
        match self.open(path, &p.opts, p.deadline, Some(framed)) {
            Err(s) => match retry {
                Some(r) => r.after_failure(&s, false, None),
                None => Err(s),
            },
            ok => ok,
        }
    }

    /// [`unary_raw`](Self::unary_raw) with the call's retrier, if any.
    fn unary_attempts(
        &self,
        path: &'static str,
        framed: &[u8],
        p: &Prepared,
        mut retry: Option<Box<retry_call::Retrier>>,
    ) -> Result<Response<Bytes>, Status> {
        let deadline = p.deadline;
        // The server saw nothing of a refused stream, so the request can go again; a few
        // times at most, in case the server keeps refusing (a lower MAX_CONCURRENT_STREAMS
        // than the client assumed before the server's SETTINGS arrived). (With a retry policy
        // the reader does this itself.)
        let mut tries = 0;
        loop {
            let handle = self.open_first(path, p, framed, &mut retry)?;
            if let Some(r) = &retry {
                r.attach(&handle);
            }
            let mut reader = ResponseReader::new(handle, p.max_recv, deadline);
            reader.retry = retry.take();
            match reader.read_unary() {
                Err(_) if reader.refused && tries < 5 => tries += 1,
                other => return other,
            }
        }
    }

    /// A unary call (what generated `say_hello(req)` calls).
    ///
    /// # Errors
    /// The call's [`Status`]: the server's, or one made here (UNAVAILABLE for a connection
    /// failure naming the address, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED for size limits…).
    pub fn unary<Req, Resp>(
        &self,
        path: &'static str,
        req: Request<Req>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Message + 'static,
        Resp: Message + Default + 'static,
    {
        let (msg, opts) = req.into_parts();
        let mut p = self.prepare(path, CallKind::Unary, opts)?;
        let res = self
            .encode(&msg, &p)
            .and_then(|framed| self.unary_raw(path, &framed, &p)?.try_map(decode));
        p.finish(res)
    }

    /// A unary call returning at once with a [`CallFuture`] (grpcio's `.future()`).
    pub fn unary_future<Req, Resp>(
        &self,
        path: &'static str,
        req: Request<Req>,
    ) -> CallFuture<Response<Resp>>
    where
        Req: Message + 'static,
        Resp: Message + Default + Clone + Send + 'static,
    {
        let (msg, opts) = req.into_parts();
        let mut p = match self.prepare(path, CallKind::Unary, opts) {
            Ok(p) => p,
            Err(s) => return CallFuture::ready(Err(s)),
        };
        if p.retry.is_some() || p.hedge.is_some() {
            return self.retrying_future(path, msg, p);
        }
        let opened = self
            .encode(&msg, &p)
            .and_then(|framed| self.open(path, &p.opts, p.deadline, Some(&framed)));
        let handle = match opened {
            Ok(h) => h,
            Err(s) => return CallFuture::ready(p.finish(Err(s))),
        };
        let probe = handle.view();
        CallFuture::pending(
            probe,
            Box::new(move |_| {
                let mut reader = ResponseReader::new(handle, p.max_recv, p.deadline);
                let res = reader.read_unary().and_then(|r| r.try_map(decode));
                p.finish(res)
            }),
        )
    }

    /// A unary future whose method has a retry or hedging policy: attempts may wait out
    /// back-offs or hedging delays, so the call runs on a thread of its own (futures without
    /// a policy need none).
    fn retrying_future<Req, Resp>(
        &self,
        path: &'static str,
        msg: Req,
        mut p: Prepared,
    ) -> CallFuture<Response<Resp>>
    where
        Req: Message + 'static,
        Resp: Message + Default + Clone + Send + 'static,
    {
        let framed = match self.encode(&msg, &p) {
            Ok(f) => f,
            Err(s) => return CallFuture::ready(p.finish(Err(s))),
        };
        let cell = Arc::new(retry_call::CancelCell::default());
        let retry = self
            .whole_retrier(path, &framed, &p)
            .map(|r| Box::new(r.with_cancel(cell.clone())));
        let channel = self.clone();
        CallFuture::spawned(cell.clone(), move || {
            let hedged = p
                .hedge
                .and_then(|h| hedge::unary(&channel, path, &framed, &p, h, Some(&cell)));
            let res = match hedged {
                Some(res) => res,
                None => channel.unary_attempts(path, &framed, &p, retry),
            };
            p.finish(res.and_then(|r| r.try_map(decode)))
        })
    }

    /// A server-streaming call: the response messages as an iterator.
    ///
    /// # Errors
    /// Only failures before the call starts (connection, encoding); the rest arrive as the
    /// iterator's items.
    pub fn server_streaming<Req, Resp>(
        &self,
        path: &'static str,
        req: Request<Req>,
    ) -> Result<Streaming<Resp>, Status>
    where
        Req: Message + 'static,
        Resp: Message + Default + 'static,
    {
        let (msg, opts) = req.into_parts();
        let mut p = self.prepare(path, CallKind::ServerStreaming, opts)?;
        let mut retry = None;
        let opened = self.encode(&msg, &p).and_then(|framed| {
            retry = self.whole_retrier(path, &framed, &p);
            self.open_first(path, &p, &framed, &mut retry)
        });
        let handle = p.finish_if_err(opened)?;
        let mut reader = ResponseReader::new(handle, p.max_recv, p.deadline);
        reader.guard = p.guard.take();
        reader.retry = retry;
        Ok(Streaming::from_source(reader))
    }

    /// Opens a client- or bidi-streaming call whose requests `iter` yields (drained on a
    /// helper thread).
    fn start_streaming<Req, I>(
        &self,
        path: &'static str,
        iter: I,
        p: &Prepared,
    ) -> Result<ResponseReader, Status>
    where
        Req: Message + 'static,
        I: Iterator<Item = Req> + Send + 'static,
    {
        // With a retry policy, a first stream that cannot be opened (no connection) is a
        // failed attempt the policy decides on, as for the other call kinds.
        let mut opened_after = None;
        let handle = match (self.open(path, &p.opts, p.deadline, None), p.retry) {
            (Ok(h), _) => h,
            (Err(s), Some(policy)) if self.retry_state().is_some() => {
                let mut r = retry_call::Retrier::new(
                    self,
                    path,
                    &p.opts,
                    p.deadline,
                    policy,
                    retry_call::Replay::Open,
                );
                let h = r.after_failure(&s, false, None)?;
                opened_after = Some(r);
                h
            }
            (Err(s), _) => return Err(s),
        };
        let error = Arc::new(std::sync::Mutex::new(None));
        let mut retry = None;
        let sink = match (p.retry, self.retry_state()) {
            (Some(policy), Some(shared)) => {
                let replay = retry_call::StreamReplay::new(handle.view(), shared.call_buffer());
                let stream = retry_call::Replay::Stream(replay.clone());
                retry = Some(Box::new(match opened_after {
                    Some(r) => r.with_replay(stream),
                    None => {
                        retry_call::Retrier::new(self, path, &p.opts, p.deadline, policy, stream)
                    }
                }));
                Sink::Replay(replay)
            }
            _ => Sink::Direct(handle.view()),
        };
        spawn_sender(
            sink,
            iter,
            p.max_send,
            self.call_encoding(&p.opts),
            p.deadline,
            error.clone(),
        );
        let mut reader = ResponseReader::new(handle, p.max_recv, p.deadline);
        reader.sender_error = Some(error);
        reader.retry = retry;
        Ok(reader)
    }

    /// A client-streaming call: `req`'s iterator is drained on a helper thread.
    ///
    /// # Errors
    /// The call's [`Status`].
    pub fn client_streaming<Req, Resp, I>(
        &self,
        path: &'static str,
        req: Request<I>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Message + 'static,
        Resp: Message + Default + 'static,
        I: Iterator<Item = Req> + Send + 'static,
    {
        let (iter, opts) = req.into_parts();
        let mut p = self.prepare(path, CallKind::ClientStreaming, opts)?;
        let res = self
            .start_streaming(path, iter, &p)
            .and_then(|mut reader| reader.read_unary()?.try_map(decode));
        p.finish(res)
    }

    /// A client-streaming call returning a [`CallFuture`].
    pub fn client_streaming_future<Req, Resp, I>(
        &self,
        path: &'static str,
        req: Request<I>,
    ) -> CallFuture<Response<Resp>>
    where
        Req: Message + 'static,
        Resp: Message + Default + Clone + Send + 'static,
        I: Iterator<Item = Req> + Send + 'static,
    {
        let (iter, opts) = req.into_parts();
        let mut p = match self.prepare(path, CallKind::ClientStreaming, opts) {
            Ok(p) => p,
            Err(s) => return CallFuture::ready(Err(s)),
        };
        let mut reader = match self.start_streaming(path, iter, &p) {
            Ok(r) => r,
            Err(s) => return CallFuture::ready(p.finish(Err(s))),
        };
        if let Some(r) = &mut reader.retry {
            // Attempts may wait out back-offs: the call is read on a thread of its own.
            let cell = Arc::new(retry_call::CancelCell::default());
            r.set_cancel(cell.clone());
            r.attach(&reader.handle);
            return CallFuture::spawned(cell, move || {
                let res = reader.read_unary().and_then(|r| r.try_map(decode));
                p.finish(res)
            });
        }
        let probe = reader.handle.view();
        CallFuture::pending(
            probe,
            Box::new(move |_| {
                let res = reader.read_unary().and_then(|r| r.try_map(decode));
                p.finish(res)
            }),
        )
    }

    /// A bidirectional-streaming call: requests drained on a helper thread, responses as an
    /// iterator.
    ///
    /// # Errors
    /// Only failures before the call starts.
    pub fn bidi_streaming<Req, Resp, I>(
        &self,
        path: &'static str,
        req: Request<I>,
    ) -> Result<Streaming<Resp>, Status>
    where
        Req: Message + 'static,
        Resp: Message + Default + 'static,
        I: Iterator<Item = Req> + Send + 'static,
    {
        let (iter, opts) = req.into_parts();
        let mut p = self.prepare(path, CallKind::BidiStreaming, opts)?;
        let started = self.start_streaming(path, iter, &p);
        let mut reader = p.finish_if_err(started)?;
        reader.guard = p.guard.take();
        Ok(Streaming::from_source(reader))
    }

    /// A bidirectional-streaming call driven by hand: send with the [`RequestSender`], read
    /// from the [`Streaming`], in any order (ping-pong).
    ///
    /// A retry policy does not apply: the call is committed at once, since its messages go
    /// out as they are sent, with nothing kept to replay on a new attempt.
    ///
    /// # Errors
    /// Only failures before the call starts.
    pub fn bidi_interactive<Req, Resp>(
        &self,
        path: &'static str,
        options: CallOptions,
    ) -> Result<(RequestSender<Req>, Streaming<Resp>), Status>
    where
        Req: Message + 'static,
        Resp: Message + Default + 'static,
    {
        let mut p = self.prepare(path, CallKind::BidiStreaming, options)?;
        let opened = self.open(path, &p.opts, p.deadline, None);
        let handle = p.finish_if_err(opened)?;
        let sender = RequestSender {
            view: handle.view(),
            max_send: p.max_send,
            encoding: self.call_encoding(&p.opts),
            compress: true,
            deadline: p.deadline,
            closed: false,
            buf: BytesMut::new(),
            _t: std::marker::PhantomData,
        };
        let mut reader = ResponseReader::new(handle, p.max_recv, p.deadline);
        reader.guard = p.guard.take();
        Ok((sender, Streaming::from_source(reader)))
    }
}
