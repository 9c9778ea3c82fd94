//! The Compute client (seed 001): the length of "123456".
//!
//! Run: `cargo run --release --example compute_client -- --port 50051` with the server running.

mod common;

fn main() -> Result<(), common::BoxError> {
    common::init_logging();
    let args = common::Args::parse();
    // Like `grpc.insecure_channel('localhost:50051')`: the connection is made on first use.
    let channel = args.channel()?;
    common::compute::run_client(&channel)?;
    Ok(())
}
