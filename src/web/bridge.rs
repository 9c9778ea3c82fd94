//! HTTP/1.1 requests carried into the server's own HTTP/2 machinery, so that they go through
//! the same dispatch as every gRPC call (routing, pool, limits, deadlines, interceptors, the
//! output budget and the send-stall timeout).
//!
//! A [`Bridge`] sits between an HTTP/1.1 socket and the connection's server-side HTTP/2
//! machine. It holds a client-role [`Connection`] that speaks to that machine in memory: each
//! HTTP/1.1 request becomes a stream (its head a HEADERS frame, its body DATA), and what the
//! server answers on the stream becomes the HTTP/1.1 response (status line, fields, a body
//! with `Content-Length` when the whole response came at once, chunked otherwise). The
//! gRPC-Web rules themselves (content-type, CORS, trailers in the body, base64) are applied
//! on the server side to any gRPC-Web stream, whichever transport carries it.
//!
//! Sans-IO like the rest: bytes from the socket go in with [`Bridge::recv_client`], the
//! machine's input comes out of [`Bridge::take_for_server`]; the machine's output goes in with
//! [`Bridge::recv_server`], the socket's bytes come out of [`Bridge::take_out`]. Timers:
//! [`Bridge::poll_timeout`] / [`Bridge::handle_timeout`]. One request at a time: pipelined
//! requests wait in the parser's buffer (bounded: see [`Bridge::wants_read`]) until the
//! response before them has gone.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use crate::h2::conn::{Connection, Event, Role};
use crate::h2::error::Reason;
use crate::h2::frame::StreamId;
use crate::h2::hpack::Header;
use crate::h2::settings::Config;
use crate::web::http1::{self, HttpError, Item, Parser};

/// Unparsed input held while a request waits for its response, at most (then the socket is
/// not read).
const MAX_BUFFERED: usize = 64 * 1024;

/// Request body bytes waiting for the machine's window, at most (then the socket is not read).
const MAX_PENDING_BODY: usize = 1024 * 1024;

/// Fields that belong to one HTTP/1.1 connection, not to the request (RFC 9113 §8.2.2), or
/// that the bridge itself answers.
const HOP_BY_HOP: &[&[u8]] = &[
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
    b"host",
    b"content-length",
    b"expect",
    b"te",
    b"http2-settings",
];

/// Limits and timeouts of an HTTP/1.1 connection.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// A request head, at most (bytes).
    pub max_head: usize,
    /// A request body, at most (bytes).
    pub max_body: u64,
    /// A request's head must arrive whole, and its body must not stall, for longer than this.
    pub request_timeout: Duration,
    /// Between requests, the connection is closed after this.
    pub idle_timeout: Duration,
}

/// The request and response in progress.
#[derive(Debug)]
struct Exchange {
    id: StreamId,
    keep_alive: bool,
    /// HTTP/1.0: no chunked coding; a streamed response ends with the connection.
    http10: bool,
    /// The whole request has been handed to the machine.
    request_done: bool,
    /// The response head, held until the end of a batch of the machine's output (the whole
    /// response may be in it: then it goes with `Content-Length`).
    held: Option<(u16, Vec<Header>, BytesMut)>,
    /// The response head has gone to the socket.
    head_written: bool,
    /// The response body is chunked.
    chunked: bool,
    /// The machine's response head arrived.
    head_seen: bool,
}

/// One HTTP/1.1 connection's bridge to the server's HTTP/2 machine.
pub(crate) struct Bridge {
    parser: Parser,
    client: Connection,
    scheme: &'static [u8],
    limits: Limits,
    cur: Option<Exchange>,
    /// Request body not yet taken by the machine's window.
    pending: VecDeque<Bytes>,
    pending_bytes: usize,
    /// The request's end is still to be sent, after `pending`.
    end_pending: bool,
    /// HTTP/1.1 bytes for the socket.
    out: BytesMut,
    /// Close the connection once `out` is written.
    closing: bool,
    /// The server is going away: no new request.
    going_away: bool,
    /// When the current request head began.
    head_since: Option<Instant>,
    /// The last input, for the body's stall timeout.
    last_input: Instant,
    /// Since when the connection has been between requests.
    idle_since: Option<Instant>,
}

