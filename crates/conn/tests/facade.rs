//! The facade against itself: CPython's `_TestConnection`, `_TestListener`, `_TestPoll` and
//! `TestWait` cases, ported, plus the timeouts and error paths CPython lacks.

#[cfg(unix)]
use conn::Pickle;
#[cfg(unix)]
use std::io::Write;
#[cfg(unix)]
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use conn::address::Address;
use conn::auth::AuthError;
use conn::{
    Client, Connection, Error, Family, Listener, Operation, Pipe, Policy, PyValue, WaitSet,
    Waitable, pipe, pipe_simplex, wait,
};

const T: Option<Duration> = Some(Duration::from_secs(10));
const NOW: Option<Duration> = Some(Duration::ZERO);

#[test]
fn duplex_pipe_round_trips_objects_and_bytes() {
    let (mut a, mut b) = pipe().unwrap();
    a.send(&(1, 2.25, None::<i32>)).unwrap();
    let got: (i32, f64, Option<i32>) = b.recv().unwrap();
    assert_eq!(got, (1, 2.25, None));
    b.send_bytes(b"hello world").unwrap();
    assert_eq!(a.recv_bytes().unwrap(), b"hello world");
    // A 16 MiB message takes the large path.
    let big = vec![0x5a; 16 << 20];
    let sender = thread::spawn(move || {
        a.send_bytes(&big).unwrap();
        (a, big)
    });
    let got = b.recv_bytes().unwrap();
    let (_a, big) = sender.join().unwrap();
    assert_eq!(got, big);
}

#[test]
fn simplex_pipe_directions() {
    let (mut reader, mut writer) = Pipe::new(false).unwrap();
    assert!(reader.readable() && !reader.writable());
    assert!(!writer.readable() && writer.writable());
    writer.send(&1).unwrap();
    assert_eq!(reader.recv::<i32>().unwrap(), 1);
    assert!(matches!(reader.send(&1), Err(Error::ReadOnly)));
    assert!(matches!(writer.recv::<i32>(), Err(Error::WriteOnly)));
    assert!(matches!(writer.poll(NOW), Err(Error::WriteOnly)));
    assert_eq!(Error::ReadOnly.to_string(), "connection is read-only");
    // As with CPython's OS pipe: the reader sees EOF when the writer goes, and a writer whose
    // reader has gone gets an error (BrokenPipe; never SIGPIPE).
    drop(writer);
    assert!(matches!(reader.recv_bytes(), Err(Error::Eof)));
    let (reader, mut writer) = Pipe::new(false).unwrap();
    drop(reader);
    let err = writer.send_bytes(b"nobody listens").unwrap_err();
    assert_eq!(err.python_exception(), "BrokenPipeError", "{err:?}");
}

#[cfg(unix)]
#[test]
fn connections_convert_to_and_from_owned_fds() {
    // Simplex: an adopted socket's fd does not say which way it is used, so the directions are
    // given, as in CPython's Connection(fd, readable, writable); an OS pipe's ends say it.
    let (r, w) = pipe_simplex().unwrap();
    let r = Connection::<Pickle>::try_from(OwnedFd::try_from(r).unwrap()).unwrap();
    let w = Connection::<Pickle>::try_from(OwnedFd::try_from(w).unwrap()).unwrap();
    assert!(r.readable() && r.writable() && w.readable() && w.writable());
    let mut r = r.with_directions(true, false).unwrap();
    let mut w = w.with_directions(false, true).unwrap();
    assert!(r.readable() && !r.writable());
    assert!(w.writable() && !w.readable());
    assert!(matches!(r.send(&1), Err(Error::ReadOnly)));
    let (pr, pw) = std::io::pipe().unwrap();
    let pr = Connection::<Pickle>::try_from(OwnedFd::from(pr)).unwrap();
    let pw = Connection::<Pickle>::try_from(OwnedFd::from(pw)).unwrap();
    assert!(pr.readable() && !pr.writable() && pw.writable() && !pw.readable());
    // Narrowing never adds a direction, and cannot remove both.
    assert!(!pr.with_directions(true, true).unwrap().writable());
    assert!(matches!(
        pw.with_directions(false, false),
        Err(Error::Io(_))
    ));
    w.send(&"through fds").unwrap();
    r.set_read_timeout(T);
    assert_eq!(r.recv::<String>().unwrap(), "through fds");

    // Duplex, with a message read ahead: refused, the connection comes back, nothing is lost.
    let (mut a, mut b) = pipe().unwrap();
    b.set_read_timeout(T);
    a.send_bytes(b"one").unwrap();
    a.send_bytes(b"two").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"one");
    let refused = OwnedFd::try_from(b).unwrap_err();
    assert!(
        matches!(
            refused.error(),
            Error::HandOver {
                read_ahead: 7,
                cut_off: false
            }
        ),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("7 bytes already read"),
        "{refused}"
    );
    let mut b = refused.into_connection();
    assert_eq!(b.recv_bytes().unwrap(), b"two");
    // Between messages it goes, and the new connection carries on both ways.
    let fd = OwnedFd::try_from(b).unwrap();
    let mut b = Connection::<Pickle>::try_from(fd).unwrap();
    b.set_read_timeout(T);
    a.set_read_timeout(T);
    a.send_bytes(b"three").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"three");
    b.send(&42u8).unwrap();
    assert_eq!(a.recv::<u8>().unwrap(), 42);

    // Platform-neutral spelling, and a connection CPython would have closed.
    let (r, mut w) = pipe_simplex().unwrap();
    let handle = r.into_owned_handle().unwrap();
    let mut r = Connection::from_owned_handle(handle, Pickle::default())
        .unwrap()
        .with_directions(true, false)
        .unwrap();
    w.send_bytes(&[0; 100]).unwrap();
    r.set_read_timeout(T);
    let got = r.recv_bytes_max(10);
    assert!(
        matches!(got, Err(Error::BadMessageLength { .. })),
        "{got:?}"
    );
    assert!(r.closed());
    let refused = r.into_owned_handle().unwrap_err();
    assert!(matches!(refused.error(), Error::Closed), "{refused:?}");

    // Not a stream: a typed error, and the fd is closed rather than leaked.
    let file = std::fs::File::open("/dev/null").unwrap();
    match Connection::<Pickle>::try_from(OwnedFd::from(file)) {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}"),
        other => panic!("{other:?}"),
    }
}

