//! The server's dispatch: what a connection's new streams become. It checks a request head
//! (route, admit, deadline), gathers a unary request's whole message, and hands the RPC to
//! a handler: to the pool, or back to the I/O loop to run inline when a worker permit is free
//! and the method is quick. It also answers what never reaches a handler (errors, HTTP 415,
//! deadlines; with gRPC-Web, CORS preflights and refused origins) and cancels running calls
//! whose streams break. A gRPC-Web request is marked on its stream slot, and the driver
//! applies gRPC-Web's response rules to what is sent on it (`crate::web`).
//!
//! Called by the connection (`server::conn`) with the connection's state locked, for each
//! [`Change`] the driver recorded; it never calls back up.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::MessageDecoder;
use crate::compression::{AcceptEncoding, CompressionEncoding, ACCEPT_ENCODING};
use crate::h2::conn::IdMap;
use crate::h2::error::Reason;
use crate::h2::frame::StreamId;
use crate::h2::hpack::Header;
use crate::server::context::{stream_status, CallState, RequestStats, ServerContext};
use crate::server::interceptor::{self, Ending, MethodKind};
use crate::server::service::Method;
use crate::server::sink::DetachedCall;
use crate::server::ServerCore;
use crate::status::panic_message;
use crate::status::{Code, Status};
use crate::streaming::MessageSource;
use crate::timeout::decode_grpc_timeout;
use crate::transport::driver::{
    end_response, send_head, Change, Recv, Shared, State, StreamError, StreamHandle,
};
use crate::transport::tls::AuthContext;
use crate::web::codec::{Base64Decoder, Base64Error};
use crate::web::cors::OriginCheck;
use crate::web::{self, WebKind, WebStream};

/// A handler run, as the pool or the I/O loop runs it.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// An RPC that passed the checks of its request head.
struct Admitted {
    method: Method,
    /// How long this method's handlers usually take (decides whether it may run inline).
    timing: Arc<HandlerTime>,
    path: Arc<str>,
    /// The request head (the handler's metadata is made from it if asked for).
    head: Vec<Header>,
    deadline: Option<Instant>,
    /// The request's `grpc-encoding` (`None` for identity).
    request_encoding: Option<CompressionEncoding>,
    /// The client's `grpc-accept-encoding`.
    accept: AcceptEncoding,
    /// Whether the (single) request message arrived compressed.
    first_compressed: bool,
    /// A gRPC-Web text request: the body is base64.
    text: bool,
}

/// A running average of a unary method's handler time. Only methods whose handlers are
/// usually quick run on the reader thread: a handler that sleeps or waits (a database, a
/// downstream call) would hold its connection's reading until the hand-off threshold, on every
/// call; such methods go to the pool after their first few calls show it.
#[derive(Default)]
pub(crate) struct HandlerTime {
    /// Exponentially weighted mean, in nanoseconds (racy updates lose a sample at worst).
    mean_ns: std::sync::atomic::AtomicU64,
}

impl HandlerTime {
    /// Handlers that usually take longer than this run on the pool.
    const QUICK: Duration = Duration::from_micros(200);

    fn is_quick(&self) -> bool {
        self.mean_ns.load(Ordering::Relaxed) < Self::QUICK.as_nanos() as u64
    }

    fn record(&self, took: Duration) {
        let sample = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let old = self.mean_ns.load(Ordering::Relaxed);
        // Weight 1/4: a method that turns slow goes to the pool after two or three calls.
        let new = old - old / 4 + sample / 4;
        self.mean_ns.store(new, Ordering::Relaxed);
    }
}

/// A single-request RPC waiting for its whole request message before it gets a worker.
struct Pending {
    call: Admitted,
    decoder: MessageDecoder,
    first: Option<Bytes>,
    /// A gRPC-Web text request's base64, decoded as it comes.
    text: Option<Base64Decoder>,
}

