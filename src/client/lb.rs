//! Load balancing: which connection a call goes on.
//!
//! - `pick_first` (the default): one connection, to the first address of the resolver's list
//!   that answers; the attempts are staggered by 250 ms (gRFC A61), and the connection is
//!   made on the first caller's thread, as before.
//! - `round_robin`: one subchannel per address, each with its own connection, connectivity
//!   state and back-off, kept by its own keeper thread that connects, reconnects in the
//!   background after a loss, and (with `healthCheckConfig`) watches the server's health.
//!   Calls rotate over the subchannels that are READY (and SERVING).
//!
//! Subchannel states are published under one lock, and the [`AddressBook`]'s change counter
//! wakes callers waiting for a connection: the keepers only write state down, nobody calls
//! back up.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::conn::{usable, ConnectivityState, Connector};
use super::health::HealthWatch;
use super::resolver::AddressBook;
use super::target::Target;
use crate::health::ServingStatus;
use crate::status::{Code, Status};
use crate::transport::driver::{Shared, StreamHandle};

/// A load-balancing policy, by its gRPC name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    PickFirst,
    RoundRobin,
}

impl Policy {
    /// The policy called `name` (`pick_first`, `round_robin`).
    pub fn from_name(name: &str) -> Option<Policy> {
        match name {
            "pick_first" => Some(Policy::PickFirst),
            "round_robin" => Some(Policy::RoundRobin),
            _ => None,
        }
    }
}

/// Settings a `round_robin` channel's subchannels need for their health watch.
pub(crate) struct HealthSettings {
    /// `healthCheckConfig.serviceName`; `None`: no health checking.
    pub service: Option<String>,
    pub authority: Bytes,
    pub secure: bool,
}

/// The channel's balancer.
pub(crate) enum Balancer {
    PickFirst(Connector),
    RoundRobin(RoundRobin),
}

impl Balancer {
    /// A balancer of `policy` over `connector`'s addresses. A target the proxy resolves
    /// (one tunnel) and Unix sockets have one address: pick_first.
    pub fn new(policy: Policy, connector: Connector, health: HealthSettings) -> Balancer {
        let single = connector.tunnels_name() || matches!(connector.target(), Target::Unix(_));
        match policy {
            Policy::RoundRobin if !single => {
                Balancer::RoundRobin(RoundRobin::new(connector, health))
            }
            _ => Balancer::PickFirst(connector),
        }
    }

    pub fn target(&self) -> &Target {
        match self {
            Balancer::PickFirst(c) => c.target(),
            Balancer::RoundRobin(rr) => rr.template.target(),
        }
    }

    /// A connection for a new call: fails fast with UNAVAILABLE when there is none to be had
    /// (unless `wait_for_ready`), else waits until `deadline`.
    pub fn pick(
        &self,
        wait_for_ready: bool,
        deadline: Option<Instant>,
    ) -> Result<Arc<Shared>, Status> {
        match self {
            Balancer::PickFirst(c) => c.get(wait_for_ready, deadline),
            Balancer::RoundRobin(rr) => rr.pick(wait_for_ready, deadline),
        }
    }

    /// The channel's state; with `try_to_connect` an idle channel starts connecting.
    pub fn state(&self, try_to_connect: bool) -> ConnectivityState {
        match self {
            Balancer::PickFirst(c) => c.state(try_to_connect),
            Balancer::RoundRobin(rr) => rr.state(try_to_connect),
        }
    }