impl Bridge {
    /// A bridge for a connection on a `tls` (https) or plain port, its first request starting
    /// `now`.
    pub fn new(tls: bool, limits: Limits, now: Instant) -> Bridge {
        let config = Config {
            // The responses' window: the server's output budget bounds what is queued anyway,
            // and a large window saves WINDOW_UPDATE round trips through the loop.
            initial_window_size: 4 << 20,
            connection_window_size: 16 << 20,
            bdp_probe: false,
            settings_timeout: None,
            ..Config::default()
        };
        Bridge {
            parser: Parser::new(limits.max_head, limits.max_body),
            client: Connection::new(Role::Client, config),
            scheme: if tls { b"https" } else { b"http" },
            limits,
            cur: None,
            pending: VecDeque::new(),
            pending_bytes: 0,
            end_pending: false,
            out: BytesMut::new(),
            closing: false,
            going_away: false,
            head_since: Some(now),
            last_input: now,
            // A connection that never sends a request is closed as an idle one.
            idle_since: Some(now),
        }
    }

    /// Bytes read from the socket.
    pub fn recv_client(&mut self, bytes: &[u8], now: Instant) {
        if self.closing {
            return;
        }
        if !bytes.is_empty() {
            self.last_input = now;
            self.parser.push(bytes);
        }
        self.advance(now);
    }

    /// What the machine must read next (the preface and SETTINGS first, then the requests).
    pub fn take_for_server(&mut self) -> BytesMut {
        self.client.output().split()
    }

    /// Whether [`take_for_server`](Self::take_for_server) has bytes.
    pub fn has_input_for_server(&self) -> bool {
        self.client.has_output()
    }

    /// The machine's output (what a socket would have been sent).
    pub fn recv_server(&mut self, bytes: &[u8], now: Instant) {
        if !bytes.is_empty() && self.client.recv(bytes, now).is_err() {
            // Our own server's output does not parse: nothing sensible left to do.
            self.abort();
            return;
        }
        while let Some(ev) = self.client.poll_event() {
            match ev {
                Event::Headers {
                    stream_id,
                    headers,
                    end_stream,
                } => self.on_headers(stream_id, headers, end_stream, now),
                Event::Data {
                    stream_id,
                    data,
                    end_stream,
                } => {
                    self.client.release_capacity(stream_id, data.len());
                    self.on_data(stream_id, &data, end_stream, now);
                }
                Event::Reset { stream_id, .. } => self.on_reset(stream_id),
                Event::GoAway { .. } => {
                    self.going_away = true;
                    if self.cur.is_none() {
                        self.closing = true;
                    }
                }
                _ => {}
            }
        }
        self.write_held();
        self.push_body();
    }

    /// HTTP/1.1 bytes for the socket.
    pub fn take_out(&mut self) -> BytesMut {
        self.out.split()
    }

    /// Whether there are bytes for the socket.
    pub fn has_out(&self) -> bool {
        !self.out.is_empty()
    }

    /// Whether the connection should be closed once what was taken is written.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Whether the socket should be read: not while closing, nor while a waiting request's
    /// successors or its body pile up.
    pub fn wants_read(&self) -> bool {
        !self.closing
            && self.parser.buffered() < MAX_BUFFERED
            && self.pending_bytes < MAX_PENDING_BODY
    }