/// One connection's dispatch state.
pub(crate) struct ServerDispatcher {
    core: Arc<ServerCore>,
    peer: Arc<str>,
    /// What TLS established about the client (secure ports only).
    auth: Option<Arc<AuthContext>>,
    pending: IdMap<Pending>,
    calls: IdMap<Arc<CallState>>,
    /// Requests that are not gRPC, answered (HTTP 415) once the client has finished sending
    /// them, so that the rest of the stream is still checked by the protocol rules.
    not_grpc: IdMap<&'static str>,
    deadlines: BTreeSet<(Instant, StreamId)>,
    deferred: Vec<Job>,
    /// Streaming RPCs of this connection holding a worker.
    streaming: Arc<std::sync::atomic::AtomicUsize>,
    /// Unary RPCs whose requests are complete, for the I/O loop to run itself after this
    /// round if worker permits are free (see `server::io`).
    pub inline: Vec<Job>,
}

/// Sends a trailers-only response from the reader thread (an RPC that never reached a handler).
fn respond_status(st: &mut State, id: StreamId, status: &Status, extra: &[Header]) {
    let mut h = vec![
        Header::from_static(b":status", b"200"),
        Header::from_static(b"content-type", b"application/grpc"),
    ];
    h.extend_from_slice(extra);
    status.to_trailers(&mut h);
    finish_from_reader(st, id, &h);
}

fn finish_from_reader(st: &mut State, id: StreamId, trailers: &[Header]) {
    let Some(slot) = st.streams.get_mut(&id) else {
        return;
    };
    if slot.sent_end || slot.reset.is_some() {
        return;
    }
    slot.sent_end = true;
    slot.sent_head = true;
    let client_done = slot.end;
    if send_head(st, id, trailers, true).is_ok() && !client_done {
        // gRPC: the server is done; tell the client to stop sending.
        st.conn.reset(id, Reason::NO_ERROR);
    }
}

/// Answers a request that is not gRPC at all with HTTP 415 and a plain-text explanation.
fn respond_not_grpc(st: &mut State, id: StreamId, why: &str) {
    let body = format!("This is a gRPC endpoint: {why}. Send gRPC requests (POST, content-type application/grpc) over HTTP/2.\n");
    respond_http(st, id, b"415", &[], &body);
}

/// Answers a request with a plain HTTP response (`status`, `extra` fields, a text body), and
/// tells a client still sending to stop.
fn respond_http(st: &mut State, id: StreamId, status: &'static [u8], extra: &[Header], body: &str) {
    if st.streams.get(&id).is_some_and(|s| s.reset.is_some()) {
        return;
    }
    let mut h = vec![
        Header::from_static(b":status", status),
        Header::from_static(b"content-type", b"text/plain; charset=utf-8"),
    ];
    h.extend_from_slice(extra);
    if let Some(slot) = st.streams.get_mut(&id) {
        slot.sent_end = true;
        slot.sent_head = true;
    }
    let end = body.is_empty();
    if st.conn.send_headers(id, &h, end).is_ok() && !end {
        let _ = st.conn.send_data(id, body.as_bytes(), true);
    }
    let client_done = st.streams.get(&id).map(|s| s.end).unwrap_or(true);
    if !client_done {
        st.conn.reset(id, Reason::NO_ERROR);
    }
}

impl ServerDispatcher {
    pub fn new(
        core: Arc<ServerCore>,
        peer: Arc<str>,
        auth: Option<Arc<AuthContext>>,
    ) -> ServerDispatcher {
        ServerDispatcher {
            core,
            peer,
            auth,
            pending: IdMap::default(),
            calls: IdMap::default(),
            not_grpc: IdMap::default(),
            deadlines: BTreeSet::new(),
            deferred: Vec::new(),
            streaming: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            inline: Vec::new(),
        }
    }

    /// Acts on what the driver recorded in the last round of input.
    pub fn on_changes(&mut self, shared: &Arc<Shared>, st: &mut State) {
        let mut changes = std::mem::take(&mut st.changes);
        for c in changes.drain(..) {
            match c {
                Change::NewStream { id, end_stream } => self.new_stream(shared, st, id, end_stream),
                Change::Stream(id) => self.stream_changed(shared, st, id),
            }
        }
        // Keep the allocation for the next round.
        st.changes = changes;
    }

