//! HTTP/1.1 requests, sans-IO: a push parser for request heads (`httparse`) and bodies
//! (`Content-Length` or chunked), one request at a time, and the response head's encoding.
//!
//! Bytes go in with [`Parser::push`]; [`Parser::next`] gives what they complete: a
//! [`RequestHead`], pieces of the body as they arrive (split anywhere), then the end of the
//! request. After the end it gives nothing more until [`Parser::resume`] (the response went
//! out): pipelined requests wait in the buffer, bounded by the caller. Input that is not a
//! request we take is an [`HttpError`] with the 4xx/5xx status to answer before closing; the
//! parser is then spent. Limits: the head's size, the body's size; nothing here reads a clock.

use bytes::{Buf, Bytes, BytesMut};

/// Header fields in a request head, at most.
const MAX_HEADERS: usize = 100;

/// A chunk-size line (with extensions), at most.
const MAX_CHUNK_LINE: usize = 1024;

/// An HTTP error to answer with, then close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpError {
    pub status: u16,
    pub message: String,
}

impl HttpError {
    fn new(status: u16, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
        }
    }
}

/// The reason phrase for the statuses this server sends.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// A parsed request head.
#[derive(Debug, Clone)]
pub(crate) struct RequestHead {
    pub method: String,
    pub path: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Fields with lowercase names, in order.
    pub headers: Vec<(Bytes, Bytes)>,
    /// The connection may carry another request after this one.
    pub keep_alive: bool,
    /// The client waits for `100 Continue` before it sends the body.
    pub expect_continue: bool,
    /// The request has no body (nothing follows the head).
    pub empty_body: bool,
}

impl RequestHead {
    /// The value of the first field named `name` (lowercase).
    pub fn get(&self, name: &[u8]) -> Option<&Bytes> {
        self.headers
            .iter()
            .find(|(n, _)| &n[..] == name)
            .map(|(_, v)| v)
    }
}

/// What the parser found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// A request head (see [`Parser::head`]).
    Head,
    /// A piece of the request body.
    Body(Bytes),
    /// The request is complete.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    /// Chunked: expecting a chunk-size line.
    ChunkSize,
    /// Chunked: inside a chunk, bytes left.
    ChunkData(u64),
    /// Chunked: the CRLF after a chunk's data.
    ChunkEnd,
    /// Chunked: the trailer section after the last chunk.
    Trailers,
    /// The request is complete; waiting for [`Parser::resume`].
    Done,
    /// An error was returned; nothing more.
    Failed,
}

/// An HTTP/1.1 request parser for one connection.
#[derive(Debug)]
pub(crate) struct Parser {
    buf: BytesMut,
    state: State,
    head: Option<RequestHead>,
    max_head: usize,
    max_body: u64,
    /// The current request's body limit (`max_body`, or its base64 length in text mode).
    body_limit: u64,
    /// Body bytes of the current request so far.
    body_seen: u64,
    /// Trailer-section bytes so far.
    trailer_seen: usize,
}

impl Parser {
    /// A parser taking heads of at most `max_head` bytes and bodies of at most `max_body`
    /// (4/3 of it, plus some padding, for a base64 `application/grpc-web-text` body).
    pub fn new(max_head: usize, max_body: u64) -> Parser {
        Parser {
            buf: BytesMut::new(),
            state: State::Head,
            head: None,
            max_head,
            max_body,
            body_limit: max_body,
            body_seen: 0,
            trailer_seen: 0,
        }
    }

    /// Adds bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not yet parsed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether another request could be parsed now: waiting for a head, with bytes of it.
    pub fn has_input(&self) -> bool {
        self.state == State::Head && !self.buf.is_empty()
    }

    /// The head of the current request (after [`Item::Head`]).
    #[cfg(test)]
    pub fn head(&self) -> Option<&RequestHead> {
        self.head.as_ref()
    }

    /// Takes the current request's head.
    pub fn take_head(&mut self) -> Option<RequestHead> {
        self.head.take()
    }

    /// The response to the last request has gone: parse the next one.
    pub fn resume(&mut self) {
        if self.state == State::Done {
            self.state = State::Head;
            self.head = None;
        }
    }

    /// The next thing the buffered bytes complete, if any.
    ///
    /// # Errors
    /// The status to answer with (the parser is then spent).
    pub fn next(&mut self) -> Result<Option<Item>, HttpError> {
        let r = self.step();
        if r.is_err() {
            self.state = State::Failed;
        }
        r
    }

