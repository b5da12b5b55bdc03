//! Child processes that inherit a connection (`conn::process::inherit`), with Rust and CPython
//! on either side, and no descriptor leaking into a child that was not meant to get it.

use std::collections::BTreeSet;
use std::process::{Command, ExitCode, Stdio};

use conn::{Connection, Pickle};
use conn_tests::examples::{example, output, spawn};
use conn_tests::harness::{self, once, per_python};
use conn_tests::python::Python;

const SCRIPT: &str = include_str!("../data/children.py");

/// The fds this process itself inherited open across exec (no `O_CLOEXEC` in
/// `/proc/self/fdinfo`): a shell's or cargo's jobserver, say. They pass to every child, ours
/// or not, so they are not what this test looks for.
fn inherited_by_us() -> BTreeSet<i32> {
    open_fds(std::process::id())
        .into_iter()
        .filter(|fd| {
            let info =
                std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok());
            flags.is_some_and(|f| f & 0o2_000_000 == 0)
        })
        .collect()
}

/// The fd numbers open in process `pid`.
fn open_fds(pid: u32) -> BTreeSet<i32> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect()
}

fn squares(conn: &mut Connection<Pickle>) {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    for n in 0..10i64 {
        conn.send(&n).unwrap();
        assert_eq!(conn.recv::<i64>().unwrap(), n * n);
    }
}

/// A Rust child gets exactly stdin, stdout, stderr and its connection, though the parent has
/// other connections and listeners open; it answers and ends at EOF.
fn rust_parent_rust_child_inherits_only_its_fd() {
    let (mut ours, theirs) = conn::pipe().unwrap();
    let _others = (
        conn::pipe().unwrap(),
        conn::pipe_simplex().unwrap(),
        conn::Listener::bind("127.0.0.1:0").unwrap(),
    );
    let mut cmd = Command::new(example("child_pipe"));
    cmd.args(["child", "7"]);
    conn::process::inherit(&mut cmd, [(theirs, 7)]).unwrap();
    let child = spawn(&mut cmd);
    drop(cmd);
    // One answer first: the child is then past its start-up (the dynamic loader briefly opens
    // files of its own) and waits in its next recv, holding what it inherited.
    ours.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    ours.send(&3i64).unwrap();
    assert_eq!(ours.recv::<i64>().unwrap(), 9);
    let mut fds = open_fds(child.id());
    for fd in inherited_by_us() {
        if fd > 2 && fd != 7 {
            fds.remove(&fd);
        }
    }
    let what: Vec<String> = fds
        .iter()
        .map(|fd| {
            let target = std::fs::read_link(format!("/proc/{}/fd/{fd}", child.id()));
            format!("{fd} -> {target:?}")
        })
        .collect();
    assert_eq!(
        fds,
        BTreeSet::from([0, 1, 2, 7]),
        "the child's fds: {what:?}"
    );
    // A child started meanwhile without `inherit` gets none of them. It echoes a line first,
    // so it is past its start-up when its fds are read.
    let mut bystander = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::{BufRead, Write};
        let mut stdin = bystander.stdin.take().unwrap();
        stdin.write_all(b"ready\n").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(bystander.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        bystander.stdin = Some(stdin);
    }
    let mut theirs = open_fds(bystander.id());
    theirs.retain(|fd| *fd <= 2 || !inherited_by_us().contains(fd));
    drop(bystander.stdin.take());
    bystander.wait().unwrap();
    assert!(
        theirs.iter().all(|fd| *fd <= 2),
        "a bystander's fds: {theirs:?}"
    );
    squares(&mut ours);
    drop(ours);
    output(child, "child_pipe child");
}

/// Numbers that collide (the child's fd numbers are the parent's fds of the other connection)
/// still arrive at the right numbers; numbers below 3 and duplicates are refused.
fn inherit_checks_its_numbers() {
    let (a, _a) = conn::pipe().unwrap();
    let (b, _b) = conn::pipe().unwrap();
    let mut cmd = Command::new("true");
    let err = conn::process::inherit(&mut cmd, [(a, 2)]).unwrap_err();
    assert!(
        err.to_string().contains("give the child 3 or more"),
        "{err}"
    );
    let err = conn::process::inherit(&mut cmd, [(b, 5), (conn::pipe().unwrap().0, 5)]).unwrap_err();
    assert!(err.to_string().contains("same fd number"), "{err}");
}

fn python_parent_rust_child(py: &Python) {
    let child = spawn(
        Command::new(&py.path)
            .args(["-c", SCRIPT, "parent"])
            .arg(example("child_pipe")),
    );
    assert_eq!(output(child, "children.py parent").trim(), "OK", "{py}");
}

fn rust_parent_python_child(py: &Python) {
    let (mut ours, theirs) = conn::pipe().unwrap();
    let mut cmd = Command::new(&py.path);
    cmd.args(["-c", SCRIPT, "child", "5"]);
    conn::process::inherit(&mut cmd, [(theirs, 5)]).unwrap();
    let child = spawn(&mut cmd);
    drop(cmd);
    squares(&mut ours);
    drop(ours);
    output(child, "children.py child");
}

/// The forty lines of the seed's wait example: ten `(i, 'Process-k')` per worker, each once.
fn assert_forty(out: &str, what: &str) {
    let mut seen: Vec<&str> = out.lines().filter(|l| l.starts_with('(')).collect();
    seen.sort_unstable();
    let mut want: Vec<String> = (1..=4)
        .flat_map(|k| (0..10).map(move |i| format!("({i}, 'Process-{k}')")))
        .collect();
    want.sort_unstable();
    assert_eq!(seen, want, "{what}:\n{out}");
}

