//! `Listener`: CPython's `multiprocessing.connection.Listener`, with timeouts.

#[cfg(unix)]
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::os::{self, Poller, Ready, is_out_of_fds};
use crate::{Handle, OwnedHandle, deadline_after, time_left};
use conn_address::{
    Address, AddressError, Family, PrivateSocketDir, arbitrary_address, default_family,
};
use conn_auth::{AuthKey, MAX_HANDSHAKE_MESSAGE, Policy, Progress, ServerHandshake};
use conn_framing::{Codec, UNLIMITED};

use crate::into_address::check_family;
use crate::scheduler::Scheduler;
use crate::slab::Key;
use crate::{Connection, DefaultCodec, Error, IntoAddress, Operation, Result};

/// How long an accepted client may take to authenticate, by default (CPython's
/// `CONNECTION_TIMEOUT`, 20 s; CPython itself waits forever).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a handshake write may wait for room: a fresh socket takes a handshake message
/// (under 300 bytes) at once, so a client that cannot is dropped rather than waited for.
const HANDSHAKE_WRITE_WAIT: Duration = Duration::from_millis(5);
/// The same for a named pipe: its buffer (64 KiB, empty at the start) always takes a handshake
/// message, but Wine completes a pipe write asynchronously, which under load took over 5 ms.
const PIPE_HANDSHAKE_WRITE_WAIT: Duration = Duration::from_secs(1);
/// The poller key of the listening socket; a handshake in progress has its key's token (never
/// this one).
const LISTENER_KEY: usize = usize::MAX;
/// Clients accepted per round before pending handshakes get their turn.
const ACCEPTS_PER_ROUND: usize = 64;
/// How many clients may be authenticating at once, by default (see
/// [`ListenerBuilder::max_pending_handshakes`]).
pub const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 256;
/// How many reasons for failed handshakes a listener keeps for
/// [`Listener::take_handshake_failures`]; older ones are dropped and counted.
pub const KEPT_HANDSHAKE_FAILURES: usize = crate::scheduler::KEPT_FAILURES;

/// A server socket that accepts connections (CPython's `Listener`).
///
/// With an authkey, [`accept`](Self::accept) returns authenticated connections, as CPython's
/// does, but no client can stall it: every pending handshake is driven concurrently (non-blocking
/// reads and writes on one poller, no threads), each under its own deadline for the whole
/// handshake ([`DEFAULT_HANDSHAKE_TIMEOUT`]), and `accept` returns the first connection whose
/// handshake succeeds. A client that connects and says nothing, or drips one byte a second,
/// only holds its own slot until its deadline. Failed handshakes are dropped and counted
/// ([`handshake_failures`](Self::handshake_failures)). When the process runs out of file
/// descriptors, `accept` backs off before reporting [`Error::OutOfFds`], so a serve loop never
/// spins, and accepts again once descriptors are freed.
///
/// A Unix listener with no address given lives in a fresh private directory; `close()` (or
/// dropping the listener) removes the socket file it created and that directory. Abstract names
/// leave nothing to remove.
#[derive(Debug)]
pub struct Listener<C = DefaultCodec> {
    inner: Option<os::Listener>,
    address: Address,
    private_dir: Option<PrivateSocketDir>,
    accept_timeout: Option<Duration>,
    last_accepted: Option<Address>,
    /// The accept machinery, behind a lock only so that `wait`, which borrows, can let it finish
    /// what it can (`accept` and a `WaitSet` reach it without locking).
    core: Mutex<Core<C>>,
    /// The core's poller handle (a duplicate, readable when it has something to report).
    poller_fd: OwnedHandle,
}

/// What accepting needs besides the socket.
#[derive(Debug)]
struct Core<C> {
    authkey: Option<AuthKey>,
    policy: Policy,
    handshake_timeout: Option<Duration>,
    max_message: u64,
    codec: C,
    accepting: Accepting<C>,
}

