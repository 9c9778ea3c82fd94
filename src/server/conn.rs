//! One accepted connection, as its I/O loop (`server::io`) holds it: a small struct, not a
//! thread.
//!
//! Phases: on a plaintext port the first bytes tell HTTP/2 from HTTP/1 (answered with a clear
//! error, or served when gRPC-Web is on) and from a TLS client (closed); on a secure port the
//! TLS handshake runs here, on the non-blocking socket. Both are bounded by the server's
//! `handshake_timeout`. Then HTTP/2: the loop reads, the driver feeds the bytes to the sans-IO
//! machine and routes its events, and the dispatch (`server::dispatch`) acts on the changes.
//! An HTTP/1.1 connection (gRPC-Web) is the same HTTP/2 phase with a bridge in front
//! (`web::bridge`): the socket's bytes go through it to the machine, and the machine's output
//! through it (in the connection's sink) to the socket. Answers come back through the
//! connection's `Shared` (the machine's output and the sink), written by whichever thread
//! produced them without blocking, or by the loop when the socket is writable again.
//!
//! The connection tells the loop what readiness it wants ([`ServerConn::interest`]) and when it
//! next needs the clock ([`ServerConn::poll_timeout`] / [`ServerConn::handle_timeout`]).

use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::h2::conn::{Connection, Role, PREFACE};
use crate::h2::error::Reason;
use crate::server::dispatch::{Job, ServerDispatcher};
use crate::server::ServerCore;
use crate::transport::driver::{lock, ConnLost, Shared, Sink};
use crate::transport::poll::Waker;
use crate::transport::socket::{write_some, Socket, SocketSink};
use crate::transport::tls::{self, AuthContext, HandshakeError};
use crate::web::bridge::{Bridge, Limits};

/// How long an HTTP/2 connection stays quiet before its buffers go back to the allocator.
const IDLE_RELEASE: Duration = Duration::from_millis(250);

/// Plaintext the loop decrypts per read event, at most, before it lets other connections go.
const TLS_READ_BUDGET: usize = 256 * 1024;

enum Phase {
    /// Plaintext port: the first bytes, until they are known to be the HTTP/2 preface.
    Sniff { first: Vec<u8> },
    /// Secure port: the TLS handshake.
    Handshake {
        tls: Box<rustls::ServerConnection>,
        /// Handshake records not yet taken by the socket.
        out: Vec<u8>,
        /// Bytes have come from the client (the first must start a TLS record).
        started: bool,
    },
    /// HTTP/2.
    H2(Box<H2>),
    /// Over: the loop drops it.
    Done,
}

struct H2 {
    shared: Arc<Shared>,
    dispatch: ServerDispatcher,
    tls: Option<Arc<Mutex<rustls::ServerConnection>>>,
    /// The next deadline of a call on this connection.
    next_deadline: Option<Instant>,
    /// Since when queued output has made no progress, and the progress count then.
    stall: Option<(Instant, u64)>,
    /// The last time anything was read or written.
    last_active: Instant,
    /// Buffers are held (not released since the last activity).
    buffers_held: bool,
    /// HTTP/1.1 (gRPC-Web): the bridge between the socket and the HTTP/2 machine, shared with
    /// the connection's sink.
    bridge: Option<Arc<Mutex<Bridge>>>,
}

/// The sink of an HTTP/1.1 connection: the machine's output goes through the bridge, and
/// the HTTP/1.1 bytes it makes to the socket (without blocking, as on any connection).
struct BridgeSink {
    bridge: Arc<Mutex<Bridge>>,
    inner: SocketSink,
    waker: Arc<Waker>,
}

impl Sink for BridgeSink {
    fn send(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let (out, wake) = {
            let mut b = lock(&self.bridge);
            if !buf.is_empty() {
                b.recv_server(buf, Instant::now());
            }
            // The machine's input the bridge made (ACKs, the next pipelined request) and a
            // close to carry out are the loop's to act on.
            (b.take_out(), b.has_input_for_server() || b.is_closing())
        };
        let res = self.inner.send(&out);
        if wake {
            self.waker.wake();
        }
        res
    }

