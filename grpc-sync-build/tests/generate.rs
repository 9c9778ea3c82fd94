//! Generation tests: every proto of the project generates without `protoc`, the committed
//! golden files under `tests/generated/` (compiled by `tests/generated_code.rs`) are up to date,
//! and the generated code has the signatures, paths and defaults the runtime contract expects.
//!
//! After an intended change to the generator, refresh the golden files with
//! `GRPC_SYNC_BLESS=1 cargo test -p grpc-sync-build --test generate`.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Once;

use grpc_sync_build::{configure, Builder};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn root_proto_dir() -> PathBuf {
    crate_dir().join("../proto")
}

fn test_proto_dir() -> PathBuf {
    crate_dir().join("tests/protos/codegen")
}

/// Points `PROTOC` at a file that does not exist, so that any attempt to run protoc fails.
fn no_protoc() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("PROTOC", "/nonexistent/grpc-sync-build-test/protoc");
    });
    assert!(!Path::new(&std::env::var_os("PROTOC").unwrap()).exists());
}

/// One golden case: a folder of `tests/generated/`, and how to produce its files.
struct Case {
    dir: &'static str,
    builder: Builder,
    protos: Vec<PathBuf>,
    includes: Vec<PathBuf>,
}

/// The root `proto/` files, each compiled on its own (package-less files would clash if
/// compiled together: calculator.proto and contact.proto both define `Result`).
const ROOT_PROTOS: &[&str] = &[
    "bench",
    "calculator",
    "compute",
    "contact",
    "format_data",
    "helloworld",
    "route_guide",
    "simple_cal",
    "streams",
];

fn cases() -> Vec<Case> {
    let root = root_proto_dir();
    let mut cases: Vec<Case> = ROOT_PROTOS
        .iter()
        .map(|stem| Case {
            dir: stem,
            builder: configure().out_dir("unused"),
            protos: vec![root.join(format!("{stem}.proto"))],
            includes: vec![root.clone()],
        })
        .collect();
    cases.push(Case {
        dir: "route_guide_server_only",
        builder: configure().out_dir("unused").build_client(false),
        protos: vec![root.join("route_guide.proto")],
        includes: vec![root.clone()],
    });
    cases.push(Case {
        dir: "route_guide_client_only",
        builder: configure().out_dir("unused").build_server(false),
        protos: vec![root.join("route_guide.proto")],
        includes: vec![root.clone()],
    });
    // The gRPC interop suite: three files of one package (grpc.testing), in a subfolder.
    cases.push(Case {
        dir: "grpc_testing",
        builder: configure().out_dir("unused"),
        protos: vec![root.join("grpc/testing/test.proto")],
        includes: vec![root.clone()],
    });
    let codegen = test_proto_dir();
    cases.push(Case {
        dir: "codegen",
        builder: configure().out_dir("unused").include_file("mod.rs"),
        protos: vec![codegen.join("features.proto")],
        includes: vec![codegen],
    });
    cases
}

fn generate(case: &Case) -> BTreeMap<String, String> {
    no_protoc();
    case.builder
        .generate(&case.protos, &case.includes)
        .unwrap_or_else(|e| panic!("{}: {e}", case.dir))
}

fn generate_root(stem: &str) -> String {
    let case = cases().into_iter().find(|c| c.dir == stem).unwrap();
    let files = generate(&case);
    assert_eq!(files.len(), 1, "{stem}: {:?}", files.keys());
    files.into_values().next().unwrap()
}

/// Removes all whitespace and the trailing commas the formatter adds, so that signatures can
/// be matched whatever the line breaks.
fn squash(code: &str) -> String {
    let s: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    s.replace(",)", ")").replace(",>", ">").replace(",}", "}")
}

#[track_caller]
fn assert_has(code: &str, expected: &str) {
    assert!(
        squash(code).contains(&squash(expected)),
        "generated code lacks `{expected}`"
    );
}

