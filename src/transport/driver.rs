//! The connection core around one sans-IO [`Connection`], shared by client and server: the
//! state machine and the per-stream slots behind one lock ([`Shared`]), the blocking
//! [`StreamHandle`] that handlers and calls use, and the routing of the machine's events into
//! the slots ([`Shared::route`]).
//!
//! Who reads:
//! - server: the connection's I/O loop (`server::io`) reads the non-blocking socket, feeds the
//!   bytes to the machine, routes the events, and acts on the [`Change`]s this leaves for it;
//! - client: one reader thread per connection ([`run_reader`]) does the same with a blocking
//!   socket.
//!
//! Who writes: whichever thread produced output (a handler's response, a caller's request, the
//! reader's ACKs and WINDOW_UPDATEs) hands it to the connection's [`Sink`] after releasing the
//! state lock. If another thread is already writing, the bytes are left in the state machine's
//! buffer and that writer sends them before it lets go (see [`Shared::flush`]), so a response's
//! HEADERS, DATA and trailers usually leave in one `write`. The server's sink never blocks: what
//! the socket does not take stays in its backlog and the I/O loop writes it when the socket is
//! writable. Stream messages are left for a background writer ([`Shared::flush_later`]: the I/O
//! loop on the server, a writer thread on the client) so that a fast producer's messages
//! coalesce.
//!
//! Threads waiting on a stream (a response, more request messages, send window, room in the
//! connection's output budget) sleep on that stream's condition variable, paired with the one
//! state mutex.
//!
//! Lock order: `state`, then (only by `try_lock`) `writer`; a thread holding `writer` may block on
//! `state`. The state lock is never held across a socket call.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;

use crate::h2::conn::{Connection, ConnectionError, Event, IdMap, Role, SendError};
use crate::h2::error::Reason;
use crate::h2::frame::StreamId;
use crate::h2::hpack::Header;

/// Why a connection can no longer carry streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnLost {
    /// The socket failed or the peer closed it.
    Io(String),
    /// A protocol error: we sent or received GOAWAY with an error code.
    Protocol(String),
    /// Closed on purpose (graceful shutdown finished, or the last handle went away).
    Closed,
}

impl std::fmt::Display for ConnLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnLost::Io(e) => write!(f, "connection lost: {e}"),
            ConnLost::Protocol(e) => write!(f, "connection closed by protocol error: {e}"),
            ConnLost::Closed => f.write_str("connection closed"),
        }
    }
}

/// What went wrong while waiting on or sending to a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamError {
    /// The stream was reset, by the peer (`remote`) or by us.
    Reset { reason: Reason, remote: bool },
    /// The connection died under the stream.
    Lost(ConnLost),
    /// The deadline passed first.
    Timeout,
    /// The peer's GOAWAY says it never processed this stream: safe to retry elsewhere.
    Refused,
    /// The connection died before any of the stream's HEADERS reached the socket: the peer
    /// never saw it, so it too is safe to retry elsewhere.
    Unsent(ConnLost),
}

/// A condition variable paired with the state lock that makes no wake-up syscall when nobody
/// waits on it, nor when everyone waiting has been woken already.
///
/// `std`'s futex-based `Condvar` enters the kernel on every `notify_*`, waiter or not; the
/// reader thread notifies a stream's variable for each event (HEADERS, DATA, trailers, the
/// stream's closing), mostly with nobody waiting or with the waiter already woken by the
/// previous event of the same batch: three or four futex calls per unary RPC, on both sides.
///
/// Every wait and every notify happens under the connection's state lock (the state changes a
/// waiter looks for are made under it too), so the two counters need no further ordering:
/// `waiting` counts threads that wait and have not been woken, `generation` tells a returning
/// waiter whether a notify already took it off that count.
#[derive(Default)]
pub(crate) struct WaitCell {
    cv: Condvar,
    waiting: AtomicUsize,
    generation: AtomicUsize,
}

impl WaitCell {
    /// Wakes every thread waiting on this cell, if there is any not woken yet. Call it with
    /// the state lock held.
    pub fn notify_all(&self) {
        if self.count_off_waiters() {
            self.cv.notify_all();
        }
    }

    /// The bookkeeping half of [`WaitCell::notify_all`] (under the state lock): true if
    /// somebody waits, who must then be woken with [`WaitCell::wake`] (after the lock is
    /// released, if you like: a waiter counted here is already inside its wait).
    fn count_off_waiters(&self) -> bool {
        if self.waiting.swap(0, Ordering::Relaxed) > 0 {
            self.generation.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// The syscall half of [`WaitCell::notify_all`].
    fn wake(&self) {
        self.cv.notify_all();
    }
}

/// Receive-side state of one stream, filled by the reader thread.
pub(crate) struct StreamSlot {
    /// Woken on anything that may unblock a receiver or a sender of this stream.
    pub cv: Arc<WaitCell>,
    /// The first header block (request or response head, or a trailers-only response).
    pub head: Option<Vec<Header>>,
    /// Whether the head has been handed to the application already.
    pub head_taken: bool,
    /// DATA payloads not yet read by the application (their window not yet released).
    pub data: VecDeque<Bytes>,
    /// Bytes in `data`.
    pub buffered: usize,
    /// The trailing header block, if one came.
    pub trailers: Option<Vec<Header>>,
    /// END_STREAM received.
    pub end: bool,
    /// RST_STREAM sent or received, or the stream refused by GOAWAY.
    pub reset: Option<StreamError>,
    /// The state machine closed the stream (both directions done or reset).
    pub closed: bool,
    /// A [`StreamHandle`] exists for this slot; when both it is gone and `closed`, the slot goes.
    pub attached: bool,
    /// Whether the application has sent END_STREAM.
    pub sent_end: bool,
    /// Whether the application has sent its first header block.
    pub sent_head: bool,
    /// Callbacks waiting for the peer to finish the stream (client futures).
    pub on_finished: Vec<Box<dyn FnOnce() + Send>>,
    /// Callbacks waiting for the peer's first answer: a head, or the stream's end (hedging).
    pub on_answer: Vec<Box<dyn FnOnce() + Send>>,
    /// Set while [`StreamHandle::recv_whole`] waits: its threshold of buffered data. The
    /// reader then does not wake it for a head or data short of that, only for the end.
    pub whole_wait: Option<usize>,
    /// Server: the rest of a finished response that the peer's window did not take yet. It
    /// leaves as WINDOW_UPDATEs come ([`pump_outbox`]), so the handler that produced it has
    /// returned already: no worker waits on a peer's window for a unary response.
    pub outbox: VecDeque<Bytes>,
    /// The trailers that end the response once `outbox` is empty.
    pub outbox_trailers: Option<Vec<Header>>,
    /// Client: where the stream's HEADERS begin in the connection's output (see
    /// [`State::taken`]). If the connection dies before the socket took that byte, the
    /// request never left the client and may be retried (gRFC A6's transparent retry).
    pub head_at: Option<u64>,
    /// Server: a gRPC-Web call's response rules (content-type, CORS, trailers in the body,
    /// base64 in text mode), applied to what is sent on the stream.
    pub web: Option<Arc<crate::web::WebStream>>,
}

impl StreamSlot {
    fn new() -> StreamSlot {
        StreamSlot {
            cv: Arc::new(WaitCell::default()),
            head: None,
            head_taken: false,
            data: VecDeque::new(),
            buffered: 0,
            trailers: None,
            end: false,
            reset: None,
            closed: false,
            attached: true,
            sent_end: false,
            sent_head: false,
            on_finished: Vec::new(),
            on_answer: Vec::new(),
            whole_wait: None,
            outbox: VecDeque::new(),
            outbox_trailers: None,
            head_at: None,
            web: None,
        }
    }

    /// Whether an arrival is worth waking this stream's waiter for.
    fn worth_waking(&self) -> bool {
        match self.whole_wait {
            None => true,
            Some(enough) => self.end || self.reset.is_some() || self.buffered >= enough,
        }
    }
}

/// What the connection's owner (the server's dispatch) must look at after a round of input:
/// recorded by [`Shared::route`] when the state was made with changes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// The peer opened a stream; its head is in the slot.
    NewStream { id: StreamId, end_stream: bool },
    /// Data, trailers, the end, a reset or the close arrived for a stream.
    Stream(StreamId),
}

/// Everything behind the connection's one lock.
pub(crate) struct State {
    /// The HTTP/2 state machine.
    pub conn: Connection,
    /// Per-stream receive state, keyed by stream id.
    pub streams: IdMap<StreamSlot>,
    /// Set once the connection can no longer be used.
    pub lost: Option<ConnLost>,
    /// The peer's GOAWAY: no new streams may be opened.
    pub goaway: Option<(StreamId, Reason)>,
    /// The peer's GOAWAY debug data (`too_many_pings` tells a client to ping less).
    pub goaway_debug: Option<Bytes>,
    /// The peer as log lines name it: `client ipv4:127.0.0.1:53412`, `server 10.0.0.7:50051`.
    pub peer: String,
    /// Woken when streams close, the peer's settings change or the connection dies: for callers
    /// waiting for a free stream slot (MAX_CONCURRENT_STREAMS).
    pub conn_cv: Arc<WaitCell>,
    /// Callbacks to run once the lock is released (stream-finished callbacks).
    pub deferred: Vec<Box<dyn FnOnce() + Send>>,
    /// Close the connection as soon as no stream is left (the channel was dropped or closed).
    pub close_when_idle: bool,
    /// Stream waiters the reader thread counted off under the lock and wakes once it has
    /// released it, so that they do not wake only to block on the lock it still holds.
    wakes: Vec<Arc<WaitCell>>,
    /// What the owner must act on (server only; see [`Change`]).
    pub changes: Vec<Change>,
    record_changes: bool,
    /// Bytes waiting in stream outboxes for the peer's window.
    pub outbox_bytes: usize,
    /// Bytes that have left the outboxes so far (progress, for the send-stall check).
    pub outbox_sent: u64,
    /// Bytes the sink holds that the socket has not taken yet (as of the last write).
    pub backlog: usize,
    /// Bytes the sink has written to the socket so far (as of the last write).
    pub written: u64,
    /// Bytes of the machine's output handed to the sink so far: with `written`, says which
    /// streams' HEADERS never reached the socket.
    pub taken: u64,
    /// Client: a write failed because the peer is gone (EPIPE, ECONNRESET). Nothing more is
    /// written and no stream opened, but the connection is not marked lost until the reader
    /// has drained what the peer sent before it went: a GOAWAY there tells which streams
    /// the server never saw, and those are retried instead of failed.
    pub write_failed: bool,
    /// Stream messages wait while the output not yet written (the machine's buffer and the
    /// sink's backlog) is over this.
    pub budget: usize,
    /// Threads waiting for the output to fall under the budget.
    budget_waiters: usize,
    /// Server: the instant the I/O loop has a timer armed for (its connection's next
    /// deadline). A command that makes the machine want the clock sooner (the last call of a
    /// connection with `max_connection_idle` ended) wakes the loop to re-arm.
    pub armed: Option<Instant>,
}

impl State {
    /// Moves the stream's finished-callbacks to `deferred` if the peer is done with it.
    fn collect_finished(&mut self, id: StreamId) {
        let lost = self.lost.is_some();
        if let Some(slot) = self.streams.get_mut(&id) {
            let finished = slot.end || slot.reset.is_some() || lost;
            if finished && !slot.on_finished.is_empty() {
                self.deferred.append(&mut slot.on_finished);
            }
            if (finished || slot.head.is_some()) && !slot.on_answer.is_empty() {
                self.deferred.append(&mut slot.on_answer);
            }
        }
    }