    /// When the bridge next needs the clock.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closing {
            return None;
        }
        let t = self.limits.request_timeout;
        match &self.cur {
            None if self.parser.has_input() => self.head_since.map(|s| s + t),
            None => self.idle_since.map(|s| s + self.limits.idle_timeout),
            Some(x) if !x.request_done && !self.end_pending => Some(self.last_input + t),
            Some(_) => None,
        }
    }

    /// Serves the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|t| t <= now) {
            if self.cur.is_none() && !self.parser.has_input() {
                // Idle between requests: a quiet close.
                self.closing = true;
                return;
            }
            let t = self.limits.request_timeout;
            let what = if self.cur.is_none() {
                "head"
            } else {
                "body (no bytes for that long)"
            };
            self.fail(&HttpError {
                status: 408,
                message: format!("the request {what} did not arrive within {t:?}"),
            });
        }
    }

    /// The server is done with the connection (stopping, or its machine failed).
    pub fn abort(&mut self) {
        self.closing = true;
    }

    fn advance(&mut self, now: Instant) {
        loop {
            if self.closing {
                return;
            }
            if self.cur.is_none() && self.head_since.is_none() && self.parser.has_input() {
                self.head_since = Some(now);
            }
            match self.parser.next() {
                Err(e) => {
                    self.fail(&e);
                    return;
                }
                Ok(None) => break,
                Ok(Some(Item::Head)) => {
                    self.head_since = None;
                    self.idle_since = None;
                    self.start_request();
                }
                Ok(Some(Item::Body(b))) => {
                    self.pending_bytes += b.len();
                    self.pending.push_back(b);
                }
                Ok(Some(Item::End)) => {
                    if self.cur.as_ref().is_some_and(|x| !x.request_done) {
                        self.end_pending = true;
                    }
                }
            }
        }
        self.push_body();
    }

    fn start_request(&mut self) {
        let Some(head) = self.parser.take_head() else {
            return;
        };
        if head.method != "POST" && head.method != "OPTIONS" {
            let e = HttpError {
                status: 405,
                message: format!(
                    "this is a gRPC server: it takes gRPC-Web requests (POST) and CORS \
                     preflights (OPTIONS), not {}",
                    head.method
                ),
            };
            return self.fail(&e);
        }
        if !head.path.starts_with('/') {
            return self.fail(&HttpError {
                status: 400,
                message: "the request target must be a path (/package.Service/Method)".into(),
            });
        }
        let native = head.get(b"content-type").is_some_and(|ct| {
            let ct = ct.to_ascii_lowercase();
            ct.starts_with(b"application/grpc") && !ct.starts_with(b"application/grpc-web")
        });
        if native {
            return self.fail(&HttpError {
                status: 415,
                message: "gRPC needs HTTP/2 (its status travels in HTTP/2 trailers): send \
                          application/grpc over HTTP/2, or application/grpc-web over HTTP/1.1"
                    .into(),
            });
        }
        if self.going_away {
            return self.fail(&HttpError {
                status: 503,
                message: "the server is shutting down".into(),
            });
        }
        let mut h = Vec::with_capacity(head.headers.len() + 4);
        h.push(Header::new(
            Bytes::from_static(b":method"),
            Bytes::from(head.method.clone()),
        ));
        h.push(Header::new(
            Bytes::from_static(b":scheme"),
            Bytes::from_static(self.scheme),
        ));
        h.push(Header::new(
            Bytes::from_static(b":path"),
            Bytes::from(head.path.clone()),
        ));
        if let Some(host) = head.get(b"host") {
            h.push(Header::new(Bytes::from_static(b":authority"), host.clone()));
        }
        for (name, value) in &head.headers {
            if !HOP_BY_HOP.contains(&&name[..]) {
                h.push(Header::new(name.clone(), value.clone()));
            }
        }
        let id = match self.client.open_stream(&h, head.empty_body) {
            Ok(id) => id,
            Err(e) => {
                return self.fail(&HttpError {
                    status: 503,
                    message: format!("the request cannot be taken now ({e:?})"),
                })
            }
        };
        if head.expect_continue {
            http1::encode_head(100, &[], &mut self.out);
        }
        self.cur = Some(Exchange {
            id,
            keep_alive: head.keep_alive,
            http10: head.minor == 0,
            request_done: head.empty_body,
            held: None,
            head_written: false,
            chunked: false,
            head_seen: false,
        });
    }

    /// Hands the machine what its window takes of the request body, then the end.
    fn push_body(&mut self) {
        let Some(x) = &mut self.cur else {
            return;
        };
        while let Some(front) = self.pending.front_mut() {
            match self.client.send_data(x.id, front, false) {
                Ok(n) => {
                    self.pending_bytes -= n;
                    if n < front.len() {
                        front.advance(n);
                        return;
                    }
                    self.pending.pop_front();
                }
                Err(_) => {
                    // The server is done with the stream (it answered early): drop the rest.
                    self.pending.clear();
                    self.pending_bytes = 0;
                    self.end_pending = false;
                    x.request_done = true;
                    return;
                }
            }
        }
        if self.end_pending {
            self.end_pending = false;
            x.request_done = true;
            let _ = self.client.send_data(x.id, &[], true);
        }
    }

    fn on_headers(&mut self, id: StreamId, headers: Vec<Header>, end: bool, now: Instant) {
        let Some(x) = self.cur.as_mut().filter(|x| x.id == id) else {
            return;
        };
        if !x.head_seen {
            x.head_seen = true;
            let status = Header::find(&headers, b":status")
                .and_then(|s| std::str::from_utf8(s).ok())
                .and_then(|s| s.parse().ok())
                .unwrap_or(500);
            x.held = Some((status, headers, BytesMut::new()));
        } else {
            // Trailers (a gRPC-Web response has none: its status is in the body). Sent as
            // a chunked trailer section if the head has gone chunked.
            self.write_held_head(false);
            let x = self.cur.as_mut().expect("checked above");
            if x.chunked && end {
                self.out.extend_from_slice(b"0\r\n");
                for f in headers.iter().filter(|f| !f.name.starts_with(b":")) {
                    self.out.extend_from_slice(&f.name);
                    self.out.extend_from_slice(b": ");
                    self.out.extend_from_slice(&f.value);
                    self.out.extend_from_slice(b"\r\n");
                }
                self.out.extend_from_slice(b"\r\n");
                return self.response_done(now, true);
            }
        }
        if end {
            self.response_done(now, false);
        }
    }

    fn on_data(&mut self, id: StreamId, data: &[u8], end: bool, now: Instant) {
        let Some(x) = self.cur.as_mut().filter(|x| x.id == id) else {
            return;
        };
        match &mut x.held {
            Some((_, _, body)) => body.extend_from_slice(data),
            None if x.chunked => http1::encode_chunk(data, &mut self.out),
            None => self.out.extend_from_slice(data),
        }
        if end {
            self.response_done(now, false);
        }
    }

    fn on_reset(&mut self, id: StreamId) {
        let Some(x) = self.cur.as_mut().filter(|x| x.id == id) else {
            return;
        };
        if x.head_written || x.held.is_some() {
            // Cut mid-response: HTTP/1.1 can only say so by closing before the body's end.
            self.write_held_head(false);
            self.pending.clear();
            self.pending_bytes = 0;
            self.closing = true;
            return;
        }
        self.fail(&HttpError {
            status: 503,
            message: "the server refused the request (busy or shutting down); try again".into(),
        });
    }

    /// The machine's response ended.
    fn response_done(&mut self, now: Instant, terminated: bool) {
        let Some(x) = self.cur.as_mut() else {
            return;
        };
        if !x.request_done || self.end_pending || !self.pending.is_empty() {
            // Answered before the request was all read: the rest of it cannot be skipped
            // reliably, so the connection closes after this response.
            x.keep_alive = false;
        }
        if self.going_away {
            x.keep_alive = false;
        }
        let x = self.cur.as_mut().expect("checked above");
        if let Some((status, headers, body)) = x.held.take() {
            // The whole response at once: with its length.
            let len = body.len().to_string();
            let keep = x.keep_alive;
            let http10 = x.http10;
            x.head_written = true;
            let mut fields = http1_fields(&headers);
            if status != 204 && status != 304 {
                fields.push((b"content-length", len.as_bytes()));
            }
            push_connection(&mut fields, keep, http10);
            http1::encode_head(status, &fields, &mut self.out);
            self.out.extend_from_slice(&body);
        } else if x.chunked && !terminated {
            self.out.extend_from_slice(b"0\r\n\r\n");
        } else if !x.chunked {
            // A close-delimited body (HTTP/1.0): the close ends it.
            x.keep_alive = false;
        }
        let keep = x.keep_alive;
        self.cur = None;
        self.pending.clear();
        self.pending_bytes = 0;
        self.end_pending = false;
        if !keep {
            self.closing = true;
            return;
        }
        self.idle_since = Some(now);
        self.parser.resume();
        // A pipelined request may be waiting already.
        self.advance(now);
    }

    /// At the end of a batch of the machine's output: a response head still held (its
    /// response goes on) leaves now, chunked.
    fn write_held(&mut self) {
        if self.cur.as_ref().is_some_and(|x| x.held.is_some()) {
            self.write_held_head(true);
        }
    }

    fn write_held_head(&mut self, more: bool) {
        let Some(x) = self.cur.as_mut() else {
            return;
        };
        let Some((status, headers, body)) = x.held.take() else {
            return;
        };
        x.head_written = true;
        if !x.request_done {
            // Answered before the request was all read: close after it.
            x.keep_alive = false;
        }
        let mut fields = http1_fields(&headers);
        if x.http10 {
            x.keep_alive = false;
        } else if more {
            x.chunked = true;
            fields.push((b"transfer-encoding", b"chunked"));
        }
        push_connection(&mut fields, x.keep_alive, x.http10);
        http1::encode_head(status, &fields, &mut self.out);
        if x.chunked {
            http1::encode_chunk(&body, &mut self.out);
        } else {
            self.out.extend_from_slice(&body);
        }
    }

    /// Answers `e` (if no response has begun) and closes; cancels the stream in progress.
    fn fail(&mut self, e: &HttpError) {
        let started = self.cur.as_ref().is_some_and(|x| x.head_written);
        if let Some(x) = self.cur.take() {
            self.client.reset(x.id, Reason::CANCEL);
        }
        if !started {
            http1::encode_error(e, &mut self.out);
        }
        self.pending.clear();
        self.pending_bytes = 0;
        self.closing = true;
    }
}

