//! Compiles the committed generated code (`tests/generated/` and `examples/generated/`, kept up to date by
//! `tests/generate.rs`) against a COMPILE-CHECK HARNESS — a fake `grpc_sync` with the contract's
//! API (`tests/support/fake_runtime.rs`), not the real runtime — and checks through it that:
//! every generated server registers its methods under the right names and kinds, unimplemented
//! methods answer UNIMPLEMENTED "Method not implemented!", implemented ones are called, client
//! methods use the right paths and call kinds, and the messages round-trip through prost.
//!
//! The end-to-end check against the real runtime belongs with the runtime's own tests.

// `::grpc_sync::…` in the generated code resolves to this test crate, whose root re-exports
// the fake runtime.
extern crate self as grpc_sync;

#[path = "support/fake_runtime.rs"]
mod fake_runtime;

pub use fake_runtime::*;

/// The generated code of every proto of the project, one module per golden case.
pub mod gen {
    pub mod helloworld {
        include!("../../examples/generated/helloworld.rs");
    }
    pub mod bench {
        include!("../../examples/generated/bench.rs");
    }
    pub mod route_guide {
        include!("../../examples/generated/route_guide.rs");
    }
    pub mod route_guide_server_only {
        include!("generated/route_guide_server_only/routeguide.rs");
    }
    pub mod route_guide_client_only {
        include!("generated/route_guide_client_only/routeguide.rs");
    }
    pub mod calculator {
        include!("../../examples/generated/calculator.rs");
    }
    pub mod compute {
        include!("../../examples/generated/compute.rs");
    }
    pub mod contact {
        include!("../../examples/generated/contact.rs");
    }
    pub mod format_data {
        include!("../../examples/generated/format_data.rs");
    }
    pub mod simple_cal {
        include!("../../examples/generated/simple_cal.rs");
    }
    pub mod streams {
        include!("../../examples/generated/streams.rs");
    }
    pub mod grpc_testing {
        include!("../../examples/generated/grpc_testing.rs");
    }
    // codegen.common and codegen.features, through the generated include file.
    include!("generated/codegen/mod.rs");
}

use gen::route_guide::route_guide_client::RouteGuideClient;
use gen::route_guide::route_guide_server::{RouteGuide, RouteGuideServer};
use gen::route_guide::{Feature, Point, Rectangle, RouteNote, RouteSummary};

/// Implements no method: everything must answer the generated default.
struct Nothing;

impl gen::helloworld::greeter_server::Greeter for Nothing {}
impl gen::bench::streamer_server::Streamer for Nothing {}
impl RouteGuide for Nothing {}
impl gen::route_guide_server_only::route_guide_server::RouteGuide for Nothing {}
impl gen::calculator::demo_server::Demo for Nothing {}
impl gen::compute::compute_server::Compute for Nothing {}
impl gen::contact::contact_server::Contact for Nothing {}
impl gen::format_data::format_data_server::FormatData for Nothing {}
impl gen::simple_cal::cal_server::Cal for Nothing {}
impl gen::streams::demo_server::Demo for Nothing {}
impl gen::codegen::features::features_server::Features for Nothing {}
impl gen::codegen::features::empty_server::Empty for Nothing {}

fn registered(service: &Service) -> Vec<(&str, &str)> {
    service
        .methods()
        .iter()
        .map(|m| (m.name.as_str(), m.kind))
        .collect()
}

#[track_caller]
fn assert_all_unimplemented(service: impl Into<Service>) -> Service {
    let service = service.into();
    for method in service.methods() {
        let status = method
            .invoke_with_default()
            .expect_err("a default method must fail");
        assert_eq!(status.code(), Code::Unimplemented, "{}", method.name);
        assert_eq!(
            status.message(),
            "Method not implemented!",
            "{}",
            method.name
        );
    }
    service
}