#[test]
fn every_root_proto_generates_without_protoc() {
    no_protoc();
    let mut seen = Vec::new();
    for entry in fs::read_dir(root_proto_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "proto") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let files = configure()
            .generate(&[&path], &[root_proto_dir()])
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let code: String = files.values().cloned().collect();
        assert!(code.contains("_server {"), "{stem}: no server module");
        assert!(code.contains("_client {"), "{stem}: no client module");
        seen.push(stem);
    }
    seen.sort();
    // Every proto in proto/ is also a golden case, hence compiled by tests/generated_code.rs.
    assert_eq!(seen, ROOT_PROTOS);
}

#[test]
fn compile_protos_writes_files_without_protoc() {
    no_protoc();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nested/pb");
    configure()
        .out_dir(&out)
        .include_file("mod.rs")
        .file_descriptor_set_path("descriptor.bin")
        .compile_protos(
            &[
                root_proto_dir().join("helloworld.proto"),
                root_proto_dir().join("bench.proto"),
                root_proto_dir().join("route_guide.proto"),
            ],
            &[root_proto_dir()],
        )
        .unwrap();
    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["descriptor.bin", "helloworld.rs", "mod.rs", "routeguide.rs"]
    );
    // Two files of one package share one module.
    let helloworld = fs::read_to_string(out.join("helloworld.rs")).unwrap();
    assert!(helloworld.contains("pub mod greeter_server"));
    assert!(helloworld.contains("pub mod streamer_server"));
    let module = fs::read_to_string(out.join("mod.rs")).unwrap();
    assert!(module.contains("pub mod helloworld {\n    include!(\"helloworld.rs\");\n}"));
    assert!(module.contains("pub mod routeguide {\n    include!(\"routeguide.rs\");\n}"));

    use prost::Message;
    let fds = prost_types::FileDescriptorSet::decode(
        fs::read(out.join("descriptor.bin")).unwrap().as_slice(),
    )
    .unwrap();
    let names: Vec<&str> = fds.file.iter().map(|f| f.name()).collect();
    assert_eq!(
        names,
        ["helloworld.proto", "bench.proto", "route_guide.proto"]
    );
    assert!(fds.file[2].source_code_info.is_some());

    // Unchanged output is not rewritten (keeps mtimes, so Cargo does not rebuild).
    let before = fs::metadata(out.join("routeguide.rs"))
        .unwrap()
        .modified()
        .unwrap();
    configure()
        .out_dir(&out)
        .compile_protos(
            &[root_proto_dir().join("route_guide.proto")],
            &[root_proto_dir()],
        )
        .unwrap();
    let after = fs::metadata(out.join("routeguide.rs"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
}

#[test]
fn compile_protos_without_out_dir_needs_a_build_script() {
    if std::env::var_os("OUT_DIR").is_some() {
        return; // run from somewhere that sets OUT_DIR: nothing to check
    }
    let err = grpc_sync_build::compile_protos(
        &[root_proto_dir().join("helloworld.proto")],
        &[root_proto_dir()],
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("OUT_DIR"), "{err}");
}

/// Protos whose generated code is checked in once, for the examples, as
/// `examples/generated/<stem>.rs` (one file each; `grpc_testing` is the interop suite's
/// package, from `proto/grpc/testing/test.proto` and its imports).
const EXAMPLE_STEMS: [&str; 10] = [
    "bench",
    "calculator",
    "compute",
    "contact",
    "format_data",
    "grpc_testing",
    "helloworld",
    "route_guide",
    "simple_cal",
    "streams",
];

#[test]
fn examples_generated_code_is_up_to_date() {
    let bless = std::env::var_os("GRPC_SYNC_BLESS").is_some();
    let examples = crate_dir().join("../examples/generated");
    let mut stale = Vec::new();
    for case in cases()
        .into_iter()
        .filter(|c| EXAMPLE_STEMS.contains(&c.dir))
    {
        let files = generate(&case);
        assert_eq!(files.len(), 1, "{}: one file per example proto", case.dir);
        let code = files.values().next().unwrap();
        let path = examples.join(format!("{}.rs", case.dir));
        if bless {
            fs::write(&path, code).unwrap();
        } else if fs::read_to_string(&path).ok().as_ref() != Some(code) {
            stale.push(case.dir);
        }
    }
    assert!(
        stale.is_empty(),
        "examples/generated/ is stale for {stale:?}; if the generator or proto change is \
         intended, run GRPC_SYNC_BLESS=1 cargo test -p grpc-sync-build --test generate"
    );
}

#[test]
fn generated_files_are_up_to_date() {
    let bless = std::env::var_os("GRPC_SYNC_BLESS").is_some();
    let generated = crate_dir().join("tests/generated");
    let mut stale = Vec::new();
    for case in cases() {
        if EXAMPLE_STEMS.contains(&case.dir) {
            continue;
        }
        let dir = generated.join(case.dir);
        let files = generate(&case);
        if bless {
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            for (name, code) in &files {
                fs::write(dir.join(name), code).unwrap();
            }
            continue;
        }
        let mut on_disk = BTreeMap::new();
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                on_disk.insert(name, fs::read_to_string(&path).unwrap());
            }
        }
        if on_disk != files {
            stale.push(case.dir);
        }
    }
    assert!(
        stale.is_empty(),
        "tests/generated/ is stale for {stale:?}; if the generator change is intended, run \
         GRPC_SYNC_BLESS=1 cargo test -p grpc-sync-build --test generate"
    );
}

