//! The [`prost_build::ServiceGenerator`] that writes grpc-sync service code.
//!
//! For each service `Greeter` in package `helloworld` it appends to the package's file:
//!
//! * `pub mod greeter_server`: the `Greeter` trait (one method per rpc, each with a default body
//!   answering `UNIMPLEMENTED`), the `GreeterServer<T>` adapter that turns an implementation into a
//!   `grpc_sync::Service`, and one private handler struct per rpc;
//! * `pub mod greeter_client`: the cloneable `GreeterClient` with the blocking, `_with_call`,
//!   `_future` and `_interactive` forms of each rpc, and the request path constants.
//!
//! Every path in the emitted code is fully qualified (`::grpc_sync::…`, `::core::…`,
//! `::std::…`, `super::Message`), so it needs no `use` and survives messages named `Result`,
//! `Option` or `Status`.

use std::fmt::Write as _;

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
use prost_build::{Comments, Method, Service, ServiceGenerator};

/// The message every generated default method answers with, status `UNIMPLEMENTED`
/// (the same text grpcio's generated servicers use).
pub(crate) const UNIMPLEMENTED_MESSAGE: &str = "Method not implemented!";

/// Lints that generated code may trip in a user's crate and that say nothing about it
/// (`unused_variables`: the default bodies ignore their arguments; `deprecated`: a deprecated
/// rpc's plain client method calls its `_with_call` form; `clippy::unit_arg`: requests of type
/// `()` from `google.protobuf.Empty`; pedantic lints: doc comments copied from the proto).
const MODULE_ALLOWS: &str = "#![allow(unused_variables, dead_code, deprecated, \
     clippy::unit_arg, clippy::needless_lifetimes, clippy::too_many_arguments, \
     clippy::pedantic)]\n";

/// Generates grpc-sync servers and clients for the services prost-build hands over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SyncServiceGenerator {
    pub(crate) build_server: bool,
    pub(crate) build_client: bool,
}

impl ServiceGenerator for SyncServiceGenerator {
    fn generate(&mut self, service: Service, buf: &mut String) {
        let model = ServiceModel::new(&service);
        if self.build_server {
            model.write_server(buf);
        }
        if self.build_client {
            model.write_client(buf);
        }
    }
}

/// The RPC kind, from the `stream` keywords on the request and response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unary,
    ServerStreaming,
    ClientStreaming,
    Bidi,
}

impl Kind {
    fn of(method: &Method) -> Kind {
        match (method.client_streaming, method.server_streaming) {
            (false, false) => Kind::Unary,
            (false, true) => Kind::ServerStreaming,
            (true, false) => Kind::ClientStreaming,
            (true, true) => Kind::Bidi,
        }
    }

    fn builder_method(self) -> &'static str {
        match self {
            Kind::Unary => "unary",
            Kind::ServerStreaming => "server_streaming",
            Kind::ClientStreaming => "client_streaming",
            Kind::Bidi => "bidi_streaming",
        }
    }

    fn handler_trait(self) -> &'static str {
        match self {
            Kind::Unary => "UnaryHandler",
            Kind::ServerStreaming => "ServerStreamingHandler",
            Kind::ClientStreaming => "ClientStreamingHandler",
            Kind::Bidi => "BidiStreamingHandler",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Unary => "unary",
            Kind::ServerStreaming => "server-streaming",
            Kind::ClientStreaming => "client-streaming",
            Kind::Bidi => "bidirectional-streaming",
        }
    }
}

/// One rpc, with every name the templates need.
struct MethodModel {
    kind: Kind,
    /// The name as written in the .proto file: `SayHello`, `getTask`.
    proto_name: String,
    /// The Rust method name: `say_hello`, `r#type`.
    fn_name: String,
    /// `fn_name` without a raw-identifier prefix, to build `say_hello_with_call` from.
    fn_base: String,
    /// Request type as seen from inside the generated `*_server`/`*_client` module.
    input: String,
    /// Response type as seen from inside the generated modules.
    output: String,
    /// The request path constant's name: `SAY_HELLO_PATH`.
    path_const: String,
    /// `/helloworld.Greeter/SayHello`.
    path: String,
    /// The private handler struct's name: `SayHelloHandler`.
    handler: String,
    /// `///` lines from the proto comments (leading and trailing), possibly empty.
    docs: String,
    deprecated: bool,
}

