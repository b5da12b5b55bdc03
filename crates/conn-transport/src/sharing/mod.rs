//! Connections and handles handed to another process as CPython hands them: the process's
//! authentication key and its resource sharer.
//!
//! CPython pickles a `Connection` as a call that rebuilds it, around a wrapper that says where
//! the receiver gets the OS handle (`multiprocessing/connection.py`: `reduce_connection`,
//! `reduce_pipe_connection`; `reduction.py`: `DupFd`, `DupHandle`; `resource_sharer.py`):
//!
//! - **Unix**: the sender duplicates the descriptor and registers it with its *resource
//!   sharer*, a `Listener` on a Unix socket served by a background thread and authenticated
//!   with the process's key (`current_process().authkey`). The pickle names the sharer's
//!   address and a key number. The receiver connects with *its* process key, sends
//!   `(key, pid)`, and gets the descriptor by `SCM_RIGHTS`. A resource can be claimed once.
//! - **Windows sockets**: the same, the sharer sending `WSADuplicateSocketW` bytes made for
//!   the claimer's pid.
//! - **Windows pipes**: no sharer: the pickle names the handle and the sender's pid, and the
//!   receiver takes the handle out of the sender (`DuplicateHandle` with
//!   `DUPLICATE_CLOSE_SOURCE`).
//!
//! [`Connection::send_connection`](crate::Connection::send_connection) and
//! [`recv_connection`](crate::Connection::recv_connection) speak exactly that, with a Python
//! peer or a Rust one. Both sides must hold the same key: the sharer admits only clients that
//! prove it, and a receiver proves its own. A Python process's key is
//! `multiprocessing.current_process().authkey` (random in a main process, inherited by its
//! children); give a Rust process the same bytes with [`set_authkey`]. A Rust process's
//! default key is 32 random bytes, as CPython's main process has, so nothing is shared with
//! anyone until a key is set.
//!
//! conn's sharer is one thread, started on first use, that serves one claim at a time: every
//! client authenticates before the thread sees it (the listener runs handshakes concurrently,
//! with their own deadline), and a claim must arrive within [`CLAIM_TIMEOUT`]. It holds at
//! most [`max_pending`] unclaimed resources ([`DEFAULT_MAX_PENDING`] unless set); a hand-over
//! beyond that is refused ([`Error::SharerFull`]). [`stop`] closes it and every unclaimed
//! resource, as CPython's `resource_sharer.stop()`.
//!
//! Receiving trusts the peer as CPython does: the receiver connects to the address the pickle
//! names (only a Unix socket, or a named pipe on Windows, is accepted) and proves its key
//! there, and on Windows adopts the handle value it is given. Take connections only from
//! peers trusted with the key.

pub mod wire;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use conn_address::Address;
use conn_auth::AuthKey;

use crate::{Client, Connection, Error, Listener, OwnedHandle, Result};

/// How many unclaimed resources the sharer holds unless [`set_max_pending`] says otherwise.
pub const DEFAULT_MAX_PENDING: usize = 1024;

/// How long the sharer waits for an authenticated client's claim, and for the claimer to take
/// what it sends.
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the sharer's thread looks whether it was asked to stop, besides being woken.
const STOP_CHECK: Duration = Duration::from_secs(5);

/// The process-wide state: the key, the sharer (if running) and what it holds.
struct Registry {
    key: Option<AuthKey>,
    running: Option<Running>,
    entries: BTreeMap<u64, OwnedHandle>,
    next_key: u64,
    max_pending: usize,
}

struct Running {
    address: Address,
    text: String,
    key: AuthKey,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    key: None,
    running: None,
    entries: BTreeMap::new(),
    next_key: 0,
    max_pending: DEFAULT_MAX_PENDING,
});

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    fn key(&mut self) -> Result<AuthKey> {
        if let Some(key) = &self.key {
            return Ok(key.clone());
        }
        let mut bytes = vec![0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::Io(std::io::Error::other(e)))?;
        let key = AuthKey::new(bytes);
        self.key = Some(key.clone());
        Ok(key)
    }
}

/// The process's key (CPython's `current_process().authkey`): what the sharer requires of its
/// clients and what this process proves when it claims a resource from another's sharer.
/// Unless set, 32 random bytes chosen on first use.
pub fn authkey() -> Result<AuthKey> {
    registry().key()
}

/// Sets the process's key (see [`authkey`]); for a Python peer, its
/// `multiprocessing.current_process().authkey`. A sharer already running keeps the key it
/// started with until [`stop`]ped; the next hand-over starts one with this key.
pub fn set_authkey(key: impl Into<AuthKey>) {
    registry().key = Some(key.into());
}

