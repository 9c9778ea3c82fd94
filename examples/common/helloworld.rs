//! Greeter (seed 001's helloworld): `SayHello` and `SayHelloAgain`.

use grpc_sync::{Channel, ServerContext, Status};

use super::pb::helloworld::greeter_client::GreeterClient;
use super::pb::helloworld::greeter_server;
use super::pb::helloworld::{HelloReply, HelloRequest};
use super::BoxError;

/// The service: both methods answer `hello <name>`, as in the seed.
#[derive(Debug, Default)]
pub struct Greeter;

impl greeter_server::Greeter for Greeter {
    fn say_hello(&self, request: HelloRequest, _ctx: &ServerContext) -> Result<HelloReply, Status> {
        Ok(HelloReply {
            message: format!("hello {}", request.name),
        })
    }

    fn say_hello_again(
        &self,
        request: HelloRequest,
        _ctx: &ServerContext,
    ) -> Result<HelloReply, Status> {
        Ok(HelloReply {
            message: format!("hello {}", request.name),
        })
    }
}

/// The seed's client: one call of each method. Returns the two replies.
pub fn run_client(channel: &Channel) -> Result<Vec<String>, BoxError> {
    let client = GreeterClient::new(channel.clone());
    let mut replies = Vec::new();

    let response = client.say_hello(HelloRequest { name: "czl".into() })?;
    println!("Greeter client received: {}", response.message);
    replies.push(response.message);

    let response = client.say_hello_again(HelloRequest {
        name: "daydaygo".into(),
    })?;
    println!("Greeter client received: {}", response.message);
    replies.push(response.message);

    Ok(replies)
}
