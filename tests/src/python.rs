//! Real CPython interpreters for interop tests: found under `~/.pyenv/versions` (and `python3`
//! on `PATH`), run with a time limit, their output read line by line with timeouts.
//!
//! The interop tests run once per version through [`crate::harness`]: with `CI=true`, CPython
//! 3.11 and 3.13 are required and their absence is a failed case; any other missing version is
//! an ignored case.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};
use std::{env, fmt, fs, thread};

/// Versions every CI run must test against.
pub const REQUIRED_IN_CI: &[(u32, u32)] = &[(3, 11), (3, 13)];

/// Versions the interop tests try (each one a test case: run, or ignored with the reason).
pub const WANTED: &[(u32, u32)] = &[
    (2, 7),
    (3, 6),
    (3, 7),
    (3, 8),
    (3, 9),
    (3, 10),
    (3, 11),
    (3, 12),
    (3, 13),
];

/// One CPython interpreter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Python {
    /// (major, minor, micro).
    pub version: (u32, u32, u32),
    /// The executable.
    pub path: PathBuf,
}

impl Python {
    /// (major, minor).
    pub fn minor(&self) -> (u32, u32) {
        (self.version.0, self.version.1)
    }

    /// Whether this version is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        self.minor() >= (major, minor)
    }

    /// Starts `python -c script args…` with piped stdout/stderr.
    pub fn spawn(&self, script: &str, args: &[&str]) -> std::io::Result<PythonPeer> {
        let mut child = Command::new(&self.path)
            .arg("-c")
            .arg(script)
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (tx, lines) = channel();
        if let Some(out) = child.stdout.take() {
            thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(PythonPeer {
            child,
            lines,
            label: self.to_string(),
        })
    }
}

impl fmt::Display for Python {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b, c) = self.version;
        write!(f, "CPython {a}.{b}.{c}")
    }
}

/// A running Python peer.
#[derive(Debug)]
pub struct PythonPeer {
    child: Child,
    lines: Receiver<String>,
    label: String,
}

impl PythonPeer {
    /// The next line the script printed, waiting at most `timeout`.
    pub fn line(&mut self, timeout: Duration) -> Result<String, String> {
        self.lines.recv_timeout(timeout).map_err(|_| {
            let stderr = self.kill_and_stderr();
            format!(
                "{}: no output line within {timeout:?}; stderr:\n{stderr}",
                self.label
            )
        })
    }

    /// Waits for the process to exit (at most `timeout`, then kills it); returns its stderr if
    /// it failed.
    pub fn finish(mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    let stderr = self.kill_and_stderr();
                    return Err(format!(
                        "{} exited with {status}; stderr:\n{stderr}",
                        self.label
                    ));
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => {
                    let stderr = self.kill_and_stderr();
                    return Err(format!(
                        "{} did not exit within {timeout:?}; stderr:\n{stderr}",
                        self.label
                    ));
                }
            }
        }
    }

    fn kill_and_stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut text = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut err, &mut text);
        }
        text
    }
}

impl Drop for PythonPeer {
    fn drop(&mut self) {
        // A test that fails part-way must not leave its peer running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether this is a CI run (`CI=true`), where the required versions must be present.
pub fn in_ci() -> bool {
    env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Every CPython found, newest micro per minor version, oldest first.
pub fn discover() -> Vec<Python> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(home) = env::var_os("HOME") {
        let versions = Path::new(&home).join(".pyenv/versions");
        if let Ok(entries) = fs::read_dir(&versions) {
            for entry in entries.flatten() {
                for exe in ["bin/python3", "bin/python"] {
                    let path = entry.path().join(exe);
                    if path.is_file() {
                        candidates.push(path);
                        break;
                    }
                }
            }
        }
    }
    candidates.push(PathBuf::from("python3"));
    let mut found: Vec<Python> = Vec::new();
    for path in candidates {
        let Some(version) = probe_version(&path) else {
            continue;
        };
        match found
            .iter_mut()
            .find(|p| p.minor() == (version.0, version.1))
        {
            Some(existing) if existing.version >= version => {}
            Some(existing) => *existing = Python { version, path },
            None => found.push(Python { version, path }),
        }
    }
    found.sort_by_key(|p| p.version);
    found
}

fn probe_version(path: &Path) -> Option<(u32, u32, u32)> {
    let out = Command::new(path)
        .args(["-c", "import sys; print('%d %d %d' % sys.version_info[:3])"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut parts = text.split_whitespace().map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}
