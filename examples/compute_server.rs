//! The Compute server (seed 001): SayHello answers the length of the text.
//!
//! Run: `cargo run --release --example compute_server -- --port 50051`

mod common;

use grpc_sync::Server;

use common::compute::ComputeService;
use common::pb::compute::compute_server::ComputeServer;

fn main() -> Result<(), common::BoxError> {
    let args = common::Args::parse();
    // Register the service on a server with a pool of worker threads, like
    // `grpc.server(futures.ThreadPoolExecutor(max_workers=10))` + `add_XServicer_to_server`.
    let mut builder = Server::builder()
        .max_workers(10)
        .add_service(ComputeServer::new(ComputeService));
    let port = builder.add_insecure_port(args.listen_addr().as_str())?;
    let server = builder.build()?;
    server.start()?;
    println!("running...");
    println!("compute server listening on port {port}");
    server.wait_for_termination(None);
    Ok(())
}
