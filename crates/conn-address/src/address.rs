//! `Address`: the one representation of every address CPython accepts, its validation and its
//! text form. Opening sockets is left to `conn-transport`.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::{AddressError, Family};

/// The longest filesystem path, in bytes, that binds as a Unix socket on this OS
/// (`sun_path` less its terminating NUL: 107 on Linux, 103 on the BSDs and macOS).
pub const MAX_UNIX_PATH_LEN: usize = if cfg!(any(target_os = "linux", target_os = "android")) {
    107
} else {
    103
};

/// The longest Linux abstract name, in bytes, not counting the leading NUL.
pub const MAX_ABSTRACT_NAME_LEN: usize = 107;

/// The longest Windows pipe name, in UTF-16 units, `\\server\pipe\` included.
pub const MAX_PIPE_NAME_LEN: usize = 256;

/// The host part of a TCP address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
    /// A host name, resolved when the socket is opened.
    Name(String),
}

impl Host {
    /// Parses an IP literal (IPv6 without brackets) or a host name.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        if text.is_empty() {
            return Err(AddressError::EmptyHost {
                input: text.to_owned(),
            });
        }
        let name_ok = text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !name_ok {
            return Err(AddressError::Unrecognized {
                input: text.to_owned(),
            });
        }
        Ok(Self::Name(text.to_owned()))
    }
}

impl fmt::Display for Host {
    /// IPv6 literals print without brackets; [`Address`] adds them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => ip.fmt(f),
            Self::Name(name) => f.write_str(name),
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        Self::Ip(ip)
    }
}

/// An address a `Listener` binds or a `Client` connects to.
///
/// CPython infers the kind from the Python type of the value (a tuple, a `str`, `bytes`); here the
/// kind is the variant. Use the constructors ([`Address::inet`], [`Address::unix_path`],
/// [`Address::unix_abstract`], [`Address::pipe`]) or [`FromStr`], which validate; a value built
/// from the variants directly is checked again by [`Address::validate`] before use.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Address {
    /// `AF_INET`: a TCP host and port (Python `('host', port)`).
    Inet {
        /// IP literal or host name.
        host: Host,
        /// TCP port; 0 asks the OS for a free one when binding.
        port: u16,
    },
    /// `AF_UNIX`: a filesystem path (Python `'/path'`).
    UnixPath(PathBuf),
    /// `AF_UNIX`: a Linux abstract name, stored without its leading NUL (Python `'\0name'`,
    /// returned by CPython as `b'\0name'`).
    UnixAbstract(Vec<u8>),
    /// `AF_PIPE`: a Windows named pipe, `\\server\pipe\name` (`.` for the local machine).
    Pipe(String),
}

impl Address {
    /// A TCP address (CPython's AF_INET `(host, port)` tuple).
    pub fn inet(host: Host, port: u16) -> Self {
        Self::Inet { host, port }
    }

    /// A Unix socket path (CPython's AF_UNIX `'path'` string), checked for NUL bytes and length.
    pub fn unix_path(path: impl Into<PathBuf>) -> Result<Self, AddressError> {
        let path = path.into();
        check_unix_path(&path)?;
        Ok(Self::UnixPath(path))
    }

    /// A Linux abstract name (CPython's `'\0name'`; given here without the leading NUL), checked for length.
    pub fn unix_abstract(name: impl Into<Vec<u8>>) -> Result<Self, AddressError> {
        let name = name.into();
        check_abstract(&name)?;
        Ok(Self::UnixAbstract(name))
    }

    /// A Windows pipe name (CPython's AF_PIPE `r'\\.\pipe\name'`), checked for the `\\server\pipe\name` form and length.
    pub fn pipe(name: impl Into<String>) -> Result<Self, AddressError> {
        let name = name.into();
        check_pipe(&name)?;
        Ok(Self::Pipe(name))
    }

    /// CPython's inference for a Python `str` address (`address_type` plus what the socket
    /// layer does with it): two leading backslashes make a pipe name, a leading NUL an abstract
    /// name, anything else a Unix path. An empty string is refused: CPython's `Listener('')`
    /// means "pick an address", which is [`crate::arbitrary_address`] here.
    pub fn from_python_str(text: &str) -> Result<Self, AddressError> {
        if text.is_empty() {
            Err(AddressError::Empty)
        } else if text.starts_with(r"\\") {
            Self::pipe(text)
        } else if let Some(name) = text.strip_prefix('\0') {
            Self::unix_abstract(name.as_bytes())
        } else {
            Self::unix_path(text)
        }
    }

