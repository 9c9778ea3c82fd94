//! Server reflection: `grpc.reflection.v1.ServerReflection` and its older twin
//! `grpc.reflection.v1alpha.ServerReflection`, which tools such as grpcurl, grpcui, Postman and
//! grpcio-reflection's `ProtoReflectionDescriptorDatabase` use to discover a server's services
//! and message types without the `.proto` files.
//!
//! It is an ordinary bidirectional-streaming service built on the public API: a
//! [`BidiStreamingHandler`] that answers each request of the stream in turn from an index of
//! the registered file descriptors. The messages are hand-written prost structs matching
//! `proto/grpc/reflection/v1/reflection.proto` (the v1alpha file declares the same messages in
//! another package, so one set of types serves both).
//!
//! Register the descriptors `grpc-sync-build` embeds in every generated module
//! (`FILE_DESCRIPTOR_SET`), then add both services:
//!
//! ```ignore
//! let reflection = ReflectionService::builder()
//!     .register_file_descriptor_set(helloworld::FILE_DESCRIPTOR_SET)
//!     .build()?;
//! let server = Server::builder()
//!     .add_service(GreeterServer::new(MyGreeter))
//!     .add_services(reflection.services())
//!     .build();
//! ```
//!
//! What it answers, as grpc-go and grpcio do:
//!
//! * `list_services`: the services of the registered files (or those named with
//!   [`ReflectionBuilder::with_service_name`]), the reflection services included;
//! * `file_by_filename`, `file_containing_symbol`, `file_containing_extension`: the file, then
//!   every file it imports, directly or not, that this stream has not been sent yet (the
//!   requested file itself is always sent). Symbols are fully-qualified names of messages,
//!   enums, enum values, services, methods, fields, oneofs and extensions, nested ones
//!   included (`routeguide.RouteGuide`, `routeguide.RouteGuide.GetFeature`,
//!   `pkg.Outer.Inner`), with or without a leading dot;
//! * `all_extension_numbers_of_type`: the field numbers of the known extensions of a message
//!   (an empty list for a message that has none);
//! * anything unknown: an `error_response` with `NOT_FOUND`, and the stream goes on; a request
//!   with no question in it gets `INVALID_ARGUMENT`.
//!
//! A reflection stream holds a worker thread while it is open, like every streaming handler;
//! reflection clients ask a few questions and close it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet};

use crate::client::{CallOptions, Channel, Request, RequestSender};
use crate::server::{BidiStreamingHandler, ResponseStream, ServerContext, Service};
use crate::status::{Code, Status};
use crate::streaming::Streaming;

/// The name of the current reflection service.
pub const V1_SERVICE_NAME: &str = "grpc.reflection.v1.ServerReflection";
/// The name of the older reflection service, still used by many clients (grpcurl, grpcio).
pub const V1ALPHA_SERVICE_NAME: &str = "grpc.reflection.v1alpha.ServerReflection";
/// The one method of both services.
pub const METHOD_NAME: &str = "ServerReflectionInfo";
/// `/grpc.reflection.v1.ServerReflection/ServerReflectionInfo`.
pub const V1_PATH: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
/// `/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo`.
pub const V1ALPHA_PATH: &str = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

/// The encoded `FileDescriptorSet` of `grpc/reflection/v1/reflection.proto`, so that the
/// reflection service can describe itself (produced by grpc-sync-build from the vendored
/// `.proto`; its tests check that it is up to date).
pub const V1_FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("reflection/v1.bin");
/// The encoded `FileDescriptorSet` of `grpc/reflection/v1alpha/reflection.proto`.
pub const V1ALPHA_FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("reflection/v1alpha.bin");

// --- messages (reflection.proto) ---------------------------------------------------------------