    /// Marks the connection dead and wakes every waiter.
    /// Whether the connection can take new streams: not lost, no failed write, no GOAWAY
    /// from the peer, not closed.
    pub fn takes_new_streams(&self) -> bool {
        self.lost.is_none() && !self.write_failed && self.goaway.is_none() && !self.conn.is_closed()
    }

    pub fn set_lost(&mut self, lost: ConnLost) {
        if self.lost.is_none() {
            self.lost = Some(lost);
        }
        let written = self.written;
        let lost = self.lost.clone().expect("set above");
        for slot in self.streams.values_mut() {
            // Not one byte of its HEADERS reached the socket: the server cannot have seen it.
            if slot.head_at.is_some_and(|at| at >= written)
                && slot.reset.is_none()
                && slot.head.is_none()
                && !slot.head_taken
            {
                slot.reset = Some(StreamError::Unsent(lost.clone()));
            }
            slot.cv.notify_all();
            self.deferred.append(&mut slot.on_finished);
            self.deferred.append(&mut slot.on_answer);
        }
        self.conn_cv.notify_all();
    }

    /// Registers a slot for a stream (a new incoming stream, or one we just opened).
    pub fn insert_slot(&mut self, id: StreamId) -> Arc<WaitCell> {
        let slot = self.streams.entry(id).or_insert_with(StreamSlot::new);
        slot.cv.clone()
    }

    fn wake_all_streams(&self) {
        for slot in self.streams.values() {
            slot.cv.notify_all();
        }
    }

    /// Records that stream `id` changed, for the server's dispatch.
    fn changed(&mut self, id: StreamId) {
        if self.record_changes {
            self.changes.push(Change::Stream(id));
        }
    }

    /// Bytes of output not yet on the socket: the machine's buffer and the sink's backlog.
    pub fn unwritten(&self) -> usize {
        self.conn.pending_output() + self.backlog
    }

    /// Everything queued for the peer and not yet written: [`unwritten`](Self::unwritten)
    /// plus the responses waiting for the peer's window.
    pub fn queued(&self) -> usize {
        self.unwritten() + self.outbox_bytes
    }

    /// Wakes the stream messages waiting for room in the budget, once there is.
    fn wake_budget_waiters(&mut self) {
        if self.budget_waiters > 0 && self.unwritten() <= self.budget {
            self.budget_waiters = 0;
            self.wake_all_streams();
        }
    }

    /// Drops a stream's queued response (the stream was reset or its deadline passed).
    pub fn clear_outbox(&mut self, id: StreamId) {
        if let Some(slot) = self.streams.get_mut(&id) {
            let n: usize = slot.outbox.iter().map(|b| b.len()).sum();
            slot.outbox.clear();
            slot.outbox_trailers = None;
            self.outbox_bytes -= n;
        }
    }
}

/// Sends what the peer's window now takes of a stream's queued response, then its trailers
/// once all of it has gone (and, as after any gRPC response, RST_STREAM NO_ERROR if the
/// client is still sending).
pub(crate) fn pump_outbox(st: &mut State, id: StreamId) {
    let Some(slot) = st.streams.get_mut(&id) else {
        return;
    };
    if slot.outbox_trailers.is_none() {
        return;
    }
    while let Some(front) = slot.outbox.front_mut() {
        let Ok(n) = st.conn.send_data(id, front, false) else {
            break;
        };
        st.outbox_bytes -= n;
        st.outbox_sent += n as u64;
        if n < front.len() {
            bytes::Buf::advance(front, n);
            return;
        }
        slot.outbox.pop_front();
    }
    if !slot.outbox.is_empty() {
        return;
    }
    let trailers = slot.outbox_trailers.take().expect("checked above");
    let client_done = slot.end;
    if trailers.is_empty() {
        // A gRPC-Web response whose trailers frame has gone with the data: just the end.
        if st.conn.send_data(id, &[], true).is_ok() && !client_done {
            st.conn.reset(id, Reason::NO_ERROR);
        }
        return;
    }
    let _ = end_response(st, id, &trailers);
}

/// Sends a server stream's first header block (its head, or a trailers-only response),
/// rewritten for a browser on a gRPC-Web stream (content-type, CORS).
pub(crate) fn send_head(
    st: &mut State,
    id: StreamId,
    headers: &[Header],
    end_stream: bool,
) -> Result<(), SendError> {
    match st.streams.get(&id).and_then(|s| s.web.clone()) {
        None => st.conn.send_headers(id, headers, end_stream),
        Some(web) => st.conn.send_headers(id, &web.head(headers), end_stream),
    }
}

/// Ends a server stream whose head has gone: its trailers, then (as after any gRPC response)
/// RST_STREAM NO_ERROR if the client is still sending. A gRPC-Web stream's trailers are the
/// body's last frame instead: what the peer's window does not take now waits in the stream's
/// outbox, and the end follows it from [`pump_outbox`].
pub(crate) fn end_response(
    st: &mut State,
    id: StreamId,
    trailers: &[Header],
) -> Result<(), SendError> {
    let (client_done, web) = match st.streams.get(&id) {
        Some(slot) => (slot.end, slot.web.clone()),
        None => (true, None),
    };
    match web {
        None => st.conn.send_headers(id, trailers, true)?,
        Some(web) => {
            let body = web.trailers(trailers);
            let n = st.conn.send_data(id, &body, true)?;
            if n < body.len() {
                if let Some(slot) = st.streams.get_mut(&id) {
                    slot.outbox.push_back(body.freeze().slice(n..));
                    // The end alone is left to send (see `pump_outbox`).
                    slot.outbox_trailers = Some(Vec::new());
                    st.outbox_bytes += slot.outbox.back().map_or(0, |b| b.len());
                }
                return Ok(());
            }
        }
    }
    if !client_done {
        st.conn.reset(id, Reason::NO_ERROR);
    }
    Ok(())
}

fn pump_all_outboxes(st: &mut State) {
    // Trailers wait only behind queued bytes.
    if st.outbox_bytes == 0 {
        return;
    }
    let ids: Vec<StreamId> = st
        .streams
        .iter()
        .filter(|(_, s)| s.outbox_trailers.is_some())
        .map(|(id, _)| *id)
        .collect();
    for id in ids {
        pump_outbox(st, id);
    }
}

/// The socket's write side, as the driver sees it.
pub(crate) trait Sink: Send {
    /// Hands `buf` to the socket. A blocking sink writes all of it; a non-blocking one writes
    /// what the socket takes now and keeps the rest in its backlog (and arranges to be
    /// drained when the socket is writable). An empty `buf` just writes what the transport
    /// itself has to send (TLS records).
    fn send(&mut self, buf: &[u8]) -> io::Result<()>;