/// A response head's fields for HTTP/1.1: the HTTP/2 head without its pseudo-fields.
fn http1_fields(headers: &[Header]) -> Vec<(&[u8], &[u8])> {
    headers
        .iter()
        .filter(|h| !h.name.starts_with(b":"))
        .map(|h| (&h.name[..], &h.value[..]))
        .collect()
}

fn push_connection(fields: &mut Vec<(&[u8], &[u8])>, keep_alive: bool, http10: bool) {
    if !keep_alive {
        fields.push((b"connection", b"close"));
    } else if http10 {
        fields.push((b"connection", b"keep-alive"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_head: 16 * 1024,
            max_body: 1024,
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }

    /// A bridge and the server-side machine it talks to.
    fn pair(now: Instant) -> (Bridge, Connection) {
        (
            Bridge::new(false, limits(), now),
            Connection::new(Role::Server, Config::default()),
        )
    }

    /// Moves bytes both ways until neither side has any; returns the server's events.
    fn pump(b: &mut Bridge, server: &mut Connection, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            let to_server = b.take_for_server();
            let to_client = server.output().split();
            if to_server.is_empty() && to_client.is_empty() {
                return events;
            }
            server.recv(&to_server, now).unwrap();
            while let Some(ev) = server.poll_event() {
                events.push(ev);
            }
            b.recv_server(&to_client, now);
        }
    }

    const REQUEST: &[u8] = b"POST /a.B/C HTTP/1.1\r\nHost: example:1\r\nConnection: keep-alive\r\n\
        Content-Type: application/grpc-web\r\nX-User: u\r\nTransfer-Encoding: chunked\r\n\r\n\
        3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";

    #[test]
    fn a_request_split_anywhere_becomes_one_http2_stream() {
        for cut in 0..=REQUEST.len() {
            let now = Instant::now();
            let (mut b, mut server) = pair(now);
            b.recv_client(&REQUEST[..cut], now);
            let mut events = pump(&mut b, &mut server, now);
            b.recv_client(&REQUEST[cut..], now);
            events.extend(pump(&mut b, &mut server, now));
            let mut head = None;
            let mut body = Vec::new();
            let mut ended = false;
            for ev in events {
                match ev {
                    Event::Headers { headers, .. } => head = Some(headers),
                    Event::Data {
                        data, end_stream, ..
                    } => {
                        body.extend_from_slice(&data);
                        ended |= end_stream;
                    }
                    _ => {}
                }
            }
            let head = head.expect("a request head");
            let get = |n: &[u8]| Header::find(&head, n).map(<[u8]>::to_vec);
            assert_eq!(get(b":method").as_deref(), Some(&b"POST"[..]));
            assert_eq!(get(b":path").as_deref(), Some(&b"/a.B/C"[..]));
            assert_eq!(get(b":authority").as_deref(), Some(&b"example:1"[..]));
            assert_eq!(get(b":scheme").as_deref(), Some(&b"http"[..]));
            assert_eq!(get(b"x-user").as_deref(), Some(&b"u"[..]));
            for hop in [&b"connection"[..], b"transfer-encoding", b"host"] {
                assert!(get(hop).is_none());
            }
            assert_eq!(body, b"abcde", "cut at {cut}");
            assert!(ended);
        }
    }

    fn respond(server: &mut Connection, id: StreamId, status: &'static [u8], body: &[u8]) {
        let head = [
            Header::from_static(b":status", status),
            Header::from_static(b"content-type", b"application/grpc-web+proto"),
        ];
        server.send_headers(id, &head, false).unwrap();
        server.send_data(id, body, true).unwrap();
    }

    #[test]
    fn a_whole_response_gets_a_content_length_and_the_connection_stays() {
        let now = Instant::now();
        let (mut b, mut server) = pair(now);
        let mut two = REQUEST.to_vec();
        two.extend_from_slice(REQUEST);
        b.recv_client(&two, now);
        pump(&mut b, &mut server, now);
        respond(&mut server, 1, b"200", b"hello");
        pump(&mut b, &mut server, now);
        let out = b.take_out();
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("content-length: 5\r\n"));
        assert!(text.ends_with("\r\n\r\nhello"));
        assert!(!b.is_closing());
        // The pipelined request went to the server once the first response was out.
        assert!(server.is_stream_open(3) || server.stream_state(3).is_some());
        respond(&mut server, 3, b"200", b"again");
        pump(&mut b, &mut server, now);
        assert!(String::from_utf8_lossy(&b.take_out()).ends_with("again"));
    }

    #[test]
    fn timeouts_answer_408_and_close_idle_connections() {
        let now = Instant::now();
        let (mut b, _server) = pair(now);
        b.recv_client(b"POST /a.B/C HTTP/1.1\r\nHo", now);
        let due = b.poll_timeout().unwrap();
        assert_eq!(due, now + Duration::from_secs(10));
        b.handle_timeout(due);
        assert!(b.is_closing());
        let out = b.take_out();
        assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 408 Request Timeout"));

        let (mut b, _server) = pair(now);
        assert_eq!(b.poll_timeout(), Some(now + Duration::from_secs(60)));
        b.handle_timeout(now + Duration::from_secs(60));
        assert!(b.is_closing() && !b.has_out(), "idle: a quiet close");
    }
}