#[cfg(unix)]
#[test]
fn handles_cross_between_messages_and_none_is_lost_or_leaked() {
    use std::io::Read;
    let (mut a, mut b) = pipe().unwrap();
    b.set_read_timeout(T);
    // Read ahead: the handle's count byte arrives with the message before it.
    let (r, mut w) = std::io::pipe().unwrap();
    w.write_all(b"in the pipe").unwrap();
    drop(w);
    a.send_bytes(b"before").unwrap();
    a.send_handle(r.as_fd().into()).unwrap();
    a.send_bytes(b"after").unwrap();
    drop(r);
    assert_eq!(b.recv_bytes().unwrap(), b"before");
    let got = OwnedFd::from(b.recv_handle().unwrap());
    let mut text = String::new();
    std::fs::File::from(got).read_to_string(&mut text).unwrap();
    assert_eq!(text, "in the pipe");
    assert_eq!(b.recv_bytes().unwrap(), b"after");

    // Nothing buffered: straight from the socket; several at once, each usable.
    let files: Vec<std::fs::File> = (0..3)
        .map(|_| std::fs::File::open("/dev/null").unwrap())
        .collect();
    let handles: Vec<_> = files.iter().map(|f| f.as_fd().into()).collect();
    a.send_handles(&handles).unwrap();
    assert_eq!(b.recv_handles(3).unwrap().len(), 3);

    // More than asked for: an error, and what arrived is closed.
    a.send_handles(&handles).unwrap();
    assert!(matches!(
        b.recv_handles(2),
        Err(Error::HandleTransfer {
            announced: 3,
            received: 3,
            max: 2
        })
    ));

    // A plain byte where handles were expected (CPython's test_missing_fd_transfer).
    let mut raw = std::os::unix::net::UnixStream::from(a.as_fd().try_clone_to_owned().unwrap());
    raw.write_all(&[1]).unwrap();
    let err = b.recv_handles(1).unwrap_err();
    assert!(
        matches!(err, Error::HandleTransfer { received: 0, .. }),
        "{err:?}"
    );
    assert_eq!(err.python_exception(), "RuntimeError");

    // Handles nobody claims are closed with the connection: the only other write end of this
    // pipe travels to `b` unclaimed, and once `b` is gone the reader sees EOF.
    let (mut r, w) = std::io::pipe().unwrap();
    a.send_bytes(b"x").unwrap();
    a.send_handle(w.as_fd().into()).unwrap();
    drop(w);
    assert_eq!(b.recv_bytes().unwrap(), b"x");
    drop(b);
    let mut rest = Vec::new();
    assert_eq!(r.read_to_end(&mut rest).unwrap(), 0);

    // The write timeout bounds the wait for room, as for messages.
    let (mut full, _idle) = pipe().unwrap();
    let mut raw = std::os::unix::net::UnixStream::from(full.as_fd().try_clone_to_owned().unwrap());
    raw.set_nonblocking(true).unwrap();
    while raw.write(&[0; 65536]).is_ok() {}
    full.set_write_timeout(Some(Duration::from_millis(50)));
    assert!(matches!(
        full.send_handles(&handles),
        Err(Error::Timeout {
            operation: Operation::Write
        })
    ));

    // Only Unix sockets carry them; a peer that went away is EOF.
    let listener = Listener::bind("127.0.0.1:0").unwrap();
    let address = listener.address().clone();
    let mut tcp = Client::connect(address).unwrap();
    let err = tcp.send_handles(&handles).unwrap_err();
    assert!(
        matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::Unsupported),
        "{err:?}"
    );
    let (mut c, d) = pipe().unwrap();
    drop(d);
    assert!(matches!(c.recv_handle(), Err(Error::Eof)));
}

