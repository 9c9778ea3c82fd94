//! Name resolution and load balancing (issue 16, items 1, 2 and 5): `round_robin` over three of
//! our servers and over three grpcio servers, a server stopped and restarted under load,
//! re-resolution through a user's `Resolver`, pick_first's address order, client-side health
//! checking and the channel's aggregated state.
//!
//! Every server binds 127.0.0.1:0; every wait has a deadline.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grpc_sync::health::{HealthReporter, ServingStatus};
use grpc_sync::{
    client::BackoffConfig, Channel, ChannelBuilder, ConnectivityState, MetadataMap, Request,
    Server, ServerContext, Service, Status,
};

const WAIT: Duration = Duration::from_secs(30);
const PATH: &str = "/helloworld.Greeter/SayHello";

#[derive(Clone, PartialEq, prost::Message)]
struct HelloRequest {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct HelloReply {
    #[prost(string, tag = "1")]
    message: String,
}

/// One of our Greeters that counts its calls and names itself in trailing metadata
/// `x-served-by`, as `servers.py --tag` does.
struct Backend {
    server: Server,
    port: u16,
    calls: Arc<AtomicUsize>,
    health: HealthReporter,
}

fn backend_on(tag: &str, port: u16) -> Backend {
    backend_with(tag, port, None)
}

fn backend_with(tag: &str, port: u16, tls: Option<&support::certs::Pki>) -> Backend {
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, tag) = (calls.clone(), tag.to_string());
    let health = HealthReporter::new();
    let server = Server::builder()
        .add_service(
            Service::builder("helloworld.Greeter")
                .unary("SayHello", move |req: HelloRequest, ctx: &ServerContext| {
                    c.fetch_add(1, Ordering::SeqCst);
                    let mut md = MetadataMap::new();
                    md.insert("x-served-by", &tag)?;
                    ctx.set_trailing_metadata(md);
                    Ok::<_, Status>(HelloReply {
                        message: format!("Hello {}", req.name),
                    })
                })
                .build(),
        )
        .add_service(health.service())
        .build();
    let addr = format!("127.0.0.1:{port}");
    let port = match tls {
        None => server.add_insecure_port(&addr),
        Some(pki) => server.add_secure_port(
            &addr,
            grpc_sync::ServerCredentials::from_pem(
                pki.server.cert.as_bytes(),
                pki.server.key.as_bytes(),
            )
            .unwrap(),
        ),
    }
    .expect("bind");
    server.start().expect("start");
    Backend {
        server,
        port,
        calls,
        health,
    }
}

fn backend(tag: &str) -> Backend {
    backend_on(tag, 0)
}

fn fast_backoff() -> BackoffConfig {
    BackoffConfig {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        ..BackoffConfig::default()
    }
}

fn ipv4_target(ports: &[u16]) -> String {
    let list: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    format!("ipv4:{}", list.join(","))
}

fn round_robin(ports: &[u16]) -> ChannelBuilder {
    Channel::builder(&ipv4_target(ports))
        .lb_policy("round_robin")
        .backoff(fast_backoff())
}

/// One call; the tag of the server that answered.
fn call(channel: &Channel) -> Result<String, Status> {
    let req =
        Request::new(HelloRequest { name: "lb".into() }).with_timeout(Duration::from_secs(10));
    let resp = channel.unary::<_, HelloReply>(PATH, req)?;
    Ok(resp
        .trailing_metadata()
        .get("x-served-by")
        .unwrap_or("?")
        .to_string())
}

/// Waits until the channel has a READY connection to each of `n` servers: calls until `n`
/// distinct tags have answered.
fn wait_spread(channel: &Channel, n: usize) {
    let deadline = Instant::now() + WAIT;
    let mut seen = std::collections::HashSet::new();
    while seen.len() < n {
        assert!(Instant::now() < deadline, "only {seen:?} answered");
        if let Ok(tag) = call(channel) {
            seen.insert(tag);
        }
    }
}

