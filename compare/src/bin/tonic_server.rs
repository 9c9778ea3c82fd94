//! tonic's equivalent of `examples/bench_server.rs`: same flags, same services.
//!
//! `--workers N` sets tokio's worker threads (default: the CPUs this process may run on).

use std::pin::Pin;

use grpc_sync_compare::bench::{die, Flags};
use grpc_sync_compare::pb::greeter_server::{Greeter, GreeterServer};
use grpc_sync_compare::pb::streamer_server::{Streamer, StreamerServer};
use grpc_sync_compare::pb::{HelloReply, HelloRequest, StreamReply, StreamRequest};
use tonic::{Request, Response, Status};

struct Hello;

#[tonic::async_trait]
impl Greeter for Hello {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        Ok(Response::new(HelloReply {
            message: format!("Hello {}", request.into_inner().name),
        }))
    }

    async fn say_hello_again(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        self.say_hello(request).await
    }
}

struct Stream;

type ReplyStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<StreamReply, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Streamer for Stream {
    type ServerStreamStream = ReplyStream;

    async fn server_stream(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<ReplyStream>, Status> {
        let StreamRequest { count, size } = request.into_inner();
        let payload = vec![0xA5u8; size as usize];
        let replies = (0..count).map(move |_| {
            Ok(StreamReply {
                payload: payload.clone(),
            })
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let flags = Flags::from_env();
    if !flags.positional.is_empty() {
        die("usage: tonic_server [--port P] [--workers N] [--host H]");
    }
    flags.only(&["port", "workers", "host"]);
    let port: u16 = flags.num("port", 50051);
    let host = flags.get("host").unwrap_or("127.0.0.1").to_string();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = flags.get("workers") {
        runtime.worker_threads(n.parse().unwrap_or_else(|_| die("bad --workers")));
    }
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(async move {
        let addr = format!("{host}:{port}").parse()?;
        println!("tonic_server listening on {addr}");
        tonic::transport::Server::builder()
            .add_service(GreeterServer::new(Hello))
            .add_service(StreamerServer::new(Stream))
            .serve(addr)
            .await?;
        Ok(())
    })
}