    fn backlog(&self) -> usize {
        self.inner.backlog()
    }

    fn written(&self) -> u64 {
        self.inner.written()
    }
}

/// What a connection wants from its loop (see [`ServerConn::wants`]).
pub(crate) struct Wants {
    pub read: bool,
    pub write: bool,
    /// When it next needs the clock.
    pub timer: Option<Instant>,
}

/// What the loop should do with a connection after an event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    Continue,
    Close,
}

/// An accepted connection on its I/O loop.
pub(crate) struct ServerConn {
    core: Arc<ServerCore>,
    sock: Arc<Socket>,
    peer: String,
    id: u64,
    waker: Arc<Waker>,
    phase: Phase,
    /// When detection or the TLS handshake must be over.
    handshake_deadline: Instant,
}

impl ServerConn {
    pub fn new(
        core: Arc<ServerCore>,
        sock: Arc<Socket>,
        peer: String,
        id: u64,
        waker: Arc<Waker>,
        tls: Option<&Arc<rustls::ServerConfig>>,
        now: Instant,
    ) -> Result<ServerConn, String> {
        let phase = match tls {
            None => Phase::Sniff {
                first: Vec::with_capacity(PREFACE.len()),
            },
            Some(config) => Phase::Handshake {
                tls: Box::new(
                    rustls::ServerConnection::new(config.clone()).map_err(|e| tls::describe(&e))?,
                ),
                out: Vec::new(),
                started: false,
            },
        };
        Ok(ServerConn {
            peer,
            handshake_deadline: now + core.config.handshake_timeout,
            core,
            sock,
            id,
            waker,
            phase,
        })
    }

    /// Takes the unary handlers the last round made ready to run inline.
    pub fn take_inline(&mut self, into: &mut Vec<Job>) {
        if let Phase::H2(h) = &mut self.phase {
            into.append(&mut h.dispatch.inline);
        }
    }

    /// The socket is readable (or closed).
    pub fn on_readable(&mut self, scratch: &mut [u8], now: Instant) -> Next {
        match &mut self.phase {
            Phase::Sniff { .. } => self.sniff(scratch, now),
            Phase::Handshake { .. } => self.handshake(scratch, now),
            Phase::H2(_) => self.read_h2(scratch, now),
            Phase::Done => Next::Close,
        }
    }

    /// The socket is writable, or another thread asked the loop to look (stream messages to
    /// write, a backlog to drain).
    pub fn on_writable(&mut self, now: Instant) -> Next {
        match &mut self.phase {
            Phase::Handshake { out, .. } => match write_some(&self.sock, out) {
                Ok(n) => {
                    out.drain(..n);
                    Next::Continue
                }
                Err(_) => self.fail_handshake(HandshakeError::PeerClosed { peer_is: "client" }),
            },
            Phase::H2(h) => {
                let before = h.shared.lock().backlog;
                let after = h.shared.write_out();
                if after != before {
                    h.last_active = now;
                }
                if h.shared.lock().lost.is_some() {
                    return self.close();
                }
                if let Some(b) = &h.bridge {
                    if lock(b).has_input_for_server() {
                        // The bridge made input for the machine (a pipelined request, ACKs).
                        return self.input(&[], now);
                    }
                }
                self.settle_bridge()
            }
            _ => Next::Continue,
        }
    }

    /// HTTP/1.1: writes what the bridge made for the socket, and closes the connection once
    /// the bridge is done and all of it is written.
    fn settle_bridge(&mut self) -> Next {
        let Phase::H2(h) = &mut self.phase else {
            return Next::Continue;
        };
        let Some(b) = &h.bridge else {
            return Next::Continue;
        };
        let (has_out, closing) = {
            let b = lock(b);
            (b.has_out(), b.is_closing())
        };
        if has_out {
            h.shared.write_out();
        }
        if closing && h.shared.lock().backlog == 0 && !lock(b).has_out() {
            return self.close();
        }
        Next::Continue
    }