    /// Bytes handed over but not yet written (always 0 for a blocking sink).
    fn backlog(&self) -> usize {
        0
    }

    /// Bytes written to the socket so far (progress, for the send-stall check).
    fn written(&self) -> u64 {
        0
    }
}

/// A blocking writer (the client's socket or TLS write half) as a [`Sink`].
struct Blocking {
    out: Box<dyn Write + Send>,
    /// Bytes the writer has taken so far.
    written: u64,
    /// Whether a byte the writer took is a byte on the socket (a plain socket). A TLS writer
    /// may fail after sending part of what it was given, so a failure there counts all of it
    /// as sent: a retry is then never a duplicate.
    exact: bool,
}

impl Sink for Blocking {
    fn send(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.out.write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.written += n as u64;
                    buf = &buf[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if !self.exact {
                        self.written += buf.len() as u64;
                    }
                    return Err(e);
                }
            }
        }
        self.out.flush()
    }

    fn written(&self) -> u64 {
        self.written
    }
}

/// The shared half of a connection: its state and its write half.
pub(crate) struct Shared {
    state: Mutex<State>,
    writer: Mutex<Box<dyn Sink>>,
    /// Shuts the socket down (both halves), which also ends the reader.
    closer: Option<Box<dyn Fn() + Send + Sync>>,
    /// Server: the connection's I/O loop, which writes stream messages and the backlog.
    waker: Option<Arc<crate::transport::poll::Waker>>,
    /// Client: the background writer of stream messages, started on first use (see
    /// [`Shared::flush_later`]).
    flusher: std::sync::OnceLock<Arc<Flusher>>,
}

/// Wakes a connection's background writer. Lock-free, so that a stream message costs the
/// producer one atomic swap when the writer was already woken, and an unpark (a futex wake
/// only if the writer sleeps) otherwise.
#[derive(Default)]
struct Flusher {
    /// There is output for the writer (set by producers, cleared by the writer).
    pending: AtomicBool,
    /// The connection is gone, or the writer never started: producers write themselves.
    stopped: AtomicBool,
    /// The writer thread, set right after it is spawned.
    thread: std::sync::OnceLock<std::thread::Thread>,
    /// Messages queued since the writer last looked: more than one per round means the
    /// producer outpaces the writes (see `flusher_loop`).
    queued: AtomicUsize,
}

impl Flusher {
    fn signal(&self, stop: bool) {
        if stop {
            self.stopped.store(true, Ordering::Release);
        } else {
            self.queued.fetch_add(1, Ordering::Relaxed);
        }
        if !self.pending.swap(true, Ordering::AcqRel) || stop {
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
        }
    }
}

/// Locks a mutex, ignoring poisoning: a panicking handler must not take the connection down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Wraps a fresh state machine, the socket's write half and a function that shuts the
    /// socket down.
    ///
    /// `exact` says whether a byte the writer takes is a byte on the socket (true for a plain
    /// socket, false for TLS); see [`StreamSlot::head_at`].
    pub fn with_closer(
        conn: Connection,
        writer: Box<dyn Write + Send>,
        exact: bool,
        closer: Box<dyn Fn() + Send + Sync>,
    ) -> Arc<Shared> {
        let sink = Blocking {
            out: writer,
            written: 0,
            exact,
        };
        Self::build(conn, Box::new(sink), Some(closer), None)
    }

    /// A server connection on an I/O loop: a non-blocking sink, the loop's waker, the output
    /// budget, and [`Change`]s recorded for the server's dispatch.
    pub fn on_loop(
        conn: Connection,
        sink: Box<dyn Sink>,
        closer: Box<dyn Fn() + Send + Sync>,
        waker: Arc<crate::transport::poll::Waker>,
        budget: usize,
    ) -> Arc<Shared> {
        let shared = Self::build(conn, sink, Some(closer), Some(waker));
        {
            let mut st = shared.lock();
            st.record_changes = true;
            st.budget = budget;
        }
        shared
    }

    fn build(
        conn: Connection,
        writer: Box<dyn Sink>,
        closer: Option<Box<dyn Fn() + Send + Sync>>,
        waker: Option<Arc<crate::transport::poll::Waker>>,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                conn,
                streams: IdMap::default(),
                lost: None,
                goaway: None,
                goaway_debug: None,
                peer: String::new(),
                conn_cv: Arc::new(WaitCell::default()),
                deferred: Vec::new(),
                close_when_idle: false,
                wakes: Vec::new(),
                changes: Vec::new(),
                record_changes: false,
                outbox_bytes: 0,
                outbox_sent: 0,
                backlog: 0,
                written: 0,
                taken: 0,
                write_failed: false,
                budget: usize::MAX,
                budget_waiters: 0,
                armed: None,
            }),
            writer: Mutex::new(writer),
            closer,
            waker,
            flusher: std::sync::OnceLock::new(),
        })
    }

    /// Leaves the output for the connection's background writer instead of writing it on this
    /// thread, then releases the state lock.
    ///
    /// For stream messages: while the writer is in its `write`, the producer keeps appending
    /// messages, so a fast stream leaves in a few large writes instead of one per message; a
    /// sparse stream's message still leaves after one thread hand-off. (Unary responses keep
    /// writing on the producing thread: one write, no hand-off.)
    pub fn flush_later(self: &Arc<Self>, st: MutexGuard<'_, State>) {
        if !st.conn.has_output() || st.lost.is_some() || st.write_failed {
            return;
        }
        drop(st);
        if let Some(w) = &self.waker {
            w.wake();
            return;
        }
        let f = self.flusher.get_or_init(|| {
            let f = Arc::new(Flusher::default());
            let (f2, weak) = (f.clone(), Arc::downgrade(self));
            let spawned = std::thread::Builder::new()
                .name("grpc-conn-writer".into())
                .stack_size(64 * 1024)
                .spawn(move || flusher_loop(&f2, &weak));
            match spawned {
                Ok(h) => {
                    let _ = f.thread.set(h.thread().clone());
                }
                // No thread: stay correct by writing on the producing threads.
                Err(_) => f.signal(true),
            }
            f
        });
        if f.stopped.load(Ordering::Acquire) {
            // Stopped or never started: write here.
            self.flush(self.lock());
            return;
        }
        f.signal(false);
    }

    /// Ends the background writer, if any (the connection is gone).
    fn stop_flusher(&self) {
        if let Some(f) = self.flusher.get() {
            f.signal(true);
        }
    }

    /// A failed write. On a client whose peer is gone (the reader thread will see the end
    /// soon), the reader is left to drain the input first (see [`State::write_failed`]);
    /// otherwise the connection is lost now.
    fn write_error(&self, st: &mut State, e: &io::Error) {
        let gone = matches!(
            e.kind(),
            io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
        );
        if gone && self.waker.is_none() && st.lost.is_none() {
            st.write_failed = true;
            st.conn_cv.notify_all();
        } else {
            st.set_lost(ConnLost::Io(e.to_string()));
        }
    }

    /// Takes the state lock.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Writes whatever output the state machine has, then releases the state lock.
    ///
    /// Call it after every command. If another thread holds the write half, this returns at
    /// once: that thread re-checks the buffer under the state lock before it lets go of the
    /// write half, so nothing is stranded.
    pub fn flush<'a>(&'a self, mut st: MutexGuard<'a, State>) {
        if let Some(w) = &self.waker {
            if let Some(t) = st.conn.poll_timeout() {
                if !matches!(st.armed, Some(a) if a <= t) {
                    st.armed = Some(t);
                    w.wake();
                }
            }
        }
        if !st.conn.has_output() {
            return;
        }
        let Ok(mut w) = self.writer.try_lock() else {
            return;
        };
        loop {
            // A backlog means the socket is full: the output stays in the machine (where it
            // still bounds the control frames a non-reading peer can make us queue) until the
            // loop has drained the backlog.
            if !st.conn.has_output() || st.lost.is_some() || st.write_failed || st.backlog > 0 {
                // Let go of the writer while still holding the state lock (see above).
                drop(w);
                return;
            }
            let buf = st.conn.output().split();
            st.taken += buf.len() as u64;
            drop(st);
            let res = w.send(&buf);
            st = self.lock();
            st.backlog = w.backlog();
            st.written = w.written();
            if let Err(e) = res {
                self.write_error(&mut st, &e);
                drop(w);
                return;
            }
            st.wake_budget_waiters();
        }
    }

    /// The I/O loop's write: the sink's backlog (the socket became writable) and whatever the
    /// transport has to send by itself (TLS records after a read), then the machine's output.
    /// Returns the backlog left.
    pub fn write_out(&self) -> usize {
        {
            let mut w = lock(&self.writer);
            let res = w.send(&[]);
            let mut st = self.lock();
            st.backlog = w.backlog();
            st.written = w.written();
            drop(w);
            if let Err(e) = res {
                self.write_error(&mut st, &e);
                return 0;
            }
            st.wake_budget_waiters();
            self.flush(st);
        }
        self.lock().backlog
    }

    /// Waits on `cell` until `deadline` (forever if `None`). Returns the guard and whether the
    /// deadline passed.
    pub fn wait<'a>(
        &'a self,
        cell: &WaitCell,
        st: MutexGuard<'a, State>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, State>, bool) {
        before_block();
        // Both counters change only under the state lock: see `WaitCell`.
        let generation = cell.generation.load(Ordering::Relaxed);
        cell.waiting.fetch_add(1, Ordering::Relaxed);
        let (st, timed_out) = Self::wait_on(&cell.cv, st, deadline);
        if cell.generation.load(Ordering::Relaxed) == generation {
            // Timed out or woke spuriously: no notify counted us off.
            cell.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        (st, timed_out)
    }

    fn wait_on<'a>(
        cv: &Condvar,
        st: MutexGuard<'a, State>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, State>, bool) {
        match deadline {
            None => (cv.wait(st).unwrap_or_else(|e| e.into_inner()), false),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return (st, true);
                }
                let (g, _) = cv
                    .wait_timeout(st, d - now)
                    .unwrap_or_else(|e| e.into_inner());
                let timed_out = Instant::now() >= d;
                (g, timed_out)
            }
        }
    }

    /// Marks the connection dead, wakes every waiter and shuts the socket down (which ends
    /// the reader thread).
    pub fn close(&self, lost: ConnLost) {
        let mut st = self.lock();
        st.set_lost(lost);
        drop(st);
        if let Some(c) = &self.closer {
            c();
        }
    }

    /// Sends GOAWAY and closes the connection once its last stream is done.
    pub fn close_when_idle(&self) {
        let mut st = self.lock();
        st.close_when_idle = true;
        let idle = st.streams.is_empty();
        if st.lost.is_none() {
            st.conn.go_away(Reason::NO_ERROR, b"");
        }
        self.flush(st);
        if idle {
            self.close(ConnLost::Closed);
        }
    }
}

