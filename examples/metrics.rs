//! Per-call metrics from interceptors, under the OpenTelemetry names of gRFC A66, without a
//! metrics dependency: a server interceptor and a client interceptor fill histograms, and the
//! example prints them.
//!
//! Run: `cargo run --release --example metrics`. It starts the route guide and Greeter on a
//! loopback port, runs their clients through an intercepted channel (plus one call that fails
//! its deadline and one unknown method), then prints, for example:
//!
//! ```text
//! grpc.server.call.started{grpc.method="routeguide.RouteGuide/GetFeature"} 2
//! grpc.server.call.duration{grpc.method="routeguide.RouteGuide/GetFeature",grpc.status="OK"} count=2 sum=0.000391s le(0.0003)=2
//! grpc.client.attempt.duration{grpc.method="helloworld.Greeter/SayHello",grpc.status="OK",grpc.target="127.0.0.1:41234"} count=1 sum=0.000922s le(0.001)=1
//! ```
//!
//! What A66 names and this prints: `grpc.server.call.started`, `grpc.server.call.duration`,
//! `grpc.client.attempt.started`, `grpc.client.attempt.duration`, `grpc.client.call.duration`,
//! with A66's attributes (`grpc.method`, `grpc.status`, `grpc.target`) and its latency bucket
//! boundaries. Without retries a call is one attempt, so the client's attempt and call
//! durations are measured by the same hook. A66's message-size histograms
//! (`*_total_compressed_message_size`) need byte counts the hooks do not carry: not recorded.
//! A real program hands the same numbers to its metrics library.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grpc_sync::client::{CallEnd as ClientEnd, ClientCallDetails, ClientInterceptor};
use grpc_sync::server::{CallEnd, CallStart, ServerInterceptor};
use grpc_sync::{Channel, Request, Server, Status};

use common::helloworld::Greeter;
use common::pb::helloworld::greeter_server::GreeterServer;
use common::pb::helloworld::HelloRequest;
use common::pb::route_guide::route_guide_server::RouteGuideServer;
use common::pb::route_guide::RouteNote;
use common::route_guide::{load_db, RouteGuideService};
use common::BoxError;

/// A66's bucket boundaries for latency histograms, in seconds.
const LATENCY_BUCKETS: [f64; 40] = [
    0.0, 0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001, 0.002, 0.003, 0.004, 0.005,
    0.006, 0.008, 0.01, 0.013, 0.016, 0.02, 0.025, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.13, 0.16,
    0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0,
];

/// One histogram's data: a count per bucket (the last one is everything above the top
/// boundary), the total count and the sum.
#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn record(&mut self, seconds: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; LATENCY_BUCKETS.len() + 1];
        }
        let i = LATENCY_BUCKETS.partition_point(|&b| b < seconds);
        self.buckets[i] += 1;
        self.count += 1;
        self.sum += seconds;
    }
}

/// Instruments by name and attribute set: counters and latency histograms.
#[derive(Debug, Default)]
struct Registry {
    counters: BTreeMap<(&'static str, String), u64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
}

impl Registry {
    fn add(&mut self, name: &'static str, attrs: String) {
        *self.counters.entry((name, attrs)).or_default() += 1;
    }

    fn record(&mut self, name: &'static str, attrs: String, d: Duration) {
        self.histograms
            .entry((name, attrs))
            .or_default()
            .record(d.as_secs_f64());
    }

    /// The text form printed at the end: one line per instrument and attribute set, with
    /// the non-empty buckets by upper boundary.
    fn render(&self) -> String {
        let mut out = String::new();
        for ((name, attrs), n) in &self.counters {
            let _ = writeln!(out, "{name}{{{attrs}}} {n}");
        }
        for ((name, attrs), h) in &self.histograms {
            let _ = write!(out, "{name}{{{attrs}}} count={} sum={:.6}s", h.count, h.sum);
            for (i, n) in h.buckets.iter().enumerate().filter(|(_, n)| **n > 0) {
                match LATENCY_BUCKETS.get(i) {
                    Some(le) => {
                        let _ = write!(out, " le({le})={n}");
                    }
                    None => {
                        let _ = write!(out, " le(+Inf)={n}");
                    }
                }
            }
            out.push('\n');
        }
        out
    }
}

/// A66's `grpc.method`: the full method name without its leading slash.
fn method_attr(path: &str) -> String {
    format!("grpc.method=\"{}\"", path.trim_start_matches('/'))
}

fn status_attr(s: &Status) -> String {
    format!("grpc.status=\"{}\"", s.code().as_str())
}

/// The server side: calls started, and their duration by method and final status.
struct ServerMetrics(Arc<Mutex<Registry>>);

impl ServerInterceptor for ServerMetrics {
    fn intercept(&self, call: &mut CallStart<'_>) -> Result<(), Status> {
        let mut r = self.0.lock().unwrap();
        r.add("grpc.server.call.started", method_attr(call.method()));
        Ok(())
    }

