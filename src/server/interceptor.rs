//! Server interceptors: code that runs around every RPC a server serves, whatever its service
//! and kind, without touching the handlers (grpcio's `grpc.ServerInterceptor`, tonic's
//! `Interceptor`, grpc-go's unary and stream interceptors).
//!
//! An interceptor is registered on the builder with
//! [`ServerBuilder::intercept`](crate::server::ServerBuilder::intercept); several run in
//! registration order. Before the handler, [`ServerInterceptor::intercept`] sees the call
//! ([`CallStart`]: method, request metadata, peer, TLS identity) and may reject it with a
//! [`Status`], add response metadata, or leave typed values in the call's [`Extensions`] for
//! the handler ([`ServerContext::extensions`]). When the call ends, however it ends,
//! [`ServerInterceptor::on_end`] hears how ([`CallEnd`]: status, messages each way,
//! duration).
//!
//! ```
//! use grpc_sync::server::{CallEnd, CallStart, ServerInterceptor};
//! use grpc_sync::{Server, Status};
//!
//! /// Who made the call, for handlers: `ctx.extensions().get::<User>()`.
//! struct User(String);
//!
//! struct Auth;
//!
//! impl ServerInterceptor for Auth {
//!     fn intercept(&self, call: &mut CallStart<'_>) -> Result<(), Status> {
//!         match call.metadata().get("authorization") {
//!             Some("Bearer secret-token") => {
//!                 call.extensions_mut().insert(User("alice".into()));
//!                 Ok(())
//!             }
//!             _ => Err(Status::unauthenticated("a valid bearer token is required")),
//!         }
//!     }
//!
//!     fn on_end(&self, end: &CallEnd<'_>) {
//!         println!("{} {:?} in {:?}", end.method(), end.status().code(), end.duration());
//!     }
//! }
//!
//! let server = Server::builder().intercept(Auth).build();
//! # drop(server);
//! ```
//!
//! Where they run: on the thread that runs the handler (a pool worker, or an I/O thread for
//! a quick unary handler, which hands its I/O loop to another thread if the interceptor
//! blocks, exactly as for a slow handler), never on an I/O loop's own time. A rejected call
//! holds its worker only while the interceptors run. A server without interceptors pays
//! nothing for them: no allocation and no lock per call.

use crate::status::panic_message;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::h2::conn::IdHasher;
use crate::metadata::MetadataMap;
use crate::server::context::ServerContext;
use crate::status::Status;
use crate::transport::tls::{AuthContext, PeerIdentity};

/// Code that runs around every RPC of a server: before its handler, and once when it ends.
///
/// Both methods have defaults (accept, and ignore the end), so an interceptor implements only
/// what it needs. A closure `Fn(&mut CallStart<'_>) -> Result<(), Status>` is an interceptor
/// with only the first:
///
/// ```
/// use grpc_sync::server::CallStart;
/// use grpc_sync::{Server, Status};
///
/// let server = Server::builder()
///     .intercept(|call: &mut CallStart<'_>| {
///         if call.metadata().contains_key("x-api-key") {
///             Ok(())
///         } else {
///             Err(Status::unauthenticated("x-api-key is missing"))
///         }
///     })
///     .build();
/// # drop(server);
/// ```
///
/// Interceptors are shared by every call (hence `Send + Sync`); per-call state goes into the
/// call's [`Extensions`], which [`CallEnd::extensions`] shows again at the end. A panic in
/// either method is caught: in [`intercept`](Self::intercept) it rejects the call with
/// `UNKNOWN`, in [`on_end`](Self::on_end) it is ignored.
pub trait ServerInterceptor: Send + Sync + 'static {
    /// Runs before the handler, in registration order. `Err(status)` rejects the call: the
    /// client gets `status` (with any metadata added through `call`), the handler never runs,
    /// and the interceptors registered after this one do not run either.
    ///
    /// It runs once the handler could start: for unary and server-streaming methods, once the
    /// whole request message has arrived; for the others, at the request head.
    ///
    /// # Errors
    /// The status that rejects the call, such as `UNAUTHENTICATED` or `PERMISSION_DENIED`.
    fn intercept(&self, call: &mut CallStart<'_>) -> Result<(), Status> {
        let _ = call;
        Ok(())
    }

    /// Runs exactly once when the call ends, for every interceptor whose
    /// [`intercept`](Self::intercept) ran (including one that rejected the call), in reverse
    /// registration order: after the handler returned (or panicked) and the status was sent,
    /// or when a call cut short (deadline, client cancel, lost connection) releases its
    /// handler.
    ///
    /// It runs on the thread that ran the handler, except for detached streams
    /// ([`ServiceBuilder::server_streaming_detached`](crate::server::ServiceBuilder::server_streaming_detached),
    /// such as health `Watch`), where it runs wherever the stream's sink is dropped: keep it
    /// quick (log, count), and hand anything slow to another thread.
    fn on_end(&self, end: &CallEnd<'_>) {
        let _ = end;
    }
}

