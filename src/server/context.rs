//! `ServerContext`: what a handler knows about its call, and how it talks back out of band.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use prost::Message;

use crate::codec;
use crate::compression::{AcceptEncoding, CompressionEncoding, ACCEPT_ENCODING};
use crate::h2::error::Reason;
use crate::h2::hpack::Header;
use crate::metadata::MetadataMap;
use crate::server::interceptor::Extensions;
use crate::status::{Code, Status};
use crate::transport::driver::{lock, StreamError, StreamHandle};
use crate::transport::tls::{AuthContext, PeerIdentity};

type Callback = Box<dyn FnOnce() + Send + 'static>;

/// Per-call state shared between the handler's context and the connection's reader thread
/// (which marks it cancelled when the stream is reset, the deadline passes or the connection
/// dies).
#[derive(Default)]
pub(crate) struct CallState {
    inner: Mutex<CallInner>,
}

#[derive(Default)]
struct CallInner {
    headers_sent: bool,
    finished: bool,
    cancelled: bool,
    /// When the call was ended from outside (see [`CallState::cancel_from_outside`]).
    cut_at: Option<Instant>,
    initial: MetadataMap,
    trailing: MetadataMap,
    callbacks: Vec<Callback>,
}

impl CallState {
    /// Marks the call terminated from outside (reset, deadline, connection loss) and returns
    /// the done-callbacks for the caller to run outside any lock.
    pub fn cancel_from_outside(&self) -> Vec<Callback> {
        let mut g = lock(&self.inner);
        g.cancelled = true;
        if g.finished {
            return Vec::new();
        }
        g.finished = true;
        g.cut_at = Some(Instant::now());
        std::mem::take(&mut g.callbacks)
    }

    /// Whether the call has ended or been cancelled.
    pub fn is_over(&self) -> bool {
        let g = lock(&self.inner);
        g.cancelled || g.finished
    }
}

/// The context of one RPC on the server, passed to every handler.
///
/// The Rust twin of grpcio's `ServicerContext`: invocation metadata, peer, deadline,
/// `is_active`, initial and trailing metadata, done callbacks and cancellation.
pub struct ServerContext {
    pub(crate) stream: StreamHandle,
    pub(crate) call: Arc<CallState>,
    /// The request head; `metadata` is built from it on first use (most handlers never ask).
    head: Vec<Header>,
    metadata: std::sync::OnceLock<MetadataMap>,
    peer: Arc<str>,
    method: Arc<str>,
    deadline: Option<Instant>,
    max_send: usize,
    /// The coding of the request's compressed messages (`grpc-encoding`), if any.
    request_encoding: Option<CompressionEncoding>,
    /// What the request reader of a streaming call reports: whether the last message
    /// arrived compressed, and how many arrived.
    pub(crate) request_stats: Arc<RequestStats>,
    /// What the client reads (`grpc-accept-encoding`).
    accept: AcceptEncoding,
    /// The response coding: an [`encoding_code`]; 0 for none.
    response_encoding: AtomicU8,
    /// Set once a message was compressed or the head was sent: the coding is then fixed.
    encoding_fixed: AtomicBool,
    /// Send the next response message uncompressed.
    skip_next: AtomicBool,
    /// What TLS established about the connection, on secure ports.
    auth: Option<Arc<AuthContext>>,
    /// The response head was sent by [`ensure_headers`](Self::ensure_headers).
    head_sent: AtomicBool,
    /// Typed values the interceptors attached.
    pub(crate) extensions: Extensions,
    /// Response metadata the interceptors added: sent before the handler's initial metadata
    /// and after its trailing metadata.
    pub(crate) added_initial: MetadataMap,
    pub(crate) added_trailing: MetadataMap,
}

/// Shared between a call's context and its request reader.
#[derive(Default)]
pub(crate) struct RequestStats {
    /// Whether the last request message read arrived compressed.
    pub compressed: AtomicBool,
    /// Request messages read so far.
    pub received: AtomicU64,
}

fn encoding_code(e: Option<CompressionEncoding>) -> u8 {
    match e {
        Some(CompressionEncoding::Gzip) => 1,
        Some(CompressionEncoding::Deflate) => 2,
        _ => 0,
    }
}

fn encoding_from_code(c: u8) -> Option<CompressionEncoding> {
    match c {
        1 => Some(CompressionEncoding::Gzip),
        2 => Some(CompressionEncoding::Deflate),
        _ => None,
    }
}

