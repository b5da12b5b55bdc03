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

/// This process's user + system CPU time, read through an fd opened beforehand (`pread`, no new
/// descriptor needed: the out-of-descriptors tests read it with none left).
#[cfg(target_os = "linux")]
pub(crate) fn cpu_time(stat: &std::fs::File) -> std::time::Duration {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 1024];
    let n = stat.read_at(&mut buf, 0).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    // Fields after the command name (which is in parentheses): utime is the 14th field overall.
    let rest = &text[text.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // CLK_TCK is 100 on Linux.
    std::time::Duration::from_millis(ticks * 10)
}
