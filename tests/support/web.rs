//! A gRPC-Web client by hand, for wire tests: HTTP/1.1 requests on a plain socket, and the
//! gRPC-Web body read back (message frames, then the trailers frame with flag 0x80), as
//! gRPC's `doc/PROTOCOL-WEB.md` describes them.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// An HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Field names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body was chunked.
    pub chunked: bool,
}

impl Response {
    /// The first field named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as gRPC-Web frames (decoding base64 first if `text`).
    pub fn web(&self, text: bool) -> WebBody {
        let body = if text {
            decode_text(&self.body)
        } else {
            self.body.clone()
        };
        parse_web_body(&body)
    }
}

/// A gRPC-Web response body: messages, then trailers.
#[derive(Debug, Clone, Default)]
pub struct WebBody {
    pub messages: Vec<Vec<u8>>,
    /// Trailer fields in order, names as sent.
    pub trailers: Vec<(String, String)>,
    /// The trailers frame was the body's last frame.
    pub trailers_last: bool,
}

impl WebBody {
    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits a binary gRPC-Web body into its frames.
pub fn parse_web_body(mut body: &[u8]) -> WebBody {
    let mut out = WebBody::default();
    while body.len() >= 5 {
        let flag = body[0];
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        assert!(body.len() >= 5 + len, "truncated frame");
        let payload = &body[5..5 + len];
        if flag & 0x80 != 0 {
            let block = std::str::from_utf8(payload).expect("trailers are text");
            for line in block.split("\r\n").filter(|l| !l.is_empty()) {
                let (n, v) = line.split_once(':').expect("name: value");
                out.trailers.push((n.to_string(), v.trim().to_string()));
            }
            out.trailers_last = body.len() == 5 + len;
        } else {
            out.messages.push(payload.to_vec());
        }
        body = &body[5 + len..];
    }
    assert!(body.is_empty(), "bytes after the last frame");
    out
}

/// Decodes base64 that may carry padding at any 4-character boundary.
pub fn decode_text(text: &[u8]) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    assert_eq!(text.len() % 4, 0, "base64 in groups of 4");
    let mut out = Vec::new();
    for g in text.chunks(4) {
        let pad = g.iter().filter(|&&c| c == b'=').count();
        let mut n = 0u32;
        for &c in &g[..4 - pad] {
            n = n << 6 | val(c);
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    out
}

/// Standard padded base64.
pub fn encode_text(data: &[u8]) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        let syms = [n >> 18, n >> 12, n >> 6, n].map(|v| A[(v & 63) as usize]);
        out.extend_from_slice(&syms[..c.len() + 1]);
        out.extend(std::iter::repeat_n(b'=', 3 - c.len()));
    }
    out
}

/// A message in gRPC's 5-byte framing.
pub fn frame(msg: &[u8]) -> Vec<u8> {
    let mut f = vec![0];
    f.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    f.extend_from_slice(msg);
    f
}

/// A unary gRPC-Web request (binary), Content-Length framed.
pub fn request(path: &str, msg: &[u8], extra: &[(&str, &str)]) -> Vec<u8> {
    let body = frame(msg);
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/grpc-web+proto\r\n\
         X-Grpc-Web: 1\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in extra {
        r.push_str(&format!("{n}: {v}\r\n"));
    }
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(&body);
    r
}

/// A request with a chunked body of `pieces` (one chunk each); `content_type` may carry more
/// fields after it (`"...\r\nAccept: ..."`).
pub fn chunked(path: &str, content_type: &str, pieces: &[&[u8]]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for piece in pieces {
        r.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        r.extend_from_slice(piece);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\n");
    r
}

/// An HTTP/1.1 connection with a read deadline per response.
pub struct Http1 {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Http1 {
    pub fn connect(port: u16) -> Http1 {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_nodelay(true).unwrap();
        Http1 {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    fn fill(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no response in time");
        self.stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("no response in time")
            }
            Err(_) => false,
        }
    }

    /// Reads one response (skipping `100 Continue`), within `wait`.
    pub fn response(&mut self, wait: Duration) -> Response {
        let deadline = Instant::now() + wait;
        loop {
            let r = self.read_one(deadline);
            if r.status != 100 {
                return r;
            }
        }
    }

    fn read_one(&mut self, deadline: Instant) -> Response {
        let head_end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            assert!(self.fill(deadline), "closed before a response head");
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).unwrap();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
        let status: u16 = status_line[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.to_string(), v.trim().to_string())
            })
            .collect();
        let mut r = Response {
            status,
            headers,
            body: Vec::new(),
            chunked: false,
        };
        if status == 100 || status == 204 {
            return r;
        }
        if let Some(len) = r.header("content-length") {
            let len: usize = len.parse().unwrap();
            while self.buf.len() < len {
                assert!(self.fill(deadline), "closed inside a body");
            }
            r.body = self.buf.drain(..len).collect();
        } else if r.header("transfer-encoding") == Some("chunked") {
            r.chunked = true;
            loop {
                let line_end = loop {
                    if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break p;
                    }
                    assert!(self.fill(deadline), "closed inside a chunked body");
                };
                let size_line = String::from_utf8(self.buf[..line_end].to_vec()).unwrap();
                let size = usize::from_str_radix(size_line.trim(), 16).unwrap();
                self.buf.drain(..line_end + 2);
                if size == 0 {
                    // No trailer section expected from gRPC-Web: just the final CRLF.
                    while self.buf.len() < 2 {
                        assert!(self.fill(deadline));
                    }
                    assert_eq!(&self.buf[..2], b"\r\n");
                    self.buf.drain(..2);
                    break;
                }
                while self.buf.len() < size + 2 {
                    assert!(self.fill(deadline), "closed inside a chunk");
                }
                r.body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
            }
        } else {
            // Close-delimited.
            while self.fill(deadline) {}
            r.body = std::mem::take(&mut self.buf);
        }
        r
    }

    /// Waits until the server closes the connection (after what it sent), within `wait`.
    pub fn expect_closed(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        while self.fill(deadline) {}
    }
}
