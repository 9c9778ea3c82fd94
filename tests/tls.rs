//! TLS and mutual TLS: our client and our server over rustls, every RPC kind, the peer's
//! identity, every failure case with its code and message, and interop with Python grpcio
//! (`secure_channel` / `ssl_server_credentials`). Certificates are made at test time
//! (`tests/support/certs.rs`); all traffic is on 127.0.0.1.

#[path = "../examples/common/mod.rs"]
mod common;
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver};
use grpc_sync::{
    Channel, ChannelCredentials, ClientAuth, Code, HandshakeError, Request, Server, ServerContext,
    ServerCredentials, Service, Status, Streaming, SubjectAltName,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use common::pb::helloworld::greeter_server::GreeterServer;
use common::pb::route_guide::route_guide_server::RouteGuideServer;
use support::certs::{Identity, Pki};
use support::msg::{text, Text};
use support::python::{self, PythonServer};

const WAIT: Duration = Duration::from_secs(10);
/// "Fails fast": a misconfigured peer is told within this.
const FAST: Duration = Duration::from_secs(1);

/// A service that tells the caller what the server knows about it.
fn whoami() -> Service {
    Service::builder("test.Who")
        .unary("Am", |_m: Text, ctx: &ServerContext| {
            let Some(auth) = ctx.auth_context() else {
                return Ok(text("insecure"));
            };
            let who = match auth.peer_identity() {
                None => format!(
                    "{} {} anonymous",
                    auth.transport_security_type(),
                    auth.protocol_version()
                ),
                Some(id) => {
                    let sans: Vec<String> = id
                        .subject_alt_names()
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                    format!(
                        "{} cn={} subject={} sans={}",
                        auth.transport_security_type(),
                        id.common_name().unwrap_or("-"),
                        id.subject(),
                        sans.join(",")
                    )
                }
            };
            Ok(text(&who))
        })
        .server_streaming_fn("Count", |m: Text, _ctx: &ServerContext| {
            let n: usize = m.s.parse().unwrap_or(0);
            let it: grpc_sync::ResponseStream<'_, Text> =
                Box::new((0..n).map(|i| Ok(text(&i.to_string()))));
            Ok(it)
        })
        .client_streaming("Join", |reqs: Streaming<Text>, _ctx: &ServerContext| {
            let mut out = Vec::new();
            for r in reqs {
                out.push(r?.s);
            }
            Ok(text(&out.join("+")))
        })
        .bidi_streaming_fn("Upper", |reqs: Streaming<Text>, _ctx: &ServerContext| {
            let it: grpc_sync::ResponseStream<'_, Text> =
                Box::new(reqs.map(|r| r.map(|m| text(&m.s.to_uppercase()))));
            Ok(it)
        })
        .into()
}

/// A started server with the whoami, route guide and greeter services, and the handshake
/// errors it reports.
struct TestServer {
    server: Server,
    errors: Receiver<(String, HandshakeError)>,
}

fn server() -> TestServer {
    let (tx, errors) = unbounded();
    let db = common::route_guide::load_db().expect("route guide db");
    let server = Server::builder()
        .max_workers(8)
        .add_service(whoami())
        .add_service(RouteGuideServer::new(
            common::route_guide::RouteGuideService::new(db),
        ))
        .add_service(GreeterServer::new(common::helloworld::Greeter))
        .on_handshake_error(move |peer, e| {
            let _ = tx.send((peer.to_string(), e.clone()));
        })
        .build();
    TestServer { server, errors }
}

impl TestServer {
    fn tls_port(&self, creds: ServerCredentials) -> u16 {
        self.server
            .add_secure_port("127.0.0.1:0", creds)
            .expect("secure port")
    }

    fn plain_port(&self) -> u16 {
        self.server
            .add_insecure_port("127.0.0.1:0")
            .expect("insecure port")
    }

    fn start(&self) {
        self.server.start().expect("start");
    }

    /// Waits for the server to report a handshake failure whose message holds `fragment`
    /// (a client may try more than one connection, so earlier reports are skipped).
    fn expect_error(&self, fragment: &str) -> HandshakeError {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.errors.recv_timeout(left) {
                Ok((_peer, e)) if e.to_string().contains(fragment) => return e,
                Ok((_peer, e)) => seen.push(e.to_string()),
                Err(_) => panic!(
                    "the server reported no handshake error with {fragment:?} within {WAIT:?}; \
                     it reported {seen:?}"
                ),
            }
        }
    }
}