fn tally(channel: &Channel, calls: usize) -> (HashMap<String, usize>, usize) {
    let mut counts = HashMap::new();
    let mut failures = 0;
    for _ in 0..calls {
        match call(channel) {
            Ok(tag) => *counts.entry(tag).or_insert(0) += 1,
            Err(_) => failures += 1,
        }
    }
    (counts, failures)
}

#[test]
fn round_robin_spreads_300_calls_evenly_over_three_servers() {
    let backends: Vec<Backend> = ["a", "b", "c"].into_iter().map(backend).collect();
    let ports: Vec<u16> = backends.iter().map(|b| b.port).collect();
    let channel = round_robin(&ports).build().unwrap();
    assert!(channel.wait_for_ready(WAIT).is_ok());
    wait_spread(&channel, 3);
    let (counts, failures) = tally(&channel, 300);
    eprintln!("round_robin over 3 of our servers: {counts:?}, {failures} failed");
    assert_eq!(failures, 0);
    for tag in ["a", "b", "c"] {
        let n = counts.get(tag).copied().unwrap_or(0);
        assert!((90..=110).contains(&n), "{tag} got {n} of 300: {counts:?}");
    }
    assert_eq!(channel.state(false), ConnectivityState::Ready);
}

#[test]
fn a_stopped_server_costs_at_most_its_calls_in_flight_and_gets_calls_again_once_restarted() {
    let mut backends: Vec<Backend> = ["a", "b", "c"].into_iter().map(backend).collect();
    let ports: Vec<u16> = backends.iter().map(|b| b.port).collect();
    let channel = round_robin(&ports).build().unwrap();
    wait_spread(&channel, 3);

    let (before, failed_before) = tally(&channel, 150);
    assert_eq!(failed_before, 0);
    // Stop "b" without grace, between two calls of this (one) caller: nothing of ours is in
    // flight on it, so no call may fail.
    let b = backends.remove(1);
    b.server.stop(None).wait();
    let (after, failed_after) = tally(&channel, 150);
    eprintln!(
        "round_robin, b stopped after 150 calls: before {before:?}, after {after:?}, \
         {failed_after} failed"
    );
    assert_eq!(
        failed_after, 0,
        "no call was in flight on the stopped server"
    );
    assert_eq!(
        after.get("b"),
        None,
        "the stopped server got calls: {after:?}"
    );
    for tag in ["a", "c"] {
        let n = after.get(tag).copied().unwrap_or(0);
        assert!((65..=85).contains(&n), "{tag} took {n} of 150: {after:?}");
    }

    // Restarted on its port, it gets its share again once its subchannel reconnects.
    let b = backend_on("b", b.port);
    let deadline = Instant::now() + WAIT;
    while b.calls.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the restarted server got no call"
        );
        call(&channel).unwrap();
    }
    let (again, failed) = tally(&channel, 300);
    eprintln!("round_robin after the restart: {again:?}, {failed} failed");
    assert_eq!(failed, 0);
    for tag in ["a", "b", "c"] {
        let n = again.get(tag).copied().unwrap_or(0);
        assert!((90..=110).contains(&n), "{tag} got {n} of 300: {again:?}");
    }
}