/// A question: which one is in [`message_request`](Self::message_request).
#[derive(Clone, PartialEq, Message)]
pub struct ServerReflectionRequest {
    /// The host the question is about (unused by this server; echoed as `valid_host`).
    #[prost(string, tag = "1")]
    pub host: String,
    /// The question.
    #[prost(oneof = "MessageRequest", tags = "3, 4, 5, 6, 7")]
    pub message_request: Option<MessageRequest>,
}

/// The questions a [`ServerReflectionRequest`] can carry.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum MessageRequest {
    /// The file with this name (`route_guide.proto`), as the file imports it.
    #[prost(string, tag = "3")]
    FileByFilename(String),
    /// The file that declares this fully-qualified symbol (`routeguide.RouteGuide`).
    #[prost(string, tag = "4")]
    FileContainingSymbol(String),
    /// The file that declares the extension of a message with a field number.
    #[prost(message, tag = "5")]
    FileContainingExtension(ExtensionRequest),
    /// The numbers of every known extension of this message type.
    #[prost(string, tag = "6")]
    AllExtensionNumbersOfType(String),
    /// The names of the services (the content is not checked).
    #[prost(string, tag = "7")]
    ListServices(String),
}

/// An extension, by the message it extends and its field number.
#[derive(Clone, PartialEq, Message)]
pub struct ExtensionRequest {
    /// The extended message's fully-qualified name (`pkg.Msg`).
    #[prost(string, tag = "1")]
    pub containing_type: String,
    /// The extension's field number.
    #[prost(int32, tag = "2")]
    pub extension_number: i32,
}

/// An answer, with the request it answers.
#[derive(Clone, PartialEq, Message)]
pub struct ServerReflectionResponse {
    /// The request's `host`.
    #[prost(string, tag = "1")]
    pub valid_host: String,
    /// The request this answers.
    #[prost(message, optional, tag = "2")]
    pub original_request: Option<ServerReflectionRequest>,
    /// The answer.
    #[prost(oneof = "MessageResponse", tags = "4, 5, 6, 7")]
    pub message_response: Option<MessageResponse>,
}

/// The answers a [`ServerReflectionResponse`] can carry.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum MessageResponse {
    /// Files, for the three file questions.
    #[prost(message, tag = "4")]
    FileDescriptorResponse(FileDescriptorResponse),
    /// Extension numbers, for `all_extension_numbers_of_type`.
    #[prost(message, tag = "5")]
    AllExtensionNumbersResponse(ExtensionNumberResponse),
    /// Service names, for `list_services`.
    #[prost(message, tag = "6")]
    ListServicesResponse(ListServiceResponse),
    /// Why the question has no answer.
    #[prost(message, tag = "7")]
    ErrorResponse(ErrorResponse),
}

/// Encoded `FileDescriptorProto`s: the file asked for first, then its imports.
#[derive(Clone, PartialEq, Message)]
pub struct FileDescriptorResponse {
    /// Each an encoded `google.protobuf.FileDescriptorProto`.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub file_descriptor_proto: Vec<Bytes>,
}

/// The extension numbers of a message type.
#[derive(Clone, PartialEq, Message)]
pub struct ExtensionNumberResponse {
    /// The message's fully-qualified name.
    #[prost(string, tag = "1")]
    pub base_type_name: String,
    /// The field numbers of its known extensions.
    #[prost(int32, repeated, tag = "2")]
    pub extension_number: Vec<i32>,
}

/// The services a server offers.
#[derive(Clone, PartialEq, Message)]
pub struct ListServiceResponse {
    /// One per service.
    #[prost(message, repeated, tag = "1")]
    pub service: Vec<ServiceResponse>,
}

/// One service.
#[derive(Clone, PartialEq, Message)]
pub struct ServiceResponse {
    /// Its fully-qualified name (`routeguide.RouteGuide`).
    #[prost(string, tag = "1")]
    pub name: String,
}

