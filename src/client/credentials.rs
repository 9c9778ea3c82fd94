//! Call credentials: metadata (usually `authorization`) computed for every call and sent with
//! its request headers; grpcio's `metadata_call_credentials`, `access_token_call_credentials`,
//! `composite_call_credentials` and `composite_channel_credentials`.
//!
//! ```no_run
//! use grpc_sync::{CallCredentials, Channel, ChannelCredentials};
//! let tls = ChannelCredentials::from_ca_pem(&std::fs::read("ca.pem")?)?;
//! // Every call on this channel carries `authorization: Bearer secret-token`.
//! let channel = Channel::secure(
//!     "localhost:50051",
//!     tls.with_call_credentials(CallCredentials::access_token("secret-token")),
//! )?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! As in grpcio, call credentials are only sent over TLS, or over an insecure channel the
//! user marked as local ([`ChannelBuilder::local`](crate::ChannelBuilder::local)); on any
//! other channel the call fails with UNAUTHENTICATED before anything is sent. A plugin that
//! fails or panics fails that call with UNAVAILABLE, and nothing else.
//!
//! Plugins may block (to fetch or refresh a token): on a call with a deadline they run on a
//! small shared pool of helper threads, so that the call fails with DEADLINE_EXCEEDED on time
//! however long the plugin takes. A call without a deadline runs them on its own thread.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::metadata::MetadataMap;
use crate::status::Status;
use crate::transport::tls::ChannelCredentials;

/// What a call credentials plugin is told about the call: grpcio's `AuthMetadataContext`.
///
/// ```
/// use grpc_sync::client::AuthMetadataContext;
/// let ctx = AuthMetadataContext::new("https://example.com/helloworld.Greeter", "SayHello");
/// assert_eq!(ctx.service_url(), "https://example.com/helloworld.Greeter");
/// assert_eq!(ctx.method_name(), "SayHello");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthMetadataContext {
    service_url: String,
    method_name: String,
}

impl AuthMetadataContext {
    /// A context, for tests of plugins.
    pub fn new(service_url: &str, method_name: &str) -> AuthMetadataContext {
        AuthMetadataContext {
            service_url: service_url.to_string(),
            method_name: method_name.to_string(),
        }
    }

    /// The context of a call to `path` (`/package.Service/Method`) on a channel whose
    /// requests go to `authority` over `scheme` (`https`, or `http` on a local channel).
    ///
    /// gRPC's service URL is `scheme://authority/package.Service`, without the port when it
    /// is https's default (443), as audiences of JWT tokens expect.
    pub(crate) fn for_call(scheme: &str, authority: &str, path: &str) -> AuthMetadataContext {
        let host = match scheme {
            "https" => authority.strip_suffix(":443").unwrap_or(authority),
            _ => authority,
        };
        let (service, method) = match path.rfind('/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => ("", path),
        };
        AuthMetadataContext {
            service_url: format!("{scheme}://{host}{service}"),
            method_name: method.to_string(),
        }
    }

    /// `https://host/package.Service` (the port is left out when it is 443).
    pub fn service_url(&self) -> &str {
        &self.service_url
    }

    /// The method's name alone (`SayHello`).
    pub fn method_name(&self) -> &str {
        &self.method_name
    }
}

/// Computes the metadata of a call: grpcio's `AuthMetadataPlugin`.
///
/// It may block (to fetch a token), but the call does not wait past its deadline. An `Err`
/// or a panic fails that call with UNAVAILABLE ("Getting metadata from plugin failed with
/// error: …", as grpcio says); the channel and its other calls go on.
///
/// Closures `Fn(&AuthMetadataContext) -> Result<MetadataMap, Status>` are plugins too (see
/// [`CallCredentials::from_fn`]).
///
/// ```
/// use grpc_sync::client::{AuthMetadataContext, AuthMetadataPlugin};
/// use grpc_sync::{CallCredentials, MetadataMap, Status};
///
/// struct ApiKey(String);
///
/// impl AuthMetadataPlugin for ApiKey {
///     fn get_metadata(&self, _ctx: &AuthMetadataContext) -> Result<MetadataMap, Status> {
///         let mut md = MetadataMap::new();
///         md.insert("x-api-key", &self.0)
///             .map_err(|e| Status::internal(e.to_string()))?;
///         Ok(md)
///     }
/// }
///
/// let creds = CallCredentials::from_plugin(ApiKey("k-123".into()));
/// # drop(creds);
/// ```
pub trait AuthMetadataPlugin: Send + Sync + 'static {
    /// The metadata to add to the call described by `context`.
    ///
    /// # Errors
    /// A status whose message says why no metadata could be had; the call then fails with
    /// UNAVAILABLE and that message.
    fn get_metadata(&self, context: &AuthMetadataContext) -> Result<MetadataMap, Status>;
}