/// The background writer: writes the connection's pending output whenever signalled, until
/// the connection is gone.
///
/// A busy stream: when the last round carried more than one message, the producer is running
/// ahead of the writes, and the writer yields once before taking the output. On a core shared
/// with the producer, a woken writer otherwise preempts it after every message or two: one
/// small `write` and two context switches each (0.12 switches per 1 KiB message measured);
/// yielding lets the producer queue what it has ready, so the writes carry hundreds of
/// messages. A sparse stream (one message per round) never yields: its message is written as
/// soon as the writer runs, as before.
fn flusher_loop(f: &Flusher, shared: &std::sync::Weak<Shared>) {
    let mut busy = false;
    loop {
        if f.stopped.load(Ordering::Acquire) {
            return;
        }
        // Clear the flag before reading the output: a message queued after this swap sets
        // it again, and gets another round.
        if !f.pending.swap(false, Ordering::AcqRel) {
            // Wakes on `signal`'s unpark (a token if it came first) or spuriously; both loop.
            std::thread::park();
            continue;
        }
        if busy {
            std::thread::yield_now();
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let st = shared.lock();
        if st.lost.is_some() {
            return;
        }
        shared.flush(st);
        drop(shared);
        busy = f.queued.swap(0, Ordering::Relaxed) > 1;
    }
}

/// The read half of a client connection's socket (TCP, Unix, or TLS), whose reads can time
/// out (so the reader can serve the connection's timers).
pub(crate) trait ReadHalf: Read + Send {
    /// Sets the read timeout (`None` blocks forever).
    fn set_read_timeout(&self, d: Option<std::time::Duration>) -> io::Result<()>;
}

impl ReadHalf for std::net::TcpStream {
    fn set_read_timeout(&self, d: Option<std::time::Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, d)
    }
}

#[cfg(unix)]
impl ReadHalf for std::os::unix::net::UnixStream {
    fn set_read_timeout(&self, d: Option<std::time::Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, d)
    }
}

/// The client's reader thread: socket → state machine → stream slots, until the connection
/// ends. Servers never open streams to a client (the state machine rejects pushes; a stray
/// HEADERS is refused in [`Shared::route`]). The read times out when the machine next needs
/// the clock (keepalive), which is then served.
pub(crate) fn run_reader(shared: Arc<Shared>, mut rd: Box<dyn ReadHalf>) {
    shared.flush(shared.lock());
    // 64 KiB: several full DATA frames per read without holding much memory per connection.
    let mut buf = vec![0u8; 64 * 1024];
    let mut timeout_set = None;
    // The read wakes at least this often when a timer is configured (keepalive, idleness):
    // a call that starts while this thread waits in `read` cannot re-arm the read's timeout.
    // Nearer deadlines shorten it; far ones (under half of it away) do not, so that the usual
    // call does not cost a `setsockopt` on its way in and out.
    let base = {
        let k = shared.lock().conn.config().keepalive.clone();
        match (k.time, k.max_connection_idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    };
    loop {
        let due = shared.lock().conn.poll_timeout();
        let now = Instant::now();
        let want = match (due, base) {
            (Some(t), Some(b)) if t.saturating_duration_since(now) >= b / 2 => Some(b),
            (Some(t), _) => Some(
                t.saturating_duration_since(now)
                    .max(std::time::Duration::from_millis(1)),
            ),
            (None, b) => b,
        };
        if want != timeout_set {
            let _ = rd.set_read_timeout(want);
            timeout_set = want;
        }
        let res = rd.read(&mut buf);
        let mut st = shared.lock();
        match res {
            Ok(0) => st.set_lost(ConnLost::Io("peer closed the connection".into())),
            Ok(n) => shared.recv(&mut st, &buf[..n], Instant::now()),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::TimedOut
                    || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => st.set_lost(ConnLost::Io(e.to_string())),
        }
        // After the input: a stream it closed may have made a timer due at once (idleness is
        // stamped now), which is then served without another wake-up.
        let now = Instant::now();
        if st.lost.is_none() && st.conn.poll_timeout().is_some_and(|t| t <= now) {
            if let Err(e) = st.conn.handle_timeout(now) {
                log_conn_error(&st, &e);
                st.set_lost(ConnLost::Protocol(e.to_string()));
            }
        }
        shared.route(&mut st);
        if !shared.end_round(st) {
            if log::log_enabled!(log::Level::Debug) {
                let st = shared.lock();
                let why = st
                    .lost
                    .as_ref()
                    .map_or("closed".into(), ConnLost::to_string);
                log::debug!("grpc-sync: {}: {why}", st.peer);
            }
            return;
        }
    }
}

impl Shared {
    /// Feeds bytes read from the socket to the state machine (under the lock). A protocol
    /// error marks the connection lost; the GOAWAY it caused waits in the output.
    pub fn recv(&self, st: &mut State, bytes: &[u8], now: Instant) {
        if st.lost.is_some() {
            return;
        }
        if let Err(e) = st.conn.recv(bytes, now) {
            log_conn_error(st, &e);
            st.set_lost(ConnLost::Protocol(e.to_string()));
        }
    }

    /// Whether the connection is over: lost, closed by the protocol, or closing once idle and
    /// idle now.
    pub fn is_done(st: &State) -> bool {
        st.lost.is_some() || st.conn.is_closed() || (st.close_when_idle && st.streams.is_empty())
    }

    /// Ends a round of input: writes the output, wakes the stream waiters counted off under the
    /// lock (after releasing it) and runs the callbacks it collected. If the connection is over,
    /// marks it lost, writes what output is left (a GOAWAY) and returns false.
    pub fn end_round(&self, mut st: MutexGuard<'_, State>) -> bool {
        let mut wakes = std::mem::take(&mut st.wakes);
        if Self::is_done(&st) {
            // Best effort: a GOAWAY we queued still goes out, with whatever is before it; count
            // all of it as sent, so that no stream in it counts as never sent.
            let out = st.conn.output().split();
            st.taken += out.len() as u64;
            st.written = st.written.max(st.taken);
            if st.lost.is_none() {
                st.set_lost(ConnLost::Closed);
            }
            drop(st);
            for c in wakes.drain(..) {
                c.wake();
            }
            self.stop_flusher();
            if !out.is_empty() {
                let mut w = lock(&self.writer);
                let _ = w.send(&out);
            }
            run_deferred(self);
            return false;
        }
        let has_deferred = !st.deferred.is_empty();
        self.flush(st);
        for c in wakes.drain(..) {
            c.wake();
        }
        if has_deferred {
            run_deferred(self);
        }
        true
    }
}

/// Something to do before this thread blocks (see [`set_before_block`]).
pub(crate) trait BeforeBlock: Send + Sync {
    /// Called at most once, just before the thread waits.
    fn before_block(&self);
}

thread_local! {
    static BEFORE_BLOCK: std::cell::RefCell<Option<Arc<dyn BeforeBlock>>> =
        const { std::cell::RefCell::new(None) };
}

/// Sets (or clears) what this thread does before it next waits on a stream or a free stream
/// slot: a reader thread running a handler in place of reading uses it to hand the reading to
/// another thread first, so that the wait (send window, a downstream call) cannot stall its own
/// connection.
pub(crate) fn set_before_block(hook: Option<Arc<dyn BeforeBlock>>) {
    BEFORE_BLOCK.with(|b| *b.borrow_mut() = hook);
}

/// Runs this thread's [`BeforeBlock`] hook, if set, before a wait that is not on a stream's
/// [`WaitCell`] (a hedged call waiting for its attempts' first answer).
pub(crate) fn before_block() {
    if let Some(h) = BEFORE_BLOCK.with(|b| b.borrow_mut().take()) {
        h.before_block();
    }
}

/// Runs the stream-finished callbacks collected under the lock.
fn run_deferred(shared: &Shared) {
    let cbs = std::mem::take(&mut shared.lock().deferred);
    for cb in cbs {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(cb));
    }
}

