//! Message-mode pipes (Windows AF_PIPE) read as CPython frames: see [`Messages`].

use std::io;
use std::time::Duration;

use crate::os::{MessagePart, Stream};
use conn_framing::Header;

/// The first read of a pipe message takes at most this much (then the rest of the message is
/// asked for, as CPython's `PeekNamedPipe` does after its first 128 bytes).
const FIRST_PART: usize = 16 * 1024;

/// Turns a message-mode pipe's messages into the byte stream of CPython's frames: each message
/// is preceded by the header its length would have on a socket. The framing core then applies
/// every limit (maxlength, the message limit, the 256-byte limit of a handshake) from that
/// header before the body is read, as CPython checks `maxlength` against the size
/// `PeekNamedPipe` reports, and a zero-length message is an empty frame, not an end of file.
#[derive(Debug, Default)]
pub(crate) struct Messages {
    header: [u8; 12],
    header_len: usize,
    header_pos: usize,
    /// The first part of the current message.
    head: Vec<u8>,
    head_pos: usize,
    /// Bytes of the current message still in the pipe after `head`.
    body_left: u64,
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

impl Messages {
    /// Whether bytes of the current frame wait here (no need to ask the pipe).
    pub(crate) fn has_bytes(&self) -> bool {
        self.header_pos < self.header_len || self.head_pos < self.head.len()
    }

    /// How much of the current message this cursor holds or has begun (at least 1 once a
    /// message has begun and is not finished).
    pub(crate) fn held(&self) -> usize {
        let head = self.head.len() - self.head_pos;
        let begun = usize::from(!self.at_frame_end());
        head.max(begun)
    }

    /// Whether the current frame has been handed out whole.
    fn at_frame_end(&self) -> bool {
        !self.has_bytes() && self.body_left == 0
    }

    /// Fills `buf` as far as the current frame goes without waiting once something was read
    /// (only the first step waits, up to `timeout`): a read that returns less than asked for
    /// then means, as on a socket, that nothing more has arrived, which the framing core's
    /// non-blocking pump relies on.
    pub(crate) fn read(
        &mut self,
        stream: &Stream,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let wait = if n == 0 {
                timeout
            } else {
                Some(Duration::ZERO)
            };
            match self.read_step(stream, &mut buf[n..], wait) {
                Ok(0) => break,
                Ok(k) => n += k,
                // What was read is returned; a lasting error comes back at the next call.
                Err(_) if n > 0 => break,
                Err(e) => return Err(e),
            }
            if self.at_frame_end() {
                break;
            }
        }
        Ok(n)
    }

    fn read_step(
        &mut self,
        stream: &Stream,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        if self.lost {
            return Err(sizes_disagree());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if self.header_pos < self.header_len {
            let n = buf.len().min(self.header_len - self.header_pos);
            buf[..n].copy_from_slice(&self.header[self.header_pos..self.header_pos + n]);
            self.header_pos += n;
            return Ok(n);
        }
        if self.head_pos < self.head.len() {
            let n = buf.len().min(self.head.len() - self.head_pos);
            buf[..n].copy_from_slice(&self.head[self.head_pos..self.head_pos + n]);
            self.head_pos += n;
            return Ok(n);
        }
        if self.body_left > 0 {
            let want = usize::try_from(self.body_left).map_or(buf.len(), |l| l.min(buf.len()));
            return match stream.read_message(&mut buf[..want], timeout)? {
                MessagePart::Data { len, more } => {
                    self.body_left = self.body_left.saturating_sub(len as u64);
                    if more != (self.body_left > 0) {
                        // The message is shorter or longer than the pipe said: its end is
                        // unknown, so nothing after it can be trusted.
                        self.lost = true;
                        return Err(sizes_disagree());
                    }
                    Ok(len)
                }
                // The pipe closed mid-message: the framing core reports the cut frame.
                _ => Ok(0),
            };
        }
        // The next message.
        self.head.clear();
        self.head_pos = 0;
        self.head.resize(FIRST_PART, 0);
        let part = stream.read_message(&mut self.head, timeout);
        let (len, more) = match part {
            Ok(MessagePart::Data { len, more }) => (len, more),
            Ok(_) => {
                self.head.clear();
                return Ok(0);
            }
            Err(e) => {
                self.head.clear();
                return Err(e);
            }
        };
        self.head.truncate(len);
        self.body_left = if more { stream.message_left()? } else { 0 };
        let header = Header::new(len as u64 + self.body_left);
        let bytes = header.as_bytes();
        self.header[..bytes.len()].copy_from_slice(bytes);
        self.header_len = bytes.len();
        self.header_pos = 0;
        self.read_step(stream, buf, timeout)
    }
}
