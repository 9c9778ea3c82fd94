//! Every example at once: one server with all the services on `127.0.0.1:0`, every client
//! routine run against it, and each result checked; then a small deployment: three Greeter
//! servers behind one round_robin channel with a retry policy, one of them stopped mid-way.
//!
//! Run: `cargo run --release --example demo` (`-- --option NAME=VALUE`, repeatable, gives grpcio
//! channel arguments to the server and the channel). Exits 0 only if every check passed.

mod common;

use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use grpc_sync::health::{HealthCheckRequest, HealthClient, HealthReporter, ServingStatus};
use grpc_sync::{Channel, Code, MetadataMap, OptionValue, Request, Server, ServerContext, Status};

use common::checks::{self, Checks, SEED};
use common::pb::calculator::demo_server::DemoServer as CalculatorServer;
use common::pb::compute::compute_server::ComputeServer;
use common::pb::contact::contact_server::ContactServer;
use common::pb::format_data::format_data_server::FormatDataServer;
use common::pb::helloworld::greeter_client::GreeterClient;
use common::pb::helloworld::greeter_server::{self, GreeterServer};
use common::pb::helloworld::{HelloReply, HelloRequest};
use common::pb::route_guide::route_guide_server::RouteGuideServer;
use common::pb::simple_cal::cal_server::CalServer;
use common::pb::streams::demo_server::DemoServer as StreamsServer;
use common::BoxError;
use common::{cal, calculator, compute, contact, format_data, helloworld, route_guide, streams};

/// A runtime bug must not hang the demo: it gives up after this long.
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// How long to wait for a server-side event (a handler noticing a cancel, say).
const EVENT_WAIT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    common::init_logging();
    // `--option NAME=VALUE` (repeatable): grpcio channel arguments for the server and the
    // channel.
    let flags = common::bench::Flags::from_env();
    flags.only(&["option"]);
    let options = common::options_or_exit(flags.options());
    // One descriptor per connection: lift the soft open-files limit (Go does the same).
    common::raise_fd_limit();
    watchdog();
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Ends the process if the demo outlives [`TIME_LIMIT`].
fn watchdog() {
    thread::spawn(|| {
        thread::sleep(TIME_LIMIT);
        eprintln!("demo: still running after {TIME_LIMIT:?}; giving up");
        std::process::exit(1);
    });
}

/// `cargo test` runs the demo too (the example is built with `test = true`), so every
/// example is exercised against the real runtime in CI.
#[test]
fn demo_passes_every_check() {
    watchdog();
    assert!(run(&[]).expect("demo setup"), "some demo checks failed");
}