/// The accept machinery: the poller and the sans-IO engine (handshakes in progress, deadlines,
/// backoff, connections ready to return, failures).
#[derive(Debug)]
struct Accepting<C> {
    poller: Poller,
    events: Vec<Ready>,
    engine: Scheduler<Handshaking<C>, (Connection<C>, Option<Address>)>,
}

/// One client's handshake in progress.
#[derive(Debug)]
struct Handshaking<C> {
    conn: Connection<C>,
    machine: ServerHandshake,
    peer: Option<Address>,
}

/// Settings for a [`Listener`] (CPython's `Listener(address, family, backlog, authkey)` and
/// more).
#[derive(Debug)]
#[must_use = "a ListenerBuilder does nothing until `bind` is called"]
pub struct ListenerBuilder<C = DefaultCodec> {
    address: Option<Result<Address, AddressError>>,
    family: Option<Family>,
    backlog: i32,
    authkey: Option<AuthKey>,
    policy: Policy,
    accept_timeout: Option<Duration>,
    handshake_timeout: Option<Duration>,
    max_message: u64,
    max_pending: usize,
    codec: C,
}

impl Listener<DefaultCodec> {
    /// Binds `address` with CPython's defaults: backlog 1, no authkey, the default codec.
    pub fn bind(address: impl IntoAddress) -> Result<Self> {
        Self::builder().address(address).bind()
    }

    /// A builder; with no address set, `bind` picks a fresh one of the family
    /// (default: [`default_family`]).
    pub fn builder() -> ListenerBuilder<DefaultCodec> {
        ListenerBuilder {
            address: None,
            family: None,
            backlog: 1,
            authkey: None,
            policy: Policy::default(),
            accept_timeout: None,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
            max_message: UNLIMITED,
            max_pending: DEFAULT_MAX_PENDING_HANDSHAKES,
            codec: DefaultCodec::default(),
        }
    }
}

impl<C> ListenerBuilder<C> {
    /// The address to bind (CPython's `address`).
    pub fn address(mut self, address: impl IntoAddress) -> Self {
        self.address = Some(address.into_address());
        self
    }

    /// The family (CPython's `family`); with no address, a fresh address of it is picked. An address of another
    /// family is an error.
    pub fn family(mut self, family: Family) -> Self {
        self.family = Some(family);
        self
    }

    /// The listen backlog (CPython's default is 1).
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Authenticate every accepted connection with this key (CPython's `authkey`). An empty key is a key, as in
    /// CPython ≥ 3.13.
    pub fn authkey(mut self, key: impl Into<AuthKey>) -> Self {
        self.authkey = Some(key.into());
        self
    }

    /// The handshake policy (digest to challenge with, weakest digest accepted).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// How long `accept` waits for a client (default: forever, as CPython).
    pub fn accept_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.accept_timeout = timeout;
        self
    }

    /// How long an accepted client has to authenticate (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]; `None`: forever, as CPython).
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The longest message accepted connections receive (default: unlimited, as CPython).
    pub fn max_message(mut self, max: u64) -> Self {
        self.max_message = max;
        self
    }

    /// How many clients may be authenticating at once (default
    /// [`DEFAULT_MAX_PENDING_HANDSHAKES`]). Each holds a descriptor and a small buffer until it
    /// authenticates, fails or reaches the handshake timeout; a client that connects while
    /// this many are pending is closed at once and counted among the failures
    /// ([`Error::TooManyPendingHandshakes`]), so a flood of connections costs at most this many
    /// descriptors, and a client that comes when a slot is free gets through. Only with an
    /// authkey (without one, `accept` returns clients as they come).
    pub fn max_pending_handshakes(mut self, max: usize) -> Self {
        self.max_pending = max;
        self
    }

    /// The codec of accepted connections.
    pub fn codec<D>(self, codec: D) -> ListenerBuilder<D> {
        ListenerBuilder {
            address: self.address,
            family: self.family,
            backlog: self.backlog,
            authkey: self.authkey,
            policy: self.policy,
            accept_timeout: self.accept_timeout,
            handshake_timeout: self.handshake_timeout,
            max_message: self.max_message,
            max_pending: self.max_pending,
            codec,
        }
    }

