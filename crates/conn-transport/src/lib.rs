//! The transport layer of conn (not yet built).
//!
//! It will own the OS handles on mio: TCP and Unix stream sockets and listeners, `socketpair` and
//! `pipe2` pairs for `Pipe`, Windows message-mode named pipes, readiness of one handle with a
//! timeout and of many handles for `wait`, fd passing and process sentinels. It never parses a
//! frame header: that is `conn-framing`'s job.
