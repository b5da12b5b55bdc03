//! Helpers for conn's integration tests: finding real CPython interpreters, running a Python
//! peer with bounded time, running the examples, and a framed message channel over a socket.

pub mod examples;
pub mod framed;
pub mod harness;
pub mod hex;
pub mod peer;
pub mod python;