impl<F> AuthMetadataPlugin for F
where
    F: Fn(&AuthMetadataContext) -> Result<MetadataMap, Status> + Send + Sync + 'static,
{
    fn get_metadata(&self, context: &AuthMetadataContext) -> Result<MetadataMap, Status> {
        self(context)
    }
}

/// One source of metadata.
#[derive(Clone)]
enum Source {
    /// Known in advance (an access token): added without a thread or a clock.
    Fixed(MetadataMap),
    /// An access token that is not a valid header value: every call fails, saying so.
    Invalid(String),
    Plugin(Arc<dyn AuthMetadataPlugin>),
}

/// Per-call authentication metadata: grpcio's `CallCredentials`. Cheap to clone.
///
/// Attach it to a channel ([`ChannelCredentials::with_call_credentials`],
/// [`ChannelBuilder::call_credentials`](crate::ChannelBuilder::call_credentials)) or to one
/// call ([`CallOptions::credentials`](crate::CallOptions::credentials),
/// [`Request::with_credentials`](crate::Request::with_credentials), grpcio's
/// `credentials=`); a call with both sends the channel's first, then its own.
///
/// ```
/// use grpc_sync::{CallCredentials, MetadataMap, Request, Status};
/// let token = CallCredentials::access_token("secret-token");
/// let tenant = CallCredentials::from_fn(|_ctx| {
///     let mut md = MetadataMap::new();
///     md.insert("x-tenant", "blue").map_err(|e| Status::internal(e.to_string()))?;
///     Ok(md)
/// });
/// let req = Request::new(()).with_credentials(token.and(tenant));
/// # drop(req);
/// ```
#[derive(Clone)]
pub struct CallCredentials {
    sources: Arc<[Source]>,
}

impl fmt::Debug for CallCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token itself: Debug output ends up in logs.
        let kinds: Vec<&str> = self
            .sources
            .iter()
            .map(|s| match s {
                Source::Fixed(_) | Source::Invalid(_) => "access token",
                Source::Plugin(_) => "plugin",
            })
            .collect();
        f.debug_struct("CallCredentials")
            .field("sources", &kinds)
            .finish()
    }
}

/// The message grpcio gives a call whose plugin failed.
fn plugin_failed(why: &str) -> Status {
    Status::unavailable(format!(
        "Getting metadata from plugin failed with error: {why}"
    ))
}

impl CallCredentials {
    /// Sends `authorization: Bearer <token>` with every call (grpcio's
    /// `access_token_call_credentials`). A token that is not a valid header value (a newline,
    /// a non-ASCII character) fails every call with UNAVAILABLE, naming the problem.
    ///
    /// ```
    /// let creds = grpc_sync::CallCredentials::access_token("secret-token");
    /// assert_eq!(format!("{creds:?}"), r#"CallCredentials { sources: ["access token"] }"#);
    /// ```
    pub fn access_token(token: &str) -> CallCredentials {
        let mut md = MetadataMap::new();
        let source = match md.insert("authorization", &format!("Bearer {token}")) {
            Ok(()) => Source::Fixed(md),
            Err(e) => Source::Invalid(format!("the access token is not a valid header value: {e}")),
        };
        CallCredentials::one(source)
    }

    /// Credentials computed by `f` for each call (grpcio's `metadata_call_credentials` with a
    /// function). See [`AuthMetadataPlugin`] for what `f` may do.
    ///
    /// ```
    /// use grpc_sync::{CallCredentials, MetadataMap, Status};
    /// let creds = CallCredentials::from_fn(|ctx| {
    ///     let mut md = MetadataMap::new();
    ///     md.insert("x-audience", ctx.service_url())
    ///         .map_err(|e| Status::internal(e.to_string()))?;
    ///     Ok(md)
    /// });
    /// # drop(creds);
    /// ```
    pub fn from_fn<F>(f: F) -> CallCredentials
    where
        F: Fn(&AuthMetadataContext) -> Result<MetadataMap, Status> + Send + Sync + 'static,
    {
        CallCredentials::from_plugin(f)
    }

    /// Credentials computed by `plugin` for each call (grpcio's `metadata_call_credentials`).
    pub fn from_plugin(plugin: impl AuthMetadataPlugin) -> CallCredentials {
        CallCredentials::one(Source::Plugin(Arc::new(plugin)))
    }

    /// Both: this one's metadata, then `other`'s (grpcio's `composite_call_credentials`).
    pub fn and(self, other: CallCredentials) -> CallCredentials {
        CallCredentials::composite([self, other])
    }

