//! The gRPC interop test server: `grpc.testing.TestService` as gRPC's interop descriptions
//! specify it, for any implementation's interop client.
//!
//! Run: `cargo run --release --example interop_server -- --port 10000`

mod common;

use grpc_sync::Server;

use common::interop::ServerArgs;

fn main() {
    common::init_logging();
    // One descriptor per connection: lift the soft open-files limit (Go does the same).
    common::raise_fd_limit();
    let program = std::env::args()
        .next()
        .unwrap_or_else(|| "interop_server".into());
    let usage = format!(
        "usage: {program} [--port=10000] [--use_tls=false --tls_cert_file=F --tls_key_file=F] \
         [--option=NAME=VALUE]..."
    );
    let args = match ServerArgs::parse_from(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{usage}");
            return;
        }
        Err(e) => {
            eprintln!("error: {e}\n{usage}");
            std::process::exit(2);
        }
    };
    let credentials = match args.credentials() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let builder = Server::builder()
        .max_workers(16)
        .add_service(common::interop::service());
    let server = match builder.options(args.options.clone()) {
        Ok(b) => b.build(),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let addr = format!("[::]:{}", args.port);
    let bound = match credentials {
        Some(c) => server.add_secure_port(&addr, c),
        None => server.add_insecure_port(&addr),
    };
    let port = match bound {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot listen on port {}: {e}", args.port);
            std::process::exit(1);
        }
    };
    if let Err(e) = server.start() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    println!("interop server listening on port {port}");
    server.wait_for_termination(None);
}
