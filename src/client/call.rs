//! Request and response wrappers and per-call options.

use std::time::Duration;

use crate::client::CallCredentials;
use crate::compression::CompressionEncoding;
use crate::metadata::MetadataMap;

/// Options of one call: grpcio's `timeout=`, `metadata=`, `wait_for_ready=`.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    /// The deadline, relative to the call's start. Sent as `grpc-timeout` and enforced here
    /// too, so a server that ignores it still yields DEADLINE_EXCEEDED on time.
    pub timeout: Option<Duration>,
    /// Custom metadata sent with the request headers.
    pub metadata: MetadataMap,
    /// Wait for a connection (through reconnect back-off) instead of failing fast with
    /// UNAVAILABLE.
    pub wait_for_ready: bool,
    /// How to compress the request messages; `None` uses the channel's default
    /// ([`ChannelBuilder::compression`](crate::ChannelBuilder::compression)), and
    /// `Some(Identity)` turns it off for this call.
    pub compression: Option<CompressionEncoding>,
    /// Call credentials for this call alone (grpcio's `credentials=`), sent after the
    /// channel's own; see [`CallCredentials`].
    pub credentials: Option<CallCredentials>,
    /// The first metadata error from the builder methods; reported when the call is made.
    invalid: Option<String>,
    /// `wait_for_ready` was set through a builder method: a service config's `waitForReady`
    /// then does not override it.
    wait_for_ready_set: bool,
}

impl CallOptions {
    /// Default options: no deadline, no metadata, fail fast.
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    /// Sets the deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Adds an ASCII metadata entry. An invalid key or value makes the call fail with
    /// INTERNAL when it is made (as grpcio raises at call time); use
    /// [`metadata_mut`](Self::metadata_mut) to check at once.
    pub fn metadata(mut self, key: &str, value: &str) -> Self {
        self.add(key, |m| m.insert(key, value));
        self
    }

    fn add(
        &mut self,
        key: &str,
        f: impl FnOnce(&mut MetadataMap) -> Result<(), crate::metadata::InvalidMetadata>,
    ) {
        if let Err(e) = f(&mut self.metadata) {
            if self.invalid.is_none() {
                self.invalid = Some(format!("invalid metadata {key:?}: {e}"));
            }
        }
    }

    /// The first invalid metadata entry added through the builder methods, if any.
    pub(crate) fn check(&self) -> Result<(), crate::Status> {
        match &self.invalid {
            Some(e) => Err(crate::Status::internal(e.clone())),
            None => Ok(()),
        }
    }

    /// The metadata map, to add binary (`-bin`) entries or check errors.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.metadata
    }

    /// Sets `wait_for_ready` (overriding a service config's `waitForReady`).
    pub fn wait_for_ready(mut self, on: bool) -> Self {
        self.wait_for_ready = on;
        self.wait_for_ready_set = true;
        self
    }

    /// Whether the caller chose `wait_for_ready`: through the builder methods, or by setting
    /// the public field to `true` (a field set to `false` by hand cannot be told apart from
    /// the default).
    pub(crate) fn wait_for_ready_explicit(&self) -> bool {
        self.wait_for_ready_set || self.wait_for_ready
    }

    /// Compresses this call's request messages with `encoding` (grpcio's per-call
    /// `compression=`); `Identity` sends them uncompressed whatever the channel's default.
    pub fn compression(mut self, encoding: CompressionEncoding) -> Self {
        self.compression = Some(encoding);
        self
    }

    /// Sends `credentials`' metadata with this call (grpcio's per-call `credentials=`), after
    /// the channel's call credentials if it has some. Like those, they need a TLS or local
    /// channel: on another the call fails with UNAUTHENTICATED and nothing is sent.
    ///
    /// ```
    /// use grpc_sync::{CallCredentials, CallOptions};
    /// let opts = CallOptions::new().credentials(CallCredentials::access_token("tok"));
    /// assert!(opts.credentials.is_some());
    /// ```
    pub fn credentials(mut self, credentials: CallCredentials) -> Self {
        self.credentials = Some(credentials);
        self
    }
}

/// A request message (or request iterator) with its call options.
///
/// ```
/// use grpc_sync::Request;
/// use std::time::Duration;
/// let req = Request::new("payload")
///     .with_timeout(Duration::from_secs(2))
///     .with_metadata("ip", "127.0.0.1");
/// assert_eq!(req.options().metadata.get("ip"), Some("127.0.0.1"));
/// ```
#[derive(Clone, Debug)]
pub struct Request<T> {
    message: T,
    options: CallOptions,
}

impl<T> Request<T> {
    /// Wraps a message with default options.
    pub fn new(message: T) -> Request<T> {
        Request {
            message,
            options: CallOptions::default(),
        }
    }

    /// Wraps a message with the given options.
    pub fn with_options(message: T, options: CallOptions) -> Request<T> {
        Request { message, options }
    }

