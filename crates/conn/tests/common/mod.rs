//! Helpers shared by the test binaries that read or limit this process's descriptors (Linux).

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers shared by test binaries, each using some"
)]

/// How many descriptors this process has open.
pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The highest descriptor number this process has open.
pub(crate) fn highest_open_fd() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap()
}

/// Sets this process's `RLIMIT_NOFILE` with util-linux `prlimit` (so the tests need no unsafe
/// code): `spec` is `SOFT:HARD`, either part may be left empty to keep it.
pub(crate) fn set_nofile(spec: &str) {
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={spec}"))
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success());
}
