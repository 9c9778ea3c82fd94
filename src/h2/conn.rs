//! The HTTP/2 connection state machine, for both roles ([RFC 9113]).
//!
//! # Sans-IO
//!
//! [`Connection`] never touches a socket, a thread or a clock. Everything it needs comes in as
//! an argument, and everything it produces waits in a buffer until the caller takes it:
//!
//! - **inputs**: bytes read from the peer, through [`Connection::recv`] (or
//!   [`recv_buffer_mut`](Connection::recv_buffer_mut) + [`process`](Connection::process)),
//!   with the current time as an `Instant` (used only by the stream-reset rate limit); and
//!   commands from the application: [`open_stream`](Connection::open_stream),
//!   [`send_headers`](Connection::send_headers), [`send_data`](Connection::send_data),
//!   [`reset`](Connection::reset), [`release_capacity`](Connection::release_capacity),
//!   [`ping`](Connection::ping), [`go_away`](Connection::go_away).
//! - **outputs**: [`Event`]s from [`poll_event`](Connection::poll_event), and bytes to write to
//!   the peer in [`output`](Connection::output) (`let buf = conn.output().split();`).
//!
//! A driver loops:
//!
//! 1. after [`Connection::new`], write out [`output`](Connection::output) (the preface and
//!    our SETTINGS);
//! 2. read from the socket and pass the bytes to [`recv`](Connection::recv);
//! 3. drain [`poll_event`](Connection::poll_event) until `None`, acting on each event (which
//!    may issue commands);
//! 4. whenever [`has_output`](Connection::has_output) is true, take
//!    [`output`](Connection::output) and write it (commands queue bytes too);
//! 5. stop once [`is_closed`](Connection::is_closed) is true and the output is written.
//!
//! Reading and writing may happen on different threads as long as the `Connection` is behind
//! one lock. If [`recv`](Connection::recv) returns an error the connection is dead: a GOAWAY
//! describing the error waits in the output (write it before closing the socket), events
//! queued before the error can still be drained, and every later `recv` returns the same
//! error.
//!
//! The driver should take the output before blocking on a write and not call
//! [`output`](Connection::output) again until that write is done: each call counts as
//! "the peer's pending control frames were sent", which bounds how many PING and SETTINGS
//! ACKs a peer that does not read can make us queue.
//!
//! # Choices
//!
//! - **Graceful GOAWAY** (server, [`go_away`](Connection::go_away) with `NO_ERROR`): the
//!   two-step form. We send GOAWAY with the largest stream id and a PING; when its ACK comes
//!   back, every stream the client sent before seeing the first GOAWAY has reached us, and we
//!   send the final GOAWAY with the real last stream id. A second `go_away(NO_ERROR)` while
//!   waiting sends the final one at once. A client's GOAWAY is always final (it has no
//!   streams of the peer's to drain). Any other reason is final and closes the connection.
//! - **Header blocks**: HEADERS and CONTINUATION fragments are buffered up to
//!   [`Config::header_block_limit`] (twice the advertised header list size by default);
//!   beyond it the connection is closed with ENHANCE_YOUR_CALM, since a block cannot be
//!   skipped without losing HPACK sync. A decoded list over our SETTINGS_MAX_HEADER_LIST_SIZE
//!   is a stream error: a server answers a request head that large with `:status 431` and
//!   END_STREAM (plus RST_STREAM(NO_ERROR) if the request was not complete); trailers or a
//!   response head that large get RST_STREAM(PROTOCOL_ERROR).
//! - **Rapid reset**: a token bucket in nanoseconds of credit, refilled by the `now` passed to
//!   `recv`: capacity one second, each reset costs `1 s / max_resets_per_second`. Charged for
//!   every RST_STREAM the peer sends on a stream it opened and for every stream error the peer
//!   provokes. An empty bucket closes the connection with ENHANCE_YOUR_CALM.
//! - **Flow control**: a DATA frame's payload is owed to the application until it calls
//!   [`release_capacity`](Connection::release_capacity); padding and data on streams that are
//!   gone are released at once. WINDOW_UPDATEs go out once half a window has been released.
//!   When a stream is reset, whatever the application had not released is returned to the
//!   connection window, and later releases for it are ignored.
//! - **1xx responses** are consumed without an event (gRPC never uses them).
//! - **Events after a connection error**: none for the open streams; the driver learns of the
//!   error from `recv` and fails every stream itself.
//! - **Timers**: the connection says when it next needs the clock
//!   ([`poll_timeout`](Connection::poll_timeout)) and the driver calls
//!   [`handle_timeout`](Connection::handle_timeout) then, with the current time; nothing here
//!   reads a clock. Today's timer: the SETTINGS acknowledgement
//!   ([`Config::settings_timeout`], from the first input), GOAWAY SETTINGS_TIMEOUT past it.
//!
//! [RFC 9113]: https://www.rfc-editor.org/rfc/rfc9113

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::bdp::{Bdp, BDP_PING_PAYLOAD, DEFAULT_BDP_CAP};
use super::error::{Error, Reason};
use super::flow::{RecvWindow, SendWindow};
use super::frame::{
    self, encode_data, encode_header_block, flags, kind, Continuation, Data, Frame, GoAway, Head,
    Headers, Ping, RstStream, Settings, StreamId, WindowUpdate, FRAME_HEADER_LEN, MAX_WINDOW_SIZE,
};
use super::hpack::{DecodeError, Decoder, Encoder, Header};
use super::keepalive::{Due, Keepalive, KEEPALIVE_PING_PAYLOAD};
use super::settings::{Config, LocalSettings, RemoteSettings};
use super::stream::{self, Cause, RecvPhase, State, Stream};

/// The client connection preface ([RFC 9113 §3.4]).
///
/// [RFC 9113 §3.4]: https://www.rfc-editor.org/rfc/rfc9113#section-3.4
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The largest stream identifier, sent in the first GOAWAY of a graceful shutdown.
pub const MAX_STREAM_ID: StreamId = MAX_WINDOW_SIZE;

/// PING payload of the graceful-shutdown round trip (an application PING with the same
/// payload would be taken for it).
pub const DRAIN_PING_PAYLOAD: [u8; 8] = *b"h2-drain";

/// Longest GOAWAY debug data we send.
const MAX_GOAWAY_DEBUG: usize = 1024;

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We send the preface and open streams (odd ids).
    Client,
    /// We expect the preface and answer streams.
    Server,
}

/// Something that happened on the connection, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A header section arrived. Server: a request head (a new stream) or the request's
    /// trailers. Client: the response head (a trailers-only response when `end_stream` is set
    /// on it) or the response trailers. Trailers always have `end_stream` set.
    Headers {
        /// The stream.
        stream_id: StreamId,
        /// The decoded fields, pseudo-headers first, validated (RFC 9113 §8.1.1).
        headers: Vec<Header>,
        /// The peer will send nothing more on this stream.
        end_stream: bool,
    },
    /// DATA arrived. Its length is owed to the flow-control window until the application
    /// calls [`Connection::release_capacity`]. An empty `data` with `end_stream` is a bare
    /// END_STREAM.
    Data {
        /// The stream.
        stream_id: StreamId,
        /// The payload (padding removed), a slice of the receive buffer.
        data: Bytes,
        /// The peer will send nothing more on this stream.
        end_stream: bool,
    },
    /// The stream was reset: by the peer's RST_STREAM (`remote`), or by us after a stream
    /// error the peer caused (not `remote`; the RST_STREAM is already in the output).
    /// [`Event::StreamClosed`] follows. A remote reset with `NO_ERROR` after the peer's
    /// END_STREAM is not a failure: a server may send it after a complete response to stop
    /// the rest of the request (RFC 9113 §8.1). Our own [`Connection::reset`] produces no
    /// `Reset` event, only [`Event::StreamClosed`].
    Reset {
        /// The stream.
        stream_id: StreamId,
        /// The error code.
        reason: Reason,
        /// True if the peer reset it.
        remote: bool,
    },
    /// The peer sent GOAWAY: no new streams may be opened on this connection. Streams we
    /// opened above `last_stream_id` were never processed and are reported as
    /// [`Event::Refused`] (safe to retry elsewhere).
    GoAway {
        /// The last stream the peer may have processed.
        last_stream_id: StreamId,
        /// Why (NO_ERROR for a graceful shutdown).
        reason: Reason,
        /// Opaque diagnostic data.
        debug: Bytes,
    },
    /// A stream we opened was not processed by the peer (above a GOAWAY's last stream id):
    /// safe to retry on another connection. [`Event::StreamClosed`] follows.
    Refused {
        /// The stream.
        stream_id: StreamId,
    },
    /// Send capacity grew: on `stream_id`, or on every stream when `stream_id` is 0 (a
    /// connection WINDOW_UPDATE or a larger SETTINGS_INITIAL_WINDOW_SIZE). A stream
    /// WINDOW_UPDATE that leaves its window at or below zero (after a smaller
    /// SETTINGS_INITIAL_WINDOW_SIZE) produces none.
    SendCapacity {
        /// The stream, or 0 for all.
        stream_id: StreamId,
    },
    /// The answer to one of our [`Connection::ping`]s.
    PingAck {
        /// The payload we sent.
        payload: [u8; 8],
    },
    /// The peer's SETTINGS were applied (see [`Connection::remote_settings`]);
    /// MAX_CONCURRENT_STREAMS may have changed.
    RemoteSettings,
    /// The stream is finished for the application: both sides ended it, or it was reset
    /// (by either side, including [`Connection::reset`]) or refused. Emitted exactly once
    /// for every stream the application has seen.
    StreamClosed {
        /// The stream.
        stream_id: StreamId,
    },
}

