//! The Greeter server (seed 001's helloworld).
//!
//! Run: `cargo run --release --example helloworld_server -- --port 50051`

mod common;

use grpc_sync::Server;

use common::helloworld::Greeter;
use common::pb::helloworld::greeter_server::GreeterServer;

fn main() -> Result<(), common::BoxError> {
    common::init_logging();
    // One descriptor per connection: lift the soft open-files limit (Go does the same).
    common::raise_fd_limit();
    let args = common::Args::parse();

    // A server with a pool of 10 worker threads and the service registered, like
    // `grpc.server(futures.ThreadPoolExecutor(max_workers=10))` + `add_XServicer_to_server`.
    // Health checking (grpc.health.v1), on by default: it costs a map and no thread, and it
    // is what grpc_health_probe, Kubernetes gRPC probes and load balancers ask first.
    let health = common::serving_health(&[common::pb::helloworld::greeter_server::SERVICE_NAME]);
    let server = Server::builder()
        .max_workers(10)
        .add_service(GreeterServer::new(Greeter))
        .add_services(common::reflection(
            common::pb::helloworld::FILE_DESCRIPTOR_SET,
        ))
        .add_service(health.service())
        // `--option NAME=VALUE`: grpcio channel arguments, last so that they win.
        .options(args.options.clone())?
        .build();
    let port = server.add_insecure_port(&args.listen_addr())?;
    server.start()?;
    println!("helloworld server listening on port {port}");
    server.wait_for_termination(None);
    Ok(())
}
