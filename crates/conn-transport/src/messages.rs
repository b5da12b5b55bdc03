//! Message-mode pipes (Windows AF_PIPE, CPython's `PipeConnection`): where the reader stands in
//! the current message. See [`MessageCursor`].

use std::io;
use std::time::Duration;

use conn_framing::MessageRead;

use crate::os::{MessagePart, Stream};

/// Reads a message-mode pipe for the framing core: each read stays inside one message, and the
/// first read of a message says how long the whole message is (its first part plus what the
/// pipe reports left, as CPython asks `PeekNamedPipe` after its first read), so the decoder
/// checks every limit (maxlength, the message limit, a handshake's 256 bytes) before the body
/// is read. No header is made up: the decoder is told where messages begin
/// ([`Decoder::begin_message`](conn_framing::Decoder::begin_message)). A zero-length message
/// is a message, not the end.
#[derive(Debug, Default)]
pub struct MessageCursor {
    /// Bytes of the current message still in the pipe.
    left: u64,
    /// A message did not match its reported size: message boundaries are lost for good.
    lost: bool,
}

/// The error of a pipe whose message boundaries can no longer be trusted.
fn sizes_disagree() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "a pipe message did not match the size the pipe reported",
    )
}

impl MessageCursor {
    /// Whether a message has begun and not been read whole.
    pub(crate) fn in_message(&self) -> bool {
        self.left > 0
    }

    /// Reads into `buf` from the current message, or begins the next one; only the first step
    /// waits (up to `timeout`), then the read goes on without waiting while the message has
    /// bytes there, so a read that returns less than asked for means, as on a socket, that
    /// nothing more has arrived. `len: 0, begins: None` is end of file (mid-message: the
    /// decoder reports the cut message).
    pub fn read(
        &mut self,
        stream: &Stream,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> io::Result<MessageRead> {
        if self.lost {
            return Err(sizes_disagree());
        }
        let mut got = if self.left > 0 {
            MessageRead {
                len: self.continue_message(stream, buf, timeout)?,
                begins: None,
            }
        } else {
            self.begin_message(stream, buf, timeout)?
        };
        while self.left > 0 && got.len < buf.len() {
            match self.continue_message(stream, &mut buf[got.len..], Some(Duration::ZERO)) {
                Ok(0) => break,
                Ok(n) => got.len += n,
                // What was read is returned; a lasting error comes back at the next call.
                Err(_) => break,
            }
        }
        Ok(got)
    }

    /// Reads the first part of the next message.
    fn begin_message(
        &mut self,
        stream: &Stream,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> io::Result<MessageRead> {
        match stream.read_message(buf, timeout)? {
            MessagePart::Data { len, more } => {
                self.left = if more { stream.message_left()? } else { 0 };
                Ok(MessageRead {
                    len,
                    begins: Some((len as u64).saturating_add(self.left)),
                })
            }
            MessagePart::End => Ok(MessageRead {
                len: 0,
                begins: None,
            }),
        }
    }

    /// Reads more of the current message (never past its end).
    fn continue_message(
        &mut self,
        stream: &Stream,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let want = usize::try_from(self.left).map_or(buf.len(), |l| l.min(buf.len()));
        match stream.read_message(&mut buf[..want], timeout)? {
            MessagePart::Data { len, more } => {
                self.left = self.left.saturating_sub(len as u64);
                if more != (self.left > 0) {
                    // The message is shorter or longer than the pipe said: its end is unknown,
                    // so nothing after it can be trusted.
                    self.lost = true;
                    return Err(sizes_disagree());
                }
                Ok(len)
            }
            // The pipe closed mid-message: the framing core reports the cut frame.
            MessagePart::End => Ok(0),
        }
    }

    /// A read for the large-body path, which reads only inside the current message: at a
    /// message boundary it is an error, never the start of another message.
    pub(crate) fn read_body(
        &mut self,
        stream: &Stream,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        if self.lost {
            return Err(sizes_disagree());
        }
        if self.left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a pipe body read outside a message",
            ));
        }
        let n = self.continue_message(stream, buf, timeout)?;
        Ok(n)
    }
}