/// A question without an answer.
#[derive(Clone, PartialEq, Message)]
pub struct ErrorResponse {
    /// A gRPC status code ([`Code`] as a number).
    #[prost(int32, tag = "1")]
    pub error_code: i32,
    /// Why.
    #[prost(string, tag = "2")]
    pub error_message: String,
}

impl ErrorResponse {
    fn new(code: Code, message: String) -> ErrorResponse {
        ErrorResponse {
            error_code: code.into(),
            error_message: message,
        }
    }
}

impl From<ErrorResponse> for Status {
    fn from(e: ErrorResponse) -> Status {
        Status::new(Code::from_i32(e.error_code), e.error_message)
    }
}

// --- building ----------------------------------------------------------------------------------

/// Why [`ReflectionBuilder::build`] failed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ReflectionError {
    /// Registered bytes are not an encoded `FileDescriptorSet`.
    Decode(prost::DecodeError),
    /// A registered file imports a file that was not registered; clients could not build it.
    MissingDependency {
        /// The importing file.
        file: String,
        /// The file it imports.
        dependency: String,
    },
}

impl fmt::Display for ReflectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReflectionError::Decode(e) => write!(f, "not an encoded FileDescriptorSet: {e}"),
            ReflectionError::MissingDependency { file, dependency } => write!(
                f,
                "{file} imports {dependency}, which is not registered for reflection"
            ),
        }
    }
}

impl std::error::Error for ReflectionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReflectionError::Decode(e) => Some(e),
            ReflectionError::MissingDependency { .. } => None,
        }
    }
}

/// Collects file descriptors for a [`ReflectionService`]; from [`ReflectionService::builder`].
#[derive(Debug, Clone)]
pub struct ReflectionBuilder {
    encoded: Vec<Bytes>,
    files: Vec<FileDescriptorProto>,
    service_names: Vec<String>,
    include_reflection_service: bool,
}

impl ReflectionBuilder {
    /// Registers every file of an encoded `FileDescriptorSet`, such as the
    /// `FILE_DESCRIPTOR_SET` constant of a module generated by grpc-sync-build (or the file
    /// its `file_descriptor_set_path` writes). A file registered twice is kept once.
    pub fn register_file_descriptor_set(mut self, encoded: impl Into<Bytes>) -> Self {
        self.encoded.push(encoded.into());
        self
    }

    /// Registers one decoded file.
    pub fn register_file_descriptor_proto(mut self, file: FileDescriptorProto) -> Self {
        self.files.push(file);
        self
    }

    /// Lists only the services named this way (call it once per service) in `list_services`
    /// answers. By default every service of the registered files is listed. Files, symbols
    /// and extensions are answered either way.
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service_names.push(name.into());
        self
    }

    /// Whether the reflection services describe themselves: their own `.proto` files are
    /// registered and their names listed. Default `true`, as in grpcio and tonic.
    pub fn include_reflection_service(mut self, include: bool) -> Self {
        self.include_reflection_service = include;
        self
    }

    /// Decodes and indexes the registered files.
    ///
    /// # Errors
    ///
    /// [`ReflectionError::Decode`] for bytes that are not a `FileDescriptorSet`;
    /// [`ReflectionError::MissingDependency`] for a file whose import was not registered.
    pub fn build(self) -> Result<ReflectionService, ReflectionError> {
        let mut sets = Vec::new();
        if self.include_reflection_service {
            sets.push(Bytes::from_static(V1_FILE_DESCRIPTOR_SET));
            sets.push(Bytes::from_static(V1ALPHA_FILE_DESCRIPTOR_SET));
        }
        sets.extend(self.encoded);
        let mut index = Index::default();
        for encoded in sets {
            let set = FileDescriptorSet::decode(encoded).map_err(ReflectionError::Decode)?;
            for file in set.file {
                index.add_file(file);
            }
        }
        for file in self.files {
            index.add_file(file);
        }
        index.check_dependencies()?;
        if !self.service_names.is_empty() {
            index.services = self.service_names.into_iter().collect();
            if self.include_reflection_service {
                index.services.insert(V1_SERVICE_NAME.to_owned());
                index.services.insert(V1ALPHA_SERVICE_NAME.to_owned());
            }
        }
        Ok(ReflectionService {
            index: Arc::new(index),
        })
    }
}

