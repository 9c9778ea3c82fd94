//! Compute (seed 001's introductory demo): `SayHello` answers the length of the text.

use grpc_sync::{Channel, ServerContext, Status};

use super::pb::compute::compute_client::ComputeClient;
use super::pb::compute::compute_server;
use super::pb::compute::{HelloReply, HelloRequest};
use super::BoxError;

/// The service.
#[derive(Debug, Default)]
pub struct ComputeService;

impl compute_server::Compute for ComputeService {
    fn say_hello(&self, request: HelloRequest, _ctx: &ServerContext) -> Result<HelloReply, Status> {
        // Python's len() counts characters, not bytes.
        Ok(HelloReply {
            result: request.helloworld.chars().count().to_string(),
        })
    }
}

/// The seed's client: sends `"123456"`, returns the answer (`"6"`).
pub fn run_client(channel: &Channel) -> Result<String, BoxError> {
    let client = ComputeClient::new(channel.clone());
    let response = client.say_hello(HelloRequest {
        helloworld: "123456".into(),
    })?;
    println!("received: {}", response.result);
    Ok(response.result)
}
