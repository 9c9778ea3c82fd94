//! The Demo calculator server (seed 000): one RPC of each kind.
//!
//! Run: `cargo run --release --example calculator_server -- --port 50051`

mod common;

use grpc_sync::Server;

use common::calculator::DemoService;
use common::pb::calculator::demo_server::DemoServer;

fn main() -> Result<(), common::BoxError> {
    let args = common::Args::parse();

    // Register the service on a server with a pool of worker threads, like
    // `grpc.server(futures.ThreadPoolExecutor(max_workers=10))` + `add_XServicer_to_server`.
    let mut builder = Server::builder()
        .max_workers(10)
        .add_service(DemoServer::new(DemoService::default()));
    let port = builder.add_insecure_port(args.listen_addr().as_str())?;
    let server = builder.build()?;
    server.start()?;
    println!("calculator server listening on port {port}");
    server.wait_for_termination(None);
    Ok(())
}