// --- the index ---------------------------------------------------------------------------------

/// One registered file: its encoding (what is sent) and its imports.
#[derive(Debug)]
struct File {
    encoded: Bytes,
    dependencies: Vec<String>,
}

/// What the answers are looked up in. Names are fully qualified, without a leading dot.
#[derive(Debug, Default)]
struct Index {
    /// File name → file.
    files: HashMap<String, File>,
    /// Symbol → the name of the file that declares it.
    symbols: HashMap<String, String>,
    /// Message names (a subset of `symbols`), for `all_extension_numbers_of_type`.
    messages: HashSet<String>,
    /// (extended message, field number) → the name of the file that declares the extension.
    extensions: HashMap<(String, i32), String>,
    /// Extended message → its extension numbers.
    extension_numbers: HashMap<String, BTreeSet<i32>>,
    /// What `list_services` lists.
    services: BTreeSet<String>,
}

/// `package.name`, or `name` without a package.
fn qualify(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_owned()
    } else {
        format!("{scope}.{name}")
    }
}

impl Index {
    fn add_file(&mut self, file: FileDescriptorProto) {
        let name = file.name().to_owned();
        if self.files.contains_key(&name) {
            return;
        }
        let package = file.package();
        for service in &file.service {
            let full = qualify(package, service.name());
            for method in &service.method {
                self.symbol(qualify(&full, method.name()), &name);
            }
            self.services.insert(full.clone());
            self.symbol(full, &name);
        }
        for message in &file.message_type {
            self.add_message(package, message, &name);
        }
        for e in &file.enum_type {
            self.add_enum(package, e, &name);
        }
        for extension in &file.extension {
            self.symbol(qualify(package, extension.name()), &name);
            self.add_extension(extension.extendee(), extension.number(), &name);
        }
        let dependencies = file.dependency.clone();
        let encoded = Bytes::from(file.encode_to_vec());
        self.files.insert(
            name,
            File {
                encoded,
                dependencies,
            },
        );
    }

    fn add_message(&mut self, scope: &str, message: &DescriptorProto, file: &str) {
        let full = qualify(scope, message.name());
        for field in &message.field {
            self.symbol(qualify(&full, field.name()), file);
        }
        for oneof in &message.oneof_decl {
            self.symbol(qualify(&full, oneof.name()), file);
        }
        for extension in &message.extension {
            self.symbol(qualify(&full, extension.name()), file);
            self.add_extension(extension.extendee(), extension.number(), file);
        }
        for nested in &message.nested_type {
            self.add_message(&full, nested, file);
        }
        for e in &message.enum_type {
            self.add_enum(&full, e, file);
        }
        self.messages.insert(full.clone());
        self.symbol(full, file);
    }

    /// An enum and its values; values are scoped beside their enum, as in protobuf (`pkg.RED`).
    fn add_enum(&mut self, scope: &str, e: &EnumDescriptorProto, file: &str) {
        for value in &e.value {
            self.symbol(qualify(scope, value.name()), file);
        }
        self.symbol(qualify(scope, e.name()), file);
    }

    fn add_extension(&mut self, extendee: &str, number: i32, file: &str) {
        let extendee = extendee.trim_start_matches('.').to_owned();
        self.extension_numbers
            .entry(extendee.clone())
            .or_default()
            .insert(number);
        self.extensions
            .entry((extendee, number))
            .or_insert_with(|| file.to_owned());
    }

    fn symbol(&mut self, name: String, file: &str) {
        self.symbols.entry(name).or_insert_with(|| file.to_owned());
    }