#[test]
fn closed_connections_fail_with_handle_is_closed() {
    let (mut a, mut b) = pipe().unwrap();
    a.send(&1729).unwrap();
    assert_eq!(b.recv::<i32>().unwrap(), 1729);
    a.close().unwrap();
    // The peer sees EOF; its flags do not change.
    assert!(matches!(b.recv_bytes(), Err(Error::Eof)));
    assert!(b.readable() && b.writable());
    // CPython closes a read-only end that met an oversize message: every use of it is then
    // "handle is closed", while its fd stays valid until it is dropped (`AsFd` never panics).
    let (mut r, mut w) = pipe_simplex().unwrap();
    w.send_bytes(&[0; 100]).unwrap();
    assert!(matches!(
        r.recv_bytes_max(10),
        Err(Error::BadMessageLength { .. })
    ));
    assert!(r.closed());
    for err in [
        r.recv::<i32>().unwrap_err(),
        r.recv_bytes().unwrap_err(),
        r.poll(NOW).unwrap_err(),
        r.fileno().unwrap_err(),
    ] {
        assert!(matches!(err, Error::Closed), "{err:?}");
        assert_eq!(err.to_string(), "handle is closed");
    }
    #[cfg(unix)]
    assert!(r.as_fd().as_raw_fd() >= 0);
    assert!(matches!(wait([&r], NOW), Err(Error::Closed)));
}

#[test]
fn recv_bytes_max_with_a_read_timeout_still_says_bad_message_length() {
    // The read timeout takes another path (read ahead, then read): the oversize header must be
    // reported as such, not as a stream out of step.
    let (mut a, mut b) = pipe().unwrap();
    b.set_read_timeout(T);
    a.send_bytes(&[0; 100]).unwrap();
    let got = b.recv_bytes_max(10);
    assert!(
        matches!(got, Err(Error::BadMessageLength { len: 100, max: 10 })),
        "{got:?}"
    );
    assert!(!b.readable());
}

#[test]
fn recv_bytes_max_refuses_oversize_and_stops_reading() {
    let (mut a, mut b) = pipe().unwrap();
    a.send_bytes(b"12345").unwrap();
    a.send_bytes(b"12345").unwrap();
    assert_eq!(
        b.recv_bytes_max(5).unwrap(),
        b"12345",
        "exactly maxlength passes"
    );
    let err = b.recv_bytes_max(4).unwrap_err();
    assert!(matches!(err, Error::BadMessageLength { len: 5, max: 4 }));
    assert_eq!(err.python_exception(), "OSError");
    assert!(!b.readable() && b.writable() && !b.closed());
    assert!(matches!(b.recv_bytes(), Err(Error::WriteOnly)));
    // A read-only end is closed instead.
    let (mut r, mut w) = Pipe::new(false).unwrap();
    w.send_bytes(b"12345").unwrap();
    assert!(matches!(
        r.recv_bytes_max(1),
        Err(Error::BadMessageLength { .. })
    ));
    assert!(r.closed());
    assert!(matches!(r.recv_bytes(), Err(Error::Closed)));
}

#[test]
fn recv_bytes_into_and_buffer_too_short() {
    let (mut a, mut b) = pipe().unwrap();
    let ints: Vec<u8> = [0i32, 1, 2, 3]
        .iter()
        .flat_map(|i| i.to_ne_bytes())
        .collect();
    a.send_bytes(&ints).unwrap();
    let mut buf = [0u8; 40];
    assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), 16);
    assert_eq!(&buf[..16], &ints[..]);
    a.send_bytes(&ints).unwrap();
    assert_eq!(
        b.recv_bytes_into(&mut buf[12..]).unwrap(),
        16,
        "offset 3 items"
    );
    assert_eq!(&buf[12..28], &ints[..]);
    let long = b"hello world".repeat(10);
    a.send_bytes(&long).unwrap();
    match b.recv_bytes_into(&mut buf).unwrap_err() {
        Error::BufferTooShort { message } => assert_eq!(message, long),
        other => panic!("{other:?}"),
    }
    a.send_bytes(b"").unwrap();
    assert_eq!(b.recv_bytes_into(&mut buf[40..]).unwrap(), 0);
    a.send_bytes(b"after").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"after", "still in step");
}