fn server_creds(_pki: &Pki, id: &Identity) -> ServerCredentials {
    ServerCredentials::from_pem(id.cert.as_bytes(), id.key.as_bytes()).expect("server creds")
}

fn mtls_creds(pki: &Pki, mode: ClientAuth) -> ServerCredentials {
    server_creds(pki, &pki.server)
        .with_client_ca(pki.ca.as_bytes(), mode)
        .expect("client ca")
}

fn client_creds(pki: &Pki) -> ChannelCredentials {
    ChannelCredentials::from_ca_pem(pki.ca.as_bytes()).expect("roots")
}

fn with_identity(creds: ChannelCredentials, id: &Identity) -> ChannelCredentials {
    creds
        .with_client_identity(id.cert.as_bytes(), id.key.as_bytes())
        .expect("client identity")
}

fn secure(port: u16, creds: ChannelCredentials) -> Channel {
    Channel::secure(&format!("localhost:{port}"), creds).expect("channel")
}

fn call_am(ch: &Channel) -> Result<String, Status> {
    ch.unary::<Text, Text>("/test.Who/Am", Request::new(text("")).with_timeout(WAIT))
        .map(|r| r.into_inner().s)
}

/// Runs all four kinds of RPC of the whoami service, then the route guide client.
fn all_four_kinds(ch: &Channel) {
    let n: Vec<String> = ch
        .server_streaming::<_, Text>("/test.Who/Count", Request::new(text("100")))
        .expect("server streaming")
        .map(|r| r.expect("item").s)
        .collect();
    assert_eq!(n.len(), 100);
    assert_eq!(n[99], "99");
    let joined = ch
        .client_streaming::<_, Text, _>(
            "/test.Who/Join",
            Request::new(["a", "b", "c"].into_iter().map(text)),
        )
        .expect("client streaming")
        .into_inner();
    assert_eq!(joined.s, "a+b+c");
    let upper: Vec<String> = ch
        .bidi_streaming::<_, Text, _>(
            "/test.Who/Upper",
            Request::new(["x", "y"].into_iter().map(text)),
        )
        .expect("bidi")
        .map(|r| r.expect("item").s)
        .collect();
    assert_eq!(upper, ["X", "Y"]);
    let db = common::route_guide::load_db().unwrap();
    let report = common::route_guide::run_client(ch, &db, 7).expect("route guide client");
    assert_eq!(report.got.len(), 2);
    assert!(!report.listed.is_empty());
    assert_eq!(report.chat.len(), 1, "{:?}", report.chat);
}

/// Asserts an UNAVAILABLE status whose message names the cause, and that it came fast.
fn assert_unavailable(res: Result<String, Status>, fragment: &str, started: Instant) {
    let took = started.elapsed();
    let st = res.expect_err("the call should fail");
    assert_eq!(st.code(), Code::Unavailable, "{st:?}");
    assert!(
        st.message().contains(fragment),
        "expected {fragment:?} in {:?}",
        st.message()
    );
    assert!(took < FAST, "took {took:?} to fail: {st:?}");
}

#[test]
fn tls_all_four_rpc_kinds_and_anonymous_auth_context() {
    let pki = Pki::new();
    let s = server();
    let port = s.tls_port(server_creds(&pki, &pki.server));
    s.start();
    let ch = secure(port, client_creds(&pki));
    let who = call_am(&ch).expect("unary over TLS");
    assert!(who.starts_with("ssl TLSv1.3 anonymous"), "{who}");
    all_four_kinds(&ch);
}

#[test]
fn mutual_tls_all_four_rpc_kinds_and_peer_identity() {
    let pki = Pki::new();
    let s = server();
    let port = s.tls_port(mtls_creds(&pki, ClientAuth::RequireAndVerify));
    s.start();
    let ch = secure(port, with_identity(client_creds(&pki), &pki.client));
    let who = call_am(&ch).expect("unary over mTLS");
    assert!(who.contains("cn=grpc-sync test client"), "{who}");
    assert!(
        who.contains("subject=CN=grpc-sync test client,O=grpc-sync tests")
            || who.contains("subject=O=grpc-sync tests,CN=grpc-sync test client"),
        "{who}"
    );
    assert!(who.contains("DNS:client.test"), "{who}");
    assert!(who.contains("URI:spiffe://grpc-sync.test/client"), "{who}");
    all_four_kinds(&ch);
}

