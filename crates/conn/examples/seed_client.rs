//! The client of the seed: connects to `localhost:6000` (or the address given as the first
//! argument) with authkey `secret password`, receives an object, a bytes message, and two i32s
//! with `recv_bytes_into` into a 5-element buffer, and prints them as Python would. The listener
//! can be `seed_server` or Python's own `Listener`.
//!
//! Run with `cargo run -p conn --example seed_client [ADDRESS]`.

use conn::Client;

fn main() -> Result<(), conn::Error> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "localhost:6000".into());
    let mut conn = Client::builder(address.as_str())
        .authkey("secret password")
        .connect()?;
    // `Display` of a value is Python's repr.
    println!("{}", conn.recv_value()?);
    println!("{}", bytes_repr(&conn.recv_bytes()?));
    let mut buf = [0u8; 5 * 4];
    let n = conn.recv_bytes_into(&mut buf)?;
    println!("{n}");
    let arr: Vec<String> = buf
        .chunks_exact(4)
        .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]).to_string())
        .collect();
    println!("array('i', [{}])", arr.join(", "));
    conn.close()
}

fn bytes_repr(bytes: &[u8]) -> String {
    let body: String = bytes
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    format!("b'{body}'")
}
