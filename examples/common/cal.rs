//! Cal (seed 001's SimpleCal): `Add` and `Multiply`.

use grpc_sync::{Channel, ServerContext, Status};

use super::pb::simple_cal::cal_client::CalClient;
use super::pb::simple_cal::cal_server;
use super::pb::simple_cal::{AddRequest, MultiplyRequest, ResultReply};
use super::BoxError;

/// The service.
#[derive(Debug, Default)]
pub struct CalService;

/// `OUT_OF_RANGE` where Python's unbounded integers would not fit the `int32` reply.
fn fits(n: Option<i32>) -> Result<ResultReply, Status> {
    n.map(|number| ResultReply { number })
        .ok_or_else(|| Status::out_of_range("result does not fit in int32"))
}

impl cal_server::Cal for CalService {
    fn add(&self, request: AddRequest, _ctx: &ServerContext) -> Result<ResultReply, Status> {
        println!("Add function called");
        fits(request.number1.checked_add(request.number2))
    }

    fn multiply(
        &self,
        request: MultiplyRequest,
        _ctx: &ServerContext,
    ) -> Result<ResultReply, Status> {
        println!("Multiply service called");
        fits(request.number1.checked_mul(request.number2))
    }
}

/// The seed's client, `run(n, m)`: returns `(n + m, n * m)`.
pub fn run_client(channel: &Channel, n: i32, m: i32) -> Result<(i32, i32), BoxError> {
    let stub = CalClient::new(channel.clone());
    let sum = stub.add(AddRequest {
        number1: n,
        number2: m,
    })?;
    println!("{n} + {m} = {}", sum.number);
    let product = stub.multiply(MultiplyRequest {
        number1: n,
        number2: m,
    })?;
    println!("{n} * {m} = {}", product.number);
    Ok((sum.number, product.number))
}
