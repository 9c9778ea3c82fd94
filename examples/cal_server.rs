//! The Cal server (seed 001's SimpleCal): Add and Multiply.
//!
//! Run: `cargo run --release --example cal_server -- --port 50051`

mod common;

use grpc_sync::Server;

use common::cal::CalService;
use common::pb::simple_cal::cal_server::CalServer;

fn main() -> Result<(), common::BoxError> {
    common::init_logging();
    // One descriptor per connection: lift the soft open-files limit (Go does the same).
    common::raise_fd_limit();
    let args = common::Args::parse();
    // A server with a pool of 10 worker threads and the service registered, like
    // `grpc.server(futures.ThreadPoolExecutor(max_workers=10))` + `add_XServicer_to_server`.
    // Health checking (grpc.health.v1), on by default: it costs a map and no thread, and it
    // is what grpc_health_probe, Kubernetes gRPC probes and load balancers ask first.
    let health = common::serving_health(&[common::pb::simple_cal::cal_server::SERVICE_NAME]);
    let server = Server::builder()
        .max_workers(10)
        .add_service(CalServer::new(CalService))
        .add_services(common::reflection(
            common::pb::simple_cal::FILE_DESCRIPTOR_SET,
        ))
        .add_service(health.service())
        // `--option NAME=VALUE`: grpcio channel arguments, last so that they win.
        .options(args.options.clone())?
        .build();
    let port = server.add_insecure_port(&args.listen_addr())?;
    server.start()?;
    println!("grpc server start...");
    println!("cal server listening on port {port}");
    server.wait_for_termination(None);
    Ok(())
}