#[test]
fn large_messages_and_concurrent_calls_share_one_tls_connection() {
    let pki = Pki::new();
    let s = server();
    let port = s.tls_port(server_creds(&pki, &pki.server));
    s.start();
    let ch = secure(port, client_creds(&pki));
    // 3 MiB each way: many TLS records, flow-control windows filling and draining.
    let big = "x".repeat(1536 * 1024);
    let echoed = ch
        .client_streaming::<_, Text, _>(
            "/test.Who/Join",
            Request::new(vec![text(&big), text(&big)].into_iter()),
        )
        .expect("large client stream")
        .into_inner();
    assert_eq!(echoed.s.len(), 2 * big.len() + 1);
    // Bidi streams from several threads at once: reads and writes interleave on the session.
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let ch = ch.clone();
            std::thread::spawn(move || {
                let msgs: Vec<Text> = (0..200).map(|i| text(&format!("t{t}m{i}"))).collect();
                let got: Vec<String> = ch
                    .bidi_streaming::<_, Text, _>("/test.Who/Upper", Request::new(msgs.into_iter()))
                    .expect("bidi")
                    .map(|r| r.expect("item").s)
                    .collect();
                assert_eq!(got.len(), 200);
                assert_eq!(got[199], format!("T{t}M199"));
            })
        })
        .collect();
    for t in threads {
        t.join().expect("bidi thread");
    }
}

#[test]
fn request_mode_admits_clients_with_and_without_certificates() {
    let pki = Pki::new();
    let s = server();
    let port = s.tls_port(mtls_creds(&pki, ClientAuth::Request));
    s.start();
    let anon = call_am(&secure(port, client_creds(&pki))).expect("without a certificate");
    assert!(anon.contains("anonymous"), "{anon}");
    let known = call_am(&secure(
        port,
        with_identity(client_creds(&pki), &pki.client),
    ))
    .expect("with a certificate");
    assert!(known.contains("cn=grpc-sync test client"), "{known}");
}

#[test]
fn secure_and_insecure_ports_coexist() {
    let pki = Pki::new();
    let s = server();
    let tls = s.tls_port(server_creds(&pki, &pki.server));
    let plain = s.plain_port();
    s.start();
    assert!(call_am(&secure(tls, client_creds(&pki)))
        .unwrap()
        .starts_with("ssl"));
    let ch = Channel::insecure(&format!("127.0.0.1:{plain}")).unwrap();
    assert_eq!(call_am(&ch).unwrap(), "insecure");
    // A port added after start is served too.
    let late = s.tls_port(server_creds(&pki, &pki.server));
    assert!(call_am(&secure(late, client_creds(&pki))).is_ok());
}

#[test]
fn ip_target_and_server_name_override() {
    let pki = Pki::new();
    let s = server();
    let port = s.tls_port(server_creds(&pki, &pki.wrong_name));
    let good = s.tls_port(server_creds(&pki, &pki.server));
    s.start();
    // The certificate is for wrong.example: the override makes it acceptable.
    let creds = client_creds(&pki).with_server_name_override("wrong.example");
    let ch = Channel::secure(&format!("127.0.0.1:{port}"), creds).unwrap();
    assert!(call_am(&ch).is_ok());
    // An IP target is checked against the certificate's IP SAN.
    let ch = Channel::secure(&format!("127.0.0.1:{good}"), client_creds(&pki)).unwrap();
    assert!(call_am(&ch).is_ok());
    let ch = Channel::builder(&format!("ipv4:127.0.0.1:{good}"))
        .tls(client_creds(&pki))
        .build()
        .unwrap();
    assert!(call_am(&ch).is_ok());
}

#[test]
fn unknown_ca_is_unavailable_naming_it() {
    let pki = Pki::new();
    let s = server();
    let port = s.tls_port(server_creds(&pki, &pki.untrusted_server));
    s.start();
    let t = Instant::now();
    assert_unavailable(call_am(&secure(port, client_creds(&pki))), "unknown CA", t);
    // The server hears that the client refused its certificate.
    let _ = s.expect_error("does not trust our certificate");
}

