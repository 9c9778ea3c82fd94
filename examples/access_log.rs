//! A route guide and Greeter server that logs one line per RPC: a server interceptor
//! (`common/access_log.rs`) hears every call end, whatever its kind and however it ends, and
//! writes method, peer, status, duration and messages in and out through the `log` facade.
//!
//! Run: `cargo run --release --example access_log` (port 50051; `--port P`, `--addr
//! HOST:PORT`, `--option NAME=VALUE`), then any client, e.g.
//! `cargo run --release --example route_guide_client`. Lines look like
//!
//! ```text
//! INFO access: /routeguide.RouteGuide/ListFeatures ipv4:127.0.0.1:51234 OK 1.234ms in=1 out=64
//! INFO access: /helloworld.Greeter/SayHello ipv6:[::1]:40512 DEADLINE_EXCEEDED "Deadline Exceeded" 100.2ms in=1 out=0
//! ```
//!
//! This example prints them on stderr with a ten-line logger; a real program plugs in the
//! `log` backend it already uses (env_logger, syslog, …).

mod common;

use grpc_sync::options::OptionValue;
use grpc_sync::Server;

use common::access_log::{init_stderr_logger, AccessLog};
use common::helloworld::Greeter;
use common::pb::helloworld::greeter_server::GreeterServer;
use common::pb::route_guide::route_guide_server::RouteGuideServer;
use common::route_guide::{load_db, RouteGuideService};
use common::BoxError;

fn main() -> Result<(), BoxError> {
    common::raise_fd_limit();
    let args = common::Args::parse();
    init_stderr_logger(log::LevelFilter::Info);
    let server = build(&args.options)?;
    let port = server.add_insecure_port(&args.listen_addr())?;
    server.start()?;
    println!("access_log server listening on port {port}");
    server.wait_for_termination(None);
    Ok(())
}

/// The server: route guide, Greeter and health, every call logged.
fn build(options: &[(String, OptionValue)]) -> Result<Server, BoxError> {
    let health = common::serving_health(&[
        common::pb::route_guide::route_guide_server::SERVICE_NAME,
        common::pb::helloworld::greeter_server::SERVICE_NAME,
    ]);
    Ok(Server::builder()
        .max_workers(10)
        .intercept(AccessLog)
        .add_service(RouteGuideServer::new(RouteGuideService::new(load_db()?)))
        .add_service(GreeterServer::new(Greeter))
        .add_service(health.service())
        .options(options.iter().cloned())?
        .build())
}

/// The example's server against the route guide client (the example is built with
/// `test = true`): one line per call, with the right counts each way.
#[test]
fn every_call_gets_one_line() {
    use std::sync::Mutex;

    static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    struct Capture;
    impl log::Log for Capture {
        fn enabled(&self, m: &log::Metadata<'_>) -> bool {
            m.target() == "access"
        }
        fn log(&self, r: &log::Record<'_>) {
            if self.enabled(r.metadata()) {
                LINES.lock().unwrap().push(r.args().to_string());
            }
        }
        fn flush(&self) {}
    }
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Info);

    let server = build(&[]).unwrap();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    let channel = grpc_sync::Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    let db = load_db().unwrap();
    let report = common::route_guide::run_client(&channel, &db, 7).unwrap();
    common::helloworld::run_client(&channel).unwrap();
    // Stopped, every end hook has run.
    assert!(server
        .stop(None)
        .wait_timeout(std::time::Duration::from_secs(10)));
    let lines = LINES.lock().unwrap().clone();
    let count = |m: &str| lines.iter().filter(|l| l.starts_with(m)).count();
    assert_eq!(lines.len(), 7, "{lines:#?}");
    assert!(lines.iter().all(|l| l.contains(" OK ")), "{lines:#?}");
    assert_eq!(
        count("/routeguide.RouteGuide/GetFeature ipv4:127.0.0.1:"),
        2
    );
    assert_eq!(count("/helloworld.Greeter/SayHello "), 1);
    let line_of = |m: &str| lines.iter().find(|l| l.starts_with(m)).unwrap().clone();
    let ends = [
        ("ListFeatures", format!("in=1 out={}", report.listed.len())),
        ("RecordRoute", format!("in={} out=1", report.route.len())),
        ("RouteChat", format!("in=4 out={}", report.chat.len())),
    ];
    for (method, end) in ends {
        let line = line_of(&format!("/routeguide.RouteGuide/{method}"));
        assert!(line.ends_with(&end), "{line} (want {end})");
    }
}