    fn check_dependencies(&self) -> Result<(), ReflectionError> {
        // Sorted, so that the error names the same file every time.
        let sorted: BTreeMap<_, _> = self.files.iter().collect();
        for (name, file) in sorted {
            if let Some(missing) = file
                .dependencies
                .iter()
                .find(|d| !self.files.contains_key(*d))
            {
                return Err(ReflectionError::MissingDependency {
                    file: name.clone(),
                    dependency: missing.clone(),
                });
            }
        }
        Ok(())
    }

    /// Answers one request; `sent` holds the files this stream has already been sent.
    fn answer(
        &self,
        request: ServerReflectionRequest,
        sent: &mut HashSet<String>,
    ) -> ServerReflectionResponse {
        let answer = match &request.message_request {
            Some(MessageRequest::FileByFilename(name)) => self.files_for(name, sent),
            Some(MessageRequest::FileContainingSymbol(symbol)) => {
                match self.symbols.get(symbol.trim_start_matches('.')) {
                    Some(file) => self.files_for(file, sent),
                    None => Err(ErrorResponse::new(
                        Code::NotFound,
                        format!("symbol not found: {symbol}"),
                    )),
                }
            }
            Some(MessageRequest::FileContainingExtension(ext)) => {
                let key = (
                    ext.containing_type.trim_start_matches('.').to_owned(),
                    ext.extension_number,
                );
                match self.extensions.get(&key) {
                    Some(file) => self.files_for(file, sent),
                    None => Err(ErrorResponse::new(
                        Code::NotFound,
                        format!(
                            "extension not found: {} number {}",
                            ext.containing_type, ext.extension_number
                        ),
                    )),
                }
            }
            Some(MessageRequest::AllExtensionNumbersOfType(name)) => {
                let base = name.trim_start_matches('.');
                if self.messages.contains(base) {
                    let numbers = self.extension_numbers.get(base);
                    Ok(MessageResponse::AllExtensionNumbersResponse(
                        ExtensionNumberResponse {
                            base_type_name: base.to_owned(),
                            extension_number: numbers
                                .map(|n| n.iter().copied().collect())
                                .unwrap_or_default(),
                        },
                    ))
                } else {
                    Err(ErrorResponse::new(
                        Code::NotFound,
                        format!("message type not found: {name}"),
                    ))
                }
            }
            Some(MessageRequest::ListServices(_)) => {
                Ok(MessageResponse::ListServicesResponse(ListServiceResponse {
                    service: self
                        .services
                        .iter()
                        .map(|name| ServiceResponse { name: name.clone() })
                        .collect(),
                }))
            }
            None => Err(ErrorResponse::new(
                Code::InvalidArgument,
                "the request asks nothing (no message_request)".to_owned(),
            )),
        };
        ServerReflectionResponse {
            valid_host: request.host.clone(),
            message_response: Some(answer.unwrap_or_else(MessageResponse::ErrorResponse)),
            original_request: Some(request),
        }
    }

    /// The file `name`, then its imports (transitively, depth first) that are not in `sent`.
    fn files_for(
        &self,
        name: &str,
        sent: &mut HashSet<String>,
    ) -> Result<MessageResponse, ErrorResponse> {
        let Some(file) = self.files.get(name) else {
            return Err(ErrorResponse::new(
                Code::NotFound,
                format!("file not found: {name}"),
            ));
        };
        sent.insert(name.to_owned());
        let mut out = vec![file.encoded.clone()];
        let mut stack: Vec<&str> = file.dependencies.iter().rev().map(String::as_str).collect();
        while let Some(dep) = stack.pop() {
            if !sent.insert(dep.to_owned()) {
                continue;
            }
            // Every import is registered: `build` checked.
            if let Some(file) = self.files.get(dep) {
                out.push(file.encoded.clone());
                stack.extend(file.dependencies.iter().rev().map(String::as_str));
            }
        }
        Ok(MessageResponse::FileDescriptorResponse(
            FileDescriptorResponse {
                file_descriptor_proto: out,
            },
        ))
    }
}