#[test]
fn name_mismatch_is_unavailable_naming_both_names() {
    let pki = Pki::new();
    let s = server();
    let port = s.tls_port(server_creds(&pki, &pki.wrong_name));
    s.start();
    let t = Instant::now();
    let res = call_am(&secure(port, client_creds(&pki)));
    let msg = res
        .as_ref()
        .map_err(|e| e.message().to_string())
        .unwrap_err();
    assert!(msg.contains("wrong.example"), "{msg}");
    assert!(
        msg.contains(
            "the server's certificate is not valid for \"localhost\", it is for DNS:wrong.example;"
        ),
        "{msg}"
    );
    assert!(msg.contains("with_server_name_override"), "{msg}");
    assert_unavailable(res, "name mismatch", t);
}

#[test]
fn expired_server_certificate_is_unavailable() {
    let pki = Pki::new();
    let s = server();
    let port = s.tls_port(server_creds(&pki, &pki.expired));
    s.start();
    let t = Instant::now();
    assert_unavailable(
        call_am(&secure(port, client_creds(&pki))),
        "the server's certificate has expired: valid until 2001-01-01 00:00:00 UTC",
        t,
    );
}

#[test]
fn missing_client_certificate_is_unavailable_on_both_sides() {
    let pki = Pki::new();
    let s = server();
    let port = s.tls_port(mtls_creds(&pki, ClientAuth::RequireAndVerify));
    s.start();
    let t = Instant::now();
    assert_unavailable(
        call_am(&secure(port, client_creds(&pki))),
        "requires a client certificate",
        t,
    );
    let _ = s.expect_error("presented no certificate");
}

#[test]
fn untrusted_and_expired_client_certificates_are_refused() {
    let pki = Pki::new();
    let s = server();
    let port = s.tls_port(mtls_creds(&pki, ClientAuth::RequireAndVerify));
    s.start();
    refused_client_certificate(
        &s,
        port,
        &pki,
        &pki.untrusted_client,
        "does not trust our client certificate",
        "the client's certificate is signed by an unknown CA: not signed by a CA in the \
         server's client-CA roots",
    );
    refused_client_certificate(
        &s,
        port,
        &pki,
        &pki.expired_client,
        "expired",
        "the client's certificate has expired: valid until 2001-01-01",
    );
    // A server certificate (extended key usage serverAuth only) as a client certificate.
    refused_client_certificate(
        &s,
        port,
        &pki,
        &pki.server,
        "cannot use our client certificate for this purpose",
        "the client's certificate may not be used for this (its extended key usage lacks \
         clientAuth)",
    );
}

/// Presents `id` to the mutual-TLS server on `port`: the call fails fast with
/// `client_hears` in its message, and the server reports `server_says`.
fn refused_client_certificate(
    s: &TestServer,
    port: u16,
    pki: &Pki,
    id: &Identity,
    client_hears: &str,
    server_says: &str,
) {
    let t = Instant::now();
    let res = call_am(&secure(port, with_identity(client_creds(pki), id)));
    assert_unavailable(res, client_hears, t);
    let _ = s.expect_error(server_says);
}

/// A file of the X.509 v1 fixture (`tests/data/x509v1/README.md` says how it was made).
fn x509v1(file: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/x509v1")
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn x509_v1_certificates_are_refused_saying_so() {
    // As our own identity: refused when the credentials are made, in words.
    let e = ServerCredentials::from_pem(&x509v1("v1.pem"), &x509v1("v1.key")).unwrap_err();
    assert!(e.to_string().contains("X.509 v1"), "{e}");
    assert!(e.to_string().contains("issue a v3 certificate"), "{e}");
    let pki = Pki::new();
    let e = client_creds(&pki)
        .with_client_identity(&x509v1("v1.pem"), &x509v1("v1.key"))
        .unwrap_err();
    assert!(e.to_string().contains("X.509 v1"), "{e}");

    // From a peer (grpcio's BoringSSL sends one without complaint): a bare rustls client
    // presents it to our mTLS server, which says what is wrong and what to do.
    let s = server();
    let creds = server_creds(&pki, &pki.server)
        .with_client_ca(&x509v1("ca.pem"), ClientAuth::RequireAndVerify)
        .expect("v1 test CA");
    let port = s.tls_port(creds);
    s.start();
    let err =
        bare_tls_client_with_cert(&pki, port, &x509v1("v1.pem"), &x509v1("v1.key")).unwrap_err();
    assert!(err.contains("CertificateUnknown"), "{err}");
    let e = s.expect_error("X.509 v1");
    assert_eq!(
        e.to_string(),
        "certificate verify failed: the client's certificate is X.509 v1 (not v3), which \
         rustls does not accept; issue a v3 certificate (openssl: sign with \
         -extfile/-extensions, so that it has extensions)"
    );
}

/// A rustls client presenting `cert` with `key` as they are (rustls's own config builder
/// refuses a certificate it cannot parse); returns the handshake's outcome.
fn bare_tls_client_with_cert(pki: &Pki, port: u16, cert: &[u8], key: &[u8]) -> Result<(), String> {
    #[derive(Debug)]
    struct Fixed(Arc<rustls::sign::CertifiedKey>);
    impl rustls::client::ResolvesClientCert for Fixed {
        fn resolve(
            &self,
            _: &[&[u8]],
            _: &[rustls::SignatureScheme],
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(self.0.clone())
        }
        fn has_certs(&self) -> bool {
            true
        }
    }
    let provider = rustls_provider();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .unwrap();
    let key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::from_pem_slice(key).unwrap())
        .unwrap();
    let certified = Arc::new(rustls::sign::CertifiedKey::new(chain, key));
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pki.ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(Fixed(certified)));
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    finish_bare_handshake(cfg, port)
}

