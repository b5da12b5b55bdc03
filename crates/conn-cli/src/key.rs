//! Where the authkey comes from (never the command line: it would show in `ps` and in shell
//! history) and the digest policy.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;

use clap::Args;
use conn::{AuthKey, Digest, Policy};

use crate::Failure;

/// The key and policy options every command takes.
#[derive(Args, Debug)]
pub(crate) struct KeyArgs {
    /// Read the authkey from environment variable VAR (its bytes, as UTF-8).
    #[arg(long, value_name = "VAR", group = "authkey")]
    authkey_env: Option<String>,
    /// Read the authkey from file F (its bytes; one trailing newline is dropped).
    #[arg(long, value_name = "F", group = "authkey")]
    authkey_file: Option<PathBuf>,
    /// Ask for the authkey on the terminal, without echo.
    #[arg(long, group = "authkey")]
    authkey_prompt: bool,
    /// The digest of the challenge we send (md5, sha256, sha3_256, sha384, sha3_384; default
    /// sha256, as CPython 3.12+); also the weakest one accepted from the peer.
    #[arg(long, value_name = "NAME")]
    digest: Option<String>,
    /// Refuse MD5, the digest of CPython 3.11 and earlier (a peer that offers only MD5 is
    /// then refused).
    #[arg(long)]
    strict: bool,
}

impl KeyArgs {
    /// The key, if one was given.
    pub(crate) fn key(&self) -> Result<Option<AuthKey>, Failure> {
        if let Some(var) = &self.authkey_env {
            return match std::env::var_os(var) {
                Some(v) => Ok(Some(AuthKey::new(v.into_encoded_bytes()))),
                None => Err(Failure::Io(format!(
                    "--authkey-env {}: no such environment variable",
                    crate::text::escape(var.as_bytes())
                ))),
            };
        }
        if let Some(path) = &self.authkey_file {
            let mut bytes = std::fs::read(path).map_err(|e| {
                Failure::Io(format!(
                    "--authkey-file {}: {e}",
                    crate::text::escape(path.as_os_str().as_encoded_bytes())
                ))
            })?;
            if bytes.last() == Some(&b'\n') {
                bytes.pop();
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
            }
            return Ok(Some(AuthKey::new(bytes)));
        }
        if self.authkey_prompt {
            return prompt()
                .map(Some)
                .map_err(|e| Failure::Io(format!("--authkey-prompt: {e}")));
        }
        Ok(None)
    }

    /// The digest policy: CPython's (MD5 accepted, SHA-256 challenges) unless told otherwise.
    pub(crate) fn policy(&self) -> Result<Policy, Failure> {
        let mut policy = if self.strict {
            Policy::strict()
        } else {
            Policy::new()
        };
        if let Some(name) = &self.digest {
            let digest = Digest::from_name(name.as_bytes()).ok_or_else(|| {
                Failure::Io(format!(
                    "--digest {}: not one of md5, sha256, sha3_256, sha384, sha3_384",
                    crate::text::escape(name.as_bytes())
                ))
            })?;
            if self.strict && digest == Digest::Md5 {
                return Err(Failure::Digest(
                    "--digest md5 with --strict: md5 is what --strict refuses".into(),
                ));
            }
            policy = policy.challenge_digest(digest).minimum_digest(digest);
        }
        Ok(policy)
    }
}

/// Reads a line from the terminal with echo off (restored after, whatever happened).
fn prompt() -> io::Result<AuthKey> {
    eprint!("authkey: ");
    io::stderr().flush()?;
    let line = without_echo(|| {
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line).map(|_| line)
    })?;
    eprintln!();
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(AuthKey::new(line.as_bytes()))
}

/// Runs `read` with the terminal's echo off.
#[cfg(unix)]
#[expect(unsafe_code, reason = "termios has no safe wrapper in std")]
fn without_echo<T>(read: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    use std::os::fd::AsRawFd;
    let fd = io::stdin().as_raw_fd();
    // SAFETY: termios is plain data, filled by tcgetattr before any use.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a valid termios to fill.
    if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
        return Err(io::Error::other("stdin is not a terminal"));
    }
    let saved = term;
    term.c_lflag &= !libc::ECHO;
    term.c_lflag |= libc::ECHONL;
    // SAFETY: as above, with a termios from tcgetattr.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let result = read();
    // SAFETY: restores what tcgetattr gave.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    result
}

/// Runs `read` with the console's echo off.
#[cfg(windows)]
#[expect(unsafe_code, reason = "the console mode has no safe wrapper in std")]
fn without_echo<T>(read: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::System::Console::{ENABLE_ECHO_INPUT, GetConsoleMode, SetConsoleMode};
    let handle = io::stdin().as_raw_handle();
    let mut mode = 0u32;
    // SAFETY: the process's stdin handle and a mode to fill.
    if unsafe { GetConsoleMode(handle, &mut mode) } == 0 {
        return Err(io::Error::other("stdin is not a console"));
    }
    // SAFETY: as above, with the mode GetConsoleMode gave less echo.
    if unsafe { SetConsoleMode(handle, mode & !ENABLE_ECHO_INPUT) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let result = read();
    // SAFETY: restores what GetConsoleMode gave.
    unsafe { SetConsoleMode(handle, mode) };
    result
}