#[test]
fn servers_register_every_method_by_name_and_kind() {
    use gen::calculator::demo_server::DemoServer;
    use gen::contact::contact_server::ContactServer;
    use gen::helloworld::greeter_server::GreeterServer;
    use gen::streams::demo_server::DemoServer as TestDemoServer;

    let s: Service = RouteGuideServer::new(Nothing).into();
    assert_eq!(s.name(), "routeguide.RouteGuide");
    assert_eq!(
        registered(&s),
        [
            ("GetFeature", "unary"),
            ("ListFeatures", "server_streaming"),
            ("RecordRoute", "client_streaming"),
            ("RouteChat", "bidi_streaming"),
        ]
    );
    let s: Service = GreeterServer::new(Nothing).into();
    assert_eq!(s.name(), "helloworld.Greeter");
    assert_eq!(
        registered(&s),
        [("SayHello", "unary"), ("SayHelloAgain", "unary")]
    );
    let s: Service = DemoServer::new(Nothing).into();
    assert_eq!(s.name(), "Demo");
    assert_eq!(
        registered(&s),
        [
            ("Calculate", "unary"),
            ("GetCitySubjects", "server_streaming"),
            ("Accumulate", "client_streaming"),
            ("GuessNumber", "bidi_streaming"),
        ]
    );
    let s: Service = ContactServer::new(Nothing).into();
    assert_eq!(s.name(), "Contact");
    assert_eq!(
        registered(&s),
        [
            ("sendStatus", "bidi_streaming"),
            ("getTask", "server_streaming"),
            ("tellResult", "client_streaming"),
        ]
    );
    let s: Service = TestDemoServer::new(Nothing).into();
    assert_eq!(s.name(), "test.demo");
    assert_eq!(
        registered(&s),
        [
            ("hellojlc", "unary"),
            ("TestClientRecvStream", "server_streaming"),
            ("TestClientSendStream", "client_streaming"),
            ("TestTwoWayStream", "bidi_streaming"),
        ]
    );
}

#[test]
fn unimplemented_methods_answer_unimplemented() {
    use gen::codegen::features::{empty_server, features_server};

    assert_all_unimplemented(gen::helloworld::greeter_server::GreeterServer::new(Nothing));
    assert_all_unimplemented(gen::bench::streamer_server::StreamerServer::new(Nothing));
    assert_all_unimplemented(RouteGuideServer::new(Nothing));
    assert_all_unimplemented(
        gen::route_guide_server_only::route_guide_server::RouteGuideServer::new(Nothing),
    );
    assert_all_unimplemented(gen::calculator::demo_server::DemoServer::new(Nothing));
    assert_all_unimplemented(gen::compute::compute_server::ComputeServer::new(Nothing));
    assert_all_unimplemented(gen::contact::contact_server::ContactServer::new(Nothing));
    assert_all_unimplemented(gen::format_data::format_data_server::FormatDataServer::new(
        Nothing,
    ));
    assert_all_unimplemented(gen::simple_cal::cal_server::CalServer::new(Nothing));
    assert_all_unimplemented(gen::streams::demo_server::DemoServer::new(Nothing));
    let features = assert_all_unimplemented(features_server::FeaturesServer::new(Nothing));
    assert_eq!(features.name(), "codegen.features.Features");
    assert_eq!(features.methods().len(), 8);
    let empty = assert_all_unimplemented(empty_server::EmptyServer::new(Nothing));
    assert_eq!(empty.name(), "codegen.features.Empty");
    assert!(empty.methods().is_empty());
}

/// A route guide that implements every method, borrowing from `self` in its streams.
struct Guide {
    features: Vec<Feature>,
}

impl RouteGuide for Guide {
    fn get_feature(&self, request: Point, _ctx: &ServerContext) -> Result<Feature, Status> {
        Ok(self
            .features
            .iter()
            .find(|f| f.location == Some(request))
            .cloned()
            .unwrap_or(Feature {
                name: String::new(),
                location: Some(request),
            }))
    }

    fn list_features<'a>(
        &'a self,
        _request: Rectangle,
        _ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, Feature>, Status> {
        Ok(Box::new(self.features.iter().cloned().map(Ok)))
    }

    fn record_route(
        &self,
        requests: Streaming<Point>,
        _ctx: &ServerContext,
    ) -> Result<RouteSummary, Status> {
        let mut summary = RouteSummary::default();
        for point in requests {
            point?;
            summary.point_count += 1;
        }
        Ok(summary)
    }

    fn route_chat<'a>(
        &'a self,
        requests: Streaming<RouteNote>,
        ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, RouteNote>, Status> {
        let prefix = ctx.metadata().get("prefix").unwrap_or("").to_owned();
        Ok(Box::new(requests.map(move |note| {
            note.map(|mut n| {
                n.message = format!("{prefix}{}", n.message);
                n
            })
        })))
    }
}

#[test]
fn implemented_methods_are_called() {
    let guide = Guide {
        features: vec![
            Feature {
                name: "a".into(),
                location: Some(Point::default()),
            },
            Feature {
                name: "b".into(),
                location: None,
            },
        ],
    };
    let server = RouteGuideServer::new(guide);
    assert_eq!(server.get_ref().features.len(), 2);
    let service: Service = server.clone().into();
    let produced: Vec<usize> = service
        .methods()
        .iter()
        .map(|m| m.invoke_with_default().unwrap())
        .collect();
    // get_feature: 1 reply; list_features: both features; record_route: 1 summary;
    // route_chat: as many replies as (zero) requests.
    assert_eq!(produced, [1, 2, 1, 0]);

    // from_arc shares the implementation: each of the 4 method handlers holds a reference.
    let shared = std::sync::Arc::new(Guide { features: vec![] });
    let service: Service = RouteGuideServer::from_arc(shared.clone()).into();
    assert_eq!(std::sync::Arc::strong_count(&shared), 1 + 4);
    drop(service);
    assert_eq!(std::sync::Arc::strong_count(&shared), 1);
}