impl<F> ServerInterceptor for F
where
    F: Fn(&mut CallStart<'_>) -> Result<(), Status> + Send + Sync + 'static,
{
    fn intercept(&self, call: &mut CallStart<'_>) -> Result<(), Status> {
        self(call)
    }
}

/// The four kinds of RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MethodKind {
    /// One request, one response.
    Unary,
    /// A stream of requests, one response.
    ClientStreaming,
    /// One request, a stream of responses.
    ServerStreaming,
    /// Streams both ways.
    BidiStreaming,
}

impl MethodKind {
    /// Whether the client sends a stream of requests.
    pub fn client_streams(self) -> bool {
        matches!(
            self,
            MethodKind::ClientStreaming | MethodKind::BidiStreaming
        )
    }

    /// Whether the server sends a stream of responses.
    pub fn server_streams(self) -> bool {
        matches!(
            self,
            MethodKind::ServerStreaming | MethodKind::BidiStreaming
        )
    }
}

/// A call about to reach its handler, as [`ServerInterceptor::intercept`] sees it: what the
/// client sent, and what the interceptor may add to the call.
pub struct CallStart<'a> {
    ctx: &'a mut ServerContext,
    kind: MethodKind,
}

impl CallStart<'_> {
    /// The full method path, `/package.Service/Method`.
    pub fn method(&self) -> &str {
        self.ctx.method()
    }

    /// The kind of RPC.
    pub fn kind(&self) -> MethodKind {
        self.kind
    }

    /// The client's metadata (`authorization`, `x-…`, `…-bin`).
    pub fn metadata(&self) -> &MetadataMap {
        self.ctx.metadata()
    }

    /// The client's address, as gRPC prints it: `ipv4:127.0.0.1:53412`.
    pub fn peer(&self) -> &str {
        self.ctx.peer()
    }

    /// What TLS established about the client; `None` on an insecure port.
    pub fn auth_context(&self) -> Option<&AuthContext> {
        self.ctx.auth_context()
    }

    /// The client's verified certificate identity (mutual TLS), if any.
    pub fn peer_identity(&self) -> Option<&PeerIdentity> {
        self.ctx.peer_identity()
    }

    /// When the client's deadline passes, if it set one.
    pub fn deadline(&self) -> Option<Instant> {
        self.ctx.deadline()
    }

    /// The call's context, for anything else it offers.
    pub fn context(&self) -> &ServerContext {
        self.ctx
    }

    /// The call's typed values, as far as earlier interceptors filled them.
    pub fn extensions(&self) -> &Extensions {
        &self.ctx.extensions
    }

    /// The call's typed values: what is inserted here, the handler reads with
    /// [`ServerContext::extensions`] and [`on_end`](ServerInterceptor::on_end) with
    /// [`CallEnd::extensions`].
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.ctx.extensions
    }

    /// Response metadata sent with the response head, before what the handler sends with
    /// [`ServerContext::send_initial_metadata`]. Reaches the client on a rejection too (in
    /// its trailers-only response).
    pub fn initial_metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.ctx.added_initial
    }

    /// Response metadata sent with the status at the end of the call, after what the handler
    /// sets with [`ServerContext::set_trailing_metadata`] (or the status's own metadata).
    /// Reaches the client on a rejection too.
    pub fn trailing_metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.ctx.added_trailing
    }
}

impl std::fmt::Debug for CallStart<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallStart")
            .field("method", &self.method())
            .field("kind", &self.kind)
            .field("peer", &self.peer())
            .finish_non_exhaustive()
    }
}

