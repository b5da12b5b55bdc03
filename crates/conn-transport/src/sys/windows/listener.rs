//! `Listener` on Windows: a TCP socket, or a named pipe (AF_PIPE) kept as CPython's
//! `PipeListener` keeps it.

use std::io;
use std::net::TcpListener;
use std::os::windows::io::{AsRawSocket, FromRawHandle, OwnedHandle as StdOwnedHandle};
use std::sync::Arc;
use std::time::Duration;

use conn_address::{Address, Host};
use windows_sys::Win32::Foundation::CloseHandle;
use windows_sys::Win32::Networking::WinSock::{FD_ACCEPT, SOCKET};
use windows_sys::Win32::Storage::FileSystem::PIPE_ACCESS_DUPLEX;
use windows_sys::Win32::System::Pipes::PIPE_UNLIMITED_INSTANCES;

use super::calls::{self, Event};
use super::probe::{AcceptState, PipeAccept, Probe, Raw, Source};
use super::stream::Stream;
use super::stream::{create_instance, socket_probe};
use crate::common::{resolve_ipv4, unsupported};
use crate::os::StreamKind;
use crate::{Handle, deadline_after, time_left};

/// A TCP socket bound to `target` and listening with `backlog` or 128, whichever is more
/// (std's `bind` always asks 128), not inheritable.
fn listen_tcp(target: std::net::SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(target), Type::STREAM, None)?;
    socket.bind(&target.into())?;
    socket.listen(backlog.max(128))?;
    Ok(socket.into())
}

#[derive(Debug)]
enum Inner {
    Tcp(TcpListener),
    Pipe,
}

/// A listening TCP socket or named pipe.
///
/// A pipe listener keeps two instances of its pipe, as CPython's `PipeListener` does: the
/// front one waits for the next client (one `ConnectNamedPipe` always pending), the spare lets
/// another client connect meanwhile; a client that finds both taken waits (`WaitNamedPipe`)
/// until `accept` makes a new one. The first instance is created with
/// `FILE_FLAG_FIRST_PIPE_INSTANCE`, so a second listener on the same name fails (Windows
/// refuses it; Wine 8 does not). A client that connected and went before `accept`
/// (`ERROR_NO_DATA`) is still handed out: its connection reads end of file.
#[derive(Debug)]
pub(crate) struct Listener {
    /// First, so that it is shut before the socket closes.
    probe: ShutProbe,
    inner: Inner,
    address: Address,
}

#[derive(Debug)]
struct ShutProbe(Arc<Probe>);

impl Drop for ShutProbe {
    fn drop(&mut self) {
        self.0.shut();
    }
}

