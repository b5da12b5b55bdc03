//! The listener of the seed: waits on `localhost:6000` (or the address given as the first
//! argument) with authkey `secret password`, and sends the client an object, `hello` as bytes,
//! and the two i32s `42, 1729` as bytes. A Python `Client` from `multiprocessing.connection` can
//! be the client, as can `seed_client`.
//!
//! Run with `cargo run -p conn --example seed_server [ADDRESS]`.

use conn::{Listener, PyValue};

fn main() -> Result<(), conn::Error> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "localhost:6000".into());
    let mut listener = Listener::builder()
        .address(address.as_str())
        .authkey("secret password")
        .bind()?;
    println!("listening on {}", listener.address());
    let mut conn = listener.accept()?;
    match listener.last_accepted() {
        Some(peer) => println!("connection accepted from {peer}"),
        None => println!("connection accepted"),
    }
    // Python's seed sends [2.25, None, 'junk', float]: the class `float` is a global
    // reference, which a Python receiver looks up and conn keeps inert.
    conn.send_value(&PyValue::list(vec![
        PyValue::Float(2.25),
        PyValue::None,
        PyValue::str("junk"),
        PyValue::global("builtins", "float"),
    ]))?;
    conn.send_bytes(b"hello")?;
    let ints: Vec<u8> = [42i32, 1729].iter().flat_map(|i| i.to_ne_bytes()).collect();
    conn.send_bytes(&ints)?;
    // Wait for the client to hang up, so everything sent is read before we close.
    let _ = conn.poll(Some(std::time::Duration::from_secs(30)));
    conn.close()?;
    listener.close()?;
    Ok(())
}
