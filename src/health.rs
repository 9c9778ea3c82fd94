//! gRPC health checking: the standard `grpc.health.v1.Health` service, and a client for it.
//!
//! What load balancers, Kubernetes gRPC probes, `grpc_health_probe` and grpcio's
//! `grpcio-health-checking` expect a server to offer (the protocol:
//! <https://github.com/grpc/grpc/blob/master/doc/health-checking.md>; the messages:
//! `proto/grpc/health/v1/health.proto`). Three lines add it to a server:
//!
//! ```no_run
//! use grpc_sync::health::{HealthReporter, ServingStatus};
//! let health = HealthReporter::new();
//! let server = grpc_sync::Server::builder().add_service(health.service()).build();
//! health.set("helloworld.Greeter", ServingStatus::Serving);
//! # drop(server);
//! ```
//!
//! The service is an ordinary one, built on the public API with [`Service::builder`]:
//!
//! - `Check` answers a service's status, or NOT_FOUND for a service nobody set;
//! - `List` answers every status (RESOURCE_EXHAUSTED beyond 100 services, as the proto says);
//! - `Watch` sends the current status at once (SERVICE_UNKNOWN for a service nobody set), then
//!   every change. Watchers hold **no worker**: `Watch` is a detached stream
//!   ([`ServiceBuilder::server_streaming_detached`](crate::ServiceBuilder::server_streaming_detached)),
//!   whose handler stores the call's [`ResponseSink`] and returns; [`HealthReporter::set`]
//!   sends each change to the watchers from the thread that calls it, without blocking. A
//!   watcher whose client does not read (its flow-control window full) is ended with
//!   UNAVAILABLE rather than waited for; the protocol has clients watch again, and they get
//!   the current status at once.
//!
//! [`Server::stop`](crate::Server::stop) turns every status to NOT_SERVING before it sends
//! GOAWAY ([`HealthReporter::enter_graceful_shutdown`]), so watchers hear it; the watches then
//! end with the connections, like every other open stream.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::client::{Channel, IntoRequest};
use crate::server::{ResponseSink, ServerContext, Service, TrySendError};
use crate::status::Status;
use crate::streaming::Streaming;

/// The service's full name, `grpc.health.v1.Health`.
pub const SERVICE_NAME: &str = "grpc.health.v1.Health";
/// Request path of `Check`.
pub const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
/// Request path of `List`.
pub const LIST_PATH: &str = "/grpc.health.v1.Health/List";
/// Request path of `Watch`.
pub const WATCH_PATH: &str = "/grpc.health.v1.Health/Watch";

/// At most this many services in a `List` answer (health.proto: more is RESOURCE_EXHAUSTED).
pub const LIST_LIMIT: usize = 100;

/// `grpc.health.v1.HealthCheckRequest`: which service to check (`""`: the whole server).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct HealthCheckRequest {
    /// The service's full name (`package.Service`), or `""` for the server as a whole.
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `grpc.health.v1.HealthCheckResponse`: a serving status.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct HealthCheckResponse {
    /// A [`ServingStatus`] as its wire value; read it with [`status()`](Self::status).
    #[prost(enumeration = "ServingStatus", tag = "1")]
    pub status: i32,
}

/// `grpc.health.v1.HealthCheckResponse.ServingStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ServingStatus {
    /// The status is not known (also what an unknown wire value reads as).
    Unknown = 0,
    /// The service is serving.
    Serving = 1,
    /// The service is not serving.
    NotServing = 2,
    /// Nobody set a status for this service (`Watch` only; `Check` answers NOT_FOUND).
    ServiceUnknown = 3,
}

impl ServingStatus {
    /// The name in health.proto: `SERVING`, `NOT_SERVING`, …
    pub fn as_str_name(self) -> &'static str {
        match self {
            ServingStatus::Unknown => "UNKNOWN",
            ServingStatus::Serving => "SERVING",
            ServingStatus::NotServing => "NOT_SERVING",
            ServingStatus::ServiceUnknown => "SERVICE_UNKNOWN",
        }
    }
}

impl ServingStatus {
    /// The status named as in health.proto (`SERVING`, …), if it is one.
    pub fn from_str_name(name: &str) -> Option<ServingStatus> {
        match name {
            "UNKNOWN" => Some(ServingStatus::Unknown),
            "SERVING" => Some(ServingStatus::Serving),
            "NOT_SERVING" => Some(ServingStatus::NotServing),
            "SERVICE_UNKNOWN" => Some(ServingStatus::ServiceUnknown),
            _ => None,
        }
    }
}

impl std::fmt::Display for ServingStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str_name())
    }
}

impl HealthCheckResponse {
    /// A response carrying `status`.
    pub fn new(status: ServingStatus) -> HealthCheckResponse {
        HealthCheckResponse {
            status: status as i32,
        }
    }
}

/// `grpc.health.v1.HealthListRequest` (empty).
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct HealthListRequest {}

/// `grpc.health.v1.HealthListResponse`: every service's status.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthListResponse {
    /// Statuses by service name (`""` is the whole server).
    #[prost(map = "string, message", tag = "1")]
    pub statuses: HashMap<String, HealthCheckResponse>,
}