/// How a call ended, as [`ServerInterceptor::on_end`] hears it.
pub struct CallEnd<'a> {
    ctx: &'a ServerContext,
    kind: MethodKind,
    status: &'a Status,
    received: u64,
    sent: u64,
    duration: Duration,
}

impl CallEnd<'_> {
    /// The full method path, `/package.Service/Method`.
    pub fn method(&self) -> &str {
        self.ctx.method()
    }

    /// The kind of RPC.
    pub fn kind(&self) -> MethodKind {
        self.kind
    }

    /// The client's address.
    pub fn peer(&self) -> &str {
        self.ctx.peer()
    }

    /// The client's metadata.
    pub fn metadata(&self) -> &MetadataMap {
        self.ctx.metadata()
    }

    /// The call's context (its TLS identity, deadline…).
    pub fn context(&self) -> &ServerContext {
        self.ctx
    }

    /// The call's typed values, as the interceptors left them.
    pub fn extensions(&self) -> &Extensions {
        self.ctx.extensions()
    }

    /// The call's final status: the one the server sent (the handler's, an interceptor's
    /// rejection, `UNKNOWN` for a handler panic), or why the call was cut short
    /// (`DEADLINE_EXCEEDED`, `CANCELLED` when the client reset the stream, `UNAVAILABLE` when
    /// its connection was lost).
    ///
    /// gRPC clients reset the stream when their deadline passes, at about the time the
    /// server's own copy of the deadline passes: a reset that comes within 50 ms of the
    /// deadline counts as `DEADLINE_EXCEEDED`, as the client reports it.
    pub fn status(&self) -> &Status {
        self.status
    }

    /// Request messages the handler received (1 for a unary or server-streaming call that
    /// reached its interceptors).
    pub fn messages_received(&self) -> u64 {
        self.received
    }

    /// Response messages handed to the connection.
    pub fn messages_sent(&self) -> u64 {
        self.sent
    }

    /// How long the call took on the server: from when it was handed over to run (the
    /// request head for client-streaming and bidi calls, the whole request message for the
    /// others), including any wait for a worker, to its end.
    pub fn duration(&self) -> Duration {
        self.duration
    }
}

impl std::fmt::Debug for CallEnd<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallEnd")
            .field("method", &self.method())
            .field("kind", &self.kind)
            .field("status", &self.status)
            .field("received", &self.received)
            .field("sent", &self.sent)
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

/// A server's interceptors, in registration order.
pub(crate) type Interceptors = Arc<[Arc<dyn ServerInterceptor>]>;

/// What a call's end hooks need from its start: which interceptors ran, and when.
pub(crate) struct Ending {
    interceptors: Interceptors,
    ran: usize,
    kind: MethodKind,
    started: Instant,
}

/// Runs `interceptors` on a call in order until one rejects it. Returns what the end hooks
/// need, and the rejection if any. A panicking interceptor rejects the call with `UNKNOWN`
/// (`panicked` is then true, for the pool's statistics).
pub(crate) fn start(
    interceptors: &Interceptors,
    ctx: &mut ServerContext,
    kind: MethodKind,
    started: Instant,
) -> (Ending, Option<Status>, bool) {
    let mut ending = Ending {
        interceptors: interceptors.clone(),
        ran: 0,
        kind,
        started,
    };
    for i in interceptors.iter() {
        ending.ran += 1;
        let mut call = CallStart {
            ctx: &mut *ctx,
            kind,
        };
        match catch_unwind(AssertUnwindSafe(|| i.intercept(&mut call))) {
            Ok(Ok(())) => {}
            Ok(Err(status)) => return (ending, Some(status), false),
            Err(panic) => {
                let what = panic_message(&*panic);
                crate::logging::log_limited!(
                    crate::logging::HANDLER_PANIC,
                    "grpc-sync: an interceptor of {} panicked: {what} (the client got UNKNOWN)",
                    call.ctx.method()
                );
                let status = Status::unknown(format!("Exception in an interceptor: {what}"));
                return (ending, Some(status), true);
            }
        }
    }
    (ending, None, false)
}