#[test]
fn package_less_files_are_named_after_the_proto() {
    for (stem, file) in [
        ("calculator", "calculator.rs"),
        ("contact", "contact.rs"),
        ("simple_cal", "simple_cal.rs"),
        ("helloworld", "helloworld.rs"),
        ("streams", "test.rs"),
        ("format_data", "example.rs"),
        ("route_guide", "routeguide.rs"),
    ] {
        let case = cases().into_iter().find(|c| c.dir == stem).unwrap();
        let files = generate(&case);
        assert_eq!(files.keys().collect::<Vec<_>>(), [file], "{stem}");
    }
    let files = configure()
        .default_package_filename("pb")
        .generate(
            &[root_proto_dir().join("calculator.proto")],
            &[root_proto_dir()],
        )
        .unwrap();
    assert_eq!(files.keys().collect::<Vec<_>>(), ["pb.rs"]);
}

#[test]
fn server_trait_signatures_per_rpc_kind() {
    let code = generate_root("route_guide");
    assert_has(&code, "pub mod route_guide_server {");
    assert_has(
        &code,
        "pub trait RouteGuide: ::core::marker::Send + ::core::marker::Sync + 'static {",
    );
    assert_has(
        &code,
        "fn get_feature(&self, request: super::Point, ctx: &::grpc_sync::ServerContext) \
         -> ::core::result::Result<super::Feature, ::grpc_sync::Status>",
    );
    assert_has(
        &code,
        "fn list_features<'a>(&'a self, request: super::Rectangle, ctx: &'a ::grpc_sync::ServerContext) \
         -> ::core::result::Result<::grpc_sync::ResponseStream<'a, super::Feature>, ::grpc_sync::Status>",
    );
    assert_has(
        &code,
        "fn record_route(&self, requests: ::grpc_sync::Streaming<super::Point>, ctx: &::grpc_sync::ServerContext) \
         -> ::core::result::Result<super::RouteSummary, ::grpc_sync::Status>",
    );
    assert_has(
        &code,
        "fn route_chat<'a>(&'a self, requests: ::grpc_sync::Streaming<super::RouteNote>, ctx: &'a ::grpc_sync::ServerContext) \
         -> ::core::result::Result<::grpc_sync::ResponseStream<'a, super::RouteNote>, ::grpc_sync::Status>",
    );
}