    /// All of `creds`, in order (grpcio's `composite_call_credentials(*creds)`).
    pub fn composite(creds: impl IntoIterator<Item = CallCredentials>) -> CallCredentials {
        let sources: Vec<Source> = creds
            .into_iter()
            .flat_map(|c| c.sources.iter().cloned().collect::<Vec<_>>())
            .collect();
        CallCredentials {
            sources: sources.into(),
        }
    }

    fn one(source: Source) -> CallCredentials {
        CallCredentials {
            sources: Arc::from([source]),
        }
    }

    /// Adds this call's metadata to `out`, waiting for plugins no later than `deadline`.
    ///
    /// # Errors
    /// UNAVAILABLE if a plugin failed or panicked; DEADLINE_EXCEEDED if it took too long.
    pub(crate) fn apply(
        &self,
        ctx: &AuthMetadataContext,
        deadline: Option<Instant>,
        out: &mut MetadataMap,
    ) -> Result<(), Status> {
        for s in self.sources.iter() {
            match s {
                Source::Fixed(md) => out.merge(md.clone()),
                Source::Invalid(why) => return Err(plugin_failed(why)),
                Source::Plugin(p) => out.merge(run_plugin(p, ctx, deadline)?),
            }
        }
        Ok(())
    }
}

/// Runs a plugin, catching its panics and failures.
fn call_plugin(
    plugin: &dyn AuthMetadataPlugin,
    ctx: &AuthMetadataContext,
) -> Result<MetadataMap, Status> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| plugin.get_metadata(ctx))) {
        Ok(Ok(md)) => Ok(md),
        Ok(Err(s)) => Err(plugin_failed(s.message())),
        Err(panic) => Err(plugin_failed(&format!(
            "the plugin panicked: {}",
            crate::status::panic_message(panic.as_ref())
        ))),
    }
}

