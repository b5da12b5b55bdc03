//! Connections and handles between processes on every OS (Linux, and Windows under Wine): a
//! child inherits a pipe end ([`conn::process::Inheritance`]), and a parent and an unrelated
//! child hand each other pipe ends, TCP connections and file handles as CPython does
//! (Unix: the resource sharer and `SCM_RIGHTS`; Windows: `DupHandle` taken out of the sender,
//! `DupSocket` through the sharer, `send_handle` duplicating into the receiver).
//!
//! The test binary is its own child: run with `CONN_ACROSS_CHILD` set, a test plays the
//! child's part.

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use conn::{Connection, Listener, Pickle};

const KEY: &[u8] = b"across processes key";
const STEP: Option<Duration> = Some(Duration::from_secs(30));
const ROLE: &str = "CONN_ACROSS_CHILD";
const ARG: &str = "CONN_ACROSS_ARG";

/// This test binary, running only test `name`, as a child with `role`.
fn child_command(name: &str, role: &str, arg: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(ROLE, role)
        .env(ARG, arg);
    cmd
}

/// The child's part, if this process is one.
fn role() -> Option<(String, String)> {
    let role = std::env::var(ROLE).ok()?;
    Some((role, std::env::var(ARG).unwrap_or_default()))
}

#[test]
fn a_child_inherits_a_pipe_end() {
    if let Some((role, arg)) = role() {
        assert_eq!(role, "squares");
        let (ours, other) = arg.split_once(' ').unwrap();
        // Windows: the handle value of a connection added for another child (inheritable in our
        // parent, and not ours): if it leaked into this process, what we write on it reaches
        // the parent. (On Unix numbers are per child, and `children.rs` checks the child's
        // descriptors.)
        let other: u64 = other.parse().unwrap();
        let adopted = if cfg!(windows) {
            // SAFETY: a test of a number that must not be open here; if it is (another handle
            // of this process with the same number), it is forgotten, never closed.
            unsafe { conn::process::inherited(other) }
        } else {
            Err(conn::Error::Closed)
        };
        if let Ok(handle) = adopted {
            if let Ok(mut leaked) = Connection::from_owned_handle(handle, Pickle::new()) {
                let _ = leaked.send(&"leaked");
                std::mem::forget(leaked);
            }
        }
        // SAFETY: the parent passed this number for this connection; it is taken once.
        let handle = unsafe { conn::process::inherited(ours.parse().unwrap()) }.unwrap();
        let mut conn = Connection::from_owned_handle(handle, Pickle::new()).unwrap();
        conn.set_read_timeout(STEP);
        while let Ok(n) = conn.recv::<i64>() {
            conn.send(&(n * n)).unwrap();
        }
        return;
    }
    let (mut ours, theirs) = conn::pipe().unwrap();
    // Added for a child never started: inheritable in this process meanwhile, on Windows.
    let (mut not_theirs_peer, not_theirs) = conn::pipe().unwrap();
    let mut other = conn::process::Inheritance::new();
    let other_number = other.add(not_theirs).unwrap();
    let mut inheritance = conn::process::Inheritance::new();
    let number = inheritance.add(theirs).unwrap();
    let mut child = inheritance
        .spawn(child_command(
            "a_child_inherits_a_pipe_end",
            "squares",
            &format!("{number} {other_number}"),
        ))
        .unwrap();
    let sentinel = child.sentinel().unwrap();
    ours.set_read_timeout(STEP);
    for n in 0..10i64 {
        ours.send(&n).unwrap();
        assert_eq!(ours.recv::<i64>().unwrap(), n * n);
    }
    drop(ours);
    // Our copy of the child's end is closed: our close is the child's end of file.
    assert_eq!(conn::wait([&sentinel], STEP).unwrap(), [0]);
    assert!(child.wait().unwrap().success());
    // Nothing came over the connection the child was not given.
    not_theirs_peer.set_read_timeout(Some(Duration::from_millis(300)));
    let nothing = not_theirs_peer.recv::<String>();
    assert!(
        matches!(nothing, Err(conn::Error::Timeout { .. })),
        "{nothing:?}"
    );
    drop(other);
}