/// One service, with every name the templates need.
struct ServiceModel {
    /// `helloworld.Greeter` (or `Greeter` without a package).
    full_name: String,
    /// `Greeter`: the trait's name.
    trait_name: String,
    /// `greeter`: the prefix of the `_server` and `_client` modules.
    module_base: String,
    docs: String,
    methods: Vec<MethodModel>,
}

impl ServiceModel {
    fn new(service: &Service) -> ServiceModel {
        let full_name = if service.package.is_empty() {
            service.proto_name.clone()
        } else {
            format!("{}.{}", service.package, service.proto_name)
        };
        let methods = service
            .methods
            .iter()
            .map(|m| {
                let fn_base = m.name.trim_start_matches("r#").to_owned();
                MethodModel {
                    kind: Kind::of(m),
                    proto_name: m.proto_name.clone(),
                    fn_name: m.name.clone(),
                    path_const: format!("{}_PATH", fn_base.to_shouty_snake_case()),
                    fn_base,
                    input: qualify(&m.input_type),
                    output: qualify(&m.output_type),
                    path: format!("/{full_name}/{}", m.proto_name),
                    handler: format!("{}Handler", m.proto_name.to_upper_camel_case()),
                    docs: doc_lines(&m.comments),
                    deprecated: m.options.deprecated == Some(true),
                }
            })
            .collect();
        ServiceModel {
            trait_name: service.name.clone(),
            module_base: service.name.to_snake_case(),
            docs: doc_lines(&service.comments),
            full_name,
            methods,
        }
    }