impl ServerContext {
    pub(crate) fn new(
        stream: StreamHandle,
        call: Arc<CallState>,
        head: Vec<Header>,
        peer: Arc<str>,
        method: Arc<str>,
        deadline: Option<Instant>,
        max_send: usize,
    ) -> ServerContext {
        ServerContext {
            stream,
            call,
            head,
            metadata: std::sync::OnceLock::new(),
            peer,
            method,
            deadline,
            max_send,
            request_encoding: None,
            request_stats: Arc::default(),
            accept: AcceptEncoding::IDENTITY,
            response_encoding: AtomicU8::new(0),
            encoding_fixed: AtomicBool::new(false),
            skip_next: AtomicBool::new(false),
            auth: None,
            head_sent: AtomicBool::new(false),
            extensions: Extensions::new(),
            added_initial: MetadataMap::new(),
            added_trailing: MetadataMap::new(),
        }
    }

    /// Sets what the request head said about compression, and the server's default response
    /// coding (used only if the client accepts it).
    pub(crate) fn with_compression(
        mut self,
        request_encoding: Option<CompressionEncoding>,
        accept: AcceptEncoding,
        default: Option<CompressionEncoding>,
        first_compressed: bool,
    ) -> ServerContext {
        self.request_encoding = request_encoding.filter(|e| e.is_compressed());
        self.accept = accept;
        self.request_stats
            .compressed
            .store(first_compressed, Ordering::Relaxed);
        if let Some(e) = default.filter(|&e| accept.accepts(e)) {
            self.response_encoding = AtomicU8::new(encoding_code(Some(e)));
        }
        self
    }

    /// The coding of the client's compressed request messages (its `grpc-encoding`), `None`
    /// for identity.
    pub fn request_encoding(&self) -> Option<CompressionEncoding> {
        self.request_encoding
    }

    /// Whether the request message (for streaming calls: the last one read) arrived
    /// compressed, with its compressed flag set.
    pub fn request_compressed(&self) -> bool {
        self.request_stats.compressed.load(Ordering::Acquire)
    }

    /// Counts the single request message of a unary or server-streaming call.
    pub(crate) fn with_request(self, arrived: bool) -> ServerContext {
        if arrived {
            self.request_stats.received.store(1, Ordering::Relaxed);
        }
        self
    }

    /// Request messages read so far.
    pub(crate) fn messages_received(&self) -> u64 {
        self.request_stats.received.load(Ordering::Relaxed)
    }

    /// Typed values that the server's interceptors attached to this call (see
    /// [`ServerInterceptor`](crate::server::ServerInterceptor)).
    ///
    /// ```
    /// use grpc_sync::{ServerContext, Status};
    /// struct User(String);
    /// # #[derive(Clone, PartialEq, grpc_sync::prost::Message)] struct Msg { #[prost(string, tag = "1")] s: String }
    /// // A handler behind an interceptor that inserted a `User`:
    /// fn whoami(_: Msg, ctx: &ServerContext) -> Result<Msg, Status> {
    ///     let user = ctx
    ///         .extensions()
    ///         .get::<User>()
    ///         .ok_or_else(|| Status::unauthenticated("no user"))?;
    ///     Ok(Msg { s: user.0.clone() })
    /// }
    /// # drop(whoami);
    /// ```
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The codings the client accepts for responses (its `grpc-accept-encoding`).
    pub fn accept_encoding(&self) -> AcceptEncoding {
        self.accept
    }

    /// The coding responses are compressed with, `None` for identity.
    pub fn compression(&self) -> Option<CompressionEncoding> {
        encoding_from_code(self.response_encoding.load(Ordering::Acquire))
    }

    /// Compresses this call's response messages with `encoding` (grpcio's
    /// `context.set_compression`), overriding the server's default.
    ///
    /// Returns false, changing nothing, if the client does not accept `encoding` (its
    /// `grpc-accept-encoding`; responses then stay uncompressed, which every client reads), or
    /// if the response headers were already sent or a message already compressed (the
    /// coding is named in the headers and cannot change).
    pub fn set_compression(&self, encoding: CompressionEncoding) -> bool {
        if !self.accept.accepts(encoding)
            || self.encoding_fixed.load(Ordering::Acquire)
            || lock(&self.call.inner).headers_sent
        {
            return false;
        }
        self.response_encoding
            .store(encoding_code(Some(encoding)), Ordering::Release);
        true
    }