    /// CPython's inference for a Python `bytes` address: only an abstract name (leading NUL) is
    /// accepted, as in CPython, where any other `bytes` raises `ValueError`.
    pub fn from_python_bytes(bytes: &[u8]) -> Result<Self, AddressError> {
        match bytes.split_first() {
            Some((0, name)) => Self::unix_abstract(name),
            _ => Err(AddressError::Unrecognized {
                input: String::from_utf8_lossy(bytes).into_owned(),
            }),
        }
    }

    /// The family this address belongs to (CPython's `address_type(address)`).
    pub fn family(&self) -> Family {
        match self {
            Self::Inet { .. } => Family::Inet,
            Self::UnixPath(_) | Self::UnixAbstract(_) => Family::Unix,
            Self::Pipe(_) => Family::Pipe,
        }
    }

    /// Checks the address again (for values built from the variants) and that this OS has its
    /// family. Abstract names exist only on Linux and Android.
    pub fn validate(&self) -> Result<(), AddressError> {
        self.family().validate()?;
        match self {
            Self::Inet { host, .. } => match host {
                Host::Ip(_) => Ok(()),
                Host::Name(name) => Host::parse(name).map(drop),
            },
            Self::UnixPath(path) => check_unix_path(path),
            Self::UnixAbstract(name) => {
                if cfg!(any(target_os = "linux", target_os = "android")) {
                    check_abstract(name)
                } else {
                    Err(AddressError::UnsupportedFamily {
                        family: "AF_UNIX (abstract namespace)",
                    })
                }
            }
            Self::Pipe(name) => check_pipe(name),
        }
    }

    /// The socket address, if this is a TCP address with an IP literal.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Inet {
                host: Host::Ip(ip),
                port,
            } => Some(SocketAddr::new(*ip, *port)),
            _ => None,
        }
    }

    /// The bytes CPython's `Listener.address` gives for a Unix address: the path, or NUL and the
    /// abstract name. `None` for other families.
    pub fn unix_sockaddr_bytes(&self) -> Option<Vec<u8>> {
        match self {
            Self::UnixPath(path) => Some(path_bytes(path).to_vec()),
            Self::UnixAbstract(name) => {
                let mut out = Vec::with_capacity(name.len() + 1);
                out.push(0);
                out.extend_from_slice(name);
                Some(out)
            }
            _ => None,
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Self {
        Self::Inet {
            host: Host::Ip(addr.ip()),
            port: addr.port(),
        }
    }
}

impl From<(IpAddr, u16)> for Address {
    fn from((ip, port): (IpAddr, u16)) -> Self {
        Self::Inet {
            host: Host::Ip(ip),
            port,
        }
    }
}

impl FromStr for Address {
    type Err = AddressError;

    /// The text forms, tried in this order:
    ///
    /// 1. `\\server\pipe\name`: a Windows pipe name;
    /// 2. `@name`: a Linux abstract name (write `./@file` for a file whose name starts with `@`);
    /// 3. `[v6]:port`: TCP over an IPv6 literal;
    /// 4. anything containing `/`: a Unix path (write `./sock` for a relative one);
    /// 5. `host:port`: TCP, host an IPv4 literal or a host name.
    ///
    /// Anything else is [`AddressError::Unrecognized`]; a bare IPv6 literal without brackets is
    /// [`AddressError::InvalidIpv6`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(AddressError::Empty);
        }
        if text.starts_with(r"\\") {
            return Self::pipe(text);
        }
        if let Some(name) = text.strip_prefix('@') {
            return Self::unix_abstract(name.as_bytes());
        }
        if let Some(rest) = text.strip_prefix('[') {
            let (ip, port) = rest
                .split_once("]:")
                .ok_or_else(|| AddressError::InvalidIpv6 {
                    input: text.to_owned(),
                })?;
            let ip = ip
                .parse::<Ipv6Addr>()
                .map_err(|_| AddressError::InvalidIpv6 {
                    input: text.to_owned(),
                })?;
            let port = parse_port(text, port)?;
            return Ok(Self::inet(Host::Ip(IpAddr::V6(ip)), port));
        }
        if text.contains('/') {
            return Self::unix_path(text);
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(AddressError::Unrecognized {
                input: text.to_owned(),
            });
        };
        if host.contains(':') {
            return Err(AddressError::InvalidIpv6 {
                input: text.to_owned(),
            });
        }
        if host.is_empty() {
            return Err(AddressError::EmptyHost {
                input: text.to_owned(),
            });
        }
        let port = parse_port(text, port)?;
        let host = Host::parse(host).map_err(|_| AddressError::Unrecognized {
            input: text.to_owned(),
        })?;
        Ok(Self::inet(host, port))
    }
}

