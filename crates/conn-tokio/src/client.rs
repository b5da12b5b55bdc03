//! `Client`: CPython's `Client(address, family, authkey)` under tokio.

use std::time::Duration;

use conn_address::{Address, AddressError, Family};
use conn_auth::{AuthKey, Policy};
use conn_framing::{Codec, Pickle, UNLIMITED};
use conn_transport::os::Stream;
use conn_transport::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT, Error, IntoAddress, Operation, Result,
    check_family,
};

use crate::Connection;
use crate::io::Io;

/// Connects to a listener under tokio: [`Client::connect`] with no authkey,
/// [`Client::builder`] for the rest. With an authkey it answers the listener's challenge, then
/// challenges it, within the handshake timeout.
#[derive(Debug, Clone, Copy)]
pub struct Client;

/// The settings of a connection to make, from [`Client::builder`].
#[derive(Debug)]
#[must_use = "a ClientBuilder does nothing until `connect` is awaited"]
pub struct ClientBuilder<C = Pickle> {
    address: std::result::Result<Address, AddressError>,
    family: Option<Family>,
    authkey: Option<AuthKey>,
    policy: Policy,
    connect_timeout: Option<Duration>,
    handshake_timeout: Option<Duration>,
    max_message: u64,
    codec: C,
}

impl Client {
    /// Settings for connecting to `address` (an invalid address is reported by `connect`).
    pub fn builder(address: impl IntoAddress) -> ClientBuilder {
        ClientBuilder {
            address: address.into_address(),
            family: None,
            authkey: None,
            policy: Policy::default(),
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
            max_message: UNLIMITED,
            codec: Pickle::default(),
        }
    }

    /// Connects to `address` with no authkey and the default codec.
    pub async fn connect(address: impl IntoAddress) -> Result<Connection> {
        Self::builder(address).connect().await
    }
}

impl<C: Codec + Clone + Send + 'static> ClientBuilder<C> {
    /// CPython's `family` argument: the address must belong to it.
    pub fn family(mut self, family: Family) -> Self {
        self.family = Some(family);
        self
    }

    /// Authenticate with this key (CPython's `authkey`).
    pub fn authkey(mut self, key: impl Into<AuthKey>) -> Self {
        self.authkey = Some(key.into());
        self
    }

    /// Which digests to accept and offer (default: CPython 3.12's).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// How long connecting may take (`None`: the OS's limit; default 20 s).
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long the handshake may take (`None`: forever; default 20 s).
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The longest message the connection accepts.
    pub fn max_message(mut self, max: u64) -> Self {
        self.max_message = max;
        self
    }

    /// The connection's codec.
    pub fn codec<D: Codec + Clone + Send + 'static>(self, codec: D) -> ClientBuilder<D> {
        ClientBuilder {
            address: self.address,
            family: self.family,
            authkey: self.authkey,
            policy: self.policy,
            connect_timeout: self.connect_timeout,
            handshake_timeout: self.handshake_timeout,
            max_message: self.max_message,
            codec,
        }
    }

    /// Connects (and authenticates, with an authkey). The connect itself runs on tokio's
    /// blocking pool (it may resolve a host name or wait for a listener's backlog); nothing
    /// blocks a runtime thread.
    pub async fn connect(self) -> Result<Connection<C>> {
        let address = self.address?;
        check_family(self.family, &address)?;
        let timeout = self.connect_timeout;
        let stream = tokio::task::spawn_blocking(move || Stream::connect(&address, timeout))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?
            .map_err(|e| Error::from_io(e, Operation::Connect))?;
        let io = Io::new(stream).map_err(|(e, _)| Error::Io(e))?;
        let mut conn = Connection::from_io(io, self.codec);
        conn.set_max_message(self.max_message);
        if let Some(key) = &self.authkey {
            let handshake = crate::handshake::answer(&mut conn, key, self.policy);
            match self.handshake_timeout {
                None => handshake.await?,
                Some(t) => {
                    tokio::time::timeout(t, handshake)
                        .await
                        .map_err(|_| Error::Timeout {
                            operation: Operation::Handshake,
                        })??
                }
            }
        }
        Ok(conn)
    }
}