impl Shared {
    /// Drains the state machine's events into the stream slots, waking whoever waits on them
    /// (after the lock is released, in [`end_round`](Self::end_round)), and records the
    /// [`Change`]s the server's dispatch acts on.
    pub fn route(&self, st: &mut State) {
        route_events(st);
    }
}

/// Logs why the state machine ended the connection (see `crate::logging` for the levels).
pub(crate) fn log_conn_error(st: &State, e: &ConnectionError) {
    match e {
        ConnectionError::Protocol { reason, detail } if *detail == "too_many_pings" => {
            crate::logging::log_limited!(
                crate::logging::GOAWAY_SENT,
                "grpc-sync: {} pings too often: sent GOAWAY {reason} too_many_pings (its \
                 keepalive time is shorter than this server's min_recv_ping_interval_without_data, \
                 or it pings without calls when that is not permitted)",
                st.peer
            );
        }
        ConnectionError::Protocol { reason, detail } => {
            crate::logging::log_limited!(
                crate::logging::GOAWAY_SENT,
                "grpc-sync: sent GOAWAY {reason} to {}: {detail}",
                st.peer
            );
        }
        ConnectionError::TimedOut { what } if st.conn.role() == Role::Client => {
            crate::logging::log_limited!(
                crate::logging::CLIENT_CONN,
                "grpc-sync: connection to {} lost: {what}",
                st.peer
            );
        }
        // A client that vanished (or an age grace that ran out): routine for a server.
        ConnectionError::TimedOut { what } => log::debug!("grpc-sync: {}: {what}", st.peer),
        // The application's own GOAWAY, logged where it was decided.
        _ => {}
    }
}

/// Logs a GOAWAY from the peer: with an error code at warn, a graceful one at debug.
fn log_goaway_received(st: &State, reason: Reason, debug: &[u8]) {
    if reason == Reason::NO_ERROR {
        log::debug!(
            "grpc-sync: {} is going away (GOAWAY NO_ERROR {:?})",
            st.peer,
            String::from_utf8_lossy(debug)
        );
    } else {
        crate::logging::log_limited!(
            crate::logging::GOAWAY_RECEIVED,
            "grpc-sync: {} sent GOAWAY {reason}: {:?}",
            st.peer,
            String::from_utf8_lossy(debug)
        );
    }
}

fn route_events(st: &mut State) {
    while let Some(ev) = st.conn.poll_event() {
        match ev {
            Event::Headers {
                stream_id,
                headers,
                end_stream,
            } => {
                let known = st.streams.contains_key(&stream_id);
                if !known {
                    if !st.record_changes {
                        // A client: servers open no streams (the state machine rejects pushes).
                        st.conn.reset(stream_id, Reason::REFUSED_STREAM);
                        continue;
                    }
                    // A new stream from the peer, for the server's dispatch.
                    let slot = st.streams.entry(stream_id).or_insert_with(StreamSlot::new);
                    slot.head = Some(headers);
                    slot.end = end_stream;
                    slot.attached = false;
                    st.changes.push(Change::NewStream {
                        id: stream_id,
                        end_stream,
                    });
                    continue;
                }
                let slot = st.streams.get_mut(&stream_id).expect("checked above");
                if slot.head.is_none() && !slot.head_taken {
                    slot.head = Some(headers);
                } else {
                    slot.trailers = Some(headers);
                }
                slot.end |= end_stream;
                if slot.worth_waking() && slot.cv.count_off_waiters() {
                    st.wakes.push(slot.cv.clone());
                }
                st.collect_finished(stream_id);
                st.changed(stream_id);
            }
            Event::Data {
                stream_id,
                data,
                end_stream,
            } => {
                let Some(slot) = st.streams.get_mut(&stream_id) else {
                    // Nobody will read it: give the window back at once.
                    let n = data.len();
                    st.conn.release_capacity(stream_id, n);
                    continue;
                };
                if !data.is_empty() {
                    slot.buffered += data.len();
                    slot.data.push_back(data);
                }
                slot.end |= end_stream;
                if slot.worth_waking() && slot.cv.count_off_waiters() {
                    st.wakes.push(slot.cv.clone());
                }
                st.collect_finished(stream_id);
                st.changed(stream_id);
            }
            Event::Reset {
                stream_id,
                reason,
                remote,
            } => {
                if !remote {
                    log::debug!(
                        "grpc-sync: {} broke the protocol on stream {stream_id}: reset it \
                         with {reason}",
                        st.peer
                    );
                }
                st.clear_outbox(stream_id);
                if let Some(slot) = st.streams.get_mut(&stream_id) {
                    if slot.reset.is_none() {
                        slot.reset = Some(StreamError::Reset { reason, remote });
                    }
                    if slot.cv.count_off_waiters() {
                        st.wakes.push(slot.cv.clone());
                    }
                    st.collect_finished(stream_id);
                    st.changed(stream_id);
                }
            }
            Event::GoAway {
                last_stream_id,
                reason,
                debug,
            } => {
                log_goaway_received(st, reason, &debug);
                st.goaway = Some((last_stream_id, reason));
                st.goaway_debug = Some(debug);
                // Streams the peer never saw are safe to retry; the state machine may also
                // report them one by one, this covers both.
                let mut refused = Vec::new();
                for (id, slot) in st.streams.iter_mut() {
                    if *id > last_stream_id && slot.reset.is_none() && !slot.end {
                        slot.reset = Some(StreamError::Refused);
                        refused.push(*id);
                    }
                }
                for id in refused {
                    st.collect_finished(id);
                }
                st.wake_all_streams();
                st.conn_cv.notify_all();
            }
            Event::SendCapacity { stream_id } => {
                if stream_id == 0 {
                    pump_all_outboxes(st);
                    st.wake_all_streams();
                } else if let Some(slot) = st.streams.get(&stream_id) {
                    slot.cv.notify_all();
                    pump_outbox(st, stream_id);
                }
            }
            Event::RemoteSettings => {
                pump_all_outboxes(st);
                st.wake_all_streams();
                st.conn_cv.notify_all();
            }
            Event::StreamClosed { stream_id } => {
                st.clear_outbox(stream_id);
                let remove = match st.streams.get_mut(&stream_id) {
                    Some(slot) => {
                        slot.closed = true;
                        slot.cv.notify_all();
                        !slot.attached
                    }
                    None => false,
                };
                if remove {
                    drop_slot(st, stream_id);
                }
                st.changed(stream_id);
                st.conn_cv.notify_all();
            }
            Event::Refused { stream_id } => {
                if let Some(slot) = st.streams.get_mut(&stream_id) {
                    if slot.reset.is_none() {
                        slot.reset = Some(StreamError::Refused);
                    }
                    slot.cv.notify_all();
                    st.collect_finished(stream_id);
                }
            }
            Event::PingAck { .. } => {}
        }
    }
}