#[test]
fn poll_semantics() {
    let (mut a, b) = pipe().unwrap();
    assert!(!b.poll(NOW).unwrap());
    let start = Instant::now();
    assert!(!b.poll(Some(Duration::from_millis(100))).unwrap());
    assert!(start.elapsed() >= Duration::from_millis(100));
    // An empty message is a message, and poll does not consume it.
    a.send_bytes(b"").unwrap();
    assert!(b.poll(NOW).unwrap());
    assert!(b.poll(NOW).unwrap());
    let (mut a, mut b) = pipe().unwrap();
    for m in [&b"a"[..], b"b", b"cd"] {
        a.send_bytes(m).unwrap();
    }
    for m in [&b"a"[..], b"b", b"cd"] {
        assert!(b.poll(NOW).unwrap());
        assert_eq!(b.recv_bytes().unwrap(), m, "messages never merge");
    }
    assert!(!b.poll(NOW).unwrap());
    drop(a);
    assert!(b.poll(T).unwrap(), "a hang-up is ready");
    assert!(matches!(b.recv_bytes(), Err(Error::Eof)));
}

#[test]
fn poll_counts_messages_buffered_in_user_space() {
    let (mut a, mut b) = pipe().unwrap();
    a.send_bytes(b"one").unwrap();
    a.send_bytes(b"two").unwrap();
    // On a stream both frames arrive in one read; after the first recv the second is in our
    // buffer only. A Windows pipe reads one message at a time: the second is read ahead into
    // the transport's buffer when readiness is asked for, and counts the same.
    thread::sleep(Duration::from_millis(20));
    assert_eq!(b.recv_bytes().unwrap(), b"one");
    #[cfg(unix)]
    assert!(b.has_buffered_message());
    assert!(b.poll(NOW).unwrap());
    assert_eq!(wait(&[&b], NOW).unwrap(), vec![0]);
}

#[cfg(unix)]
#[test]
fn a_peer_that_vanishes_mid_message_is_a_framing_error() {
    let (a, mut b) = conn::transport::os::Stream::pair().unwrap();
    (&a).write_all(&[0, 0, 0, 10, 1, 2, 3]).unwrap();
    drop(a);
    let mut conn = Connection::from_stream(
        std::mem::replace(&mut b, conn::transport::os::Stream::pair().unwrap().0),
        Pickle::new(),
    );
    let err = conn.recv_bytes().unwrap_err();
    assert!(matches!(err, Error::Framing(_)), "{err:?}");
    assert!(
        err.to_string().contains("got end of file during message"),
        "{err}"
    );
}

#[test]
fn split_halves_send_and_receive_on_different_threads() {
    let (a, mut b) = pipe().unwrap();
    let (mut tx, mut rx) = a.split().unwrap();
    let echo = thread::spawn(move || {
        for _ in 0..100 {
            let m = b.recv_bytes().unwrap();
            b.send_bytes(&m).unwrap();
        }
    });
    let sender = thread::spawn(move || {
        for i in 0..100u32 {
            tx.send_bytes(&i.to_be_bytes()).unwrap();
        }
    });
    for i in 0..100u32 {
        assert_eq!(rx.recv_bytes().unwrap(), i.to_be_bytes());
    }
    sender.join().unwrap();
    echo.join().unwrap();
}

#[test]
fn pickle_objects_decode_dynamically() {
    let (mut a, mut b) = pipe().unwrap();
    a.send(&vec![1, 2, 3]).unwrap();
    let v: PyValue = b.recv().unwrap();
    assert_eq!(
        v,
        PyValue::list(vec![PyValue::Int(1), PyValue::Int(2), PyValue::Int(3)])
    );
    // A message that does not decode is consumed; the connection stays usable.
    a.send_bytes(b"not a pickle").unwrap();
    let err = b.recv::<i32>().unwrap_err();
    assert_eq!(err.python_exception(), "UnpicklingError");
    a.send(&5).unwrap();
    assert_eq!(b.recv::<i32>().unwrap(), 5);
}

fn listener_round_trip(listener: &mut Listener, key: Option<&str>) {
    let address = listener.address().clone();
    let key2 = key.map(str::to_owned);
    let client = thread::spawn(move || {
        let mut c = Client::builder(address);
        if let Some(k) = key2 {
            c = c.authkey(k.as_str());
        }
        let mut conn = c.connect().unwrap();
        conn.send(&"hello").unwrap();
        conn.recv::<i32>().unwrap()
    });
    let mut conn = listener.accept().unwrap();
    assert_eq!(conn.recv::<String>().unwrap(), "hello");
    conn.send(&1729).unwrap();
    assert_eq!(client.join().unwrap(), 1729);
}