/// Four callers make 100 calls each over three servers; one server stops without grace after
/// about 100 calls. Returns how many calls failed.
fn stop_one_under_load(builder: ChannelBuilder, ports: &[u16], stop: Backend) -> usize {
    let channel = builder.build().unwrap();
    wait_spread(&channel, ports.len());
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (channel, failures, done) = (channel.clone(), failures.clone(), done.clone());
            std::thread::spawn(move || {
                for _ in 0..100 {
                    if let Err(e) = call(&channel) {
                        eprintln!("a call in flight failed: {e}");
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    let deadline = Instant::now() + WAIT;
    while done.load(Ordering::SeqCst) < 100 {
        assert!(Instant::now() < deadline);
        std::thread::yield_now();
    }
    stop.server.stop(None).wait();
    for t in threads {
        t.join().unwrap();
    }
    failures.load(Ordering::SeqCst)
}

#[test]
fn calls_in_flight_on_a_server_that_stops_are_the_only_ones_lost() {
    // Without a retry policy the calls that fail are at most those that were on the stopped
    // server (one per caller).
    let mut backends: Vec<Backend> = ["a", "b", "c"].into_iter().map(backend).collect();
    let ports: Vec<u16> = backends.iter().map(|b| b.port).collect();
    let b = backends.remove(1);
    let failed = stop_one_under_load(round_robin(&ports), &ports, b);
    eprintln!("4 callers, 400 calls, b stopped after ~100, no retry policy: {failed} failed");
    assert!(failed <= 4, "{failed} calls failed");
}

#[test]
fn with_a_retry_policy_no_call_is_lost_when_a_server_stops() {
    let mut backends: Vec<Backend> = ["a", "b", "c"].into_iter().map(backend).collect();
    let ports: Vec<u16> = backends.iter().map(|b| b.port).collect();
    let b = backends.remove(1);
    let builder = round_robin(&ports).service_config(
        r#"{"methodConfig": [{"name": [{"service": "helloworld.Greeter"}],
            "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.1s",
                            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
    );
    let failed = stop_one_under_load(builder, &ports, b);
    eprintln!("4 callers, 400 calls, b stopped after ~100, retrying UNAVAILABLE: {failed} failed");
    assert_eq!(failed, 0);
}

#[test]
fn round_robin_over_three_grpcio_servers() {
    let servers: Vec<support::python::PythonServer> = ["a", "b", "c"]
        .into_iter()
        .map(|tag| {
            support::python::PythonServer::start_script("servers.py", "helloworld", &["--tag", tag])
        })
        .collect();
    let ports: Vec<u16> = servers.iter().map(|s| s.port()).collect();
    let channel = round_robin(&ports).build().unwrap();
    wait_spread(&channel, 3);
    let (counts, failures) = tally(&channel, 300);
    eprintln!("round_robin over 3 grpcio servers: {counts:?}, {failures} failed");
    assert_eq!(failures, 0);
    for tag in ["a", "b", "c"] {
        let n = counts.get(tag).copied().unwrap_or(0);
        assert!((90..=110).contains(&n), "{tag} got {n} of 300: {counts:?}");
    }
}

#[test]
fn pick_first_sends_everything_to_the_first_address_that_answers() {
    // A port with nothing behind it first: refused at once, so the next is tried.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let (a, b) = (backend("a"), backend("b"));
    let channel = Channel::builder(&ipv4_target(&[dead_port, a.port, b.port]))
        .backoff(fast_backoff())
        .build()
        .unwrap();
    let (counts, failures) = tally(&channel, 50);
    assert_eq!(failures, 0);
    assert_eq!(counts.get("a"), Some(&50), "{counts:?}");
}

#[test]
fn a_user_resolver_is_asked_again_when_the_connection_is_lost() {
    let a = backend("a");
    let b = backend("b");
    let addrs: Arc<Mutex<Vec<SocketAddr>>> =
        Arc::new(Mutex::new(vec![SocketAddr::from(([127, 0, 0, 1], a.port))]));
    let lookups = Arc::new(AtomicUsize::new(0));
    let (list, n) = (addrs.clone(), lookups.clone());
    let channel = Channel::builder("my-service:50051")
        .resolver(move || {
            n.fetch_add(1, Ordering::SeqCst);
            Ok(list.lock().unwrap().clone())
        })
        .min_time_between_resolutions(Duration::ZERO)
        .backoff(fast_backoff())
        .build()
        .unwrap();
    assert_eq!(
        lookups.load(Ordering::SeqCst),
        0,
        "nothing before the first call"
    );
    assert_eq!(call(&channel).unwrap(), "a");
    assert_eq!(lookups.load(Ordering::SeqCst), 1);
    // The service moves: the resolver now says b, and a goes away.
    *addrs.lock().unwrap() = vec![SocketAddr::from(([127, 0, 0, 1], b.port))];
    a.server.stop(None).wait();
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "the channel never moved to b");
        if let Ok(tag) = call(&channel) {
            if tag == "b" {
                break;
            }
        }
    }
    assert!(lookups.load(Ordering::SeqCst) >= 2);
}

#[test]
fn a_failed_lookup_is_unavailable_with_the_resolvers_words() {
    let channel = Channel::builder("my-service:50051")
        .resolver(|| Err("the registry has no my-service".to_string()))
        .build()
        .unwrap();
    let err = call(&channel).unwrap_err();
    assert_eq!(err.code(), grpc_sync::Code::Unavailable, "{err}");
    assert!(
        err.message().contains("the registry has no my-service"),
        "{err}"
    );
    let err = Channel::builder("no-such-host.invalid:50051")
        .build()
        .map(|c| call(&c).unwrap_err())
        .unwrap();
    assert_eq!(err.code(), grpc_sync::Code::Unavailable, "{err}");
    assert!(err.message().contains("no-such-host.invalid"), "{err}");
}

#[test]
fn health_checking_leaves_out_servers_not_serving() {
    let (a, b) = (backend("a"), backend("b"));
    b.health
        .set("helloworld.Greeter", ServingStatus::NotServing);
    a.health.set("helloworld.Greeter", ServingStatus::Serving);
    let channel = round_robin(&[a.port, b.port])
        .service_config(
            r#"{"loadBalancingConfig": [{"round_robin": {}}],
                "healthCheckConfig": {"serviceName": "helloworld.Greeter"}}"#,
        )
        .build()
        .unwrap();
    let (counts, failures) = tally(&channel, 40);
    assert_eq!(failures, 0);
    assert_eq!(counts.get("a"), Some(&40), "{counts:?}");
    // b comes back: it is picked again.
    b.health.set("helloworld.Greeter", ServingStatus::Serving);
    wait_spread(&channel, 2);
    // a goes: everything to b.
    a.health
        .set("helloworld.Greeter", ServingStatus::NotServing);
    let deadline = Instant::now() + WAIT;
    while call(&channel).unwrap() != "b" {
        assert!(Instant::now() < deadline);
    }
    let deadline = Instant::now() + WAIT;
    loop {
        // The watch answer may trail the change by a call or two.
        let (counts, _) = tally(&channel, 20);
        if counts.get("b") == Some(&20) {
            break;
        }
        assert!(Instant::now() < deadline, "a is still picked: {counts:?}");
    }
}

#[test]
fn a_server_without_the_health_service_counts_as_serving() {
    let plain = Server::builder()
        .add_service(
            Service::builder("helloworld.Greeter")
                .unary("SayHello", |req: HelloRequest, _: &ServerContext| {
                    Ok::<_, Status>(HelloReply { message: req.name })
                })
                .build(),
        )
        .build();
    let port = plain.add_insecure_port("127.0.0.1:0").unwrap();
    plain.start().unwrap();
    let channel = round_robin(&[port])
        .service_config(r#"{"healthCheckConfig": {"serviceName": "x"}}"#)
        .build()
        .unwrap();
    call(&channel).unwrap();
}

#[test]
fn the_channel_state_aggregates_its_subchannels() {
    let a = backend("a");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let channel = round_robin(&[a.port, dead_port]).build().unwrap();
    assert_eq!(channel.state(false), ConnectivityState::Idle);
    channel.wait_for_ready(WAIT).unwrap();
    assert_eq!(channel.state(false), ConnectivityState::Ready);
    let (counts, failures) = tally(&channel, 20);
    assert_eq!((counts.get("a"), failures), (Some(&20), 0));

    let only_dead = round_robin(&[dead_port]).build().unwrap();
    let deadline = Instant::now() + WAIT;
    while only_dead.state(true) != ConnectivityState::TransientFailure {
        assert!(Instant::now() < deadline);
        std::thread::yield_now();
    }
    let err = call(&only_dead).unwrap_err();
    assert_eq!(err.code(), grpc_sync::Code::Unavailable, "{err}");
    assert!(err.message().contains(&dead_port.to_string()), "{err}");
    only_dead.close();
    assert_eq!(only_dead.state(false), ConnectivityState::Shutdown);
}

#[test]
fn bad_policy_names_fail_the_build() {
    let err = Channel::builder("localhost:1")
        .lb_policy("weighted_target")
        .build()
        .unwrap_err();
    assert!(err.message().contains("weighted_target"), "{err}");
    let err = Channel::builder("localhost:1")
        .service_config(r#"{"loadBalancingConfig": [{"grpclb": {}}]}"#)
        .build()
        .unwrap_err();
    assert!(err.message().contains("loadBalancingConfig"), "{err}");
}

/// A loopback port where connects hang: a listener that never accepts, its accept queue
/// filled, so the kernel drops further SYNs. `None` if this kernel does not behave so.
fn black_hole() -> Option<(std::net::TcpListener, Vec<std::net::TcpStream>, u16)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..5000 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => held.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Some((listener, held, addr.port()))
            }
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn pick_first_tries_the_next_address_after_250_ms_without_dropping_the_first() {
    // gRFC A61: an address whose connect hangs must not hold the channel for the whole
    // connect timeout; the next one is tried 250 ms later. One call with a 10 s deadline
    // succeeds; trying the addresses one after the other would spend it on the first.
    let Some((_listener, _held, hole)) = black_hole() else {
        panic!(
            "could not make a loopback port whose connects hang (a full accept queue): this \
             kernel accepts more than 5000 pending connections"
        );
    };
    let a = backend("a");
    let channel = Channel::builder(&ipv4_target(&[hole, a.port]))
        .build()
        .unwrap();
    assert_eq!(call(&channel).unwrap(), "a");
}

#[test]
fn round_robin_over_tls_checks_every_server_as_the_targets_name() {
    // The target names the service ("localhost", as in the certificates); the resolver gives
    // the addresses; each subchannel's TLS handshake checks the target's name.
    let pki = support::certs::Pki::new();
    let backends: Vec<Backend> = ["a", "b"]
        .into_iter()
        .map(|t| backend_with(t, 0, Some(&pki)))
        .collect();
    let addrs: Vec<SocketAddr> = backends
        .iter()
        .map(|b| SocketAddr::from(([127, 0, 0, 1], b.port)))
        .collect();
    let channel = Channel::builder("localhost:443")
        .tls(grpc_sync::ChannelCredentials::from_ca_pem(pki.ca.as_bytes()).unwrap())
        .resolver(move || Ok(addrs.clone()))
        .lb_policy("round_robin")
        .backoff(fast_backoff())
        .build()
        .unwrap();
    wait_spread(&channel, 2);
    let (counts, failures) = tally(&channel, 100);
    assert_eq!(failures, 0);
    assert_eq!(
        (counts.get("a"), counts.get("b")),
        (Some(&50), Some(&50)),
        "{counts:?}"
    );

    // A name the certificates do not hold: every subchannel fails its handshake, and the
    // call says why.
    let addrs: Vec<SocketAddr> = backends
        .iter()
        .map(|b| SocketAddr::from(([127, 0, 0, 1], b.port)))
        .collect();
    let wrong = Channel::builder("other.example:443")
        .tls(grpc_sync::ChannelCredentials::from_ca_pem(pki.ca.as_bytes()).unwrap())
        .resolver(move || Ok(addrs.clone()))
        .lb_policy("round_robin")
        .build()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let err = loop {
        let e = call(&wrong).unwrap_err();
        if e.message().contains("TLS") || Instant::now() >= deadline {
            break e;
        }
    };
    assert_eq!(err.code(), grpc_sync::Code::Unavailable, "{err}");
    assert!(err.message().contains("other.example"), "{err}");
}
