//! The few system calls std does not offer, each wrapped safely. All unsafe code of the
//! workspace is in this file.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::time::Duration;

/// `sendmsg(fd, bufs, MSG_NOSIGNAL)`: a vectored socket write that cannot raise `SIGPIPE`
/// (std's `write_vectored` is `writev`, which can).
pub(crate) fn send_vectored(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    send_vectored_flags(fd, bufs, libc::MSG_NOSIGNAL)
}

/// `sendmsg(fd, bufs, MSG_NOSIGNAL | MSG_DONTWAIT)`: the same, never blocking (`WouldBlock`
/// when the socket's buffer is full), whatever the fd's mode.
pub(crate) fn send_vectored_nonblocking(
    fd: BorrowedFd<'_>,
    bufs: &[IoSlice<'_>],
) -> io::Result<usize> {
    send_vectored_flags(fd, bufs, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
}

fn send_vectored_flags(
    fd: BorrowedFd<'_>,
    bufs: &[IoSlice<'_>],
    flags: libc::c_int,
) -> io::Result<usize> {
    // SAFETY: a zeroed msghdr is a valid "no address, no control data" header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is guaranteed ABI-compatible with iovec on Unix; sendmsg only reads through it.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len().min(iov_max()) as _;
    // SAFETY: fd is a live socket borrowed for the call; msg points at `bufs`, alive for the call.
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, flags) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `send(fd, buf, MSG_NOSIGNAL)`.
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: fd is a live socket borrowed for the call; buf is valid for len bytes.
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `listen(fd, backlog)`. Linux (and the BSDs) let a listening socket's backlog be changed by
/// calling `listen` again, which is how CPython's `backlog` is applied over std's default.
pub(crate) fn listen(fd: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    // SAFETY: fd is a live socket borrowed for the call.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The most iovecs one `sendmsg` takes (`IOV_MAX`, 1024 on Linux); more is `EMSGSIZE`, so
/// longer lists are written in several calls.
pub(crate) fn iov_max() -> usize {
    1024
}

/// Polls one fd for input (or hang-up, or error) for at most `timeout` (`None`: forever).
/// Returns whether it is ready. Retries `EINTR` with the time remaining.
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    poll_one(fd, libc::POLLIN, timeout)
}

/// Polls one fd for output room (or hang-up, or error) for at most `timeout`.
pub(crate) fn poll_writable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    poll_one(fd, libc::POLLOUT, timeout)
}

/// `poll(2)`'s timeout for `deadline`: -1 for none, else the milliseconds left, rounded up so a
/// 1 µs timeout still waits for its 1 ms tick, as CPython does.
fn poll_millis(deadline: Option<std::time::Instant>) -> libc::c_int {
    deadline.map_or(-1, |d| {
        d.saturating_duration_since(std::time::Instant::now())
            .as_nanos()
            .div_ceil(1_000_000)
            .min(libc::c_int::MAX as u128) as libc::c_int
    })
}

fn poll_one(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let deadline = crate::deadline_after(timeout);
    loop {
        let ms = poll_millis(deadline);
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        };
        // SAFETY: pfd is one valid pollfd on our stack for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n > 0 {
            return Ok(
                pfd.revents & (events | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0,
            );
        }
        if ms == 0 {
            return Ok(false);
        }
    }
}

/// `close(fd)`, reporting the error that dropping an `OwnedFd` would ignore.
pub(crate) fn close(fd: OwnedFd) -> io::Result<()> {
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` came from an OwnedFd we consumed, so we own it and close it exactly once.
    if unsafe { libc::close(raw) } < 0 {
        let err = io::Error::last_os_error();
        // EINTR after close: the fd is gone on Linux; do not retry (it may be reused).
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(())
}

/// `fcntl(fd, F_GETFD)`: the descriptor flags (`FD_CLOEXEC`).
#[cfg(test)]
pub(crate) fn fd_flags(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: fd is live for the call; F_GETFD reads flags and touches no memory.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    if flags < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(flags)
    }
}

/// One `poll(2)` over many fds for input: the positions of those readable, hung up or in error,
/// in input order, waiting at most `timeout` (`None`: forever). Retries `EINTR` with the time
/// left.
pub(crate) fn poll_many(
    fds: &[crate::Handle<'_>],
    timeout: Option<Duration>,
) -> io::Result<Vec<usize>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let deadline = crate::deadline_after(timeout);
    loop {
        let ms = poll_millis(deadline);
        // SAFETY: pfds is a valid array of pfds.len() pollfds that outlives the call.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n > 0 || ms == 0 {
            let ready = libc::POLLIN | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
            return Ok(pfds
                .iter()
                .enumerate()
                .filter(|(_, p)| p.revents & ready != 0)
                .map(|(i, _)| i)
                .collect());
        }
    }
}

/// The file status flags (`F_GETFL`): the access mode, `O_NONBLOCK` and the rest.
pub(crate) fn status_flags(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: fd is a live descriptor borrowed for the call; F_GETFL takes no argument.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags)
}

/// Sets or clears `O_NONBLOCK`.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let flags = status_flags(fd)?;
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above; F_SETFL takes an int of flags.
    if new != flags && unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, new) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `e` says the process (`EMFILE`) or the system (`ENFILE`) has no descriptor left.
pub(crate) fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// The fd of a mio `Poll` (mio offers only `AsRawFd`), borrowed for as long as the `Poll`.
pub(crate) fn borrow_poll(poll: &mio::Poll) -> BorrowedFd<'_> {
    // SAFETY: `poll` owns this fd and keeps it open for its whole life; the borrow cannot
    // outlive `poll`.
    unsafe { BorrowedFd::borrow_raw(poll.as_raw_fd()) }
}

/// `recv(fd, buf, MSG_DONTWAIT)`: a socket read that never blocks (`WouldBlock` when empty),
/// whatever the fd's mode.
pub(crate) fn recv_nonblocking(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: fd is a live socket borrowed for the call; buf is valid for writes of len bytes.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// What `fd` is, for adopting an fd handed in from elsewhere: a stream socket (Unix or TCP) or
/// one end of a pipe. Anything else (a datagram socket, a regular file, a FIFO open both ways)
/// is `InvalidInput`.
pub(crate) fn stream_kind(fd: BorrowedFd<'_>) -> io::Result<crate::os::StreamKind> {
    use crate::os::StreamKind;
    let raw = fd.as_raw_fd();
    let invalid = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {raw} is {what}, not a stream socket or a pipe end"),
        )
    };
    // SAFETY: `st` is plain old data that fstat fills in; fd is live for the call.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the pointer is to a local of the right type.
    if unsafe { libc::fstat(raw, &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFSOCK => {
            let mut ty: libc::c_int = 0;
            let mut len = size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: SO_TYPE writes one c_int into `ty`, whose size `len` says.
            let rc = unsafe {
                libc::getsockopt(
                    raw,
                    libc::SOL_SOCKET,
                    libc::SO_TYPE,
                    (&raw mut ty).cast(),
                    &mut len,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            if ty != libc::SOCK_STREAM {
                return Err(invalid("a socket that is not SOCK_STREAM"));
            }
            // SAFETY: sockaddr_storage is plain old data, large enough for any family.
            let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            // SAFETY: getsockname writes at most `len` bytes into `addr` and updates `len`.
            if unsafe { libc::getsockname(raw, (&raw mut addr).cast(), &mut len) } < 0 {
                return Err(io::Error::last_os_error());
            }
            match libc::c_int::from(addr.ss_family) {
                libc::AF_UNIX => Ok(StreamKind::Unix),
                libc::AF_INET | libc::AF_INET6 => Ok(StreamKind::Tcp),
                _ => Err(invalid("a socket of another family")),
            }
        }
        libc::S_IFIFO => match status_flags(fd)? & libc::O_ACCMODE {
            libc::O_RDONLY => Ok(StreamKind::PipeReader),
            libc::O_WRONLY => Ok(StreamKind::PipeWriter),
            _ => Err(invalid("a FIFO open for reading and writing")),
        },
        _ => Err(invalid("neither a socket nor a pipe")),
    }
}

/// Sets `FD_CLOEXEC`, so an fd adopted from elsewhere does not leak into later children.
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fd is live for the call; F_GETFD takes no argument.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::FD_CLOEXEC == 0
        // SAFETY: as above; F_SETFD takes an int of flags.
        && unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Asks for `size`-byte send and receive buffers on a socket (`SO_SNDBUF`, `SO_RCVBUF`; the
/// kernel caps them at its limits).
pub(crate) fn set_socket_buffers(fd: BorrowedFd<'_>, size: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    for option in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        // SAFETY: fd is live for the call; the option value is one c_int read from `value`,
        // whose size is passed.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&raw const value).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The most fds one `SCM_RIGHTS` message may carry on Linux (`SCM_MAX_FD`); room for this many
/// is given to every receive, so the kernel never has to drop any for want of space.
pub(crate) const MAX_FDS_PER_MESSAGE: usize = 253;

/// `sendmsg(fd, data, SCM_RIGHTS fds, MSG_NOSIGNAL)`: bytes with file descriptors attached.
pub(crate) fn send_with_fds(
    fd: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    if fds.is_empty() || fds.len() > MAX_FDS_PER_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "between 1 and {MAX_FDS_PER_MESSAGE} fds go in one message, not {}",
                fds.len()
            ),
        ));
    }
    let raw: Vec<libc::c_int> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let payload = size_of_val(raw.as_slice());
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(payload as libc::c_uint) } as usize;
    // u64 elements keep the buffer aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain old data; every pointer set below outlives the sendmsg call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points at `space` bytes, room for one header and `payload` bytes, so
    // CMSG_FIRSTHDR is non-null and CMSG_DATA has room for the fds copied into it.
    let n = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload as libc::c_uint) as _;
        std::ptr::copy_nonoverlapping(raw.as_ptr().cast::<u8>(), libc::CMSG_DATA(cmsg), payload);
        libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL)
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// What one `recvmsg` brought: bytes, the fds that came with them, and whether the kernel
/// dropped fds for want of room (`MSG_CTRUNC`; the bytes are still good).
pub(crate) struct Received {
    pub(crate) len: usize,
    pub(crate) fds: Vec<OwnedFd>,
    pub(crate) truncated: bool,
    /// The read ended at a descriptor transfer (fds came, taken or dropped by the kernel):
    /// more bytes may be queued even if the read was short.
    pub(crate) at_transfer: bool,
}

/// `recvmsg` into `buf` with room for [`MAX_FDS_PER_MESSAGE`] fds: the bytes read and the fds
/// that came with them (owned, close-on-exec). `nonblocking`: `MSG_DONTWAIT`. Linux stops a
/// read after the bytes that carry fds, so the fds belong to the last byte read.
///
/// With `want_fds` false there is no control buffer at all: the kernel closes any fds that
/// arrive (they never enter this process's table), so a peer cannot make us hold any.
///
/// A truncated transfer (`MSG_CTRUNC`) keeps its bytes (they were consumed from the socket)
/// and reports `truncated`; the fds that did arrive are returned for the caller to close. Each
/// `cmsg_len` is clamped to the control buffer, whatever the kernel reports (BSDs may report
/// the untruncated length).
pub(crate) fn recv_with_fds(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    nonblocking: bool,
    want_fds: bool,
) -> io::Result<Received> {
    use std::os::fd::FromRawFd;
    let payload = MAX_FDS_PER_MESSAGE * size_of::<libc::c_int>();
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(payload as libc::c_uint) } as usize;
    let mut control = [0u64; 160];
    let space = space.min(size_of_val(&control));
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain old data; every pointer set below outlives the recvmsg call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    if want_fds {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
    }
    let mut flags = 0;
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        flags |= libc::MSG_CMSG_CLOEXEC;
    }
    if nonblocking {
        flags |= libc::MSG_DONTWAIT;
    }
    // SAFETY: buf is valid for writes of its length; msg_control (if set) for msg_controllen
    // bytes.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    if want_fds {
        for raw in rights_in(&control[..space.div_ceil(8)], msg.msg_controllen as usize) {
            // SAFETY: the kernel installed this descriptor for us with the message: nothing
            // else owns it.
            fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
        }
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
        for fd in &fds {
            set_cloexec(std::os::fd::AsFd::as_fd(fd))?;
        }
    }
    let at_transfer = !fds.is_empty() || msg.msg_flags & libc::MSG_CTRUNC != 0;
    Ok(Received {
        len: n as usize,
        fds,
        truncated: want_fds && msg.msg_flags & libc::MSG_CTRUNC != 0,
        at_transfer,
    })
}

/// The descriptors in the `SCM_RIGHTS` messages of `control`, of which the kernel reported
/// `reported` bytes. Never reads past `control`, whatever `reported` or a header's `cmsg_len`
/// claims (BSDs may report untruncated lengths): both are clamped to the buffer, a header
/// that claims more than is left ends the walk, and negative numbers are skipped.
fn rights_in(control: &[u64], reported: usize) -> Vec<libc::c_int> {
    let size = size_of_val(control);
    let controllen = reported.min(size);
    let mut out = Vec::new();
    // SAFETY: msghdr is plain old data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_control = control.as_ptr().cast_mut().cast();
    msg.msg_controllen = controllen as _;
    let base = control.as_ptr() as usize;
    // SAFETY: CMSG_LEN only computes a size.
    let header = unsafe { libc::CMSG_LEN(0) } as usize;
    // SAFETY: the walk reads only inside `control[..controllen]`: CMSG_FIRSTHDR is null unless a
    // whole header fits; each header is read only after checking it fits; its data is read up
    // to the smaller of its cmsg_len and the end of the buffer; CMSG_NXTHDR is asked for the
    // next header only when this one's cmsg_len stays inside the buffer (so its arithmetic
    // cannot overflow), and returns null past msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let offset = cmsg as usize - base;
            if offset + header > controllen {
                break;
            }
            let claimed = (*cmsg).cmsg_len as usize;
            let len = claimed.min(controllen - offset);
            if (*cmsg).cmsg_level == libc::SOL_SOCKET
                && (*cmsg).cmsg_type == libc::SCM_RIGHTS
                && len > header
            {
                let data = libc::CMSG_DATA(cmsg);
                for i in 0..(len - header) / size_of::<libc::c_int>() {
                    let raw = std::ptr::read_unaligned(
                        data.add(i * size_of::<libc::c_int>()).cast::<libc::c_int>(),
                    );
                    if raw >= 0 {
                        out.push(raw);
                    }
                }
            }
            if claimed < header || claimed > controllen - offset {
                break;
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    out
}

/// Arranges for `cmd`'s child to receive each `(fd, number)` pair as descriptor `number`, open
/// across `exec`; every other descriptor of ours stays close-on-exec. In the child, between
/// `fork` and `exec`, each fd is first copied above all the target numbers and then onto its
/// number, so targets that collide with sources do not clobber each other; only `fcntl` and
/// `dup2` run there (async-signal-safe, no allocation). The fds stay open in the parent as long
/// as `cmd` holds them.
pub(crate) fn inherit_in_child(
    cmd: &mut std::process::Command,
    pairs: Vec<(OwnedFd, i32)>,
) -> io::Result<()> {
    use std::os::unix::process::CommandExt;
    if let Some(&(_, bad)) = pairs.iter().find(|(_, n)| *n < 3) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {bad} is stdin, stdout or stderr: give the child 3 or more"),
        ));
    }
    let mut numbers: Vec<i32> = pairs.iter().map(|(_, n)| *n).collect();
    numbers.sort_unstable();
    if numbers.windows(2).any(|w| w[0] == w[1]) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "two connections for the same fd number in the child",
        ));
    }
    let above = numbers.last().copied().unwrap_or(3).saturating_add(1);
    let raw: Vec<(i32, i32)> = pairs.iter().map(|(fd, n)| (fd.as_raw_fd(), *n)).collect();
    let mut scratch = vec![0i32; raw.len()];
    let hold = pairs;
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed: it calls fcntl and dup2 on fds that `hold` keeps open in the parent
    // (so open in the child too), writes into `scratch` allocated beforehand, and allocates
    // nothing.
    unsafe {
        cmd.pre_exec(move || {
            let _ = &hold;
            for (i, &(fd, _)) in raw.iter().enumerate() {
                let copy = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, above);
                if copy < 0 {
                    return Err(io::Error::last_os_error());
                }
                scratch[i] = copy;
            }
            for (i, &(_, number)) in raw.iter().enumerate() {
                // dup2 leaves the new descriptor without FD_CLOEXEC: it survives exec.
                if libc::dup2(scratch[i], number) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(())
}

/// `pidfd_open(pid, 0)`: a descriptor for process `pid`, readable once it has exited (Linux
/// 5.3+; close-on-exec). `Unsupported` on other systems and where the kernel lacks it.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::fd::FromRawFd;
        let pid = libc::pid_t::try_from(pid)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is
        // passed.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(if e.raw_os_error() == Some(libc::ENOSYS) {
                io::Error::new(io::ErrorKind::Unsupported, "no pidfd_open in this kernel")
            } else {
                e
            });
        }
        // SAFETY: the kernel just returned this new fd; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = pid;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no pidfd on this system",
        ))
    }
}

/// Blocks until child `pid` has exited, without reaping it (`waitid(P_PID, WEXITED | WNOWAIT)`),
/// so its owner can still wait for its status. Returns at once with `ECHILD` if it is not (or
/// no longer) a child of this process.
pub(crate) fn wait_exit_without_reaping(pid: u32) -> io::Result<()> {
    let id = libc::id_t::from(pid);
    loop {
        // SAFETY: info is plain old data that waitid fills in; no other memory is passed.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above; the pointer is to a local of the right type.
        let rc = unsafe { libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Runs `f` when the process exits normally (`exit`, or returning from `main`): C's `atexit`.
/// Returns whether it was registered.
pub(crate) fn at_exit(f: extern "C" fn()) -> bool {
    // SAFETY: registers a plain function without arguments; it runs once, at exit.
    unsafe { libc::atexit(f) == 0 }
}

/// Blocks every signal in the calling thread, so that signals meant for the program reach its
/// other threads (what CPython's resource sharer thread does with `pthread_sigmask`).
pub(crate) fn block_signals_in_this_thread() {
    // SAFETY: `set` is initialised by sigfillset before use; pthread_sigmask only changes this
    // thread's mask and accepts a null old-mask pointer.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {

    use super::rights_in;

    /// A control buffer of `words` u64s holding one `SCM_RIGHTS` header that claims
    /// `cmsg_len`, followed by `fds` (as many as fit).
    fn control(words: usize, cmsg_len: usize, fds: &[libc::c_int]) -> Vec<u64> {
        let mut buf = vec![0u64; words];
        // SAFETY: CMSG_LEN only computes a size.
        let header = unsafe { libc::CMSG_LEN(0) } as usize;
        let mut bytes = vec![0u8; words * 8];
        // SAFETY: cmsghdr is plain old data.
        let mut h: libc::cmsghdr = unsafe { std::mem::zeroed() };
        h.cmsg_len = cmsg_len as _;
        h.cmsg_level = libc::SOL_SOCKET;
        h.cmsg_type = libc::SCM_RIGHTS;
        // SAFETY: cmsghdr is plain old data; its bytes are copied into a buffer at least that
        // long.
        let raw = unsafe {
            std::slice::from_raw_parts((&raw const h).cast::<u8>(), size_of::<libc::cmsghdr>())
        };
        bytes[..raw.len()].copy_from_slice(raw);
        for (i, fd) in fds.iter().enumerate() {
            let at = header + 4 * i;
            if at + 4 <= bytes.len() {
                bytes[at..at + 4].copy_from_slice(&fd.to_ne_bytes());
            }
        }
        for (w, chunk) in buf.iter_mut().zip(bytes.chunks(8)) {
            *w = u64::from_ne_bytes(chunk.try_into().unwrap());
        }
        buf
    }

    #[test]
    fn an_honest_header_gives_its_fds() {
        // SAFETY: CMSG_LEN only computes a size.
        let len = unsafe { libc::CMSG_LEN(12) } as usize;
        let buf = control(8, len, &[7, 8, 9]);
        assert_eq!(rights_in(&buf, len), vec![7, 8, 9]);
    }

    #[test]
    fn lengths_past_the_buffer_are_clamped_to_it() {
        // A header and a kernel that both claim 4096 bytes (as BSDs may, untruncated) over a
        // 32-byte buffer: only what the buffer holds is read.
        let buf = control(4, 4096, &[3, 4, 5, 6, 7, 8]);
        // SAFETY: CMSG_LEN only computes a size.
        let header = unsafe { libc::CMSG_LEN(0) } as usize;
        let fit = (32 - header) / 4;
        assert_eq!(rights_in(&buf, 4096), vec![3, 4, 5, 6][..fit].to_vec());
        // A reported length shorter than a header: nothing.
        assert!(rights_in(&buf, header - 1).is_empty());
        // A header claiming less than itself ends the walk without looping.
        let buf = control(4, 1, &[3]);
        assert!(rights_in(&buf, 32).is_empty());
        // Negative numbers are never taken as descriptors.
        // SAFETY: CMSG_LEN only computes a size.
        let len = unsafe { libc::CMSG_LEN(8) } as usize;
        let buf = control(8, len, &[-1, 4]);
        assert_eq!(rights_in(&buf, len), vec![4]);
    }
}
