//! The checks of the seed services' client routines, shared by `demo` (against our server)
//! and the interop tests (against grpcio's servers): the same calls must give the same
//! answers from either.

use std::fmt::Debug;

use grpc_sync::{Channel, Code};

use super::pb::calculator::demo_client::DemoClient as CalculatorClient;
use super::pb::calculator::City;
use super::pb::route_guide::{Feature, Point};
use super::{calculator, first_error, format_data, helloworld, route_guide, BoxError};

/// Fixes every random choice of the client routines, so the expected results are known.
pub const SEED: u64 = 2020;

/// Tallies checks and prints each one.
#[derive(Default)]
pub struct Checks {
    passed: usize,
    failed: Vec<String>,
}

impl Checks {
    pub fn check(&mut self, what: &str, ok: bool) {
        if ok {
            self.passed += 1;
            println!("  ok: {what}");
        } else {
            println!("  FAILED: {what}");
            self.failed.push(what.to_string());
        }
    }

    pub fn eq<T: PartialEq + Debug>(&mut self, what: &str, got: &T, want: &T) {
        if got == want {
            self.check(what, true);
        } else {
            self.check(&format!("{what}: got {got:?}, want {want:?}"), false);
        }
    }

    /// Runs one example's client under a heading; a failed call is a failed check.
    pub fn section<T>(
        &mut self,
        title: &str,
        run: impl FnOnce() -> Result<T, BoxError>,
    ) -> Option<T> {
        println!("\n===== {title} =====");
        let outcome = run();
        println!("----- checks");
        match outcome {
            Ok(report) => Some(report),
            Err(e) => {
                self.check(&format!("{title}: the calls succeed ({e})"), false);
                None
            }
        }
    }

    /// Prints the tally; true if nothing failed.
    pub fn summary(&self) -> bool {
        println!();
        if self.failed.is_empty() {
            println!("demo: all {} checks passed", self.passed);
        } else {
            println!(
                "demo: {} checks passed, {} FAILED:",
                self.passed,
                self.failed.len()
            );
            for what in &self.failed {
                println!("  - {what}");
            }
        }
        self.failed.is_empty()
    }
}

/// helloworld: both methods answer as seed 001 does.
pub fn helloworld(c: &mut Checks, channel: &Channel) {
    if let Some(replies) = c.section("helloworld", || helloworld::run_client(channel)) {
        c.eq(
            "SayHello, SayHelloAgain",
            &replies,
            &vec!["hello czl".to_string(), "hello daydaygo".to_string()],
        );
    }
}

/// route_guide: the standard client's four calls.
pub fn route_guide(c: &mut Checks, channel: &Channel, db: &[Feature]) {
    if let Some(r) = c.section("route_guide", || route_guide::run_client(channel, db, SEED)) {
        c.check(
            "GetFeature finds the named feature at 409146138, -746188906",
            r.got[0].name == "Berkshire Valley Management Area Trail, Jefferson, NJ, USA",
        );
        c.check(
            "GetFeature answers an unnamed feature at (0, 0)",
            r.got[1].name.is_empty() && r.got[1].location == Some(Point::default()),
        );
        let rect = route_guide::standard_rectangle();
        let want: Vec<_> = db
            .iter()
            .filter(|f| {
                f.location
                    .is_some_and(|p| route_guide::in_rectangle(&rect, &p))
            })
            .cloned()
            .collect();
        c.check("ListFeatures finds features", !want.is_empty());
        c.eq(
            "ListFeatures lists the rectangle's features",
            &r.listed,
            &want,
        );
        let meters: f64 = r
            .route
            .windows(2)
            .map(|w| route_guide::distance(&w[0], &w[1]))
            .sum();
        c.eq(
            "RecordRoute summary (points, features, distance)",
            &(
                r.summary.point_count,
                r.summary.feature_count,
                r.summary.distance,
            ),
            &(10, 10, meters as i32),
        );
        let first = &route_guide::chat_notes()[0];
        c.eq(
            "RouteChat echoes the first note when the fourth comes to its place",
            &r.chat,
            &vec![first.clone()],
        );
    }
}

/// calculator (seed 000's `Demo`): all four calls, divide by zero, an unknown city.
pub fn calculator(c: &mut Checks, channel: &Channel) {
    let calculator_service = calculator::DemoService::default();
    if let Some(r) = c.section("calculator", || calculator::run_client(channel, SEED)) {
        c.eq(
            "Calculate 100+50, 100*50, 100//50",
            &r.results,
            &vec![150, 5000, 2],
        );
        c.eq(
            "Calculate 100//0 fails",
            &r.divide_by_zero
                .as_ref()
                .map(|s| (s.code(), s.message().to_string())),
            &Some((Code::InvalidArgument, "cannot divide by 0".to_string())),
        );
        let want: Vec<String> = calculator_service
            .subjects("beijing")
            .unwrap_or_default()
            .iter()
            .map(|s| s.to_string())
            .collect();
        c.eq("GetCitySubjects(beijing)", &r.subjects, &want);
        c.eq("Accumulate", &r.sum, &r.deltas.iter().sum());
        let want: Vec<(i32, String)> = r
            .guesses
            .iter()
            .filter(|&&g| (0..10).contains(&g))
            .map(|&g| (g, "bingo".to_string()))
            .collect();
        let got: Vec<(i32, String)> = r.answers.iter().map(|a| (a.val, a.desc.clone())).collect();
        c.eq("GuessNumber answers exactly the right guesses", &got, &want);
        let unknown = first_error(
            CalculatorClient::new(channel.clone()).get_city_subjects(City {
                name: "atlantis".into(),
            }),
        );
        c.eq(
            "GetCitySubjects(atlantis) is NOT_FOUND",
            &unknown.map(|s| s.code()),
            &Some(Code::NotFound),
        );
    }
}

/// format_data (seed 004): upper-casing and the metadata echo.
pub fn format_data(c: &mut Checks, channel: &Channel) {
    if let Some(r) = c.section("format_data", || format_data::run_client(channel)) {
        c.eq(
            "DoFormat upper-cases (plain, with_call, future)",
            &r.texts,
            &vec!["HELLO,WORLD!".to_string(); 3],
        );
        let echoed: Vec<(String, String)> = format_data::METADATA
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        c.eq(
            "the server echoes ip and hello as initial metadata",
            &r.initial_metadata,
            &vec![echoed.clone(), echoed],
        );
    }
}