/// The handle that sets what the health service answers: grpcio's `HealthServicer`, tonic's
/// `HealthReporter`. Cheap to clone; clones share the statuses.
///
/// A new reporter says SERVING for `""` (the whole server), as grpc-go's and tonic's do:
/// a server that answers is up. Set each service's status as it becomes ready, and
/// NOT_SERVING when it cannot serve.
#[doc(alias = "HealthServicer")]
#[derive(Clone)]
pub struct HealthReporter {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    statuses: BTreeMap<String, ServingStatus>,
    /// After `enter_graceful_shutdown`: everything NOT_SERVING, and `set` does nothing.
    shutting_down: bool,
    /// Open `Watch` calls by id.
    watchers: HashMap<u64, Watcher>,
    next_id: u64,
}

/// One open `Watch` call.
struct Watcher {
    service: String,
    /// What it was last sent (it is sent only changes).
    last: ServingStatus,
    sink: ResponseSink<HealthCheckResponse>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the map half-changed: keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn status_of(&self, service: &str) -> ServingStatus {
        self.statuses
            .get(service)
            .copied()
            .unwrap_or(ServingStatus::ServiceUnknown)
    }

    /// Sends `service`'s current status to its watchers that have not seen it; returns the
    /// watchers that could not take it, for [`end`] outside the lock.
    fn notify(&mut self, service: &str) -> Vec<(Watcher, TrySendError)> {
        let now = self.status_of(service);
        let mut over = Vec::new();
        let ids: Vec<u64> = self
            .watchers
            .iter()
            .filter(|(_, w)| w.service == service && w.last != now)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            let Some(w) = self.watchers.get_mut(&id) else {
                continue;
            };
            match w.sink.try_send(&HealthCheckResponse::new(now)) {
                Ok(()) => w.last = now,
                Err(e) => {
                    if let Some(w) = self.watchers.remove(&id) {
                        over.push((w, e));
                    }
                }
            }
        }
        over
    }
}

/// Ends the watches that could not take an update. Called without the reporter's lock:
/// ending a call runs its callbacks, and the watchers' callback takes that lock.
fn end(over: Vec<(Watcher, TrySendError)>) {
    for (w, e) in over {
        if let TrySendError::Full = e {
            // The client is not reading: end the watch rather than wait for it
            // (health-checking.md has clients watch again, and they get the status at once).
            w.sink.finish(Status::unavailable(
                "the health watcher is not reading its updates; watch again",
            ));
        }
    }
}

impl Default for HealthReporter {
    fn default() -> Self {
        HealthReporter::new()
    }
}

impl HealthReporter {
    /// A reporter that says SERVING for the whole server (`""`) and knows no other service.
    pub fn new() -> HealthReporter {
        let reporter = HealthReporter {
            shared: Arc::new(Shared::default()),
        };
        reporter.set("", ServingStatus::Serving);
        reporter
    }

    /// Sets `service`'s status (`""`: the whole server) and tells its watchers if it
    /// changed (grpcio's `HealthServicer.set`). Ignored after
    /// [`enter_graceful_shutdown`](Self::enter_graceful_shutdown). Never blocks on a client.
    pub fn set(&self, service: &str, status: ServingStatus) {
        let over = {
            let mut st = self.shared.lock();
            if st.shutting_down {
                return;
            }
            st.statuses.insert(service.to_string(), status);
            st.notify(service)
        };
        end(over);
    }

    /// Forgets `service`: `Check` answers NOT_FOUND again, and its watchers hear
    /// SERVICE_UNKNOWN. Ignored after [`enter_graceful_shutdown`](Self::enter_graceful_shutdown).
    pub fn clear(&self, service: &str) {
        let over = {
            let mut st = self.shared.lock();
            if st.shutting_down {
                return;
            }
            st.statuses.remove(service);
            st.notify(service)
        };
        end(over);
    }

    /// `service`'s status, `None` if nobody set it.
    pub fn get(&self, service: &str) -> Option<ServingStatus> {
        self.shared.lock().statuses.get(service).copied()
    }

    /// Turns every status to NOT_SERVING for good: later [`set`](Self::set)s are ignored
    /// (grpcio's `enter_graceful_shutdown`). [`Server::stop`](crate::Server::stop) calls it
    /// for a server that serves this reporter's service, before the GOAWAY.
    pub fn enter_graceful_shutdown(&self) {
        let over = {
            let mut st = self.shared.lock();
            if st.shutting_down {
                return;
            }
            st.shutting_down = true;
            let names: Vec<String> = st.statuses.keys().cloned().collect();
            let mut over = Vec::new();
            for name in names {
                st.statuses.insert(name.clone(), ServingStatus::NotServing);
                over.extend(st.notify(&name));
            }
            over
        };
        end(over);
    }

    /// Open `Watch` calls (each holds a stream, not a worker).
    pub fn watchers(&self) -> usize {
        self.shared.lock().watchers.len()
    }