/// A host name in an AF_INET address means IPv4, as CPython's `socket.AF_INET` does: a Rust
/// listener on `localhost` is reachable by CPython's `Client(('localhost', port))`, and a Rust
/// client of `localhost` reaches an IPv4 listener, whatever order the resolver lists.
#[test]
fn host_names_mean_ipv4() {
    let mut listener = Listener::bind("localhost:0").unwrap();
    let Address::Inet { host, port } = listener.address().clone() else {
        panic!("{:?}", listener.address())
    };
    assert_eq!(host.to_string(), "127.0.0.1");
    let client = thread::spawn(move || {
        let mut c = Client::connect(("localhost", port)).unwrap();
        c.recv::<u8>().unwrap()
    });
    let mut conn = listener.accept().unwrap();
    conn.send(&7u8).unwrap();
    assert_eq!(client.join().unwrap(), 7);
    // An IPv6 literal stays IPv6.
    let v6 = Listener::bind("[::1]:0").unwrap();
    assert!(
        v6.address().to_string().starts_with("[::1]"),
        "{}",
        v6.address()
    );
}

#[test]
fn listener_and_client_over_every_family() {
    let mut tcp = Listener::bind("127.0.0.1:0").unwrap();
    listener_round_trip(&mut tcp, None);
    let Address::Inet { port, .. } = tcp.address() else {
        panic!()
    };
    assert_ne!(*port, 0, "address() gives the real port");
    assert!(matches!(tcp.last_accepted(), Some(Address::Inet { .. })));

    let mut v6 = Listener::builder()
        .address("[::1]:0")
        .authkey("k")
        .bind()
        .unwrap();
    listener_round_trip(&mut v6, Some("k"));
    #[cfg(unix)]
    unix_families();
    #[cfg(windows)]
    {
        let mut named = Listener::builder()
            .family(Family::Pipe)
            .authkey("secret")
            .bind()
            .unwrap();
        assert!(named.address().to_string().starts_with(r"\\.\pipe\"));
        listener_round_trip(&mut named, Some("secret"));
        assert_eq!(named.last_accepted(), None, "a pipe client has no address");
    }
}

#[cfg(unix)]
fn unix_families() {
    let mut unix = Listener::builder()
        .family(Family::Unix)
        .authkey("secret")
        .bind()
        .unwrap();
    listener_round_trip(&mut unix, Some("secret"));
    assert_eq!(unix.last_accepted(), None, "an unnamed Unix peer");

    let name = format!("@conn-facade-{}", std::process::id());
    let mut abs = Listener::builder()
        .address(name.as_str())
        .authkey("")
        .bind()
        .unwrap();
    assert_eq!(
        abs.address().unix_sockaddr_bytes().unwrap()[0],
        0,
        "abstract"
    );
    listener_round_trip(&mut abs, Some(""));
}

#[cfg(unix)]
#[test]
fn close_removes_the_socket_file_and_directory() {
    let l = Listener::builder().family(Family::Unix).bind().unwrap();
    let Address::UnixPath(path) = l.address().clone() else {
        panic!()
    };
    assert!(path.exists());
    l.close().unwrap();
    assert!(!path.exists());
    assert!(
        !path.parent().unwrap().exists(),
        "private directory removed"
    );

    let l = Listener::builder().family(Family::Unix).bind().unwrap();
    let Address::UnixPath(path) = l.address().clone() else {
        panic!()
    };
    drop(l);
    assert!(
        !path.exists() && !path.parent().unwrap().exists(),
        "Drop cleans up too"
    );
}

#[cfg(unix)]
#[test]
fn close_after_external_unlink_is_not_found() {
    let l = Listener::builder().family(Family::Unix).bind().unwrap();
    let Address::UnixPath(path) = l.address().clone() else {
        panic!()
    };
    std::fs::remove_file(&path).unwrap();
    match l.close().unwrap_err() {
        Error::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
}

/// A file where the socket would go (a stale socket file, or anything else) is not removed:
/// binding there fails. (A live address: `families.rs`.)
#[cfg(unix)]
#[test]
fn binding_over_a_stale_socket_file_fails() {
    let dir = conn::address::PrivateSocketDir::create().unwrap();
    std::fs::write(dir.socket_path(), b"stale").unwrap();
    assert!(matches!(Listener::bind(dir.address()), Err(Error::Io(_))));
}

#[test]
fn family_and_address_must_agree() {
    let err = Listener::builder()
        .address("127.0.0.1:0")
        .family(Family::Unix)
        .bind()
        .unwrap_err();
    assert_eq!(err.python_exception(), "ValueError");
    #[cfg(unix)]
    assert!(matches!(
        Listener::builder().family(Family::Pipe).bind(),
        Err(Error::Address(_))
    ));
    #[cfg(windows)]
    assert!(matches!(
        Listener::builder().family(Family::Unix).bind(),
        Err(Error::Address(_))
    ));
    assert!(matches!(
        Client::connect("nonsense"),
        Err(Error::Address(_))
    ));
    assert!(matches!(
        Client::connect("localhost:70000"),
        Err(Error::Address(_))
    ));
}

#[test]
fn wrong_key_fails_on_both_sides() {
    let mut l = Listener::builder()
        .address("127.0.0.1:0")
        .authkey("right")
        .bind()
        .unwrap();
    let address = l.address().clone();
    let client = thread::spawn(move || Client::builder(address).authkey("wrong").connect());
    // The wrong client is dropped and counted; accept goes on waiting (here, until its timeout).
    l.set_accept_timeout(Some(Duration::from_millis(500)));
    assert!(matches!(
        l.accept(),
        Err(Error::Timeout {
            operation: Operation::Accept
        })
    ));
    assert_eq!(l.handshake_failures(), 1);
    let server_err = l.take_handshake_failure().unwrap();
    assert!(matches!(&server_err, Error::Auth(AuthError::WrongDigest)));
    assert_eq!(server_err.python_exception(), "AuthenticationError");
    assert!(matches!(
        client.join().unwrap(),
        Err(Error::Auth(AuthError::Rejected))
    ));
    // The listener is still usable.
    listener_round_trip(&mut l, Some("right"));
}

#[test]
fn a_server_that_never_challenges_times_out_the_client() {
    let mut l = Listener::bind("127.0.0.1:0").unwrap();
    let address = l.address().clone();
    let client = thread::spawn(move || {
        Client::builder(address)
            .authkey("k")
            .handshake_timeout(Some(Duration::from_millis(200)))
            .connect()
    });
    let _conn = l.accept().unwrap();
    let err = client.join().unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                operation: Operation::Handshake
            }
        ),
        "{err:?}"
    );
}

