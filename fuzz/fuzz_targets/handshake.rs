//! Any messages a peer sends during the handshake, to either machine: never a panic, never a
//! success without the key, and nothing accepted after the machine has finished or failed.
#![no_main]

use conn_auth::{AuthKey, ClientHandshake, Policy, Progress, ServerHandshake};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = AuthKey::from("fuzz key");
    let mut server = ServerHandshake::new(Policy::new()).expect("random source");
    let mut client = ClientHandshake::new(Policy::new()).expect("random source");
    let _ = server.transmit();
    let (mut server_over, mut client_over) = (false, false);
    // Messages: a length byte, then that many bytes (as many as there are).
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (message, tail) = tail.split_at(n);
        rest = tail;
        for (over, result) in [
            (&mut server_over, server.on_message(&key, message)),
            (&mut client_over, client.on_message(&key, message)),
        ] {
            if *over {
                assert!(result.is_err(), "a message accepted after the end");
            }
            if !matches!(result, Ok(Progress::Continue)) {
                *over = true;
            }
        }
        let _ = (server.transmit(), client.transmit());
    }
    // The server's challenge is fresh and random: no input can answer it.
    assert!(!server.is_done());
});