#[test]
fn server_adapter_registers_every_method() {
    let code = generate_root("route_guide");
    assert_has(
        &code,
        "pub const SERVICE_NAME: &str = \"routeguide.RouteGuide\";",
    );
    assert_has(
        &code,
        "pub struct RouteGuideServer<T>(::std::sync::Arc<T>);",
    );
    assert_has(&code, "pub fn new(inner: T) -> Self");
    assert_has(&code, "pub fn from_arc(inner: ::std::sync::Arc<T>) -> Self");
    assert_has(
        &code,
        "impl<T: RouteGuide> ::core::convert::From<RouteGuideServer<T>> for ::grpc_sync::Service",
    );
    assert_has(
        &code,
        "::grpc_sync::Service::builder(SERVICE_NAME)\
         .unary(\"GetFeature\", GetFeatureHandler(::std::sync::Arc::clone(&server.0)))\
         .server_streaming(\"ListFeatures\", ListFeaturesHandler(::std::sync::Arc::clone(&server.0)))\
         .client_streaming(\"RecordRoute\", RecordRouteHandler(::std::sync::Arc::clone(&server.0)))\
         .bidi_streaming(\"RouteChat\", RouteChatHandler(::std::sync::Arc::clone(&server.0)))\
         .build()",
    );
    assert_has(&code, "struct GetFeatureHandler<T>(::std::sync::Arc<T>);");
    assert_has(
        &code,
        "impl<T: RouteGuide> ::grpc_sync::server::UnaryHandler<super::Point, super::Feature> for GetFeatureHandler<T>",
    );
    assert_has(
        &code,
        "impl<T: RouteGuide> ::grpc_sync::server::ServerStreamingHandler<super::Rectangle, super::Feature> for ListFeaturesHandler<T>",
    );
    assert_has(
        &code,
        "impl<T: RouteGuide> ::grpc_sync::server::ClientStreamingHandler<super::Point, super::RouteSummary> for RecordRouteHandler<T>",
    );
    assert_has(
        &code,
        "impl<T: RouteGuide> ::grpc_sync::server::BidiStreamingHandler<super::RouteNote, super::RouteNote> for RouteChatHandler<T>",
    );
    // Handlers are private.
    assert!(!squash(&code).contains("pubstructGetFeatureHandler"));
}

#[test]
fn client_signatures_per_rpc_kind() {
    let code = generate_root("route_guide");
    assert_has(&code, "pub mod route_guide_client {");
    assert_has(
        &code,
        "#[derive(Clone)] pub struct RouteGuideClient { channel: ::grpc_sync::Channel, }",
    );
    assert_has(&code, "pub fn new(channel: ::grpc_sync::Channel) -> Self");
    // Unary: plain, _with_call, _future.
    assert_has(
        &code,
        "pub fn get_feature(&self, request: impl ::grpc_sync::IntoRequest<super::Point>) \
         -> ::core::result::Result<super::Feature, ::grpc_sync::Status>",
    );
    assert_has(
        &code,
        "pub fn get_feature_with_call(&self, request: impl ::grpc_sync::IntoRequest<super::Point>) \
         -> ::core::result::Result<::grpc_sync::Response<super::Feature>, ::grpc_sync::Status>",
    );
    assert_has(
        &code,
        "pub fn get_feature_future(&self, request: impl ::grpc_sync::IntoRequest<super::Point>) \
         -> ::grpc_sync::CallFuture<::grpc_sync::Response<super::Feature>>",
    );
    // Server streaming: plain only.
    assert_has(
        &code,
        "pub fn list_features(&self, request: impl ::grpc_sync::IntoRequest<super::Rectangle>) \
         -> ::core::result::Result<::grpc_sync::Streaming<super::Feature>, ::grpc_sync::Status>",
    );
    assert!(!code.contains("list_features_with_call"));
    assert!(!code.contains("list_features_future"));
    // Client streaming: plain, _with_call, _future.
    assert_has(
        &code,
        "pub fn record_route(&self, requests: impl ::grpc_sync::IntoStreamingRequest<Message = super::Point>) \
         -> ::core::result::Result<super::RouteSummary, ::grpc_sync::Status>",
    );
    assert_has(
        &code,
        "pub fn record_route_with_call(&self, requests: impl ::grpc_sync::IntoStreamingRequest<Message = super::Point>) \
         -> ::core::result::Result<::grpc_sync::Response<super::RouteSummary>, ::grpc_sync::Status>",
    );
    assert_has(
        &code,
        "pub fn record_route_future(&self, requests: impl ::grpc_sync::IntoStreamingRequest<Message = super::Point>) \
         -> ::grpc_sync::CallFuture<::grpc_sync::Response<super::RouteSummary>>",
    );
    // Bidi: plain and _interactive.
    assert_has(
        &code,
        "pub fn route_chat(&self, requests: impl ::grpc_sync::IntoStreamingRequest<Message = super::RouteNote>) \
         -> ::core::result::Result<::grpc_sync::Streaming<super::RouteNote>, ::grpc_sync::Status>",
    );
    assert_has(
        &code,
        "pub fn route_chat_interactive(&self, options: ::grpc_sync::CallOptions) \
         -> ::core::result::Result<(::grpc_sync::RequestSender<super::RouteNote>, ::grpc_sync::Streaming<super::RouteNote>), ::grpc_sync::Status>",
    );
    assert!(!code.contains("route_chat_with_call"));
    assert!(!code.contains("route_chat_future"));
}

