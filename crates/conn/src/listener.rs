//! `Listener`: CPython's `multiprocessing.connection.Listener`, with timeouts.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use conn_address::{
    Address, AddressError, Family, PrivateSocketDir, arbitrary_address, default_family,
};
use conn_auth::{AuthKey, Policy};
use conn_framing::{Codec, UNLIMITED};

use crate::into_address::check_family;
use crate::{Connection, DefaultCodec, Error, IntoAddress, Result};

/// How long an accepted client may take to authenticate, by default (CPython's
/// `CONNECTION_TIMEOUT`, 20 s; CPython itself waits forever).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// A server socket that accepts connections (CPython's `Listener`).
///
/// With an authkey, [`accept`](Self::accept) runs CPython's mutual handshake (deliver, then
/// answer) before returning. Unlike CPython, the handshake has a timeout
/// ([`DEFAULT_HANDSHAKE_TIMEOUT`]), so a client that connects and says nothing cannot hold
/// `accept` forever, and `accept` itself may have one.
///
/// A Unix listener with no address given lives in a fresh private directory; `close()` (or
/// dropping the listener) removes the socket file it created and that directory. Abstract names
/// leave nothing to remove.
#[derive(Debug)]
pub struct Listener<C = DefaultCodec> {
    inner: Option<conn_transport::Listener>,
    address: Address,
    private_dir: Option<PrivateSocketDir>,
    authkey: Option<AuthKey>,
    policy: Policy,
    accept_timeout: Option<Duration>,
    handshake_timeout: Option<Duration>,
    max_message: u64,
    last_accepted: Option<Address>,
    codec: C,
}

/// Settings for a [`Listener`] (CPython's `Listener(address, family, backlog, authkey)` and
/// more).
#[derive(Debug)]
pub struct ListenerBuilder<C = DefaultCodec> {
    address: Option<Result<Address, AddressError>>,
    family: Option<Family>,
    backlog: i32,
    authkey: Option<AuthKey>,
    policy: Policy,
    accept_timeout: Option<Duration>,
    handshake_timeout: Option<Duration>,
    max_message: u64,
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
            codec: DefaultCodec::default(),
        }
    }
}

impl<C> ListenerBuilder<C> {
    /// The address to bind.
    pub fn address(mut self, address: impl IntoAddress) -> Self {
        self.address = Some(address.into_address());
        self
    }

    /// The family; with no address, a fresh address of it is picked. An address of another
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

    /// Authenticate every accepted connection with this key. An empty key is a key, as in
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
            codec,
        }
    }

    /// Binds and listens.
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
        let inner = conn_transport::Listener::bind(&address, self.backlog)?;
        Ok(Listener {
            address: inner.address().clone(),
            inner: Some(inner),
            private_dir,
            authkey: self.authkey,
            policy: self.policy,
            accept_timeout: self.accept_timeout,
            handshake_timeout: self.handshake_timeout,
            max_message: self.max_message,
            last_accepted: None,
            codec: self.codec,
        })
    }
}

impl<C: Codec + Clone> Listener<C> {
    /// Accepts one connection (CPython's `accept()`), authenticating it if the listener has an
    /// authkey. Waits for a client at most the accept timeout, and for its handshake at most the
    /// handshake timeout ([`Error::Timeout`] either way).
    ///
    /// A failed handshake is returned as an error ([`Error::Auth`], [`Error::Eof`], …) and the
    /// connection is dropped; the listener stays usable, so a serve loop should log and go on.
    pub fn accept(&mut self) -> Result<Connection<C>> {
        let inner = self.inner.as_ref().ok_or(Error::ListenerClosed)?;
        let (stream, peer) = inner
            .accept(self.accept_timeout)
            .map_err(|e| Error::from_io(e, "accept"))?;
        self.last_accepted = peer;
        let mut conn = Connection::from_stream(stream, self.codec.clone());
        conn.set_max_message(self.max_message);
        if let Some(key) = &self.authkey {
            let policy = &self.policy;
            conn.handshake(self.handshake_timeout, |c| {
                Ok(conn_auth::server_handshake(c, key, policy)?)
            })?;
        }
        Ok(conn)
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

    /// Whether `close` has run.
    pub fn closed(&self) -> bool {
        self.inner.is_none()
    }

    /// Closes the socket and removes the socket file it created and its private directory
    /// (CPython's `close()`); later `accept`s fail with [`Error::ListenerClosed`]. Closing twice
    /// is fine. If the socket file was removed by someone else, this reports `NotFound`, as
    /// CPython's `FileNotFoundError`.
    pub fn close(&mut self) -> Result<()> {
        let Some(mut inner) = self.inner.take() else {
            return Ok(());
        };
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
        let _ = self.close();
    }
}

impl<C> AsFd for Listener<C> {
    /// The listening socket.
    ///
    /// # Panics
    /// If the listener is closed.
    #[allow(clippy::panic)] // AsFd cannot fail; the panic is documented
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Some(inner) => inner.as_fd(),
            None => panic!("Listener::as_fd on a closed listener"),
        }
    }
}

impl<C> crate::Waitable for Listener<C> {
    /// Ready when a client is waiting to be accepted.
    fn wait_fd(&self) -> Result<BorrowedFd<'_>> {
        self.inner
            .as_ref()
            .map(AsFd::as_fd)
            .ok_or(Error::ListenerClosed)
    }
}