    /// Binds and listens: CPython's `Listener(address, family, backlog, authkey)`.
    pub fn bind(self) -> Result<Listener<C>> {
        let mut private_dir = None;
        let address = match self.address {
            Some(address) => {
                let address = address?;
                check_family(self.family, &address)?;
                address
            }
            None => match self.family.unwrap_or_else(default_family).validate()? {
                Family::Unix => {
                    let dir = PrivateSocketDir::create()?;
                    let address = dir.address();
                    private_dir = Some(dir);
                    address
                }
                family => arbitrary_address(family)?,
            },
        };
        let inner = os::Listener::bind(&address, self.backlog)?;
        let mut poller = Poller::new()?;
        poller.add(inner.handle(), LISTENER_KEY)?;
        let poller_fd = poller.handle().try_clone_to_owned()?;
        Ok(Listener {
            core: Mutex::new(Core {
                authkey: self.authkey,
                policy: self.policy,
                handshake_timeout: self.handshake_timeout,
                max_message: self.max_message,
                codec: self.codec,
                accepting: Accepting {
                    poller,
                    events: Vec::new(),
                    engine: {
                        let mut engine = Scheduler::new(self.max_pending);
                        engine.listener_readable();
                        engine
                    },
                },
            }),
            poller_fd,
            address: inner.address().clone(),
            inner: Some(inner),
            private_dir,
            accept_timeout: self.accept_timeout,
            last_accepted: None,
        })
    }
}

impl<C: Codec + Clone> Listener<C> {
    /// Accepts one connection (CPython's `accept()`), authenticated if the listener has an
    /// authkey: the first client whose handshake succeeds, however many others are pending.
    /// Waits at most the accept timeout ([`Error::Timeout`]).
    ///
    /// Errors are the listener's own: closed, out of descriptors ([`Error::OutOfFds`], after a
    /// backoff), or the OS's. A client's failed handshake is not an error of `accept`: it is
    /// dropped and counted, and `accept` goes on.
    pub fn accept(&mut self) -> Result<Connection<C>> {
        let inner = self.inner.as_ref().ok_or(Error::ListenerClosed)?;
        let core = self.core.get_mut().unwrap_or_else(PoisonError::into_inner);
        let (conn, peer) = core.accept(inner, self.accept_timeout)?;
        self.last_accepted = peer;
        Ok(conn)
    }
}

impl<C: Codec + Clone> Core<C> {
    fn accept(
        &mut self,
        inner: &os::Listener,
        accept_timeout: Option<Duration>,
    ) -> Result<(Connection<C>, Option<Address>)> {
        let deadline = deadline_after(accept_timeout);
        loop {
            if let Some(ready) = self.accepting.engine.pop_ready() {
                return Ok(ready);
            }
            let left = time_left(deadline);
            if left.is_some_and(|l| l.is_zero()) {
                return Err(Error::Timeout {
                    operation: Operation::Accept,
                });
            }
            if let Some((e, until)) = self.drive(inner, left.or(accept_timeout))? {
                // Out of descriptors: wait out the backoff (pending handshakes go on), then
                // report it.
                while !self.accepting.engine.has_ready() {
                    let wait = time_left(Some(until)).unwrap_or_default();
                    let wait = time_left(deadline).map_or(wait, |l| l.min(wait));
                    if wait.is_zero() {
                        break;
                    }
                    self.drive_pending(Some(wait))?;
                }
                if !self.accepting.engine.has_ready() {
                    return Err(Error::OutOfFds(e));
                }
            }
        }
    }

    /// Takes in new clients and advances pending handshakes without waiting; true if
    /// [`accept`](Self::accept) would now return at once.
    fn pump_accept(&mut self, inner: &os::Listener) -> Result<bool> {
        if !self.accepting.engine.has_ready() {
            // Out of descriptors is reported by accept, which backs off first.
            let _ = self.drive(inner, Some(Duration::ZERO))?;
        }
        Ok(self.accepting.engine.has_ready())
    }