    /// Sends the next response message uncompressed even though the call compresses
    /// (grpcio's `disable_next_message_compression`).
    pub fn disable_next_message_compression(&self) {
        self.skip_next.store(true, Ordering::Release);
    }

    /// The coding for the next response message: `None` to send it uncompressed.
    fn next_message_encoding(&self) -> Option<CompressionEncoding> {
        let skip = self.skip_next.swap(false, Ordering::AcqRel);
        let enc = encoding_from_code(self.response_encoding.load(Ordering::Acquire))?;
        self.encoding_fixed.store(true, Ordering::Release);
        (!skip).then_some(enc)
    }

    /// Attaches what TLS established about the connection.
    pub(crate) fn with_auth(mut self, auth: Option<Arc<AuthContext>>) -> ServerContext {
        self.auth = auth;
        self
    }

    /// What TLS established about the client (grpcio's `auth_context()`): protocol, cipher
    /// suite and, when the client presented a verified certificate, its identity (subject and
    /// subject alternative names). `None` on an insecure port.
    pub fn auth_context(&self) -> Option<&AuthContext> {
        self.auth.as_deref()
    }

    /// The client's verified certificate identity (mutual TLS), if any: grpcio's
    /// `peer_identities()`.
    pub fn peer_identity(&self) -> Option<&PeerIdentity> {
        self.auth.as_deref().and_then(|a| a.peer_identity())
    }

    /// The client's metadata (grpcio's `invocation_metadata()`).
    pub fn metadata(&self) -> &MetadataMap {
        self.metadata
            .get_or_init(|| MetadataMap::from_headers(&self.head))
    }

    /// The client's address, as gRPC prints it: `ipv4:127.0.0.1:53412`, `ipv6:[::1]:53412`.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The full method path, `/package.Service/Method`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// When the client's deadline (`grpc-timeout`) passes, if it set one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left before the deadline; `None` when the client set no deadline.
    pub fn time_remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Whether the call is still alive: false once the client cancelled, the stream was reset,
    /// the deadline passed, the connection died or [`cancel`](Self::cancel) was called.
    pub fn is_active(&self) -> bool {
        if self.call.is_over() || self.stream.is_broken() {
            return false;
        }
        match self.deadline {
            Some(d) => Instant::now() < d,
            None => true,
        }
    }

    /// Sends the response's initial metadata now (grpcio's `send_initial_metadata`).
    ///
    /// # Errors
    /// `FAILED_PRECONDITION` if the response headers were already sent; `CANCELLED` if the
    /// call is over.
    pub fn send_initial_metadata(&self, metadata: MetadataMap) -> Result<(), Status> {
        {
            let mut g = lock(&self.call.inner);
            if g.headers_sent {
                return Err(Status::failed_precondition(
                    "initial metadata was already sent",
                ));
            }
            g.initial = metadata;
        }
        self.ensure_headers()
    }

    /// Sets metadata to send with the status at the end of the call.
    pub fn set_trailing_metadata(&self, metadata: MetadataMap) {
        lock(&self.call.inner).trailing = metadata;
    }

    /// Registers `f` to run once when the call ends, however it ends (grpcio's
    /// `add_callback`). Returns false, without registering, if the call is already over.
    pub fn add_callback(&self, f: impl FnOnce() + Send + 'static) -> bool {
        let mut g = lock(&self.call.inner);
        if g.finished {
            return false;
        }
        g.callbacks.push(Box::new(f));
        true
    }

    /// Cancels the call: the client sees CANCELLED, and `is_active` turns false.
    pub fn cancel(&self) {
        let cbs = self.call.cancel_from_outside();
        self.stream.reset(Reason::CANCEL);
        for cb in cbs {
            cb();
        }
    }

    /// Encodes and frames a response message, checking the send size limit.
    /// Compresses it when the call compresses and the next message is not exempt.
    pub(crate) fn encode<M: Message>(&self, msg: &M) -> Result<Bytes, Status> {
        let enc = self.next_message_encoding();
        Self::encode_with(msg, self.max_send, enc)
    }

