//! FormatData (seed 004): `DoFormat` upper-cases text, and the three ways to call it.
//!
//! The client sends custom metadata (`ip`, `hello`) and a timeout; the server echoes that
//! metadata back as initial metadata, which the `with_call` and `future` forms can read.

use std::time::Duration;

use grpc_sync::{Channel, MetadataMap, Request, ServerContext, Status};

use super::pb::format_data::format_data_client::FormatDataClient;
use super::pb::format_data::format_data_server;
use super::pb::format_data::Data;
use super::BoxError;

/// The metadata keys the server echoes, and the values seed 004's client sends.
pub const METADATA: [(&str, &str); 2] = [("ip", "127.0.0.1"), ("hello", "360")];

/// Seed 004's `options`, given to both `grpc.server(...)` and `grpc.insecure_channel(...)`:
/// messages up to 100 MiB each way instead of grpcio's 4 MiB receive limit.
pub const OPTIONS: [(&str, i32); 2] = [
    ("grpc.max_send_message_length", 100 * 1024 * 1024),
    ("grpc.max_receive_message_length", 100 * 1024 * 1024),
];

/// The text every call sends.
pub const TEXT: &str = "hello,world!";

/// The service.
#[derive(Debug, Default)]
pub struct FormatData;

impl format_data_server::FormatData for FormatData {
    fn do_format(&self, request: Data, ctx: &ServerContext) -> Result<Data, Status> {
        // Echo the client's custom metadata as our initial metadata: that is what seed 004's
        // `call.initial_metadata()` printout shows.
        let mut echo = MetadataMap::new();
        for (key, _) in METADATA {
            if let Some(value) = ctx.metadata().get(key) {
                echo.insert(key, value)?;
            }
        }
        if !echo.is_empty() {
            ctx.send_initial_metadata(echo)?;
        }
        Ok(Data {
            text: request.text.to_uppercase(),
        })
    }
}

/// A request carrying the seed's metadata and a timeout.
fn request_with_metadata(text: &str) -> Request<Data> {
    let mut request =
        Request::new(Data { text: text.into() }).with_timeout(Duration::from_secs(10));
    for (key, value) in METADATA {
        request = request.with_metadata(key, value);
    }
    request
}

/// Prints metadata as grpcio prints `call.initial_metadata()` entries: `('ip', '127.0.0.1')`.
fn print_metadata(metadata: &MetadataMap) {
    for (key, value) in metadata.iter() {
        match value.as_str() {
            Some(text) => println!("('{key}', '{text}')"),
            None => println!("('{key}', {:?})", value.as_bytes()),
        }
    }
}

/// The echoed entries of `metadata`, in [`METADATA`] order.
fn echoed(metadata: &MetadataMap) -> Vec<(String, String)> {
    METADATA
        .iter()
        .filter_map(|(key, _)| metadata.get(key).map(|v| (key.to_string(), v.to_string())))
        .collect()
}

/// Everything the client saw, for `demo` to check.
#[derive(Debug, Clone)]
pub struct ClientReport {
    /// The reply text of the plain, `with_call` and `future` calls.
    pub texts: Vec<String>,
    /// The initial metadata of the `with_call` and `future` calls (echoed keys only).
    pub initial_metadata: Vec<Vec<(String, String)>>,
}

/// The seed's client: a plain call, then `with_call` and `future` with metadata.
pub fn run_client(channel: &Channel) -> Result<ClientReport, BoxError> {
    let client = FormatDataClient::new(channel.clone());
    let mut texts = Vec::new();
    let mut initial_metadata = Vec::new();

    // Blocking, response only.
    let response = client.do_format(Data { text: TEXT.into() })?;
    println!("received: {}", response.text);
    texts.push(response.text);

    // Blocking, with the call's metadata (`stub.DoFormat.with_call(...)`).
    let response = client.do_format_with_call(request_with_metadata(TEXT))?;
    println!("received: {}", response.get_ref().text);
    print_metadata(response.initial_metadata());
    initial_metadata.push(echoed(response.initial_metadata()));
    texts.push(response.into_inner().text);

    // Non-blocking (`stub.DoFormat.future(...)`), then wait for the result.
    let future = client.do_format_future(request_with_metadata(TEXT));
    let response = future.result()?;
    println!("received: {}", response.get_ref().text);
    print_metadata(response.initial_metadata());
    initial_metadata.push(echoed(response.initial_metadata()));
    texts.push(response.into_inner().text);

    Ok(ClientReport {
        texts,
        initial_metadata,
    })
}