    /// One round: accept waiting clients (unless backing off), wait at most `wait` for
    /// events (less if a handshake's deadline comes first), advance the handshakes that have
    /// something to read, drop the expired ones. Returns the out-of-descriptors error, with the
    /// end of the backoff, if accepting hit it.
    fn drive(&mut self, inner: &os::Listener, wait: Option<Duration>) -> Result<OutOfFds> {
        let mut out_of_fds = self.accept_waiting(inner)?;
        let wait = if !self.accepting.engine.has_ready() && out_of_fds.is_none() {
            wait
        } else {
            Some(Duration::ZERO)
        };
        let reported = self.drive_pending(wait)?;
        // The socket was reported in this round: take its clients now (a pump has one round).
        if out_of_fds.is_none() && reported {
            out_of_fds = self.accept_waiting(inner)?;
        }
        Ok(out_of_fds)
    }

    /// Accepts the clients waiting in the backlog, up to a round's worth, if the engine says
    /// accepting may be tried now.
    fn accept_waiting(&mut self, inner: &os::Listener) -> Result<OutOfFds> {
        let now = Instant::now();
        if !self.accepting.engine.may_accept(now) {
            return Ok(None);
        }
        for _ in 0..ACCEPTS_PER_ROUND {
            match inner.try_accept() {
                Ok(Some((stream, peer))) => {
                    self.accepting.engine.accepted();
                    self.admit(stream, peer);
                }
                Ok(None) => {
                    self.accepting.engine.accepted();
                    self.accepting.engine.drained();
                    return Ok(None);
                }
                Err(e) if is_out_of_fds(&e) => {
                    let until = self.accepting.engine.out_of_fds(now);
                    return Ok(Some((e, until)));
                }
                Err(e) => return Err(Error::from_io(e, Operation::Accept)),
            }
        }
        // A full round: clients may still wait; be reported again.
        let _ = self
            .accepting
            .poller
            .rearm_now(inner.handle(), LISTENER_KEY);
        Ok(None)
    }

    /// A new client: ready at once without an authkey, otherwise its handshake starts.
    fn admit(&mut self, stream: os::Stream, peer: Option<Address>) {
        let mut conn = Connection::from_stream(stream, self.codec.clone());
        conn.set_max_message(self.max_message);
        if self.authkey.is_none() {
            self.accepting.engine.push_ready((conn, peer));
            return;
        }
        // Until it has authenticated, a client cannot make us hold a descriptor: any it sends
        // is closed by the kernel.
        conn.set_max_unclaimed_handles(0);
        let machine = match ServerHandshake::new(self.policy) {
            Ok(m) => m,
            Err(e) => {
                self.accepting.engine.fail(Error::Io(e));
                return;
            }
        };
        // Until authenticated, a message over 256 bytes is refused as soon as its header is in.
        conn.set_max_message(MAX_HANDSHAKE_MESSAGE as u64);
        conn.set_write_timeout(Some(if conn.keeps_messages() {
            PIPE_HANDSHAKE_WRITE_WAIT
        } else {
            HANDSHAKE_WRITE_WAIT
        }));
        let h = Handshaking {
            conn,
            machine,
            peer,
        };
        // Beyond the pending cap the client is closed at once (dropped), the others go on.
        let Ok(key) = self
            .accepting
            .engine
            .admit(h, deadline_after(self.handshake_timeout))
        else {
            return;
        };
        let Some(h) = self.accepting.engine.get_mut(key) else {
            return;
        };
        let challenge = h.machine.transmit();
        if let Err(e) = h.conn.send_all(&challenge) {
            self.accepting.engine.fail_pending(key, e);
            return;
        }
        let handle = h.conn.wait_handle_unchecked();
        if let Err(e) = self.accepting.poller.add(handle, key.token()) {
            self.accepting.engine.fail_pending(key, Error::Io(e));
        }
        // No read now: the client cannot have answered a challenge just sent, and bytes it sent
        // early are reported by the poller (a registration reports what is already readable).
    }

