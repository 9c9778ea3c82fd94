//! Shared driver for the `conn_server` and `conn_client` targets.
//!
//! The input is a script of operations, one control byte each (plus arguments): feed the next
//! chunk of peer bytes (split at an arbitrary point), take the output, advance the clock, or
//! issue an application command (send headers/data/trailers, reset, release capacity, ping,
//! GOAWAY, and for a client open a stream).
//!
//! Properties: never panics; every byte the connection writes parses as HTTP/2 frames
//! (never a malformed frame) and its header blocks decode with HPACK; `StreamClosed` comes
//! at most once per stream and nothing arrives for a stream after it; after a connection
//! error, `recv` returns that error again.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use grpc_sync::h2::conn::{Connection, Event, Role, PREFACE};
use grpc_sync::h2::error::Reason;
use grpc_sync::h2::frame::{self, Frame, MAX_MAX_FRAME_SIZE};
use grpc_sync::h2::hpack::{Decoder, Header};
use grpc_sync::h2::settings::Config;

/// Reads the connection's output as its peer would, checking that it is well-formed.
struct OutputChecker {
    buf: BytesMut,
    preface_left: usize,
    hpack: Decoder,
    block: Option<Vec<u8>>,
}

impl OutputChecker {
    fn new(role: Role) -> OutputChecker {
        let mut hpack = Decoder::new(4096);
        // Accept whatever size update the encoder emits (it follows the fuzzed peer's
        // SETTINGS_HEADER_TABLE_SIZE).
        hpack.set_max_table_size(u32::MAX as usize);
        OutputChecker {
            buf: BytesMut::new(),
            preface_left: if role == Role::Client {
                PREFACE.len()
            } else {
                0
            },
            hpack,
            block: None,
        }
    }

    fn feed(&mut self, out: &[u8]) {
        self.buf.extend_from_slice(out);
        if self.preface_left > 0 {
            let n = self.preface_left.min(self.buf.len());
            let start = PREFACE.len() - self.preface_left;
            assert_eq!(&self.buf[..n], &PREFACE[start..start + n], "client preface");
            let _ = self.buf.split_to(n);
            self.preface_left -= n;
        }
        loop {
            let f = match frame::decode(&mut self.buf, MAX_MAX_FRAME_SIZE) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => panic!("the connection wrote an invalid frame: {e}"),
            };
            match f {
                Frame::Headers(h) => {
                    assert!(self.block.is_none(), "HEADERS inside a header block");
                    self.block = Some(h.fragment.to_vec());
                    if h.end_headers {
                        self.end_block();
                    }
                }
                Frame::Continuation(c) => {
                    let block = self.block.as_mut().expect("CONTINUATION without HEADERS");
                    block.extend_from_slice(&c.fragment);
                    if c.end_headers {
                        self.end_block();
                    }
                }
                _ => assert!(self.block.is_none(), "frame inside a header block"),
            }
        }
    }

    fn end_block(&mut self) {
        let block = self.block.take().unwrap_or_default();
        self.hpack
            .decode(&block, usize::MAX, |_| {})
            .unwrap_or_else(|e| panic!("the connection wrote an undecodable header block: {e}"));
    }
}

/// A little reader over the fuzz input.
pub struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    pub fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte().unwrap_or(0), self.byte().unwrap_or(0)])
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

fn config(sel: u8) -> Config {
    let mut c = Config::default();
    if sel & 1 != 0 {
        // Small limits, so that flow control, flood and size checks trigger easily.
        c.header_table_size = 64;
        c.max_concurrent_streams = 2;
        c.initial_window_size = 100;
        c.connection_window_size = 65_535;
        c.max_header_list_size = 200;
        c.max_pending_control_frames = 4;
        c.max_resets_per_second = 3;
        c.max_empty_frames = 3;
        c.closed_stream_memory = 2;
    }
    if sel & 2 != 0 {
        c.max_frame_size = MAX_MAX_FRAME_SIZE;
        c.header_table_size = 0;
    }
    c
}

const REASONS: [Reason; 4] = [
    Reason::CANCEL,
    Reason::NO_ERROR,
    Reason::PROTOCOL_ERROR,
    Reason::INTERNAL_ERROR,
];

fn request_head() -> Vec<Header> {
    vec![
        Header::new(&b":method"[..], &b"POST"[..]),
        Header::new(&b":scheme"[..], &b"http"[..]),
        Header::new(&b":path"[..], &b"/pkg.Svc/Method"[..]),
        Header::new(&b":authority"[..], &b"localhost"[..]),
        Header::new(&b"content-type"[..], &b"application/grpc"[..]),
        Header::new(&b"te"[..], &b"trailers"[..]),
    ]
}

fn response_head() -> Vec<Header> {
    vec![
        Header::new(&b":status"[..], &b"200"[..]),
        Header::new(&b"content-type"[..], &b"application/grpc"[..]),
    ]
}