/// The connection is dead; a GOAWAY waits in the output unless the peer caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionError {
    /// We detected a protocol violation (or abuse) and sent GOAWAY with this code.
    Protocol {
        /// The code sent in GOAWAY.
        reason: Reason,
        /// What went wrong (also the GOAWAY debug data).
        detail: &'static str,
    },
    /// The application closed the connection with [`Connection::go_away`] and an error code.
    Aborted {
        /// The code sent in GOAWAY.
        reason: Reason,
    },
    /// A timer ended the connection: a keepalive PING went unanswered (the peer is gone), or
    /// the grace after `max_connection_age` ran out.
    TimedOut {
        /// What ran out, in words.
        what: &'static str,
    },
}

impl ConnectionError {
    /// Returns the HTTP/2 error code sent in GOAWAY.
    pub fn reason(&self) -> Reason {
        match self {
            ConnectionError::Protocol { reason, .. } | ConnectionError::Aborted { reason } => {
                *reason
            }
            ConnectionError::TimedOut { .. } => Reason::NO_ERROR,
        }
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Protocol { reason, detail } => {
                write!(f, "HTTP/2 connection error {reason}: {detail}")
            }
            ConnectionError::Aborted { reason } => {
                write!(
                    f,
                    "HTTP/2 connection closed by the application with {reason}"
                )
            }
            ConnectionError::TimedOut { what } => f.write_str(what),
        }
    }
}

impl std::error::Error for ConnectionError {}

/// Why a command could not be carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS is reached: wait for a stream to close.
    StreamLimit,
    /// A GOAWAY was sent or received (or stream ids are exhausted): open a new connection.
    GoingAway,
    /// The stream (or the connection) is closed or reset, or we already ended our side.
    Closed,
    /// Only a client opens streams.
    WrongRole,
    /// The header list is larger than the peer's SETTINGS_MAX_HEADER_LIST_SIZE.
    HeaderListTooLarge,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::StreamLimit => "the peer's concurrent stream limit is reached",
            SendError::GoingAway => "the connection is going away",
            SendError::Closed => "the stream or connection is closed",
            SendError::WrongRole => "only a client can open streams",
            SendError::HeaderListTooLarge => "header list larger than the peer accepts",
        })
    }
}

impl std::error::Error for SendError {}

/// A cheap hasher for stream ids (Fibonacci hashing of the u32).
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by stream id with [`IdHasher`]: stream ids need no SipHash (the number of
/// streams a peer may have open is bounded, so collisions it might aim for cost little).
pub(crate) type IdMap<V> = HashMap<StreamId, V, BuildHasherDefault<IdHasher>>;

/// What a header block being received will be applied to, decided at its HEADERS frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockTarget {
    /// A new stream the peer opens.
    NewStream,
    /// An active stream whose peer side is open: response head or trailers.
    Existing,
    /// Decode for HPACK only, then drop (a stream we reset, or above our GOAWAY).
    Discard,
    /// Decode for HPACK, then reset the stream with this code.
    StreamError(Reason),
}

/// A header block split over HEADERS + CONTINUATION, until END_HEADERS.
#[derive(Debug)]
struct PartialBlock {
    stream_id: StreamId,
    target: BlockTarget,
    end_stream: bool,
    self_dependent: bool,
    block: BytesMut,
}

/// Where a stream id stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// Never used (and not implicitly closed by a higher id).
    Idle,
    /// In the map and not closed.
    Active,
    /// Closed, and we remember how.
    Closed(Cause),
    /// Closed long ago, or skipped: we no longer know how.
    Forgotten,
}

/// Our GOAWAY progress.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GoAwaySent {
    /// None sent.
    No,
    /// Graceful first step sent (last id 2^31 − 1) and the PING is in flight.
    Draining { debug: Bytes },
    /// Final GOAWAY sent with this last stream id.
    Final(StreamId),
}

/// A sans-IO HTTP/2 connection (client or server). See the [module docs](self) for how to
/// drive it.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    config: Config,
    recv_buf: BytesMut,
    /// Earlier receive buffers, kept (empty) while the application still holds frames sliced
    /// from them, and reused once it has dropped them: a busy connection cycles through a few
    /// allocations instead of allocating (and faulting in) a fresh buffer per read.
    recv_spares: Vec<BytesMut>,
    out: BytesMut,
    events: VecDeque<Event>,
    /// Server: octets of the client preface matched so far.
    preface_matched: usize,
    /// The peer's first SETTINGS has arrived.
    got_settings: bool,
    local: LocalSettings,
    remote: RemoteSettings,
    decoder: Decoder,
    encoder: Encoder,
    streams: IdMap<Stream>,
    closed: IdMap<Cause>,
    closed_order: VecDeque<StreamId>,
    active_local: usize,
    active_remote: usize,
    next_local_id: StreamId,
    last_remote_id: StreamId,
    send_window: SendWindow,
    recv_window: RecvWindow,
    partial: Option<PartialBlock>,
    goaway_sent: GoAwaySent,
    goaway_recv: Option<(StreamId, Reason)>,
    error: Option<ConnectionError>,
    pending_control: usize,
    empty_frames: u32,
    reset_credit_ns: u64,
    reset_cost_ns: u64,
    last_refill: Option<Instant>,
    /// When our unacknowledged SETTINGS time out (set at the first input after sending them).
    settings_deadline: Option<Instant>,
    /// Keepalive, ping enforcement, idleness and age.
    keepalive: Keepalive,
    /// The bandwidth-delay estimator that grows our receive windows (if probing is on).
    bdp: Option<Bdp>,
    /// The last time given to us (by `recv` or `handle_timeout`).
    now: Option<Instant>,
    header_block_limit: usize,
    /// The DATA frame last written to `out`, while nothing has followed it there: the next
    /// `send_data` on the same stream extends it instead of starting a frame, so a stream of
    /// small messages queued faster than they are written leaves in full-size frames (the
    /// receiver handles one frame per ~16 KiB, not one per message).
    open_data: Option<OpenData>,
}

/// A DATA frame at the end of the output that may still grow (see `Connection::open_data`).
#[derive(Debug, Clone, Copy)]
struct OpenData {
    stream_id: StreamId,
    /// Offset of its 9-byte header in `out`.
    start: usize,
    /// Its payload length so far.
    len: usize,
}

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Size of a new receive buffer: a 64 KiB socket read plus a partial frame left from the last.
const RECV_BUFFER_SIZE: usize = 96 * 1024;

/// Receive buffers kept for reuse besides the current one (see `Connection::recv_spares`).
const MAX_RECV_SPARES: usize = 2;

impl Connection {
    /// Creates a connection and queues its opening bytes in the output.
    ///
    /// A client queues the preface, its SETTINGS and (if the configured connection window is
    /// larger than 65 535) a WINDOW_UPDATE on stream 0. A server queues its SETTINGS and the
    /// WINDOW_UPDATE, and expects the client preface as the first input. `config` is clamped
    /// by [`Config::normalized`].
    pub fn new(role: Role, config: Config) -> Connection {
        let config = config.normalized();
        let mut out = BytesMut::with_capacity(4096);
        if role == Role::Client {
            out.extend_from_slice(PREFACE);
        }
        let settings = config.to_settings(role == Role::Client);
        settings.encode(&mut out);
        let mut local = LocalSettings::new();
        local.sent(settings);
        let conn_window = config.connection_window_size;
        if conn_window > frame::DEFAULT_INITIAL_WINDOW_SIZE {
            WindowUpdate::new(0, conn_window - frame::DEFAULT_INITIAL_WINDOW_SIZE).encode(&mut out);
        }
        let decoder = Decoder::new(local.enforced().header_table_size as usize);
        let reset_cost_ns = NANOS_PER_SEC / u64::from(config.max_resets_per_second);
        Connection {
            role,
            header_block_limit: config.header_block_limit(),
            recv_buf: BytesMut::with_capacity(16 * 1024),
            recv_spares: Vec::new(),
            out,
            events: VecDeque::new(),
            preface_matched: if role == Role::Server {
                0
            } else {
                PREFACE.len()
            },
            got_settings: false,
            local,
            remote: RemoteSettings::default(),
            decoder,
            encoder: Encoder::new(),
            streams: IdMap::default(),
            closed: IdMap::default(),
            closed_order: VecDeque::new(),
            active_local: 0,
            active_remote: 0,
            next_local_id: if role == Role::Client { 1 } else { 2 },
            last_remote_id: 0,
            send_window: SendWindow::new(frame::DEFAULT_INITIAL_WINDOW_SIZE),
            recv_window: RecvWindow::with_target(conn_window, conn_window),
            partial: None,
            goaway_sent: GoAwaySent::No,
            goaway_recv: None,
            error: None,
            pending_control: 0,
            empty_frames: 0,
            reset_credit_ns: NANOS_PER_SEC,
            reset_cost_ns,
            last_refill: None,
            settings_deadline: None,
            keepalive: Keepalive::new(config.keepalive.clone(), role == Role::Server),
            bdp: config
                .bdp_probe
                .then(|| Bdp::new(config.initial_window_size, DEFAULT_BDP_CAP)),
            now: None,
            open_data: None,
            config,
        }
    }

