//! The checks of a descriptor transfer (CPython's `multiprocessing.reduction`), with no I/O:
//! shared by the blocking connection and other shells (conn-tokio's).

use crate::os::Stream;
use crate::{Error, OwnedHandle, Result};

/// Descriptors the stream closed on arrival since the last claim (over its unclaimed limit, or
/// in a transfer the kernel truncated), as the error the claim reports; `Ok` if none.
pub fn dropped_handles(stream: &Stream) -> Result<()> {
    match stream.take_dropped_handles() {
        (0, false) => Ok(()),
        (dropped, truncated) => Err(Error::HandlesDropped {
            dropped,
            truncated,
            max: stream.max_unclaimed_handles(),
        }),
    }
}

/// What a transfer's count byte and the descriptors that came with it make: the descriptors,
/// or [`Error::HandleTransfer`] for none, a count that does not match (mod 256, as CPython
/// sends it), or more than `max`.
pub fn claimed_handles(
    count: u8,
    handles: Vec<OwnedHandle>,
    max: usize,
) -> Result<Vec<OwnedHandle>> {
    let received = handles.len();
    if received == 0 || received % 256 != usize::from(count) || received > max {
        return Err(Error::HandleTransfer {
            announced: count,
            received,
            max,
        });
    }
    Ok(handles)
}

/// The one descriptor of a one-descriptor claim (CPython's `recv_handle`).
pub fn single_handle(mut handles: Vec<OwnedHandle>) -> Result<OwnedHandle> {
    handles.pop().ok_or(Error::HandleTransfer {
        announced: 0,
        received: 0,
        max: 1,
    })
}

/// The macOS acknowledgement a sender reads back (`read` bytes, the first of them): `b"A"` or
/// an error.
pub fn acknowledgement(read: usize, byte: u8) -> Result<()> {
    match (read, byte) {
        (0, _) => Err(Error::Eof),
        (_, b'A') => Ok(()),
        _ => Err(Error::Io(std::io::Error::other(
            "did not receive acknowledgement of the file descriptors",
        ))),
    }
}
