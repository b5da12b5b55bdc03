//! conn: Python's `multiprocessing.connection` in Rust (the facade; not yet built).
//!
//! It will hold `Connection` (transport + framing + codec), `Listener`, `Client`, `Pipe`, `wait`,
//! `WaitSet` and the facade `Error`, and re-export each layer as a module. Today the layers
//! `conn-address`, `conn-framing` and `conn-auth` are usable on their own.