    fn step(&mut self) -> Result<Option<Item>, HttpError> {
        loop {
            match self.state {
                State::Done | State::Failed => return Ok(None),
                State::Head => return self.parse_head(),
                State::Length(0) => {
                    self.state = State::Done;
                    return Ok(Some(Item::End));
                }
                State::Length(left) => {
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    let n = (self.buf.len() as u64).min(left) as usize;
                    self.state = State::Length(left - n as u64);
                    return Ok(Some(Item::Body(self.buf.split_to(n).freeze())));
                }
                State::ChunkSize => {
                    let Some(line_end) = find_crlf(&self.buf) else {
                        if self.buf.len() > MAX_CHUNK_LINE {
                            return Err(HttpError::new(400, "a chunk-size line is too long"));
                        }
                        return Ok(None);
                    };
                    let size = parse_chunk_size(&self.buf[..line_end])?;
                    self.buf.advance(line_end + 2);
                    if size == 0 {
                        self.state = State::Trailers;
                        continue;
                    }
                    self.body_seen = self.body_seen.saturating_add(size);
                    if self.body_seen > self.body_limit {
                        return Err(self.too_large());
                    }
                    self.state = State::ChunkData(size);
                }
                State::ChunkData(left) => {
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    let n = (self.buf.len() as u64).min(left) as usize;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(left)
                    };
                    return Ok(Some(Item::Body(self.buf.split_to(n).freeze())));
                }
                State::ChunkEnd => {
                    if self.buf.len() < 2 {
                        return Ok(None);
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err(HttpError::new(
                            400,
                            "a chunk's data is not followed by CRLF (bad chunk size?)",
                        ));
                    }
                    self.buf.advance(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    // Trailer fields are read and dropped (gRPC-Web requests carry none).
                    let Some(line_end) = find_crlf(&self.buf) else {
                        if self.trailer_seen + self.buf.len() > self.max_head {
                            return Err(HttpError::new(
                                431,
                                "the chunked trailer section is too large",
                            ));
                        }
                        return Ok(None);
                    };
                    self.trailer_seen += line_end + 2;
                    if self.trailer_seen > self.max_head {
                        return Err(HttpError::new(
                            431,
                            "the chunked trailer section is too large",
                        ));
                    }
                    self.buf.advance(line_end + 2);
                    if line_end == 0 {
                        self.state = State::Done;
                        return Ok(Some(Item::End));
                    }
                }
            }
        }
    }

    fn too_large(&self) -> HttpError {
        HttpError::new(
            413,
            format!(
                "the request body is over {} bytes (one message of the server's \
                 max_receive_message_length, framed)",
                self.body_limit
            ),
        )
    }

