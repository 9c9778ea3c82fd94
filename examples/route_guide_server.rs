//! The RouteGuide server: gRPC's standard route guide over the bundled feature database.
//!
//! Run: `cargo run --release --example route_guide_server -- --port 50051`
//!
//! With TLS: `-- --port 50051 --tls --cert server.pem --key server.key [--client-ca ca.pem]`
//! (with `--client-ca`, clients must present a certificate signed by that CA).
//!
//! With gRPC-Web: `scripts/web-build.sh`, then `-- --grpc-web [--page-port 8080]` serves the
//! browser page (examples/web/) on http://127.0.0.1:8080 and lets it call this server.

mod common;

use grpc_sync::{GrpcWebConfig, Server};

use common::pb::route_guide::route_guide_server::RouteGuideServer;
use common::route_guide::{load_db, RouteGuideService};

fn main() -> Result<(), common::BoxError> {
    common::init_logging();
    // One descriptor per connection: lift the soft open-files limit (Go does the same).
    common::raise_fd_limit();
    let args = common::Args::parse();
    let db = load_db()?;
    println!("loaded {} features", db.len());
    // A server with a pool of 10 worker threads and the service registered, like
    // `grpc.server(futures.ThreadPoolExecutor(max_workers=10))` + `add_XServicer_to_server`.
    // Health checking (grpc.health.v1), on by default: it costs a map and no thread, and it
    // is what grpc_health_probe, Kubernetes gRPC probes and load balancers ask first.
    let health =
        common::serving_health(&[common::pb::route_guide::route_guide_server::SERVICE_NAME]);
    // `--grpc-web`: browsers call the same port (HTTP/1.1 or HTTP/2, no proxy); the page is
    // served from its own origin, which CORS lets call.
    let page_origins = [
        format!("http://127.0.0.1:{}", args.page_port),
        format!("http://localhost:{}", args.page_port),
    ];
    let mut builder = Server::builder();
    if args.grpc_web {
        let mut web = GrpcWebConfig::new();
        for o in &page_origins {
            web = web.allow_origin(o);
        }
        builder = builder.grpc_web(web);
    }
    let server = builder
        .max_workers(10)
        .add_service(RouteGuideServer::new(RouteGuideService::new(db)))
        .add_services(common::reflection(
            common::pb::route_guide::FILE_DESCRIPTOR_SET,
        ))
        .on_handshake_error(|peer, e| eprintln!("TLS handshake with {peer} failed: {e}"))
        .add_service(health.service())
        // `--option NAME=VALUE`: grpcio channel arguments, last so that they win.
        .options(args.options.clone())?
        .build();
    let port = match args.server_credentials()? {
        Some(creds) => server.add_secure_port(&args.listen_addr(), creds)?,
        None => server.add_insecure_port(&args.listen_addr())?,
    };
    server.start()?;
    let tls = if args.tls { " (TLS)" } else { "" };
    println!("route_guide server listening on port {port}{tls}");
    if args.grpc_web {
        let page = common::web_page::serve(
            common::web_page::default_dir(),
            &format!("127.0.0.1:{}", args.page_port),
        )?;
        let scheme = if args.tls { "https" } else { "http" };
        println!(
            "gRPC-Web on the same port; open http://127.0.0.1:{page}/?server={scheme}://127.0.0.1:{port}"
        );
    }
    server.wait_for_termination(None);
    Ok(())
}