impl Ending {
    /// Tells the interceptors that ran how the call ended, in reverse order. `sent_status` is
    /// what [`ServerContext::finish`] returned (the status the server sent, if it did);
    /// otherwise the call was cut short and its stream says why.
    pub(crate) fn run(self, ctx: &ServerContext, sent_status: Option<Status>, sent: u64) {
        let status = sent_status.unwrap_or_else(|| ctx.cut_short_status());
        let end = CallEnd {
            ctx,
            kind: self.kind,
            status: &status,
            received: ctx.messages_received(),
            sent,
            duration: self.started.elapsed(),
        };
        for i in self.interceptors[..self.ran].iter().rev() {
            let _ = catch_unwind(AssertUnwindSafe(|| i.on_end(&end)));
        }
    }
}

type AnyMap = HashMap<TypeId, Box<dyn Any + Send + Sync>, BuildHasherDefault<IdHasher>>;

/// Typed values attached to a call, one per type (a type map, like `http::Extensions`):
/// interceptors put them in, handlers read them back.
///
/// ```
/// use grpc_sync::server::Extensions;
///
/// #[derive(Debug, PartialEq)]
/// struct User(&'static str);
///
/// let mut ext = Extensions::new();
/// assert!(ext.insert(User("alice")).is_none());
/// assert_eq!(ext.get::<User>(), Some(&User("alice")));
/// assert_eq!(ext.insert(User("bob")), Some(User("alice")));
/// assert_eq!(ext.remove::<User>(), Some(User("bob")));
/// assert!(ext.is_empty());
/// ```
#[derive(Default)]
pub struct Extensions {
    /// Boxed and made on first insert: a call nobody attaches anything to costs a null
    /// pointer.
    map: Option<Box<AnyMap>>,
}

impl Extensions {
    /// An empty map (allocates nothing).
    pub const fn new() -> Extensions {
        Extensions { map: None }
    }

    /// Stores `value`, returning the value of the same type it replaces.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) -> Option<T> {
        self.map
            .get_or_insert_with(Box::default)
            .insert(TypeId::of::<T>(), Box::new(value))
            .and_then(|old| old.downcast().ok().map(|b: Box<T>| *b))
    }

    /// The value of type `T`, if one was inserted.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.map
            .as_ref()?
            .get(&TypeId::of::<T>())
            .and_then(|b| b.downcast_ref())
    }

    /// The value of type `T`, mutably.
    pub fn get_mut<T: Send + Sync + 'static>(&mut self) -> Option<&mut T> {
        self.map
            .as_mut()?
            .get_mut(&TypeId::of::<T>())
            .and_then(|b| b.downcast_mut())
    }

    /// Removes and returns the value of type `T`.
    pub fn remove<T: Send + Sync + 'static>(&mut self) -> Option<T> {
        self.map
            .as_mut()?
            .remove(&TypeId::of::<T>())
            .and_then(|b| b.downcast().ok().map(|b: Box<T>| *b))
    }

    /// Whether a value of type `T` is there.
    pub fn contains<T: Send + Sync + 'static>(&self) -> bool {
        self.map
            .as_ref()
            .is_some_and(|m| m.contains_key(&TypeId::of::<T>()))
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }

    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        if let Some(m) = &mut self.map {
            m.clear();
        }
    }
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_keep_one_value_per_type() {
        let mut ext = Extensions::new();
        assert!(ext.is_empty() && ext.get::<u32>().is_none() && ext.remove::<u32>().is_none());
        ext.insert(7u32);
        ext.insert("seven");
        ext.insert(String::from("VII"));
        assert_eq!(ext.len(), 3);
        assert_eq!(ext.get::<u32>(), Some(&7));
        assert_eq!(ext.get::<&str>(), Some(&"seven"));
        *ext.get_mut::<u32>().unwrap() += 1;
        assert_eq!(ext.insert(9u32), Some(8));
        assert!(ext.contains::<String>() && !ext.contains::<u64>());
        assert_eq!(ext.remove::<String>().as_deref(), Some("VII"));
        ext.clear();
        assert!(ext.is_empty());
    }

    #[test]
    fn method_kinds_say_which_side_streams() {
        assert!(!MethodKind::Unary.client_streams() && !MethodKind::Unary.server_streams());
        assert!(MethodKind::ClientStreaming.client_streams());
        assert!(MethodKind::ServerStreaming.server_streams());
        let bidi = MethodKind::BidiStreaming;
        assert!(bidi.client_streams() && bidi.server_streams());
    }
}
