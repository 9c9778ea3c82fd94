//! The FormatData client (seed 004): a plain call, then `with_call` and `future` with metadata and a timeout.
//!
//! Run: `cargo run --release --example format_data_client -- --port 50051` with the server running.

mod common;

use grpc_sync::Channel;

fn main() -> Result<(), common::BoxError> {
    let args = common::Args::parse();
    // Like `grpc.insecure_channel('localhost:50051')`: the connection is made on first use.
    let channel = Channel::insecure(&args.target())?;
    common::format_data::run_client(&channel)?;
    Ok(())
}
