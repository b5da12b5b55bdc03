//! The one error type of this crate: what was wrong with an address or a family, naming the input.

use std::path::PathBuf;

/// Why an address or family was refused.
///
/// Each variant names the input it refused. CPython raises `ValueError` (or `OSError` for a path
/// that is too long at bind time) for the same inputs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The text was empty.
    #[error("empty address")]
    Empty,
    /// The family exists in `multiprocessing.connection` but not on this operating system
    /// (CPython: `ValueError('Family AF_PIPE is not recognized.')`).
    #[error("Family {family} is not recognized on this platform")]
    UnsupportedFamily {
        /// The family asked for, as CPython spells it (`AF_PIPE`).
        family: &'static str,
    },
    /// A family name that is not one of `AF_INET`, `AF_UNIX`, `AF_PIPE`
    /// (CPython: `ValueError('unrecognized family')`).
    #[error("unrecognized family {name:?}")]
    UnknownFamily {
        /// The name given.
        name: String,
    },
    /// An address given with a family it does not belong to (CPython fails later, with a
    /// `TypeError` from the socket layer).
    #[error("address {address} is not an {family} address")]
    FamilyMismatch {
        /// The family asked for.
        family: &'static str,
        /// The address given, in its text form.
        address: String,
    },
    /// The text matches none of the forms the parser knows
    /// (CPython: `ValueError('address type of ... unrecognized')`).
    #[error(
        "address {input:?} unrecognized: expected host:port, [v6]:port, a path containing '/', @abstract or \\\\server\\pipe\\name"
    )]
    Unrecognized {
        /// The text given.
        input: String,
    },
    /// `host:port` with an empty host.
    #[error("address {input:?} has an empty host")]
    EmptyHost {
        /// The text given.
        input: String,
    },
    /// The port is not a decimal number.
    #[error("address {input:?} has an invalid port {port:?}")]
    InvalidPort {
        /// The text given.
        input: String,
        /// The part after the last `:`.
        port: String,
    },
    /// The port is a number above 65535.
    #[error("address {input:?}: port {port} is out of range 0-65535")]
    PortOutOfRange {
        /// The text given.
        input: String,
        /// The number given.
        port: u64,
    },
    /// An IPv6 literal outside brackets, or a bracketed part that is not an IPv6 address.
    #[error("address {input:?}: IPv6 addresses are written [addr]:port")]
    InvalidIpv6 {
        /// The text given.
        input: String,
    },
    /// A Unix path containing a NUL byte (only abstract names start with NUL).
    #[error("unix socket path {path:?} contains a NUL byte")]
    NulInPath {
        /// The path given.
        path: PathBuf,
    },
    /// A Unix path too long for `sockaddr_un.sun_path`
    /// (CPython: `OSError('AF_UNIX path too long')` at bind time).
    #[error("unix socket path {path:?} is {len} bytes; this platform allows at most {max}")]
    PathTooLong {
        /// The path given.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
        /// The longest path that binds here.
        max: usize,
    },
    /// An empty Unix path or abstract name.
    #[error("empty unix socket name")]
    EmptyUnixName,
    /// A Linux abstract name too long for `sun_path`.
    #[error("abstract socket name is {len} bytes; at most {max} fit after the leading NUL")]
    AbstractNameTooLong {
        /// Its length in bytes, without the leading NUL.
        len: usize,
        /// The longest name that fits.
        max: usize,
    },
    /// A pipe name that is not `\\server\pipe\name`.
    #[error(r"pipe name {name:?} is not of the form \\server\pipe\name")]
    InvalidPipeName {
        /// The name given.
        name: String,
    },
    /// A pipe name longer than Windows allows.
    #[error("pipe name {name:?} is {len} characters; Windows allows at most {max}")]
    PipeNameTooLong {
        /// The name given.
        name: String,
        /// Its length in UTF-16 units.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// No temporary directory could hold a private socket directory whose paths fit `sun_path`.
    #[error("no temporary directory is short enough for a unix socket path (tried {tried:?})")]
    NoShortTempDir {
        /// The directories tried, in order.
        tried: Vec<PathBuf>,
    },
    /// Creating the private directory or reading the OS random source failed.
    #[error("cannot create a private socket directory: {0}")]
    Io(#[from] std::io::Error),
}