    fn parse_head(&mut self) -> Result<Option<Item>, HttpError> {
        // Blank lines before a request line are ignored (RFC 9112 §2.2).
        while self.buf.starts_with(b"\r\n") {
            self.buf.advance(2);
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut fields);
        let len = match req.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if self.buf.len() > self.max_head {
                    return Err(HttpError::new(
                        431,
                        format!("the request head is over {} bytes", self.max_head),
                    ));
                }
                return Ok(None);
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HttpError::new(
                    431,
                    format!("the request head has more than {MAX_HEADERS} fields"),
                ))
            }
            Err(httparse::Error::Version) => {
                return Err(HttpError::new(
                    505,
                    "only HTTP/1.0 and HTTP/1.1 are spoken here besides HTTP/2",
                ))
            }
            Err(e) => return Err(HttpError::new(400, format!("malformed request: {e}"))),
        };
        if len > self.max_head {
            return Err(HttpError::new(
                431,
                format!("the request head is over {} bytes", self.max_head),
            ));
        }
        let minor = req.version.unwrap_or(1);
        let method = req.method.unwrap_or("").to_string();
        let path = req.path.unwrap_or("").to_string();
        let mut headers = Vec::with_capacity(req.headers.len());
        let (mut length, mut chunked, mut te_other) = (None::<u64>, false, false);
        let (mut close, mut keep, mut expect_continue, mut host) = (false, false, false, false);
        for f in req.headers.iter() {
            let name = Bytes::from(f.name.to_ascii_lowercase());
            let value = Bytes::copy_from_slice(f.value);
            match &name[..] {
                b"content-length" => {
                    let n = std::str::from_utf8(f.value)
                        .ok()
                        .map(str::trim)
                        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| HttpError::new(400, "malformed Content-Length"))?;
                    if length.is_some_and(|l| l != n) {
                        return Err(HttpError::new(400, "conflicting Content-Length fields"));
                    }
                    length = Some(n);
                }
                b"transfer-encoding" => {
                    for coding in f.value.split(|&b| b == b',') {
                        let coding = coding.trim_ascii();
                        if coding.eq_ignore_ascii_case(b"chunked") {
                            chunked = true;
                        } else if !coding.is_empty() {
                            te_other = true;
                        }
                    }
                }
                b"connection" => {
                    for token in f.value.split(|&b| b == b',') {
                        let token = token.trim_ascii();
                        close |= token.eq_ignore_ascii_case(b"close");
                        keep |= token.eq_ignore_ascii_case(b"keep-alive");
                    }
                }
                b"expect" => {
                    if f.value.trim_ascii().eq_ignore_ascii_case(b"100-continue") {
                        expect_continue = true;
                    } else {
                        return Err(HttpError::new(417, "only Expect: 100-continue is known"));
                    }
                }
                b"host" => host = true,
                _ => {}
            }
            headers.push((name, value));
        }
        if te_other {
            return Err(HttpError::new(
                501,
                "only the chunked transfer coding is supported",
            ));
        }
        if chunked && length.is_some() {
            // Both framings: a smuggling attempt or a broken client (RFC 9112 §6.1).
            return Err(HttpError::new(
                400,
                "a request may not have both Transfer-Encoding and Content-Length",
            ));
        }
        if minor == 1 && !host {
            return Err(HttpError::new(
                400,
                "an HTTP/1.1 request needs a Host field",
            ));
        }
        // A text-mode body is base64: 4/3 as long, and chunks may each carry padding.
        let text = headers.iter().any(|(n, v)| {
            &n[..] == b"content-type"
                && v.to_ascii_lowercase()
                    .starts_with(b"application/grpc-web-text")
        });
        self.body_limit = if text {
            self.max_body.div_ceil(3) * 4 + 1024
        } else {
            self.max_body
        };
        if let Some(n) = length {
            if n > self.body_limit {
                return Err(self.too_large());
            }
        }
        self.buf.advance(len);
        self.body_seen = 0;
        self.trailer_seen = 0;
        let empty_body = !chunked && length.unwrap_or(0) == 0;
        self.state = if chunked {
            State::ChunkSize
        } else {
            State::Length(length.unwrap_or(0))
        };
        self.head = Some(RequestHead {
            method,
            path,
            minor,
            headers,
            keep_alive: if minor == 0 { keep && !close } else { !close },
            expect_continue: expect_continue && !empty_body,
            empty_body,
        });
        Ok(Some(Item::Head))
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn parse_chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    // Extensions (`;name=value`) are allowed and ignored.
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return Err(HttpError::new(400, "a malformed chunk size"));
    }
    let mut n = 0u64;
    for &d in digits {
        let v = (d as char)
            .to_digit(16)
            .ok_or_else(|| HttpError::new(400, "a malformed chunk size"))?;
        n = n << 4 | u64::from(v);
    }
    Ok(n)
}