/// The sharer's address while it runs.
pub fn address() -> Option<Address> {
    registry().running.as_ref().map(|r| r.address.clone())
}

/// How many handed-over resources wait to be claimed.
pub fn pending() -> usize {
    registry().entries.len()
}

/// The most unclaimed resources the sharer holds (see [`set_max_pending`]).
pub fn max_pending() -> usize {
    registry().max_pending
}

/// Sets how many unclaimed resources the sharer may hold; a hand-over beyond it is refused
/// with [`Error::SharerFull`] and nothing is sent. Those already held stay.
pub fn set_max_pending(max: usize) {
    registry().max_pending = max;
}

/// Stops the sharer (if it runs): closes its listener, waits for its thread, and closes every
/// resource not yet claimed, whose claims then fail. The next hand-over starts a new one, with
/// the key set then. CPython's `resource_sharer.stop()`.
pub fn stop() -> Result<()> {
    let (running, entries) = {
        let mut registry = registry();
        let entries = std::mem::take(&mut registry.entries);
        (registry.running.take(), entries)
    };
    drop(entries);
    let Some(running) = running else {
        return Ok(());
    };
    running.stop.store(true, Ordering::SeqCst);
    // Wake its accept; if that fails, the thread looks at the flag within `STOP_CHECK`.
    let _ = Client::builder(running.address.clone())
        .authkey(running.key.clone())
        .timeout(Some(CLAIM_TIMEOUT))
        .handshake_timeout(Some(CLAIM_TIMEOUT))
        .connect();
    running.thread.join().map_err(|_| {
        Error::Io(std::io::Error::other(
            "the resource sharer's thread panicked",
        ))
    })
}

/// Registers `resource` with the sharer, starting it if needed: `(address, key)` for the
/// pickle.
fn register(resource: OwnedHandle) -> Result<(String, u64)> {
    let mut registry = registry();
    if registry.entries.len() >= registry.max_pending {
        return Err(Error::SharerFull {
            max: registry.max_pending,
        });
    }
    if registry.running.is_none() {
        let key = registry.key()?;
        registry.running = Some(start(key)?);
    }
    let text = registry
        .running
        .as_ref()
        .map(|r| r.text.clone())
        .unwrap_or_default();
    registry.next_key += 1;
    let key = registry.next_key;
    registry.entries.insert(key, resource);
    Ok((text, key))
}

/// Takes back (and closes) a resource whose pickle could not be sent.
fn withdraw(key: u64) {
    let resource = registry().entries.remove(&key);
    drop(resource);
}