// --- the service -------------------------------------------------------------------------------

/// Server reflection over a set of file descriptors; add [`services`](Self::services) to a
/// server (both protocol versions), or [`v1`](Self::v1) / [`v1alpha`](Self::v1alpha) alone.
///
/// Cheap to clone: the index is shared.
#[derive(Debug, Clone)]
pub struct ReflectionService {
    index: Arc<Index>,
}

impl ReflectionService {
    /// Starts registering file descriptors.
    pub fn builder() -> ReflectionBuilder {
        ReflectionBuilder {
            encoded: Vec::new(),
            files: Vec::new(),
            service_names: Vec::new(),
            include_reflection_service: true,
        }
    }

    /// `grpc.reflection.v1.ServerReflection`.
    pub fn v1(&self) -> Service {
        self.service(V1_SERVICE_NAME)
    }

    /// `grpc.reflection.v1alpha.ServerReflection` (the same questions and answers).
    pub fn v1alpha(&self) -> Service {
        self.service(V1ALPHA_SERVICE_NAME)
    }

    /// Both versions, for [`ServerBuilder::add_services`](crate::ServerBuilder::add_services).
    pub fn services(&self) -> [Service; 2] {
        [self.v1(), self.v1alpha()]
    }

    /// The names `list_services` answers with, sorted.
    pub fn service_names(&self) -> impl Iterator<Item = &str> {
        self.index.services.iter().map(String::as_str)
    }

    fn service(&self, name: &str) -> Service {
        Service::builder(name)
            .bidi_streaming(METHOD_NAME, ReflectionInfo(Arc::clone(&self.index)))
            .build()
    }
}

/// The `ServerReflectionInfo` handler: one answer per request, in order, until the client
/// half-closes.
struct ReflectionInfo(Arc<Index>);

impl BidiStreamingHandler<ServerReflectionRequest, ServerReflectionResponse> for ReflectionInfo {
    fn call<'a>(
        &'a self,
        requests: Streaming<ServerReflectionRequest>,
        _ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, ServerReflectionResponse>, Status> {
        let mut sent = HashSet::new();
        Ok(Box::new(requests.map(move |request| {
            request.map(|request| self.0.answer(request, &mut sent))
        })))
    }
}

// --- the client --------------------------------------------------------------------------------

/// A reflection client, for tools and tests: the raw stream, and one-question helpers that
/// decode the answers.
///
/// ```no_run
/// use grpc_sync::reflection::ReflectionClient;
/// let channel = grpc_sync::Channel::insecure("localhost:50051")?;
/// let client = ReflectionClient::new(channel);
/// for name in client.list_services()? {
///     let files = client.file_containing_symbol(&name)?;
///     println!("{name}: in {}", files[0].name());
/// }
/// # Ok::<(), grpc_sync::Status>(())
/// ```
#[derive(Clone)]
pub struct ReflectionClient {
    channel: Channel,
    path: &'static str,
    timeout: Option<Duration>,
}

impl ReflectionClient {
    /// A client of `grpc.reflection.v1.ServerReflection`.
    pub fn new(channel: Channel) -> ReflectionClient {
        ReflectionClient {
            channel,
            path: V1_PATH,
            timeout: None,
        }
    }

    /// A client of the older `grpc.reflection.v1alpha.ServerReflection`.
    pub fn v1alpha(channel: Channel) -> ReflectionClient {
        ReflectionClient {
            path: V1ALPHA_PATH,
            ..ReflectionClient::new(channel)
        }
    }