fn file_with(text: &str, name: &str) -> std::fs::File {
    let path = std::env::temp_dir().join(format!("conn-across-{}-{name}", std::process::id()));
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
    drop(file);
    let file = std::fs::File::open(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    file
}

fn send_file(conn: &mut Connection, file: &std::fs::File) {
    #[cfg(unix)]
    let handle = std::os::fd::AsFd::as_fd(file).into();
    #[cfg(windows)]
    let handle = std::os::windows::io::AsHandle::as_handle(file).into();
    conn.send_handle(handle).unwrap();
}

fn recv_file(conn: &mut Connection) -> String {
    let handle = conn.recv_handle().unwrap();
    #[cfg(unix)]
    let mut file = std::fs::File::from(std::os::fd::OwnedFd::from(handle));
    #[cfg(windows)]
    let mut file =
        std::fs::File::from(std::os::windows::io::OwnedHandle::try_from(handle).unwrap());
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    text
}

/// The child of `connections_and_handles_between_processes`.
fn handing_child(address: &str) {
    conn::sharing::set_authkey(KEY);
    let mut parent = conn::Client::builder(address)
        .authkey(KEY)
        .timeout(STEP)
        .connect()
        .unwrap();
    parent.set_read_timeout(STEP);
    // A pipe end and a TCP connection from the parent: use each.
    for _ in 0..2 {
        let mut handed = parent.recv_connection(Pickle::new()).unwrap();
        assert!(handed.readable() && handed.writable());
        handed
            .send(&format!("from child {}", std::process::id()))
            .unwrap();
    }
    // A one-way end from the parent keeps its direction.
    let reader = parent.recv_connection(Pickle::new()).unwrap();
    assert!(reader.readable() && !reader.writable());
    // A file from the parent; one back.
    let text = recv_file(&mut parent);
    assert_eq!(text, "from the parent's file");
    send_file(&mut parent, &file_with("from the child's file", "child"));
    // One of ours to the parent, which it claims from us: stay until it says so.
    let (mut kept, handed) = conn::pipe().unwrap();
    parent.send_connection(handed).unwrap();
    kept.set_read_timeout(STEP);
    kept.send(&"over the end the child handed").unwrap();
    assert_eq!(parent.recv::<String>().unwrap(), "claimed");
    assert_eq!(kept.recv::<String>().unwrap(), "back to the child");
}

#[test]
fn connections_and_handles_between_processes() {
    if let Some((role, arg)) = role() {
        assert_eq!(role, "handing");
        handing_child(&arg);
        return;
    }
    conn::sharing::set_authkey(KEY);
    let mut listener = Listener::builder()
        .family(conn::default_family())
        .authkey(KEY)
        .accept_timeout(STEP)
        .bind()
        .unwrap();
    let address = match listener.address() {
        conn::Address::UnixPath(p) => p.to_str().unwrap().to_owned(),
        conn::Address::Pipe(name) => name.clone(),
        other => panic!("unexpected default address {other:?}"),
    };
    let mut child = child_command(
        "connections_and_handles_between_processes",
        "handing",
        &address,
    )
    .spawn()
    .unwrap();
    let mut to_child = listener.accept().unwrap();
    to_child.set_read_timeout(STEP);

    let (handed, mut kept) = conn::pipe().unwrap();
    to_child.send_connection(handed).unwrap();
    kept.set_read_timeout(STEP);
    assert_eq!(
        kept.recv::<String>().unwrap(),
        format!("from child {}", child.id())
    );

    let mut tcp = Listener::builder()
        .address("127.0.0.1:0")
        .accept_timeout(STEP)
        .bind()
        .unwrap();
    let client = conn::Client::connect(tcp.address()).unwrap();
    let mut server = tcp.accept().unwrap();
    server.set_read_timeout(STEP);
    to_child.send_connection(client).unwrap();
    assert_eq!(
        server.recv::<String>().unwrap(),
        format!("from child {}", child.id())
    );

    let (reader, _writer) = conn::pipe_simplex().unwrap();
    to_child.send_connection(reader).unwrap();

    send_file(
        &mut to_child,
        &file_with("from the parent's file", "parent"),
    );
    assert_eq!(recv_file(&mut to_child), "from the child's file");

    let mut back = to_child.recv_connection(Pickle::new()).unwrap();
    to_child.send(&"claimed").unwrap();
    back.set_read_timeout(STEP);
    assert_eq!(
        back.recv::<String>().unwrap(),
        "over the end the child handed"
    );
    back.send(&"back to the child").unwrap();
    assert!(child.wait().unwrap().success());
}

/// A process that handed a connection over and exits without `sharing::stop()` leaves no
/// socket file or directory of its resource sharer behind (Unix; a Windows named pipe goes
/// with its last handle).
#[cfg(unix)]
#[test]
fn an_exiting_sharer_leaves_no_socket_file() {
    if let Some((role, arg)) = role() {
        assert_eq!(role, "hands-and-exits");
        conn::sharing::set_authkey(KEY);
        // SAFETY: the parent passed this number for this connection; it is taken once.
        let handle = unsafe { conn::process::inherited(arg.parse().unwrap()) }.unwrap();
        let mut parent = Connection::from_owned_handle(handle, Pickle::new()).unwrap();
        let (handed, _kept) = conn::pipe().unwrap();
        parent.send_connection(handed).unwrap();
        return;
    }
    let (mut ours, theirs) = conn::pipe().unwrap();
    let mut inheritance = conn::process::Inheritance::new();
    let number = inheritance.add(theirs).unwrap();
    let mut child = inheritance
        .spawn(child_command(
            "an_exiting_sharer_leaves_no_socket_file",
            "hands-and-exits",
            &number.to_string(),
        ))
        .unwrap();
    ours.set_read_timeout(STEP);
    let pickle = ours.recv_bytes().unwrap();
    let handed = conn::sharing::wire::parse_connection(&pickle).unwrap();
    let conn::sharing::wire::Wrapped::SharedFd { address, .. } = handed.wrapped else {
        panic!("a Unix connection is handed as a DupFd")
    };
    let path = std::path::PathBuf::from(address);
    assert!(child.wait().unwrap().success());
    assert!(!path.exists(), "{} is left behind", path.display());
    assert!(
        !path.parent().unwrap().exists(),
        "{} is left behind",
        path.parent().unwrap().display()
    );
}