    fn write_server(&self, buf: &mut String) {
        let ServiceModel {
            full_name,
            trait_name,
            module_base,
            ..
        } = self;
        let server = format!("{trait_name}Server");
        let w = buf;

        // `write!` into a String cannot fail; the results are ignored throughout.
        let _ = writeln!(
            w,
            "/// Server side of `{full_name}`: the `{trait_name}` trait to implement and \
             the `{server}` adapter that registers an implementation with a `grpc_sync::Server`."
        );
        let _ = writeln!(w, "pub mod {module_base}_server {{");
        w.push_str(MODULE_ALLOWS);
        let _ = writeln!(
            w,
            "/// The service's full name, `{full_name}`: what request paths start with.\n\
             pub const SERVICE_NAME: &str = \"{full_name}\";"
        );

        // The trait.
        w.push_str(&self.docs);
        if !self.docs.is_empty() {
            w.push_str("///\n");
        }
        let _ = writeln!(
            w,
            "/// The server side of `{full_name}`. Implement the methods your service supports and \
             register the implementation with `{server}::new(..)`; every method left out answers \
             `UNIMPLEMENTED` (\"{UNIMPLEMENTED_MESSAGE}\").\n\
             ///\n\
             /// Handlers run on the server's worker threads, hence `Send + Sync`; a handler that \
             streams holds its worker until its response stream ends."
        );
        let _ = writeln!(
            w,
            "pub trait {trait_name}: ::core::marker::Send + ::core::marker::Sync + 'static {{"
        );
        for m in &self.methods {
            w.push_str(&m.docs);
            if m.deprecated {
                w.push_str("#[deprecated]\n");
            }
            let _ = writeln!(
                w,
                "{} {{\n::core::result::Result::Err(::grpc_sync::Status::unimplemented(\"{UNIMPLEMENTED_MESSAGE}\"))\n}}",
                m.server_signature()
            );
        }
        w.push_str("}\n");

        // The adapter.
        let _ = writeln!(
            w,
            "/// Adapts an implementation of `{trait_name}` to a `grpc_sync::Service` named \
             `{full_name}`:\n\
             ///\n\
             /// ```ignore\n\
             /// let server = grpc_sync::Server::builder()\n\
             ///     .add_service({server}::new(my_implementation))\n\
             ///     .build();\n\
             /// ```\n\
             pub struct {server}<T>(::std::sync::Arc<T>);\n\
             impl<T: {trait_name}> {server}<T> {{\n\
             /// Wraps `inner`, to be handed to `Server::builder().add_service(..)`.\n\
             pub fn new(inner: T) -> Self {{\n\
             Self(::std::sync::Arc::new(inner))\n\
             }}\n\
             /// Wraps an implementation that the caller shares with other code.\n\
             pub fn from_arc(inner: ::std::sync::Arc<T>) -> Self {{\n\
             Self(inner)\n\
             }}\n\
             /// The wrapped implementation.\n\
             pub fn get_ref(&self) -> &T {{\n\
             &self.0\n\
             }}\n\
             }}\n\
             impl<T> ::core::clone::Clone for {server}<T> {{\n\
             fn clone(&self) -> Self {{\n\
             Self(::std::sync::Arc::clone(&self.0))\n\
             }}\n\
             }}\n\
             impl<T: {trait_name}> ::core::convert::From<{server}<T>> for ::grpc_sync::Service {{\n\
             fn from(server: {server}<T>) -> Self {{\n\
             ::grpc_sync::Service::builder(SERVICE_NAME)"
        );
        for m in &self.methods {
            let _ = writeln!(
                w,
                ".{}(\"{}\", {}(::std::sync::Arc::clone(&server.0)))",
                m.kind.builder_method(),
                m.proto_name,
                m.handler
            );
        }
        w.push_str(".build()\n}\n}\n");

        // One handler per method, forwarding to the trait.
        for m in &self.methods {
            let MethodModel {
                input,
                output,
                handler,
                fn_name,
                ..
            } = m;
            let handler_trait = m.kind.handler_trait();
            let _ = writeln!(
                w,
                "/// Routes `{}` to `{trait_name}::{}`.\n\
                 struct {handler}<T>(::std::sync::Arc<T>);\n\
                 impl<T: {trait_name}> ::grpc_sync::server::{handler_trait}<{input}, {output}> for {handler}<T> {{",
                m.path, m.fn_base
            );
            let (lifetime, ctx_ref, arg, arg_ty, ret) = match m.kind {
                Kind::Unary => ("", "&", "request", input.clone(), output.clone()),
                Kind::ServerStreaming => (
                    "<'a>",
                    "&'a ",
                    "request",
                    input.clone(),
                    format!("::grpc_sync::ResponseStream<'a, {output}>"),
                ),
                Kind::ClientStreaming => (
                    "",
                    "&",
                    "requests",
                    format!("::grpc_sync::Streaming<{input}>"),
                    output.clone(),
                ),
                Kind::Bidi => (
                    "<'a>",
                    "&'a ",
                    "requests",
                    format!("::grpc_sync::Streaming<{input}>"),
                    format!("::grpc_sync::ResponseStream<'a, {output}>"),
                ),
            };
            let _ = writeln!(
                w,
                "fn call{lifetime}({ctx_ref}self, {arg}: {arg_ty}, ctx: {ctx_ref}::grpc_sync::ServerContext) \
                 -> ::core::result::Result<{ret}, ::grpc_sync::Status> {{\n\
                 <T as {trait_name}>::{fn_name}(&self.0, {arg}, ctx)\n\
                 }}\n\
                 }}"
            );
        }
        w.push_str("}\n");
    }

    fn write_client(&self, buf: &mut String) {
        let ServiceModel {
            full_name,
            trait_name,
            module_base,
            ..
        } = self;
        let client = format!("{trait_name}Client");
        let w = buf;

        let _ = writeln!(
            w,
            "/// Client side of `{full_name}`: the blocking `{client}` stub and the request paths."
        );
        let _ = writeln!(w, "pub mod {module_base}_client {{");
        w.push_str(MODULE_ALLOWS);
        let _ = writeln!(
            w,
            "/// The service's full name, `{full_name}`: what request paths start with.\n\
             pub const SERVICE_NAME: &str = \"{full_name}\";"
        );
        for m in &self.methods {
            let _ = writeln!(
                w,
                "/// Request path of `{}`.\npub const {}: &str = \"{}\";",
                m.proto_name, m.path_const, m.path
            );
        }

        w.push_str(&self.docs);
        if !self.docs.is_empty() {
            w.push_str("///\n");
        }
        let _ = writeln!(
            w,
            "/// A blocking client for `{full_name}`. Cloning is cheap: clones share the channel \
             and its connection.\n\
             ///\n\
             /// Each method takes the request message or a `grpc_sync::Request` wrapping it (for a \
             timeout or metadata), and blocks the calling thread until the response arrives.\n\
             #[derive(Clone)]\n\
             pub struct {client} {{\n\
             channel: ::grpc_sync::Channel,\n\
             }}\n\
             impl {client} {{\n\
             /// A client that sends its calls over `channel`.\n\
             pub fn new(channel: ::grpc_sync::Channel) -> Self {{\n\
             Self {{ channel }}\n\
             }}"
        );
        for m in &self.methods {
            m.write_client_methods(w);
        }
        w.push_str("}\n}\n");
    }
}