    /// A request that is not gRPC: answered once the client has sent all of it.
    fn defer_not_grpc(&mut self, st: &mut State, id: StreamId, why: &'static str) {
        if st.streams.get(&id).is_some_and(|s| s.end) {
            respond_not_grpc(st, id, why);
        } else {
            self.not_grpc.insert(id, why);
        }
    }

    fn admit(&mut self, st: &mut State, id: StreamId, head: Vec<Header>) -> Option<Admitted> {
        // One pass over the head for the fields the server itself reads.
        let (mut method, mut ct, mut raw_path): (&[u8], &[u8], &[u8]) = (b"", b"", b"");
        let (mut encoding, mut accept, mut timeout) = (None, None, None);
        let (mut origin, mut accept_type, mut cors_headers) = (None, None, None);
        for f in &head {
            let v = &f.value[..];
            match &f.name[..] {
                b":method" => method = v,
                b":path" => raw_path = v,
                b"content-type" => ct = v,
                b"grpc-encoding" => encoding = Some(v),
                b"grpc-accept-encoding" => accept = Some(v),
                b"grpc-timeout" => timeout = Some(v),
                b"origin" => origin = Some(v),
                b"accept" => accept_type = Some(v),
                b"access-control-request-headers" => cors_headers = Some(v),
                _ => {}
            }
        }
        let mut web_kind = None;
        if let Some(config) = &self.core.config.web {
            // gRPC-Web: CORS before anything else, so no handler runs for a refused origin.
            let origin = match web::cors::check_origin(config, origin) {
                OriginCheck::Refused => {
                    let who = String::from_utf8_lossy(origin.unwrap_or_default());
                    let body = format!(
                        "Origin {who} may not call this server: it is not in the gRPC-Web \
                         allow-list (GrpcWebConfig::allow_origin).\n"
                    );
                    respond_http(st, id, b"403", &[], &body);
                    return None;
                }
                OriginCheck::Allowed(o) => Some(o),
                OriginCheck::Absent => None,
            };
            if method == b"OPTIONS" {
                let h = web::cors::preflight(config, origin.as_ref(), cors_headers);
                if let Some(slot) = st.streams.get_mut(&id) {
                    slot.sent_end = true;
                    slot.sent_head = true;
                }
                let client_done = st.streams.get(&id).map(|s| s.end).unwrap_or(true);
                if st.conn.send_headers(id, &h, true).is_ok() && !client_done {
                    st.conn.reset(id, Reason::NO_ERROR);
                }
                return None;
            }
            web_kind = web::web_kind(ct);
            if let Some(kind) = web_kind {
                if kind == WebKind::OtherCodec {
                    self.defer_not_grpc(st, id, "gRPC-Web takes protobuf messages only (+proto)");
                    return None;
                }
                let text = kind == WebKind::Text
                    || accept_type.is_some_and(|a| web::web_kind(a) == Some(WebKind::Text));
                let cors = origin.map(|o| (config.clone(), o));
                if let Some(slot) = st.streams.get_mut(&id) {
                    slot.web = Some(Arc::new(WebStream { text, cors }));
                }
            }
        }
        if method != b"POST" {
            self.defer_not_grpc(st, id, "the method must be POST");
            return None;
        }
        if web_kind.is_none()
            && !(ct == b"application/grpc"
                || ct.starts_with(b"application/grpc+")
                || ct.starts_with(b"application/grpc;"))
        {
            self.defer_not_grpc(st, id, "the content-type must be application/grpc");
            return None;
        }
        let found = std::str::from_utf8(raw_path)
            .ok()
            .and_then(|p| self.core.methods.get(p));
        let Some((path, m, timing)) = found.map(|(p, m, t)| (p.clone(), m.clone(), t.clone()))
        else {
            let path = String::from_utf8_lossy(raw_path);
            let svc = path.trim_start_matches('/').split('/').next().unwrap_or("");
            let msg = if self.core.services.contains(svc) {
                format!("Method not found: {path}")
            } else {
                format!("Service not found: {svc} (method {path})")
            };
            respond_status(st, id, &Status::unimplemented(msg), &[]);
            return None;
        };
        if web_kind.is_some() && !m.single_request() {
            let kind = if matches!(m, Method::ClientStreaming(_)) {
                "client-streaming"
            } else {
                "bidi-streaming"
            };
            let msg = format!(
                "{path} is a {kind} method: gRPC-Web carries unary and server-streaming calls \
                 only (a browser sends one request message); call it over gRPC (HTTP/2)"
            );
            respond_status(st, id, &Status::unimplemented(msg), &[]);
            return None;
        }
        let request_encoding = match encoding {
            None => None,
            Some(enc) => match CompressionEncoding::from_name(enc) {
                Some(e) => Some(e).filter(|e| e.is_compressed()),
                None => {
                    let msg = format!(
                        "compression {} is not supported; this server accepts {ACCEPT_ENCODING}",
                        String::from_utf8_lossy(enc)
                    );
                    respond_status(
                        st,
                        id,
                        &Status::unimplemented(msg),
                        &[Header::from_static(
                            b"grpc-accept-encoding",
                            ACCEPT_ENCODING.as_bytes(),
                        )],
                    );
                    return None;
                }
            },
        };
        let accept = AcceptEncoding::parse(accept);
        let deadline = match timeout {
            None => None,
            Some(v) => match decode_grpc_timeout(v) {
                Ok(d) => Some(Instant::now() + d),
                Err(_) => {
                    let msg = format!("malformed grpc-timeout: {:?}", String::from_utf8_lossy(v));
                    respond_status(st, id, &Status::internal(msg), &[]);
                    return None;
                }
            },
        };
        if self.core.stopping.load(Ordering::Acquire) {
            respond_status(
                st,
                id,
                &Status::unavailable("the server is shutting down"),
                &[],
            );
            return None;
        }
        if let Some(max) = self.core.config.max_concurrent_rpcs {
            let now = self.core.active_rpcs.fetch_add(1, Ordering::AcqRel);
            if now >= max {
                self.core.end_rpc();
                respond_status(
                    st,
                    id,
                    &Status::resource_exhausted("Concurrent RPC limit exceeded!"),
                    &[],
                );
                return None;
            }
        } else {
            self.core.active_rpcs.fetch_add(1, Ordering::AcqRel);
        }
        if m.streams() {
            let limit = self.core.config.max_streaming_rpcs_per_connection;
            if self.streaming.load(Ordering::Acquire) >= limit {
                self.core.end_rpc();
                let msg = format!("too many streaming RPCs on this connection (limit {limit})");
                respond_status(st, id, &Status::resource_exhausted(msg), &[]);
                return None;
            }
        }
        if let Some(d) = deadline {
            self.deadlines.insert((d, id));
        }
        Some(Admitted {
            method: m,
            timing,
            path,
            head,
            deadline,
            request_encoding,
            accept,
            first_compressed: false,
            text: web_kind == Some(WebKind::Text),
        })
    }