    fn encode_with<M: Message>(
        msg: &M,
        max_send: usize,
        enc: Option<CompressionEncoding>,
    ) -> Result<Bytes, Status> {
        let mut buf = BytesMut::with_capacity(5 + msg.encoded_len());
        codec::encode_message_with(msg, &mut buf, max_send, enc)?;
        Ok(buf.freeze())
    }

    /// Sends one response message of a stream, blocking while the client's window is closed.
    ///
    /// An uncompressed message that the windows take whole right now is encoded straight into
    /// the connection's output (no buffer of its own, one copy fewer); any other goes through
    /// [`encode`](Self::encode) and [`send_framed`](Self::send_framed).
    pub(crate) fn send_message<M: Message>(&self, msg: &M) -> Result<(), Status> {
        self.ensure_headers()?;
        let enc = self.next_message_encoding();
        if !enc.is_some_and(|e| e.is_compressed()) {
            let len = msg.encoded_len();
            let header = codec::message_header(len, self.max_send)?;
            let sent = self
                .stream
                .send_stream_message_with(codec::HEADER_LEN + len, |buf| {
                    buf.extend_from_slice(&header);
                    // Into a `BytesMut`, which grows: cannot fail.
                    let _ = msg.encode(buf);
                })
                .map_err(|e| stream_status(&e))?;
            if sent {
                return Ok(());
            }
        }
        let framed = Self::encode_with(msg, self.max_send, enc)?;
        self.stream
            .send_stream_message(&framed, self.deadline)
            .map_err(|e| stream_status(&e))
    }

    /// Sends one response message of a stream only if the windows and the connection's
    /// output budget take it whole now: `Ok(false)` (nothing sent) instead of waiting. For
    /// detached streams (`server::sink`), whose senders must never block.
    pub(crate) fn try_send_message<M: Message>(&self, msg: &M) -> Result<bool, Status> {
        self.ensure_headers()?;
        let enc = self.next_message_encoding();
        let framed = Self::encode_with(msg, self.max_send, enc)?;
        self.stream
            .send_stream_message_with(framed.len(), |buf| buf.extend_from_slice(&framed))
            .map_err(|e| stream_status(&e))
    }

    /// Frames raw message bytes, checking the send size limit.
    pub(crate) fn frame(&self, msg: &[u8]) -> Result<Bytes, Status> {
        if msg.len() > self.max_send {
            return Err(Status::resource_exhausted(format!(
                "trying to send a message larger than max ({} vs. {})",
                msg.len(),
                self.max_send
            )));
        }
        let mut buf = BytesMut::with_capacity(5 + msg.len());
        buf.extend_from_slice(&[0]);
        buf.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        buf.extend_from_slice(msg);
        Ok(buf.freeze())
    }

    /// The response head: `:status 200`, content-type, the codings (`grpc-encoding` when
    /// responses may be compressed, `grpc-accept-encoding`) and the initial metadata. Fixes
    /// the response coding.
    fn head(&self, initial: &MetadataMap) -> Vec<Header> {
        let mut h = Vec::with_capacity(4 + self.added_initial.len() + initial.len());
        h.push(Header::from_static(b":status", b"200"));
        h.push(Header::from_static(b"content-type", b"application/grpc"));
        self.encoding_fixed.store(true, Ordering::Release);
        if let Some(e) = self.compression() {
            h.push(Header::from_static(b"grpc-encoding", e.as_str().as_bytes()));
        }
        h.push(Header::from_static(
            b"grpc-accept-encoding",
            ACCEPT_ENCODING.as_bytes(),
        ));
        self.added_initial.to_headers(&mut h);
        initial.to_headers(&mut h);
        h
    }

    /// Sends the response head once.
    pub(crate) fn ensure_headers(&self) -> Result<(), Status> {
        if self.head_sent.load(Ordering::Acquire) {
            // Once per call is enough: later messages skip the call lock.
            return Ok(());
        }
        let head = {
            let mut g = lock(&self.call.inner);
            if g.headers_sent {
                self.head_sent.store(true, Ordering::Release);
                return Ok(());
            }
            if g.cancelled {
                return Err(Status::cancelled("the call was cancelled"));
            }
            g.headers_sent = true;
            self.head(&g.initial)
        };
        self.stream
            .send_headers(&head, false)
            .map_err(|e| stream_status(&e))?;
        self.head_sent.store(true, Ordering::Release);
        Ok(())
    }