#[test]
fn method_paths_are_package_service_method() {
    let expect: &[(&str, &[(&str, &str)])] = &[
        (
            "route_guide",
            &[
                ("GET_FEATURE_PATH", "/routeguide.RouteGuide/GetFeature"),
                ("LIST_FEATURES_PATH", "/routeguide.RouteGuide/ListFeatures"),
                ("RECORD_ROUTE_PATH", "/routeguide.RouteGuide/RecordRoute"),
                ("ROUTE_CHAT_PATH", "/routeguide.RouteGuide/RouteChat"),
            ],
        ),
        (
            "helloworld",
            &[
                ("SAY_HELLO_PATH", "/helloworld.Greeter/SayHello"),
                ("SAY_HELLO_AGAIN_PATH", "/helloworld.Greeter/SayHelloAgain"),
            ],
        ),
        (
            "bench",
            &[("SERVER_STREAM_PATH", "/helloworld.Streamer/ServerStream")],
        ),
        (
            "calculator",
            &[
                ("CALCULATE_PATH", "/Demo/Calculate"),
                ("GET_CITY_SUBJECTS_PATH", "/Demo/GetCitySubjects"),
                ("ACCUMULATE_PATH", "/Demo/Accumulate"),
                ("GUESS_NUMBER_PATH", "/Demo/GuessNumber"),
            ],
        ),
        (
            "compute",
            &[("SAY_HELLO_PATH", "/compute.Compute/SayHello")],
        ),
        (
            "contact",
            &[
                ("SEND_STATUS_PATH", "/Contact/sendStatus"),
                ("GET_TASK_PATH", "/Contact/getTask"),
                ("TELL_RESULT_PATH", "/Contact/tellResult"),
            ],
        ),
        (
            "format_data",
            &[("DO_FORMAT_PATH", "/example.FormatData/DoFormat")],
        ),
        (
            "simple_cal",
            &[("ADD_PATH", "/Cal/Add"), ("MULTIPLY_PATH", "/Cal/Multiply")],
        ),
        (
            "streams",
            &[
                ("HELLOJLC_PATH", "/test.demo/hellojlc"),
                (
                    "TEST_CLIENT_RECV_STREAM_PATH",
                    "/test.demo/TestClientRecvStream",
                ),
                (
                    "TEST_CLIENT_SEND_STREAM_PATH",
                    "/test.demo/TestClientSendStream",
                ),
                ("TEST_TWO_WAY_STREAM_PATH", "/test.demo/TestTwoWayStream"),
            ],
        ),
    ];
    for (stem, paths) in expect {
        let code = generate_root(stem);
        for (name, path) in *paths {
            assert_has(&code, &format!("pub const {name}: &str = \"{path}\";"));
        }
        // The server registers the bare method names under the full service name.
        let service = paths[0]
            .1
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap();
        assert_has(
            &code,
            &format!("pub const SERVICE_NAME: &str = \"{service}\";"),
        );
        for (_, path) in *paths {
            let method = path.rsplit('/').next().unwrap();
            assert!(
                code.contains(&format!("\"{method}\",")),
                "{stem}: {method} not registered"
            );
        }
    }
}

