//! `Listener`: CPython's `Listener` under tokio, whose `accept` runs every pending handshake
//! concurrently, each in a task of its own under its deadline.

use std::collections::HashMap;
use std::time::Duration;

use conn_address::{
    Address, AddressError, Family, PrivateSocketDir, arbitrary_address, default_family,
};
use conn_auth::{AuthKey, Policy};
use conn_framing::{Codec, Pickle, UNLIMITED};
use conn_transport::engine::{Key, Scheduler};
use conn_transport::os::{Stream, is_out_of_fds};
use conn_transport::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_PENDING_HANDSHAKES, DEFAULT_MAX_UNCLAIMED_HANDLES,
    Error, IntoAddress, Operation, Result, check_family,
};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::Connection;
use crate::io::{Accepting, Io};

/// The backlog a listener asks for unless told otherwise (CPython's default is 1, which makes a
/// burst of clients wait in SYN retries; conn's blocking listener keeps CPython's).
const DEFAULT_BACKLOG: i32 = 128;

/// What a handshake task hands back: its key, the connection or why it failed, and the peer.
type Finished<C> = (Key, Result<Connection<C>>, Option<Address>);

/// A listening socket under tokio (CPython's `Listener`).
///
/// [`accept`](Self::accept) returns the first client whose handshake succeeds: each handshake
/// runs in a task of its own under its own deadline (the whole handshake), at most
/// [`max_pending_handshakes`](ListenerBuilder::max_pending_handshakes) at once (beyond that a
/// client is closed at once and counted), so no silent, dripping or half-closing client delays
/// anyone else. Failed handshakes are counted and their reasons kept (the latest 64). When the
/// process runs out of descriptors, `accept` backs off (10 ms doubling to 1 s) instead of
/// spinning. `accept` is cancel-safe: a client accepted or authenticated while it was pending
/// is kept for the next call. Clients are taken from the backlog only while `accept` is awaited
/// (as with a blocking listener); handshakes already begun go on in their tasks meanwhile.
///
/// A Unix listener with no address given lives in a fresh private directory; `close` (or
/// dropping the listener) removes the socket file it created and that directory.
pub struct Listener<C = Pickle> {
    io: Option<Accepting>,
    address: Address,
    private_dir: Option<PrivateSocketDir>,
    last_accepted: Option<Address>,
    authkey: Option<AuthKey>,
    policy: Policy,
    handshake_timeout: Option<Duration>,
    max_message: u64,
    codec: C,
    engine: Scheduler<(), (Connection<C>, Option<Address>)>,
    tasks: JoinSet<Finished<C>>,
    /// The engine's key of each running handshake task, for a task that ends without its
    /// result (it panicked): its slot is freed and the failure counted all the same.
    task_keys: HashMap<tokio::task::Id, Key>,
}

/// Settings for a [`Listener`].
#[derive(Debug)]
#[must_use = "a ListenerBuilder does nothing until `bind` is called"]
pub struct ListenerBuilder<C = Pickle> {
    address: Option<std::result::Result<Address, AddressError>>,
    family: Option<Family>,
    backlog: i32,
    authkey: Option<AuthKey>,
    policy: Policy,
    handshake_timeout: Option<Duration>,
    max_message: u64,
    max_pending: usize,
    codec: C,
}

impl Listener {
    /// Binds `address` with no authkey and the default codec.
    pub fn bind(address: impl IntoAddress) -> Result<Self> {
        Self::builder().address(address).bind()
    }

    /// Settings for a listener.
    pub fn builder() -> ListenerBuilder {
        ListenerBuilder {
            address: None,
            family: None,
            backlog: DEFAULT_BACKLOG,
            authkey: None,
            policy: Policy::default(),
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
            max_message: UNLIMITED,
            max_pending: DEFAULT_MAX_PENDING_HANDSHAKES,
            codec: Pickle::default(),
        }
    }
}

impl<C> ListenerBuilder<C> {
    /// The address to bind (default: a fresh one of the family).
    pub fn address(mut self, address: impl IntoAddress) -> Self {
        self.address = Some(address.into_address());
        self
    }

