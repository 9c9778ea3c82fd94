//! grpcio's options by name, in behaviour: the seed's `options=[max_send/receive 100 MiB]`
//! on both ends carrying a 50 MiB message each way, the receive and send limits set by name,
//! and what the channel's name options put on the wire (`user-agent`, `:authority`).
//!
//! Every wait has a deadline (call timeouts, `recv_timeout`, socket read timeouts).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use grpc_sync::h2::hpack::Decoder;
use grpc_sync::options::OptionsError;
use grpc_sync::{Channel, Code, OptionValue, Request, Server, ServerContext, Service, Status};

#[derive(Clone, PartialEq, prost::Message)]
struct Blob {
    #[prost(bytes = "vec", tag = "1")]
    data: Vec<u8>,
    /// Echo: the response's size (0 = the request's). Agent: unused.
    #[prost(uint64, tag = "2")]
    reply_len: u64,
    #[prost(string, tag = "3")]
    user_agent: String,
}

mod support;

const ECHO: &str = "/test.Options/Echo";
const AGENT: &str = "/test.Options/Agent";
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The seed's options (004): `max_send_message_length` and `max_receive_message_length` at
/// 100 MiB, on the server and on the channel.
fn seed_options() -> [(&'static str, OptionValue); 2] {
    [
        ("grpc.max_send_message_length", (100 * 1024 * 1024).into()),
        (
            "grpc.max_receive_message_length",
            (100 * 1024 * 1024).into(),
        ),
    ]
}

fn server(builder: grpc_sync::ServerBuilder) -> (Server, String) {
    let svc = Service::builder("test.Options")
        .unary("Echo", |b: Blob, _ctx: &ServerContext| {
            let data = match b.reply_len {
                0 => b.data,
                n => vec![7u8; n as usize],
            };
            Ok::<_, Status>(Blob {
                data,
                ..Blob::default()
            })
        })
        .unary("Agent", |_b: Blob, ctx: &ServerContext| {
            Ok::<_, Status>(Blob {
                user_agent: ctx.metadata().get("user-agent").unwrap_or("").to_string(),
                ..Blob::default()
            })
        })
        .build();
    let server = builder.add_service(svc).build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    (server, format!("127.0.0.1:{port}"))
}

fn echo(channel: &Channel, len: usize, reply_len: u64) -> Result<Blob, Status> {
    let req = Blob {
        data: vec![42u8; len],
        reply_len,
        user_agent: String::new(),
    };
    channel
        .unary::<_, Blob>(ECHO, Request::new(req).with_timeout(CALL_TIMEOUT))
        .map(|r| r.into_inner())
}

#[test]
fn seed_options_carry_fifty_mib_both_ways() {
    let (_server, target) = server(Server::builder().options(seed_options()).unwrap());
    let channel = Channel::builder(&target)
        .options(seed_options())
        .unwrap()
        .build()
        .unwrap();
    // 50 MiB up, 50 MiB back.
    let reply = echo(&channel, 50 << 20, 0).unwrap();
    assert_eq!(reply.data.len(), 50 << 20);
    assert!(reply.data.iter().all(|&b| b == 42));

    // Without the options the defaults (4 MiB receive) refuse the same message.
    let (_plain, target) = server(Server::builder());
    let plain = Channel::builder(&target)
        .options(seed_options())
        .unwrap()
        .build()
        .unwrap();
    let err = echo(&plain, 50 << 20, 0).unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
}

#[test]
fn max_receive_message_length_by_name_decides_a_five_mib_request() {
    let five = 5 << 20;
    let (_small, small) = server(
        Server::builder()
            .option("grpc.max_receive_message_length", 4 << 20)
            .unwrap(),
    );
    let (_big, big) = server(
        Server::builder()
            .option("grpc.max_receive_message_length", 6 << 20)
            .unwrap(),
    );
    let to_small = Channel::insecure(&small).unwrap();
    let to_big = Channel::insecure(&big).unwrap();
    let err = echo(&to_small, five, 1).unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert_eq!(echo(&to_big, five, 1).unwrap().data.len(), 1);

    // The channel's limit on responses, by name.
    let limited = Channel::builder(&big)
        .option("grpc.max_receive_message_length", 4 << 20)
        .unwrap()
        .build()
        .unwrap();
    let err = echo(&limited, 1, five as u64).unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let unlimited = Channel::builder(&big)
        .option("grpc.max_receive_message_length", -1)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(echo(&unlimited, 1, five as u64).unwrap().data.len(), five);
}

#[test]
fn max_send_message_length_by_name_bounds_both_ends() {
    let (_server, target) = server(
        Server::builder()
            .option("grpc.max_send_message_length", 1 << 20)
            .unwrap(),
    );
    let channel = Channel::builder(&target)
        .option("grpc.max_send_message_length", 1 << 20)
        .unwrap()
        .build()
        .unwrap();
    // The client refuses to send 2 MiB; the server refuses to answer with 2 MiB.
    let err = echo(&channel, 2 << 20, 1).unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let err = echo(&channel, 1, 2 << 20).unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert_eq!(echo(&channel, 1000, 1000).unwrap().data.len(), 1000);
}

#[test]
fn primary_user_agent_reaches_the_handler() {
    let (_server, target) = server(Server::builder());
    let channel = Channel::builder(&target)
        .options([("grpc.primary_user_agent", "seed-app/2.1")])
        .unwrap()
        .build()
        .unwrap();
    let reply = channel
        .unary::<_, Blob>(
            AGENT,
            Request::new(Blob::default()).with_timeout(CALL_TIMEOUT),
        )
        .unwrap()
        .into_inner();
    assert!(
        reply.user_agent.starts_with("seed-app/2.1 grpc-sync/"),
        "{}",
        reply.user_agent
    );
}

/// Accepts one connection on a raw socket and returns the headers of the first request.
fn capture_request_headers(
    listener: TcpListener,
) -> mpsc::Receiver<Result<Vec<(String, String)>, String>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = (|| -> Result<Vec<(String, String)>, String> {
            let (mut sock, _) = listener.accept().map_err(|e| e.to_string())?;
            sock.set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(|e| e.to_string())?;
            // Our (empty) SETTINGS, so the client sees an HTTP/2 server.
            sock.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
                .map_err(|e| e.to_string())?;
            let mut preface = [0u8; 24];
            sock.read_exact(&mut preface).map_err(|e| e.to_string())?;
            loop {
                let mut head = [0u8; 9];
                sock.read_exact(&mut head).map_err(|e| e.to_string())?;
                let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
                let mut payload = vec![0u8; len];
                sock.read_exact(&mut payload).map_err(|e| e.to_string())?;
                if head[3] != 1 {
                    continue; // not HEADERS
                }
                let flags = head[4];
                let mut block = &payload[..];
                let mut pad = 0;
                if flags & 0x8 != 0 {
                    pad = block[0] as usize;
                    block = &block[1..];
                }
                if flags & 0x20 != 0 {
                    block = &block[5..];
                }
                let block = &block[..block.len() - pad];
                if flags & 0x4 == 0 {
                    return Err("HEADERS without END_HEADERS: not handled here".into());
                }
                let mut headers = Vec::new();
                Decoder::new(4096)
                    .decode(block, 1 << 20, |h| {
                        headers.push((
                            String::from_utf8_lossy(&h.name).into_owned(),
                            String::from_utf8_lossy(&h.value).into_owned(),
                        ))
                    })
                    .map_err(|e| format!("{e:?}"))?;
                return Ok(headers);
            }
        })();
        let _ = tx.send(result);
    });
    rx
}