    /// Hands an admitted RPC to the pool.
    fn start(
        &mut self,
        shared: &Arc<Shared>,
        st: &mut State,
        id: StreamId,
        call: Admitted,
        request: Option<Bytes>,
    ) {
        let Admitted {
            method,
            timing,
            path,
            head,
            deadline,
            request_encoding,
            accept,
            first_compressed,
            text: _,
        } = call;
        // Only read when interceptors need a duration: a server without them skips the clock.
        let admitted_at = (!self.core.interceptors.is_empty()).then(Instant::now);
        let call = Arc::new(CallState::default());
        self.calls.insert(id, call.clone());
        let stream = StreamHandle::attach(shared.clone(), st, id);
        let core = self.core.clone();
        let ctx = ServerContext::new(
            stream,
            call,
            head,
            self.peer.clone(),
            path,
            deadline,
            core.config.max_send_message_length,
        )
        .with_compression(
            request_encoding,
            accept,
            core.config.compression,
            first_compressed,
        )
        .with_auth(self.auth.clone())
        .with_request(request.is_some());
        let max_recv = core.config.max_receive_message_length;
        let streaming = self.streaming.clone();
        let holds_stream = method.streams();
        if holds_stream {
            streaming.fetch_add(1, Ordering::AcqRel);
        }
        let core2 = core.clone();
        let inline = !holds_stream && core.config.inline_unary && timing.is_quick();
        let method = match method {
            Method::Detached(h) => {
                // A detached stream: the handler takes the call and returns; the call's
                // accounting ends when its sink is dropped, wherever that happens.
                let done = Box::new(move || {
                    streaming.fetch_sub(1, Ordering::AcqRel);
                    core2.end_rpc();
                });
                let core3 = core.clone();
                let job = Box::new(move || {
                    let mut ctx = ctx;
                    let ending = match admitted_at {
                        None => None,
                        Some(t0) => {
                            match intercept(&core3, &mut ctx, MethodKind::ServerStreaming, t0) {
                                Ok(ending) => Some(ending),
                                Err(()) => {
                                    // Rejected, and answered: the handler never runs.
                                    drop(ctx);
                                    done();
                                    return;
                                }
                            }
                        }
                    };
                    let call = DetachedCall::new(ctx, done, ending);
                    let request = request.unwrap_or_default();
                    if catch_unwind(AssertUnwindSafe(|| h.call(request, call))).is_err() {
                        // The call, dropped while unwinding, answered UNKNOWN.
                        core3.pool.record_panic();
                    }
                });
                queue_job(&core, job);
                return;
            }
            method => method,
        };
        let job = Box::new(move || {
            let t0 = Instant::now();
            let mut ctx = ctx;
            match admitted_at {
                None => {
                    if run_call(&ctx, method, request, max_recv).panicked {
                        core2.pool.record_panic();
                    }
                }
                Some(admitted) => {
                    if let Ok(ending) = intercept(&core2, &mut ctx, method.kind(), admitted) {
                        let ran = run_call(&ctx, method, request, max_recv);
                        if ran.panicked {
                            core2.pool.record_panic();
                        }
                        ending.run(&ctx, ran.status, ran.sent);
                    }
                }
            }
            if !holds_stream {
                timing.record(t0.elapsed());
            }
            drop(ctx);
            if holds_stream {
                streaming.fetch_sub(1, Ordering::AcqRel);
            }
            core2.end_rpc();
        });
        if inline {
            self.inline.push(job);
        } else {
            queue_job(&core, job);
        }
    }
}