    /// Gives each call of the one-question helpers this deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> ReflectionClient {
        self.timeout = Some(timeout);
        self
    }

    /// The raw bidirectional call: requests sent from a helper thread, answers in order.
    ///
    /// # Errors
    /// Failures before the call starts.
    pub fn server_reflection_info(
        &self,
        requests: impl IntoIterator<Item = ServerReflectionRequest, IntoIter: Send + 'static>,
    ) -> Result<Streaming<ServerReflectionResponse>, Status> {
        let mut request = Request::new(requests.into_iter());
        if let Some(t) = self.timeout {
            request = request.with_timeout(t);
        }
        self.channel.bidi_streaming(self.path, request)
    }

    /// The raw call driven by hand: ask, read the answer, ask again on the same stream (files
    /// already sent on it are not sent again).
    ///
    /// # Errors
    /// Failures before the call starts.
    pub fn server_reflection_info_interactive(
        &self,
        options: CallOptions,
    ) -> Result<
        (
            RequestSender<ServerReflectionRequest>,
            Streaming<ServerReflectionResponse>,
        ),
        Status,
    > {
        self.channel.bidi_interactive(self.path, options)
    }

    /// Asks one question on a stream of its own; an `error_response` becomes the `Err`.
    ///
    /// # Errors
    /// The call's status, the server's `error_response`, or INTERNAL if the stream ends
    /// without an answer.
    pub fn ask(&self, question: MessageRequest) -> Result<MessageResponse, Status> {
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(question),
        };
        let mut answers = self.server_reflection_info([request])?;
        let answer = answers
            .next()
            .ok_or_else(|| Status::internal("the reflection stream ended without an answer"))??;
        match answer.message_response {
            Some(MessageResponse::ErrorResponse(e)) => Err(e.into()),
            Some(response) => Ok(response),
            None => Err(Status::internal("a reflection answer with nothing in it")),
        }
    }

    /// The services the server lists.
    ///
    /// # Errors
    /// As for [`ask`](Self::ask), and INTERNAL for an answer of the wrong kind.
    pub fn list_services(&self) -> Result<Vec<String>, Status> {
        match self.ask(MessageRequest::ListServices(String::new()))? {
            MessageResponse::ListServicesResponse(list) => {
                Ok(list.service.into_iter().map(|s| s.name).collect())
            }
            _ => Err(wrong_kind()),
        }
    }

    /// The file named `name` and its imports, decoded.
    ///
    /// # Errors
    /// NOT_FOUND for an unknown file; as for [`list_services`](Self::list_services).
    pub fn file_by_filename(&self, name: &str) -> Result<Vec<FileDescriptorProto>, Status> {
        files(self.ask(MessageRequest::FileByFilename(name.to_owned()))?)
    }

    /// The file declaring `symbol` and its imports, decoded.
    ///
    /// # Errors
    /// NOT_FOUND for an unknown symbol; as for [`list_services`](Self::list_services).
    pub fn file_containing_symbol(&self, symbol: &str) -> Result<Vec<FileDescriptorProto>, Status> {
        files(self.ask(MessageRequest::FileContainingSymbol(symbol.to_owned()))?)
    }

    /// The file declaring extension `number` of `containing_type`, and its imports.
    ///
    /// # Errors
    /// NOT_FOUND for an unknown extension; as for [`list_services`](Self::list_services).
    pub fn file_containing_extension(
        &self,
        containing_type: &str,
        number: i32,
    ) -> Result<Vec<FileDescriptorProto>, Status> {
        files(
            self.ask(MessageRequest::FileContainingExtension(ExtensionRequest {
                containing_type: containing_type.to_owned(),
                extension_number: number,
            }))?,
        )
    }

    /// The extension numbers of message type `name`.
    ///
    /// # Errors
    /// NOT_FOUND for an unknown type; as for [`list_services`](Self::list_services).
    pub fn all_extension_numbers_of_type(&self, name: &str) -> Result<Vec<i32>, Status> {
        match self.ask(MessageRequest::AllExtensionNumbersOfType(name.to_owned()))? {
            MessageResponse::AllExtensionNumbersResponse(r) => Ok(r.extension_number),
            _ => Err(wrong_kind()),
        }
    }
}