#[test]
fn unimplemented_defaults_for_every_method() {
    for stem in ROOT_PROTOS {
        let code = generate_root(stem);
        let methods = code.matches("Handler<T>(::std::sync::Arc<T>);").count();
        assert!(methods > 0, "{stem}");
        let defaults = squash(&code)
            .matches(&squash(
                "::core::result::Result::Err(::grpc_sync::Status::unimplemented(\"Method not implemented!\"))",
            ))
            .count();
        assert_eq!(defaults, methods, "{stem}: one default body per method");
    }
}

#[test]
fn seed_names_become_rust_names() {
    let calculator = generate_root("calculator");
    assert_has(&calculator, "pub mod demo_server {");
    assert_has(&calculator, "pub trait Demo:");
    assert_has(&calculator, "pub struct DemoClient {");
    // The seed's message `Result` is referred to through `super::`, never shadowing.
    assert_has(
        &calculator,
        "fn calculate(&self, request: super::Work, ctx: &::grpc_sync::ServerContext) \
         -> ::core::result::Result<super::Result, ::grpc_sync::Status>",
    );
    assert_has(&calculator, "pub mod work { ");
    assert_has(&calculator, "pub enum Operation {");

    let streams = generate_root("streams");
    assert_has(&streams, "pub mod demo_server {");
    assert_has(&streams, "fn hellojlc(&self, request: super::HellojlcReq,");
    assert_has(
        &streams,
        "pub number: ::std::collections::HashMap<::grpc_sync::prost::alloc::string::String, hellojlc_req::HellojlcReqNumberValue>",
    );
    assert_has(
        &streams,
        "fn test_client_recv_stream<'a>(&'a self, request: super::TestClientRecvStreamRequest,",
    );

    let contact = generate_root("contact");
    assert_has(
        &contact,
        "fn get_task<'a>(&'a self, request: super::Empty, ctx: &'a ::grpc_sync::ServerContext) \
         -> ::core::result::Result<::grpc_sync::ResponseStream<'a, super::ServerMsg>, ::grpc_sync::Status>",
    );
    assert_has(
        &contact,
        "fn tell_result(&self, requests: ::grpc_sync::Streaming<super::Result>, ctx: &::grpc_sync::ServerContext) \
         -> ::core::result::Result<super::Empty, ::grpc_sync::Status>",
    );
    assert_has(&contact, "pub fn send_status_interactive(");
}

#[test]
fn proto_comments_become_doc_comments() {
    let code = generate_root("route_guide");
    // On the trait method and on the client method.
    assert_eq!(
        code.matches("/// Obtains the feature at a given position.")
            .count(),
        2
    );
    assert!(code.contains("/// Interface exported by the server."));
    let calculator = generate_root("calculator");
    assert!(calculator.contains("/// 客户端发送城市名字，服务端多次返回该城市包含的学科"));
    // Trailing comments count too (seed 003 puts them after the rpc).
    let streams = generate_root("streams");
    assert!(streams.contains("/// 双向流传输"));
}