    /// Sets the call's deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// Adds an ASCII metadata entry. An invalid key or value makes the call fail with
    /// INTERNAL when it is made; see [`metadata_mut`](Self::metadata_mut) to check at once.
    pub fn with_metadata(mut self, key: &str, value: &str) -> Self {
        self.options.add(key, |m| m.append(key, value));
        self
    }

    /// Adds a binary metadata entry (`key` must end in `-bin`).
    pub fn with_metadata_bin(mut self, key: &str, value: impl Into<bytes::Bytes>) -> Self {
        self.options.add(key, |m| m.append_bin(key, value));
        self
    }

    /// Sets `wait_for_ready` (overriding a service config's `waitForReady`).
    pub fn wait_for_ready(mut self, on: bool) -> Self {
        self.options = self.options.wait_for_ready(on);
        self
    }

    /// Compresses the request message(s) with `encoding`; see [`CallOptions::compression`].
    pub fn with_compression(mut self, encoding: CompressionEncoding) -> Self {
        self.options.compression = Some(encoding);
        self
    }

    /// Sends `credentials`' metadata with this call; see [`CallOptions::credentials`].
    pub fn with_credentials(mut self, credentials: CallCredentials) -> Self {
        self.options.credentials = Some(credentials);
        self
    }

    /// The request metadata.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.options.metadata
    }

    /// The call options.
    pub fn options(&self) -> &CallOptions {
        &self.options
    }

    /// The message.
    pub fn get_ref(&self) -> &T {
        &self.message
    }

    /// The message, by value.
    pub fn into_inner(self) -> T {
        self.message
    }

    /// Message and options.
    pub fn into_parts(self) -> (T, CallOptions) {
        (self.message, self.options)
    }
}

/// Anything that can be a unary or server-streaming request: the message itself, or a
/// [`Request`] carrying options.
pub trait IntoRequest<T> {
    /// Wraps into a [`Request`].
    fn into_request(self) -> Request<T>;
}

impl<T> IntoRequest<T> for T {
    fn into_request(self) -> Request<T> {
        Request::new(self)
    }
}

impl<T> IntoRequest<T> for Request<T> {
    fn into_request(self) -> Request<T> {
        self
    }
}

/// Anything that can be a client-streaming or bidi request: any `IntoIterator` of messages
/// that can move to another thread, or a [`Request`] wrapping such an iterator.
pub trait IntoStreamingRequest {
    /// The message type.
    type Message;
    /// The iterator drained by the call's sender thread.
    type Iter: Iterator<Item = Self::Message> + Send + 'static;
    /// Wraps into a [`Request`].
    fn into_streaming_request(self) -> Request<Self::Iter>;
}

impl<I> IntoStreamingRequest for I
where
    I: IntoIterator,
    I::IntoIter: Send + 'static,
{
    type Message = I::Item;
    type Iter = I::IntoIter;
    fn into_streaming_request(self) -> Request<I::IntoIter> {
        Request::new(self.into_iter())
    }
}

impl<I> IntoStreamingRequest for Request<I>
where
    I: Iterator + Send + 'static,
{
    type Message = I::Item;
    type Iter = I;
    fn into_streaming_request(self) -> Request<I> {
        self
    }
}

/// A response message with the call's initial and trailing metadata (grpcio's `with_call`).
#[derive(Clone, Debug)]
pub struct Response<T> {
    message: T,
    initial_metadata: MetadataMap,
    trailing_metadata: MetadataMap,
    compressed: bool,
}

impl<T> Response<T> {
    pub(crate) fn new(message: T, initial: MetadataMap, trailing: MetadataMap) -> Response<T> {
        Response {
            message,
            initial_metadata: initial,
            trailing_metadata: trailing,
            compressed: false,
        }
    }

    pub(crate) fn with_compressed(mut self, compressed: bool) -> Response<T> {
        self.compressed = compressed;
        self
    }

    /// Converts the message, keeping the metadata and the compressed flag.
    pub(crate) fn try_map<U>(
        self,
        f: impl FnOnce(T) -> Result<U, crate::Status>,
    ) -> Result<Response<U>, crate::Status> {
        Ok(Response {
            message: f(self.message)?,
            initial_metadata: self.initial_metadata,
            trailing_metadata: self.trailing_metadata,
            compressed: self.compressed,
        })
    }

    /// Whether the response message arrived compressed (its compressed flag set).
    pub fn message_compressed(&self) -> bool {
        self.compressed
    }

    /// The message.
    pub fn get_ref(&self) -> &T {
        &self.message
    }

    /// The message, by value.
    pub fn into_inner(self) -> T {
        self.message
    }

    /// The server's initial metadata (response headers).
    pub fn initial_metadata(&self) -> &MetadataMap {
        &self.initial_metadata
    }

    /// The server's trailing metadata (trailers), without `grpc-status` and `grpc-message`.
    pub fn trailing_metadata(&self) -> &MetadataMap {
        &self.trailing_metadata
    }

    /// Message and both metadata maps.
    pub fn into_parts(self) -> (T, MetadataMap, MetadataMap) {
        (self.message, self.initial_metadata, self.trailing_metadata)
    }
}
