//! `Client`: CPython's `multiprocessing.connection.Client`, with timeouts.

use std::time::Duration;

use crate::os::Stream;
use conn_address::{Address, AddressError, Family};
use conn_auth::{AuthKey, Policy};
use conn_framing::{Codec, UNLIMITED};

use crate::into_address::check_family;
use crate::{
    Connection, DEFAULT_HANDSHAKE_TIMEOUT, DefaultCodec, Error, IntoAddress, Operation, Result,
};

/// How long connecting may take, by default (CPython waits for the OS; its Windows pipe client
/// gives up after `CONNECTION_TIMEOUT`, 20 s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Connects to a listener (CPython's `Client(address, family=None, authkey=None)`):
/// [`Client::connect`] with no authkey, [`Client::builder`] for the rest.
///
/// With an authkey it answers the server's challenge, then challenges the server. A server that
/// never challenges gives [`Error::Timeout`] after the handshake timeout rather than CPython's
/// hang (gh-123736), and one that sends something other than a challenge fails at once.
#[derive(Debug, Clone, Copy)]
pub struct Client;

/// The settings of a connection to make, from [`Client::builder`]; [`connect`](Self::connect)
/// makes it.
#[derive(Debug)]
#[must_use = "a ClientBuilder does nothing until `connect` is called"]
pub struct ClientBuilder<C = DefaultCodec> {
    address: Result<Address, AddressError>,
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
    pub fn builder(address: impl IntoAddress) -> ClientBuilder<DefaultCodec> {
        ClientBuilder {
            address: address.into_address(),
            family: None,
            authkey: None,
            policy: Policy::default(),
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
            max_message: UNLIMITED,
            codec: DefaultCodec::default(),
        }
    }

    /// Connects to `address` with no authkey and the default codec (CPython's `Client(address)`).
    pub fn connect(address: impl IntoAddress) -> Result<Connection<DefaultCodec>> {
        Self::builder(address).connect()
    }
}

impl<C: Codec + Clone> ClientBuilder<C> {
    /// The family the address must belong to (CPython's `family`).
    pub fn family(mut self, family: Family) -> Self {
        self.family = Some(family);
        self
    }

    /// Authenticate with this key (CPython's `authkey`).
    pub fn authkey(mut self, key: impl Into<AuthKey>) -> Self {
        self.authkey = Some(key.into());
        self
    }

    /// The handshake policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// How long connecting may take (default [`DEFAULT_CONNECT_TIMEOUT`]; `None`: the OS's).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long the handshake may take (default [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The longest message the connection receives (default: unlimited, as CPython).
    pub fn max_message(mut self, max: u64) -> Self {
        self.max_message = max;
        self
    }

    /// The connection's codec.
    pub fn codec<D: Codec + Clone>(self, codec: D) -> ClientBuilder<D> {
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

    /// Connects (and authenticates, with an authkey): CPython's `Client(address, family, authkey)`.
    pub fn connect(self) -> Result<Connection<C>> {
        let address = self.address?;
        check_family(self.family, &address)?;
        let stream = Stream::connect(&address, self.connect_timeout)
            .map_err(|e| Error::from_io(e, Operation::Connect))?;
        // Over TCP our challenge waits for the verdict (see `ClientHandshake::in_turn`).
        let tcp = stream.kind() == crate::os::StreamKind::Tcp;
        let mut conn = Connection::from_stream(stream, self.codec);
        conn.set_max_message(self.max_message);
        if let Some(key) = &self.authkey {
            let policy = &self.policy;
            conn.handshake(self.handshake_timeout, |c| {
                Ok(if tcp {
                    conn_auth::client_handshake_in_turn(c, key, policy)?
                } else {
                    conn_auth::client_handshake(c, key, policy)?
                })
            })?;
        }
        Ok(conn)
    }
}
