//! The same server as `server_threads` on one thread: the listener and every client in one
//! `WaitSet`. A client that sends half a message and stops delays no one (the set reports a
//! connection only when a whole message is there), and a client still authenticating does not
//! hold the listener. The Python program it mirrors:
//!
//! ```python
//! from multiprocessing.connection import Listener, wait
//!
//! with Listener(('localhost', 6000), authkey=b'secret password') as listener:
//!     clients = []
//!     while True:
//!         for obj in wait([listener._listener._socket] + clients):
//!             if obj in clients:
//!                 try:
//!                     obj.send(obj.recv().upper())
//!                 except EOFError:
//!                     clients.remove(obj)
//!                     obj.close()
//!             else:
//!                 clients.append(listener.accept())
//! ```
//!
//! (CPython's `wait` cannot take a `Listener`; its socket stands in, and `accept` then blocks
//! on a slow handshake. conn's `Listener` is waitable and ready only when `accept` would return
//! at once.)
//!
//! Run with `cargo run -p conn --example server_waitset [ADDRESS [CLIENTS]]`, as
//! `server_threads`.

use conn::{Endpoint, Error, Listener, WaitSet};

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "localhost:6000".into());
    let clients: Option<usize> = args.next().and_then(|n| n.parse().ok());
    let listener = Listener::builder()
        .address(address.as_str())
        .authkey("secret password")
        .bind()?;
    println!("listening on {}", listener.address());
    let mut set = WaitSet::new()?;
    let listener_key = set.insert(Endpoint::from(listener))?;
    let (mut accepted, mut gone) = (0, 0);
    while clients.is_none_or(|n| gone < n) {
        for key in set.wait(None)? {
            let Some(endpoint) = set.get_mut(key) else {
                continue;
            };
            match endpoint {
                Endpoint::Listener(listener) => {
                    let conn = listener.accept()?;
                    set.insert(Endpoint::from(conn))?;
                    accepted += 1;
                    if clients.is_some_and(|n| accepted == n) {
                        // No more clients wanted: stop listening.
                        if let Some(Endpoint::Listener(l)) = set.remove(listener_key) {
                            l.close()?;
                        }
                    }
                }
                Endpoint::Connection(conn) => {
                    let echoed = conn
                        .recv::<String>()
                        .and_then(|msg| conn.send(&msg.to_uppercase()));
                    if let Err(e) = echoed {
                        // A hang-up ends this client only; so does any other failure.
                        if !matches!(e, Error::Eof) {
                            eprintln!("a client failed: {e}");
                        }
                        set.remove(key);
                        gone += 1;
                    }
                }
            }
        }
    }
    Ok(())
}
