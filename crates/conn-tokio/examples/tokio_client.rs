//! The seed's client under tokio: connects to `localhost:6000` (or the address given as the
//! first argument) with authkey `secret password`, receives an object, a bytes message, and two
//! i32s with `recv_bytes_into` into a 5-element buffer, and prints them as Python would: what
//! the blocking `seed_client` does. The listener can be `tokio_server`, `seed_server` or
//! Python's own `Listener`.
//!
//! Run with `cargo run -p conn-tokio --example tokio_client [ADDRESS]`.

use conn_tokio::Client;

#[tokio::main(flavor = "current_thread")]
async fn main() -> conn_tokio::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "localhost:6000".into());
    let mut conn = Client::builder(address.as_str())
        .authkey("secret password")
        .connect()
        .await?;
    // `Display` of a value is Python's repr.
    println!("{}", conn.recv_value().await?);
    let bytes = conn.recv_bytes().await?;
    let body: String = bytes
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    println!("b'{body}'");
    let mut buf = [0u8; 5 * 4];
    let n = conn.recv_bytes_into(&mut buf).await?;
    println!("{n}");
    let arr: Vec<String> = buf
        .chunks_exact(4)
        .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]).to_string())
        .collect();
    println!("array('i', [{}])", arr.join(", "));
    conn.close().await
}