    /// CPython's `family` argument.
    pub fn family(mut self, family: Family) -> Self {
        self.family = Some(family);
        self
    }

    /// The listen backlog (default 128).
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Require clients to authenticate with this key (CPython's `authkey`).
    pub fn authkey(mut self, key: impl Into<AuthKey>) -> Self {
        self.authkey = Some(key.into());
        self
    }

    /// Which digests to accept and offer.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// How long each client has for its whole handshake (`None`: forever; default 20 s).
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The longest message an accepted connection accepts (during the handshake: 256 bytes).
    pub fn max_message(mut self, max: u64) -> Self {
        self.max_message = max;
        self
    }

    /// How many clients may be authenticating at once (default 256); a client beyond it is
    /// closed at once and counted as failed.
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
            handshake_timeout: self.handshake_timeout,
            max_message: self.max_message,
            max_pending: self.max_pending,
            codec,
        }
    }

    /// Binds and listens (inside a runtime).
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
        let io = Accepting::bind(&address, self.backlog)?;
        let mut engine = Scheduler::new(self.max_pending);
        // The reactor says when clients wait; the engine only decides about backoff.
        engine.listener_readable();
        Ok(Listener {
            address: io.listener().address().clone(),
            io: Some(io),
            private_dir,
            last_accepted: None,
            authkey: self.authkey,
            policy: self.policy,
            handshake_timeout: self.handshake_timeout,
            max_message: self.max_message,
            codec: self.codec,
            engine,
            tasks: JoinSet::new(),
            task_keys: HashMap::new(),
        })
    }
}

impl<C: Codec + Clone + Send + Sync + 'static> Listener<C> {
    /// Accepts one connection, authenticated if the listener has an authkey: the first client
    /// whose handshake succeeds, however many others are pending. Errors are the listener's
    /// own (closed, out of descriptors after the backoff, the OS's); a client's failed
    /// handshake is counted and `accept` goes on.
    pub async fn accept(&mut self) -> Result<Connection<C>> {
        loop {
            if let Some((conn, peer)) = self.engine.pop_ready() {
                self.last_accepted = peer;
                return Ok(conn);
            }
            let io = self.io.as_ref().ok_or(Error::ListenerClosed)?;
            // Out of descriptors, the engine says when accepting may be tried again.
            let now = Instant::now().into_std();
            let may_accept = self.engine.may_accept(now);
            let backoff = self
                .engine
                .accept_after()
                .filter(|_| !may_accept)
                .map(Instant::from_std);
            tokio::select! {
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.finished(joined);
                }
                accepted = io.accept(), if may_accept => match accepted {
                    Ok((stream, peer)) => {
                        self.engine.accepted();
                        self.admit(stream, peer);
                    }
                    Err(e) if is_out_of_fds(&e) => {
                        let until = Instant::from_std(self.engine.out_of_fds(Instant::now().into_std()));
                        // Report it once the backoff is over, unless a client gets through.
                        if !self.wait_backoff(until).await {
                            return Err(Error::OutOfFds(e));
                        }
                    }
                    Err(e) => return Err(Error::from_io(e, Operation::Accept)),
                },
                // A backoff left by an accept cancelled while it waited.
                () = sleep_until(backoff), if backoff.is_some() => {}
            }
        }
    }

    /// Waits out the backoff while handshakes go on; true if a connection became ready.
    async fn wait_backoff(&mut self, until: Instant) -> bool {
        while !self.engine.has_ready() {
            tokio::select! {
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.finished(joined);
                }
                () = tokio::time::sleep_until(until) => break,
            }
        }
        self.engine.has_ready()
    }

    /// A handshake task ended: its connection is ready, or its failure is counted (a task that
    /// ended without its result, a panic, counts as failed and frees its slot).
    fn finished(
        &mut self,
        joined: std::result::Result<(tokio::task::Id, Finished<C>), tokio::task::JoinError>,
    ) {
        match joined {
            Ok((id, (key, result, peer))) => {
                self.task_keys.remove(&id);
                match result {
                    Ok(conn) => {
                        self.engine.finish(key);
                        self.engine.push_ready((conn, peer));
                    }
                    Err(e) => {
                        self.engine.fail_pending(key, e);
                    }
                }
            }
            Err(e) => {
                if let Some(key) = self.task_keys.remove(&e.id()) {
                    let reason = std::io::Error::other("the handshake task ended without a result");
                    self.engine.fail_pending(key, Error::Io(reason));
                }
            }
        }
    }

    /// A new client: ready at once without an authkey; otherwise its handshake starts in a
    /// task of its own, unless the pending cap is reached (then it is closed at once).
    fn admit(&mut self, stream: Stream, peer: Option<Address>) {
        let Some(key) = self.authkey.clone() else {
            match Io::new(stream) {
                Ok(io) => {
                    let mut conn = Connection::from_io(io, self.codec.clone());
                    conn.set_max_message(self.max_message);
                    self.engine.push_ready((conn, peer));
                }
                Err((e, _)) => self.engine.fail(Error::Io(e)),
            }
            return;
        };
        let Ok(slot) = self.engine.admit((), None) else {
            // Over the cap: dropped here, closed; counted by the engine.
            return;
        };
        // Until it has authenticated, a client cannot make us hold a descriptor.
        stream.set_max_unclaimed_handles(0);
        let io = match Io::new(stream) {
            Ok(io) => io,
            Err((e, _)) => {
                self.engine.fail_pending(slot, Error::Io(e));
                return;
            }
        };
        let mut conn = Connection::from_io(io, self.codec.clone());
        let (policy, timeout, max) = (self.policy, self.handshake_timeout, self.max_message);
        let task = self.tasks.spawn(async move {
            let handshake = crate::handshake::serve(&mut conn, &key, policy);
            let result = match timeout {
                None => handshake.await,
                Some(t) => {
                    tokio::time::timeout(t, handshake)
                        .await
                        .unwrap_or(Err(Error::Timeout {
                            operation: Operation::Handshake,
                        }))
                }
            };
            let result = result.map(|()| {
                conn.set_max_message(max);
                conn.stream()
                    .set_max_unclaimed_handles(DEFAULT_MAX_UNCLAIMED_HANDLES);
                conn
            });
            (slot, result, peer)
        });
        self.task_keys.insert(task.id(), slot);
    }
}