    /// Ends the call with `status` (and an optional last message for unary responses), in as
    /// few writes as the windows allow, then runs the done-callbacks. Returns the status (with
    /// the trailing metadata it took) if it reached the connection; `None` if the call had
    /// already ended or its stream failed.
    pub(crate) fn finish(&self, last: Option<&[u8]>, status: Status) -> Option<Status> {
        // A call whose deadline has passed ended with DEADLINE_EXCEEDED whatever its handler
        // returns (as in grpcio): a handler that stopped because `is_active()` turned false
        // at the deadline must not race the deadline timer with an OK.
        let (last, status) = match self.deadline {
            Some(d) if Instant::now() >= d => {
                (None, Status::deadline_exceeded("Deadline Exceeded"))
            }
            _ => (last, status),
        };
        let (head, trailers, status) = {
            let mut g = lock(&self.call.inner);
            if g.finished {
                return None;
            }
            let head = if g.headers_sent || (last.is_none() && status.code() != Code::Ok) {
                None
            } else {
                g.headers_sent = true;
                Some(self.head(&g.initial))
            };
            let mut trailers = Vec::with_capacity(4);
            let trailers_only = !g.headers_sent;
            if trailers_only {
                // Trailers-only response: one HEADERS frame with END_STREAM.
                g.headers_sent = true;
                trailers.extend(self.head(&g.initial));
            }
            let mut status = status;
            if status.metadata().is_empty() && !g.trailing.is_empty() {
                status = status.with_metadata(std::mem::take(&mut g.trailing));
            }
            status.to_trailers(&mut trailers);
            self.added_trailing.to_headers(&mut trailers);
            (head, trailers, status)
        };
        let res = self
            .stream
            .send_response(head.as_deref(), last, &trailers, self.deadline);
        let sent = match res {
            Ok(()) => Some(status),
            Err(e) => {
                if !matches!(e, StreamError::Reset { .. } | StreamError::Lost(_)) {
                    self.stream.reset(Reason::CANCEL);
                }
                None
            }
        };
        let cbs = {
            let mut g = lock(&self.call.inner);
            g.finished = true;
            std::mem::take(&mut g.callbacks)
        };
        for cb in cbs {
            cb();
        }
        sent
    }
}

/// How close to its deadline a client's reset of a call counts as the deadline: gRPC clients
/// reset the stream (CANCEL) when their deadline passes, which reaches the server about when
/// its own copy of the deadline does; the request's travel time makes the client's a little
/// earlier.
const CLIENT_DEADLINE_SLACK: Duration = Duration::from_millis(50);

impl ServerContext {
    /// The status of a call that ended without sending its own (for the interceptors' end
    /// hooks): why its stream failed. A client's CANCEL at its deadline counts as
    /// DEADLINE_EXCEEDED, which is what that client reports.
    pub(crate) fn cut_short_status(&self) -> Status {
        match self.stream.error() {
            Some(StreamError::Reset {
                reason,
                remote: true,
            }) if reason == Reason::CANCEL && self.reset_at_deadline() => {
                Status::deadline_exceeded("Deadline Exceeded")
            }
            Some(e) => stream_status(&e),
            None => Status::cancelled("the call was cancelled"),
        }
    }

    fn reset_at_deadline(&self) -> bool {
        let cut_at = lock(&self.call.inner).cut_at;
        match (self.deadline, cut_at) {
            (Some(deadline), Some(at)) => at + CLIENT_DEADLINE_SLACK >= deadline,
            _ => false,
        }
    }
}

/// The status a handler sees when its stream failed under it.
pub(crate) fn stream_status(e: &StreamError) -> Status {
    match e {
        StreamError::Reset {
            reason,
            remote: true,
        } if *reason == Reason::CANCEL => Status::cancelled("the client cancelled the call"),
        StreamError::Reset { reason, remote } => Status::cancelled(format!(
            "the stream was reset{} with {reason}",
            if *remote { " by the client" } else { "" }
        )),
        StreamError::Lost(l) | StreamError::Unsent(l) => Status::unavailable(l.to_string()),
        StreamError::Timeout => Status::deadline_exceeded("Deadline Exceeded"),
        StreamError::Refused => Status::unavailable("the connection is shutting down"),
    }
}

impl std::fmt::Debug for ServerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerContext")
            .field("method", &self.method)
            .field("peer", &self.peer)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}
