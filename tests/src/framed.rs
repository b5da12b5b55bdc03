//! `Framed`: CPython's framing over any blocking stream, as a `conn_auth::Channel`: for tests
//! that drive frames and handshakes by hand, below the connection layer.

use std::io::{Read, Write};

use conn_auth::Channel;
use conn_framing::{FrameError, FrameReader, write_frame};

/// A stream carrying CPython frames.
#[derive(Debug)]
pub struct Framed<S> {
    reader: FrameReader<S>,
}

impl<S: Read + Write> Framed<S> {
    /// Wraps a connected stream.
    pub fn new(stream: S) -> Self {
        Self {
            reader: FrameReader::new(stream),
        }
    }

    /// Sends one message (CPython's `send_bytes`).
    pub fn send_bytes(&mut self, payload: &[u8]) -> Result<(), FrameError> {
        Ok(write_frame(self.reader.get_mut(), payload)?)
    }

    /// Receives one message (CPython's `recv_bytes`).
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, FrameError> {
        self.reader.read_frame(None)
    }
}

impl<S: Read + Write> Channel for Framed<S> {
    type Error = FrameError;

    fn send_message(&mut self, message: &[u8]) -> Result<(), FrameError> {
        self.send_bytes(message)
    }

    fn recv_message(&mut self, max_len: usize) -> Result<Vec<u8>, FrameError> {
        self.reader.read_frame(Some(max_len as u64))
    }

    fn send_messages(&mut self, messages: &[&[u8]]) -> Result<(), FrameError> {
        Ok(conn_framing::write_frames(self.reader.get_mut(), messages)?)
    }
}