impl<C> Listener<C> {
    /// The bound address (for TCP port 0, the port the OS chose).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The peer of the last accepted connection (`None` before the first accept and for
    /// unnamed Unix peers).
    pub fn last_accepted(&self) -> Option<&Address> {
        self.last_accepted.as_ref()
    }

    /// How many clients' handshakes have failed.
    pub fn handshake_failures(&self) -> u64 {
        self.engine.failures()
    }

    /// Every kept reason for a failed handshake, oldest first (taken).
    pub fn take_handshake_failures(&mut self) -> Vec<Error> {
        self.engine.take_failures()
    }

    /// How many clients are connected and still authenticating.
    pub fn pending_handshakes(&self) -> usize {
        self.engine.in_progress()
    }

    /// Closes the socket, stops pending handshakes, and removes the socket file it created and
    /// its private directory (CPython's `close()`).
    pub async fn close(mut self) -> Result<()> {
        self.shut()
    }

    /// Closes the socket and removes its file; pending handshakes end with the task set (its
    /// drop aborts them).
    fn shut(&mut self) -> Result<()> {
        self.engine.clear();
        self.task_keys.clear();
        let Some(io) = self.io.take() else {
            return Ok(());
        };
        let mut listener = io.into_listener();
        let removed = listener.remove_socket_file();
        let closed = listener.close();
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
        let _ = self.shut();
    }
}

impl<C> std::fmt::Debug for Listener<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("address", &self.address)
            .field("pending_handshakes", &self.engine.in_progress())
            .field("handshake_failures", &self.engine.failures())
            .finish_non_exhaustive()
    }
}

/// Sleeps until `until` (never returns for `None`; the branch is disabled then).
async fn sleep_until(until: Option<Instant>) {
    match until {
        Some(until) => tokio::time::sleep_until(until).await,
        None => std::future::pending().await,
    }
}