    fn on_end(&self, end: &CallEnd<'_>) {
        let attrs = format!(
            "{},{}",
            method_attr(end.method()),
            status_attr(end.status())
        );
        let mut r = self.0.lock().unwrap();
        r.record("grpc.server.call.duration", attrs, end.duration());
    }
}

/// The client side: attempts started, and attempt and call durations by method, status and
/// target.
struct ClientMetrics {
    registry: Arc<Mutex<Registry>>,
    target: String,
}

impl ClientInterceptor for ClientMetrics {
    fn before_call(&self, call: &mut ClientCallDetails<'_>) -> Result<(), Status> {
        let attrs = format!(
            "{},grpc.target=\"{}\"",
            method_attr(call.method()),
            self.target
        );
        self.registry
            .lock()
            .unwrap()
            .add("grpc.client.attempt.started", attrs);
        Ok(())
    }

    fn after_call(&self, end: &ClientEnd<'_>) {
        let attrs = format!(
            "{},{},grpc.target=\"{}\"",
            method_attr(end.method()),
            status_attr(end.status()),
            self.target
        );
        let mut r = self.registry.lock().unwrap();
        r.record("grpc.client.attempt.duration", attrs.clone(), end.elapsed());
        r.record("grpc.client.call.duration", attrs, end.elapsed());
    }
}

/// The server (route guide, Greeter) with the metrics interceptor.
fn build_server(registry: &Arc<Mutex<Registry>>) -> Result<Server, BoxError> {
    Ok(Server::builder()
        .max_workers(10)
        .intercept(ServerMetrics(registry.clone()))
        .add_service(RouteGuideServer::new(RouteGuideService::new(load_db()?)))
        .add_service(GreeterServer::new(Greeter))
        .build())
}

/// Runs the clients against `port` through an intercepted channel: the route guide and
/// helloworld clients, a call that cannot finish in its 100 ms deadline (a route chat whose
/// client sends nothing for longer), and a method the server does not have.
fn drive(port: u16, registry: &Arc<Mutex<Registry>>) -> Result<(), BoxError> {
    let target = format!("127.0.0.1:{port}");
    let channel = Channel::insecure(&target)?.with_interceptor(ClientMetrics {
        registry: registry.clone(),
        target,
    });
    common::route_guide::run_client(&channel, &load_db()?, 7)?;
    common::helloworld::run_client(&channel)?;
    // The request stream stays open (nothing sent) until the call has failed.
    let (hold, notes) = crossbeam_channel::unbounded::<RouteNote>();
    let chat = channel.bidi_streaming::<RouteNote, RouteNote, _>(
        "/routeguide.RouteGuide/RouteChat",
        Request::new(notes.into_iter()).with_timeout(Duration::from_millis(100)),
    );
    if let Ok(replies) = chat {
        for note in replies {
            if note.is_err() {
                break;
            }
        }
    }
    drop(hold);
    let _ = channel.unary::<_, HelloRequest>(
        "/helloworld.Greeter/NoSuchMethod",
        Request::new(HelloRequest::default()),
    );
    Ok(())
}

fn main() -> Result<(), BoxError> {
    common::init_logging();
    let registry = Arc::new(Mutex::new(Registry::default()));
    let server = build_server(&registry)?;
    let port = server.add_insecure_port("127.0.0.1:0")?;
    server.start()?;
    drive(port, &registry)?;
    // Stopped, every end hook has run.
    server.stop(None).wait();
    println!("-------------- metrics --------------");
    print!("{}", registry.lock().unwrap().render());
    Ok(())
}

#[test]
fn every_call_is_counted_under_a66_names() {
    let registry = Arc::new(Mutex::new(Registry::default()));
    let server = build_server(&registry).unwrap();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    drive(port, &registry).unwrap();
    assert!(server.stop(None).wait_timeout(Duration::from_secs(10)));
    let r = registry.lock().unwrap();
    let total = |name: &str| -> u64 {
        r.histograms
            .iter()
            .filter(|((n, _), _)| *n == name)
            .map(|(_, h)| h.count)
            .sum()
    };
    let started = |name: &str| -> u64 {
        r.counters
            .iter()
            .filter(|((n, _), _)| *n == name)
            .map(|(_, c)| *c)
            .sum()
    };
    // The client side sees every call; the server the ones that reached its interceptors.
    let client_calls = started("grpc.client.attempt.started");
    assert!(client_calls >= 8, "{}", r.render());
    assert_eq!(total("grpc.client.attempt.duration"), client_calls);
    assert_eq!(total("grpc.client.call.duration"), client_calls);
    // The unknown method never reaches the server's interceptors (the server answers it
    // itself); every other call does, once.
    assert_eq!(started("grpc.server.call.started"), client_calls - 1);
    assert_eq!(total("grpc.server.call.duration"), client_calls - 1);
    let text = r.render();
    assert!(
        text.contains(
            "grpc.client.attempt.duration{grpc.method=\"helloworld.Greeter/NoSuchMethod\",grpc.status=\"UNIMPLEMENTED\""
        ),
        "{text}"
    );
    assert!(text.contains("grpc.status=\"DEADLINE_EXCEEDED\""), "{text}");
    assert!(
        text.contains("grpc.server.call.duration{grpc.method=\"routeguide.RouteGuide/GetFeature\",grpc.status=\"OK\"} count=2"),
        "{text}"
    );
}
