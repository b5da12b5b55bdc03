//! `memory_pair`: two connected in-memory channels, for tests and examples.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use crate::Channel;

/// One end of an in-memory message channel; see [`memory_pair`].
#[derive(Debug)]
pub struct MemoryChannel {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
    timeout: Duration,
}

/// What can go wrong on a [`MemoryChannel`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemoryError {
    /// The other end was dropped (CPython: `EOFError`).
    #[error("the peer has gone")]
    Closed,
    /// Nothing arrived within the channel's timeout.
    #[error("timed out waiting for a message")]
    TimedOut,
    /// The message is longer than the receiver accepts (CPython: `OSError('bad message length')`).
    #[error("bad message length: {len} bytes, the limit is {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Two connected channels: what one sends, the other receives. Each receive waits at most
/// `timeout`, so a handshake against a silent peer ends.
pub fn memory_pair(timeout: Duration) -> (MemoryChannel, MemoryChannel) {
    let (a_tx, b_rx) = channel();
    let (b_tx, a_rx) = channel();
    (
        MemoryChannel {
            tx: a_tx,
            rx: a_rx,
            timeout,
        },
        MemoryChannel {
            tx: b_tx,
            rx: b_rx,
            timeout,
        },
    )
}

impl Channel for MemoryChannel {
    type Error = MemoryError;

    fn send_message(&mut self, message: &[u8]) -> Result<(), MemoryError> {
        self.tx
            .send(message.to_vec())
            .map_err(|_| MemoryError::Closed)
    }

    fn recv_message(&mut self, max_len: usize) -> Result<Vec<u8>, MemoryError> {
        let message = self.rx.recv_timeout(self.timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => MemoryError::TimedOut,
            RecvTimeoutError::Disconnected => MemoryError::Closed,
        })?;
        if message.len() > max_len {
            return Err(MemoryError::TooLong {
                len: message.len(),
                max: max_len,
            });
        }
        Ok(message)
    }
}
