//! The seed's listener under tokio: waits on `localhost:6000` (or the address given as the
//! first argument) with authkey `secret password`, and sends the client an object, `hello` as
//! bytes, and the two i32s `42, 1729` as bytes: what the blocking `seed_server` does, so the
//! seed's Python client (or `seed_client`, or `tokio_client`) works against it unchanged.
//!
//! Run with `cargo run -p conn-tokio --example tokio_server [ADDRESS]`.

use conn_pickle::Value as PyValue;
use conn_tokio::Listener;

#[tokio::main(flavor = "current_thread")]
async fn main() -> conn_tokio::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "localhost:6000".into());
    let mut listener = Listener::builder()
        .address(address.as_str())
        .authkey("secret password")
        .bind()?;
    println!("listening on {}", listener.address());
    let mut conn = listener.accept().await?;
    match listener.last_accepted() {
        Some(peer) => println!("connection accepted from {peer}"),
        None => println!("connection accepted"),
    }
    conn.send_value(&PyValue::list(vec![
        PyValue::Float(2.25),
        PyValue::None,
        PyValue::str("junk"),
        PyValue::global("builtins", "float"),
    ]))
    .await?;
    conn.send_bytes(b"hello").await?;
    let ints: Vec<u8> = [42i32, 1729].iter().flat_map(|i| i.to_ne_bytes()).collect();
    conn.send_bytes(&ints).await?;
    // Wait for the client to hang up (at most 30 s), so everything sent is read first.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), conn.readable()).await;
    conn.close().await?;
    listener.close().await
}