impl Listener {
    /// Binds and listens on `address`: TCP with `backlog`, but never less than std's 128
    /// (Windows refuses a client beyond the backlog outright, where Linux lets it try again, so
    /// CPython's default of 1 would turn a burst of clients away), or a named pipe (`backlog`
    /// is not used, as in CPython).
    pub(crate) fn bind(address: &Address, backlog: i32) -> io::Result<Self> {
        address
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        match address {
            Address::Inet { host, port } => {
                let target = match host {
                    Host::Ip(ip) => (*ip, *port).into(),
                    Host::Name(name) => resolve_ipv4(name, *port)?[0],
                };
                let listener = listen_tcp(target, backlog)?;
                let probe = socket_probe(listener.as_raw_socket() as SOCKET, FD_ACCEPT)?;
                listener.set_nonblocking(true)?;
                let bound = Address::from(listener.local_addr()?);
                Ok(Self {
                    probe: ShutProbe(Arc::new(probe)),
                    inner: Inner::Tcp(listener),
                    address: bound,
                })
            }
            Address::Pipe(name) => {
                let wide = calls::wide(name);
                let front = create_instance(
                    &wide,
                    PIPE_ACCESS_DUPLEX,
                    true,
                    PIPE_UNLIMITED_INSTANCES,
                    false,
                )?;
                let spare = match create_instance(
                    &wide,
                    PIPE_ACCESS_DUPLEX,
                    false,
                    PIPE_UNLIMITED_INSTANCES,
                    false,
                ) {
                    Ok(h) => h,
                    Err(e) => {
                        // SAFETY: the instance just made, ours and idle.
                        unsafe { CloseHandle(front) };
                        return Err(e);
                    }
                };
                let event = Event::new()?;
                let accept = PipeAccept::new(wide, front, Some(spare), &event);
                let probe = Probe::new(event, Source::Accept(accept));
                probe.arm();
                Ok(Self {
                    probe: ShutProbe(Arc::new(probe)),
                    inner: Inner::Pipe,
                    address: address.clone(),
                })
            }
            Address::UnixPath(_) | Address::UnixAbstract(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "AF_UNIX is not available on Windows",
            )),
            _ => Err(unsupported(address)),
        }
    }

    /// The bound address (for TCP port 0, the port the OS chose).
    pub(crate) fn address(&self) -> &Address {
        &self.address
    }

    /// Accepts one connection, waiting at most `timeout` (`None`: forever); `TimedOut` after.
    pub(crate) fn accept(
        &self,
        timeout: Option<Duration>,
    ) -> io::Result<(Stream, Option<Address>)> {
        let deadline = deadline_after(timeout);
        loop {
            if let Some(accepted) = self.try_accept()? {
                return Ok(accepted);
            }
            self.probe.0.arm();
            let left = time_left(deadline);
            if left.is_some_and(|l| l.is_zero()) || !calls::wait_one(self.probe.0.event(), left)? {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
    }

    /// Accepts one connection if a client is waiting, without blocking.
    pub(crate) fn try_accept(&self) -> io::Result<Option<(Stream, Option<Address>)>> {
        match &self.inner {
            Inner::Tcp(l) => match l.accept() {
                Ok((s, peer)) => Ok(Some((Stream::tcp(s)?, Some(Address::from(peer))))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e),
            },
            Inner::Pipe => {
                let taken = self.probe.0.with_accept(|a, event| {
                    if a.front.is_none() {
                        // Making an instance failed last time (out of handles): try again.
                        a.next_instance(new_instance);
                    }
                    a.settle();
                    if a.state == AcceptState::Idle {
                        a.start(event);
                        a.settle();
                    }
                    match a.state {
                        AcceptState::Connected => {
                            let front = a.front.take();
                            a.next_instance(new_instance);
                            a.start(event);
                            Ok(front)
                        }
                        AcceptState::Failed(code) => {
                            // That instance is unusable: replace it, report the error once.
                            if let Some(h) = a.front.take() {
                                // SAFETY: our idle instance.
                                unsafe { CloseHandle(h.0) };
                            }
                            a.next_instance(new_instance);
                            Err(io::Error::from_raw_os_error(code as i32))
                        }
                        AcceptState::Idle | AcceptState::Pending => Ok(None),
                    }
                })?;
                match taken {
                    Some(h) => {
                        // SAFETY: the connected instance, handed over from the listener.
                        let owned = unsafe { StdOwnedHandle::from_raw_handle(h.0) };
                        Ok(Some((
                            Stream::pipe_end(owned, StreamKind::MessagePipe)?,
                            None,
                        )))
                    }
                    None => Ok(None),
                }
            }
        }
    }

    /// There is no socket file on Windows: nothing to remove.
    pub(crate) fn remove_socket_file(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Closes the listener (its socket, or every instance of its pipe).
    pub(crate) fn close(self) -> io::Result<()> {
        drop(self);
        Ok(())
    }

    /// The handle readiness watches: ready when a client waits.
    pub(crate) fn handle(&self) -> Handle<'_> {
        Handle::probe(&self.probe.0)
    }
}

/// A further instance of the listener's pipe (`None` if the OS refuses one now).
fn new_instance(name: &[u16]) -> Option<Raw> {
    create_instance(
        name,
        PIPE_ACCESS_DUPLEX,
        false,
        PIPE_UNLIMITED_INSTANCES,
        false,
    )
    .ok()
    .map(Raw)
}