#[test]
fn default_authority_and_user_agent_are_on_the_wire() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let headers = capture_request_headers(listener);
    let channel = Channel::builder(&target)
        .options([
            ("grpc.default_authority", "api.example.com"),
            ("grpc.primary_user_agent", "wire-test/1"),
        ])
        .unwrap()
        .build()
        .unwrap();
    // The fake server never answers: the call ends at its deadline, on its own thread.
    let caller = std::thread::spawn(move || {
        channel.unary::<_, Blob>(
            AGENT,
            Request::new(Blob::default()).with_timeout(Duration::from_secs(5)),
        )
    });
    let headers = headers
        .recv_timeout(Duration::from_secs(20))
        .expect("the request's headers within 20 s")
        .unwrap();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get(":authority"), Some("api.example.com"), "{headers:?}");
    assert!(
        get("user-agent").is_some_and(|ua| ua.starts_with("wire-test/1 ")),
        "{headers:?}"
    );
    assert!(caller.join().unwrap().is_err());
}

#[test]
fn mistakes_are_errors_not_panics() {
    let err = Server::builder()
        .options([("grpc.max_recieve_message_length", 1)])
        .unwrap_err();
    assert!(
        matches!(&err, OptionsError::Unknown { close, .. }
            if close.first() == Some(&"grpc.max_receive_message_length")),
        "{err}"
    );
    let err = Channel::builder("localhost:1")
        .options([("grpc.default_authority", OptionValue::Int(3))])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "option grpc.default_authority takes a string, not 3"
    );
    // Ignored names are accepted on both sides.
    Server::builder()
        .options([
            ("grpc.so_reuseport", 0),
            ("grpc.http2.bdp_probe", 0),
            ("grpc.enable_retries", 1),
        ])
        .unwrap();
}