    pub fn shutdown(&self) {
        match self {
            Balancer::PickFirst(c) => {
                c.shutdown();
                c.book().shutdown();
            }
            Balancer::RoundRobin(rr) => rr.shutdown(),
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One address of a `round_robin` channel.
struct Sub {
    addr: SocketAddr,
    connector: Connector,
    /// Set when the subchannel is removed or the channel closed; the keeper then exits.
    stopped: Mutex<bool>,
    stop_cv: Condvar,
    /// The running health watch, to cancel it when stopping.
    watch: Mutex<Option<StreamHandle>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sub {
    fn is_stopped(&self) -> bool {
        *lock(&self.stopped)
    }

    fn stop(&self) {
        *lock(&self.stopped) = true;
        self.stop_cv.notify_all();
        if let Some(w) = lock(&self.watch).take() {
            w.reset(crate::h2::error::Reason::CANCEL);
        }
        // Taken before the shutdown, which lets go of it: the keeper may be waiting on it.
        let conn = self.connector.current();
        self.connector.shutdown();
        if let Some(c) = conn {
            let st = c.lock();
            st.conn_cv.notify_all();
        }
    }

    /// Sleeps until `until` or until stopped.
    fn sleep_until(&self, until: Instant) {
        let mut stopped = lock(&self.stopped);
        while !*stopped {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            stopped = self
                .stop_cv
                .wait_timeout(stopped, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// What the balancer knows of one subchannel.
struct Entry {
    sub: Arc<Sub>,
    state: ConnectivityState,
    /// READY and, with health checking, SERVING: may be picked.
    conn: Option<Arc<Shared>>,
    /// With health checking: the last answer was SERVING (or the server has no health
    /// service).
    serving: bool,
    error: Option<String>,
}

struct RrState {
    /// The address book generation the subchannels were made from.
    applied: u64,
    entries: Vec<Entry>,
    /// The connections that may be picked, in subchannel order.
    ready: Vec<Arc<Shared>>,
    shutdown: bool,
}

impl RrState {
    /// Rebuilds the list of connections that may be picked from the entries.
    fn republish(&mut self) {
        self.ready = self
            .entries
            .iter()
            .filter(|e| e.state == ConnectivityState::Ready && e.serving)
            .filter_map(|e| e.conn.clone())
            .collect();
    }
}

/// The shared half of a `round_robin` balancer: what callers read and keepers write.
struct Board {
    state: Mutex<RrState>,
    book: Arc<AddressBook>,
    health: HealthSettings,
}

pub(crate) struct RoundRobin {
    template: Connector,
    board: Arc<Board>,
    next: AtomicUsize,
}

impl Board {
    /// Updates subchannel `sub`'s entry with `f` and republishes the ready list.
    fn update(&self, sub: &Arc<Sub>, f: impl FnOnce(&mut Entry)) {
        let mut st = lock(&self.state);
        if let Some(e) = st.entries.iter_mut().find(|e| Arc::ptr_eq(&e.sub, sub)) {
            f(e);
        }
        st.republish();
        drop(st);
        self.book.bump();
    }
}

impl RoundRobin {
    fn new(template: Connector, health: HealthSettings) -> RoundRobin {
        RoundRobin {
            board: Arc::new(Board {
                state: Mutex::new(RrState {
                    applied: 0,
                    entries: Vec::new(),
                    ready: Vec::new(),
                    shutdown: false,
                }),
                book: template.book().clone(),
                health,
            }),
            template,
            next: AtomicUsize::new(0),
        }
    }

    /// Brings the subchannels in line with the book's addresses: new ones get a keeper,
    /// vanished ones are stopped (their calls in flight finish).
    fn sync(&self, st: &mut RrState) {
        let (generation, addrs) = self.board.book.current();
        let Some(addrs) = addrs else {
            self.board.book.request_resolution();
            return;
        };
        if generation == st.applied || st.shutdown {
            return;
        }
        st.applied = generation;
        let mut old = std::mem::take(&mut st.entries);
        for addr in addrs.iter() {
            if st.entries.iter().any(|e| e.sub.addr == *addr) {
                continue;
            }
            match old.iter().position(|e| e.sub.addr == *addr) {
                Some(i) => st.entries.push(old.swap_remove(i)),
                None => {
                    let sub = Arc::new(Sub {
                        addr: *addr,
                        connector: self.template.subchannel(*addr),
                        stopped: Mutex::new(false),
                        stop_cv: Condvar::new(),
                        watch: Mutex::new(None),
                    });
                    st.entries.push(Entry {
                        sub: sub.clone(),
                        state: ConnectivityState::Idle,
                        conn: None,
                        serving: self.board.health.service.is_none(),
                        error: None,
                    });
                    let board = self.board.clone();
                    let spawned = std::thread::Builder::new()
                        .name("grpc-subchannel".into())
                        .stack_size(256 * 1024)
                        .spawn(move || keep(&board, &sub));
                    if spawned.is_err() {
                        log::error!("grpc-sync: cannot spawn a subchannel thread for {addr}");
                    }
                }
            }
        }
        for gone in old {
            log::debug!(
                "grpc-sync: {} is no longer among the addresses of {}",
                gone.sub.addr,
                self.template.target()
            );
            gone.sub.stop();
        }
        st.republish();
    }

    fn pick(&self, wait_for_ready: bool, deadline: Option<Instant>) -> Result<Arc<Shared>, Status> {
        loop {
            let seen = self.board.book.version();
            let mut st = lock(&self.board.state);
            if st.shutdown {
                return Err(Status::cancelled("the channel was closed"));
            }
            self.sync(&mut st);
            let n = st.ready.len();
            for _ in 0..n {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % n;
                if usable(&st.ready[i]) {
                    return Ok(st.ready[i].clone());
                }
            }
            let failed = self.failure(&st);
            drop(st);
            if let Some(why) = &failed {
                if !wait_for_ready {
                    return Err(Status::unavailable(why.clone()));
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Status::deadline_exceeded(match failed {
                    Some(why) => format!(
                        "Deadline Exceeded while waiting for a connection; last error: {why}"
                    ),
                    None => "Deadline Exceeded while waiting for a connection".to_string(),
                }));
            }
            self.board.book.wait_change(seen, deadline);
        }
    }

    /// Why no call can go now, when every subchannel failed its last attempt (or the name
    /// did not resolve); `None` while some are still connecting.
    fn failure(&self, st: &RrState) -> Option<String> {
        if st.entries.is_empty() {
            return self.board.book.error();
        }
        let all_failed = st
            .entries
            .iter()
            .all(|e| e.state == ConnectivityState::TransientFailure);
        all_failed.then(|| {
            let errors: Vec<String> = st
                .entries
                .iter()
                .map(|e| match &e.error {
                    Some(err) => err.clone(),
                    None => format!("{}: not serving", e.sub.addr),
                })
                .collect();
            format!(
                "no READY subchannel of {} (round_robin); {}",
                self.template.target(),
                errors.join("; ")
            )
        })
    }

    /// gRPC's aggregation: READY if any is, else CONNECTING if any is, else IDLE if any is,
    /// else TRANSIENT_FAILURE.
    fn state(&self, try_to_connect: bool) -> ConnectivityState {
        let mut st = lock(&self.board.state);
        if st.shutdown {
            return ConnectivityState::Shutdown;
        }
        if try_to_connect {
            self.sync(&mut st);
        }
        if st.entries.is_empty() {
            return match (st.applied, self.board.book.error()) {
                (_, Some(_)) => ConnectivityState::TransientFailure,
                (0, None) if !try_to_connect => ConnectivityState::Idle,
                _ => ConnectivityState::Connecting,
            };
        }
        let has = |s| st.entries.iter().any(|e| e.state == s);
        if !st.ready.is_empty() {
            ConnectivityState::Ready
        } else if has(ConnectivityState::Connecting) || has(ConnectivityState::Ready) {
            // READY but not yet known to be SERVING counts as connecting.
            ConnectivityState::Connecting
        } else if has(ConnectivityState::Idle) {
            ConnectivityState::Idle
        } else {
            ConnectivityState::TransientFailure
        }
    }

    fn shutdown(&self) {
        let mut st = lock(&self.board.state);
        st.shutdown = true;
        st.ready.clear();
        let entries = std::mem::take(&mut st.entries);
        drop(st);
        for e in entries {
            e.sub.stop();
        }
        self.board.book.shutdown();
    }
}

/// How long a failed health watch waits before it starts again.
const HEALTH_RETRY: Duration = Duration::from_secs(1);

/// A subchannel's keeper thread: connect, stay connected (watching health), reconnect after
/// a loss, with the connector's back-off between failed attempts.
fn keep(board: &Board, sub: &Arc<Sub>) {
    while !sub.is_stopped() {
        board.update(sub, |e| e.state = ConnectivityState::Connecting);
        match sub.connector.get(false, None) {
            Ok(conn) if !wait_for_preface(sub, &conn) => {
                // Connected, but no SETTINGS came: a server stopping as we connected, or not
                // a gRPC server. Not READY; the next attempt waits for the back-off.
                let error = format!("{}: the server sent no HTTP/2 SETTINGS", sub.addr);
                sub.connector.discard(&conn, error.clone());
                board.update(sub, |e| {
                    e.state = ConnectivityState::TransientFailure;
                    e.error = Some(error);
                });
                if let (Some(until), _) = sub.connector.backoff_until() {
                    sub.sleep_until(until);
                }
            }
            Ok(conn) => {
                board.update(sub, |e| {
                    e.state = ConnectivityState::Ready;
                    e.conn = Some(conn.clone());
                    e.error = None;
                });
                match &board.health.service {
                    Some(service) => watch_health(board, sub, &conn, service),
                    None => wait_until_unusable(sub, &conn),
                }
                board.update(sub, |e| {
                    e.state = ConnectivityState::Idle;
                    e.conn = None;
                    e.serving = board.health.service.is_none();
                });
                if !sub.is_stopped() {
                    log::debug!("grpc-sync: subchannel {} lost its connection", sub.addr);
                }
            }
            Err(status) => {
                let (until, error) = sub.connector.backoff_until();
                board.update(sub, |e| {
                    e.state = ConnectivityState::TransientFailure;
                    e.error = Some(error.unwrap_or_else(|| status.message().to_string()));
                });
                if status.code() == Code::Cancelled {
                    return;
                }
                if let Some(until) = until {
                    sub.sleep_until(until);
                }
            }
        }
    }
}

/// Waits for the server's SETTINGS frame, as gRPC's stacks do before they call a connection
/// READY: a TCP connect can succeed against a server that is closing its listener. False if
/// the connection failed first (or the minimum connect timeout passed).
fn wait_for_preface(sub: &Sub, conn: &Arc<Shared>) -> bool {
    let deadline = Instant::now() + sub.connector.min_connect_timeout();
    let mut st = conn.lock();
    loop {
        if st.conn.got_settings() {
            return true;
        }
        if st.lost.is_some() || st.write_failed || st.conn.is_closed() || sub.is_stopped() {
            return false;
        }
        let cv = st.conn_cv.clone();
        let (g, timed_out) = conn.wait(
            &cv,
            st,
            Some(deadline.min(Instant::now() + Duration::from_secs(1))),
        );
        st = g;
        if timed_out && Instant::now() >= deadline {
            return false;
        }
    }
}

/// Blocks until `conn` can take no new calls, or the subchannel is stopped.
fn wait_until_unusable(sub: &Sub, conn: &Arc<Shared>) {
    let mut st = conn.lock();
    loop {
        if !st.takes_new_streams() || sub.is_stopped() {
            return;
        }
        let cv = st.conn_cv.clone();
        // Bounded, so that a stop is seen even if nothing touches the connection.
        st = conn
            .wait(&cv, st, Some(Instant::now() + Duration::from_secs(1)))
            .0;
    }
}

/// Watches the health of `service` on `conn` until the connection goes, publishing each
/// answer. A server without the health service (UNIMPLEMENTED) counts as serving (gRFC A17).
fn watch_health(board: &Board, sub: &Arc<Sub>, conn: &Arc<Shared>, service: &str) {
    let health = &board.health;
    while usable(conn) && !sub.is_stopped() {
        let watch = HealthWatch::open(conn, service, &health.authority, health.secure);
        let ended = match watch {
            Ok(mut watch) => {
                *lock(&sub.watch) = Some(watch.canceller());
                if sub.is_stopped() {
                    return;
                }
                let mut ended = None;
                for answer in watch.by_ref() {
                    match answer {
                        Ok(s) => {
                            let serving = s == ServingStatus::Serving;
                            board.update(sub, |e| e.serving = serving);
                        }
                        Err(status) => {
                            ended = Some(status);
                            break;
                        }
                    }
                }
                lock(&sub.watch).take();
                ended.unwrap_or_else(|| Status::internal("the health watch ended"))
            }
            Err(status) => status,
        };
        if ended.code() == Code::Unimplemented {
            log::error!(
                "grpc-sync: the server at {} does not implement grpc.health.v1.Health/Watch; \
                 health checking is off for it (gRFC A17)",
                sub.addr
            );
            board.update(sub, |e| e.serving = true);
            wait_until_unusable(sub, conn);
            return;
        }
        board.update(sub, |e| e.serving = false);
        if !usable(conn) {
            return;
        }
        sub.sleep_until(Instant::now() + HEALTH_RETRY);
    }
}

/// The policy and health service a service config asks for: the first policy of
/// `loadBalancingConfig` that this client has (gRPC's rule), else `loadBalancingPolicy`.
///
/// # Errors
/// A message naming the field when no listed policy is known, or a field has the wrong type.
pub(crate) fn from_service_config(
    config: &super::service_config::ServiceConfig,
) -> Result<(Option<Policy>, Option<String>), String> {
    let mut policy = None;
    if let Some(list) = &config.load_balancing_config {
        let mut names = Vec::new();
        for (i, entry) in list.as_array().into_iter().flatten().enumerate() {
            let obj = entry.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
                format!(
                    "loadBalancingConfig[{i}]: {entry} is not an object with exactly one \
                         policy name"
                )
            })?;
            let Some((name, _)) = obj.iter().next() else {
                continue;
            };
            if let Some(p) = Policy::from_name(name) {
                policy = Some(p);
                break;
            }
            names.push(name.clone());
        }
        if policy.is_none() && !names.is_empty() {
            return Err(format!(
                "loadBalancingConfig: none of the policies {names:?} is supported (this client \
                 has pick_first and round_robin)"
            ));
        }
    }
    if policy.is_none() {
        if let Some(name) = &config.load_balancing_policy {
            policy = Some(
                Policy::from_name(&name.to_ascii_lowercase()).ok_or_else(|| {
                    format!(
                        "loadBalancingPolicy: {name:?} is not supported (this client has \
                     pick_first and round_robin)"
                    )
                })?,
            );
        }
    }
    let health = match &config.health_check_config {
        Some(h) => match h.get("serviceName") {
            None => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(v) => {
                return Err(format!(
                    "healthCheckConfig.serviceName: {v} is not a string"
                ))
            }
        },
        None => None,
    };
    Ok((policy, health))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::service_config::ServiceConfig;

    fn choose(json: &str) -> Result<(Option<Policy>, Option<String>), String> {
        from_service_config(&ServiceConfig::parse(json).unwrap())
    }

    #[test]
    fn the_first_known_policy_wins() {
        let (p, h) = choose(
            r#"{"loadBalancingConfig": [{"grpclb": {}}, {"round_robin": {}}, {"pick_first": {}}],
                "healthCheckConfig": {"serviceName": "svc"}}"#,
        )
        .unwrap();
        assert_eq!(p, Some(Policy::RoundRobin));
        assert_eq!(h.as_deref(), Some("svc"));
        let (p, _) = choose(r#"{"loadBalancingPolicy": "ROUND_ROBIN"}"#).unwrap();
        assert_eq!(p, Some(Policy::RoundRobin));
        assert_eq!(choose("{}").unwrap(), (None, None));
    }

    #[test]
    fn unknown_policies_are_errors_naming_the_field() {
        let e = choose(r#"{"loadBalancingConfig": [{"grpclb": {}}]}"#).unwrap_err();
        assert!(e.starts_with("loadBalancingConfig:"), "{e}");
        let e = choose(r#"{"loadBalancingConfig": [{"a": {}, "b": {}}]}"#).unwrap_err();
        assert!(e.starts_with("loadBalancingConfig[0]:"), "{e}");
        let e = choose(r#"{"loadBalancingPolicy": "weighted"}"#).unwrap_err();
        assert!(e.starts_with("loadBalancingPolicy:"), "{e}");
        let e = choose(r#"{"healthCheckConfig": {"serviceName": 3}}"#).unwrap_err();
        assert!(e.starts_with("healthCheckConfig.serviceName:"), "{e}");
    }
}