    /// What the connection wants from its loop, under one lock of its state: readiness
    /// (reading unless its unwritten output is over the budget, so a peer that does not take
    /// its answers gets no new requests read; writing while the socket holds back a backlog)
    /// and when it next needs [`handle_timeout`](Self::handle_timeout).
    pub fn wants(&self) -> Wants {
        match &self.phase {
            Phase::Sniff { .. } => Wants {
                read: true,
                write: false,
                timer: Some(self.handshake_deadline),
            },
            Phase::Handshake { out, .. } => Wants {
                read: true,
                write: !out.is_empty(),
                timer: Some(self.handshake_deadline),
            },
            Phase::H2(h) => {
                let release = h.buffers_held.then_some(h.last_active + IDLE_RELEASE);
                let stall = h
                    .stall
                    .map(|(since, _)| since + self.core.config.send_stall_timeout);
                let (bridge_timer, bridge_reads) = match &h.bridge {
                    Some(b) => {
                        let b = lock(b);
                        (b.poll_timeout(), b.wants_read())
                    }
                    None => (None, true),
                };
                let mut st = h.shared.lock();
                let machine = st.conn.poll_timeout();
                let timer = [h.next_deadline, release, stall, machine, bridge_timer]
                    .into_iter()
                    .flatten()
                    .min();
                // What the loop has armed: a command that wants an earlier time wakes it.
                st.armed = timer;
                Wants {
                    read: st.unwritten() <= st.budget && bridge_reads,
                    write: st.backlog > 0,
                    timer,
                }
            }
            Phase::Done => Wants {
                read: false,
                write: false,
                timer: None,
            },
        }
    }

