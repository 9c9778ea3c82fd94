//! The Cal client (seed 001's SimpleCal): `run(100, 300)`.
//!
//! Run: `cargo run --release --example cal_client -- --port 50051` with the server running.

mod common;

fn main() -> Result<(), common::BoxError> {
    common::init_logging();
    let args = common::Args::parse();
    // Like `grpc.insecure_channel('localhost:50051')`: the connection is made on first use.
    let channel = args.channel()?;
    common::cal::run_client(&channel, 100, 300)?;
    Ok(())
}
