//! The RouteGuide client: GetFeature, ListFeatures, RecordRoute, RouteChat.
//!
//! Run: `cargo run --release --example route_guide_client -- --port 50051` with the server running.
//!
//! With TLS: `-- --port 50051 --tls --ca ca.pem [--server-name N] [--cert client.pem --key client.key]`

mod common;

fn main() -> Result<(), common::BoxError> {
    common::init_logging();
    let args = common::Args::parse();
    // Like `grpc.insecure_channel('localhost:50051')`: the connection is made on first use.
    // With --tls, like `grpc.secure_channel(target, grpc.ssl_channel_credentials(...))`.
    let channel = args.channel()?;
    let db = common::route_guide::load_db()?;
    common::route_guide::run_client(&channel, &db, 2020)?;
    Ok(())
}