/// Runs the server's interceptors on a call about to reach its handler. `Err(())` when one
/// rejected it: the rejection was sent, and the end hooks of those that ran have run.
fn intercept(
    core: &ServerCore,
    ctx: &mut ServerContext,
    kind: MethodKind,
    admitted: Instant,
) -> Result<Ending, ()> {
    let (ending, rejected, panicked) = interceptor::start(&core.interceptors, ctx, kind, admitted);
    if panicked {
        core.pool.record_panic();
    }
    match rejected {
        None => Ok(ending),
        Some(status) => {
            let sent = ctx.finish(None, status);
            ending.run(ctx, sent, 0);
            Err(())
        }
    }
}

/// How [`run_call`] went.
struct Ran {
    /// The handler panicked (the client then gets UNKNOWN).
    panicked: bool,
    /// The status sent, if the call ended with it (see [`ServerContext::finish`]).
    status: Option<Status>,
    /// Response messages handed to the connection.
    sent: u64,
}

/// Runs one RPC on a worker thread, from decoded request to trailers.
fn run_call(ctx: &ServerContext, method: Method, request: Option<Bytes>, max_recv: usize) -> Ran {
    // Response messages of a stream sent so far (they count even if the handler panics).
    let mut streamed = 0;
    let outcome = catch_unwind(AssertUnwindSafe(|| -> (Option<Bytes>, Status) {
        match method {
            Method::Unary(h) => match h.call(request.unwrap_or_default(), ctx) {
                Ok(resp) => (Some(resp), Status::new(Code::Ok, "")),
                Err(s) => (None, s),
            },
            Method::ServerStreaming(h) => match h.call(request.unwrap_or_default(), ctx) {
                Ok(it) => (None, drain(it, &mut streamed)),
                Err(s) => (None, s),
            },
            Method::ClientStreaming(h) => {
                let src = Box::new(RequestSource::new(ctx, max_recv));
                match h.call(src, ctx) {
                    Ok(resp) => (Some(resp), Status::new(Code::Ok, "")),
                    Err(s) => (None, s),
                }
            }
            Method::Bidi(h) => {
                let src = Box::new(RequestSource::new(ctx, max_recv));
                match h.call(src, ctx) {
                    Ok(it) => (None, drain(it, &mut streamed)),
                    Err(s) => (None, s),
                }
            }
            // Started by `ServerDispatcher::start` without `run_call`.
            Method::Detached(_) => (None, Status::internal("detached call run as a worker call")),
        }
    }));
    match outcome {
        Ok((last, status)) => {
            let status = ctx.finish(last.as_deref(), status);
            let sent = streamed + u64::from(last.is_some() && status.is_some());
            Ran {
                panicked: false,
                status,
                sent,
            }
        }
        Err(panic) => {
            let what = panic_message(&*panic);
            crate::logging::log_limited!(
                crate::logging::HANDLER_PANIC,
                "grpc-sync: the handler of {} panicked: {what} (the client got UNKNOWN)",
                ctx.method()
            );
            let status = ctx.finish(
                None,
                Status::unknown(format!("Exception calling application: {what}")),
            );
            Ran {
                panicked: true,
                status,
                sent: streamed,
            }
        }
    }
}

