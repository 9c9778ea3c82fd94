//! The Demo calculator client (seed 000): Calculate (including 100//0), GetCitySubjects, Accumulate, GuessNumber.
//!
//! Run: `cargo run --release --example calculator_client -- --port 50051` with the server running.

mod common;

fn main() -> Result<(), common::BoxError> {
    common::init_logging();
    let args = common::Args::parse();
    // Like `grpc.insecure_channel('localhost:50051')`: the connection is made on first use.
    let channel = args.channel()?;
    common::calculator::run_client(&channel, 2020)?;
    Ok(())
}