/// Runs `plugin` for the call; with a deadline, on a pool thread, waiting only until then.
fn run_plugin(
    plugin: &Arc<dyn AuthMetadataPlugin>,
    ctx: &AuthMetadataContext,
    deadline: Option<Instant>,
) -> Result<MetadataMap, Status> {
    let Some(deadline) = deadline else {
        return call_plugin(plugin.as_ref(), ctx);
    };
    let expired = || {
        Status::deadline_exceeded(
            "Deadline Exceeded while the call credentials plugin was getting the call's metadata",
        )
    };
    if Instant::now() >= deadline {
        return Err(expired());
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    let (p, c) = (plugin.clone(), ctx.clone());
    pool().submit(Box::new(move || {
        let _ = tx.send(call_plugin(p.as_ref(), &c));
    }))?;
    match rx.recv_deadline(deadline) {
        Ok(r) => r,
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(expired()),
        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
            Err(plugin_failed("the plugin's thread ended without an answer"))
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The threads that run plugins for calls with a deadline: made on demand (a call never waits
/// behind another call's slow plugin), each leaving after a while without work.
struct PluginPool {
    tx: Sender<Job>,
    rx: Receiver<Job>,
    /// Threads waiting for a job that no submitted job has claimed yet.
    idle: Arc<AtomicUsize>,
}

/// How long a pool thread waits for work before it exits.
const POOL_IDLE: Duration = Duration::from_secs(30);

fn pool() -> &'static PluginPool {
    static POOL: OnceLock<PluginPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded();
        PluginPool {
            tx,
            rx,
            idle: Arc::new(AtomicUsize::new(0)),
        }
    })
}

/// Takes one idle thread for a job, if there is one.
fn claim(idle: &AtomicUsize) -> bool {
    idle.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok()
}

impl PluginPool {
    fn submit(&self, job: Job) -> Result<(), Status> {
        if !claim(&self.idle) {
            let (rx, idle) = (self.rx.clone(), self.idle.clone());
            std::thread::Builder::new()
                .name("grpc-call-credentials".into())
                .spawn(move || loop {
                    match rx.recv_timeout(POOL_IDLE) {
                        Ok(job) => {
                            job();
                            idle.fetch_add(1, Ordering::AcqRel);
                        }
                        // Leave unless a job was already promised to an idle thread.
                        Err(_) if claim(&idle) => return,
                        Err(_) => {}
                    }
                })
                .map_err(|e| {
                    plugin_failed(&format!("cannot start a thread for the plugin: {e}"))
                })?;
        }
        // The pool holds the receiver: the send cannot fail.
        let _ = self.tx.send(job);
        Ok(())
    }
}

/// TLS channel credentials with call credentials: what grpcio's
/// `composite_channel_credentials(ssl_creds, call_creds)` makes. Made with
/// [`ChannelCredentials::with_call_credentials`]; accepted wherever channel credentials are
/// ([`Channel::secure`](crate::Channel::secure), [`ChannelBuilder::tls`](crate::ChannelBuilder::tls)).
#[derive(Clone, Debug)]
pub struct CompositeChannelCredentials {
    pub(crate) channel: ChannelCredentials,
    pub(crate) call: Option<CallCredentials>,
}

impl CompositeChannelCredentials {
    /// Adds more call credentials, sent after those already here.
    pub fn with_call_credentials(mut self, call: CallCredentials) -> CompositeChannelCredentials {
        self.call = Some(match self.call.take() {
            Some(c) => c.and(call),
            None => call,
        });
        self
    }
}

impl From<ChannelCredentials> for CompositeChannelCredentials {
    fn from(channel: ChannelCredentials) -> Self {
        CompositeChannelCredentials {
            channel,
            call: None,
        }
    }
}

impl ChannelCredentials {
    /// These TLS credentials with `call` credentials on every call of the channel (grpcio's
    /// `composite_channel_credentials`).
    ///
    /// ```no_run
    /// use grpc_sync::{CallCredentials, Channel, ChannelCredentials};
    /// let creds = ChannelCredentials::from_ca_pem(&std::fs::read("ca.pem")?)?
    ///     .with_call_credentials(CallCredentials::access_token("secret-token"));
    /// let channel = Channel::secure("localhost:50051", creds)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_call_credentials(self, call: CallCredentials) -> CompositeChannelCredentials {
        CompositeChannelCredentials::from(self).with_call_credentials(call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Code;

    fn ctx() -> AuthMetadataContext {
        AuthMetadataContext::for_call("https", "example.com:443", "/pkg.Svc/Method")
    }

    #[test]
    fn service_url_drops_the_default_port_and_the_method() {
        let c = ctx();
        assert_eq!(c.service_url(), "https://example.com/pkg.Svc");
        assert_eq!(c.method_name(), "Method");
        let c = AuthMetadataContext::for_call("https", "localhost:8443", "/a.b.C/D");
        assert_eq!(c.service_url(), "https://localhost:8443/a.b.C");
        let c = AuthMetadataContext::for_call("http", "localhost:443", "/a.C/D");
        assert_eq!(c.service_url(), "http://localhost:443/a.C");
    }

    #[test]
    fn access_token_and_composites_add_metadata_in_order() {
        let extra = CallCredentials::from_fn(|c| {
            let mut md = MetadataMap::new();
            md.insert("x-method", c.method_name()).unwrap();
            Ok(md)
        });
        let creds = CallCredentials::composite([CallCredentials::access_token("t"), extra]);
        let mut md = MetadataMap::new();
        creds.apply(&ctx(), None, &mut md).unwrap();
        let keys: Vec<&str> = md.keys().collect();
        assert_eq!(keys, ["authorization", "x-method"]);
        assert_eq!(md.get("authorization"), Some("Bearer t"));
        assert_eq!(md.get("x-method"), Some("Method"));
    }

    #[test]
    fn failing_panicking_and_invalid_credentials_are_unavailable() {
        let fail = CallCredentials::from_fn(|_| Err(Status::internal("no token today")));
        let panic = CallCredentials::from_fn(|_| panic!("plugin bug"));
        let bad = CallCredentials::access_token("line\nbreak");
        for (creds, want) in [
            (fail, "no token today"),
            (panic, "plugin bug"),
            (bad, "not a valid header value"),
        ] {
            for deadline in [None, Some(Instant::now() + Duration::from_secs(10))] {
                let e = creds
                    .apply(&ctx(), deadline, &mut MetadataMap::new())
                    .unwrap_err();
                assert_eq!(e.code(), Code::Unavailable);
                assert!(
                    e.message()
                        .starts_with("Getting metadata from plugin failed with error: "),
                    "{e}"
                );
                assert!(e.message().contains(want), "{e}");
            }
        }
    }

    #[test]
    fn a_plugin_past_the_deadline_is_deadline_exceeded() {
        let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(1);
        let slow = CallCredentials::from_fn(move |_| {
            let _ = release_rx.recv_timeout(Duration::from_secs(10));
            Ok(MetadataMap::new())
        });
        let deadline = Instant::now() + Duration::from_millis(50);
        let e = slow
            .apply(&ctx(), Some(deadline), &mut MetadataMap::new())
            .unwrap_err();
        assert_eq!(e.code(), Code::DeadlineExceeded);
        assert!(Instant::now() >= deadline);
        drop(release_tx);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let c = CallCredentials::access_token("hunter2")
            .and(CallCredentials::from_fn(|_| Ok(MetadataMap::new())));
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("plugin"), "{s}");
    }
}