/// Forgets a slot, giving the connection window back for data nobody will read.
fn drop_slot(st: &mut State, id: StreamId) {
    if let Some(slot) = st.streams.remove(&id) {
        if slot.buffered > 0 {
            st.conn.release_capacity(id, slot.buffered);
        }
    }
}

/// One stream as the application sees it: blocking receive and send with deadlines.
///
/// Dropping a handle whose stream is still open resets it with CANCEL.
pub(crate) struct StreamHandle {
    shared: Arc<Shared>,
    id: StreamId,
    cv: Arc<WaitCell>,
    /// Views (see [`StreamHandle::view`]) neither reset nor forget the stream when dropped.
    owner: bool,
    /// The stream's gRPC-Web rules (server), kept here so that messages need no lookup.
    web: Option<Arc<crate::web::WebStream>>,
}

/// What [`StreamHandle::recv_data`] found.
pub(crate) enum Recv {
    /// DATA payloads, moved into the caller's queue (their window has been released).
    Data,
    /// END_STREAM: the peer sends nothing more.
    End,
}

impl StreamHandle {
    /// Attaches to an existing slot. The caller has registered it under the lock.
    pub fn attach(shared: Arc<Shared>, st: &mut State, id: StreamId) -> StreamHandle {
        let mut web = None;
        let cv = match st.streams.get_mut(&id) {
            Some(slot) => {
                slot.attached = true;
                web = slot.web.clone();
                slot.cv.clone()
            }
            None => {
                // Already closed and reaped: a handle on a dead stream reads as reset.
                let mut slot = StreamSlot::new();
                slot.closed = true;
                slot.reset = Some(StreamError::Reset {
                    reason: Reason::CANCEL,
                    remote: false,
                });
                let cv = slot.cv.clone();
                st.streams.insert(id, slot);
                cv
            }
        };
        StreamHandle {
            shared,
            id,
            cv,
            owner: true,
            web,
        }
    }

    /// Another handle on the same stream that does not own it: dropping it does nothing. For
    /// a request iterator or a sender thread living beside the owning handle.
    pub fn view(&self) -> StreamHandle {
        StreamHandle {
            shared: self.shared.clone(),
            id: self.id,
            cv: self.cv.clone(),
            owner: false,
            web: self.web.clone(),
        }
    }

    /// Whether the peer has finished the stream (END_STREAM or reset) or the connection died:
    /// a receive would not block.
    pub fn is_finished(&self) -> bool {
        let st = self.shared.lock();
        match st.streams.get(&self.id) {
            Some(slot) => slot.end || slot.reset.is_some() || st.lost.is_some(),
            None => true,
        }
    }

    /// Registers `f` to run (on the reader thread, without locks) once the peer has finished
    /// the stream. Runs it at once, on this thread, if that already happened.
    pub fn on_finished(&self, f: Box<dyn FnOnce() + Send>) {
        let mut st = self.shared.lock();
        let lost = st.lost.is_some();
        match st.streams.get_mut(&self.id) {
            Some(slot) if !(slot.end || slot.reset.is_some() || lost) => {
                slot.on_finished.push(f);
            }
            _ => {
                drop(st);
                f();
            }
        }
    }

    /// Registers `f` to run (on the reader thread, without locks) once the peer answered:
    /// its first header block came, or it finished the stream, or the connection died. Runs
    /// it at once, on this thread, if that already happened. Lets one thread wait for the
    /// first answer among several streams (hedged attempts, maybe on different connections).
    pub fn on_answer(&self, f: Box<dyn FnOnce() + Send>) {
        let mut st = self.shared.lock();
        let lost = st.lost.is_some();
        match st.streams.get_mut(&self.id) {
            Some(slot)
                if !(slot.head.is_some()
                    || slot.head_taken
                    || slot.end
                    || slot.reset.is_some()
                    || lost) =>
            {
                slot.on_answer.push(f);
            }
            _ => {
                drop(st);
                f();
            }
        }
    }

    /// The stream id.
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// A DATA payload as it goes on the wire: base64 on a gRPC-Web text stream, `None` when
    /// it goes as it is.
    fn web_data(&self, data: &[u8]) -> Option<bytes::BytesMut> {
        self.web.as_ref()?.data(data)
    }

    fn check(st: &State, id: StreamId) -> Result<(), StreamError> {
        let Some(slot) = st.streams.get(&id) else {
            return Err(StreamError::Reset {
                reason: Reason::CANCEL,
                remote: false,
            });
        };
        if let Some(e) = &slot.reset {
            return Err(e.clone());
        }
        if let Some(lost) = &st.lost {
            return Err(StreamError::Lost(lost.clone()));
        }
        Ok(())
    }

    /// Waits for the first header block (request or response head).
    pub fn recv_head(&self, deadline: Option<Instant>) -> Result<Vec<Header>, StreamError> {
        let mut st = self.shared.lock();
        loop {
            let lost = st.lost.clone();
            let slot = st.streams.get_mut(&self.id).expect("attached slot");
            if let Some(h) = slot.head.take() {
                slot.head_taken = true;
                return Ok(h);
            }
            if let Some(e) = &slot.reset {
                if !slot.end {
                    return Err(e.clone());
                }
            }
            if let Some(lost) = lost {
                return Err(StreamError::Lost(lost));
            }
            let (g, timed_out) = self.shared.wait(&self.cv, st, deadline);
            st = g;
            if timed_out {
                return Err(StreamError::Timeout);
            }
        }
    }

    /// Waits for DATA or the end of the stream. Moves every payload queued so far into
    /// `into` (which must be empty; its capacity is reused) and releases their window.
    ///
    /// Taking the whole queue costs one lock round per batch the reader delivered, not one
    /// per frame. Back-pressure stays real: a batch is at most what the windows let the peer
    /// send, and nothing is taken (nor released) until the application asks for more.
    ///
    /// Once the stream is reset, data still queued is discarded: the call failed.
    pub fn recv_data(
        &self,
        into: &mut VecDeque<Bytes>,
        deadline: Option<Instant>,
    ) -> Result<Recv, StreamError> {
        recv_data(&self.shared, self.id, &self.cv, into, deadline)
    }

    /// The trailing header block, once the stream has ended.
    pub fn take_trailers(&self) -> Option<Vec<Header>> {
        let mut st = self.shared.lock();
        st.streams.get_mut(&self.id).and_then(|s| s.trailers.take())
    }

    /// Why the stream failed (reset, or its connection lost), if it did.
    pub fn error(&self) -> Option<StreamError> {
        Self::check(&self.shared.lock(), self.id).err()
    }

    /// Whether the stream was reset or its connection lost (for `is_active`).
    pub fn is_broken(&self) -> bool {
        let st = self.shared.lock();
        match st.streams.get(&self.id) {
            Some(slot) => slot.reset.is_some() || st.lost.is_some(),
            None => true,
        }
    }

    /// Sends a header block (head, or trailers with `end_stream`).
    pub fn send_headers(&self, headers: &[Header], end_stream: bool) -> Result<(), StreamError> {
        let mut st = self.shared.lock();
        {
            let st_ref = &mut *st;
            Self::check(st_ref, self.id)?;
            send_head(st_ref, self.id, headers, end_stream)
                .map_err(|e| send_error(e, &st_ref.lost))?;
            if let Some(slot) = st_ref.streams.get_mut(&self.id) {
                slot.sent_head = true;
                slot.sent_end |= end_stream;
            }
        }
        self.shared.flush(st);
        Ok(())
    }

