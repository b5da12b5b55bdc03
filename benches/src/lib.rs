//! conn's benchmarks live in this crate, outside the libraries' dependency graph.
//!
//! It will hold criterion micro-benchmarks for the pure layers (header encode/decode, decoder
//! throughput, HMAC responses per digest, codec encode/decode) and the side-by-side comparison of
//! conn, CPython's `multiprocessing.connection` and a raw-socket floor run by `cargo xtask bench`.
//! None of that is written yet: it needs the transport layer.