/// At exit, removes the socket file of a sharer still running and its private directory (the
/// thread cannot close its listener then), as CPython removes its temporary directory: a
/// process that handed connections over and never called [`stop`] leaves nothing behind.
extern "C" fn remove_sharer_socket() {
    // Another thread may hold the registry as the process exits: then leave it.
    let Ok(registry) = REGISTRY.try_lock() else {
        return;
    };
    if let Some(Address::UnixPath(path)) = registry.running.as_ref().map(|r| &r.address) {
        let _ = std::fs::remove_file(path);
        if let Some(dir) = path.parent() {
            // Only the private directory made for it, and only if now empty.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn start(key: AuthKey) -> Result<Running> {
    static CLEANUP: std::sync::Once = std::sync::Once::new();
    CLEANUP.call_once(|| {
        crate::sys::calls::at_exit(remove_sharer_socket);
    });
    let listener = Listener::builder()
        .authkey(key.clone())
        .backlog(128)
        .accept_timeout(Some(STOP_CHECK))
        .handshake_timeout(Some(CLAIM_TIMEOUT))
        .bind()?;
    let address = listener.address().clone();
    let text = address_text(&address)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("conn resource sharer".into())
        .spawn(move || serve(listener, &flag))
        .map_err(Error::Io)?;
    Ok(Running {
        address,
        text,
        key,
        stop,
        thread,
    })
}

fn serve(mut listener: Listener, stop: &AtomicBool) {
    crate::sys::calls::block_signals_in_this_thread();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok(mut conn) => {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                // A failed claim only fails its claimer, who sees the connection close.
                let _ = serve_claim(&mut conn);
            }
            Err(Error::ListenerClosed) => break,
            Err(Error::Timeout { .. } | Error::OutOfFds(_)) => {}
            // Whatever else the OS says, do not spin on it.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let _ = listener.close();
}

fn serve_claim(conn: &mut Connection) -> Result<()> {
    conn.set_read_timeout(Some(CLAIM_TIMEOUT));
    conn.set_write_timeout(Some(CLAIM_TIMEOUT));
    let request = conn.recv_bytes_max(wire::MAX_HANDOVER_PICKLE)?;
    // `None` is CPython's way of stopping its own sharer; ours stops with `stop()` only.
    let Some((key, pid)) = wire::parse_claim(&request)? else {
        return Ok(());
    };
    let Some(resource) = registry().entries.remove(&key) else {
        // Unknown or claimed already: closing tells the claimer.
        return Ok(());
    };
    send_resource(conn, &resource, pid)
}

#[cfg(unix)]
fn send_resource(conn: &mut Connection, resource: &OwnedHandle, _pid: u32) -> Result<()> {
    conn.send_handle(resource.handle())
}

#[cfg(windows)]
fn send_resource(conn: &mut Connection, resource: &OwnedHandle, pid: u32) -> Result<()> {
    let share = crate::sys::share::share_socket(resource, pid)?;
    conn.send_bytes(&share)
}

/// Connects to the sharer at `address` with this process's key and claims `key`; the sharer's
/// answer (a descriptor, or socket bytes) is the caller's to read. `timeout` bounds
/// connecting, the handshake and each later send and receive.
fn claim(address: &str, key: u64, timeout: Option<Duration>) -> Result<Connection> {
    let address = sharer_address(address)?;
    let mut builder = Client::builder(address).authkey(authkey()?);
    if timeout.is_some() {
        builder = builder.timeout(timeout).handshake_timeout(timeout);
    }
    let mut conn = builder.connect()?;
    conn.set_read_timeout(timeout);
    conn.set_write_timeout(timeout);
    conn.send_bytes(&wire::claim_pickle(key, std::process::id()))?;
    Ok(conn)
}

/// What a claim's end of file means: the sharer had nothing under that key.
fn not_shared(e: Error, key: u64) -> Error {
    match e {
        Error::Eof => Error::NotShared { key },
        e => e,
    }
}

/// An address as CPython's `Listener.address` gives it, for the pickle.
fn address_text(address: &Address) -> Result<String> {
    let text = match address {
        Address::UnixPath(path) => path.to_str().map(str::to_owned),
        Address::UnixAbstract(name) => std::str::from_utf8(name).ok().map(|n| format!("\0{n}")),
        Address::Pipe(name) => Some(name.clone()),
        _ => None,
    };
    text.ok_or_else(|| {
        Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the resource sharer's address is not text",
        ))
    })
}

/// A sharer's address from a pickle: a Unix socket (a path, or `"\0name"`) on Unix, a named
/// pipe on Windows; never TCP, so that a peer cannot send this process to a network service.
fn sharer_address(text: &str) -> Result<Address> {
    // CPython's reading of a `str` address, which never makes a TCP one; and only the family
    // a sharer listens on here (CPython's is its default family too).
    match Address::from_python_str(text)? {
        address if address.family() == conn_address::default_family() => Ok(address),
        _ => Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "a resource sharer at {:?}, which is not a local socket or pipe",
                conn_pickle::escape_text(text)
            ),
        ))),
    }
}

/// A connection's handle made ready to go to another process: the pickle to send, and the
/// handle held (in the sharer, or lent on Windows) until the pickle is sent. Dropped before
/// [`sent`](Self::sent), it takes the handle back and closes it. For shells of the connection
/// layer (conn-tokio's); the blocking connection uses it through `send_connection`.
#[doc(hidden)]
pub struct Handover {
    pickle: Vec<u8>,
    held: Option<Held>,
}

enum Held {
    Registered(u64),
    #[cfg(windows)]
    Lent(crate::sys::share::LentPipe),
}

impl Handover {
    /// Prepares `handle`, a connection's with these directions: registers it with the sharer
    /// (starting it) or, for a Windows pipe end, lends it.
    pub fn prepare(handle: OwnedHandle, readable: bool, writable: bool) -> Result<Self> {
        #[cfg(windows)]
        let handle = match crate::sys::share::lend_pipe(handle, readable, writable)? {
            Ok(lent) => {
                return Ok(Self {
                    pickle: wire::connection_pickle(lent.wrapped(), readable, writable),
                    held: Some(Held::Lent(lent)),
                });
            }
            Err(socket) => socket,
        };
        let (address, key) = register(handle)?;
        let wrapped = if cfg!(windows) {
            wire::Wrapped::SharedSocket { address, key }
        } else {
            wire::Wrapped::SharedFd { address, key }
        };
        Ok(Self {
            pickle: wire::connection_pickle(&wrapped, readable, writable),
            held: Some(Held::Registered(key)),
        })
    }