    /// Sends a whole response — head (if not sent yet), one message, trailers — taking the
    /// lock once and writing once when the windows allow. Server side only: if the client has
    /// not finished sending, the stream is then reset with NO_ERROR as gRPC specifies.
    pub fn send_response(
        &self,
        head: Option<&[Header]>,
        data: Option<&[u8]>,
        trailers: &[Header],
        deadline: Option<Instant>,
    ) -> Result<(), StreamError> {
        {
            let mut st = self.shared.lock();
            let st_ref = &mut *st;
            Self::check(st_ref, self.id)?;
            if st_ref.streams.get(&self.id).is_some_and(|s| s.sent_end) {
                return Ok(());
            }
            if let Some(h) = head {
                send_head(st_ref, self.id, h, false).map_err(|e| send_error(e, &st_ref.lost))?;
                if let Some(slot) = st_ref.streams.get_mut(&self.id) {
                    slot.sent_head = true;
                }
            }
            let encoded = data.and_then(|d| self.web_data(d));
            let mut rest: &[u8] = encoded.as_deref().or(data).unwrap_or(&[]);
            if !rest.is_empty() {
                let n = st_ref
                    .conn
                    .send_data(self.id, rest, false)
                    .map_err(|e| send_error(e, &st_ref.lost))?;
                rest = &rest[n..];
            }
            if !rest.is_empty() {
                let on_loop = self.shared.waker.is_some();
                if on_loop {
                    // Not enough window for the message: queue the rest and the trailers on
                    // the stream; they leave as WINDOW_UPDATEs come, and the handler's thread
                    // goes back to work now.
                    let slot = st_ref.streams.get_mut(&self.id).expect("attached slot");
                    slot.outbox.push_back(Bytes::copy_from_slice(rest));
                    slot.outbox_trailers = Some(trailers.to_vec());
                    slot.sent_head = true;
                    slot.sent_end = true;
                    st_ref.outbox_bytes += rest.len();
                    self.shared.flush(st);
                    return Ok(());
                }
                // A blocking transport: send it the slow way, then the trailers.
                self.shared.flush(st);
                self.send_data(rest, false, deadline)?;
                return self.send_trailers_and_finish(self.shared.lock(), trailers);
            }
            // The usual case: head, message and trailers under one lock, in one write.
            self.send_trailers_and_finish(st, trailers)
        }
    }

    fn send_trailers_and_finish(
        &self,
        mut st: MutexGuard<'_, State>,
        trailers: &[Header],
    ) -> Result<(), StreamError> {
        {
            let st_ref = &mut *st;
            Self::check(st_ref, self.id)?;
            let first = !st_ref.streams.get(&self.id).is_some_and(|s| s.sent_head);
            if first {
                // A trailers-only response.
                send_head(st_ref, self.id, trailers, true)
                    .map_err(|e| send_error(e, &st_ref.lost))?;
                if st_ref.streams.get(&self.id).is_some_and(|s| !s.end) {
                    st_ref.conn.reset(self.id, Reason::NO_ERROR);
                }
            } else {
                end_response(st_ref, self.id, trailers).map_err(|e| send_error(e, &st_ref.lost))?;
            }
            let slot = st_ref.streams.get_mut(&self.id).expect("attached slot");
            slot.sent_head = true;
            slot.sent_end = true;
        }
        self.shared.flush(st);
        Ok(())
    }

    /// Sends `data`, blocking while either flow-control window is closed.
    ///
    /// Returns early with an error if the stream is reset, the connection dies or `deadline`
    /// passes.
    pub fn send_data(
        &self,
        data: &[u8],
        end_stream: bool,
        deadline: Option<Instant>,
    ) -> Result<(), StreamError> {
        self.send_data_inner(data, end_stream, deadline, false)
    }

    /// [`send_data`](Self::send_data) for one message of a stream: the final write is left to
    /// the connection's background writer, so consecutive messages coalesce (see
    /// [`Shared::flush_later`]).
    pub fn send_stream_message(
        &self,
        data: &[u8],
        deadline: Option<Instant>,
    ) -> Result<(), StreamError> {
        self.send_data_inner(data, false, deadline, true)
    }

    /// Sends one stream message of `len` bytes that `write` encodes straight into the
    /// connection's output, if both windows take all of it now (see
    /// [`Connection::send_data_with`]); the write is left to the background writer, as with
    /// [`send_stream_message`](Self::send_stream_message). `Ok(false)`: nothing was sent,
    /// send the message the ordinary way.
    pub fn send_stream_message_with(
        &self,
        len: usize,
        write: impl FnOnce(&mut bytes::BytesMut),
    ) -> Result<bool, StreamError> {
        let mut st = self.shared.lock();
        let st_ref = &mut *st;
        Self::check(st_ref, self.id)?;
        if st_ref.unwritten() > st_ref.budget {
            // Over the output budget: the ordinary path waits for room.
            return Ok(false);
        }
        let text = self.web.as_ref().is_some_and(|w| w.text);
        let sent = if text {
            // gRPC-Web text: the message's base64, encoded from a buffer of its own.
            let mut raw = bytes::BytesMut::with_capacity(len);
            write(&mut raw);
            let enc = self.web_data(&raw).unwrap_or(raw);
            st_ref
                .conn
                .send_data_with(self.id, enc.len(), |buf| buf.extend_from_slice(&enc))
        } else {
            st_ref.conn.send_data_with(self.id, len, write)
        }
        .map_err(|e| send_error(e, &st_ref.lost))?;
        if sent {
            self.shared.flush_later(st);
        }
        Ok(sent)
    }

    fn send_data_inner(
        &self,
        data: &[u8],
        end_stream: bool,
        deadline: Option<Instant>,
        later: bool,
    ) -> Result<(), StreamError> {
        let encoded = self.web_data(data);
        let mut data = encoded.as_deref().unwrap_or(data);
        let mut st = self.shared.lock();
        let mut waited = false;
        loop {
            {
                let st_ref = &mut *st;
                Self::check(st_ref, self.id)?;
                let n = st_ref
                    .conn
                    .send_data(self.id, data, end_stream)
                    .map_err(|e| send_error(e, &st_ref.lost))?;
                data = &data[n..];
                if data.is_empty() {
                    if end_stream {
                        if let Some(slot) = st_ref.streams.get_mut(&self.id) {
                            slot.sent_end = true;
                        }
                    }
                    break;
                }
            }
            // Out of window: push what we have, then sleep until a WINDOW_UPDATE wakes us.
            waited = true;
            self.shared.flush(st);
            st = self.shared.lock();
            if st.conn.send_capacity(self.id) > 0 {
                continue;
            }
            let (g, timed_out) = self.shared.wait(&self.cv, st, deadline);
            st = g;
            if timed_out {
                return Err(StreamError::Timeout);
            }
        }
        if st.unwritten() > st.budget && st.lost.is_none() {
            // The peer is not taking what we wrote: wait (on this stream only) until the
            // output falls under the budget, so a producer cannot queue without bound.
            self.shared.flush(st);
            st = self.shared.lock();
            while st.unwritten() > st.budget && st.lost.is_none() {
                st.budget_waiters += 1;
                if let Some(w) = &self.shared.waker {
                    w.wake();
                }
                let (g, timed_out) = self.shared.wait(&self.cv, st, deadline);
                st = g;
                if timed_out {
                    return Err(StreamError::Timeout);
                }
                Self::check(&st, self.id)?;
            }
            self.shared.flush(st);
            return Ok(());
        }
        if later && !waited {
            self.shared.flush_later(st);
        } else {
            // A message that waited for window is written here, at once: the consumer is the
            // slower side, so there is nothing to coalesce, and its tail completes a message
            // the peer is waiting for (left to the writer, it could sit behind the producer
            // encoding the next one).
            self.shared.flush(st);
        }
        Ok(())
    }

    /// Resets the stream (RST_STREAM with `reason`) unless it is already closed.
    pub fn reset(&self, reason: Reason) {
        let mut st = self.shared.lock();
        // No slot: the stream is closed and forgotten (see `recv_whole`); nothing to reset.
        let Some(slot) = st.streams.get_mut(&self.id) else {
            return;
        };
        if slot.closed || slot.reset.is_some() {
            return;
        }
        slot.reset = Some(StreamError::Reset {
            reason,
            remote: false,
        });
        slot.cv.notify_all();
        if st.lost.is_none() {
            st.conn.reset(self.id, reason);
        }
        self.shared.flush(st);
    }
}

/// What [`StreamHandle::recv_whole`] took from a stream in one go.
#[derive(Default)]
pub(crate) struct Whole {
    /// The first header block, if it had come (and was not taken before).
    pub head: Option<Vec<Header>>,
    /// DATA payloads, their window already given back.
    pub data: VecDeque<Bytes>,
    /// END_STREAM was received: nothing follows `data` but `trailers`.
    pub end: bool,
    /// The trailing header block (only with `end`).
    pub trailers: Option<Vec<Header>>,
}

