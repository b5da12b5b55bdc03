//! Helpers for conn's integration tests: finding real CPython interpreters, running a Python
//! peer with bounded time, and a framed message channel over a socket.

pub mod framed;
pub mod python;
