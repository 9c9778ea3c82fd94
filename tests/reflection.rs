//! Server reflection against our own server, with our own client, over both protocol versions
//! (`grpc.reflection.v1` and `v1alpha`): list services, files with their imports, symbol and
//! extension lookups, NOT_FOUND answers, and the per-stream rule that a file's imports are sent
//! only once.

#[path = "../examples/common/mod.rs"]
mod common;

use std::time::Duration;

use grpc_sync::prost::Message;
use grpc_sync::reflection::{
    ExtensionRequest, MessageRequest, MessageResponse, ReflectionClient, ReflectionService,
    ServerReflectionRequest, V1ALPHA_SERVICE_NAME, V1_SERVICE_NAME,
};
use grpc_sync::{CallOptions, Channel, Code, Server};
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, EnumValueDescriptorProto, FieldDescriptorProto,
    FileDescriptorProto, FileDescriptorSet,
};

use common::pb::helloworld::greeter_server::GreeterServer;

const WAIT: Duration = Duration::from_secs(30);

/// `ext/base.proto`: `message Base { extensions 100 to 199; }` and a message with a nested
/// message and a nested enum; `ext/more.proto` imports it and extends `Base` twice, once at top
/// level (`size = 100`) and once inside a message (`Scope.note = 101`).
fn extension_files() -> Vec<u8> {
    let base = FileDescriptorProto {
        name: Some("ext/base.proto".into()),
        package: Some("ext".into()),
        syntax: Some("proto2".into()),
        message_type: vec![
            DescriptorProto {
                name: Some("Base".into()),
                extension_range: vec![prost_types::descriptor_proto::ExtensionRange {
                    start: Some(100),
                    end: Some(200),
                    options: None,
                }],
                ..Default::default()
            },
            DescriptorProto {
                name: Some("Holder".into()),
                nested_type: vec![DescriptorProto {
                    name: Some("Inner".into()),
                    ..Default::default()
                }],
                enum_type: vec![EnumDescriptorProto {
                    name: Some("Kind".into()),
                    value: vec![EnumValueDescriptorProto {
                        name: Some("KIND_A".into()),
                        number: Some(0),
                        options: None,
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let extension = |name: &str, number: i32, ty: Type| FieldDescriptorProto {
        name: Some(name.into()),
        number: Some(number),
        label: Some(Label::Optional as i32),
        r#type: Some(ty as i32),
        extendee: Some(".ext.Base".into()),
        ..Default::default()
    };
    let more = FileDescriptorProto {
        name: Some("ext/more.proto".into()),
        package: Some("ext".into()),
        syntax: Some("proto2".into()),
        dependency: vec!["ext/base.proto".into()],
        extension: vec![extension("size", 100, Type::Int32)],
        message_type: vec![DescriptorProto {
            name: Some("Scope".into()),
            extension: vec![extension("note", 101, Type::String)],
            ..Default::default()
        }],
        ..Default::default()
    };
    FileDescriptorSet {
        file: vec![base, more],
    }
    .encode_to_vec()
}

/// Our server with Greeter and reflection over helloworld, route guide, the interop suite's
/// three files and the extension files, on 127.0.0.1:0.
fn server() -> (Server, Channel) {
    let reflection = ReflectionService::builder()
        .register_file_descriptor_set(common::pb::helloworld::FILE_DESCRIPTOR_SET)
        .register_file_descriptor_set(common::pb::route_guide::FILE_DESCRIPTOR_SET)
        .register_file_descriptor_set(common::pb::grpc_testing::FILE_DESCRIPTOR_SET)
        .register_file_descriptor_set(extension_files())
        .build()
        .unwrap();
    let server = Server::builder()
        .add_service(GreeterServer::new(common::helloworld::Greeter))
        .add_services(reflection.services())
        .build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    let channel = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    (server, channel)
}

fn clients(channel: &Channel) -> [ReflectionClient; 2] {
    [
        ReflectionClient::new(channel.clone()).with_timeout(WAIT),
        ReflectionClient::v1alpha(channel.clone()).with_timeout(WAIT),
    ]
}

fn names(files: &[FileDescriptorProto]) -> Vec<&str> {
    files.iter().map(|f| f.name()).collect()
}

#[test]
fn list_services_names_every_service_of_the_registered_files() {
    let (_server, channel) = server();
    for client in clients(&channel) {
        assert_eq!(
            client.list_services().unwrap(),
            [
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
                "grpc.testing.TestService",
                "grpc.testing.UnimplementedService",
                "helloworld.Greeter",
                "routeguide.RouteGuide",
            ]
        );
    }
}

#[test]
fn file_by_filename_sends_the_file_then_its_imports() {
    let (_server, channel) = server();
    for client in clients(&channel) {
        let files = client.file_by_filename("route_guide.proto").unwrap();
        assert_eq!(names(&files), ["route_guide.proto"]);
        assert_eq!(files[0].package(), "routeguide");
        assert_eq!(files[0].service[0].method.len(), 4);

        let files = client.file_by_filename("grpc/testing/test.proto").unwrap();
        assert_eq!(
            names(&files),
            [
                "grpc/testing/test.proto",
                "grpc/testing/empty.proto",
                "grpc/testing/messages.proto"
            ]
        );
        let files = client.file_by_filename("ext/more.proto").unwrap();
        assert_eq!(names(&files), ["ext/more.proto", "ext/base.proto"]);
    }
}

#[test]
fn symbols_of_every_kind_find_their_file() {
    let (_server, channel) = server();
    for client in clients(&channel) {
        for (symbol, file) in [
            ("helloworld.Greeter", "helloworld.proto"),
            ("helloworld.Greeter.SayHello", "helloworld.proto"),
            ("routeguide.RouteGuide.RouteChat", "route_guide.proto"),
            ("routeguide.Point", "route_guide.proto"),
            (".routeguide.Point", "route_guide.proto"),
            ("routeguide.Point.latitude", "route_guide.proto"),
            ("grpc.testing.PayloadType", "grpc/testing/messages.proto"),
            ("grpc.testing.COMPRESSABLE", "grpc/testing/messages.proto"),
            ("grpc.testing.TestService", "grpc/testing/test.proto"),
            ("ext.Holder.Inner", "ext/base.proto"),
            ("ext.Holder.Kind", "ext/base.proto"),
            ("ext.Holder.KIND_A", "ext/base.proto"),
            ("ext.size", "ext/more.proto"),
            ("ext.Scope.note", "ext/more.proto"),
            (V1_SERVICE_NAME, "grpc/reflection/v1/reflection.proto"),
            (
                V1ALPHA_SERVICE_NAME,
                "grpc/reflection/v1alpha/reflection.proto",
            ),
        ] {
            let files = client
                .file_containing_symbol(symbol)
                .unwrap_or_else(|e| panic!("{symbol}: {e}"));
            assert_eq!(files[0].name(), file, "{symbol}");
        }
    }
}

#[test]
fn extensions_are_found_by_type_and_number() {
    let (_server, channel) = server();
    for client in clients(&channel) {
        let files = client.file_containing_extension("ext.Base", 100).unwrap();
        assert_eq!(names(&files), ["ext/more.proto", "ext/base.proto"]);
        let files = client.file_containing_extension(".ext.Base", 101).unwrap();
        assert_eq!(files[0].name(), "ext/more.proto");
        assert_eq!(
            client.all_extension_numbers_of_type("ext.Base").unwrap(),
            [100, 101]
        );
        // A message without extensions has none; an unknown one is not found.
        assert!(client
            .all_extension_numbers_of_type("routeguide.Point")
            .unwrap()
            .is_empty());
        for err in [
            client
                .file_containing_extension("ext.Base", 150)
                .unwrap_err(),
            client
                .file_containing_extension("routeguide.Point", 1)
                .unwrap_err(),
            client.all_extension_numbers_of_type("no.Such").unwrap_err(),
        ] {
            assert_eq!(err.code(), Code::NotFound, "{err}");
        }
    }
}

#[test]
fn unknown_files_and_symbols_are_not_found() {
    let (_server, channel) = server();
    for client in clients(&channel) {
        for err in [
            client.file_by_filename("nope.proto").unwrap_err(),
            client.file_containing_symbol("no.Such").unwrap_err(),
            client.file_containing_symbol("routeguide").unwrap_err(),
            client
                .file_containing_symbol("routeguide.Point.nope")
                .unwrap_err(),
        ] {
            assert_eq!(err.code(), Code::NotFound, "{err}");
        }
    }
}

fn ask(q: MessageRequest) -> ServerReflectionRequest {
    ServerReflectionRequest {
        host: "localhost".into(),
        message_request: Some(q),
    }
}

/// The file names of a `file_descriptor_response`.
fn file_names(response: Option<MessageResponse>) -> Vec<String> {
    let Some(MessageResponse::FileDescriptorResponse(files)) = response else {
        panic!("not files: {response:?}");
    };
    files
        .file_descriptor_proto
        .into_iter()
        .map(|b| FileDescriptorProto::decode(b).unwrap().name().to_owned())
        .collect()
}

#[test]
fn one_stream_sends_each_import_once_and_survives_errors() {
    let (_server, channel) = server();
    for client in clients(&channel) {
        let (mut tx, mut rx) = client
            .server_reflection_info_interactive(CallOptions::new().timeout(WAIT))
            .unwrap();
        let mut answer = |q: MessageRequest| {
            let request = ask(q);
            tx.send(request.clone()).unwrap();
            let response = rx.next().unwrap().unwrap();
            assert_eq!(response.valid_host, "localhost");
            assert_eq!(response.original_request.as_ref(), Some(&request));
            response.message_response
        };
        assert_eq!(
            file_names(answer(MessageRequest::FileContainingSymbol(
                "grpc.testing.TestService".into()
            ))),
            [
                "grpc/testing/test.proto",
                "grpc/testing/empty.proto",
                "grpc/testing/messages.proto"
            ]
        );
        // An error answer leaves the stream open.
        let Some(MessageResponse::ErrorResponse(e)) =
            answer(MessageRequest::FileByFilename("nope.proto".into()))
        else {
            panic!("no error for an unknown file");
        };
        assert_eq!(e.error_code, i32::from(Code::NotFound));
        // The file asked for is always sent; its imports were sent already.
        assert_eq!(
            file_names(answer(MessageRequest::FileByFilename(
                "grpc/testing/test.proto".into()
            ))),
            ["grpc/testing/test.proto"]
        );
        assert_eq!(
            file_names(answer(MessageRequest::FileContainingExtension(
                ExtensionRequest {
                    containing_type: "ext.Base".into(),
                    extension_number: 100,
                }
            ))),
            ["ext/more.proto", "ext/base.proto"]
        );
        assert_eq!(
            file_names(answer(MessageRequest::FileByFilename(
                "ext/base.proto".into()
            ))),
            ["ext/base.proto"]
        );
        tx.close().unwrap();
        assert!(rx.next().is_none(), "the stream ends after the half-close");
        assert!(rx.trailing_metadata().is_some());
    }
}

#[test]
fn a_request_without_a_question_is_invalid() {
    let (_server, channel) = server();
    let client = ReflectionClient::new(channel).with_timeout(WAIT);
    let mut answers = client
        .server_reflection_info([ServerReflectionRequest::default()])
        .unwrap();
    let response = answers.next().unwrap().unwrap();
    let Some(MessageResponse::ErrorResponse(e)) = response.message_response else {
        panic!("an answer to nothing: {response:?}");
    };
    assert_eq!(e.error_code, i32::from(Code::InvalidArgument));
    assert!(answers.next().is_none());
}

#[test]
fn with_service_name_limits_the_list() {
    let reflection = ReflectionService::builder()
        .register_file_descriptor_set(common::pb::route_guide::FILE_DESCRIPTOR_SET)
        .register_file_descriptor_set(common::pb::helloworld::FILE_DESCRIPTOR_SET)
        .with_service_name("helloworld.Greeter")
        .include_reflection_service(false)
        .build()
        .unwrap();
    let listed: Vec<&str> = reflection.service_names().collect();
    assert_eq!(listed, ["helloworld.Greeter"]);
    let server = Server::builder().add_service(reflection.v1()).build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    let channel = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    let client = ReflectionClient::new(channel.clone()).with_timeout(WAIT);
    assert_eq!(client.list_services().unwrap(), ["helloworld.Greeter"]);
    // Unlisted services are still described.
    let files = client
        .file_containing_symbol("routeguide.RouteGuide")
        .unwrap();
    assert_eq!(names(&files), ["route_guide.proto"]);
    // Only v1 was added: v1alpha is UNIMPLEMENTED.
    let err = ReflectionClient::v1alpha(channel)
        .with_timeout(WAIT)
        .list_services()
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err}");
}

/// A message whose field 1 is a number where `ServerReflectionRequest` has a string.
#[derive(Clone, PartialEq, grpc_sync::prost::Message)]
struct NotARequest {
    #[prost(int64, tag = "1")]
    host: i64,
}

#[test]
fn a_request_that_does_not_decode_ends_the_stream_with_internal() {
    let (server, channel) = server();
    let mut answers = channel
        .bidi_streaming::<_, grpc_sync::reflection::ServerReflectionResponse, _>(
            grpc_sync::reflection::V1_PATH,
            grpc_sync::Request::new(std::iter::once(NotARequest { host: 5 })).with_timeout(WAIT),
        )
        .unwrap();
    let err = answers.next().unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err}");
    assert!(answers.next().is_none());
    // The server goes on answering.
    let client = ReflectionClient::new(channel).with_timeout(WAIT);
    assert!(!client.list_services().unwrap().is_empty());
    drop(server);
}