    /// The `grpc.health.v1.Health` service answering from this reporter, for
    /// [`ServerBuilder::add_service`](crate::ServerBuilder::add_service). The server that
    /// serves it calls [`enter_graceful_shutdown`](Self::enter_graceful_shutdown) when it
    /// stops.
    pub fn service(&self) -> Service {
        let (check, list, watch, stop) = (
            self.clone(),
            self.clone(),
            self.clone(),
            Arc::downgrade(&self.shared),
        );
        Service::builder(SERVICE_NAME)
            .unary(
                "Check",
                move |req: HealthCheckRequest, _: &ServerContext| check.check(&req.service),
            )
            .unary("List", move |_: HealthListRequest, _: &ServerContext| {
                list.list()
            })
            .server_streaming_detached(
                "Watch",
                move |req: HealthCheckRequest, sink: ResponseSink<HealthCheckResponse>| {
                    watch.watch(req.service, sink)
                },
            )
            .on_server_stop(move || {
                if let Some(shared) = stop.upgrade() {
                    HealthReporter { shared }.enter_graceful_shutdown();
                }
            })
            .build()
    }

    fn check(&self, service: &str) -> Result<HealthCheckResponse, Status> {
        match self.get(service) {
            Some(status) => Ok(HealthCheckResponse::new(status)),
            None => Err(Status::not_found(format!("unknown service {service:?}"))),
        }
    }

    fn list(&self) -> Result<HealthListResponse, Status> {
        let st = self.shared.lock();
        if st.statuses.len() > LIST_LIMIT {
            return Err(Status::resource_exhausted(format!(
                "{} services, more than the {LIST_LIMIT} a List may answer",
                st.statuses.len()
            )));
        }
        let statuses = st
            .statuses
            .iter()
            .map(|(name, &s)| (name.clone(), HealthCheckResponse::new(s)))
            .collect();
        Ok(HealthListResponse { statuses })
    }

    /// Sends the current status and keeps the call among the watchers, until it ends.
    fn watch(&self, service: String, mut sink: ResponseSink<HealthCheckResponse>) {
        let mut st = self.shared.lock();
        let now = st.status_of(&service);
        if let Err(e) = sink.try_send(&HealthCheckResponse::new(now)) {
            drop(st);
            if let TrySendError::Full = e {
                sink.finish(Status::unavailable("the client is not reading"));
            }
            return;
        }
        let id = st.next_id;
        st.next_id += 1;
        // Forget the watcher when its call ends (cancelled, deadline, connection lost). The
        // callback waits for this lock, so it finds the watcher inserted below.
        let shared: Weak<Shared> = Arc::downgrade(&self.shared);
        let registered = sink.context().add_callback(move || {
            if let Some(shared) = shared.upgrade() {
                let gone = shared.lock().watchers.remove(&id);
                drop(gone);
            }
        });
        if !registered {
            // Already over: let the sink go outside the lock.
            drop(st);
            return;
        }
        st.watchers.insert(
            id,
            Watcher {
                service,
                last: now,
                sink,
            },
        );
    }
}

impl std::fmt::Debug for HealthReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("HealthReporter")
            .field("statuses", &st.statuses)
            .field("watchers", &st.watchers.len())
            .field("shutting_down", &st.shutting_down)
            .finish()
    }
}

/// A blocking client for `grpc.health.v1.Health`. Cloning is cheap: clones share the channel.
///
/// ```no_run
/// use grpc_sync::health::{HealthClient, HealthCheckRequest, ServingStatus};
/// let client = HealthClient::new(grpc_sync::Channel::insecure("localhost:50051")?);
/// let reply = client.check(HealthCheckRequest { service: String::new() })?;
/// assert_eq!(reply.status(), ServingStatus::Serving);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct HealthClient {
    channel: Channel,
}

impl HealthClient {
    /// A client that sends its calls over `channel`.
    pub fn new(channel: Channel) -> HealthClient {
        HealthClient { channel }
    }

    /// `Check`: the service's status.
    ///
    /// # Errors
    /// NOT_FOUND for a service the server does not know; the call's own errors.
    pub fn check(
        &self,
        request: impl IntoRequest<HealthCheckRequest>,
    ) -> Result<HealthCheckResponse, Status> {
        self.channel
            .unary(CHECK_PATH, request.into_request())
            .map(crate::Response::into_inner)
    }

    /// `List`: every service's status.
    ///
    /// # Errors
    /// UNIMPLEMENTED from servers older than the method; the call's own errors.
    pub fn list(
        &self,
        request: impl IntoRequest<HealthListRequest>,
    ) -> Result<HealthListResponse, Status> {
        self.channel
            .unary(LIST_PATH, request.into_request())
            .map(crate::Response::into_inner)
    }

    /// `Watch`: the current status, then every change, as an iterator.
    ///
    /// # Errors
    /// The call's errors; those after it started come through the iterator.
    pub fn watch(
        &self,
        request: impl IntoRequest<HealthCheckRequest>,
    ) -> Result<Streaming<HealthCheckResponse>, Status> {
        self.channel
            .server_streaming(WATCH_PATH, request.into_request())
    }
}
