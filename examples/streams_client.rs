//! The seed 003 demo client: hellojlc, then the server, client and two-way streams.
//!
//! Run: `cargo run --release --example streams_client -- --port 50051` with the server running.

mod common;

fn main() -> Result<(), common::BoxError> {
    common::init_logging();
    let args = common::Args::parse();
    // Like `grpc.insecure_channel('localhost:50051')`: the connection is made on first use.
    let channel = args.channel()?;
    // The seed sends one message a second; a little faster here.
    common::streams::run_client(&channel, std::time::Duration::from_millis(200), 2020)?;
    Ok(())
}
