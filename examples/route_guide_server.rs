//! The RouteGuide server: gRPC's standard route guide over the bundled feature database.
//!
//! Run: `cargo run --release --example route_guide_server -- --port 50051`

mod common;

use grpc_sync::Server;

use common::pb::route_guide::route_guide_server::RouteGuideServer;
use common::route_guide::{load_db, RouteGuideService};

fn main() -> Result<(), common::BoxError> {
    let args = common::Args::parse();
    let db = load_db()?;
    println!("loaded {} features", db.len());
    // A server with a pool of 10 worker threads and the service registered, like
    // `grpc.server(futures.ThreadPoolExecutor(max_workers=10))` + `add_XServicer_to_server`.
    let server = Server::builder()
        .max_workers(10)
        .add_service(RouteGuideServer::new(RouteGuideService::new(db)))
        .build();
    let port = server.add_insecure_port(&args.listen_addr())?;
    server.start()?;
    println!("route_guide server listening on port {port}");
    server.wait_for_termination(None);
    Ok(())
}