fn trailers() -> Vec<Header> {
    vec![
        Header::new(&b"grpc-status"[..], &b"0"[..]),
        Header::new_sensitive(&b"x-secret"[..], &b"v"[..]),
    ]
}

pub fn run(role: Role, data: &[u8]) {
    let mut input = Input(data);
    let Some(sel) = input.byte() else {
        return;
    };
    let mut conn = Connection::new(role, config(sel));
    let mut checker = OutputChecker::new(role);
    let start = Instant::now();
    let mut now = start;
    let mut ids: Vec<u32> = Vec::new();
    let mut closed: HashSet<u32> = HashSet::new();
    let mut failed = None;
    if role == Role::Server && sel & 4 == 0 {
        feed(&mut conn, PREFACE, now, &mut failed);
    }
    let payload = [0x5au8; 70_000];

    while let Some(op) = input.byte() {
        let pick = |ids: &Vec<u32>, b: u8| -> u32 {
            if ids.is_empty() {
                u32::from(b) // also try ids the application never saw
            } else {
                ids[usize::from(b) % ids.len()]
            }
        };
        match op % 16 {
            // Peer bytes are the most common operation.
            0..=6 => {
                let n = usize::from(input.u16()) % 4096;
                let chunk = input.take(n);
                feed(&mut conn, chunk, now, &mut failed);
            }
            7 => checker.feed(&conn.take_output()),
            8 => now += Duration::from_millis(u64::from(input.byte().unwrap_or(0)) * 10),
            9 => {
                let id = pick(&ids, input.byte().unwrap_or(0));
                let end = op & 0x10 != 0;
                let h = if role == Role::Server {
                    response_head()
                } else {
                    request_head()
                };
                let _ = conn.send_headers(id, &h, end);
            }
            10 => {
                let id = pick(&ids, input.byte().unwrap_or(0));
                let n = usize::from(input.u16()) * 2;
                let _ = conn.send_capacity(id);
                let _ = conn.send_data(id, &payload[..n.min(payload.len())], op & 0x10 != 0);
            }
            11 => {
                let id = pick(&ids, input.byte().unwrap_or(0));
                let _ = conn.send_trailers(id, &trailers());
            }
            12 => {
                let b = input.byte().unwrap_or(0);
                let id = pick(&ids, b);
                conn.reset(id, REASONS[usize::from(b >> 6)]);
            }
            13 => {
                let id = pick(&ids, input.byte().unwrap_or(0));
                let n = usize::from(input.u16()) * 16;
                conn.release_capacity(id, n);
            }
            14 => {
                if role == Role::Client && op & 0x10 == 0 {
                    if let Ok(id) = conn.open_stream(&request_head(), op & 0x20 != 0) {
                        ids.push(id);
                    }
                } else {
                    conn.ping(*b"fuzzping");
                }
            }
            _ => {
                let b = input.byte().unwrap_or(0);
                conn.go_away(REASONS[usize::from(b & 3)], b"fuzz");
            }
        }
        drain(&mut conn, &mut ids, &mut closed);
        // A driver writes the output at least this often (and the peer reads it).
        if conn.output().len() > 1 << 20 {
            checker.feed(&conn.take_output());
        }
        let _ = (
            conn.is_closed(),
            conn.open_streams(),
            conn.can_open_stream(),
        );
        let _ = (
            conn.connection_send_capacity(),
            conn.connection_recv_window(),
        );
    }
    drain(&mut conn, &mut ids, &mut closed);
    checker.feed(&conn.take_output());
    if failed.is_some() {
        assert!(conn.is_closed(), "connection not closed after an error");
    }
}

fn feed(
    conn: &mut Connection,
    chunk: &[u8],
    now: Instant,
    failed: &mut Option<grpc_sync::h2::conn::ConnectionError>,
) {
    let res = conn.recv(chunk, now);
    if let Some(prev) = failed {
        assert_eq!(
            res.as_ref().err(),
            Some(&*prev),
            "connection error not sticky"
        );
    } else if let Err(e) = res {
        let _ = (e.to_string(), e.reason());
        *failed = Some(e);
    }
}

fn drain(conn: &mut Connection, ids: &mut Vec<u32>, closed: &mut HashSet<u32>) {
    while let Some(ev) = conn.poll_event() {
        let live = |id: u32, closed: &HashSet<u32>| {
            assert!(
                !closed.contains(&id),
                "event for stream {id} after StreamClosed: {ev:?}"
            );
        };
        match &ev {
            Event::Headers { stream_id, .. } => {
                live(*stream_id, closed);
                if !ids.contains(stream_id) {
                    ids.push(*stream_id);
                }
            }
            Event::Data { stream_id, .. } => live(*stream_id, closed),
            Event::Reset { stream_id, .. } => live(*stream_id, closed),
            Event::StreamClosed { stream_id } => {
                assert!(
                    closed.insert(*stream_id),
                    "StreamClosed twice for {stream_id}"
                );
            }
            _ => {}
        }
    }
}
