//! A small DSL for scripting raw HTTP/2 frames against a sans-IO `Connection`, and an
//! in-memory client/server pair on a virtual clock.
//!
//! `Peer` plays the other end by hand: it builds frames with the crate's own encoders (or raw
//! bytes for malformed ones), feeds them to the connection under test, and decodes what the
//! connection writes back.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use grpc_sync::h2::conn::{Connection, ConnectionError, Event, Role, PREFACE};
use grpc_sync::h2::error::Reason;
use grpc_sync::h2::frame::{
    self, kind, Continuation, Data, Frame, GoAway, Headers, Ping, Priority, PrioritySpec,
    RstStream, Settings, StreamId, WindowUpdate, MAX_MAX_FRAME_SIZE,
};
use grpc_sync::h2::hpack::{Decoder, Encoder, Header};
use grpc_sync::h2::settings::Config;

/// Builds a header list from `(name, value)` pairs.
pub fn hs(list: &[(&str, &str)]) -> Vec<Header> {
    list.iter()
        .map(|(n, v)| {
            Header::new(
                Bytes::copy_from_slice(n.as_bytes()),
                Bytes::copy_from_slice(v.as_bytes()),
            )
        })
        .collect()
}

/// A valid gRPC request head.
pub fn request() -> Vec<Header> {
    hs(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/pkg.Svc/Method"),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ])
}

/// A gRPC response head.
pub fn response() -> Vec<Header> {
    hs(&[(":status", "200"), ("content-type", "application/grpc")])
}

/// gRPC trailers.
pub fn trailers() -> Vec<Header> {
    hs(&[("grpc-status", "0"), ("grpc-message", "ok")])
}

/// One raw frame, no checks at all.
pub fn raw(kind: u8, flags: u8, stream_id: StreamId, payload: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    let len = (payload.len() as u32).to_be_bytes();
    buf.put_slice(&len[1..]);
    buf.put_u8(kind);
    buf.put_u8(flags);
    buf.put_u32(stream_id);
    buf.put_slice(payload);
    buf
}

fn enc(f: impl Into<Frame>) -> BytesMut {
    let mut buf = BytesMut::new();
    f.into().encode(&mut buf);
    buf
}

/// DATA.
pub fn data(id: StreamId, payload: &[u8], end_stream: bool) -> BytesMut {
    enc(Data::new(id, Bytes::copy_from_slice(payload), end_stream))
}

/// DATA with `pad` octets of padding.
pub fn data_padded(id: StreamId, payload: &[u8], pad: u8, end_stream: bool) -> BytesMut {
    let mut buf = BytesMut::new();
    Data::new(id, Bytes::copy_from_slice(payload), end_stream).encode_padded(pad, &mut buf);
    buf
}

/// HEADERS carrying an already-encoded block fragment.
pub fn headers_frame(id: StreamId, block: &[u8], end_stream: bool, end_headers: bool) -> BytesMut {
    enc(Headers::new(
        id,
        Bytes::copy_from_slice(block),
        end_stream,
        end_headers,
    ))
}

/// HEADERS with a priority that depends on `dep`.
pub fn headers_with_priority(
    id: StreamId,
    block: &[u8],
    dep: StreamId,
    end_stream: bool,
) -> BytesMut {
    let mut h = Headers::new(id, Bytes::copy_from_slice(block), end_stream, true);
    h.priority = Some(PrioritySpec {
        dependency: dep,
        exclusive: false,
        weight: 16,
    });
    enc(h)
}

/// CONTINUATION.
pub fn continuation(id: StreamId, block: &[u8], end_headers: bool) -> BytesMut {
    enc(Continuation {
        stream_id: id,
        fragment: Bytes::copy_from_slice(block),
        end_headers,
    })
}

/// SETTINGS.
pub fn settings(s: Settings) -> BytesMut {
    enc(s)
}

/// SETTINGS ACK.
pub fn settings_ack() -> BytesMut {
    enc(Settings::ack())
}

/// PING.
pub fn ping(payload: [u8; 8]) -> BytesMut {
    enc(Ping::new(payload))
}

/// PING ACK.
pub fn pong(payload: [u8; 8]) -> BytesMut {
    enc(Ping::pong(payload))
}

/// RST_STREAM.
pub fn rst(id: StreamId, reason: Reason) -> BytesMut {
    enc(RstStream::new(id, reason))
}

/// WINDOW_UPDATE.
pub fn window_update(id: StreamId, inc: u32) -> BytesMut {
    if inc == 0 {
        return raw(kind::WINDOW_UPDATE, 0, id, &[0, 0, 0, 0]);
    }
    enc(WindowUpdate::new(id, inc))
}

/// GOAWAY.
pub fn goaway(last: StreamId, reason: Reason) -> BytesMut {
    enc(GoAway::new(last, reason, Bytes::new()))
}

/// PRIORITY.
pub fn priority(id: StreamId, dep: StreamId) -> BytesMut {
    enc(Priority {
        stream_id: id,
        spec: PrioritySpec {
            dependency: dep,
            exclusive: false,
            weight: 16,
        },
    })
}

/// Concatenates frames.
pub fn cat(frames: &[BytesMut]) -> BytesMut {
    let mut out = BytesMut::new();
    for f in frames {
        out.extend_from_slice(f);
    }
    out
}

/// The scripted other end of a connection under test.
pub struct Peer {
    /// The connection under test.
    pub conn: Connection,
    /// Our HPACK encoder (towards `conn`).
    pub enc: Encoder,
    /// Our HPACK decoder (for what `conn` sends).
    pub dec: Decoder,
    /// The virtual clock.
    pub now: Instant,
    /// Bytes `conn` wrote that are not decoded yet.
    inbuf: BytesMut,
    /// Frames `conn` wrote, decoded, not yet examined.
    pub frames: Vec<Frame>,
    /// The result of the last `send`.
    pub last: Result<(), ConnectionError>,
}

impl Peer {
    /// A server under test, handshake done (we are the client).
    pub fn server() -> Peer {
        Peer::server_with(Config::default())
    }

    /// A server under test with `config`, handshake done: preface, both SETTINGS, both ACKs.
    pub fn server_with(config: Config) -> Peer {
        Peer::new(Role::Server, config).handshaken()
    }

    /// Runs the handshake on a server under test that has seen nothing yet.
    pub fn handshaken(self) -> Peer {
        let mut p = self;
        let mut hello = BytesMut::from(&PREFACE[..]);
        hello.extend_from_slice(&settings(Settings::default()));
        p.send(&hello).unwrap();
        p.send(&settings_ack()).unwrap();
        p.take_frames();
        p.drain_events();
        p
    }

    /// A server under test that has not seen anything yet.
    pub fn server_raw(config: Config) -> Peer {
        Peer::new(Role::Server, config)
    }

    /// A client under test, handshake done (we are the server).
    pub fn client() -> Peer {
        Peer::client_with(Config::default())
    }

    /// A client under test with `config`, handshake done.
    pub fn client_with(config: Config) -> Peer {
        let mut p = Peer::new(Role::Client, config);
        let out = p.conn.take_output();
        assert!(out.starts_with(PREFACE));
        p.inbuf.extend_from_slice(&out[PREFACE.len()..]);
        p.send(&settings(Settings::default())).unwrap();
        p.send(&settings_ack()).unwrap();
        p.take_frames();
        p.drain_events();
        p
    }

    /// A connection under test, nothing exchanged. BDP probing is off (its PINGs would be
    /// extra frames in every exchange); [`Peer::with_bdp`] keeps it as configured.
    pub fn new(role: Role, config: Config) -> Peer {
        Peer::with_bdp(
            role,
            Config {
                bdp_probe: false,
                ..config
            },
        )
    }

    /// A connection under test with `config` exactly (BDP probing as it says).
    pub fn with_bdp(role: Role, config: Config) -> Peer {
        Peer {
            conn: Connection::new(role, config),
            enc: Encoder::new(),
            dec: Decoder::new(4096),
            now: Instant::now(),
            inbuf: BytesMut::new(),
            frames: Vec::new(),
            last: Ok(()),
        }
    }

    /// Feeds bytes to the connection under test (and collects what it writes).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        self.last = self.conn.recv(bytes, self.now);
        self.collect();
        self.last.clone()
    }

    /// Advances the virtual clock.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Moves the connection's output into our decoded frame list.
    pub fn collect(&mut self) {
        let out = self.conn.take_output();
        self.inbuf.extend_from_slice(&out);
        while let Some(f) =
            frame::decode(&mut self.inbuf, MAX_MAX_FRAME_SIZE).expect("valid frames from conn")
        {
            self.frames.push(f);
        }
    }

    /// Returns and forgets the frames the connection wrote so far.
    pub fn take_frames(&mut self) -> Vec<Frame> {
        self.collect();
        std::mem::take(&mut self.frames)
    }

    /// Returns every pending event.
    pub fn drain_events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    /// Encodes a header block with our encoder.
    pub fn block(&mut self, headers: &[Header]) -> BytesMut {
        let mut b = BytesMut::new();
        self.enc.encode_headers(headers, &mut b);
        b
    }

    /// A HEADERS frame (END_HEADERS) with `headers` encoded by our encoder.
    pub fn headers(&mut self, id: StreamId, headers: &[Header], end_stream: bool) -> BytesMut {
        let b = self.block(headers);
        headers_frame(id, &b, end_stream, true)
    }

    /// Opens stream `id` with a valid request (server under test) and drains the event.
    pub fn open(&mut self, id: StreamId, end_stream: bool) {
        let f = self.headers(id, &request(), end_stream);
        self.send(&f).unwrap();
        let mut ev = self.drain_events();
        ev.retain(|e| !matches!(e, Event::RemoteSettings | Event::SendCapacity { .. }));
        assert!(
            matches!(ev.as_slice(), [Event::Headers { stream_id, .. }] if *stream_id == id),
            "expected the request head on {id}, got {ev:?}"
        );
    }

    /// Asserts the connection sent GOAWAY with `reason` and `recv` failed with it.
    pub fn expect_goaway(&mut self, reason: Reason) {
        let frames = self.take_frames();
        let found = frames
            .iter()
            .any(|f| matches!(f, Frame::GoAway(g) if g.reason == reason));
        assert!(found, "expected GOAWAY {reason:?}, got {frames:?}");
        assert_eq!(
            self.last.as_ref().err().map(|e| e.reason()),
            Some(reason),
            "recv result: {:?}",
            self.last
        );
        assert!(self.conn.is_closed());
    }

    /// Asserts the connection sent RST_STREAM(id, reason) and is still alive.
    pub fn expect_rst(&mut self, id: StreamId, reason: Reason) {
        let frames = self.take_frames();
        let found = frames
            .iter()
            .any(|f| matches!(f, Frame::RstStream(r) if r.stream_id == id && r.reason == reason));
        assert!(
            found,
            "expected RST_STREAM({id}, {reason:?}), got {frames:?}"
        );
        assert!(self.last.is_ok(), "connection failed: {:?}", self.last);
        assert!(
            !frames.iter().any(|f| matches!(f, Frame::GoAway(_))),
            "unexpected GOAWAY: {frames:?}"
        );
    }

    /// Asserts nothing but maybe WINDOW_UPDATEs was written and the connection is alive.
    pub fn expect_quiet(&mut self) {
        let frames = self.take_frames();
        assert!(self.last.is_ok(), "connection failed: {:?}", self.last);
        assert!(
            frames.iter().all(|f| matches!(f, Frame::WindowUpdate(_))),
            "unexpected frames: {frames:?}"
        );
    }

    /// Decodes a header block the connection sent.
    pub fn decode_block(&mut self, block: &[u8]) -> Vec<Header> {
        let mut out = Vec::new();
        self.dec.decode(block, usize::MAX, |h| out.push(h)).unwrap();
        out
    }

    /// Checks the connection is still alive and well: a PING gets its ACK.
    pub fn assert_alive(&mut self) {
        self.send(&ping(*b"alive?!!")).expect("connection alive");
        let frames = self.take_frames();
        assert!(
            frames
                .iter()
                .any(|f| matches!(f, Frame::Ping(p) if p.ack && p.payload == *b"alive?!!")),
            "no PING ACK in {frames:?}"
        );
    }
}

