//! Message compression end to end: negotiation (`grpc-encoding`, `grpc-accept-encoding`),
//! per-channel, per-call and per-server defaults, and the errors: an unsupported coding
//! (UNIMPLEMENTED with the accepted list), a compressed flag without a coding (INTERNAL), and a
//! message that inflates past the receive limit (RESOURCE_EXHAUSTED).
//!
//! What our client never sends (a bogus coding, a flag without a coding) is sent as raw
//! HTTP/2 frames over a socket to 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use grpc_sync::compression::{compress, CompressionEncoding, ACCEPT_ENCODING};
use grpc_sync::h2::hpack::{Decoder, Encoder, Header};
use grpc_sync::{Channel, Code, Request, Server, ServerContext, Service, Status};

#[derive(Clone, PartialEq, prost::Message)]
struct Blob {
    #[prost(bytes = "vec", tag = "1")]
    data: Vec<u8>,
    #[prost(bool, tag = "2")]
    was_compressed: bool,
}

const PATH: &str = "/test.Zip/Echo";

/// A server whose `Echo` returns the request and whether it arrived compressed.
fn server(builder: grpc_sync::ServerBuilder) -> (Server, u16) {
    let svc = Service::builder("test.Zip")
        .unary("Echo", |b: Blob, ctx: &ServerContext| {
            Ok::<_, Status>(Blob {
                data: b.data,
                was_compressed: ctx.request_compressed(),
            })
        })
        .unary("Plain", |b: Blob, ctx: &ServerContext| {
            ctx.disable_next_message_compression();
            Ok::<_, Status>(b)
        })
        .build();
    let server = builder.add_service(svc).build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    (server, port)
}

fn blob(n: usize) -> Blob {
    Blob {
        data: vec![b'z'; n],
        was_compressed: false,
    }
}

#[test]
fn per_call_and_per_channel_compression_reach_the_server() {
    let (_server, port) = server(Server::builder());
    let target = format!("127.0.0.1:{port}");
    let plain = Channel::insecure(&target).unwrap();
    let r = plain
        .unary::<_, Blob>(PATH, Request::new(blob(1000)))
        .unwrap();
    assert!(!r.get_ref().was_compressed);
    assert!(!r.message_compressed());
    for enc in [CompressionEncoding::Gzip, CompressionEncoding::Deflate] {
        let r = plain
            .unary::<_, Blob>(PATH, Request::new(blob(1000)).with_compression(enc))
            .unwrap();
        assert!(r.get_ref().was_compressed, "{enc} per call");
        assert_eq!(r.get_ref().data.len(), 1000);

        let ch = Channel::builder(&target).compression(enc).build().unwrap();
        let r = ch.unary::<_, Blob>(PATH, Request::new(blob(10))).unwrap();
        assert!(r.get_ref().was_compressed, "{enc} per channel");
        // Per call identity overrides the channel's default.
        let r = ch
            .unary::<_, Blob>(
                PATH,
                Request::new(blob(10)).with_compression(CompressionEncoding::Identity),
            )
            .unwrap();
        assert!(!r.get_ref().was_compressed, "{enc} turned off per call");
    }
}

#[test]
fn server_default_compression_and_per_message_opt_out() {
    let (_server, port) = server(Server::builder().compression(CompressionEncoding::Gzip));
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    let r = ch.unary::<_, Blob>(PATH, Request::new(blob(5000))).unwrap();
    assert!(r.message_compressed());
    assert_eq!(r.get_ref().data, vec![b'z'; 5000]);
    let r = ch
        .unary::<_, Blob>("/test.Zip/Plain", Request::new(blob(5000)))
        .unwrap();
    assert!(!r.message_compressed());
}

#[test]
fn compressed_request_inflating_past_the_limit_is_resource_exhausted() {
    let (_server, port) = server(Server::builder().max_receive_message_length(64 * 1024));
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    // 8 MiB of one byte: a few KiB on the wire, far over the 64 KiB limit once inflated.
    let err = ch
        .unary::<_, Blob>(
            PATH,
            Request::new(blob(8 << 20)).with_compression(CompressionEncoding::Gzip),
        )
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    // The same on the client for a response.
    let (_server, port) = server(Server::builder().compression(CompressionEncoding::Deflate));
    let ch = Channel::builder(&format!("127.0.0.1:{port}"))
        .max_receive_message_length(64 * 1024)
        .build()
        .unwrap();
    let err = ch
        .unary::<_, Blob>(
            PATH,
            Request::new(blob(1 << 20)).with_compression(CompressionEncoding::Gzip),
        )
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
}

// --- raw HTTP/2 ---------------------------------------------------------------------------

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(9 + payload.len());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// What the server answered on stream 1: every header (response head and trailers) and the
/// DATA bytes.
struct Answer {
    headers: Vec<(String, String)>,
    data: Vec<u8>,
}

