//! Fresh addresses (CPython's `arbitrary_address`) and the private directory a fresh Unix socket
//! lives in. Creates directories; never opens a socket.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Address, AddressError, Family, Host, MAX_UNIX_PATH_LEN};

/// Bytes a private socket path adds to its base directory: `/conn-XXXXXXXX/sock-XXXXXXXX`.
const SUFFIX_LEN: usize = "/conn-".len() + 8 + "/sock-".len() + 8;

/// A fresh address of `family` that nothing else uses (CPython's `arbitrary_address`):
///
/// - `Inet`: `127.0.0.1` port 0, so the OS picks the port at bind time (CPython says
///   `('localhost', 0)`; the literal avoids a name lookup and an IPv6 surprise).
/// - `Unix`: `sock-XXXXXXXX` inside a new private directory (mode 0700) under the first of
///   `$TMPDIR`, `/tmp`, `/var/tmp`, `/usr/tmp` short enough for `sun_path`. The directory is left in
///   place: to have it removed, use [`PrivateSocketDir`] (as `conn`'s `Listener` does).
/// - `Pipe`: `\\.\pipe\conn-<pid>-<n>-<16 hex digits>`.
///
/// Errors: [`AddressError::UnsupportedFamily`] for a family this OS lacks;
/// [`AddressError::NoShortTempDir`] or [`AddressError::Io`] when no private directory can be made.
pub fn arbitrary_address(family: Family) -> Result<Address, AddressError> {
    family.validate()?;
    match family {
        Family::Inet => Ok(Address::inet(Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)), 0)),
        Family::Unix => {
            let (_dir, socket) = PrivateSocketDir::create()?.keep();
            Address::unix_path(socket)
        }
        Family::Pipe => {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            Address::pipe(format!(
                r"\\.\pipe\conn-{}-{n}-{}",
                std::process::id(),
                random_hex(8)?
            ))
        }
    }
}

/// A new private directory (mode 0700) holding the path of one Unix socket, removed with the
/// socket file when dropped or by [`PrivateSocketDir::remove`].
///
/// The directory's permissions keep other users from connecting, which an abstract name or a
/// socket in a shared directory cannot (CVE-2022-42919). The whole path is checked to fit
/// `sun_path` before anything is created (gh-132124).
#[derive(Debug)]
pub struct PrivateSocketDir {
    dir: PathBuf,
    socket: PathBuf,
    keep: bool,
}

impl PrivateSocketDir {
    /// Creates the directory under the first candidate base that is short enough.
    pub fn create() -> Result<Self, AddressError> {
        let mut tried = Vec::new();
        for base in candidate_bases() {
            if path_len(&base) + SUFFIX_LEN > MAX_UNIX_PATH_LEN || !base.is_dir() {
                tried.push(base);
                continue;
            }
            let dir = base.join(format!("conn-{}", random_hex(4)?));
            create_private_dir(&dir)?;
            let socket = dir.join(format!("sock-{}", random_hex(4)?));
            return Ok(Self {
                dir,
                socket,
                keep: false,
            });
        }
        Err(AddressError::NoShortTempDir { tried })
    }

    /// The private directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path for the socket inside it (not created here).
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The socket path as an [`Address`].
    pub fn address(&self) -> Address {
        Address::UnixPath(self.socket.clone())
    }

    /// Removes the socket file, if present, then the directory; returns the first error.
    pub fn remove(mut self) -> io::Result<()> {
        self.keep = true;
        remove_socket_and_dir(&self.socket, &self.dir)
    }

    /// Gives up ownership: nothing is removed on drop. Returns (directory, socket path).
    pub fn keep(mut self) -> (PathBuf, PathBuf) {
        self.keep = true;
        (
            std::mem::take(&mut self.dir),
            std::mem::take(&mut self.socket),
        )
    }
}

impl Drop for PrivateSocketDir {
    fn drop(&mut self) {
        if !self.keep {
            // Drop must not fail; `remove()` reports errors.
            let _ = remove_socket_and_dir(&self.socket, &self.dir);
        }
    }
}

fn remove_socket_and_dir(socket: &Path, dir: &Path) -> io::Result<()> {
    let first = match std::fs::remove_file(socket) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    let second = std::fs::remove_dir(dir);
    first.and(second)
}

fn candidate_bases() -> Vec<PathBuf> {
    let mut bases = vec![std::env::temp_dir()];
    if cfg!(unix) {
        for fixed in ["/tmp", "/var/tmp", "/usr/tmp"] {
            let fixed = PathBuf::from(fixed);
            if !bases.contains(&fixed) {
                bases.push(fixed);
            }
        }
    }
    bases
}

fn path_len(path: &Path) -> usize {
    path.as_os_str().len()
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir(dir)
}

/// `n` random bytes from the OS as lowercase hex.
fn random_hex(n: usize) -> Result<String, AddressError> {
    let mut bytes = [0u8; 8];
    let bytes = &mut bytes[..n.min(8)];
    getrandom::fill(bytes).map_err(|e| AddressError::Io(io::Error::other(e)))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_is_loopback_port_zero() {
        let addr = arbitrary_address(Family::Inet).unwrap();
        assert_eq!(addr.to_string(), "127.0.0.1:0");
    }

    #[cfg(unix)]
    #[test]
    fn unix_gets_a_fresh_private_directory_that_fits() {
        use std::os::unix::fs::PermissionsExt;

        let a = PrivateSocketDir::create().unwrap();
        let b = PrivateSocketDir::create().unwrap();
        assert_ne!(a.socket_path(), b.socket_path());
        for d in [&a, &b] {
            let meta = std::fs::metadata(d.dir()).unwrap();
            assert!(meta.is_dir());
            assert_eq!(meta.permissions().mode() & 0o777, 0o700);
            assert!(d.socket_path().starts_with(d.dir()));
            assert!(path_len(d.socket_path()) <= MAX_UNIX_PATH_LEN);
            assert!(d.address().validate().is_ok());
        }
        let dir = a.dir().to_owned();
        a.remove().unwrap();
        assert!(!dir.exists());
        let dir = b.dir().to_owned();
        drop(b);
        assert!(!dir.exists(), "drop removes the directory");
    }

    #[cfg(unix)]
    #[test]
    fn removal_takes_the_socket_file_too() {
        let d = PrivateSocketDir::create().unwrap();
        std::fs::write(d.socket_path(), b"").unwrap();
        let dir = d.dir().to_owned();
        d.remove().unwrap();
        assert!(!dir.exists());
    }

    #[cfg(unix)]
    #[test]
    fn arbitrary_unix_address_keeps_its_directory() {
        let addr = arbitrary_address(Family::Unix).unwrap();
        let Address::UnixPath(path) = &addr else {
            panic!("{addr:?}")
        };
        let dir = path.parent().unwrap();
        assert!(dir.is_dir());
        std::fs::remove_dir(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn pipe_is_refused_off_windows() {
        assert!(matches!(
            arbitrary_address(Family::Pipe),
            Err(AddressError::UnsupportedFamily { .. })
        ));
    }

    #[test]
    fn random_names_differ() {
        assert_ne!(random_hex(8).unwrap(), random_hex(8).unwrap());
        assert_eq!(random_hex(4).unwrap().len(), 8);
    }
}