    /// The message to send: CPython's pickle of the connection.
    pub fn pickle(&self) -> &[u8] {
        &self.pickle
    }

    /// The pickle was sent: the handle is the peer's to claim.
    pub fn sent(mut self) {
        #[cfg(windows)]
        if let Some(Held::Lent(lent)) = self.held.take() {
            lent.leave_to_peer();
        }
        self.held = None;
    }
}

impl Drop for Handover {
    fn drop(&mut self) {
        // A lent pipe handle not left to the peer closes with it.
        if let Some(Held::Registered(key)) = self.held.take() {
            withdraw(key);
        }
    }
}

/// Sends `handle`, a connection's, over `via` as CPython pickles a connection (see the module
/// docs). On failure nothing stays registered and the handle is closed.
pub(crate) fn hand_over<C: conn_framing::Codec>(
    via: &mut Connection<C>,
    handle: OwnedHandle,
    readable: bool,
    writable: bool,
) -> Result<()> {
    let handover = Handover::prepare(handle, readable, writable)?;
    via.send_bytes(handover.pickle())?;
    handover.sent();
    Ok(())
}

/// Gets the stream of a handed connection: claims it from the sharer the pickle names, or on
/// Windows takes the pipe handle it names out of its process (only out of `peer`, the process
/// at the other end of the pipe it came over, when known). `timeout` bounds each step. For
/// shells of the connection layer; blocking (it connects to the sharer).
#[doc(hidden)]
pub fn take_connection(
    handed: &wire::HandedConnection,
    peer: Option<u32>,
    timeout: Option<Duration>,
) -> Result<crate::os::Stream> {
    let _ = peer;
    match &handed.wrapped {
        #[cfg(unix)]
        wire::Wrapped::SharedFd { address, key } => {
            let mut sharer = claim(address, *key, timeout)?;
            let handle = sharer.recv_handle().map_err(|e| not_shared(e, *key))?;
            Ok(crate::os::Stream::try_from(handle)?)
        }
        #[cfg(windows)]
        wire::Wrapped::SharedSocket { address, key } => {
            let mut sharer = claim(address, *key, timeout)?;
            let share = sharer
                .recv_bytes_max(wire::MAX_HANDOVER_PICKLE)
                .map_err(|e| not_shared(e, *key))?;
            crate::sys::share::socket_stream(&share)
        }
        #[cfg(windows)]
        wire::Wrapped::Handle {
            handle,
            access,
            pid,
        } => crate::sys::share::take_pipe(
            peer,
            *handle,
            *access,
            *pid,
            handed.readable,
            handed.writable,
        ),
        other => Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!(
                "a connection handed over as {} cannot be taken on this OS",
                match other {
                    wire::Wrapped::SharedFd { .. } => "a Unix descriptor (resource_sharer.DupFd)",
                    wire::Wrapped::SharedSocket { .. } =>
                        "a Windows socket (resource_sharer.DupSocket)",
                    wire::Wrapped::Handle { .. } => "a Windows handle (reduction.DupHandle)",
                }
            ),
        ))),
    }
}

/// Where a Windows `send_handle` without a pid sends: `peer`, the process at the other end of
/// the connection's named pipe; over a socket it is not known (`InvalidInput`). For shells of
/// the connection layer.
#[doc(hidden)]
#[cfg(windows)]
pub fn handle_destination(peer: Option<u32>) -> Result<u32> {
    peer.ok_or_else(|| {
        Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the receiver's process is not known over a socket: use send_handle_to",
        ))
    })
}

/// Windows `send_handle` to process `pid`: duplicates `handle` into it and returns the pickled
/// `DupHandle` to send (CPython's `reduction.send_handle`). For shells of the connection layer.
#[doc(hidden)]
#[cfg(windows)]
pub fn send_handle_pickle(handle: crate::Handle<'_>, pid: u32) -> Result<Vec<u8>> {
    let value = crate::sys::share::duplicate_into(handle, pid)?;
    Ok(wire::handle_pickle(
        value,
        crate::sys::share::SEND_HANDLE_ACCESS,
        pid,
    ))
}

/// Windows `recv_handle`: the handle a pickled `DupHandle` names, made this process's (taken
/// only out of `peer`, when known, if it names another process). For shells of the connection
/// layer.
#[doc(hidden)]
#[cfg(windows)]
pub fn handle_from_pickle(message: &[u8], peer: Option<u32>) -> Result<OwnedHandle> {
    let (handle, access, pid) = wire::parse_handle(message)?;
    Ok(OwnedHandle::from_object(crate::sys::share::take_handle(
        handle, access, pid, peer,
    )?))
}