/// Appends a response status line and `fields` (with their terminating blank line).
pub(crate) fn encode_head(status: u16, fields: &[(&[u8], &[u8])], out: &mut BytesMut) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.to_string().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    for (n, v) in fields {
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one chunk of a chunked body (nothing for empty `data`: that would end the body).
pub(crate) fn encode_chunk(data: &[u8], out: &mut BytesMut) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends a complete error response that closes the connection.
pub(crate) fn encode_error(e: &HttpError, out: &mut BytesMut) {
    let body = format!("{}\n", e.message);
    let len = body.len().to_string();
    encode_head(
        e.status,
        &[
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", len.as_bytes()),
            (b"connection", b"close"),
        ],
        out,
    );
    out.extend_from_slice(body.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item the input gives, fed at the split points.
    fn parse_split(input: &[u8], cuts: &[usize]) -> Result<(Vec<Item>, Vec<u8>), HttpError> {
        let mut p = Parser::new(16 * 1024, 1 << 20);
        let mut items = Vec::new();
        let mut body = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            p.push(&input[from..cut]);
            from = cut;
            while let Some(it) = p.next()? {
                match &it {
                    Item::Body(b) => body.extend_from_slice(b),
                    Item::End => {
                        items.push(it);
                        p.resume();
                    }
                    _ => items.push(it),
                }
            }
        }
        Ok((items, body))
    }

    const CHUNKED: &[u8] = b"POST /a.B/C HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
        Content-Type: application/grpc-web\r\n\r\n3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n\
        0\r\nX-T: 1\r\n\r\n";

    #[test]
    fn chunked_body_split_at_every_byte_parses_the_same() {
        let (items, body) = parse_split(CHUNKED, &[]).unwrap();
        assert_eq!(items, vec![Item::Head, Item::End]);
        assert_eq!(body, b"abc0123456789abcdef");
        for i in 0..=CHUNKED.len() {
            let (it, b) = parse_split(CHUNKED, &[i]).unwrap();
            assert_eq!((it, b), (items.clone(), body.clone()), "split at {i}");
        }
    }

    #[test]
    fn content_length_and_keep_alive_pipelining() {
        let two = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\
                    POST /y HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        for i in 0..=two.len() {
            let (items, body) = parse_split(two, &[i]).unwrap();
            assert_eq!(items, vec![Item::Head, Item::End, Item::Head, Item::End]);
            assert_eq!(body, b"abc");
        }
        let mut p = Parser::new(1024, 1024);
        p.push(two);
        assert_eq!(p.next().unwrap(), Some(Item::Head));
        assert!(p.head().unwrap().keep_alive);
        assert!(matches!(p.next().unwrap(), Some(Item::Body(_))));
        assert_eq!(p.next().unwrap(), Some(Item::End));
        // Nothing more until the response went out.
        assert_eq!(p.next().unwrap(), None);
        p.resume();
        assert_eq!(p.next().unwrap(), Some(Item::Head));
        let h = p.head().unwrap();
        assert!(!h.keep_alive && h.empty_body && h.path == "/y");
    }

    fn error_of(input: &[u8]) -> HttpError {
        let mut p = Parser::new(1024, 100);
        p.push(input);
        loop {
            match p.next() {
                Ok(Some(Item::End)) => p.resume(),
                Ok(Some(_)) => {}
                Ok(None) => panic!("no error for {:?}", String::from_utf8_lossy(input)),
                Err(e) => return e,
            }
        }
    }

    #[test]
    fn bad_input_gets_the_right_status() {
        let big = format!(
            "POST / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
            "a".repeat(2000)
        );
        assert_eq!(error_of(big.as_bytes()).status, 431);
        let mut partial = Parser::new(1024, 100);
        partial.push(&big.as_bytes()[..1500]);
        assert_eq!(partial.next().unwrap_err().status, 431);
        assert_eq!(error_of(b"GARBAGE\x01\r\n\r\n").status, 400);
        assert_eq!(error_of(b"POST / HTTP/2.0\r\nHost: h\r\n\r\n").status, 505);
        let bad_chunk = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(error_of(bad_chunk).status, 400);
        let short_chunk =
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n";
        assert_eq!(error_of(short_chunk).status, 400);
        let too_long = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n";
        assert_eq!(error_of(too_long).status, 413);
        let chunks_too_long =
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n";
        let mut p = Parser::new(1024, 100);
        p.push(chunks_too_long);
        assert_eq!(p.next().unwrap(), Some(Item::Head));
        p.push(&[b'a'; 0x40]);
        p.push(b"\r\n40\r\n");
        let mut status = None;
        while status.is_none() {
            match p.next() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("no error"),
                Err(e) => status = Some(e.status),
            }
        }
        assert_eq!(status, Some(413));
        let both = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(error_of(both).status, 400);
        let gzip = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(error_of(gzip).status, 501);
        assert_eq!(error_of(b"POST / HTTP/1.1\r\n\r\n").status, 400);
        let pipelined_garbage = b"POST / HTTP/1.1\r\nHost: h\r\n\r\n\x16\x03\x01garbage\r\n\r\n";
        assert_eq!(error_of(pipelined_garbage).status, 400);
        let huge_chunk = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n";
        assert_eq!(error_of(huge_chunk).status, 400);
    }

    #[test]
    fn http10_keeps_alive_only_when_asked() {
        let mut p = Parser::new(1024, 100);
        p.push(b"POST / HTTP/1.0\r\n\r\n");
        assert_eq!(p.next().unwrap(), Some(Item::Head));
        assert!(!p.head().unwrap().keep_alive);
        let mut p = Parser::new(1024, 100);
        p.push(b"POST / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(p.next().unwrap(), Some(Item::Head));
        assert!(p.head().unwrap().keep_alive);
    }
}
