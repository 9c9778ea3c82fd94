//! Sockets, the readiness poller, and the connection core around the sans-IO HTTP/2 machine.
//!
//! With `server/` and `client/`, the only place that touches `std::net` or spawns threads.

pub(crate) mod driver;
pub(crate) mod poll;
pub(crate) mod socket;
pub(crate) mod tls;