impl fmt::Display for Address {
    /// The text form [`FromStr`] reads back. A relative path without `/` gets a leading `./`;
    /// abstract names and paths that are not UTF-8 print lossily.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inet {
                host: Host::Ip(IpAddr::V6(ip)),
                port,
            } => write!(f, "[{ip}]:{port}"),
            Self::Inet { host, port } => write!(f, "{host}:{port}"),
            Self::UnixPath(path) => {
                let shown = path.to_string_lossy();
                if shown.contains('/') {
                    f.write_str(&shown)
                } else {
                    write!(f, "./{shown}")
                }
            }
            Self::UnixAbstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
            Self::Pipe(name) => f.write_str(name),
        }
    }
}

fn parse_port(input: &str, port: &str) -> Result<u16, AddressError> {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::InvalidPort {
            input: input.to_owned(),
            port: port.to_owned(),
        });
    }
    match port.parse::<u64>() {
        Ok(n) => u16::try_from(n).map_err(|_| AddressError::PortOutOfRange {
            input: input.to_owned(),
            port: n,
        }),
        // More digits than a u64 holds: out of range all the same.
        Err(_) => Err(AddressError::PortOutOfRange {
            input: input.to_owned(),
            port: u64::MAX,
        }),
    }
}

#[cfg(unix)]
fn path_bytes(path: &Path) -> &[u8] {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes()
}

#[cfg(not(unix))]
fn path_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_encoded_bytes()
}

fn check_unix_path(path: &Path) -> Result<(), AddressError> {
    let bytes = path_bytes(path);
    if bytes.is_empty() {
        return Err(AddressError::EmptyUnixName);
    }
    if bytes.contains(&0) {
        return Err(AddressError::NulInPath {
            path: path.to_owned(),
        });
    }
    if bytes.len() > MAX_UNIX_PATH_LEN {
        return Err(AddressError::PathTooLong {
            path: path.to_owned(),
            len: bytes.len(),
            max: MAX_UNIX_PATH_LEN,
        });
    }
    Ok(())
}

fn check_abstract(name: &[u8]) -> Result<(), AddressError> {
    if name.is_empty() {
        return Err(AddressError::EmptyUnixName);
    }
    if name.len() > MAX_ABSTRACT_NAME_LEN {
        return Err(AddressError::AbstractNameTooLong {
            len: name.len(),
            max: MAX_ABSTRACT_NAME_LEN,
        });
    }
    Ok(())
}