impl MethodModel {
    /// The trait method's signature, without a body.
    fn server_signature(&self) -> String {
        let MethodModel {
            fn_name,
            input,
            output,
            ..
        } = self;
        match self.kind {
            Kind::Unary => format!(
                "fn {fn_name}(&self, request: {input}, ctx: &::grpc_sync::ServerContext) \
                 -> ::core::result::Result<{output}, ::grpc_sync::Status>"
            ),
            Kind::ServerStreaming => format!(
                "fn {fn_name}<'a>(&'a self, request: {input}, ctx: &'a ::grpc_sync::ServerContext) \
                 -> ::core::result::Result<::grpc_sync::ResponseStream<'a, {output}>, ::grpc_sync::Status>"
            ),
            Kind::ClientStreaming => format!(
                "fn {fn_name}(&self, requests: ::grpc_sync::Streaming<{input}>, ctx: &::grpc_sync::ServerContext) \
                 -> ::core::result::Result<{output}, ::grpc_sync::Status>"
            ),
            Kind::Bidi => format!(
                "fn {fn_name}<'a>(&'a self, requests: ::grpc_sync::Streaming<{input}>, ctx: &'a ::grpc_sync::ServerContext) \
                 -> ::core::result::Result<::grpc_sync::ResponseStream<'a, {output}>, ::grpc_sync::Status>"
            ),
        }
    }

    fn write_client_methods(&self, w: &mut String) {
        let MethodModel {
            fn_name,
            fn_base,
            input,
            output,
            path_const,
            proto_name,
            ..
        } = self;
        let deprecated = if self.deprecated {
            "#[deprecated]\n"
        } else {
            ""
        };
        let docs = if self.docs.is_empty() {
            format!(
                "/// Calls `{proto_name}`, a {} rpc.\n",
                self.kind.describe()
            )
        } else {
            self.docs.clone()
        };
        // Rustdoc cannot resolve `Self::r#type`: name a raw identifier without a link.
        let see_also = if fn_name.starts_with("r#") {
            format!("/// Like `{fn_base}`")
        } else {
            format!("/// Like [`{fn_name}`](Self::{fn_name})")
        };
        let unary_request = format!("request: impl ::grpc_sync::IntoRequest<{input}>");
        let into_request =
            format!("<_ as ::grpc_sync::IntoRequest<{input}>>::into_request(request)");
        let stream_request =
            format!("requests: impl ::grpc_sync::IntoStreamingRequest<Message = {input}>");
        let into_stream_request =
            "::grpc_sync::IntoStreamingRequest::into_streaming_request(requests)";
        let status = "::grpc_sync::Status";
        match self.kind {
            Kind::Unary | Kind::ClientStreaming => {
                let (param, arg, call, call_future) = if self.kind == Kind::Unary {
                    (
                        unary_request.as_str(),
                        "request",
                        format!("self.channel.unary({path_const}, {into_request})"),
                        format!("self.channel.unary_future({path_const}, {into_request})"),
                    )
                } else {
                    (
                        stream_request.as_str(),
                        "requests",
                        format!("self.channel.client_streaming({path_const}, {into_stream_request})"),
                        format!(
                            "self.channel.client_streaming_future({path_const}, {into_stream_request})"
                        ),
                    )
                };
                let _ = writeln!(
                    w,
                    "{docs}{deprecated}pub fn {fn_name}(&self, {param}) -> ::core::result::Result<{output}, {status}> {{\n\
                     self.{fn_base}_with_call({arg}).map(::grpc_sync::Response::into_inner)\n\
                     }}\n\
                     {see_also}, but returns the whole response: the message with the \
                     initial and trailing metadata.\n\
                     {deprecated}pub fn {fn_base}_with_call(&self, {param}) \
                     -> ::core::result::Result<::grpc_sync::Response<{output}>, {status}> {{\n\
                     {call}\n\
                     }}\n\
                     {see_also}, but returns at once: the call goes on while the caller does \
                     other work, and the future gives its response.\n\
                     {deprecated}pub fn {fn_base}_future(&self, {param}) \
                     -> ::grpc_sync::CallFuture<::grpc_sync::Response<{output}>> {{\n\
                     {call_future}\n\
                     }}"
                );
            }
            Kind::ServerStreaming => {
                let _ = writeln!(
                    w,
                    "{docs}///\n\
                     /// Returns the responses as an iterator of `Result`s, which ends after the \
                     last one (or after an error).\n\
                     {deprecated}pub fn {fn_name}(&self, {unary_request}) \
                     -> ::core::result::Result<::grpc_sync::Streaming<{output}>, {status}> {{\n\
                     self.channel.server_streaming({path_const}, {into_request})\n\
                     }}"
                );
            }
            Kind::Bidi => {
                let _ = writeln!(
                    w,
                    "{docs}///\n\
                     /// The requests are sent from a helper thread while the caller reads the \
                     responses from the returned iterator.\n\
                     {deprecated}pub fn {fn_name}(&self, {stream_request}) \
                     -> ::core::result::Result<::grpc_sync::Streaming<{output}>, {status}> {{\n\
                     self.channel.bidi_streaming({path_const}, {into_stream_request})\n\
                     }}\n\
                     {see_also}, but the caller sends each request itself through the returned \
                     `RequestSender` (and half-closes with `close()`), for ping-pong exchanges.\n\
                     {deprecated}pub fn {fn_base}_interactive(&self, options: ::grpc_sync::CallOptions) \
                     -> ::core::result::Result<(::grpc_sync::RequestSender<{input}>, \
                     ::grpc_sync::Streaming<{output}>), {status}> {{\n\
                     self.channel.bidi_interactive({path_const}, options)\n\
                     }}"
                );
            }
        }
    }
}