    // ----- inputs: bytes from the peer -------------------------------------------------

    /// Takes bytes read from the peer, processes every complete frame and queues the
    /// resulting events and output.
    ///
    /// `now` is the current time; it is used only to refill the stream-reset rate limit.
    ///
    /// # Errors
    ///
    /// A [`ConnectionError`] when the peer broke the protocol (or flooded us): the
    /// connection is dead, a GOAWAY is queued in the output, and later calls return the same
    /// error. Events queued before the error can still be drained.
    pub fn recv(&mut self, data: &[u8], now: Instant) -> Result<(), ConnectionError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.make_recv_room(data.len());
        self.recv_buf.extend_from_slice(data);
        self.process(now)
    }

    /// Makes room for `n` more octets in the receive buffer: in place if no frame sliced from
    /// it is alive any more, else in a spare buffer that is free again, else in a new one.
    fn make_recv_room(&mut self, n: usize) {
        if self.recv_buf.capacity() - self.recv_buf.len() >= n || self.recv_buf.try_reclaim(n) {
            return;
        }
        let need = self.recv_buf.len() + n;
        let spare = self
            .recv_spares
            .iter_mut()
            .position(|b| b.try_reclaim(need));
        let mut next = match spare {
            Some(i) => self.recv_spares.swap_remove(i),
            // After `release_buffers`, start small again: most connections carry small RPCs.
            None if self.recv_buf.capacity() == 0 => BytesMut::with_capacity(need.max(16 * 1024)),
            None => BytesMut::with_capacity(need.max(RECV_BUFFER_SIZE)),
        };
        // The partial frame at the end of the old buffer (less than a frame).
        next.extend_from_slice(&self.recv_buf);
        let mut old = std::mem::replace(&mut self.recv_buf, next);
        old.clear();
        if self.recv_spares.len() < MAX_RECV_SPARES {
            self.recv_spares.push(old);
        }
    }

    /// Returns the receive buffer, so that a driver can read from the socket straight into it
    /// (then call [`process`](Connection::process)), saving the copy [`recv`](Connection::recv)
    /// makes.
    pub fn recv_buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.recv_buf
    }

    /// Processes the frames already in the receive buffer (see
    /// [`recv_buffer_mut`](Connection::recv_buffer_mut)).
    ///
    /// # Errors
    ///
    /// As [`recv`](Connection::recv).
    pub fn process(&mut self, now: Instant) -> Result<(), ConnectionError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.refill(now);
        self.now = Some(now);
        if !self.recv_buf.is_empty() {
            self.keepalive.on_recv(now);
        }
        self.keepalive.observe(now, self.open_streams());
        if self.settings_deadline.is_none() && self.local.pending_acks() > 0 {
            self.settings_deadline = self.config.settings_timeout.map(|t| now + t);
        }
        if let Err(e) = self.process_frames() {
            let (reason, detail) = match e {
                Error::Connection { reason, detail } => (reason, detail),
                Error::Stream { reason, detail, .. } => (reason, detail),
            };
            return Err(self.fail(reason, detail));
        }
        Ok(())
    }

    fn process_frames(&mut self) -> Result<(), Error> {
        while self.preface_matched < PREFACE.len() {
            if self.recv_buf.is_empty() {
                return Ok(());
            }
            let n = (PREFACE.len() - self.preface_matched).min(self.recv_buf.len());
            if self.recv_buf[..n] != PREFACE[self.preface_matched..self.preface_matched + n] {
                return Err(conn_err(
                    Reason::PROTOCOL_ERROR,
                    "invalid connection preface",
                ));
            }
            self.recv_buf.advance(n);
            self.preface_matched += n;
        }
        while self.error.is_none() {
            let frame_kind = (self.recv_buf.len() >= FRAME_HEADER_LEN).then(|| self.recv_buf[3]);
            let frame = match self.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(Error::Stream {
                    stream_id, reason, ..
                }) => {
                    self.check_frame_order_for_error()?;
                    // Only PRIORITY may arrive on an idle stream (RFC 9113 §5.1).
                    if frame_kind != Some(kind::PRIORITY) && self.lookup(stream_id) == Lookup::Idle
                    {
                        return Err(conn_err(
                            Reason::PROTOCOL_ERROR,
                            "invalid frame on an idle stream",
                        ));
                    }
                    self.stream_error(stream_id, reason)?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match self.handle_frame(frame) {
                Ok(()) => {}
                Err(Error::Stream {
                    stream_id, reason, ..
                }) => self.stream_error(stream_id, reason)?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A frame that failed to parse with a stream error is still a frame: it may not
    /// interrupt a header block, nor come before the peer's SETTINGS.
    fn check_frame_order_for_error(&self) -> Result<(), Error> {
        if self.partial.is_some() {
            return Err(conn_err(
                Reason::PROTOCOL_ERROR,
                "frame interleaved in a header block",
            ));
        }
        if !self.got_settings {
            return Err(conn_err(
                Reason::PROTOCOL_ERROR,
                "first frame from the peer is not SETTINGS",
            ));
        }
        Ok(())
    }

    /// Splits the next frame off the receive buffer.
    ///
    /// Wraps [`frame::decode`] for one case: a HEADERS frame whose priority makes the stream
    /// depend on itself is a stream error, but its field block must still be decoded to keep
    /// HPACK in sync, so it is parsed here with the priority fields kept apart.
    fn next_frame(&mut self) -> Result<Option<Frame>, Error> {
        let max = self.local.enforced().max_frame_size;
        if self.recv_buf.len() >= FRAME_HEADER_LEN {
            let head = Head::parse(&self.recv_buf);
            if head.kind == kind::HEADERS
                && head.has_flag(flags::PRIORITY)
                && head.length <= max
                && self.recv_buf.len() >= FRAME_HEADER_LEN + head.length as usize
            {
                self.recv_buf.advance(FRAME_HEADER_LEN);
                let payload = self.recv_buf.split_to(head.length as usize).freeze();
                return match Headers::load(&head, payload.clone()) {
                    Ok(h) => Ok(Some(Frame::Headers(h))),
                    Err(Error::Stream { .. }) => {
                        // Self-dependency: re-parse without the PRIORITY flag, then drop the
                        // five priority octets (the first parse checked they are there).
                        let plain = Head {
                            flags: head.flags & !flags::PRIORITY,
                            ..head
                        };
                        let mut h = Headers::load(&plain, payload)?;
                        let spec = frame::PrioritySpec::parse(&h.fragment);
                        h.fragment.advance(5);
                        h.priority = Some(spec);
                        Ok(Some(Frame::Headers(h)))
                    }
                    Err(e) => Err(e),
                };
            }
        }
        frame::decode(&mut self.recv_buf, max)
    }

    fn handle_frame(&mut self, frame: Frame) -> Result<(), Error> {
        if !self.got_settings && !matches!(&frame, Frame::Settings(s) if !s.ack) {
            return Err(conn_err(
                Reason::PROTOCOL_ERROR,
                "first frame from the peer is not SETTINGS",
            ));
        }
        if let Some(p) = &self.partial {
            match &frame {
                Frame::Continuation(c) if c.stream_id == p.stream_id => {}
                _ => {
                    return Err(conn_err(
                        Reason::PROTOCOL_ERROR,
                        "frame interleaved in a header block (expected CONTINUATION)",
                    ))
                }
            }
        }
        match frame {
            Frame::Data(f) => self.on_data(f),
            Frame::Headers(f) => self.on_headers(f),
            Frame::Continuation(f) => self.on_continuation(f),
            Frame::Priority(_) => Ok(()),
            Frame::RstStream(f) => self.on_rst_stream(f),
            Frame::Settings(f) => self.on_settings(f),
            Frame::PushPromise(_) => Err(conn_err(
                Reason::PROTOCOL_ERROR,
                "PUSH_PROMISE received: push is disabled",
            )),
            Frame::Ping(f) => self.on_ping(f),
            Frame::GoAway(f) => self.on_go_away(f),
            Frame::WindowUpdate(f) => self.on_window_update(f),
            Frame::Unknown(_) => Ok(()),
        }
    }

    // ----- stream bookkeeping -------------------------------------------------------------

    fn is_peer_initiated(&self, id: StreamId) -> bool {
        (id % 2 == 1) == (self.role == Role::Server)
    }

    fn lookup(&self, id: StreamId) -> Lookup {
        if let Some(s) = self.streams.get(&id) {
            return match s.state {
                State::Closed(cause) => Lookup::Closed(cause),
                _ => Lookup::Active,
            };
        }
        if let Some(cause) = self.closed.get(&id) {
            return Lookup::Closed(*cause);
        }
        let idle = if self.is_peer_initiated(id) {
            id > self.last_remote_id
        } else {
            id >= self.next_local_id
        };
        if idle {
            Lookup::Idle
        } else {
            Lookup::Forgotten
        }
    }

    fn remember_closed(&mut self, id: StreamId, cause: Cause) {
        let cap = self.config.closed_stream_memory;
        if cap == 0 {
            return;
        }
        match self.closed.entry(id) {
            Entry::Occupied(mut e) => {
                e.insert(cause);
            }
            Entry::Vacant(e) => {
                e.insert(cause);
                self.closed_order.push_back(id);
                while self.closed_order.len() > cap {
                    if let Some(old) = self.closed_order.pop_front() {
                        self.closed.remove(&old);
                    }
                }
            }
        }
    }

    fn dec_active(&mut self, local: bool) {
        if local {
            self.active_local -= 1;
        } else {
            self.active_remote -= 1;
        }
        self.keepalive.on_streams_changed(self.open_streams());
    }

    /// A stream reached Closed through END_STREAM on both sides.
    fn on_stream_closed(&mut self, id: StreamId) {
        let Some(s) = self.streams.get(&id) else {
            return;
        };
        let (local, unreleased) = (s.local, s.unreleased);
        self.dec_active(local);
        self.events.push_back(Event::StreamClosed { stream_id: id });
        if unreleased == 0 {
            self.streams.remove(&id);
            self.remember_closed(id, Cause::EndStream);
        }
    }

    /// Removes a stream for good, giving its unreleased octets back to the connection window.
    /// Returns the stream if it was still active (not yet closed).
    fn remove_stream(&mut self, id: StreamId) -> Option<Stream> {
        let s = self.streams.remove(&id)?;
        if s.unreleased > 0 {
            self.release_connection(s.unreleased);
        }
        if s.state.is_closed() {
            return None;
        }
        self.dec_active(s.local);
        Some(s)
    }

    /// Answers a stream error: RST_STREAM, a Reset event if the application knew the stream,
    /// and the reset-rate and control-frame budgets.
    fn stream_error(&mut self, id: StreamId, reason: Reason) -> Result<(), Error> {
        // An idle id stays idle (a PRIORITY error does not use it up).
        let idle = self.lookup(id) == Lookup::Idle;
        RstStream::new(id, reason).encode(&mut self.out);
        if self.remove_stream(id).is_some() {
            self.events.push_back(Event::Reset {
                stream_id: id,
                reason,
                remote: false,
            });
            self.events.push_back(Event::StreamClosed { stream_id: id });
        }
        if !idle {
            self.remember_closed(id, Cause::LocalReset(reason));
        }
        self.queue_control()?;
        self.charge_reset()
    }

    // ----- defences ------------------------------------------------------------------------

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last_refill {
            let elapsed = now.saturating_duration_since(last);
            let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
            self.reset_credit_ns = self.reset_credit_ns.saturating_add(ns).min(NANOS_PER_SEC);
        }
        if self.last_refill.is_none_or(|last| now > last) {
            self.last_refill = Some(now);
        }
    }

    fn charge_reset(&mut self) -> Result<(), Error> {
        if self.reset_credit_ns < self.reset_cost_ns {
            return Err(conn_err(
                Reason::ENHANCE_YOUR_CALM,
                "too many stream resets per second",
            ));
        }
        self.reset_credit_ns -= self.reset_cost_ns;
        Ok(())
    }

    fn queue_control(&mut self) -> Result<(), Error> {
        self.pending_control += 1;
        if self.pending_control > self.config.max_pending_control_frames {
            return Err(conn_err(
                Reason::ENHANCE_YOUR_CALM,
                "too many control frames queued unsent",
            ));
        }
        Ok(())
    }

    fn empty_frame(&mut self) -> Result<(), Error> {
        self.empty_frames += 1;
        if self.empty_frames > self.config.max_empty_frames {
            return Err(conn_err(Reason::ENHANCE_YOUR_CALM, "too many empty frames"));
        }
        Ok(())
    }

    // ----- flow control ----------------------------------------------------------------------

    fn release_connection(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        self.recv_window.release(n);
        if let Some(inc) = self.recv_window.take_update() {
            WindowUpdate::new(0, inc).encode(&mut self.out);
        }
    }

    // ----- frame handlers --------------------------------------------------------------------

    fn on_data(&mut self, f: Data) -> Result<(), Error> {
        let id = f.stream_id;
        let lookup = self.lookup(id);
        if lookup == Lookup::Idle {
            return Err(conn_err(Reason::PROTOCOL_ERROR, "DATA on an idle stream"));
        }
        let flow = f.flow_len;
        if self.recv_window.receive(flow).is_err() {
            return Err(conn_err(
                Reason::FLOW_CONTROL_ERROR,
                "DATA beyond the connection window",
            ));
        }
        if flow > 0 {
            let now = self.now.expect("frames are processed with a time");
            if self
                .bdp
                .as_mut()
                .is_some_and(|b| b.on_data(now, flow as usize))
            {
                Ping::new(BDP_PING_PAYLOAD).encode(&mut self.out);
            }
        }
        if f.payload.is_empty() {
            if !f.end_stream {
                self.empty_frame()?;
            }
        } else {
            self.empty_frames = 0;
        }
        match lookup {
            Lookup::Active => {}
            Lookup::Closed(Cause::LocalReset(_)) => {
                // Frames in flight when we reset the stream: ignore them (RFC 9113 §5.1),
                // but they still count against the connection window (§6.9), returned here.
                self.release_connection(flow);
                // An empty one ends nothing here even with END_STREAM: it is an empty frame
                // like any other, or a flood of them would cost the peer nothing.
                if f.payload.is_empty() && f.end_stream {
                    self.empty_frame()?;
                }
                return Ok(());
            }
            _ => {
                self.release_connection(flow);
                return Err(stream_err(
                    id,
                    Reason::STREAM_CLOSED,
                    "DATA on a closed stream",
                ));
            }
        }
        let Some(s) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        if !s.state.can_recv() {
            self.release_connection(flow);
            return Err(stream_err(
                id,
                Reason::STREAM_CLOSED,
                "DATA after END_STREAM",
            ));
        }
        if s.recv_phase == RecvPhase::Head {
            self.release_connection(flow);
            return Err(stream_err(
                id,
                Reason::PROTOCOL_ERROR,
                "DATA before headers",
            ));
        }
        if s.recv_window.receive(flow).is_err() {
            self.release_connection(flow);
            return Err(stream_err(
                id,
                Reason::FLOW_CONTROL_ERROR,
                "DATA beyond the stream window",
            ));
        }
        let len = f.payload.len() as u32;
        if let Some(remaining) = s.content_length {
            let remaining = remaining.checked_sub(u64::from(len));
            let short = f.end_stream && remaining != Some(0);
            if remaining.is_none() || short {
                self.release_connection(flow);
                return Err(stream_err(
                    id,
                    Reason::PROTOCOL_ERROR,
                    "DATA length does not match content-length",
                ));
            }
            s.content_length = remaining;
        }
        let pad = flow - len;
        s.unreleased += len;
        let mut stream_update = None;
        if pad > 0 {
            s.recv_window.release(pad);
            stream_update = s.recv_window.take_update();
        }
        if f.end_stream {
            // can_recv() was checked, so this transition is valid.
            let _ = s.state.recv_end_stream();
        }
        let closed = s.state.is_closed();
        if let Some(inc) = stream_update {
            WindowUpdate::new(id, inc).encode(&mut self.out);
        }
        self.release_connection(pad);
        if len > 0 || f.end_stream {
            self.events.push_back(Event::Data {
                stream_id: id,
                data: f.payload,
                end_stream: f.end_stream,
            });
        }
        if closed {
            self.on_stream_closed(id);
        }
        Ok(())
    }

    fn on_headers(&mut self, f: Headers) -> Result<(), Error> {
        let id = f.stream_id;
        let target = self.headers_target(id)?;
        if f.fragment.len() > self.header_block_limit {
            return Err(conn_err(
                Reason::ENHANCE_YOUR_CALM,
                "header block larger than the limit",
            ));
        }
        let self_dependent = f.priority.is_some_and(|p| p.dependency == id);
        if f.end_headers {
            return self.on_header_block(id, target, &f.fragment, f.end_stream, self_dependent);
        }
        if f.fragment.is_empty() {
            self.empty_frame()?;
        }
        self.partial = Some(PartialBlock {
            stream_id: id,
            target,
            end_stream: f.end_stream,
            self_dependent,
            block: BytesMut::from(&f.fragment[..]),
        });
        Ok(())
    }

    fn on_continuation(&mut self, f: Continuation) -> Result<(), Error> {
        let limit = self.header_block_limit;
        let Some(p) = self.partial.as_mut() else {
            return Err(conn_err(
                Reason::PROTOCOL_ERROR,
                "CONTINUATION without a header block in progress",
            ));
        };
        if p.block.len() + f.fragment.len() > limit {
            return Err(conn_err(
                Reason::ENHANCE_YOUR_CALM,
                "header block larger than the limit",
            ));
        }
        p.block.extend_from_slice(&f.fragment);
        if !f.end_headers {
            if f.fragment.is_empty() {
                self.empty_frame()?;
            }
            return Ok(());
        }
        let Some(p) = self.partial.take() else {
            return Ok(());
        };
        self.on_header_block(
            p.stream_id,
            p.target,
            &p.block,
            p.end_stream,
            p.self_dependent,
        )
    }

    /// Decides, at the HEADERS frame, what its block will apply to; rejects what must be
    /// rejected before buffering anything.
    fn headers_target(&mut self, id: StreamId) -> Result<BlockTarget, Error> {
        match self.lookup(id) {
            Lookup::Active => {
                let can_recv = self.streams.get(&id).is_some_and(|s| s.state.can_recv());
                Ok(if can_recv {
                    BlockTarget::Existing
                } else {
                    BlockTarget::StreamError(Reason::STREAM_CLOSED)
                })
            }
            Lookup::Idle => {
                if !self.is_peer_initiated(id) || self.role == Role::Client {
                    return Err(conn_err(
                        Reason::PROTOCOL_ERROR,
                        "HEADERS opening a stream the peer may not open",
                    ));
                }
                self.last_remote_id = id;
                if let GoAwaySent::Final(last) = self.goaway_sent {
                    if id > last {
                        self.remember_closed(id, Cause::LocalReset(Reason::REFUSED_STREAM));
                        return Ok(BlockTarget::Discard);
                    }
                }
                Ok(BlockTarget::NewStream)
            }
            Lookup::Closed(Cause::LocalReset(_)) => Ok(BlockTarget::Discard),
            Lookup::Closed(Cause::RemoteReset(_)) => {
                Ok(BlockTarget::StreamError(Reason::STREAM_CLOSED))
            }
            Lookup::Closed(Cause::EndStream) => Err(conn_err(
                Reason::STREAM_CLOSED,
                "HEADERS on a closed stream",
            )),
            Lookup::Forgotten => Err(conn_err(
                Reason::PROTOCOL_ERROR,
                "HEADERS on a closed stream or a stream id that is not increasing",
            )),
        }
    }

    fn on_header_block(
        &mut self,
        id: StreamId,
        target: BlockTarget,
        block: &[u8],
        end_stream: bool,
        self_dependent: bool,
    ) -> Result<(), Error> {
        // Enforced at once, not only after the peer's ACK: the setting is advisory, and
        // waiting would leave the first flight (or a peer that never ACKs) unbounded.
        let max_list = self.config.max_header_list_size as usize;
        let mut headers = Vec::with_capacity(12);
        let too_large = match self.decoder.decode(block, max_list, |h| headers.push(h)) {
            Ok(()) => false,
            Err(DecodeError::HeaderListTooLarge) => true,
            Err(_) => {
                return Err(conn_err(
                    Reason::COMPRESSION_ERROR,
                    "invalid HPACK header block",
                ))
            }
        };
        if !block.is_empty() {
            self.empty_frames = 0;
        }
        match target {
            BlockTarget::Discard => Ok(()),
            BlockTarget::StreamError(reason) => {
                Err(stream_err(id, reason, "HEADERS on a closed stream"))
            }
            BlockTarget::NewStream => {
                self.on_new_stream(id, headers, end_stream, too_large, self_dependent)
            }
            BlockTarget::Existing => {
                self.on_stream_headers(id, headers, end_stream, too_large, self_dependent)
            }
        }
    }

    /// A request head opening a new stream (server role).
    fn on_new_stream(
        &mut self,
        id: StreamId,
        headers: Vec<Header>,
        end_stream: bool,
        too_large: bool,
        self_dependent: bool,
    ) -> Result<(), Error> {
        if too_large {
            // Answer 431 (RFC 6585) rather than a bare reset, so the client sees why.
            self.write_headers(id, &[Header::new(&b":status"[..], &b"431"[..])], true);
            if end_stream {
                self.remember_closed(id, Cause::EndStream);
            } else {
                RstStream::new(id, Reason::NO_ERROR).encode(&mut self.out);
                self.remember_closed(id, Cause::LocalReset(Reason::NO_ERROR));
            }
            self.queue_control()?;
            return self.charge_reset();
        }
        // Our configured limit binds at once, even before the peer ACKs it: refusing is
        // retry-safe, and a peer that never ACKs must not get unlimited streams.
        if self.active_remote >= self.config.max_concurrent_streams as usize {
            RstStream::new(id, Reason::REFUSED_STREAM).encode(&mut self.out);
            self.remember_closed(id, Cause::LocalReset(Reason::REFUSED_STREAM));
            return self.queue_control();
        }
        if self_dependent {
            return Err(stream_err(
                id,
                Reason::PROTOCOL_ERROR,
                "stream depends on itself",
            ));
        }
        let info = match stream::validate_request(&headers) {
            Ok(info) => info,
            Err(detail) => return Err(stream_err(id, Reason::PROTOCOL_ERROR, detail)),
        };
        if end_stream && info.content_length.is_some_and(|n| n != 0) {
            return Err(stream_err(
                id,
                Reason::PROTOCOL_ERROR,
                "request ends before its content-length",
            ));
        }
        let recv = RecvWindow::with_target(
            self.local.enforced().initial_window_size,
            self.config.initial_window_size,
        );
        let mut s = Stream::new(id, false, self.remote.initial_window_size, recv);
        // Idle → open / half-closed (remote): always valid from Idle.
        let _ = s.state.recv_open(end_stream);
        s.recv_phase = RecvPhase::Body;
        s.content_length = info.content_length;
        self.streams.insert(id, s);
        self.active_remote += 1;
        self.events.push_back(Event::Headers {
            stream_id: id,
            headers,
            end_stream,
        });
        Ok(())
    }

    /// A header section on an active stream whose peer side is open: a response head
    /// (client) or trailers.
    fn on_stream_headers(
        &mut self,
        id: StreamId,
        headers: Vec<Header>,
        end_stream: bool,
        too_large: bool,
        self_dependent: bool,
    ) -> Result<(), Error> {
        if too_large {
            return Err(stream_err(
                id,
                Reason::PROTOCOL_ERROR,
                "header list too large",
            ));
        }
        if self_dependent {
            return Err(stream_err(
                id,
                Reason::PROTOCOL_ERROR,
                "stream depends on itself",
            ));
        }
        let Some(s) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        if s.recv_phase == RecvPhase::Head {
            // Client: the response head.
            let info = match stream::validate_response(&headers) {
                Ok(info) => info,
                Err(detail) => return Err(stream_err(id, Reason::PROTOCOL_ERROR, detail)),
            };
            if info.is_informational() {
                if end_stream {
                    return Err(stream_err(
                        id,
                        Reason::PROTOCOL_ERROR,
                        "1xx response with END_STREAM",
                    ));
                }
                return Ok(());
            }
            s.recv_phase = RecvPhase::Body;
            let no_body = s.head_request || info.status == 204 || info.status == 304;
            s.content_length = if no_body { None } else { info.content_length };
            if end_stream && s.content_length.is_some_and(|n| n != 0) {
                return Err(stream_err(
                    id,
                    Reason::PROTOCOL_ERROR,
                    "response ends before its content-length",
                ));
            }
        } else {
            // Trailers.
            if !end_stream {
                return Err(stream_err(
                    id,
                    Reason::PROTOCOL_ERROR,
                    "trailers without END_STREAM",
                ));
            }
            if let Err(detail) = stream::validate_trailers(&headers) {
                return Err(stream_err(id, Reason::PROTOCOL_ERROR, detail));
            }
            if s.content_length.is_some_and(|n| n != 0) {
                return Err(stream_err(
                    id,
                    Reason::PROTOCOL_ERROR,
                    "DATA length does not match content-length",
                ));
            }
        }
        if end_stream {
            // The target was chosen because can_recv() held.
            let _ = s.state.recv_end_stream();
        }
        let closed = s.state.is_closed();
        self.events.push_back(Event::Headers {
            stream_id: id,
            headers,
            end_stream,
        });
        if closed {
            self.on_stream_closed(id);
        }
        Ok(())
    }

    fn on_rst_stream(&mut self, f: RstStream) -> Result<(), Error> {
        let id = f.stream_id;
        match self.lookup(id) {
            Lookup::Idle => Err(conn_err(
                Reason::PROTOCOL_ERROR,
                "RST_STREAM on an idle stream",
            )),
            Lookup::Active => {
                let peer_opened = self.is_peer_initiated(id);
                self.remove_stream(id);
                self.remember_closed(id, Cause::RemoteReset(f.reason));
                self.events.push_back(Event::Reset {
                    stream_id: id,
                    reason: f.reason,
                    remote: true,
                });
                self.events.push_back(Event::StreamClosed { stream_id: id });
                if peer_opened {
                    self.charge_reset()?;
                }
                Ok(())
            }
            Lookup::Closed(_) | Lookup::Forgotten => Ok(()),
        }
    }

    fn on_settings(&mut self, f: Settings) -> Result<(), Error> {
        if f.ack {
            let acked = self.local.acked();
            if self.local.pending_acks() == 0 {
                self.settings_deadline = None;
            }
            if let Some((before, after)) = acked {
                if after.header_table_size != before.header_table_size {
                    self.decoder
                        .set_max_table_size(after.header_table_size as usize);
                }
                let delta =
                    i64::from(after.initial_window_size) - i64::from(before.initial_window_size);
                if delta != 0 {
                    let target = self.config.initial_window_size;
                    for s in self.streams.values_mut() {
                        s.recv_window.adjust(delta, target);
                    }
                }
            }
            return Ok(());
        }
        if self.role == Role::Client && f.enable_push == Some(true) {
            return Err(conn_err(
                Reason::PROTOCOL_ERROR,
                "server sent SETTINGS_ENABLE_PUSH = 1",
            ));
        }
        self.got_settings = true;
        let old = self.remote.apply(&f);
        if self.remote.header_table_size != old.header_table_size {
            self.encoder
                .set_max_table_size(self.remote.header_table_size as usize);
        }
        let delta = i64::from(self.remote.initial_window_size) - i64::from(old.initial_window_size);
        if delta != 0 {
            for s in self.streams.values_mut() {
                if s.state.can_send() && s.send_window.adjust(delta).is_err() {
                    return Err(conn_err(
                        Reason::FLOW_CONTROL_ERROR,
                        "SETTINGS_INITIAL_WINDOW_SIZE pushes a stream window past 2^31-1",
                    ));
                }
            }
            if delta > 0 {
                self.events.push_back(Event::SendCapacity { stream_id: 0 });
            }
        }
        Settings::ack().encode(&mut self.out);
        self.events.push_back(Event::RemoteSettings);
        self.queue_control()
    }

    fn on_ping(&mut self, f: Ping) -> Result<(), Error> {
        if f.ack {
            if f.payload == DRAIN_PING_PAYLOAD {
                if let GoAwaySent::Draining { debug } = &self.goaway_sent {
                    let debug = debug.clone();
                    self.send_final_go_away(Reason::NO_ERROR, &debug);
                    return Ok(());
                }
            }
            if f.payload == BDP_PING_PAYLOAD {
                let now = self.now.expect("frames are processed with a time");
                if let Some(window) = self.bdp.as_mut().and_then(|b| b.on_ack(now)) {
                    self.grow_windows(window);
                }
            } else if f.payload != KEEPALIVE_PING_PAYLOAD {
                self.events.push_back(Event::PingAck { payload: f.payload });
            }
            return Ok(());
        }
        let now = self.now.expect("frames are processed with a time");
        if !self.keepalive.on_ping_received(now, self.open_streams()) {
            // grpc-go and grpcio say it with these words; clients double their keepalive time.
            return Err(conn_err(Reason::ENHANCE_YOUR_CALM, "too_many_pings"));
        }
        Ping::pong(f.payload).encode(&mut self.out);
        self.queue_control()
    }

    /// Grows the receive windows to `window` (from the BDP estimate): new streams' through
    /// SETTINGS_INITIAL_WINDOW_SIZE (open ones when the peer acknowledges it), the
    /// connection's at once with a WINDOW_UPDATE.
    fn grow_windows(&mut self, window: u32) {
        if window > self.config.initial_window_size {
            self.config.initial_window_size = window;
            let settings = Settings {
                initial_window_size: Some(window),
                ..Settings::default()
            };
            settings.encode(&mut self.out);
            // A larger window binds us at once (the peer may use it as soon as it reads the
            // SETTINGS): open streams' windows grow now, not at the ACK.
            let before = self.local.enforced().initial_window_size;
            self.local.sent(settings);
            let delta = i64::from(self.local.enforced().initial_window_size) - i64::from(before);
            if delta != 0 {
                for s in self.streams.values_mut() {
                    s.recv_window.adjust(delta, window);
                }
            }
        }
        if window > self.config.connection_window_size {
            self.config.connection_window_size = window;
            if let Some(inc) = self.recv_window.grow(window) {
                WindowUpdate::new(0, inc).encode(&mut self.out);
            }
        }
    }

    fn on_go_away(&mut self, f: GoAway) -> Result<(), Error> {
        if let Some((prev, prev_reason)) = self.goaway_recv {
            if f.last_stream_id > prev {
                return Err(conn_err(
                    Reason::PROTOCOL_ERROR,
                    "GOAWAY raised its last stream id",
                ));
            }
            if f.last_stream_id == prev && f.reason == prev_reason {
                return Ok(());
            }
        }
        self.goaway_recv = Some((f.last_stream_id, f.reason));
        self.events.push_back(Event::GoAway {
            last_stream_id: f.last_stream_id,
            reason: f.reason,
            debug: f.debug_data,
        });
        let mut refused: Vec<StreamId> = self
            .streams
            .values()
            .filter(|s| s.local && s.id > f.last_stream_id && !s.state.is_closed())
            .map(|s| s.id)
            .collect();
        refused.sort_unstable();
        for id in refused {
            self.remove_stream(id);
            self.remember_closed(id, Cause::LocalReset(Reason::REFUSED_STREAM));
            self.events.push_back(Event::Refused { stream_id: id });
            self.events.push_back(Event::StreamClosed { stream_id: id });
        }
        Ok(())
    }

    fn on_window_update(&mut self, f: WindowUpdate) -> Result<(), Error> {
        let id = f.stream_id;
        if id == 0 {
            if self.send_window.increase(f.increment).is_err() {
                return Err(conn_err(
                    Reason::FLOW_CONTROL_ERROR,
                    "WINDOW_UPDATE pushes the connection window past 2^31-1",
                ));
            }
            self.events.push_back(Event::SendCapacity { stream_id: 0 });
            return Ok(());
        }
        match self.lookup(id) {
            Lookup::Idle => Err(conn_err(
                Reason::PROTOCOL_ERROR,
                "WINDOW_UPDATE on an idle stream",
            )),
            Lookup::Active => {
                let Some(s) = self.streams.get_mut(&id) else {
                    return Ok(());
                };
                // Once we have ended our side the send window is no longer active: SETTINGS
                // no longer move it (§6.9.2), so it is stale and not checked against 2^31-1.
                if !s.state.can_send() {
                    return Ok(());
                }
                let before = s.send_window.available();
                if s.send_window.increase(f.increment).is_err() {
                    return Err(stream_err(
                        id,
                        Reason::FLOW_CONTROL_ERROR,
                        "WINDOW_UPDATE pushes the stream window past 2^31-1",
                    ));
                }
                // A window still at or below zero (after a lowered
                // SETTINGS_INITIAL_WINDOW_SIZE, §6.9.2) gives nothing to send yet.
                if s.send_window.available() > before {
                    self.events.push_back(Event::SendCapacity { stream_id: id });
                }
                Ok(())
            }
            // After the peer's RST_STREAM only PRIORITY may follow (RFC 9113 §5.1).
            Lookup::Closed(Cause::RemoteReset(_)) => Err(stream_err(
                id,
                Reason::STREAM_CLOSED,
                "WINDOW_UPDATE after the peer's RST_STREAM",
            )),
            // Closed by END_STREAM or by our RST_STREAM: the peer may not have seen it yet.
            Lookup::Closed(_) | Lookup::Forgotten => Ok(()),
        }
    }

    // ----- output helpers --------------------------------------------------------------------

    /// Encodes `headers` straight into the output after a placeholder frame header; splits
    /// into CONTINUATION frames only if the block is larger than the peer's frame size.
    fn write_headers(&mut self, id: StreamId, headers: &[Header], end_stream: bool) {
        self.keepalive.on_data_sent();
        let start = self.out.len();
        self.out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
        self.encoder.encode_headers(headers, &mut self.out);
        let len = self.out.len() - start - FRAME_HEADER_LEN;
        let max = self.remote.max_frame_size as usize;
        if len <= max {
            let mut f = flags::END_HEADERS;
            if end_stream {
                f |= flags::END_STREAM;
            }
            let l = (len as u32).to_be_bytes();
            let i = id.to_be_bytes();
            self.out[start..start + FRAME_HEADER_LEN].copy_from_slice(&[
                l[1],
                l[2],
                l[3],
                kind::HEADERS,
                f,
                i[0],
                i[1],
                i[2],
                i[3],
            ]);
        } else {
            let block = self.out.split_off(start + FRAME_HEADER_LEN);
            self.out.truncate(start);
            encode_header_block(&mut self.out, id, &block, end_stream, max as u32);
        }
    }

    fn send_final_go_away(&mut self, reason: Reason, debug: &[u8]) {
        // The last stream id may never grow from one GOAWAY to the next (RFC 9113 §6.8).
        let last = match self.goaway_sent {
            GoAwaySent::Final(prev) => prev.min(self.last_remote_id),
            _ => self.last_remote_id,
        };
        let debug = &debug[..debug.len().min(MAX_GOAWAY_DEBUG)];
        GoAway::new(last, reason, Bytes::copy_from_slice(debug)).encode(&mut self.out);
        self.goaway_sent = GoAwaySent::Final(last);
    }

    /// Records a connection error: GOAWAY out, every later call fails.
    fn fail(&mut self, reason: Reason, detail: &'static str) -> ConnectionError {
        if let Some(e) = &self.error {
            return e.clone();
        }
        self.send_final_go_away(reason, detail.as_bytes());
        self.partial = None;
        self.recv_buf.clear();
        let e = ConnectionError::Protocol { reason, detail };
        self.error = Some(e.clone());
        e
    }

    // ----- timers -------------------------------------------------------------------------

    /// Returns when the connection next needs [`handle_timeout`](Connection::handle_timeout),
    /// if ever. Check it after every input and command.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() {
            return None;
        }
        let keepalive = self.keepalive.poll_timeout(self.open_streams());
        match (self.settings_deadline, keepalive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Serves the timers due at `now`.
    ///
    /// # Errors
    ///
    /// [`ConnectionError::Protocol`] with SETTINGS_TIMEOUT when the peer has not acknowledged
    /// our SETTINGS in time: the connection is dead and the GOAWAY waits in the output.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ConnectionError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.now = Some(now);
        if self.settings_deadline.is_some_and(|d| d <= now) && self.local.pending_acks() > 0 {
            return Err(self.fail(
                Reason::SETTINGS_TIMEOUT,
                "the peer did not acknowledge our SETTINGS in time",
            ));
        }
        while let Some(due) = self.keepalive.due(now, self.open_streams()) {
            match due {
                Due::Ping => Ping::new(KEEPALIVE_PING_PAYLOAD).encode(&mut self.out),
                Due::Dead => {
                    // The peer is gone: nothing to tell it.
                    let e = ConnectionError::TimedOut {
                        what: "keepalive timed out: the peer did not answer our PING in time",
                    };
                    self.error = Some(e.clone());
                    return Err(e);
                }
                Due::GoAway(why) => self.go_away(Reason::NO_ERROR, why.as_bytes()),
                Due::Close => {
                    if !matches!(self.goaway_sent, GoAwaySent::Final(_)) {
                        self.send_final_go_away(Reason::NO_ERROR, b"max_age");
                    }
                    let e = ConnectionError::TimedOut {
                        what: "max_connection_age_grace ran out with calls still open",
                    };
                    self.error = Some(e.clone());
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    // ----- outputs ------------------------------------------------------------------------

    /// Returns the next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Returns the bytes waiting to be written to the peer; take them with
    /// `conn.output().split()`.
    ///
    /// Each call also counts as "what was queued is being sent" for the limit on control
    /// frames queued in reaction to the peer
    /// ([`Config::max_pending_control_frames`]).
    pub fn output(&mut self) -> &mut BytesMut {
        self.pending_control = 0;
        // The caller may take the bytes: a frame in them can no longer grow.
        self.open_data = None;
        &mut self.out
    }

    /// Takes the bytes waiting to be written (same as `output().split()`).
    pub fn take_output(&mut self) -> BytesMut {
        self.output().split()
    }

    /// Returns true if bytes wait to be written.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Returns how many bytes wait to be written.
    pub fn pending_output(&self) -> usize {
        self.out.len()
    }

    /// Gives the receive and output buffers back to the allocator if they hold nothing, so
    /// that an idle connection costs little memory; they are allocated again on the next
    /// input or output. Call it when the connection has been quiet for a while.
    pub fn release_buffers(&mut self) {
        if self.recv_buf.is_empty() && self.recv_buf.capacity() > 0 {
            self.recv_buf = BytesMut::new();
        }
        self.recv_spares = Vec::new();
        if self.out.is_empty() && self.out.capacity() > 0 {
            self.out = BytesMut::new();
            self.open_data = None;
        }
        self.events.shrink_to_fit();
    }

    // ----- commands ------------------------------------------------------------------------

    /// Opens a stream by sending its request head (client only).
    ///
    /// # Errors
    ///
    /// - [`SendError::WrongRole`] on a server;
    /// - [`SendError::Closed`] after a connection error;
    /// - [`SendError::GoingAway`] after a GOAWAY either way, or when stream ids run out;
    /// - [`SendError::StreamLimit`] when the peer's SETTINGS_MAX_CONCURRENT_STREAMS is
    ///   reached;
    /// - [`SendError::HeaderListTooLarge`] over the peer's SETTINGS_MAX_HEADER_LIST_SIZE.
    pub fn open_stream(
        &mut self,
        headers: &[Header],
        end_stream: bool,
    ) -> Result<StreamId, SendError> {
        if self.role != Role::Client {
            return Err(SendError::WrongRole);
        }
        if self.error.is_some() {
            return Err(SendError::Closed);
        }
        if self.goaway_recv.is_some()
            || self.goaway_sent != GoAwaySent::No
            || self.next_local_id > MAX_STREAM_ID
        {
            return Err(SendError::GoingAway);
        }
        if self.active_local >= self.remote.max_concurrent_streams as usize {
            return Err(SendError::StreamLimit);
        }
        self.check_header_list(headers)?;
        let id = self.next_local_id;
        self.next_local_id += 2;
        let recv = RecvWindow::with_target(
            self.local.enforced().initial_window_size,
            self.config.initial_window_size,
        );
        let mut s = Stream::new(id, true, self.remote.initial_window_size, recv);
        let _ = s.state.send_open(end_stream);
        s.head_request = headers
            .iter()
            .any(|h| &h.name[..] == b":method" && &h.value[..] == b"HEAD");
        self.streams.insert(id, s);
        self.active_local += 1;
        self.write_headers(id, headers, end_stream);
        Ok(id)
    }

    fn check_header_list(&self, headers: &[Header]) -> Result<(), SendError> {
        let limit = self.remote.max_header_list_size as usize;
        if limit != u32::MAX as usize && headers.iter().map(Header::size).sum::<usize>() > limit {
            return Err(SendError::HeaderListTooLarge);
        }
        Ok(())
    }

    fn sendable(&self, id: StreamId) -> Result<&Stream, SendError> {
        if self.error.is_some() {
            return Err(SendError::Closed);
        }
        match self.streams.get(&id) {
            Some(s) if s.state.can_send() => Ok(s),
            _ => Err(SendError::Closed),
        }
    }

    /// Sends a header section on a stream: a response head, or trailers (with `end_stream`).
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] if we may not send on the stream (unknown, reset, or already
    /// ended by us); [`SendError::HeaderListTooLarge`] over the peer's limit.
    pub fn send_headers(
        &mut self,
        id: StreamId,
        headers: &[Header],
        end_stream: bool,
    ) -> Result<(), SendError> {
        self.sendable(id)?;
        self.check_header_list(headers)?;
        self.write_headers(id, headers, end_stream);
        if end_stream {
            self.end_local_side(id);
        }
        Ok(())
    }

    /// Alias of [`send_headers`](Connection::send_headers) with `end_stream` set.
    ///
    /// # Errors
    ///
    /// As [`send_headers`](Connection::send_headers).
    pub fn send_trailers(&mut self, id: StreamId, trailers: &[Header]) -> Result<(), SendError> {
        self.send_headers(id, trailers, true)
    }

    fn end_local_side(&mut self, id: StreamId) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let _ = s.state.send_end_stream();
        if s.state.is_closed() {
            self.on_stream_closed(id);
        }
    }

    /// Sends as much of `data` as both flow-control windows allow, in frames of at most the
    /// peer's SETTINGS_MAX_FRAME_SIZE, and returns how many octets were accepted.
    ///
    /// END_STREAM is sent only if all of `data` was accepted (an empty `data` with
    /// `end_stream` always is). When fewer octets are accepted, wait for
    /// [`Event::SendCapacity`] and send the rest.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] if we may not send on the stream.
    pub fn send_data(
        &mut self,
        id: StreamId,
        data: &[u8],
        end_stream: bool,
    ) -> Result<usize, SendError> {
        let s = self.sendable(id)?;
        let n = data
            .len()
            .min(s.send_window.available())
            .min(self.send_window.available());
        let all = n == data.len();
        let max = self.remote.max_frame_size as usize;
        if n == 0 {
            if all && end_stream {
                encode_data(&mut self.out, id, &[], true);
                self.end_local_side(id);
            }
            return Ok(0);
        }
        let mut rest = &data[..n];
        if let Some(open) = self.open_data.take() {
            // Still the last bytes of the output (nothing appended since)?
            let at_end = open.start + FRAME_HEADER_LEN + open.len == self.out.len();
            if open.stream_id == id && at_end {
                let (chunk, tail) = rest.split_at(rest.len().min(max.saturating_sub(open.len)));
                self.out.put_slice(chunk);
                let len = open.len + chunk.len();
                // `len <= max`, which fits the 24-bit length field.
                let l = (len as u32).to_be_bytes();
                self.out[open.start..open.start + 3].copy_from_slice(&l[1..]);
                if all && end_stream && tail.is_empty() {
                    self.out[open.start + 4] |= flags::END_STREAM;
                } else {
                    self.open_data = Some(OpenData { len, ..open });
                }
                rest = tail;
            }
        }
        if !rest.is_empty() {
            let frames = rest.len().div_ceil(max);
            self.out.reserve(rest.len() + frames * FRAME_HEADER_LEN);
        }
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(max));
            let last = all && end_stream && tail.is_empty();
            let start = self.out.len();
            encode_data(&mut self.out, id, chunk, last);
            self.open_data = (!last).then_some(OpenData {
                stream_id: id,
                start,
                len: chunk.len(),
            });
            rest = tail;
        }
        self.send_window.consume(n);
        self.keepalive.on_data_sent();
        if let Some(s) = self.streams.get_mut(&id) {
            s.send_window.consume(n);
        }
        if all && end_stream {
            self.end_local_side(id);
        }
        Ok(n)
    }

    /// Sends one DATA payload of `len` octets that `write` appends straight to the output
    /// buffer, saving the caller a buffer and a copy (a gRPC message encoded in place).
    ///
    /// Only when the whole payload fits both windows and one frame (or the room left in the
    /// stream's last DATA frame, which it then extends); otherwise returns `Ok(false)` without
    /// calling `write`, and the caller sends the payload with [`send_data`](Self::send_data).
    /// If `write` appends other than `len` octets, its bytes are dropped and `Ok(false)`
    /// returned. Never ends the stream.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] if we may not send on the stream.
    pub fn send_data_with(
        &mut self,
        id: StreamId,
        len: usize,
        write: impl FnOnce(&mut BytesMut),
    ) -> Result<bool, SendError> {
        let s = self.sendable(id)?;
        let window = s.send_window.available().min(self.send_window.available());
        let max = self.remote.max_frame_size as usize;
        if len == 0 || len > window {
            return Ok(false);
        }
        let prev = self.open_data;
        let open = prev.filter(|o| {
            o.stream_id == id
                && o.start + FRAME_HEADER_LEN + o.len == self.out.len()
                && o.len + len <= max
        });
        let (start, before) = match open {
            Some(o) => (o.start, o.len),
            None if len <= max => {
                let start = self.out.len();
                self.out.reserve(FRAME_HEADER_LEN + len);
                Head::new(kind::DATA, 0, id, 0).encode(&mut self.out);
                (start, 0)
            }
            None => return Ok(false),
        };
        let undo = if open.is_some() {
            self.out.len()
        } else {
            start
        };
        write(&mut self.out);
        if self.out.len() != start + FRAME_HEADER_LEN + before + len {
            // Not what was promised: take it back, as if never called.
            self.out.truncate(undo);
            self.open_data = prev;
            return Ok(false);
        }
        let frame_len = before + len;
        // `frame_len <= max`, which fits the 24-bit length field.
        let l = (frame_len as u32).to_be_bytes();
        self.out[start..start + 3].copy_from_slice(&l[1..]);
        self.open_data = Some(OpenData {
            stream_id: id,
            start,
            len: frame_len,
        });
        self.send_window.consume(len);
        self.keepalive.on_data_sent();
        if let Some(s) = self.streams.get_mut(&id) {
            s.send_window.consume(len);
        }
        Ok(true)
    }

    /// Returns how many DATA octets may be sent on the stream now: the smaller of its window
    /// and the connection's, 0 if we may not send on it.
    pub fn send_capacity(&self, id: StreamId) -> usize {
        match self.sendable(id) {
            Ok(s) => s.send_window.available().min(self.send_window.available()),
            Err(_) => 0,
        }
    }

    /// Resets a stream with RST_STREAM(`reason`), e.g. CANCEL when a call is abandoned.
    ///
    /// Octets the application had not released are returned to the connection window. On a
    /// stream that is already closed but still holds unreleased data, this only releases that
    /// data (no frame is sent). [`Event::StreamClosed`] follows if the stream was active.
    /// Unknown streams are ignored.
    pub fn reset(&mut self, id: StreamId, reason: Reason) {
        let Some(s) = self.streams.get(&id) else {
            return;
        };
        if s.state.is_closed() {
            self.remove_stream(id);
            self.remember_closed(id, Cause::EndStream);
            return;
        }
        if self.error.is_none() {
            RstStream::new(id, reason).encode(&mut self.out);
        }
        self.remove_stream(id);
        self.remember_closed(id, Cause::LocalReset(reason));
        self.events.push_back(Event::StreamClosed { stream_id: id });
    }

    /// Sends GOAWAY.
    ///
    /// With `NO_ERROR` this is a graceful shutdown: streams already open carry on, no new
    /// ones are accepted, and [`is_closed`](Connection::is_closed) becomes true once they are
    /// all done. A server uses the two-step form (GOAWAY with 2^31 − 1 and a PING; the final
    /// GOAWAY with the real last stream id when the PING's ACK arrives; calling this again
    /// meanwhile sends the final one at once). A client sends one final GOAWAY.
    ///
    /// With any other code the GOAWAY is final and the connection is closed at once: later
    /// `recv` calls return [`ConnectionError::Aborted`].
    pub fn go_away(&mut self, reason: Reason, debug: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if reason != Reason::NO_ERROR {
            self.send_final_go_away(reason, debug);
            self.partial = None;
            self.recv_buf.clear();
            self.error = Some(ConnectionError::Aborted { reason });
            return;
        }
        match self.goaway_sent {
            GoAwaySent::No if self.role == Role::Server => {
                let debug = Bytes::copy_from_slice(&debug[..debug.len().min(MAX_GOAWAY_DEBUG)]);
                GoAway::new(MAX_STREAM_ID, Reason::NO_ERROR, debug.clone()).encode(&mut self.out);
                Ping::new(DRAIN_PING_PAYLOAD).encode(&mut self.out);
                self.goaway_sent = GoAwaySent::Draining { debug };
            }
            GoAwaySent::No | GoAwaySent::Draining { .. } => {
                self.send_final_go_away(Reason::NO_ERROR, debug);
            }
            GoAwaySent::Final(_) => {}
        }
    }

    /// Sends a PING; its ACK arrives as [`Event::PingAck`].
    pub fn ping(&mut self, payload: [u8; 8]) {
        if self.error.is_none() {
            Ping::new(payload).encode(&mut self.out);
        }
    }

    /// Tells the connection the application consumed `n` octets of DATA received on `id`.
    ///
    /// The octets return to the stream's and the connection's receive windows; a
    /// WINDOW_UPDATE goes out for each once half of its window has been released (not per
    /// frame). Releasing more than was received on the stream, or on a stream that was reset
    /// or is unknown, is ignored.
    pub fn release_capacity(&mut self, id: StreamId, n: usize) {
        if self.error.is_some() {
            return;
        }
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let n = (n.min(s.unreleased as usize)) as u32;
        if n == 0 {
            return;
        }
        s.unreleased -= n;
        let mut update = None;
        if s.state.can_recv() {
            s.recv_window.release(n);
            update = s.recv_window.take_update();
        }
        let done = s.state.is_closed() && s.unreleased == 0;
        if let Some(inc) = update {
            WindowUpdate::new(id, inc).encode(&mut self.out);
        }
        self.release_connection(n);
        if done {
            self.streams.remove(&id);
            self.remember_closed(id, Cause::EndStream);
        }
    }

    // ----- queries --------------------------------------------------------------------------

    /// Returns our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Returns true when the connection can no longer be used: after a connection error or
    /// an aborting GOAWAY, or once a GOAWAY was sent (final) or received and no stream is
    /// left. Write out any remaining output, then close the socket.
    pub fn is_closed(&self) -> bool {
        if self.error.is_some() {
            return true;
        }
        let going_away =
            self.goaway_recv.is_some() || matches!(self.goaway_sent, GoAwaySent::Final(_));
        going_away && self.active_local + self.active_remote == 0
    }

    /// Returns the connection error, if the connection is dead.
    pub fn error(&self) -> Option<&ConnectionError> {
        self.error.as_ref()
    }

    /// Returns true if the stream is active (open or half-closed).
    pub fn is_stream_open(&self, id: StreamId) -> bool {
        self.streams.get(&id).is_some_and(|s| !s.state.is_closed())
    }

    /// Returns the stream's §5.1 state, if the connection still tracks it.
    pub fn stream_state(&self, id: StreamId) -> Option<State> {
        self.streams.get(&id).map(|s| s.state)
    }

    /// Returns the number of active streams, both directions.
    pub fn open_streams(&self) -> usize {
        self.active_local + self.active_remote
    }

    /// Returns true if [`open_stream`](Connection::open_stream) would succeed now (header
    /// size aside).
    pub fn can_open_stream(&self) -> bool {
        self.role == Role::Client
            && self.error.is_none()
            && self.goaway_recv.is_none()
            && self.goaway_sent == GoAwaySent::No
            && self.next_local_id <= MAX_STREAM_ID
            && self.active_local < self.remote.max_concurrent_streams as usize
    }

    /// Returns the settings the peer has sent.
    /// Whether the peer's first SETTINGS frame (its connection preface) has arrived.
    pub fn got_settings(&self) -> bool {
        self.got_settings
    }

    pub fn remote_settings(&self) -> &RemoteSettings {
        &self.remote
    }

    /// Returns the configuration in force (after [`Config::normalized`]).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Returns the highest stream id the peer has opened (what a GOAWAY from us carries).
    pub fn last_stream_id(&self) -> StreamId {
        self.last_remote_id
    }

    /// Returns the id the next [`open_stream`](Connection::open_stream) will use.
    pub fn next_stream_id(&self) -> StreamId {
        self.next_local_id
    }

    /// Returns the GOAWAY received from the peer, if any: last stream id and code.
    pub fn go_away_received(&self) -> Option<(StreamId, Reason)> {
        self.goaway_recv
    }

    /// Returns how much we may still send on the connection as a whole.
    pub fn connection_send_capacity(&self) -> usize {
        self.send_window.available()
    }

    /// Returns how much the peer may still send on the connection (our receive window).
    pub fn connection_recv_window(&self) -> i64 {
        self.recv_window.get()
    }

    /// Returns how much the peer may still send on a stream (our receive window for it).
    pub fn stream_recv_window(&self, id: StreamId) -> Option<i64> {
        self.streams.get(&id).map(|s| s.recv_window.get())
    }
}

fn conn_err(reason: Reason, detail: &'static str) -> Error {
    Error::connection(reason, detail)
}

fn stream_err(id: StreamId, reason: Reason, detail: &'static str) -> Error {
    Error::stream(id, reason, detail)
}
