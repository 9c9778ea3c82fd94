//! The Contact client (seed 001's two-way messaging): one round of sendStatus, getTask and tellResult.
//!
//! Run: `cargo run --release --example contact_client -- --port 50051` with the server running.

mod common;

fn main() -> Result<(), common::BoxError> {
    common::init_logging();
    let args = common::Args::parse();
    // Like `grpc.insecure_channel('localhost:50051')`: the connection is made on first use.
    let channel = args.channel()?;
    common::contact::run_client(&channel, 2020)?;
    Ok(())
}