/// Pulls a response stream (each item sends one message) until it ends or the call breaks,
/// counting the messages sent into `sent`.
fn drain(it: crate::server::service::RawStream<'_>, sent: &mut u64) -> Status {
    for item in it {
        if let Err(s) = item {
            return s;
        }
        *sent += 1;
    }
    Status::new(Code::Ok, "")
}

/// The request messages of a streaming RPC, read from the stream as the handler pulls them.
struct RequestSource {
    recv: StreamHandle,
    decoder: MessageDecoder,
    /// DATA payloads taken from the stream in one go (kept for its capacity).
    batch: std::collections::VecDeque<Bytes>,
    /// The context's "last request message was compressed" flag and message count.
    stats: Arc<RequestStats>,
    deadline: Option<Instant>,
    done: bool,
}

impl RequestSource {
    fn new(ctx: &ServerContext, max_recv: usize) -> RequestSource {
        let mut decoder = MessageDecoder::new(max_recv);
        decoder.set_encoding(ctx.request_encoding());
        RequestSource {
            recv: ctx.stream.view(),
            decoder,
            batch: std::collections::VecDeque::new(),
            stats: ctx.request_stats.clone(),
            deadline: ctx.deadline(),
            done: false,
        }
    }
}

impl MessageSource for RequestSource {
    fn next_message(&mut self) -> Option<Result<Bytes, Status>> {
        if self.done {
            return None;
        }
        loop {
            match self.decoder.next_message() {
                Ok(Some(m)) => {
                    self.stats
                        .compressed
                        .store(self.decoder.last_compressed(), Ordering::Release);
                    self.stats.received.fetch_add(1, Ordering::Relaxed);
                    return Some(Ok(m));
                }
                Ok(None) => {}
                Err(s) => {
                    self.done = true;
                    return Some(Err(s));
                }
            }
            match self.recv.recv_data(&mut self.batch, self.deadline) {
                Ok(Recv::Data) => self.batch.drain(..).for_each(|b| self.decoder.push(b)),
                Ok(Recv::End) => {
                    self.done = true;
                    return match self.decoder.finish() {
                        Ok(()) => None,
                        Err(s) => Some(Err(s)),
                    };
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(stream_status(&e)));
                }
            }
        }
    }
}

