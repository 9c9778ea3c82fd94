//! Sockets and the blocking loops around the sans-IO HTTP/2 connection.
//!
//! With `server/` and `client/`, the only place that touches `std::net` or spawns threads.

pub(crate) mod driver;
pub(crate) mod tls;
