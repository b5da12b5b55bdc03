//! A server with a thread per client: each client's strings come back upper-cased, until the
//! client hangs up. The Python program it mirrors:
//!
//! ```python
//! import threading
//! from multiprocessing.connection import Listener
//!
//! def serve(conn):
//!     with conn:
//!         while True:
//!             try:
//!                 msg = conn.recv()
//!             except EOFError:
//!                 break
//!             conn.send(msg.upper())
//!
//! with Listener(('localhost', 6000), authkey=b'secret password') as listener:
//!     while True:
//!         conn = listener.accept()
//!         threading.Thread(target=serve, args=(conn,)).start()
//! ```
//!
//! Run with `cargo run -p conn --example server_threads [ADDRESS [CLIENTS]]`: it listens on
//! ADDRESS (default `localhost:6000`) and, given CLIENTS, stops once that many clients have
//! come and gone. Any client works, Python's `Client` included.

use std::thread;

use conn::{Connection, Error, Listener};

fn serve(mut conn: Connection) -> Result<(), Error> {
    loop {
        let msg: String = match conn.recv() {
            Ok(msg) => msg,
            // The client hung up: this thread is done.
            Err(Error::Eof) => return Ok(()),
            Err(e) => return Err(e),
        };
        conn.send(&msg.to_uppercase())?;
    }
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "localhost:6000".into());
    let clients: Option<usize> = args.next().and_then(|n| n.parse().ok());
    let mut listener = Listener::builder()
        .address(address.as_str())
        .authkey("secret password")
        .bind()?;
    println!("listening on {}", listener.address());
    let mut threads = Vec::new();
    while clients.is_none_or(|n| threads.len() < n) {
        // A client that fails to authenticate is dropped and counted by the listener;
        // `accept` returns the next one that succeeds.
        let conn = listener.accept()?;
        threads.push(thread::spawn(move || serve(conn)));
    }
    for t in threads {
        match t.join() {
            Ok(Err(e)) => eprintln!("a client failed: {e}"),
            Ok(Ok(())) => {}
            Err(_) => eprintln!("a client's thread panicked"),
        }
    }
    listener.close()
}