fn check_pipe(name: &str) -> Result<(), AddressError> {
    let invalid = || AddressError::InvalidPipeName {
        name: name.to_owned(),
    };
    let rest = name.strip_prefix(r"\\").ok_or_else(invalid)?;
    let (server, rest) = rest.split_once('\\').ok_or_else(invalid)?;
    let (pipe, pipe_name) = rest.split_once('\\').ok_or_else(invalid)?;
    if server.is_empty() || !pipe.eq_ignore_ascii_case("pipe") || pipe_name.is_empty() {
        return Err(invalid());
    }
    if name.contains('\0') {
        return Err(invalid());
    }
    let len = name.encode_utf16().count();
    if len > MAX_PIPE_NAME_LEN {
        return Err(AddressError::PipeNameTooLong {
            name: name.to_owned(),
            len,
            max: MAX_PIPE_NAME_LEN,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn parse(text: &str) -> Result<Address, AddressError> {
        text.parse()
    }

    #[test]
    fn every_text_form_parses_and_prints_back() {
        let cases: &[(&str, Address)] = &[
            (
                "127.0.0.1:6000",
                Address::inet(Host::Ip(Ipv4Addr::LOCALHOST.into()), 6000),
            ),
            (
                "[::1]:6000",
                Address::inet(Host::Ip(Ipv6Addr::LOCALHOST.into()), 6000),
            ),
            (
                "localhost:6000",
                Address::inet(Host::Name("localhost".into()), 6000),
            ),
            (
                "my-host.example_1:0",
                Address::inet(Host::Name("my-host.example_1".into()), 0),
            ),
            ("/tmp/app.sock", Address::UnixPath("/tmp/app.sock".into())),
            ("./app.sock", Address::UnixPath("./app.sock".into())),
            ("./@odd", Address::UnixPath("./@odd".into())),
            ("@conn-test", Address::UnixAbstract(b"conn-test".to_vec())),
            (r"\\.\pipe\worker", Address::Pipe(r"\\.\pipe\worker".into())),
            (
                r"\\server\PIPE\a\b",
                Address::Pipe(r"\\server\PIPE\a\b".into()),
            ),
        ];
        for (text, want) in cases {
            let got = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(&got, want, "{text}");
            assert_eq!(got.to_string(), *text, "display of {text}");
        }
    }

    #[test]
    fn families_of_each_form() {
        assert_eq!(parse("1.2.3.4:5").unwrap().family(), Family::Inet);
        assert_eq!(parse("[::1]:5").unwrap().family(), Family::Inet);
        assert_eq!(parse("/a/b").unwrap().family(), Family::Unix);
        assert_eq!(parse("@x").unwrap().family(), Family::Unix);
        assert_eq!(parse(r"\\.\pipe\x").unwrap().family(), Family::Pipe);
    }

    #[test]
    fn garbage_is_refused_with_the_right_error() {
        use AddressError as E;
        let check = |text: &str, ok: fn(&AddressError) -> bool| {
            let err = parse(text).expect_err(text);
            assert!(ok(&err), "{text:?} gave {err:?}");
        };
        check("", |e| matches!(e, E::Empty));
        check("localhost", |e| matches!(e, E::Unrecognized { .. }));
        check("localhost:", |e| matches!(e, E::InvalidPort { .. }));
        check("localhost:http", |e| matches!(e, E::InvalidPort { .. }));
        check("localhost:-1", |e| matches!(e, E::InvalidPort { .. }));
        check("localhost:+80", |e| matches!(e, E::InvalidPort { .. }));
        check("localhost:65536", |e| {
            matches!(e, E::PortOutOfRange { port: 65536, .. })
        });
        check("localhost:99999999999999999999999", |e| {
            matches!(e, E::PortOutOfRange { .. })
        });
        check(":80", |e| matches!(e, E::EmptyHost { .. }));
        check("::1:80", |e| matches!(e, E::InvalidIpv6 { .. }));
        check("[::1]", |e| matches!(e, E::InvalidIpv6 { .. }));
        check("[nope]:80", |e| matches!(e, E::InvalidIpv6 { .. }));
        check("[127.0.0.1]:80", |e| matches!(e, E::InvalidIpv6 { .. }));
        check("bad host:80", |e| matches!(e, E::Unrecognized { .. }));
        check("h\u{e9}te:80", |e| matches!(e, E::Unrecognized { .. }));
        check("@", |e| matches!(e, E::EmptyUnixName));
        check(r"\\", |e| matches!(e, E::InvalidPipeName { .. }));
        check(r"\\.\pipe\", |e| matches!(e, E::InvalidPipeName { .. }));
        check(r"\\.\notpipe\x", |e| matches!(e, E::InvalidPipeName { .. }));
        check(r"\\\pipe\x", |e| matches!(e, E::InvalidPipeName { .. }));
        check("/tmp/a\0b", |e| matches!(e, E::NulInPath { .. }));
    }

    #[test]
    fn errors_name_their_input() {
        let err = parse("localhost:70000").unwrap_err();
        assert_eq!(
            err.to_string(),
            "address \"localhost:70000\": port 70000 is out of range 0-65535"
        );
        let err = parse("nonsense").unwrap_err();
        assert!(err.to_string().contains("\"nonsense\""), "{err}");
    }

    #[test]
    fn unix_path_length_limit_matches_the_platform() {
        let fits = format!("/{}", "a".repeat(MAX_UNIX_PATH_LEN - 1));
        assert!(Address::unix_path(&fits).is_ok());
        let long = format!("/{}", "a".repeat(MAX_UNIX_PATH_LEN));
        match Address::unix_path(&long).unwrap_err() {
            AddressError::PathTooLong { len, max, .. } => {
                assert_eq!((len, max), (MAX_UNIX_PATH_LEN + 1, MAX_UNIX_PATH_LEN));
            }
            other => panic!("{other:?}"),
        }
        assert!(Address::unix_abstract(vec![b'x'; MAX_ABSTRACT_NAME_LEN]).is_ok());
        assert!(matches!(
            Address::unix_abstract(vec![b'x'; MAX_ABSTRACT_NAME_LEN + 1]),
            Err(AddressError::AbstractNameTooLong { len: 108, max: 107 })
        ));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_limits_are_cpythons() {
        // CPython on Linux: a 107-byte path binds, 108 fails; abstract names take 108 with the NUL.
        assert_eq!(MAX_UNIX_PATH_LEN, 107);
        assert_eq!(MAX_ABSTRACT_NAME_LEN + 1, 108);
    }

    #[test]
    fn pipe_name_length_limit() {
        let name = format!(r"\\.\pipe\{}", "p".repeat(MAX_PIPE_NAME_LEN - 9));
        assert!(Address::pipe(&name).is_ok());
        let name = format!(r"\\.\pipe\{}", "p".repeat(MAX_PIPE_NAME_LEN - 8));
        assert!(matches!(
            Address::pipe(&name),
            Err(AddressError::PipeNameTooLong { len: 257, .. })
        ));
    }

    #[test]
    fn python_str_inference_follows_cpython() {
        assert_eq!(
            Address::from_python_str(r"\\.\pipe\x").unwrap().family(),
            Family::Pipe
        );
        assert_eq!(
            Address::from_python_str("\0abc").unwrap(),
            Address::UnixAbstract(b"abc".to_vec())
        );
        assert_eq!(
            Address::from_python_str("sock").unwrap(),
            Address::UnixPath("sock".into())
        );
        assert!(matches!(
            Address::from_python_str(""),
            Err(AddressError::Empty)
        ));
        assert_eq!(
            Address::from_python_bytes(b"\0abc").unwrap(),
            Address::UnixAbstract(b"abc".to_vec())
        );
        // CPython: address_type(b'/some/path') raises ValueError.
        assert!(Address::from_python_bytes(b"/some/path").is_err());
        assert!(Address::from_python_bytes(b"").is_err());
    }

    #[test]
    fn relative_paths_print_so_they_parse_back() {
        let addr = Address::from_python_str("sock").unwrap();
        assert_eq!(addr.to_string(), "./sock");
        assert_eq!(
            parse(&addr.to_string()).unwrap(),
            Address::UnixPath("./sock".into())
        );
    }

    #[test]
    fn validate_rechecks_hand_built_values() {
        assert!(Address::UnixPath(PathBuf::from("/a\0")).validate().is_err());
        assert!(
            Address::inet(Host::Name("has space".into()), 1)
                .validate()
                .is_err()
        );
        assert!(Address::Pipe("nope".into()).validate().is_err());
        #[cfg(unix)]
        assert!(matches!(
            Address::Pipe(r"\\.\pipe\x".into()).validate(),
            Err(AddressError::UnsupportedFamily { family: "AF_PIPE" })
        ));
        assert!(parse("127.0.0.1:1").unwrap().validate().is_ok());
    }

    #[test]
    fn sockaddr_bytes_match_cpythons_listener_address() {
        assert_eq!(
            parse("@name").unwrap().unix_sockaddr_bytes().unwrap(),
            b"\0name"
        );
        assert_eq!(parse("/p").unwrap().unix_sockaddr_bytes().unwrap(), b"/p");
        assert_eq!(parse("1.2.3.4:5").unwrap().unix_sockaddr_bytes(), None);
        assert_eq!(
            parse("1.2.3.4:5").unwrap().socket_addr(),
            Some("1.2.3.4:5".parse().unwrap())
        );
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn parsing_never_panics(text in ".{0,80}") {
                let _ = text.parse::<Address>();
            }

            #[test]
            fn socket_addrs_round_trip(addr in any::<SocketAddr>()) {
                // Scope ids and flow info are not part of the text form.
                let addr = SocketAddr::new(addr.ip(), addr.port());
                let a = Address::from(addr);
                prop_assert_eq!(a.to_string().parse::<Address>().unwrap(), a);
            }

            #[test]
            fn valid_paths_round_trip(name in "[a-zA-Z0-9._-]{1,60}") {
                let a = Address::unix_path(format!("/tmp/{name}")).unwrap();
                prop_assert_eq!(a.to_string().parse::<Address>().unwrap(), a);
            }
        }
    }
}