/// The status of a gRPC-Web text request whose body is not base64.
fn text_error(e: &Base64Error) -> Status {
    Status::internal(format!(
        "malformed gRPC-Web text request: {} (the body of application/grpc-web-text is base64)",
        e.0
    ))
}

/// Hands a job to the pool.
pub(crate) fn queue_job(core: &ServerCore, job: Job) {
    if let Err(job) = core.pool.execute(job) {
        // The pool is gone (the server stopped and closed every connection): dropping the job
        // drops its stream.
        drop(job);
    }
}

impl ServerDispatcher {
    fn new_stream(&mut self, shared: &Arc<Shared>, st: &mut State, id: StreamId, end_stream: bool) {
        if st.outbox_bytes > st.budget {
            // The client is not taking the responses it already asked for: admit nothing
            // more from it until it does (REFUSED_STREAM: safe for it to retry).
            st.streams.remove(&id);
            st.conn.reset(id, Reason::REFUSED_STREAM);
            return;
        }
        let head = st
            .streams
            .get_mut(&id)
            .and_then(|s| {
                s.head_taken = true;
                s.head.take()
            })
            .unwrap_or_default();
        let Some(call) = self.admit(st, id, head) else {
            return;
        };
        if call.method.single_request() {
            let mut decoder = MessageDecoder::new(self.core.config.max_receive_message_length);
            decoder.set_encoding(call.request_encoding);
            let text = call.text.then(Base64Decoder::default);
            self.pending.insert(
                id,
                Pending {
                    call,
                    decoder,
                    first: None,
                    text,
                },
            );
            if end_stream {
                self.stream_changed(shared, st, id);
            }
        } else {
            self.start(shared, st, id, call, None);
        }
    }

    fn stream_changed(&mut self, shared: &Arc<Shared>, st: &mut State, id: StreamId) {
        if let Some(&why) = self.not_grpc.get(&id) {
            let Some(slot) = st.streams.get_mut(&id) else {
                self.not_grpc.remove(&id);
                return;
            };
            // Nobody reads the body: give its window back as it comes.
            let n = std::mem::take(&mut slot.buffered);
            slot.data.clear();
            let (end, reset) = (slot.end, slot.reset.is_some());
            if n > 0 {
                st.conn.release_capacity(id, n);
            }
            if end || reset {
                self.not_grpc.remove(&id);
                if !reset {
                    respond_not_grpc(st, id, why);
                }
            }
            return;
        }
        if let Some(p) = self.pending.get_mut(&id) {
            let Some(slot) = st.streams.get_mut(&id) else {
                self.pending.remove(&id);
                self.core.end_rpc();
                return;
            };
            if slot.reset.is_some() {
                self.pending.remove(&id);
                self.core.end_rpc();
                return;
            }
            // Unary requests are bounded by the message limit: take the data and give the
            // window back at once, so the client can finish sending.
            let mut n = 0;
            let end = slot.end;
            let data: Vec<Bytes> = slot.data.drain(..).collect();
            slot.buffered = 0;
            let mut failure = None;
            for b in data {
                n += b.len();
                match &mut p.text {
                    None => p.decoder.push(b),
                    Some(text) => {
                        let mut plain = bytes::BytesMut::new();
                        match text.push(&b, &mut plain) {
                            Ok(()) => p.decoder.push(plain.freeze()),
                            Err(e) => failure = Some(text_error(&e)),
                        }
                    }
                }
            }
            if n > 0 {
                st.conn.release_capacity(id, n);
            }
            if failure.is_none() && end {
                if let Some(Err(e)) = p.text.as_ref().map(Base64Decoder::finish) {
                    failure = Some(text_error(&e));
                }
            }
            while failure.is_none() {
                match p.decoder.next_message() {
                    Ok(Some(msg)) if p.first.is_none() => {
                        p.call.first_compressed = p.decoder.last_compressed();
                        p.first = Some(msg);
                    }
                    Ok(Some(_)) => {
                        failure = Some(Status::internal(
                            "received more than one request message for a unary-request method",
                        ));
                        break;
                    }
                    Ok(None) => break,
                    Err(s) => {
                        failure = Some(s);
                        break;
                    }
                }
            }
            if failure.is_none() && end {
                match (p.decoder.finish(), p.first.is_some()) {
                    (Err(s), _) => failure = Some(s),
                    (Ok(()), false) => {
                        failure = Some(Status::internal(
                            "the client finished without sending a request message",
                        ))
                    }
                    (Ok(()), true) => {
                        let mut p = self.pending.remove(&id).expect("present");
                        let msg = p.first.take();
                        self.start(shared, st, id, p.call, msg);
                        return;
                    }
                }
            }
            if let Some(s) = failure {
                self.pending.remove(&id);
                self.core.end_rpc();
                respond_status(st, id, &s, &[]);
            }
            return;
        }
        // A running call whose stream broke: cancel its context.
        let broken = match st.streams.get(&id) {
            Some(slot) => slot.reset.is_some(),
            None => true,
        };
        if broken {
            if let Some(call) = self.calls.remove(&id) {
                self.deferred.extend(call.cancel_from_outside());
            }
        }
    }

