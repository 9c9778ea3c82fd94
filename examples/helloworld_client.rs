//! The Greeter client (seed 001's helloworld): SayHello and SayHelloAgain.
//!
//! Run: `cargo run --release --example helloworld_client -- --port 50051` with the server running.

mod common;

fn main() -> Result<(), common::BoxError> {
    common::init_logging();
    let args = common::Args::parse();
    // Like `grpc.insecure_channel('localhost:50051')`: the connection is made on first use.
    let channel = args.channel()?;
    common::helloworld::run_client(&channel)?;
    Ok(())
}
