//! Helpers shared by the test binaries that read this process's descriptors (Linux).

#![allow(dead_code, clippy::unwrap_used)]

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