#[test]
fn accept_timeout() {
    let mut l = Listener::builder()
        .address("127.0.0.1:0")
        .accept_timeout(Some(Duration::from_millis(50)))
        .bind()
        .unwrap();
    assert!(matches!(
        l.accept(),
        Err(Error::Timeout {
            operation: Operation::Accept
        })
    ));
}

#[test]
fn strict_policy_between_rust_peers() {
    let mut l = Listener::builder()
        .address("127.0.0.1:0")
        .authkey("k")
        .policy(Policy::strict())
        .bind()
        .unwrap();
    let address = l.address().clone();
    let client = thread::spawn(move || {
        Client::builder(address)
            .authkey("k")
            .policy(Policy::strict())
            .connect()
            .map(drop)
    });
    l.accept().unwrap();
    client.join().unwrap().unwrap();
}

#[test]
fn connect_refused_is_an_os_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = Client::connect(("127.0.0.1", port)).unwrap_err();
    assert!(
        matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{err:?}"
    );
    // CPython's precise OSError subclass, and a Debug that reads as a sentence (what
    // `fn main() -> Result<(), conn::Error>` prints).
    assert_eq!(err.python_exception(), "ConnectionRefusedError");
    let debug = format!("{err:?}");
    assert!(
        debug.starts_with("Io(") && !debug.contains("Os {"),
        "{debug}"
    );
    #[cfg(unix)]
    let missing = "/nonexistent/conn.sock";
    #[cfg(windows)]
    let missing = r"\\.\pipe\conn-nonexistent";
    let err = Client::connect(missing).unwrap_err();
    assert!(matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound));
    assert_eq!(err.python_exception(), "FileNotFoundError");
    let timeout = Error::Timeout {
        operation: Operation::Handshake,
    };
    assert_eq!(timeout.to_string(), "timed out during the handshake");
    assert_eq!(
        format!("{timeout:?}"),
        "Timeout(timed out during the handshake)"
    );
}

#[test]
fn wait_returns_ready_objects_in_input_order() {
    let pairs: Vec<_> = (0..4).map(|_| pipe().unwrap()).collect();
    let readers: Vec<&dyn Waitable> = pairs.iter().map(|(r, _)| r as _).collect();
    assert!(wait(&readers, NOW).unwrap().is_empty());
    let mut pairs = pairs;
    pairs[2].1.send(&None::<()>).unwrap();
    pairs[0].1.send(&None::<()>).unwrap();
    let readers: Vec<&Connection> = pairs.iter().map(|(r, _)| r).collect();
    assert_eq!(wait(&readers, T).unwrap(), vec![0, 2]);
    // A slice of connections, and an iterator, as they are.
    let (owned, _writers): (Vec<Connection>, Vec<Connection>) = pairs.into_iter().unzip();
    assert_eq!(wait(&owned, T).unwrap(), vec![0, 2]);
    assert_eq!(wait(owned.iter().rev(), T).unwrap(), vec![1, 3]);
}