/// Rust types that prost-build names without a path (well-known wrappers and `Empty`).
const BARE_TYPES: &[&str] = &["()", "bool", "f32", "f64", "i32", "i64", "u32", "u64"];

/// Makes a type that prost-build resolved relative to the package module usable one module
/// deeper, inside `*_server`/`*_client`: local and relative paths get `super::`, absolute paths
/// (`::prost_types::Timestamp`, extern paths) and primitives stay as they are.
pub(crate) fn qualify(ty: &str) -> String {
    if ty.starts_with("::") || ty.starts_with("crate::") || BARE_TYPES.contains(&ty) {
        ty.to_owned()
    } else {
        format!("super::{ty}")
    }
}

/// The leading and trailing comments as `///` lines (detached comments are dropped).
fn doc_lines(comments: &Comments) -> String {
    let attached = Comments {
        leading_detached: Vec::new(),
        leading: comments.leading.clone(),
        trailing: comments.trailing.clone(),
    };
    let mut out = String::new();
    attached.append_with_indent(0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualify_leaves_absolute_and_primitive_types_alone() {
        assert_eq!(qualify("HelloRequest"), "super::HelloRequest");
        assert_eq!(qualify("super::common::Ref"), "super::super::common::Ref");
        assert_eq!(qualify("everything::Inner"), "super::everything::Inner");
        assert_eq!(qualify("()"), "()");
        assert_eq!(qualify("bool"), "bool");
        assert_eq!(
            qualify("::prost_types::Timestamp"),
            "::prost_types::Timestamp"
        );
        assert_eq!(qualify("crate::pb::Thing"), "crate::pb::Thing");
    }

    #[test]
    fn kinds_follow_the_stream_keywords() {
        let mut m = Method {
            name: "x".into(),
            proto_name: "X".into(),
            comments: Comments::default(),
            input_type: "A".into(),
            output_type: "B".into(),
            input_proto_type: ".A".into(),
            output_proto_type: ".B".into(),
            options: Default::default(),
            client_streaming: false,
            server_streaming: false,
        };
        assert_eq!(Kind::of(&m), Kind::Unary);
        m.server_streaming = true;
        assert_eq!(Kind::of(&m), Kind::ServerStreaming);
        m.client_streaming = true;
        assert_eq!(Kind::of(&m), Kind::Bidi);
        m.server_streaming = false;
        assert_eq!(Kind::of(&m), Kind::ClientStreaming);
    }
}