impl Answer {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request on stream 1 with `extra` headers and `body` (already framed), and reads
/// until the stream ends. Every read has a 10 s deadline.
fn raw_call(port: u16, extra: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut headers = vec![
        (":method", "POST"),
        (":scheme", "http"),
        (":path", PATH),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ];
    headers.extend_from_slice(extra);
    let headers: Vec<Header> = headers
        .iter()
        .map(|(n, v)| {
            Header::new(
                Bytes::copy_from_slice(n.as_bytes()),
                Bytes::copy_from_slice(v.as_bytes()),
            )
        })
        .collect();
    let mut block = BytesMut::new();
    Encoder::new().encode_headers(&headers, &mut block);
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(4, 0, 0, &[]));
    out.extend(frame(1, 0x4, 1, &block));
    out.extend(frame(0, 0x1, 1, body));
    sock.write_all(&out).unwrap();

    let mut dec = Decoder::new(4096);
    let mut answer = Answer {
        headers: Vec::new(),
        data: Vec::new(),
    };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        while buf.len() >= 9 {
            let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            let payload: Vec<u8> = buf[9..9 + len].to_vec();
            buf.drain(..9 + len);
            if kind == 4 && flags & 1 == 0 {
                sock.write_all(&frame(4, 1, 0, &[])).unwrap();
            }
            if stream != 1 {
                continue;
            }
            match kind {
                0 => answer.data.extend_from_slice(&payload),
                1 => dec
                    .decode(&payload, usize::MAX, |h| {
                        answer.headers.push((
                            String::from_utf8_lossy(&h.name).into_owned(),
                            String::from_utf8_lossy(&h.value).into_owned(),
                        ))
                    })
                    .unwrap(),
                3 => return answer,
                _ => {}
            }
            if flags & 1 != 0 && (kind == 0 || kind == 1) {
                return answer;
            }
        }
        let n = sock.read(&mut chunk).expect("the server answered in time");
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn framed(flag: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![flag];
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(payload);
    b
}

fn encoded(msg: &Blob) -> Vec<u8> {
    prost::Message::encode_to_vec(msg)
}

#[test]
fn unsupported_encoding_is_unimplemented_with_the_accepted_list() {
    let (_server, port) = server(Server::builder());
    let a = raw_call(
        port,
        &[("grpc-encoding", "snappy")],
        &framed(1, b"whatever"),
    );
    assert_eq!(a.get("grpc-status"), Some("12"), "{:?}", a.headers);
    assert_eq!(a.get("grpc-accept-encoding"), Some(ACCEPT_ENCODING));
    assert!(a.get("grpc-message").unwrap_or("").contains("snappy"));
}

#[test]
fn compressed_flag_without_encoding_is_internal() {
    let (_server, port) = server(Server::builder());
    let a = raw_call(port, &[], &framed(1, &encoded(&blob(3))));
    assert_eq!(a.get("grpc-status"), Some("13"), "{:?}", a.headers);
    assert!(a.data.is_empty());
    // An explicit identity is no coding either.
    let a = raw_call(
        port,
        &[("grpc-encoding", "identity")],
        &framed(1, &encoded(&blob(3))),
    );
    assert_eq!(a.get("grpc-status"), Some("13"), "{:?}", a.headers);
}

#[test]
fn compressed_request_is_decoded_and_the_response_follows_accept_encoding() {
    let (_server, port) = server(Server::builder().compression(CompressionEncoding::Gzip));
    let mut body = BytesMut::new();
    compress(
        CompressionEncoding::Deflate,
        &encoded(&blob(100)),
        &mut body,
    )
    .unwrap();
    // A client that accepts gzip gets a gzip response.
    let a = raw_call(
        port,
        &[
            ("grpc-encoding", "deflate"),
            ("grpc-accept-encoding", "gzip"),
        ],
        &framed(1, &body),
    );
    assert_eq!(a.get("grpc-status"), Some("0"), "{:?}", a.headers);
    assert_eq!(a.get("grpc-encoding"), Some("gzip"));
    assert_eq!(a.data[0], 1, "compressed flag");
    let inflated =
        grpc_sync::compression::decompress(CompressionEncoding::Gzip, &a.data[5..], usize::MAX)
            .unwrap();
    let resp: Blob = prost::Message::decode(inflated).unwrap();
    assert!(resp.was_compressed);
    assert_eq!(resp.data.len(), 100);
    // A client that sends no grpc-accept-encoding gets identity.
    let a = raw_call(port, &[], &framed(0, &encoded(&blob(100))));
    assert_eq!(a.get("grpc-status"), Some("0"), "{:?}", a.headers);
    assert_eq!(a.get("grpc-encoding"), None);
    assert_eq!(a.data[0], 0);
    let resp: Blob = prost::Message::decode(&a.data[5..]).unwrap();
    assert!(!resp.was_compressed);
}

#[test]
fn corrupt_compressed_request_is_internal() {
    let (_server, port) = server(Server::builder());
    let mut garbage = BytesMut::new();
    garbage.put_slice(b"this is not gzip");
    let a = raw_call(port, &[("grpc-encoding", "gzip")], &framed(1, &garbage));
    assert_eq!(a.get("grpc-status"), Some("13"), "{:?}", a.headers);
}