impl fmt::Debug for ReflectionClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReflectionClient")
            .field("path", &self.path)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn wrong_kind() -> Status {
    Status::internal("a reflection answer of the wrong kind")
}

/// Decodes the files of a `file_descriptor_response`.
fn files(response: MessageResponse) -> Result<Vec<FileDescriptorProto>, Status> {
    let MessageResponse::FileDescriptorResponse(files) = response else {
        return Err(wrong_kind());
    };
    files
        .file_descriptor_proto
        .into_iter()
        .map(|bytes| {
            FileDescriptorProto::decode(bytes).map_err(|e| {
                Status::internal(format!("a file descriptor that does not decode: {e}"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(index: &Index, q: MessageRequest, sent: &mut HashSet<String>) -> MessageResponse {
        let request = ServerReflectionRequest {
            host: "h".into(),
            message_request: Some(q),
        };
        let response = index.answer(request.clone(), sent);
        assert_eq!(response.valid_host, "h");
        assert_eq!(response.original_request, Some(request));
        response.message_response.unwrap()
    }

    #[test]
    fn the_reflection_protos_describe_themselves() {
        let svc = ReflectionService::builder().build().unwrap();
        let names: Vec<&str> = svc.service_names().collect();
        assert_eq!(names, [V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME]);
        let mut sent = HashSet::new();
        let q = MessageRequest::FileContainingSymbol(format!("{V1_SERVICE_NAME}.{METHOD_NAME}"));
        let MessageResponse::FileDescriptorResponse(files) = ask(&svc.index, q, &mut sent) else {
            panic!("no files");
        };
        let file = FileDescriptorProto::decode(files.file_descriptor_proto[0].clone()).unwrap();
        assert_eq!(file.name(), "grpc/reflection/v1/reflection.proto");
        // The hand-written structs agree with the .proto on every field number.
        let request = file
            .message_type
            .iter()
            .find(|m| m.name() == "ServerReflectionRequest")
            .unwrap();
        let numbers: Vec<i32> = request.field.iter().map(|f| f.number()).collect();
        assert_eq!(numbers, [1, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn unknown_things_are_not_found_and_empty_requests_invalid() {
        let svc = ReflectionService::builder().build().unwrap();
        let mut sent = HashSet::new();
        for q in [
            MessageRequest::FileByFilename("nope.proto".into()),
            MessageRequest::FileContainingSymbol("no.Such".into()),
            MessageRequest::AllExtensionNumbersOfType("no.Such".into()),
            MessageRequest::FileContainingExtension(ExtensionRequest {
                containing_type: "no.Such".into(),
                extension_number: 5,
            }),
        ] {
            let MessageResponse::ErrorResponse(e) = ask(&svc.index, q, &mut sent) else {
                panic!("an answer for an unknown thing");
            };
            assert_eq!(e.error_code, i32::from(Code::NotFound));
        }
        let response = svc
            .index
            .answer(ServerReflectionRequest::default(), &mut sent);
        let Some(MessageResponse::ErrorResponse(e)) = response.message_response else {
            panic!("an answer to nothing");
        };
        assert_eq!(e.error_code, i32::from(Code::InvalidArgument));
    }

    #[test]
    fn bad_bytes_and_missing_imports_fail_to_build() {
        let err = ReflectionService::builder()
            .register_file_descriptor_set(&b"\xff\xff"[..])
            .build()
            .unwrap_err();
        assert!(matches!(err, ReflectionError::Decode(_)), "{err}");
        let err = ReflectionService::builder()
            .register_file_descriptor_proto(FileDescriptorProto {
                name: Some("a.proto".into()),
                dependency: vec!["b.proto".into()],
                ..Default::default()
            })
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "a.proto imports b.proto, which is not registered for reflection"
        );
    }
}