#[test]
fn clients_use_the_right_paths_and_call_kinds() {
    let channel = Channel::recording();
    let client = RouteGuideClient::new(channel.clone());
    let point = Point {
        latitude: 1,
        longitude: 2,
    };
    let status = client.get_feature(point).unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    let _ = client
        .get_feature_with_call(Request::new(point).with_timeout(std::time::Duration::from_secs(1)));
    let _ = client.get_feature_future(point).result();
    let features: Vec<_> = client
        .list_features(Rectangle::default())
        .unwrap()
        .collect();
    assert!(features.is_empty());
    let _ = client.record_route(vec![point, point, point]);
    let _ = client.record_route_with_call(std::iter::repeat_n(point, 2));
    let _ = client.record_route_future(Request::new(vec![point].into_iter()));
    let _ = client
        .route_chat(vec![RouteNote::default()])
        .unwrap()
        .count();
    let (sender, responses) = client
        .route_chat_interactive(CallOptions::default())
        .unwrap();
    assert!(sender.send(RouteNote::default()).is_err());
    sender.close();
    assert_eq!(responses.count(), 0);

    let calls: Vec<(&str, &str, usize)> = channel
        .calls()
        .iter()
        .map(|c| (c.path, c.kind, c.requests))
        .collect();
    assert_eq!(
        calls,
        [
            ("/routeguide.RouteGuide/GetFeature", "unary", 1),
            ("/routeguide.RouteGuide/GetFeature", "unary", 1),
            ("/routeguide.RouteGuide/GetFeature", "unary_future", 1),
            ("/routeguide.RouteGuide/ListFeatures", "server_streaming", 1),
            ("/routeguide.RouteGuide/RecordRoute", "client_streaming", 3),
            ("/routeguide.RouteGuide/RecordRoute", "client_streaming", 2),
            (
                "/routeguide.RouteGuide/RecordRoute",
                "client_streaming_future",
                1
            ),
            ("/routeguide.RouteGuide/RouteChat", "bidi_streaming", 1),
            ("/routeguide.RouteGuide/RouteChat", "bidi_interactive", 0),
        ]
    );
}

#[test]
fn package_less_and_lower_camel_services_call_the_right_paths() {
    use gen::calculator::demo_client::DemoClient;
    use gen::contact::contact_client::ContactClient;
    use gen::streams::demo_client::DemoClient as TestDemoClient;

    let channel = Channel::recording();
    let demo = DemoClient::new(channel.clone());
    let _ = demo.calculate(gen::calculator::Work {
        num1: 100,
        num2: 50,
        op: gen::calculator::work::Operation::Divide as i32,
    });
    let _ = demo.get_city_subjects(gen::calculator::City {
        name: "beijing".into(),
    });
    let _ = demo.accumulate((1..=3).map(|val| gen::calculator::Delta { val }));
    let _ = demo.guess_number(vec![gen::calculator::Number { val: 7 }]);

    let contact = ContactClient::new(channel.clone());
    let _ = contact.get_task(gen::contact::Empty {});
    let _ = contact.tell_result(Vec::<gen::contact::Result>::new());
    let _ = contact.send_status(vec![gen::contact::ClientMsg { msg: "x".into() }]);

    let test = TestDemoClient::new(channel.clone());
    let _ = test.hellojlc(gen::streams::HellojlcReq {
        name: "jlc".into(),
        age: 23,
        number: [(
            "a".to_owned(),
            gen::streams::hellojlc_req::HellojlcReqNumberValue {
                name: "jlc".into(),
                age: 23,
                is_active: true,
            },
        )]
        .into(),
    });

    let paths: Vec<&str> = channel.calls().iter().map(|c| c.path).collect();
    assert_eq!(
        paths,
        [
            "/Demo/Calculate",
            "/Demo/GetCitySubjects",
            "/Demo/Accumulate",
            "/Demo/GuessNumber",
            "/Contact/getTask",
            "/Contact/tellResult",
            "/Contact/sendStatus",
            "/test.demo/hellojlc",
        ]
    );
}