#[test]
fn well_known_types_and_features() {
    let case = cases().into_iter().find(|c| c.dir == "codegen").unwrap();
    let files = generate(&case);
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["codegen.common.rs", "codegen.features.rs", "mod.rs"]
    );
    let code = &files["codegen.features.rs"];
    // google.protobuf.Empty is (), StringValue a String, Timestamp from prost_types.
    assert_has(
        code,
        "fn ping(&self, request: (), ctx: &::grpc_sync::ServerContext) -> ::core::result::Result<(), ::grpc_sync::Status>",
    );
    assert_has(
        code,
        "fn r#type(&self, request: ::grpc_sync::prost::alloc::string::String,",
    );
    assert_has(code, "pub fn type_with_call(");
    assert_has(code, "pub fn type_future(");
    assert_has(
        code,
        "pub const TYPE_PATH: &str = \"/codegen.features.Features/Type\";",
    );
    assert_has(
        code,
        "::grpc_sync::ResponseStream<'a, ::prost_types::Timestamp>",
    );
    // A type from the imported package, one module up from the service modules.
    assert_has(code, "fn lookup(&self, request: super::super::common::Ref,");
    assert_has(code, "fn get_thing(&self, request: (),");
    assert_has(code, "#[deprecated] pub fn get_thing(");
    // A nested message as a streamed response.
    assert_has(code, "ResponseStream<'a, super::everything::Inner>");
    // A service without methods still gets its modules.
    assert_has(code, "pub mod empty_server {");
    assert_has(code, "pub mod empty_client {");
    assert_eq!(
        files["mod.rs"].lines().skip(1).collect::<Vec<_>>(),
        [
            "pub mod codegen {",
            "    pub mod common {",
            "        include!(\"codegen.common.rs\");",
            "    }",
            "    pub mod features {",
            "        include!(\"codegen.features.rs\");",
            "    }",
            "}",
        ]
    );
}

#[test]
fn build_server_and_build_client_switch_modules() {
    let server_only = cases()
        .into_iter()
        .find(|c| c.dir == "route_guide_server_only")
        .unwrap();
    let code: String = generate(&server_only).into_values().collect();
    assert!(code.contains("pub mod route_guide_server"));
    assert!(!code.contains("route_guide_client"));
    let client_only = cases()
        .into_iter()
        .find(|c| c.dir == "route_guide_client_only")
        .unwrap();
    let code: String = generate(&client_only).into_values().collect();
    assert!(!code.contains("route_guide_server"));
    assert!(code.contains("pub mod route_guide_client"));
    // Messages are generated either way.
    assert!(code.contains("pub struct RouteSummary"));
}

#[test]
fn prost_path_can_be_changed() {
    let files = configure()
        .prost_path("::prost")
        .generate(
            &[root_proto_dir().join("helloworld.proto")],
            &[root_proto_dir()],
        )
        .unwrap();
    let code = &files["helloworld.rs"];
    assert!(code.contains("#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]"));
    assert!(!code.contains("grpc_sync::prost"));
}

#[test]
fn syntax_errors_say_where() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("bad.proto"),
        "syntax = \"proto3\";\n\nmessage Broken {\n  string name = ;\n}\n",
    )
    .unwrap();
    let err = configure()
        .generate(&[dir.path().join("bad.proto")], &[dir.path()])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let text = err.to_string();
    assert!(text.starts_with("bad.proto:4:"), "{text}");
}

#[test]
fn missing_files_and_imports_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = configure()
        .generate(&[dir.path().join("absent.proto")], &[dir.path()])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("absent.proto"), "{err}");

    fs::write(
        dir.path().join("importer.proto"),
        "syntax = \"proto3\";\nimport \"missing.proto\";\n",
    )
    .unwrap();
    let err = configure()
        .generate(&[dir.path().join("importer.proto")], &[dir.path()])
        .unwrap_err();
    assert!(err.to_string().contains("missing.proto"), "{err}");
    assert!(err.to_string().contains("importer.proto:2:"), "{err}");
}