/// Every example's flag parser takes `--option NAME=VALUE`, repeatable, typed by the option,
/// and refuses an unknown name with the close ones.
#[test]
fn every_flag_parser_takes_option() {
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let want = vec![
        (
            "grpc.max_receive_message_length".to_string(),
            OptionValue::Int(100 << 20),
        ),
        (
            "grpc.primary_user_agent".to_string(),
            OptionValue::Str("42".into()),
        ),
    ];
    let args = common::Args::parse_from(words(&[
        "--option",
        "grpc.max_receive_message_length=104857600",
        "--option=grpc.primary_user_agent=42",
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(args.options, want);
    let flags = common::bench::Flags::parse(words(&[
        "--option",
        "grpc.max_receive_message_length=104857600",
        "--option=grpc.primary_user_agent=42",
    ]))
    .unwrap();
    assert_eq!(common::options_or_exit(flags.options()), want);
    let server = common::interop::ServerArgs::parse_from(words(&[
        "--option=grpc.max_receive_message_length=104857600",
        "--option=grpc.primary_user_agent=42",
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(server.options, want);
    let client = common::interop::ClientArgs::parse_from(words(&[
        "--option=grpc.max_receive_message_length=104857600",
        "--option=grpc.primary_user_agent=42",
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(client.options, want);

    let err = common::Args::parse_from(words(&["--option", "grpc.max_recv_message_length=1"]))
        .unwrap_err();
    assert!(
        err.contains("did you mean one of grpc.max_receive_message_length,"),
        "{err}"
    );
    let err = common::parse_option("grpc.max_send_message_length=lots").unwrap_err();
    assert!(err.contains("takes an integer"), "{err}");
    // And the options reach a channel built from the flags.
    assert!(args.channel().is_ok());
}

/// Waits up to [`EVENT_WAIT`] for a server event matching `pred`, keeping the others.
fn wait_event(
    events: &mpsc::Receiver<streams::Event>,
    seen: &mut Vec<streams::Event>,
    pred: impl Fn(&streams::Event) -> bool,
) -> Option<streams::Event> {
    let deadline = Instant::now() + EVENT_WAIT;
    loop {
        if let Some(i) = seen.iter().position(&pred) {
            return Some(seen.remove(i));
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        seen.push(events.recv_timeout(left).ok()?);
    }
}

fn run(options: &[(String, OptionValue)]) -> Result<bool, BoxError> {
    let db = route_guide::load_db()?;
    let (events_tx, events) = mpsc::channel();
    let contact_service = Arc::new(contact::ContactService::new(Duration::from_secs(60), SEED));

    // Health checking for the whole server and the route guide (grpc.health.v1).
    let health =
        common::serving_health(&[common::pb::route_guide::route_guide_server::SERVICE_NAME]);

    // One server with every service, on a port the OS picks.
    let server = Server::builder()
        .max_workers(10)
        .add_service(GreeterServer::new(helloworld::Greeter))
        .add_service(RouteGuideServer::new(route_guide::RouteGuideService::new(
            db.clone(),
        )))
        .add_service(CalculatorServer::new(calculator::DemoService::default()))
        .add_service(FormatDataServer::new(format_data::FormatData))
        .add_service(CalServer::new(cal::CalService))
        .add_service(ComputeServer::new(compute::ComputeService))
        .add_service(StreamsServer::new(
            streams::DemoService::new(Duration::from_millis(10)).with_events(events_tx),
        ))
        .add_service(ContactServer::from_arc(contact_service.clone()))
        .add_service(health.service())
        .options(options.iter().cloned())?
        .build();
    let port = server.add_insecure_port("127.0.0.1:0")?;
    server.start()?;
    println!("demo server listening on 127.0.0.1:{port}");
    let channel = Channel::builder(&format!("127.0.0.1:{port}"))
        .options(options.iter().cloned())?
        .build()?;
    let mut c = Checks::default();

    checks::helloworld(&mut c, &channel);
    checks::route_guide(&mut c, &channel, &db);
    checks::calculator(&mut c, &channel);
    checks::format_data(&mut c, &channel);

    if let Some(r) = c.section("cal", || cal::run_client(&channel, 100, 300)) {
        c.eq("Add, Multiply", &r, &(400, 30000));
    }

    if let Some(r) = c.section("compute", || compute::run_client(&channel)) {
        c.eq("SayHello answers the length", &r, &"6".to_string());
    }

    if let Some(r) = c.section("streams", || {
        streams::run_client(&channel, Duration::ZERO, SEED)
    }) {
        c.eq(
            "hellojlc carries the map field",
            &r.hellojlc,
            &"my name is jlc, i am 23 years old; a: jlc is 23 (active: true)".to_string(),
        );
        let want: Vec<String> = (1..=streams::RECV_TAKE)
            .map(|i| format!("send {i} jlc"))
            .collect();
        c.eq("TestClientRecvStream streams", &r.received, &want);
        let mut seen = Vec::new();
        let ended = wait_event(
            &events,
            &mut seen,
            |e| matches!(e, streams::Event::RecvStreamEnded { data, .. } if data == "jlc"),
        );
        c.check(
            &format!("the server stops streaming once the client cancels ({ended:?})"),
            matches!(ended, Some(streams::Event::RecvStreamEnded { sent, .. }) if sent as usize >= streams::RECV_TAKE),
        );
        c.eq(
            "data \"close\": the server cancels the call",
            &r.close.map(|s| s.code()),
            &Some(Code::Cancelled),
        );
        c.eq(
            "TestClientSendStream answers ok",
            &r.send_result,
            &"ok".to_string(),
        );
        let read = wait_event(&events, &mut seen, |e| {
            matches!(e, streams::Event::SendStreamRead { .. })
        });
        c.eq(
            "TestClientSendStream stops reading at index 10",
            &read,
            &Some(streams::Event::SendStreamRead { read: 11 }),
        );
        let want: Vec<String> = r
            .two_way_sent
            .iter()
            .map(|d| format!("service send client {d}"))
            .collect();
        c.eq("TestTwoWayStream answers each message", &r.two_way, &want);
    }

    if let Some(r) = c.section("contact", || contact::run_client(&channel, SEED)) {
        let want: Vec<String> = r
            .status_sent
            .iter()
            .map(|m| format!("服务端接收到消息:{m}"))
            .collect();
        c.eq("sendStatus answers each message", &r.status_replies, &want);
        c.eq(
            "getTask sends a batch of tasks",
            &r.tasks.len(),
            &contact::TASKS,
        );
        c.check(
            "tasks look like 任务:N",
            r.tasks.iter().all(|t| t.starts_with("任务:")),
        );
        let want: Vec<String> = r
            .tasks
            .iter()
            .map(|t| format!("客户端接收到任务:{t}"))
            .collect();
        c.eq(
            "tellResult delivered every acknowledgement",
            &contact_service.results(),
            &want,
        );
    }

    if let Some(r) = c.section("health", || health_client(&channel, &health)) {
        c.eq(
            "Check: the server and the route guide are SERVING, others NOT_FOUND",
            &r.checks,
            &vec![
                Ok(ServingStatus::Serving),
                Ok(ServingStatus::Serving),
                Err(Code::NotFound),
            ],
        );
        c.eq(
            "Watch: the current status, then the change",
            &r.watched,
            &vec![ServingStatus::Serving, ServingStatus::NotServing],
        );
        c.eq("List: two services", &r.listed, &2);
    }

    if let Some(r) = c.section("deployment", deployment) {
        c.eq(
            "round_robin: 30 calls over three servers land 10 on each",
            &r.spread,
            &vec![10, 10, 10],
        );
        c.eq(
            "one server stopped: its calls go to the other two, retried if they were on it",
            &(r.failed_after_stop, r.to_stopped_after_stop),
            &(0, 0),
        );
    }

    server.stop(Some(Duration::from_secs(1))).wait();
    Ok(c.summary())
}

/// A Greeter that names its server in trailing metadata `x-served-by`.
struct TaggedGreeter(&'static str);

impl greeter_server::Greeter for TaggedGreeter {
    fn say_hello(&self, request: HelloRequest, ctx: &ServerContext) -> Result<HelloReply, Status> {
        let mut md = MetadataMap::new();
        md.insert("x-served-by", self.0)?;
        ctx.set_trailing_metadata(md);
        Ok(HelloReply {
            message: format!("hello {}", request.name),
        })
    }

    fn say_hello_again(
        &self,
        request: HelloRequest,
        ctx: &ServerContext,
    ) -> Result<HelloReply, Status> {
        self.say_hello(request, ctx)
    }
}

/// What the deployment section saw.
struct Deployment {
    /// Calls per server (a, b, c) out of 30.
    spread: Vec<usize>,
    failed_after_stop: usize,
    to_stopped_after_stop: usize,
}

/// Three Greeter servers, a round_robin channel over them whose service config retries
/// UNAVAILABLE; 30 calls; then server c stops without grace and 30 more calls are made.
fn deployment() -> Result<Deployment, BoxError> {
    let tags = ["a", "b", "c"];
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for tag in tags {
        let server = Server::builder()
            .add_service(GreeterServer::new(TaggedGreeter(tag)))
            .build();
        let port = server.add_insecure_port("127.0.0.1:0")?;
        server.start()?;
        addrs.push(format!("127.0.0.1:{port}"));
        servers.push(server);
    }
    let channel = Channel::builder(&format!("ipv4:{}", addrs.join(",")))
        .service_config(
            r#"{"loadBalancingConfig": [{"round_robin": {}}],
                "methodConfig": [{"name": [{"service": "helloworld.Greeter"}],
                  "timeout": "5s",
                  "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s",
                    "maxBackoff": "0.1s", "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
        )
        .build()?;
    channel.wait_for_ready(EVENT_WAIT)?;
    let client = GreeterClient::new(channel.clone());
    // round_robin connects every subchannel in the background: wait until all three answer.
    let deadline = Instant::now() + EVENT_WAIT;
    let mut seen = std::collections::HashSet::new();
    while seen.len() < tags.len() && Instant::now() < deadline {
        let r = client.say_hello_with_call(Request::new(HelloRequest { name: "lb".into() }))?;
        seen.insert(
            r.trailing_metadata()
                .get("x-served-by")
                .unwrap_or("?")
                .to_string(),
        );
    }
    let tally = |n: usize| {
        let mut counts = [0usize; 3];
        let mut failed = 0;
        for _ in 0..n {
            match client.say_hello_with_call(Request::new(HelloRequest { name: "lb".into() })) {
                Ok(r) => {
                    let tag = r.trailing_metadata().get("x-served-by").unwrap_or("?");
                    if let Some(i) = tags.iter().position(|t| *t == tag) {
                        counts[i] += 1;
                    }
                }
                Err(_) => failed += 1,
            }
        }
        (counts, failed)
    };
    let (spread, _) = tally(30);
    servers[2].stop(None).wait();
    let (after, failed_after_stop) = tally(30);
    println!(
        "deployment: round_robin spread {spread:?}; after stopping c: {after:?}, {failed_after_stop} failed"
    );
    Ok(Deployment {
        spread: spread.to_vec(),
        failed_after_stop,
        to_stopped_after_stop: after[2],
    })
}

/// What the health client saw.
struct HealthReport {
    checks: Vec<Result<ServingStatus, Code>>,
    watched: Vec<ServingStatus>,
    listed: usize,
}

/// Checks three services, watches the route guide while it turns NOT_SERVING, lists.
fn health_client(channel: &Channel, health: &HealthReporter) -> Result<HealthReport, BoxError> {
    let client = HealthClient::new(channel.clone());
    let route_guide = common::pb::route_guide::route_guide_server::SERVICE_NAME;
    let checks = ["", route_guide, "no.Such"]
        .iter()
        .map(|s| {
            let req = HealthCheckRequest {
                service: s.to_string(),
            };
            let r = client.check(req).map(|r| r.status()).map_err(|e| e.code());
            println!("Check {s:?}: {r:?}");
            r
        })
        .collect();
    let mut watch = client.watch(HealthCheckRequest {
        service: route_guide.to_string(),
    })?;
    let mut watched = Vec::new();
    if let Some(first) = watch.next() {
        watched.push(first?.status());
        health.set(route_guide, ServingStatus::NotServing);
        if let Some(next) = watch.next() {
            watched.push(next?.status());
        }
    }
    println!("Watch {route_guide:?}: {watched:?}");
    // Dropping the stream cancels the watch.
    drop(watch);
    let listed = client
        .list(grpc_sync::health::HealthListRequest {})?
        .statuses
        .len();
    println!("List: {listed} services");
    Ok(HealthReport {
        checks,
        watched,
        listed,
    })
}