#[test]
#[allow(deprecated)]
fn well_known_types_in_client_calls() {
    use gen::codegen::features::features_client::{FeaturesClient, TYPE_PATH};

    let channel = Channel::recording();
    let client = FeaturesClient::new(channel.clone());
    let _ = client.ping(());
    let _ = client.ping_future(Request::new(()).with_metadata("k", "v"));
    let _ = client.get_thing(());
    let _ = client.r#type("nickname".to_owned());
    let _ = client.type_with_call(String::new());
    let ticks: Vec<Result<prost_types::Timestamp, Status>> = client.ticks(()).unwrap().collect();
    assert!(ticks.is_empty());
    let calls = channel.calls();
    assert_eq!(calls[0].path, "/codegen.features.Features/Ping");
    assert_eq!(calls[2].path, "/codegen.features.Features/getThing");
    assert_eq!(calls[3].path, TYPE_PATH);
    assert_eq!(calls[5].path, "/codegen.features.Features/Ticks");
}

#[test]
fn messages_round_trip_through_prost() {
    use gen::codegen::common::{Health, Ref};
    use gen::codegen::features::everything::{inner::Deeper, Choice, Inner, Kind};
    use gen::codegen::features::{Everything, Option as OptionMsg, Result as ResultMsg};
    use prost::Message;

    let inner = Inner {
        label: "first".into(),
        deeper: Some(Deeper {
            values: vec![-1, 0, i64::MAX],
        }),
    };
    let mut message = Everything {
        name: "everything".into(),
        kind: Kind::Large as i32,
        inners: vec![inner.clone(), Inner::default()],
        by_label: [("first".to_owned(), inner.clone())].into(),
        healths: [(1, Health::Ok as i32), (2, Health::Down as i32)].into(),
        choice: Some(Choice::Reference(Ref {
            id: "r1".into(),
            health: Health::Ok as i32,
        })),
        blob: vec![0, 255, 7],
        samples: vec![0.5, -2.25],
        at: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        }),
        flag: Some(false),
        nickname: Some("nick".into()),
    };
    let bytes = message.encode_to_vec();
    assert_eq!(Everything::decode(bytes.as_slice()).unwrap(), message);

    for choice in [
        Choice::Text("t".into()),
        Choice::Number(-5),
        Choice::Inner(inner),
    ] {
        message.choice = Some(choice);
        let bytes = message.encode_to_vec();
        assert_eq!(Everything::decode(bytes.as_slice()).unwrap(), message);
    }

    // Aliased enum values share one variant; the wire carries the number.
    assert_eq!(Kind::Small as i32, 1);
    assert_eq!(Kind::try_from(1), Ok(Kind::Small));
    assert_eq!(Health::try_from(1), Ok(Health::Ok));
    assert_eq!(Kind::from_str_name("KIND_SMALL"), Some(Kind::Small));

    // Reserved numbers are not fields: an unknown field 6 is skipped on decode.
    let mut with_unknown = Everything {
        name: "x".into(),
        ..Default::default()
    }
    .encode_to_vec();
    with_unknown.extend_from_slice(&[6 << 3, 42]); // field 6, varint 42
    assert_eq!(
        Everything::decode(with_unknown.as_slice()).unwrap().name,
        "x"
    );

    // Messages that shadow prelude names are ordinary messages.
    let r = ResultMsg { ok: true };
    assert_eq!(ResultMsg::decode(r.encode_to_vec().as_slice()).unwrap(), r);
    let o = OptionMsg { value: "v".into() };
    assert_eq!(OptionMsg::decode(o.encode_to_vec().as_slice()).unwrap(), o);

    // The seeds' messages too (nested enum of seed 000, map of seed 003).
    let work = gen::calculator::Work {
        num1: 100,
        num2: 0,
        op: gen::calculator::work::Operation::Divide as i32,
    };
    assert_eq!(
        gen::calculator::Work::decode(work.encode_to_vec().as_slice()).unwrap(),
        work
    );
}

/// Compile-only: the client reads like the seeds (`client.get_feature(point)?`).
#[allow(dead_code)]
fn reads_like_the_seeds(client: &RouteGuideClient) -> Result<(), Status> {
    let feature = client.get_feature(Point::default())?;
    let _ = feature.name;
    for feature in client.list_features(Rectangle::default())? {
        let _feature = feature?;
    }
    let _summary = client.record_route(vec![Point::default()])?;
    for note in client.route_chat(vec![RouteNote::default()])? {
        let _note = note?;
    }
    let response = client.get_feature_with_call(Point::default())?;
    let _ = (response.initial_metadata(), response.trailing_metadata());
    let future = client.get_feature_future(Point::default());
    future.cancel();
    let _ = future.is_done();
    let _ = future.result()?.into_inner();
    Ok(())
}