/// A client and a server `Connection` wired back to back through in-memory buffers.
pub struct Pair {
    /// The client side.
    pub client: Connection,
    /// The server side.
    pub server: Connection,
    /// The virtual clock.
    pub now: Instant,
    /// Feed bytes one at a time instead of in whole writes.
    pub byte_by_byte: bool,
    /// Events seen by the client, in order.
    pub client_events: Vec<Event>,
    /// Events seen by the server, in order.
    pub server_events: Vec<Event>,
}

impl Pair {
    /// Creates the pair with default configs and runs the handshake.
    pub fn new() -> Pair {
        Pair::with(Config::default(), Config::default(), false)
    }

    /// Creates the pair and runs the handshake.
    pub fn with(client: Config, server: Config, byte_by_byte: bool) -> Pair {
        let mut p = Pair {
            client: Connection::new(Role::Client, client),
            server: Connection::new(Role::Server, server),
            now: Instant::now(),
            byte_by_byte,
            client_events: Vec::new(),
            server_events: Vec::new(),
        };
        p.pump();
        p
    }

    /// Moves bytes both ways until neither side has output; collects events.
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            let c = self.client.take_output();
            let s = self.server.take_output();
            if c.is_empty() && s.is_empty() {
                return;
            }
            Self::feed(&mut self.server, &c, self.now, self.byte_by_byte);
            Self::feed(&mut self.client, &s, self.now, self.byte_by_byte);
            self.client_events
                .extend(std::iter::from_fn(|| self.client.poll_event()));
            self.server_events
                .extend(std::iter::from_fn(|| self.server.poll_event()));
        }
        panic!("pump did not settle");
    }

    fn feed(conn: &mut Connection, bytes: &[u8], now: Instant, byte_by_byte: bool) {
        if byte_by_byte {
            for b in bytes {
                conn.recv(std::slice::from_ref(b), now).expect("recv");
            }
        } else {
            conn.recv(bytes, now).expect("recv");
        }
    }
}
