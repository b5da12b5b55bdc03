//! A descriptor transfer the kernel truncates (`MSG_CTRUNC`: here because the process is at its
//! descriptor limit, so only some of them can be installed): the byte that carried them is
//! kept, the descriptors that did arrive are closed, `recv_handles` reports the truncation, and
//! the connection goes on. Alone in its test binary, because it lowers the whole process's
//! `RLIMIT_NOFILE` (with util-linux's `prlimit`).

// Linux: the descriptor limit is set with util-linux `prlimit`, read back from /proc.
#![cfg(target_os = "linux")]

mod common;

use common::{highest_open_fd, open_fds, set_nofile};

use std::os::fd::AsFd;
use std::time::Duration;

use conn::transport::Handle;
use conn::transport::os::Stream;
use conn::{Connection, Error, Pickle};

#[test]
fn a_truncated_transfer_keeps_its_bytes_and_is_reported() {
    let (raw, ours) = Stream::pair().unwrap();
    let mut conn = Connection::from_stream(ours, Pickle::new());
    conn.set_read_timeout(Some(Duration::from_secs(5)));
    let file = std::fs::File::open("/dev/null").unwrap();
    let ten: Vec<Handle<'_>> = (0..10).map(|_| Handle::from(file.as_fd())).collect();
    raw.send_handles(&[10], &ten).unwrap();
    let mut sender = Connection::from_stream(raw, Pickle::new());
    sender.send_bytes(b"after").unwrap();
    let old = std::fs::read_to_string("/proc/self/limits").unwrap();
    let old_soft = old
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap()
        .to_owned();
    // Fill the holes below the highest descriptor, so the limit leaves exactly three free.
    let top = highest_open_fd();
    let mut fillers = Vec::new();
    loop {
        let f = std::fs::File::open("/dev/null").unwrap();
        let n = std::os::fd::AsRawFd::as_raw_fd(&f) as u64;
        fillers.push(f);
        if n > top {
            break;
        }
    }
    let before = open_fds();
    // Room for three more descriptors: the kernel installs some of the ten, then truncates.
    set_nofile(&format!("{}:", highest_open_fd() + 4));
    let result = conn.recv_handles(10);
    let during = open_fds();
    drop(fillers);
    set_nofile(&format!("{old_soft}:"));
    match result {
        Err(Error::HandlesDropped {
            truncated: true, ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(
        during <= before,
        "{during} open, {before} before: the partial fds were kept"
    );
    // The count byte was the transfer's; the stream is in step.
    assert_eq!(conn.recv_bytes().unwrap(), b"after");
}