#[test]
fn duplicate_names_across_packageless_files_are_rejected() {
    // Why each root proto is compiled on its own: both define `Result` in the root namespace.
    let err = configure()
        .generate(
            &[
                root_proto_dir().join("calculator.proto"),
                root_proto_dir().join("contact.proto"),
            ],
            &[root_proto_dir()],
        )
        .unwrap_err();
    assert!(err.to_string().contains("Result"), "{err}");
}

#[test]
fn generated_code_needs_no_imports() {
    for case in cases() {
        for (name, code) in generate(&case) {
            assert!(
                !code.lines().any(|l| l.trim_start().starts_with("use ")),
                "{}/{name} has a `use`",
                case.dir
            );
            // Runtime items are always named by their full path.
            for bare in ["Status::", "Streaming<", "ServerContext", "Channel"] {
                for (i, _) in code.match_indices(bare) {
                    let before = &code[..i];
                    assert!(
                        before.ends_with("::grpc_sync::") || before.ends_with("`grpc_sync::"),
                        "{}/{name}: bare `{bare}` at byte {i}",
                        case.dir
                    );
                }
            }
        }
    }
}

/// The descriptors of the reflection protos that the runtime embeds so that server reflection
/// describes itself (`src/reflection/{v1,v1alpha}.bin`, from `proto/grpc/reflection/`).
#[test]
fn reflection_descriptors_are_up_to_date() {
    let bless = std::env::var_os("GRPC_SYNC_BLESS").is_some();
    let mut stale = Vec::new();
    for version in ["v1", "v1alpha"] {
        let mut compiler = grpc_sync_build::protox::Compiler::new([root_proto_dir()]).unwrap();
        compiler.include_imports(true).include_source_info(true);
        compiler
            .open_file(root_proto_dir().join(format!("grpc/reflection/{version}/reflection.proto")))
            .unwrap();
        let encoded = compiler.encode_file_descriptor_set();
        let path = crate_dir().join(format!("../src/reflection/{version}.bin"));
        if bless {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, &encoded).unwrap();
        } else if fs::read(&path).ok() != Some(encoded) {
            stale.push(version);
        }
    }
    assert!(
        stale.is_empty(),
        "src/reflection/ is stale for {stale:?}; run \
         GRPC_SYNC_BLESS=1 cargo test -p grpc-sync-build --test generate"
    );
}

/// Every generated module embeds its package's descriptors and their imports, decodable.
#[test]
fn generated_modules_embed_their_file_descriptor_set() {
    use prost::Message;

    let case = cases()
        .into_iter()
        .find(|c| c.dir == "grpc_testing")
        .unwrap();
    let files = generate(&case);
    let code = files.values().next().unwrap();
    assert_has(code, "pub const FILE_DESCRIPTOR_SET: &[u8] = b\"");
    // Compile the literal back: take it from the generated text and unescape it.
    let start = code.find("FILE_DESCRIPTOR_SET: &[u8] = b\"").unwrap();
    let literal = &code[start + "FILE_DESCRIPTOR_SET: &[u8] = b\"".len()..];
    let literal = &literal[..literal.rfind('"').unwrap()];
    let bytes = unescape(literal);
    let fds = prost_types::FileDescriptorSet::decode(bytes.as_slice()).unwrap();
    let mut names: Vec<&str> = fds.file.iter().map(|f| f.name()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc/testing/empty.proto",
            "grpc/testing/messages.proto",
            "grpc/testing/test.proto"
        ]
    );
    assert!(fds.file.iter().all(|f| f.source_code_info.is_some()));

    let off = configure()
        .out_dir("unused")
        .embed_file_descriptor_set(false)
        .generate(&case.protos, &case.includes)
        .unwrap();
    assert!(!off.values().next().unwrap().contains("FILE_DESCRIPTOR_SET"));
}

/// The bytes of a Rust byte-string literal's body (the escapes the generator writes).
fn unescape(literal: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let bytes = literal.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes[i + 1] {
            b'\n' => {
                i += 2;
                while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
            }
            b'x' => {
                let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 4;
            }
            other => {
                out.push(other);
                i += 2;
            }
        }
    }
    out
}
