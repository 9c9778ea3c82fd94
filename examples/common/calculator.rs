//! Demo (seed 000's calculator service): one RPC of each kind.
//!
//! `Calculate` (unary) with an `INVALID_ARGUMENT` for division by zero, `GetCitySubjects`
//! (server streaming), `Accumulate` (client streaming) and `GuessNumber` (bidi streaming).

use std::collections::HashMap;

use grpc_sync::{Channel, ResponseStream, ServerContext, Status, Streaming};

use super::pb::calculator as pb;
use super::pb::calculator::demo_client::DemoClient;
use super::pb::calculator::demo_server;
use super::pb::calculator::work::Operation;
use super::{python_status, BoxError, Rng};

/// The service: a city → subjects table and the numbers `GuessNumber` accepts.
#[derive(Debug, Clone)]
pub struct DemoService {
    city_subject_db: HashMap<&'static str, Vec<&'static str>>,
    answers: Vec<i32>,
}

impl Default for DemoService {
    fn default() -> Self {
        DemoService {
            city_subject_db: HashMap::from([
                (
                    "beijing",
                    vec![
                        "python",
                        "c++",
                        "go",
                        "测试",
                        "运维",
                        "产品经理",
                        "java",
                        "php",
                    ],
                ),
                (
                    "shanghai",
                    vec!["python", "c++", "go", "测试", "运维", "java", "php"],
                ),
                ("wuhan", vec!["python", "java", "测试"]),
            ]),
            answers: (0..10).collect(),
        }
    }
}

impl DemoService {
    /// The subjects taught in `city`, if it is known.
    pub fn subjects(&self, city: &str) -> Option<&[&'static str]> {
        self.city_subject_db.get(city).map(Vec::as_slice)
    }
}

/// Python's `//`: division rounding toward negative infinity.
fn floor_div(a: i32, b: i32) -> Option<i32> {
    let q = a.checked_div(b)?;
    if a % b != 0 && ((a < 0) != (b < 0)) {
        Some(q - 1)
    } else {
        Some(q)
    }
}

/// The result of `Calculate`, or the status the call fails with.
///
/// A result outside `int32` is `OUT_OF_RANGE`: Python's integers would not overflow, but the
/// reply field could not hold the value.
fn calculate(work: &pb::Work) -> Result<i32, Status> {
    let (a, b) = (work.num1, work.num2);
    let result = match Operation::try_from(work.op) {
        Ok(Operation::Add) => a.checked_add(b),
        Ok(Operation::Subtract) => a.checked_sub(b),
        Ok(Operation::Multiply) => a.checked_mul(b),
        Ok(Operation::Divide) if b == 0 => {
            return Err(Status::invalid_argument("cannot divide by 0"))
        }
        Ok(Operation::Divide) => floor_div(a, b),
        Err(_) => return Err(Status::invalid_argument("invalid operation")),
    };
    result.ok_or_else(|| Status::out_of_range("result does not fit in int32"))
}

impl demo_server::Demo for DemoService {
    fn calculate(&self, request: pb::Work, _ctx: &ServerContext) -> Result<pb::Result, Status> {
        // The seed sets INVALID_ARGUMENT on the context and returns an empty Result; returning
        // the Status is the same thing on the wire.
        Ok(pb::Result {
            val: calculate(&request)?,
        })
    }

    fn get_city_subjects<'a>(
        &'a self,
        request: pb::City,
        _ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, pb::Subject>, Status> {
        // The seed would crash on an unknown city; say NOT_FOUND instead.
        let subjects = self
            .subjects(&request.name)
            .ok_or_else(|| Status::not_found(format!("unknown city: {}", request.name)))?;
        Ok(Box::new(subjects.iter().map(|name| {
            Ok(pb::Subject {
                name: name.to_string(),
            })
        })))
    }

    fn accumulate(
        &self,
        requests: Streaming<pb::Delta>,
        _ctx: &ServerContext,
    ) -> Result<pb::Sum, Status> {
        let mut sum: i64 = 0;
        for delta in requests {
            sum += i64::from(delta?.val);
        }
        let val =
            i32::try_from(sum).map_err(|_| Status::out_of_range("sum does not fit in int32"))?;
        Ok(pb::Sum { val })
    }

    fn guess_number<'a>(
        &'a self,
        requests: Streaming<pb::Number>,
        _ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, pb::Answer>, Status> {
        // Answer only the numbers that are right; wrong guesses get no reply.
        Ok(Box::new(requests.filter_map(move |number| match number {
            Err(status) => Some(Err(status)),
            Ok(number) => self.answers.contains(&number.val).then(|| {
                Ok(pb::Answer {
                    val: number.val,
                    desc: "bingo".into(),
                })
            }),
        })))
    }
}

/// Everything the client saw, for `demo` to check.
#[derive(Debug, Clone)]
pub struct ClientReport {
    /// `100+50`, `100*50`, `100//50`.
    pub results: Vec<i32>,
    /// How `100//0` failed.
    pub divide_by_zero: Option<Status>,
    /// `GetCitySubjects("beijing")`.
    pub subjects: Vec<String>,
    /// The deltas sent to `Accumulate`, and the sum it returned.
    pub deltas: Vec<i32>,
    pub sum: i32,
    /// The guesses sent to `GuessNumber`, and the answers that came back.
    pub guesses: Vec<i32>,
    pub answers: Vec<pb::Answer>,
}

/// The seed's client: all four calls. `seed` fixes the random numbers.
pub fn run_client(channel: &Channel, seed: u64) -> Result<ClientReport, BoxError> {
    let stub = DemoClient::new(channel.clone());
    let mut rng = Rng::new(seed);

    // Unary.
    let mut work = pb::Work {
        num1: 100,
        num2: 50,
        op: Operation::Add.into(),
    };
    let mut results = Vec::new();
    for (op, label) in [
        (Operation::Add, "100+50"),
        (Operation::Multiply, "100*50"),
        (Operation::Divide, "100//50"),
    ] {
        work.op = op.into();
        let result = stub.calculate(work)?;
        println!("{label}={}", result.val);
        results.push(result.val);
    }
    work.num2 = 0;
    work.op = Operation::Divide.into();
    let divide_by_zero = match stub.calculate(work) {
        Ok(result) => {
            println!("100//0={}", result.val);
            None
        }
        Err(e) => {
            println!("{}", python_status(&e));
            Some(e)
        }
    };

    // Server streaming.
    let mut subjects = Vec::new();
    for subject in stub.get_city_subjects(pb::City {
        name: "beijing".into(),
    })? {
        let subject = subject?;
        println!("{}", subject.name);
        subjects.push(subject.name);
    }

    // Client streaming: the numbers print as the runtime's sender thread pulls them.
    let deltas: Vec<i32> = (0..10).map(|_| rng.randint(1, 100)).collect();
    let sum = stub
        .accumulate(deltas.clone().into_iter().map(|val| {
            println!("{val}");
            pb::Delta { val }
        }))?
        .val;
    println!("sum={sum}");

    // Bidi streaming.
    let guesses: Vec<i32> = (0..10).map(|_| rng.randint(1, 20)).collect();
    let mut answers = Vec::new();
    for answer in stub.guess_number(guesses.clone().into_iter().map(|val| {
        println!("{val}");
        pb::Number { val }
    }))? {
        let answer = answer?;
        println!("{}: {}", answer.desc, answer.val);
        answers.push(answer);
    }

    Ok(ClientReport {
        results,
        divide_by_zero,
        subjects,
        deltas,
        sum,
        guesses,
        answers,
    })
}