fn rustls_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A bare rustls server that speaks only `http/1.1` (no h2): answers one handshake.
fn http1_only_tls_server(pki: &Pki) -> (u16, std::thread::JoinHandle<()>) {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.server.cert.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.server.key.as_bytes()).unwrap();
    let mut cfg = rustls::ServerConfig::builder_with_provider(rustls_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let cfg = Arc::new(cfg);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (mut sock, _) = l.accept().unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        let mut conn = rustls::ServerConnection::new(cfg).unwrap();
        while conn.is_handshaking() {
            if conn.complete_io(&mut sock).is_err() {
                break;
            }
        }
    });
    (port, h)
}

/// A bare rustls client offering `alpn` (maybe nothing); returns the handshake's outcome.
fn bare_tls_client(pki: &Pki, port: u16, alpn: &[&[u8]]) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pki.ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(rustls_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    finish_bare_handshake(cfg, port)
}

/// Connects with `cfg` to `localhost:port`, handshakes and reads until the server closes or
/// sends something.
fn finish_bare_handshake(cfg: rustls::ClientConfig, port: u16) -> Result<(), String> {
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    }
    // The handshake is done; the server may still close on us: read until it does.
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let mut buf = [0u8; 64];
    match tls.read(&mut buf) {
        Ok(0) => Err("closed".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn server_without_h2_is_unavailable_naming_alpn() {
    let pki = Pki::new();
    let (port, h) = http1_only_tls_server(&pki);
    let t = Instant::now();
    let res = call_am(&secure(port, client_creds(&pki)));
    assert_unavailable(res, "h2", t);
    h.join().unwrap();
}

#[test]
fn client_without_h2_fails_the_handshake() {
    let pki = Pki::new();
    let s = server();
    let port = s.tls_port(server_creds(&pki, &pki.server));
    s.start();
    // Offers only http/1.1: rustls refuses with no_application_protocol.
    let err = bare_tls_client(&pki, port, &[b"http/1.1"]).unwrap_err();
    assert!(err.contains("NoApplicationProtocol"), "{err}");
    let _ = s.expect_error("does not offer h2");
    // Offers no ALPN at all: the handshake completes, then the server closes.
    let err = bare_tls_client(&pki, port, &[]).unwrap_err();
    assert!(!err.is_empty());
    let e = s.expect_error("ALPN h2");
    assert!(
        matches!(e, HandshakeError::NoH2 { selected: None }),
        "{e:?}"
    );
    // A good client still gets in.
    assert!(call_am(&secure(port, client_creds(&pki))).is_ok());
}

#[test]
fn tls_client_on_a_plaintext_port_fails_fast_saying_so() {
    let pki = Pki::new();
    let s = server();
    let port = s.plain_port();
    s.start();
    let t = Instant::now();
    assert_unavailable(
        call_am(&secure(port, client_creds(&pki))),
        "does not speak TLS?",
        t,
    );
    // The plaintext port answered nothing and reports nothing.
    assert!(s.errors.try_recv().is_err());
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    assert_eq!(call_am(&ch).unwrap(), "insecure");
}

#[test]
fn plaintext_client_on_a_tls_port_fails_fast_on_both_sides() {
    let pki = Pki::new();
    let s = server();
    let port = s.tls_port(server_creds(&pki, &pki.server));
    s.start();
    let t = Instant::now();
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    assert_unavailable(call_am(&ch), "TLS", t);
    let e = s.expect_error("plaintext HTTP/2");
    assert!(matches!(e, HandshakeError::NotTls { .. }), "{e:?}");
    // An HTTP/1 request on the TLS port is refused just as fast.
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = sock.read_to_end(&mut buf);
    assert!(t.elapsed() < WAIT);
    let _ = s.expect_error("HTTP/1");
}

#[test]
fn silent_peer_times_out_the_handshake() {
    let pki = Pki::new();
    let (tx, rx) = unbounded();
    let server = Server::builder()
        .add_service(whoami())
        .handshake_timeout(Duration::from_millis(200))
        .on_handshake_error(move |_, e| {
            let _ = tx.send(e.clone());
        })
        .build();
    let port = server
        .add_secure_port("127.0.0.1:0", server_creds(&pki, &pki.server))
        .unwrap();
    server.start().unwrap();
    let _silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let e = rx.recv_timeout(WAIT).expect("a timeout report");
    assert!(matches!(e, HandshakeError::Timeout(_)), "{e:?}");
}

#[cfg(feature = "native-roots")]
#[test]
fn native_roots_load_or_say_why() {
    match ChannelCredentials::native_roots() {
        Ok(creds) => assert!(format!("{creds:?}").contains("roots")),
        Err(e) => assert!(e.to_string().contains("platform certificate store"), "{e}"),
    }
}

#[test]
fn bad_pem_is_a_typed_error_not_a_panic() {
    let pki = Pki::new();
    let e = ServerCredentials::from_pem(b"not pem", pki.server.key.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("no PEM certificate"), "{e}");
    let e = ServerCredentials::from_pem(pki.server.cert.as_bytes(), b"").unwrap_err();
    assert!(e.to_string().contains("no private key"), "{e}");
    // The client's key with the server's certificate: rustls notices the mismatch.
    let e = ServerCredentials::from_pem(pki.server.cert.as_bytes(), pki.client.key.as_bytes())
        .unwrap_err();
    assert!(e.to_string().contains("invalid TLS configuration"), "{e}");
    let e = ChannelCredentials::from_ca_pem(
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap_err();
    assert!(!e.to_string().is_empty());
    assert!(ChannelCredentials::from_ca_pem(b"").is_err());
    let e = client_creds(&pki)
        .with_client_identity(pki.client.cert.as_bytes(), b"garbage")
        .unwrap_err();
    assert!(e.to_string().contains("private key"), "{e}");
}

#[test]
fn peer_identity_parses_subject_and_sans() {
    let pki = Pki::new();
    let der = CertificateDer::from_pem_slice(pki.server.cert.as_bytes()).unwrap();
    let id = grpc_sync::PeerIdentity::from_der(der.as_ref()).expect("parse");
    assert_eq!(id.common_name(), Some("localhost"));
    assert_eq!(id.subject(), "O=grpc-sync tests,CN=localhost");
    assert!(id
        .subject_alt_names()
        .contains(&SubjectAltName::Dns("localhost".into())));
    assert!(id
        .subject_alt_names()
        .contains(&SubjectAltName::Ip("127.0.0.1".parse().unwrap())));
    assert_eq!(id.dns_names().collect::<Vec<_>>(), ["localhost"]);
    for cut in 0..der.len() {
        let _ = grpc_sync::PeerIdentity::from_der(&der[..cut]);
    }
}

// --- interop with Python grpcio ------------------------------------------------------------------

/// The route guide cases of `clients.py`: all four RPC kinds.
const ROUTE_GUIDE_CASES: &str = "get_feature,get_feature_missing,list_features,record_route,\
                                 record_route_future,route_chat,route_chat_pingpong";

#[test]
fn python_secure_channel_against_our_tls_server() {
    let pki = Pki::new();
    let dir = pki.write("py-client-tls");
    let s = server();
    let port = s.tls_port(server_creds(&pki, &pki.server));
    s.start();
    let ca = dir.arg("ca.pem");
    // The cases whose expectations hold for our example services (the others test grpcio
    // servers' test markers: metadata echo, sleep and abort requests).
    for (service, cases) in [
        (
            "helloworld",
            "say_hello,say_hello_again,unimplemented,large_message,concurrent_calls",
        ),
        ("route_guide", ROUTE_GUIDE_CASES),
    ] {
        let out = python::run_script(
            "tls_client.py",
            &[
                "--service",
                service,
                "--port",
                &port.to_string(),
                "--ca",
                &ca,
                "--server-name",
                "localhost",
                "--case",
                cases,
            ],
        );
        out.assert_success(&format!(
            "grpcio secure_channel ({service}) against our TLS server"
        ));
    }
}

#[test]
fn python_secure_channel_with_client_certificate_against_our_mtls_server() {
    let pki = Pki::new();
    let dir = pki.write("py-client-mtls");
    let s = server();
    let port = s.tls_port(mtls_creds(&pki, ClientAuth::RequireAndVerify));
    s.start();
    let p = |f: &str| dir.arg(f);
    let out = python::run_script(
        "tls_client.py",
        &[
            "--service",
            "route_guide",
            "--port",
            &port.to_string(),
            "--ca",
            &p("ca.pem"),
            "--cert",
            &p("client.pem"),
            "--key",
            &p("client.key"),
            "--case",
            ROUTE_GUIDE_CASES,
        ],
    );
    out.assert_success("grpcio mTLS client against our mTLS server");
    // Without a certificate, grpcio's call fails with UNAVAILABLE and our server says why.
    let out = python::run_script(
        "tls_client.py",
        &[
            "--service",
            "helloworld",
            "--port",
            &port.to_string(),
            "--ca",
            &p("ca.pem"),
            "--expect-failure",
            "--timeout",
            "5",
        ],
    );
    out.assert_success("grpcio client without a certificate");
    assert!(
        out.stdout.contains("FAILED_AS_EXPECTED UNAVAILABLE"),
        "{out}"
    );
    let _ = s.expect_error("presented no certificate");
}

#[test]
fn our_client_against_python_ssl_server_credentials() {
    let pki = Pki::new();
    let dir = pki.write("py-server-tls");
    let p = |f: &str| dir.arg(f);
    let server = PythonServer::start_script(
        "tls_server.py",
        "all",
        &["--cert", &p("server.pem"), "--key", &p("server.key")],
    );
    let ch = secure(server.port(), client_creds(&pki));
    let db = common::route_guide::load_db().unwrap();
    let report = common::route_guide::run_client(&ch, &db, 11).expect("route guide over TLS");
    assert!(!report.listed.is_empty());
    let hello = common::helloworld::run_client(&ch).expect("greeter over TLS");
    assert_eq!(hello[0], "hello czl");
    // Our client refuses grpcio's certificate when it does not trust the CA.
    let other = ChannelCredentials::from_ca_pem(pki.other_ca.as_bytes()).unwrap();
    let t = Instant::now();
    let res = common::helloworld::run_client(&secure(server.port(), other));
    let err = res.unwrap_err().to_string();
    assert!(err.contains("unknown CA"), "{err}");
    assert!(t.elapsed() < FAST);
}

#[test]
fn our_client_with_certificate_against_python_mtls_server() {
    let pki = Pki::new();
    let dir = pki.write("py-server-mtls");
    let p = |f: &str| dir.arg(f);
    let server = PythonServer::start_script(
        "tls_server.py",
        "all",
        &[
            "--cert",
            &p("server.pem"),
            "--key",
            &p("server.key"),
            "--client-ca",
            &p("ca.pem"),
            "--require-client-auth",
        ],
    );
    let ch = secure(
        server.port(),
        with_identity(client_creds(&pki), &pki.client),
    );
    let db = common::route_guide::load_db().unwrap();
    common::route_guide::run_client(&ch, &db, 12).expect("route guide over mTLS");
    // Without a certificate grpcio refuses us: UNAVAILABLE, fast, naming the cause.
    let t = Instant::now();
    let err = common::helloworld::run_client(&secure(server.port(), client_creds(&pki)))
        .unwrap_err()
        .to_string();
    assert!(t.elapsed() < FAST, "{err}");
    assert!(err.contains("certificate"), "{err}");
}

#[test]
fn our_tls_client_on_python_plaintext_server_fails_fast() {
    let pki = Pki::new();
    let server = PythonServer::start("helloworld");
    let t = Instant::now();
    let err = common::helloworld::run_client(&secure(server.port(), client_creds(&pki)))
        .unwrap_err()
        .to_string();
    assert!(t.elapsed() < FAST, "{err}");
    assert!(err.contains("does not speak TLS?"), "{err}");
}
