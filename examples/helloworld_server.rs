//! The Greeter server (seed 001's helloworld).
//!
//! Run: `cargo run --release --example helloworld_server -- --port 50051`

mod common;

use grpc_sync::Server;

use common::helloworld::Greeter;
use common::pb::helloworld::greeter_server::GreeterServer;

fn main() -> Result<(), common::BoxError> {
    let args = common::Args::parse();

    // Register the service on a server with a pool of worker threads, like
    // `grpc.server(futures.ThreadPoolExecutor(max_workers=10))` + `add_XServicer_to_server`.
    let mut builder = Server::builder()
        .max_workers(10)
        .add_service(GreeterServer::new(Greeter));
    let port = builder.add_insecure_port(args.listen_addr().as_str())?;
    let server = builder.build()?;
    server.start()?;
    println!("helloworld server listening on port {port}");
    server.wait_for_termination(None);
    Ok(())
}
