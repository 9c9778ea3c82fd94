//! HTTP/2 (RFC 9113) and HPACK (RFC 7541), sans-IO.
//!
//! Nothing in this module touches a socket, spawns a thread or reads a clock: bytes and the
//! current time come in as arguments, events and bytes to send come out.

pub mod bdp;
pub mod conn;
pub mod error;
pub mod flow;
pub mod frame;
pub mod hpack;
pub mod keepalive;
pub mod settings;
pub mod stream;