    /// Waits at most `wait` (less if a deadline comes first) for pending handshakes to have
    /// something to read, advances those, and drops the expired. True if the listening socket
    /// was reported.
    fn drive_pending(&mut self, wait: Option<Duration>) -> Result<bool> {
        let wait = self.accepting.engine.wait_limit(wait, Instant::now());
        let mut events = std::mem::take(&mut self.accepting.events);
        events.clear();
        self.accepting.poller.wait(&mut events, wait)?;
        let mut reported = false;
        for event in &events {
            if event.key() == LISTENER_KEY {
                self.accepting.engine.listener_readable();
                reported = true;
            } else if self.accepting.engine.on_readable(event.key()).is_some() {
                self.advance(Key::from_token(event.key()));
            }
        }
        self.accepting.events = events;
        for h in self.accepting.engine.expire(Instant::now()) {
            self.accepting.forget(&h);
        }
        Ok(reported)
    }

    /// Feeds a pending handshake every whole message that has arrived, then sends everything
    /// the machine queued in one write (a verdict and a response leave together, so Nagle's
    /// algorithm never holds the second behind the first).
    fn advance(&mut self, key: Key) {
        enum Next {
            Wait,
            Done,
            Fail(Error),
        }
        let Some(authkey) = &self.authkey else {
            return;
        };
        let Some(h) = self.accepting.engine.get_mut(key) else {
            return;
        };
        let mut out = Vec::new();
        let next = loop {
            match h.conn.try_recv_bytes() {
                Ok(Some(message)) => {
                    let step = h.machine.on_message(authkey, &message);
                    out.extend(h.machine.transmit());
                    match step {
                        Ok(Progress::Done) => break Next::Done,
                        // Another read now finds only what came with this one (a pipelining
                        // client's challenge), already buffered: the socket was drained, so
                        // anything later is reported by the poller.
                        Ok(_) if !h.conn.has_buffered_frame() => break Next::Wait,
                        Ok(_) => {}
                        Err(auth) => break Next::Fail(Error::Auth(auth)),
                    }
                }
                Ok(None) => break Next::Wait,
                Err(e) => break Next::Fail(e),
            }
        };
        let sent = h.conn.send_all(&out);
        match (next, sent) {
            (Next::Fail(e), _) | (_, Err(e)) => {
                if let Some(h) = self.accepting.engine.fail_pending(key, e) {
                    self.accepting.forget(&h);
                }
            }
            (Next::Wait, Ok(())) => {}
            (Next::Done, Ok(())) => {
                let Some(mut h) = self.accepting.engine.finish(key) else {
                    return;
                };
                self.accepting.forget(&h);
                h.conn
                    .set_max_unclaimed_handles(crate::DEFAULT_MAX_UNCLAIMED_HANDLES);
                h.conn.set_max_message(self.max_message);
                h.conn.set_write_timeout(None);
                self.accepting.engine.push_ready((h.conn, h.peer));
            }
        }
    }
}

/// What accepting reports when the process is out of descriptors: the error, and when the
/// backoff ends.
type OutOfFds = Option<(std::io::Error, Instant)>;

impl<C: Codec> Accepting<C> {
    /// Takes an ended handshake's connection off the poller.
    fn forget(&mut self, h: &Handshaking<C>) {
        let _ = self.poller.remove(h.conn.wait_handle_unchecked());
    }
}

impl<C> Listener<C> {
    /// The bound address (CPython's `address`): for TCP port 0, the port the OS chose.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The peer of the last accepted connection (CPython's `last_accepted`): a TCP peer's host
    /// and port; `None` before the first accept and for unnamed Unix peers (CPython's `''`).
    pub fn last_accepted(&self) -> Option<&Address> {
        self.last_accepted.as_ref()
    }

    /// Sets how long `accept` waits (`None`: forever, as CPython).
    pub fn set_accept_timeout(&mut self, timeout: Option<Duration>) {
        self.accept_timeout = timeout;
    }

    /// Sets how long each new client has to authenticate (`None`: forever).
    pub fn set_handshake_timeout(&mut self, timeout: Option<Duration>) {
        self.core_mut().handshake_timeout = timeout;
    }