fn seed_wait_with_four_worker_processes() {
    let child = spawn(&mut Command::new(example("seed_wait")));
    let out = output(child, "seed_wait");
    assert_forty(&out, "seed_wait");
    assert!(out.contains("received 40 messages; every pipe reported EOF; 4 workers exited"));
}

fn seed_wait_rust_parent_python_workers(py: &Python) {
    let child = spawn(
        Command::new(example("seed_wait"))
            .arg(&py.path)
            .args(["-c", SCRIPT, "worker"]),
    );
    assert_forty(
        &output(child, "seed_wait with Python workers"),
        &py.to_string(),
    );
}

fn seed_wait_python_parent_rust_workers(py: &Python) {
    let child = spawn(
        Command::new(&py.path)
            .args(["-c", SCRIPT, "seed_parent"])
            .arg(example("seed_wait")),
    );
    let out = output(child, "children.py seed_parent");
    assert_forty(&out, &py.to_string());
    assert_eq!(out.lines().last(), Some("OK"), "{py}");
}

/// Processes and connections in one `wait` and one `WaitSet`: a sentinel is ready when its
/// process exits (here: killed by a signal), not before, and a connection beside it is reported
/// on its own.
fn sentinels_and_connections_wait_together() {
    use conn::{Sentinel, WaitSet, Waitable, wait};
    use std::time::Duration;
    let now = Some(Duration::ZERO);
    let long = Some(Duration::from_secs(30));
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let sentinel = Sentinel::of(&sleeper).unwrap();
    let (mut a, b) = conn::pipe().unwrap();
    let both: [&dyn Waitable; 2] = [&b, &sentinel];
    assert!(wait(both, now).unwrap().is_empty());
    a.send_bytes(b"x").unwrap();
    assert_eq!(wait(both, long).unwrap(), [0]);
    sleeper.kill().unwrap();
    // The pipe is ready at once; the sentinel once the kernel has ended the process.
    assert!(sentinel.wait_exited(long).unwrap());
    assert_eq!(wait(both, long).unwrap(), [0, 1]);
    assert!(sleeper.wait().unwrap().code().is_none());

    let mut quick = Command::new("sleep").arg("0.3").spawn().unwrap();
    let (_c, d) = conn::pipe().unwrap();
    let mut set: WaitSet<Box<dyn Waitable + Send>> = WaitSet::new().unwrap();
    let s = set.insert(Box::new(Sentinel::of(&quick).unwrap())).unwrap();
    let c = set.insert(Box::new(d)).unwrap();
    assert!(set.wait(now).unwrap().is_empty());
    assert_eq!(
        set.wait(long).unwrap(),
        [s],
        "the process exits; the idle pipe stays quiet"
    );
    assert!(quick.wait().unwrap().success());
    drop(_c);
    let mut ready = set.wait(long).unwrap();
    ready.sort_unstable_by_key(|k| *k == c);
    assert_eq!(
        ready,
        [s, c],
        "an exited process stays ready, like a hung-up pipe"
    );
}

/// One end of a pipe travels from this process to B, from B to C (over a connection this
/// process also handed to B and C), and C talks to us on it: three processes, two hand-overs,
/// directions kept, messages still flowing.
fn a_connection_handed_between_three_processes() {
    let relay = env!("CARGO_BIN_EXE_conn-relay");
    // The three processes share one key, so that each can claim from the others' sharers.
    let key = b"conn relay key";
    conn::sharing::set_authkey(&key[..]);
    let start = |mode: &str, theirs| {
        let mut cmd = Command::new(relay);
        cmd.arg(mode)
            .env("CONN_TEST_KEY", conn_tests::hex::hex(key));
        conn::process::inherit(&mut cmd, [(theirs, 3)]).unwrap();
        spawn(&mut cmd)
    };
    let (mut to_b, b_end) = conn::pipe().unwrap();
    let (mut to_c, c_end) = conn::pipe().unwrap();
    let b = start("forward", b_end);
    let c = start("use", c_end);
    let (b_to_c, c_from_b) = conn::pipe().unwrap();
    let (mut ours, travelling) = conn::pipe().unwrap();
    to_b.send_connection(b_to_c).unwrap();
    to_c.send_connection(c_from_b).unwrap();
    to_b.send_connection(travelling).unwrap();
    ours.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    let hello: String = ours.recv().unwrap();
    assert_eq!(hello, format!("hello from {}", c.id()));
    ours.send(&"ok").unwrap();
    output(b, "conn-relay forward");
    output(c, "conn-relay use");
}

fn main() -> ExitCode {
    harness::main(
        vec![
            per_python("python_parent_rust_child", python_parent_rust_child).since(
                3,
                2,
                "subprocess pass_fds arrived in 3.2",
            ),
            per_python("rust_parent_python_child", rust_parent_python_child).since(
                3,
                0,
                "the child script is Python 3",
            ),
            per_python(
                "seed_wait_rust_parent_python_workers",
                seed_wait_rust_parent_python_workers,
            )
            .since(3, 0, "the worker script is Python 3"),
            per_python(
                "seed_wait_python_parent_rust_workers",
                seed_wait_python_parent_rust_workers,
            )
            .since(3, 3, "subprocess pass_fds and wait() with a timeout"),
        ],
        vec![
            once(
                "rust_parent_rust_child_inherits_only_its_fd",
                rust_parent_rust_child_inherits_only_its_fd,
            ),
            once("inherit_checks_its_numbers", inherit_checks_its_numbers),
            once(
                "seed_wait_with_four_worker_processes",
                seed_wait_with_four_worker_processes,
            ),
            once(
                "sentinels_and_connections_wait_together",
                sentinels_and_connections_wait_together,
            ),
            once(
                "a_connection_handed_between_three_processes",
                a_connection_handed_between_three_processes,
            ),
        ],
    )
}