#[test]
fn wait_errors_and_edge_cases() {
    let (a, b) = pipe().unwrap();
    assert!(matches!(
        wait(&[&a, &b, &a], NOW),
        Err(Error::DuplicateObject { index: 2 })
    ));
    let start = Instant::now();
    assert!(
        wait(&[] as &[&Connection], Some(Duration::from_millis(50)))
            .unwrap()
            .is_empty()
    );
    assert!(start.elapsed() >= Duration::from_millis(50));
    // Raw fds and listeners.
    let l = Listener::bind("127.0.0.1:0").unwrap();
    let fd = b.fileno().unwrap();
    // A mix: the list's type says so.
    let mixed: [&dyn Waitable; 2] = [&fd, &l];
    assert!(wait(mixed, NOW).unwrap().is_empty());
    let _c = std::net::TcpStream::connect(l.address().socket_addr().unwrap()).unwrap();
    assert_eq!(wait(mixed, T).unwrap(), vec![1], "a waiting client");
    drop(a);
    assert_eq!(wait(mixed, T).unwrap(), vec![0, 1], "hang-up counts");
}

#[test]
fn wait_set_reports_until_drained_and_counts_buffered_messages() {
    let mut set = WaitSet::new().unwrap();
    let mut writers = Vec::new();
    let mut keys = Vec::new();
    for _ in 0..50 {
        let (r, w) = pipe().unwrap();
        keys.push(set.insert(r).unwrap());
        writers.push(w);
    }
    assert_eq!(set.len(), 50);
    assert!(set.wait(NOW).unwrap().is_empty());
    writers[7].send_bytes(b"x").unwrap();
    writers[7].send_bytes(b"y").unwrap();
    writers[30].send_bytes(b"z").unwrap();
    thread::sleep(Duration::from_millis(20));
    let ready = set.wait(T).unwrap();
    assert_eq!(ready, vec![keys[7], keys[30]]);
    // Not drained: reported again.
    assert_eq!(set.wait(NOW).unwrap(), vec![keys[7], keys[30]]);
    // Read one of 7's two messages: the other is buffered in user space, so still ready.
    assert_eq!(set.get_mut(keys[7]).unwrap().recv_bytes().unwrap(), b"x");
    assert_eq!(set.get_mut(keys[30]).unwrap().recv_bytes().unwrap(), b"z");
    assert_eq!(set.wait(NOW).unwrap(), vec![keys[7]]);
    assert_eq!(set.get_mut(keys[7]).unwrap().recv_bytes().unwrap(), b"y");
    assert!(set.wait(NOW).unwrap().is_empty());
    // Removal and hang-up.
    let removed = set.remove(keys[7]).unwrap();
    assert!(set.get(keys[7]).is_none());
    drop(removed);
    drop(writers.remove(10));
    assert_eq!(set.wait(T).unwrap(), vec![keys[10]]);
}

#[cfg(unix)]
#[test]
fn wait_set_refuses_a_duplicate_fd_and_stays_intact() {
    let (a, mut b) = pipe().unwrap();
    let fd = a.fileno().unwrap();
    let mut set = WaitSet::new().unwrap();
    let key = set.insert(fd).unwrap();
    let refused = set.insert(fd).unwrap_err();
    assert!(matches!(refused.error(), Error::DuplicateObject { .. }));
    assert_eq!(refused.into_object().id(), fd.id(), "handed back");
    assert_eq!(set.len(), 1);
    b.send_bytes(b"!").unwrap();
    assert_eq!(set.wait(T).unwrap(), vec![key]);
    assert_eq!(set.get(key).unwrap().as_fd().as_raw_fd(), a.as_raw_fd());
}

#[test]
fn wait_set_keys_are_not_reused_and_refused_objects_come_back() {
    let mut set = WaitSet::new().unwrap();
    let (a, _wa) = pipe().unwrap();
    let ka = set.insert(a).unwrap();
    let a = set.remove(ka).unwrap();
    let (b, mut wb) = pipe().unwrap();
    let kb = set.insert(b).unwrap();
    assert_ne!(ka, kb, "a key is never given twice");
    assert!(set.get(ka).is_none() && set.remove(ka).is_none());
    wb.send_bytes(b"1").unwrap();
    assert_eq!(set.wait(T).unwrap(), vec![kb]);
    drop(a);
    // A closed connection is refused and handed back; nothing is counted or kept.
    let (mut r, mut w) = pipe_simplex().unwrap();
    w.send_bytes(&[0; 100]).unwrap();
    assert!(r.recv_bytes_max(10).is_err());
    let refused = set.insert(r).unwrap_err();
    assert!(matches!(refused.error(), Error::Closed));
    assert!(refused.into_object().closed());
    assert_eq!(set.len(), 1);
    assert_eq!(set.iter().map(|(k, _)| k).collect::<Vec<_>>(), vec![kb]);
}