    /// How many clients' handshakes have failed (wrong key, malformed messages, a peer that
    /// went away, or one that did not finish before the handshake timeout).
    pub fn handshake_failures(&self) -> u64 {
        self.core().accepting.engine.failures()
    }

    /// Why the oldest failed handshake not yet taken failed (taken: call it until `None` to
    /// see every kept reason, oldest first). Up to [`KEPT_HANDSHAKE_FAILURES`] reasons are kept;
    /// older ones are dropped and counted
    /// ([`handshake_failures_dropped`](Self::handshake_failures_dropped)).
    pub fn take_handshake_failure(&mut self) -> Option<Error> {
        self.core_mut().accepting.engine.take_failure()
    }

    /// Every kept reason for a failed handshake, oldest first (taken); see
    /// [`take_handshake_failure`](Self::take_handshake_failure).
    pub fn take_handshake_failures(&mut self) -> Vec<Error> {
        self.core_mut().accepting.engine.take_failures()
    }

    /// How many reasons for failed handshakes were dropped, oldest first, to keep at most
    /// [`KEPT_HANDSHAKE_FAILURES`] (every failure is still counted by
    /// [`handshake_failures`](Self::handshake_failures)).
    pub fn handshake_failures_dropped(&self) -> u64 {
        self.core().accepting.engine.failures_dropped()
    }

    /// How many clients are connected and still authenticating (at most the listener's
    /// [`max_pending_handshakes`](ListenerBuilder::max_pending_handshakes)).
    pub fn pending_handshakes(&self) -> usize {
        self.core().accepting.engine.in_progress()
    }

    fn core(&self) -> std::sync::MutexGuard<'_, Core<C>> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn core_mut(&mut self) -> &mut Core<C> {
        self.core.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes the socket and removes the socket file it created and its private directory
    /// (CPython's `close()`), reporting what failed. If the socket file was removed by someone
    /// else, this reports `NotFound`, as CPython's `FileNotFoundError`. Dropping the listener
    /// does the same without the report.
    pub fn close(mut self) -> Result<()> {
        self.shut()
    }

    fn shut(&mut self) -> Result<()> {
        let Some(mut inner) = self.inner.take() else {
            return Ok(());
        };
        let core = self.core_mut();
        core.accepting.engine.clear();
        let removed = inner.remove_socket_file();
        let closed = inner.close();
        let dir = self
            .private_dir
            .take()
            .map_or(Ok(()), PrivateSocketDir::remove);
        closed?;
        removed?;
        dir?;
        Ok(())
    }
}

impl<C> Drop for Listener<C> {
    fn drop(&mut self) {
        // Never blocks or panics; errors are for close() to report.
        let _ = self.shut();
    }
}

#[cfg(unix)]
impl<C> AsFd for Listener<C> {
    /// The listening socket.
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Some(inner) => inner.as_fd(),
            // `inner` is taken only by `close(self)` and `drop`, after which there is no
            // `&self`: not reached.
            None => self.poller_fd.handle().fd(),
        }
    }
}

impl<C: Codec + Clone> crate::Waitable for Listener<C> {
    /// The listener's own poller: readable when a client waits or a handshake has progress to
    /// make.
    fn wait_handle(&self) -> Result<Handle<'_>> {
        if self.inner.is_none() {
            return Err(Error::ListenerClosed);
        }
        Ok(self.poller_fd.handle())
    }

    /// A connection is authenticated and waiting to be returned by `accept`.
    fn has_buffered(&self) -> bool {
        self.core().accepting.engine.has_ready()
    }

    /// Accepts and advances handshakes without waiting: ready when `accept` would return at
    /// once.
    fn pump(&mut self) -> Result<bool> {
        let Some(inner) = &self.inner else {
            return Ok(true);
        };
        let core = self.core.get_mut().unwrap_or_else(PoisonError::into_inner);
        core.pump_accept(inner)
    }

    /// The same for `wait`, which only borrows.
    fn settle(&self) -> Result<bool> {
        let Some(inner) = &self.inner else {
            return Ok(true);
        };
        self.core().pump_accept(inner)
    }
}