#[test]
fn ssl_target_name_override_by_name_checks_the_certificate_against_it() {
    let pki = support::certs::Pki::new();
    let creds = grpc_sync::ServerCredentials::from_pem(
        pki.wrong_name.cert.as_bytes(),
        pki.wrong_name.key.as_bytes(),
    )
    .unwrap();
    let server = Server::builder()
        .add_service(
            Service::builder("test.Options")
                .unary("Echo", |b: Blob, _ctx: &ServerContext| Ok::<_, Status>(b))
                .build(),
        )
        .build();
    let port = server.add_secure_port("127.0.0.1:0", creds).unwrap();
    server.start().unwrap();
    let target = format!("127.0.0.1:{port}");
    let roots = || grpc_sync::ChannelCredentials::from_ca_pem(pki.ca.as_bytes()).unwrap();
    // The certificate is for wrong.example only; the option, given before `tls`, makes it
    // acceptable.
    let channel = Channel::builder(&target)
        .option("grpc.ssl_target_name_override", "wrong.example")
        .unwrap()
        .tls(roots())
        .build()
        .unwrap();
    assert_eq!(echo(&channel, 10, 0).unwrap().data.len(), 10);
    // Without it the name does not match.
    let channel = Channel::builder(&target).tls(roots()).build().unwrap();
    let err = echo(&channel, 10, 0).unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("wrong.example"), "{err:?}");
    // An option naming another host is checked too (and given after `tls`).
    let channel = Channel::builder(&target)
        .tls(roots())
        .option("grpc.ssl_target_name_override", "other.example")
        .unwrap()
        .build()
        .unwrap();
    let err = echo(&channel, 10, 0).unwrap_err();
    assert!(err.message().contains("other.example"), "{err:?}");
}

#[test]
fn max_metadata_size_by_name_bounds_request_headers() {
    let (_server, target) = server(
        Server::builder()
            .option("grpc.max_metadata_size", 1024)
            .unwrap(),
    );
    let channel = Channel::insecure(&target).unwrap();
    let call = |value_len: usize| {
        channel.unary::<_, Blob>(
            AGENT,
            Request::new(Blob::default())
                .with_metadata("x-big", &"v".repeat(value_len))
                .with_timeout(CALL_TIMEOUT),
        )
    };
    // The first call also brings the server's SETTINGS (its MAX_HEADER_LIST_SIZE).
    assert!(call(100).is_ok());
    let err = call(4096).unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("1024"), "{err:?}");
    // The channel is still good.
    assert!(call(100).is_ok());
}

#[test]
fn http2_options_by_name_still_carry_calls() {
    let http2 = [
        ("grpc.http2.max_frame_size", 1 << 20),
        ("grpc.http2.hpack_table_size.decoder", 0),
        ("grpc.http2.lookahead_bytes", 65_535),
        ("grpc.max_concurrent_streams", 4),
        ("grpc.default_compression_algorithm", 2),
        ("grpc.max_receive_message_length", 8 << 20),
    ];
    let (_server, target) = server(Server::builder().options(http2).unwrap());
    let channel = Channel::builder(&target)
        .options(http2)
        .unwrap()
        .build()
        .unwrap();
    // Large frames, no HPACK table, small windows, compression, several calls at once.
    std::thread::scope(|s| {
        let calls: Vec<_> = (0..8)
            .map(|_| s.spawn(|| echo(&channel, 3 << 20, 0)))
            .collect();
        for call in calls {
            assert_eq!(call.join().unwrap().unwrap().data.len(), 3 << 20);
        }
    });
}