    /// Serves the deadlines that have passed; returns the next one.
    pub fn tick(&mut self, st: &mut State, now: Instant) -> Option<Instant> {
        while let Some(&(when, id)) = self.deadlines.iter().next() {
            if when > now {
                return Some(when);
            }
            self.deadlines.remove(&(when, id));
            let status = Status::deadline_exceeded("Deadline Exceeded");
            if self.pending.remove(&id).is_some() {
                self.core.end_rpc();
                respond_status(st, id, &status, &[]);
                st.conn.reset(id, Reason::CANCEL);
                continue;
            }
            if let Some(call) = self.calls.remove(&id) {
                self.deferred.extend(call.cancel_from_outside());
                let Some(slot) = st.streams.get_mut(&id) else {
                    continue;
                };
                if slot.outbox_trailers.is_some() {
                    // A response still waiting for the client's window: the client has given
                    // up on it by now; free it.
                    st.clear_outbox(id);
                    st.conn.reset(id, Reason::CANCEL);
                    continue;
                }
                if slot.sent_end || slot.reset.is_some() {
                    continue;
                }
                let mut h = Vec::new();
                let first = !slot.sent_head;
                if first {
                    h.push(Header::from_static(b":status", b"200"));
                    h.push(Header::from_static(b"content-type", b"application/grpc"));
                }
                status.to_trailers(&mut h);
                slot.sent_end = true;
                slot.sent_head = true;
                slot.reset = Some(StreamError::Timeout);
                slot.cv.notify_all();
                let client_done = slot.end;
                // The status is in the trailers; the RST_STREAM NO_ERROR that follows if the
                // client is still sending (as grpc-go sends) only tells it to stop. A CANCEL
                // here races the trailers in grpc-core, which then reports CANCELLED instead
                // of DEADLINE_EXCEEDED.
                if first {
                    if send_head(st, id, &h, true).is_ok() && !client_done {
                        st.conn.reset(id, Reason::NO_ERROR);
                    }
                } else {
                    let _ = end_response(st, id, &h);
                }
            }
        }
        // Forget finished calls now and then so the map does not grow.
        if self.calls.len() > 64 {
            self.calls
                .retain(|id, c| st.streams.contains_key(id) && !c.is_over());
        }
        None
    }

    /// The connection is gone: cancels its running calls and forgets its pending ones.
    pub fn closed(&mut self) {
        for (_, call) in self.calls.drain() {
            self.deferred.extend(call.cancel_from_outside());
        }
        for _ in self.pending.drain() {
            self.core.end_rpc();
        }
    }

    /// Runs the cancellation callbacks collected under the lock (call it without the lock).
    pub fn unlocked(&mut self) {
        for cb in self.deferred.drain(..) {
            let _ = catch_unwind(AssertUnwindSafe(cb));
        }
    }
}
