//! The FormatData client (seed 004): a plain call, then `with_call` and `future` with metadata and a timeout.
//!
//! Run: `cargo run --release --example format_data_client -- --port 50051` with the server running.

mod common;

fn main() -> Result<(), common::BoxError> {
    common::init_logging();
    let args = common::Args::parse();
    // Like `grpc.insecure_channel('localhost:50051', options=options)` with seed 004's
    // 100 MiB message limits: the connection is made on first use.
    let channel = args.channel_with(common::format_data::OPTIONS)?;
    common::format_data::run_client(&channel)?;
    Ok(())
}
