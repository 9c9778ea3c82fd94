//! The RouteGuide client: GetFeature, ListFeatures, RecordRoute, RouteChat.
//!
//! Run: `cargo run --release --example route_guide_client -- --port 50051` with the server running.

mod common;

use grpc_sync::Channel;

fn main() -> Result<(), common::BoxError> {
    let args = common::Args::parse();
    // Like `grpc.insecure_channel('localhost:50051')`: the connection is made on first use.
    let channel = Channel::insecure(&args.target())?;
    let db = common::route_guide::load_db()?;
    common::route_guide::run_client(&channel, &db, 2020)?;
    Ok(())
}