/// A listener and its connections in one set with no glue: two messages that arrive in one
/// write are both reported, the second from the buffer.
#[test]
fn one_wait_set_serves_a_listener_and_its_connections() {
    use conn::Endpoint;
    let mut set = WaitSet::new().unwrap();
    let listener = Listener::builder()
        .address("127.0.0.1:0")
        .authkey("k")
        .bind()
        .unwrap();
    let address = listener.address().clone();
    let lk = set.insert(Endpoint::from(listener)).unwrap();
    let client = thread::spawn(move || {
        let mut c = Client::builder(address).authkey("k").connect().unwrap();
        // Two messages in one write: the server's first read takes both.
        c.send_bytes(b"one").unwrap();
        c.send_bytes(b"two").unwrap();
        c.recv_bytes().unwrap()
    });
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < 2 && start.elapsed() < Duration::from_secs(10) {
        for key in set.wait(Some(Duration::from_secs(1))).unwrap() {
            match set.get_mut(key) {
                Some(Endpoint::Listener(l)) => {
                    let c = l.accept().unwrap();
                    set.insert(Endpoint::from(c)).unwrap();
                }
                Some(Endpoint::Connection(c)) => {
                    // One message per wakeup: the other must be reported from the buffer.
                    got.push(c.recv_bytes().unwrap());
                }
                _ => unreachable!(),
            }
        }
    }
    assert_eq!(got, [b"one".to_vec(), b"two".to_vec()]);
    let (ck, conn) = set.iter().find(|(k, _)| *k != lk).unwrap();
    assert!(matches!(conn, Endpoint::Connection(_)));
    if let Some(Endpoint::Connection(c)) = set.get_mut(ck) {
        c.send_bytes(b"bye").unwrap();
    }
    assert_eq!(client.join().unwrap(), b"bye");
}

/// `Debug` of a connection shows what it is and how much it holds, never the bytes.
#[test]
fn debug_never_prints_message_bytes() {
    let (mut a, mut b) = pipe().unwrap();
    a.send_bytes(&[b'x'; 1000]).unwrap();
    a.send_bytes(&[b'x'; 1000]).unwrap();
    assert_eq!(b.recv_bytes().unwrap().len(), 1000);
    let text = format!("{b:?}");
    assert!(text.len() < 300, "{text}");
    // A stream's first read took the second message too (a pipe message is read alone).
    #[cfg(unix)]
    {
        assert!(b.has_buffered_message());
        assert!(text.contains("buffered: 1004"), "{text}");
    }
    // Neither as a byte list nor as text (a handle's number may contain "120" by chance).
    assert!(
        !text.contains("120, 120") && !text.contains("xxxx"),
        "{text}"
    );
    let (tx, rx) = b.split().unwrap();
    assert!(format!("{tx:?}{rx:?}").len() < 400);
}

/// A Windows pipe reads a message into the transport's buffer when readiness is asked for: the
/// handle is then not given up (the message would be lost), and the connection comes back
/// with the message still there. A zero-length message counts.
#[cfg(windows)]
#[test]
fn a_pipe_handle_is_not_given_up_with_a_message_read_ahead() {
    for payload in [&b"x"[..], b""] {
        let (mut a, b) = pipe().unwrap();
        a.send_bytes(payload).unwrap();
        assert!(b.poll(T).unwrap());
        let refused = b.into_owned_handle().unwrap_err();
        assert!(
            matches!(refused.error(), Error::HandOver { cut_off: false, .. }),
            "{:?}",
            refused.error()
        );
        let mut b = refused.into_connection();
        assert_eq!(b.recv_bytes().unwrap(), payload, "nothing lost");
    }
    let (_a, b) = pipe().unwrap();
    assert!(!b.poll(NOW).unwrap());
    // CPython's fileno(): the pipe handle.
    assert!(!std::os::windows::io::AsRawHandle::as_raw_handle(&b).is_null());
    b.into_owned_handle().unwrap();
}

/// Windows: std's sockets and child processes are waitable like connections.
#[cfg(windows)]
#[test]
fn std_sockets_and_child_processes_are_waitable() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert!(wait([&l], NOW).unwrap().is_empty());
    let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    assert_eq!(wait([&l], T).unwrap(), vec![0], "a client waits");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--list")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(wait([&child], T).unwrap(), vec![0], "the process exited");
    assert!(child.wait().unwrap().success());
}
