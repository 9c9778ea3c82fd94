//! The Cal server (seed 001's SimpleCal): Add and Multiply.
//!
//! Run: `cargo run --release --example cal_server -- --port 50051`

mod common;

use grpc_sync::Server;

use common::cal::CalService;
use common::pb::simple_cal::cal_server::CalServer;

fn main() -> Result<(), common::BoxError> {
    let args = common::Args::parse();
    // Register the service on a server with a pool of worker threads, like
    // `grpc.server(futures.ThreadPoolExecutor(max_workers=10))` + `add_XServicer_to_server`.
    let mut builder = Server::builder()
        .max_workers(10)
        .add_service(CalServer::new(CalService));
    let port = builder.add_insecure_port(args.listen_addr().as_str())?;
    let server = builder.build()?;
    server.start()?;
    println!("grpc server start...");
    println!("cal server listening on port {port}");
    server.wait_for_termination(None);
    Ok(())
}