    /// Serves the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Next {
        let timeout = self.core.config.handshake_timeout;
        let stall_timeout = self.core.config.send_stall_timeout;
        match &mut self.phase {
            Phase::Sniff { .. } => {
                if now >= self.handshake_deadline {
                    log::debug!(
                        "grpc-sync: client {} sent no HTTP/2 preface within {timeout:?} \
                         (handshake_timeout): closing",
                        self.peer
                    );
                    return self.close();
                }
                Next::Continue
            }
            Phase::Handshake { .. } => {
                if now >= self.handshake_deadline {
                    return self.fail_handshake(HandshakeError::Timeout(timeout));
                }
                Next::Continue
            }
            Phase::H2(h) => {
                if let Some(b) = &h.bridge {
                    lock(b).handle_timeout(now);
                }
                let mut st = h.shared.lock();
                if let Err(e) = st.conn.handle_timeout(now) {
                    // The GOAWAY it queued goes out as the connection ends.
                    crate::transport::driver::log_conn_error(&st, &e);
                    st.set_lost(ConnLost::Protocol(e.to_string()));
                }
                if h.next_deadline.is_some_and(|d| d <= now) {
                    h.next_deadline = h.dispatch.tick(&mut st, now);
                }
                if h.buffers_held && now >= h.last_active + IDLE_RELEASE {
                    if st.streams.is_empty() && st.queued() == 0 {
                        st.conn.release_buffers();
                        h.buffers_held = false;
                    } else {
                        // Quiet but busy (a long call): look again later.
                        h.last_active = now;
                    }
                }
                // Output that has made no progress for `send_stall_timeout` ends the
                // connection: the peer is not reading.
                let progress = st.written + st.outbox_sent;
                let stalled = match h.stall {
                    _ if st.queued() == 0 => {
                        h.stall = None;
                        false
                    }
                    Some((since, p)) if p == progress => now >= since + stall_timeout,
                    _ => {
                        h.stall = Some((now, progress));
                        false
                    }
                };
                if stalled {
                    let msg = format!(
                        "the peer took none of our output for {stall_timeout:?} (send_stall_timeout)"
                    );
                    st.conn.go_away(Reason::ENHANCE_YOUR_CALM, msg.as_bytes());
                    crate::logging::log_limited!(
                        crate::logging::GOAWAY_SENT,
                        "grpc-sync: sent GOAWAY ENHANCE_YOUR_CALM to {}: {msg}",
                        st.peer
                    );
                    st.set_lost(ConnLost::Io(msg));
                }
                let shared = h.shared.clone();
                drop(st);
                if self.end_round(shared.lock()) == Next::Close {
                    return Next::Close;
                }
                self.settle_bridge()
            }
            Phase::Done => Next::Close,
        }
    }

    /// Plaintext port: the first bytes decide what the peer speaks.
    fn sniff(&mut self, scratch: &mut [u8], now: Instant) -> Next {
        let Phase::Sniff { first } = &mut self.phase else {
            unreachable!("sniff outside its phase");
        };
        let n = match (&*self.sock).read(&mut scratch[..]) {
            Ok(0) => return self.close(),
            Ok(n) => n,
            Err(e) if would_block(&e) => return Next::Continue,
            Err(_) => return self.close(),
        };
        first.extend_from_slice(&scratch[..n]);
        let k = first.len().min(PREFACE.len());
        if first[..k] == PREFACE[..k] {
            if first.len() < PREFACE.len() {
                return Next::Continue;
            }
            let first = std::mem::take(first);
            return self.start_h2(None, None, None, &first, now);
        }
        if first[0] == 0x16 {
            // A TLS ClientHello on a plaintext port: close without a word (the client reports
            // that the server does not speak TLS).
            log::debug!(
                "grpc-sync: client {} started a TLS handshake on a plaintext port: closing",
                self.peer
            );
            return self.close();
        }
        let web = self.core.config.web.is_some();
        if web && first.len() < 16 && first.iter().all(u8::is_ascii_uppercase) {
            // Maybe the start of an HTTP/1.1 method ("PO" of POST): wait for the rest.
            return Next::Continue;
        }
        if looks_http1(first) {
            if web {
                // gRPC-Web over HTTP/1.1.
                let first = std::mem::take(first);
                let bridge = self.bridge(false, now);
                return self.start_h2(None, None, Some(bridge), &first, now);
            }
            log::debug!(
                "grpc-sync: client {} sent an HTTP/1 request: answered 426 (this is a gRPC \
                 server) and closed",
                self.peer
            );
            answer_http1(&self.sock);
            return self.close();
        }
        // Neither HTTP/2 nor HTTP/1: the machine answers GOAWAY PROTOCOL_ERROR (RFC 9113
        // §3.4) before the close.
        let first = std::mem::take(first);
        self.start_h2(None, None, None, &first, now)
    }

    /// Secure port: one step of the TLS handshake.
    fn handshake(&mut self, scratch: &mut [u8], now: Instant) -> Next {
        let Phase::Handshake { tls, out, started } = &mut self.phase else {
            unreachable!("handshake outside its phase");
        };
        let first_flight = !std::mem::replace(started, true);
        let n = match (&*self.sock).read(&mut scratch[..]) {
            Ok(0) => return self.fail_handshake(HandshakeError::PeerClosed { peer_is: "client" }),
            Ok(n) => n,
            Err(e) if would_block(&e) => return Next::Continue,
            Err(e) => return self.fail_handshake(HandshakeError::Io(e.to_string())),
        };
        if first_flight && scratch[0] != 0x16 {
            let looks_like = tls::looks_like(&scratch[..n]);
            return self.fail_handshake(HandshakeError::NotTls { looks_like });
        }
        let mut rest = &scratch[..n];
        let mut failed = None;
        // Up to the end of the handshake only: what follows (the client's first HTTP/2
        // bytes, possibly much more than rustls buffers as plaintext) is read in HTTP/2.
        while !rest.is_empty() && tls.is_handshaking() {
            match tls.read_tls(&mut rest) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    failed = Some(HandshakeError::Io(e.to_string()));
                    break;
                }
            }
            if let Err(e) = tls.process_new_packets() {
                failed = Some(HandshakeError::Tls(tls::describe_handshake(
                    &e,
                    tls::Side::Server,
                )));
                break;
            }
        }
        let leftover = rest.to_vec();
        while tls.wants_write() {
            if tls.write_tls(out).is_err() {
                break;
            }
        }
        if !out.is_empty() {
            if let Ok(n) = write_some(&self.sock, out) {
                out.drain(..n);
            }
        }
        if let Some(e) = failed {
            return self.fail_handshake(e);
        }
        if tls.is_handshaking() || !out.is_empty() {
            return Next::Continue;
        }
        let http1 = self.core.config.web.is_some() && tls.alpn_protocol() == Some(b"http/1.1");
        if tls.alpn_protocol() != Some(tls::ALPN_H2) && !http1 {
            let selected = tls
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned());
            return self.fail_handshake(HandshakeError::NoH2 { selected });
        }
        let Phase::Handshake { tls, .. } = std::mem::replace(&mut self.phase, Phase::Done) else {
            unreachable!("checked above");
        };
        let conn = rustls::Connection::Server(*tls);
        let auth = Arc::new(AuthContext::from_conn(&conn));
        let rustls::Connection::Server(mut tls) = conn else {
            unreachable!("a server connection");
        };
        // Sealed writes go to the sink's backlog, which the output budget bounds.
        tls.set_buffer_limit(None);
        let tls = Arc::new(Mutex::new(tls));
        let bridge = http1.then(|| self.bridge(true, now));
        if self.start_h2(Some(tls), Some(auth), bridge, &[], now) == Next::Close {
            return Next::Close;
        }
        // The client may have sent its preface (and more) in the same flight as its Finished.
        self.read_h2_after(scratch, &leftover, now)
    }

    fn fail_handshake(&mut self, e: HandshakeError) -> Next {
        crate::logging::log_limited!(
            crate::logging::TLS_HANDSHAKE,
            "grpc-sync: TLS handshake with client {} failed: {e}",
            self.peer
        );
        if let Some(hook) = &self.core.config.on_handshake_error {
            let _ = catch_unwind(AssertUnwindSafe(|| (hook.0)(&self.peer, &e)));
        }
        self.close()
    }

    /// Starts HTTP/2: the machine (fed `first`, bytes already read), the sink, the dispatch,
    /// and registration with the server.
    fn start_h2(
        &mut self,
        tls: Option<Arc<Mutex<rustls::ServerConnection>>>,
        auth: Option<Arc<AuthContext>>,
        bridge: Option<Bridge>,
        first: &[u8],
        now: Instant,
    ) -> Next {
        let mut config = self.core.config.h2.clone();
        if let Some(age) = &mut config.keepalive.max_connection_age {
            *age = jitter(*age, self.id);
        }
        let conn = Connection::new(Role::Server, config);
        log::debug!(
            "grpc-sync: client {} connected ({})",
            self.peer,
            if tls.is_some() { "TLS" } else { "plaintext" }
        );
        let sink = SocketSink::new(self.sock.clone(), tls.clone(), self.waker.clone());
        let bridge = bridge.map(|b| Arc::new(Mutex::new(b)));
        let sink: Box<dyn Sink> = match &bridge {
            None => Box::new(sink),
            Some(b) => Box::new(BridgeSink {
                bridge: b.clone(),
                inner: sink,
                waker: self.waker.clone(),
            }),
        };
        let sock = self.sock.clone();
        let shared = Shared::on_loop(
            conn,
            sink,
            Box::new(move || sock.shutdown()),
            self.waker.clone(),
            self.core.config.output_budget,
        );
        shared.lock().peer = format!("client {}", self.peer);
        if !self.core.register_conn(self.id, shared.clone()) {
            return self.close();
        }
        let dispatch = ServerDispatcher::new(self.core.clone(), self.peer.as_str().into(), auth);
        self.phase = Phase::H2(Box::new(H2 {
            shared,
            dispatch,
            tls,
            next_deadline: None,
            stall: None,
            last_active: now,
            buffers_held: true,
            bridge,
        }));
        self.input(first, now)
    }

    /// A bridge for an HTTP/1.1 connection (gRPC-Web), with the server's limits.
    fn bridge(&self, tls: bool, now: Instant) -> Bridge {
        let config = &self.core.config;
        let web = config.web.as_deref().cloned().unwrap_or_default();
        let limits = Limits {
            max_head: config.h2.max_header_list_size as usize,
            // One message, framed.
            max_body: config.max_receive_message_length as u64 + 5,
            request_timeout: config.handshake_timeout,
            idle_timeout: web.idle_timeout,
        };
        Bridge::new(tls, limits, now)
    }

    /// HTTP/2: reads what the socket has (decrypting on a secure port) and processes it.
    fn read_h2(&mut self, scratch: &mut [u8], now: Instant) -> Next {
        self.read_h2_after(scratch, &[], now)
    }

    /// [`read_h2`](Self::read_h2), TLS records in `pre` (read with the handshake's last
    /// flight) first.
    fn read_h2_after(&mut self, scratch: &mut [u8], pre: &[u8], now: Instant) -> Next {
        let Phase::H2(h) = &mut self.phase else {
            return Next::Continue;
        };
        let Some(tls) = h.tls.clone() else {
            let n = match (&*self.sock).read(&mut scratch[..]) {
                Ok(0) => {
                    h.shared
                        .lock()
                        .set_lost(ConnLost::Io("peer closed the connection".into()));
                    0
                }
                Ok(n) => n,
                Err(e) if would_block(&e) => return Next::Continue,
                Err(e) => {
                    h.shared.lock().set_lost(ConnLost::Io(e.to_string()));
                    0
                }
            };
            return self.input(&scratch[..n], now);
        };
        // TLS: records from the socket until it has no more (or a budget, for fairness: the
        // loop comes back while the socket stays readable), and all the plaintext they hold
        // (none may stay in rustls: the socket would not be reported readable for it again).
        let mut plain = Vec::new();
        let mut lost = None;
        let wants_write;
        {
            let mut t = lock(&tls);
            let mut sock = &*self.sock;
            let mut pre = pre;
            loop {
                let mut drained = false;
                let read = if pre.is_empty() {
                    t.read_tls(&mut sock)
                } else {
                    t.read_tls(&mut pre)
                };
                match read {
                    Ok(0) => lost = Some(ConnLost::Io("peer closed the connection".into())),
                    Ok(_) => {}
                    Err(e) if would_block(&e) => drained = true,
                    Err(e) => lost = Some(ConnLost::Io(e.to_string())),
                }
                if let Err(e) = t.process_new_packets() {
                    lost = Some(ConnLost::Io(format!(
                        "TLS error: {}",
                        tls::describe_handshake(&e, tls::Side::Server)
                    )));
                }
                loop {
                    match t.reader().read(&mut scratch[..]) {
                        Ok(0) => {
                            // close_notify.
                            lost.get_or_insert(ConnLost::Io("peer closed the connection".into()));
                            break;
                        }
                        Ok(n) => plain.extend_from_slice(&scratch[..n]),
                        Err(_) => break,
                    }
                }
                if lost.is_some() || (pre.is_empty() && (drained || plain.len() >= TLS_READ_BUDGET))
                {
                    break;
                }
            }
            wants_write = t.wants_write();
        }
        if let Some(l) = lost {
            h.shared.lock().set_lost(l);
        }
        if wants_write {
            // Alerts, key updates, session tickets.
            h.shared.write_out();
        }
        self.input(&plain, now)
    }

    /// One round of input: the machine, the routing, the dispatch, the deadlines, the output.
    fn input(&mut self, bytes: &[u8], now: Instant) -> Next {
        let Phase::H2(h) = &mut self.phase else {
            return Next::Continue;
        };
        h.last_active = now;
        h.buffers_held = true;
        // HTTP/1.1: the socket's bytes go to the bridge, and what it makes of them to the
        // machine.
        let bridged = h.bridge.as_ref().map(|b| {
            let mut b = lock(b);
            b.recv_client(bytes, now);
            b.take_for_server()
        });
        let bytes = bridged.as_deref().unwrap_or(bytes);
        let shared = h.shared.clone();
        let mut st = shared.lock();
        if !bytes.is_empty() {
            shared.recv(&mut st, bytes, now);
        }
        shared.route(&mut st);
        h.dispatch.on_changes(&shared, &mut st);
        h.next_deadline = h.dispatch.tick(&mut st, now);
        if self.end_round(st) == Next::Close {
            return Next::Close;
        }
        self.settle_bridge()
    }

    fn end_round(
        &mut self,
        st: std::sync::MutexGuard<'_, crate::transport::driver::State>,
    ) -> Next {
        let Phase::H2(h) = &mut self.phase else {
            return Next::Continue;
        };
        let shared = h.shared.clone();
        let mut st = st;
        if Shared::is_done(&st) {
            if !h.dispatch.inline.is_empty() {
                // The connection died as these requests completed: their handlers still run
                // (and find their streams broken), so every RPC is accounted for.
                for job in h.dispatch.inline.drain(..) {
                    crate::server::dispatch::queue_job(&self.core, job);
                }
            }
            h.dispatch.closed();
            if st.lost.is_none() {
                st.set_lost(ConnLost::Closed);
            }
        }
        let alive = shared.end_round(st);
        h.dispatch.unlocked();
        if !alive {
            return self.close();
        }
        Next::Continue
    }

    /// Ends the connection: shuts the socket down and lets the server forget it.
    pub fn close(&mut self) -> Next {
        if let Phase::H2(h) = std::mem::replace(&mut self.phase, Phase::Done) {
            let mut h = h;
            {
                let mut st = h.shared.lock();
                if st.lost.is_none() {
                    st.set_lost(ConnLost::Closed);
                }
                if let Some(lost) = &st.lost {
                    log::debug!("grpc-sync: {}: {lost}", st.peer);
                }
            }
            h.dispatch.closed();
            h.dispatch.unlocked();
            for job in h.dispatch.inline.drain(..) {
                crate::server::dispatch::queue_job(&self.core, job);
            }
            self.core.unregister_conn(self.id);
        }
        self.sock.shutdown();
        Next::Close
    }
}

/// `d` ± 10 %, as gRPC jitters connection ages, from a cheap hash of the connection id and
/// the clock (no random-number crate for this).
fn jitter(d: Duration, id: u64) -> Duration {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos() as u64);
    // splitmix64
    let mut z = (id ^ t).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // A factor in [0.9, 1.1).
    let f = 0.9 + (z >> 11) as f64 / (1u64 << 53) as f64 * 0.2;
    d.mul_f64(f)
}

fn would_block(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}

/// Whether the first bytes look like an HTTP/1 request line (a method, then a space).
fn looks_http1(first: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(first).is_ok() && req.method.is_some()
}

/// Answers an HTTP/1.x request on the gRPC port with a clear error instead of a silent close
/// (best effort: one non-blocking write).
fn answer_http1(sock: &Socket) {
    let body = "This is a gRPC server: it speaks HTTP/2 (h2c prior knowledge, or h2 over TLS). \
                Use a gRPC client.\n";
    let resp = format!(
        "HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Upgrade: h2c\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = write_some(sock, resp.as_bytes());
    let _ = (&*sock).flush();
}
