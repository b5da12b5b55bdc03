//! The handshake machines of conn-auth, driven over an async connection.

use conn_auth::{
    AuthKey, ClientHandshake, MAX_HANDSHAKE_MESSAGE, Policy, Progress, ServerHandshake,
};
use conn_framing::Codec;
use conn_transport::{Error, Result};

use crate::Connection;

/// A handshake machine of either side: messages in, messages out.
enum Side {
    Server(ServerHandshake),
    Client(ClientHandshake),
}

impl Side {
    fn transmit(&mut self) -> Vec<Vec<u8>> {
        match self {
            Self::Server(m) => m.transmit(),
            Self::Client(m) => m.transmit(),
        }
    }

    fn on_message(&mut self, key: &AuthKey, message: &[u8]) -> Result<Progress> {
        let step = match self {
            Self::Server(m) => m.on_message(key, message),
            Self::Client(m) => m.on_message(key, message),
        };
        step.map_err(Error::Auth)
    }
}

/// The listener's side: challenge the client, then answer its challenge (CPython's
/// `deliver_challenge` then `answer_challenge`).
pub(crate) async fn serve<C: Codec>(
    conn: &mut Connection<C>,
    key: &AuthKey,
    policy: Policy,
) -> Result<()> {
    drive(conn, key, Side::Server(ServerHandshake::new(policy)?)).await
}

/// The client's side: answer the listener's challenge, then challenge it.
pub(crate) async fn answer<C: Codec>(
    conn: &mut Connection<C>,
    key: &AuthKey,
    policy: Policy,
) -> Result<()> {
    let mut machine = ClientHandshake::new(policy)?;
    if conn.stream().kind() == conn_transport::os::StreamKind::Tcp {
        // Our challenge waits for the verdict (see `ClientHandshake::in_turn`).
        machine = machine.in_turn();
    }
    drive(conn, key, Side::Client(machine)).await
}

/// Sends what the machine has queued, feeds it each message (at most 256 bytes, as CPython's
/// `recv_bytes(256)`), until it is done or fails; a verdict the machine queued on failure
/// (`#FAILURE#`) is sent before the error is returned.
async fn drive<C: Codec>(conn: &mut Connection<C>, key: &AuthKey, mut machine: Side) -> Result<()> {
    let first = machine.transmit();
    if !first.is_empty() {
        conn.send_all(&first).await?;
    }
    loop {
        let message = conn.recv_bytes_max(MAX_HANDSHAKE_MESSAGE).await?;
        let step = machine.on_message(key, &message);
        let out = machine.transmit();
        if !out.is_empty() {
            let sent = conn.send_all(&out).await;
            if step.is_ok() {
                sent?;
            }
        }
        if matches!(step?, Progress::Done) {
            return Ok(());
        }
    }
}
