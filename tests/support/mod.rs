//! Helpers shared by the integration tests; a test binary pulls them in with `mod support;`.

// Each test binary uses only some of the helpers; the others would warn as dead code.
#![allow(dead_code)]

pub mod browser;
pub mod certs;
pub mod msg;
pub mod provision;
pub mod python;
pub mod tools;
pub mod web;