impl StreamHandle {
    /// Waits until the peer has finished the stream, the stream broke, or `enough` bytes of
    /// DATA (capped at half our stream window, so this cannot wait for data the window holds
    /// back) are buffered; then takes everything received so far under one lock.
    ///
    /// For unary responses: one wait and one lock instead of one per header block and
    /// payload, which matters when many callers share a connection's lock. If the stream is
    /// then finished both ways, the handle also lets go of it as dropping it would (same lock).
    /// A stream broken before its end yields only its head, if any, so that the usual calls
    /// report the error as they would have.
    pub fn recv_whole(
        &mut self,
        deadline: Option<Instant>,
        enough: usize,
    ) -> Result<Whole, StreamError> {
        let mut st = self.shared.lock();
        let enough = enough
            .min(st.conn.config().initial_window_size as usize / 2)
            .max(1);
        loop {
            let st_ref = &mut *st;
            let lost = st_ref.lost.is_some();
            let Some(slot) = st_ref.streams.get_mut(&self.id) else {
                return Err(StreamError::Reset {
                    reason: Reason::CANCEL,
                    remote: false,
                });
            };
            let broken = slot.reset.is_some() && !slot.end;
            if !(slot.end || broken || lost || slot.buffered >= enough) {
                slot.whole_wait = Some(enough);
                let (g, timed_out) = self.shared.wait(&self.cv, st, deadline);
                st = g;
                if let Some(slot) = st.streams.get_mut(&self.id) {
                    slot.whole_wait = None;
                }
                if timed_out {
                    return Err(StreamError::Timeout);
                }
                continue;
            }
            let mut w = Whole {
                head: slot.head.take(),
                ..Whole::default()
            };
            slot.head_taken |= w.head.is_some();
            if broken {
                return Ok(w);
            }
            w.data = std::mem::take(&mut slot.data);
            let n = std::mem::take(&mut slot.buffered);
            w.end = slot.end;
            if w.end {
                w.trailers = slot.trailers.take();
            }
            let finished = w.end && slot.sent_end && self.owner;
            if n > 0 {
                st_ref.conn.release_capacity(self.id, n);
            }
            // Done both ways: let go of the stream as dropping the handle would, under this lock.
            if finished {
                self.owner = false;
                if detach(st_ref, self.id) {
                    drop(st);
                    self.shared.close(ConnLost::Closed);
                    return Ok(w);
                }
            }
            // A release may have queued a WINDOW_UPDATE.
            self.shared.flush(st);
            return Ok(w);
        }
    }
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        let mut st = self.shared.lock();
        if detach(&mut st, self.id) {
            drop(st);
            self.shared.close(ConnLost::Closed);
            return;
        }
        self.shared.flush(st);
    }
}

/// What letting go of a stream's owning handle does, under the lock: cancels the stream unless
/// it is done both ways (or reset), forgets its slot if the state machine closed it, and gives
/// back the window of data nobody will read. True if the connection should now close (it was
/// to close once idle, and this was its last stream).
fn detach(st: &mut State, id: StreamId) -> bool {
    let (closed, done) = match st.streams.get_mut(&id) {
        Some(slot) => {
            slot.attached = false;
            // Fully finished both ways, already reset, or a whole response queued for the
            // peer's window: nothing to cancel.
            let done = slot.reset.is_some()
                || (slot.end && slot.sent_end)
                || slot.outbox_trailers.is_some();
            (slot.closed, done)
        }
        None => return false,
    };
    if !done && st.lost.is_none() {
        st.conn.reset(id, Reason::CANCEL);
    }
    if closed || st.lost.is_some() {
        drop_slot(st, id);
        return st.close_when_idle && st.streams.is_empty();
    }
    if let Some(slot) = st.streams.get_mut(&id) {
        // Data that arrives later is released by the reader; release what is queued now.
        let n = std::mem::take(&mut slot.buffered);
        slot.data.clear();
        if n > 0 {
            st.conn.release_capacity(id, n);
        }
    }
    false
}

fn send_error(e: SendError, lost: &Option<ConnLost>) -> StreamError {
    if let Some(l) = lost {
        return StreamError::Lost(l.clone());
    }
    match e {
        SendError::GoingAway => StreamError::Refused,
        other => StreamError::Lost(ConnLost::Protocol(format!("cannot send: {other:?}"))),
    }
}

fn recv_data(
    shared: &Arc<Shared>,
    id: StreamId,
    cv: &WaitCell,
    into: &mut VecDeque<Bytes>,
    deadline: Option<Instant>,
) -> Result<Recv, StreamError> {
    debug_assert!(into.is_empty());
    let mut st = shared.lock();
    loop {
        let st_ref = &mut *st;
        let Some(slot) = st_ref.streams.get_mut(&id) else {
            return Err(StreamError::Reset {
                reason: Reason::CANCEL,
                remote: false,
            });
        };
        // A reset after the peer's END_STREAM (gRPC servers send RST_STREAM NO_ERROR after
        // their trailers) does not take back what was already received.
        if let Some(e) = &slot.reset {
            if !slot.end {
                return Err(e.clone());
            }
        }
        if !slot.data.is_empty() {
            std::mem::swap(&mut slot.data, into);
            let n = std::mem::take(&mut slot.buffered);
            st_ref.conn.release_capacity(id, n);
            // The release may have queued a WINDOW_UPDATE.
            shared.flush(st);
            return Ok(Recv::Data);
        }
        if slot.end {
            return Ok(Recv::End);
        }
        if let Some(lost) = &st_ref.lost {
            return Err(StreamError::Lost(lost.clone()));
        }
        let (g, timed_out) = shared.wait(cv, st, deadline);
        st = g;
        if timed_out {
            return Err(StreamError::Timeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2::conn::Role;
    use crate::h2::settings::Config;

    /// A socket write half that takes `room` bytes, then fails as a socket whose peer is gone.
    struct Dying {
        room: usize,
    }

    impl Write for Dying {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn head() -> Vec<Header> {
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/a.B/C"),
            (":authority", "x"),
        ]
        .iter()
        .map(|(n, v)| {
            Header::new(
                Bytes::from_static(n.as_bytes()),
                Bytes::from_static(v.as_bytes()),
            )
        })
        .collect()
    }

    /// A client connection whose writer takes `room` bytes; the preface and SETTINGS are
    /// written first. Returns the connection and a stream opened as the channel opens one.
    fn client(room: usize) -> (Arc<Shared>, StreamId) {
        let conn = Connection::new(Role::Client, Config::default());
        let shared = Shared::with_closer(conn, Box::new(Dying { room }), true, Box::new(|| {}));
        let mut st = shared.lock();
        shared.flush_now(&mut st);
        let at = st.taken + st.conn.pending_output() as u64;
        let id = st.conn.open_stream(&head(), true).unwrap();
        st.insert_slot(id);
        st.streams.get_mut(&id).unwrap().head_at = Some(at);
        drop(st);
        (shared, id)
    }

    impl Shared {
        /// Test helper: flush with the lock held by the caller.
        fn flush_now(&self, st: &mut MutexGuard<'_, State>) {
            let buf = st.conn.output().split();
            st.taken += buf.len() as u64;
            let mut w = lock(&self.writer);
            let res = w.send(&buf);
            st.written = w.written();
            if let Err(e) = res {
                self.write_error(st, &e);
            }
        }
    }

    #[test]
    fn a_request_whose_headers_never_reached_the_socket_is_refused_not_failed() {
        // Room for the preface and SETTINGS only.
        let (shared, id) = client(0);
        let mut st = shared.lock();
        // The preface itself failed: the writer had no room at all.
        assert!(st.write_failed);
        assert!(
            st.lost.is_none(),
            "the reader decides when the connection is lost"
        );
        st.set_lost(ConnLost::Io("peer closed the connection".into()));
        assert!(matches!(
            st.streams[&id].reset,
            Some(StreamError::Unsent(_))
        ));
    }

    #[test]
    fn a_request_that_left_is_not_refused_when_the_connection_dies() {
        let (shared, id) = client(usize::MAX);
        let mut st = shared.lock();
        shared.flush_now(&mut st);
        assert!(!st.write_failed);
        st.set_lost(ConnLost::Io("peer closed the connection".into()));
        assert!(st.streams[&id].reset.is_none());
        assert!(st.lost.is_some());
    }

    #[test]
    fn after_a_failed_write_a_goaway_still_read_refuses_the_streams_it_did_not_cover() {
        // The preface, SETTINGS and HEADERS leave; then the peer is gone.
        let (shared, id) = client(usize::MAX);
        let mut st = shared.lock();
        shared.flush_now(&mut st);
        {
            let mut w = lock(&shared.writer);
            let _ = w.send(b"");
        }
        let res: io::Result<()> = Err(io::ErrorKind::BrokenPipe.into());
        shared.write_error(&mut st, res.as_ref().unwrap_err());
        assert!(st.write_failed && st.lost.is_none());
        // What the server sent before it went: its SETTINGS and a GOAWAY covering no stream.
        let mut server = Connection::new(Role::Server, Config::default());
        let now = Instant::now();
        let mut from_client = bytes::BytesMut::new();
        from_client.extend_from_slice(crate::h2::conn::PREFACE);
        server.recv(&from_client, now).unwrap();
        // The two-step GOAWAY a stopping server sends: 2^31-1 first, then the real one.
        server.go_away(Reason::NO_ERROR, b"server shutting down");
        server.go_away(Reason::NO_ERROR, b"server shutting down");
        let bytes = server.output().split();
        shared.recv(&mut st, &bytes, now);
        shared.route(&mut st);
        assert!(matches!(st.streams[&id].reset, Some(StreamError::Refused)));
    }
}
