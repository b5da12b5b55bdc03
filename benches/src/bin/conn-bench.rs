//! One side of each benchmark workload, for conn and for the raw floor. `cargo xtask bench` runs
//! `conn-bench measure …`, which starts its own peer (`conn-bench peer …`) in a second process,
//! runs the workload and prints one JSON line with the result.
//!
//! ```text
//! conn-bench measure IMPL WORKLOAD TRANSPORT SIZE COUNT
//! conn-bench peer    IMPL WORKLOAD TRANSPORT SIZE COUNT [ADDRESS]
//! ```
//!
//! - IMPL: `conn`, `raw` (the floor: CPython's wire format, one vectored write per message,
//!   buffered reads with large bodies read straight into the destination, nothing else),
//!   `conn-postcard` / `conn-pickle` (objects); for `stream` also `ipc-channel` (servo's
//!   ipc-channel: an `IpcBytesSender` to an `IpcBytesReceiver` across the two processes, its
//!   own transport whatever TRANSPORT says) and `ceiling` (bytes only, no framing, over a
//!   socketpair with large buffers: the fastest stream this OS offers us; the peer writes
//!   COUNT × SIZE bytes in SIZE-byte writes, the measurer reads them into one SIZE-byte buffer).
//! - WORKLOAD: `pingpong` (SIZE-byte round trips, µs each), `stream` (COUNT one-way SIZE-byte
//!   messages, MiB/s), `objects` (round trips of [`Sample`]), `handshake` (authenticated
//!   connections, µs each), `wait` / `waitset` (one call over SIZE connections with one ready, µs;
//!   in one process), `rss` (peak resident MiB of a process receiving one SIZE-byte message).
//! - `codec` (one process): TRANSPORT is `decode` or `encode`, SIZE a corpus (0 the sample,
//!   1 10^5 ints, 2 a dict of 10^4 short strings, 3 10^3 datetimes), µs per call.
//! - `accept`: SIZE concurrent clients (`conn-bench clients ADDRESS SIZE`, the same load for
//!   CPython's listener) connect, authenticate and hang up, over and over; the listener's
//!   accepted connections per second.
//! - TRANSPORT: `pipe` (`Pipe(duplex=True)`'s socketpair, or for `stream` and `rss`
//!   `Pipe(duplex=False)`'s one-way pair), `duplex` (the duplex socketpair for every workload),
//!   `unix`, `tcp`.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark aborts on any failure"
)]

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use benches::Sample;
use conn::transport::os::{Listener as RawListener, Stream};
use conn::{Address, Codec, Connection, Pickle, Postcard, PyValue, WaitSet, Waitable};

const WARMUP: usize = 200;

struct Args {
    imp: String,
    workload: String,
    transport: String,
    size: usize,
    count: usize,
    address: Option<String>,
}

impl Args {
    /// The implementation to run: `conn-ospipe` is conn over an OS pipe instead of the
    /// socketpair `pipe_simplex()` uses (for a stream beside it).
    fn conn_as(&self) -> &str {
        match self.imp.as_str() {
            "conn-ospipe" => "conn",
            imp => imp,
        }
    }
}

fn parse_args() -> (String, Args) {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 6 {
        eprintln!("usage: conn-bench measure|peer IMPL WORKLOAD TRANSPORT SIZE COUNT [ADDRESS]");
        std::process::exit(2);
    }
    (
        a[0].clone(),
        Args {
            imp: a[1].clone(),
            workload: a[2].clone(),
            transport: a[3].clone(),
            size: a[4].parse().expect("SIZE"),
            count: a[5].parse().expect("COUNT"),
            address: a.get(6).cloned(),
        },
    )
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("clients") {
        return clients();
    }
    let (role, args) = parse_args();
    match role.as_str() {
        "measure" => measure(&args),
        "peer" => peer(&args),
        other => panic!("unknown role {other}"),
    }
}

// ---- the raw floor ----------------------------------------------------------------------

/// CPython's framing over a stream with nothing else: one vectored write per message; a 64 KiB
/// read buffer; large bodies read straight into the destination.
struct Raw {
    s: Stream,
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
}

impl Raw {
    fn new(s: Stream) -> Self {
        Self {
            s,
            buf: vec![0; 64 * 1024].into_boxed_slice(),
            pos: 0,
            filled: 0,
        }
    }

    fn send(&mut self, payload: &[u8]) {
        let header = (payload.len() as u32).to_be_bytes();
        let mut slices = [IoSlice::new(&header), IoSlice::new(payload)];
        let mut bufs = &mut slices[..];
        while !bufs.is_empty() {
            let n = (&self.s).write_vectored(bufs).unwrap();
            IoSlice::advance_slices(&mut bufs, n);
        }
    }

    fn fill(&mut self, n: usize) -> bool {
        if self.buf.len() - self.pos < n {
            self.buf.copy_within(self.pos..self.filled, 0);
            self.filled -= self.pos;
            self.pos = 0;
        }
        while self.filled - self.pos < n {
            let got = (&self.s).read(&mut self.buf[self.filled..]).unwrap();
            if got == 0 {
                return false;
            }
            self.filled += got;
        }
        true
    }

    /// Receives one message into `dst` (resized to fit); false at EOF.
    fn recv(&mut self, dst: &mut Vec<u8>) -> bool {
        if !self.fill(4) {
            return false;
        }
        let len = u32::from_be_bytes(self.buf[self.pos..self.pos + 4].try_into().unwrap()) as usize;
        self.pos += 4;
        dst.resize(len, 0);
        let have = len.min(self.filled - self.pos);
        dst[..have].copy_from_slice(&self.buf[self.pos..self.pos + have]);
        self.pos += have;
        let mut at = have;
        while at < len {
            if len - at >= self.buf.len() {
                let n = (&self.s).read(&mut dst[at..]).unwrap();
                assert!(n > 0, "EOF inside a message");
                at += n;
            } else {
                self.pos = 0;
                self.filled = 0;
                assert!(self.fill(1), "EOF inside a message");
                let n = (len - at).min(self.filled);
                dst[at..at + n].copy_from_slice(&self.buf[..n]);
                self.pos = n;
                at += n;
            }
        }
        true
    }
}

// ---- setting up the two processes -------------------------------------------------------

/// Starts the peer process, handing it `child_end` as stdin (duplex, or our writer's reader) or
/// stdout (a pipe it writes), and `address` as its last argument.
fn spawn_peer(args: &Args, child_end: Option<(OwnedFd, bool)>, address: Option<&str>) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "peer",
        &args.imp,
        &args.workload,
        &args.transport,
        &args.size.to_string(),
        &args.count.to_string(),
    ]);
    if let Some(a) = address {
        cmd.arg(a);
    }
    match child_end {
        Some((fd, true)) => {
            cmd.stdin(Stdio::from(fd)).stdout(Stdio::null());
        }
        Some((fd, false)) => {
            cmd.stdin(Stdio::null()).stdout(Stdio::from(fd));
        }
        None => {
            cmd.stdin(Stdio::null()).stdout(Stdio::null());
        }
    }
    cmd.spawn().unwrap()
}

/// Our end of the workload's link, and the peer process. `one_way`: the peer only sends.
fn link(args: &Args, one_way: bool) -> (Stream, Child) {
    match args.transport.as_str() {
        "pipe" if one_way => {
            // What pipe_simplex() uses.
            let (r, w) = Stream::simplex().unwrap();
            let child = spawn_peer(args, Some((OwnedFd::from(w), false)), None);
            (r, child)
        }
        "pipe" if one_way && args.imp == "conn-ospipe" => {
            // An OS pipe with its buffer at the system's most (1 MiB by default), beside the
            // socketpair `pipe_simplex()` uses.
            let (r, w) = io::pipe().unwrap();
            let w = OwnedFd::from(w);
            set_pipe_size(&w);
            let child = spawn_peer(args, Some((w, false)), None);
            (Stream::try_from(OwnedFd::from(r)).unwrap(), child)
        }
        "pipe" | "duplex" => {
            let (a, b) = Stream::pair().unwrap();
            let child = spawn_peer(args, Some((OwnedFd::from(b), true)), None);
            (a, child)
        }
        "unix" | "tcp" => {
            let (listener, _dir) = bind(&args.transport);
            let address = listener.address().to_string();
            let child = spawn_peer(args, None, Some(&address));
            let (s, _) = listener.accept(Some(Duration::from_secs(30))).unwrap();
            (s, child)
        }
        other => panic!("unknown transport {other}"),
    }
}

fn bind(transport: &str) -> (RawListener, Option<conn::address::PrivateSocketDir>) {
    if transport == "unix" {
        let dir = conn::address::PrivateSocketDir::create().unwrap();
        (RawListener::bind(&dir.address(), 128).unwrap(), Some(dir))
    } else {
        let address: Address = "127.0.0.1:0".parse().unwrap();
        (RawListener::bind(&address, 128).unwrap(), None)
    }
}

/// Raises an OS pipe's buffer to the system's maximum (`/proc/sys/fs/pipe-max-size`).
fn set_pipe_size(fd: &OwnedFd) {
    use std::os::fd::AsRawFd;
    let max: i32 = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20);
    // SAFETY: `fd` is an open pipe end for the duration of the call; F_SETPIPE_SZ takes an int.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, max) };
    assert!(r >= max, "F_SETPIPE_SZ: {}", io::Error::last_os_error());
}

/// The peer's end: its stdin or stdout for pipes, else a connection to the address.
fn peer_link(args: &Args, one_way: bool) -> Stream {
    match args.transport.as_str() {
        "pipe" if one_way => {
            let fd = io::stdout().as_fd().try_clone_to_owned().unwrap();
            Stream::try_from(fd).unwrap()
        }
        "pipe" | "duplex" => {
            let fd = io::stdin().as_fd().try_clone_to_owned().unwrap();
            Stream::from(std::os::unix::net::UnixStream::from(fd))
        }
        _ => {
            let address: Address = args.address.as_deref().unwrap().parse().unwrap();
            Stream::connect(&address, Some(Duration::from_secs(30))).unwrap()
        }
    }
}

fn conn_of<C: Codec + Clone>(s: Stream, codec: C) -> Connection<C> {
    Connection::from_stream(s, codec)
}

fn one_way(workload: &str) -> bool {
    matches!(workload, "stream" | "rss")
}

// ---- the measuring side ----------------------------------------------------------------

fn report(args: &Args, seconds: f64, value: f64, unit: &str) {
    println!(
        "{{\"impl\":\"{}\",\"workload\":\"{}\",\"transport\":\"{}\",\"size\":{},\"count\":{},\"seconds\":{seconds:.6},\"value\":{value:.4},\"unit\":\"{unit}\"}}",
        args.imp, args.workload, args.transport, args.size, args.count
    );
}

/// The pickle CPython writes for codec corpus `corpus` (`cpython_driver.py` names them: 0 the
/// sample, 1 10^5 ints, 2 a dict of 10^4 short strings, 3 10^3 datetimes, 4 10^4 JSON-like
/// records, 5 10^4 tuples, 6 10^3 bytes blobs of 4 KiB, 7 one 16 MiB str, 8 a set of 10^4
/// ints, 9 10^3 datetimes with tzinfo, 10 10^4 big ints).
fn python_pickle(corpus: usize) -> Vec<u8> {
    use std::hash::{Hash, Hasher};
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/cpython_driver.py");
    // Made once per version of the driver (the 16 MiB str takes a second to make and pass).
    let mut h = std::collections::hash_map::DefaultHasher::new();
    include_str!("../../cpython_driver.py").hash(&mut h);
    let cached = std::env::temp_dir().join(format!(
        "conn-bench-corpus-{corpus}-{:016x}.pickle",
        h.finish()
    ));
    if let Ok(bytes) = std::fs::read(&cached) {
        return bytes;
    }
    let bytes = python_pickle_made(driver, corpus);
    let partial = cached.with_extension(format!("{}.part", std::process::id()));
    if std::fs::write(&partial, &bytes).is_ok() {
        let _ = std::fs::rename(&partial, &cached);
    }
    bytes
}

fn python_pickle_made(driver: &str, corpus: usize) -> Vec<u8> {
    let out = Command::new("python3")
        .args([driver, "dump", &corpus.to_string()])
        .output()
        .expect("python3 for the corpus pickle");
    assert!(out.status.success(), "cpython_driver.py dump failed");
    let hex = String::from_utf8(out.stdout).unwrap();
    let hex = hex.trim();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// One record of corpus 4, as a Rust program would declare it.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Record {
    id: i64,
    name: String,
    score: f64,
    active: bool,
    manager: Option<String>,
    tags: Vec<String>,
}

/// Times `op` `count` times after a warm-up; µs per call.
fn time_op(count: usize, mut op: impl FnMut()) -> (f64, f64) {
    for _ in 0..WARMUP.min(count) {
        op();
    }
    let t = Instant::now();
    for _ in 0..count {
        op();
    }
    let s = t.elapsed().as_secs_f64();
    (s, s * 1e6 / count as f64)
}

/// Decodes `bytes` as `T` (`decode`), or encodes the `T` decoded from them (`encode`).
fn codec_typed<T: serde::Serialize + serde::de::DeserializeOwned>(
    direction: &str,
    bytes: &[u8],
    count: usize,
) -> (f64, f64) {
    use std::hint::black_box;
    let codec = Pickle::new();
    if direction == "decode" {
        return time_op(count, || {
            black_box(codec.decode::<T>(black_box(bytes)).unwrap());
        });
    }
    let value: T = codec.decode(bytes).unwrap();
    let mut out = Vec::with_capacity(bytes.len() * 2);
    time_op(count, || {
        out.clear();
        codec.encode_into(black_box(&value), &mut out).unwrap();
    })
}

/// As [`codec_typed`], with conn's Python value model.
fn codec_value(direction: &str, bytes: &[u8], count: usize) -> (f64, f64) {
    use std::hint::black_box;
    let codec = Pickle::new();
    if direction.starts_with("decode") {
        return time_op(count, || {
            black_box(codec.decode_value(black_box(bytes)).unwrap());
        });
    }
    let value = codec.decode_value(bytes).unwrap();
    let mut out = Vec::with_capacity(bytes.len() * 2);
    time_op(count, || {
        out.clear();
        codec.encode_value(black_box(&value), &mut out).unwrap();
    })
}

/// The allocation floor of a decode: building the decoded value again from itself (every
/// string, container and big int allocated anew) and dropping it, with no pickle read. What
/// any decoder pays for making the value with this allocator.
fn floor_typed<T: Clone + serde::de::DeserializeOwned>(bytes: &[u8], count: usize) -> (f64, f64) {
    floor_rebuilt::<T>(bytes, count, T::clone)
}

/// [`floor_typed`] with the value made again by `rebuild`: a hash map or set is collected
/// anew (every key hashed and inserted, as a decoder must), where `clone` would copy its table.
fn floor_rebuilt<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    count: usize,
    rebuild: impl Fn(&T) -> T,
) -> (f64, f64) {
    use std::hint::black_box;
    let value: T = Pickle::new().decode(bytes).unwrap();
    time_op(count, || {
        black_box(rebuild(black_box(&value)));
    })
}

/// [`floor_typed`] for a `PyValue`: a deep copy making what the decoder makes (an `Arc` per
/// str, bytes, big int, datetime and container), and sharing what the decoded value shares: a
/// str or bytes held twice (a memoized dict key) is shared again, not copied. (No container of
/// the corpora is shared; timezones and globals are shared, as the decoder shares them.)
fn floor_value(bytes: &[u8], count: usize) -> (f64, f64) {
    use conn::pickle::{BigInt, DateTime, Shared};
    use std::hint::black_box;
    use std::sync::Arc;
    fn deep(v: &PyValue) -> PyValue {
        let seq = |items: &[PyValue]| Shared::new(items.iter().map(deep).collect::<Vec<_>>());
        match v {
            PyValue::Str(s) if Arc::strong_count(s) == 1 => PyValue::Str(Arc::from(&**s)),
            PyValue::Bytes(b) if Arc::strong_count(b) == 1 => PyValue::Bytes(Arc::from(&**b)),
            PyValue::BigInt(b) => {
                PyValue::BigInt(BigInt::from_signed_le_bytes(b.to_signed_le_bytes()))
            }
            PyValue::List(s) => PyValue::List(seq(s)),
            PyValue::Tuple(s) => PyValue::Tuple(seq(s)),
            PyValue::Set(s) => PyValue::Set(seq(s)),
            PyValue::Dict(m) => PyValue::Dict(Shared::new(
                m.iter()
                    .map(|(k, x)| (deep(k), deep(x)))
                    .collect::<Vec<_>>(),
            )),
            PyValue::DateTime(d) => PyValue::DateTime(Shared::new(DateTime::clone(d))),
            other => other.clone(),
        }
    }
    let value = Pickle::new().decode_value(bytes).unwrap();
    time_op(count, || {
        black_box(deep(black_box(&value)));
    })
}

/// `codec decode|encode|decode-value|encode-value CORPUS`: conn's pickle codec in one process,
/// on the bytes CPython writes for the corpus (decode), or on what it decoded from them
/// (encode); typed as a Rust program would declare the data, or as a `PyValue`.
fn measure_codec(args: &Args) {
    use std::collections::{HashMap, HashSet};
    // Held in a copy, the first buffer freed: as in a program that received the message, whose
    // receive buffer (its size) was freed before it was decoded. glibc's malloc serves a
    // block that large from `mmap`, and freeing it raises the size below which blocks come
    // from the heap and the free space it keeps instead of handing it back to the kernel.
    // Without that, whether the decoded values' memory is faulted in afresh for every call
    // depends on which large blocks the process happened to free before (here, none), not
    // on the decoder: the value made alone took 16× longer (1000 4 KiB bytes objects).
    let bytes = {
        let received = python_pickle(args.size);
        received.clone()
    };
    let (direction, count) = (args.transport.as_str(), args.count);
    if args.imp == "floor" {
        // Decode rows only: the value each decodes to, made again.
        let (s, us) = match (direction, args.size) {
            ("decode", 0) => floor_typed::<Sample>(&bytes, count),
            ("decode", 1) => floor_typed::<Vec<i64>>(&bytes, count),
            ("decode", 2) => floor_rebuilt::<HashMap<String, String>>(&bytes, count, |m| {
                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
            }),
            ("decode", 4) => floor_typed::<Vec<Record>>(&bytes, count),
            ("decode", 5) => floor_typed::<Vec<(i64, String, f64)>>(&bytes, count),
            ("decode", 6) => floor_typed::<Vec<serde_bytes::ByteBuf>>(&bytes, count),
            ("decode", 7) => floor_typed::<String>(&bytes, count),
            ("decode", 8) => {
                floor_rebuilt::<HashSet<i64>>(&bytes, count, |s| s.iter().copied().collect())
            }
            ("decode", 10) => floor_typed::<Vec<i128>>(&bytes, count),
            _ => floor_value(&bytes, count),
        };
        return report(args, s, us, "us/op");
    }
    let (s, us) = if direction.ends_with("-value") {
        codec_value(direction, &bytes, count)
    } else {
        match args.size {
            0 => codec_typed::<Sample>(direction, &bytes, count),
            1 => codec_typed::<Vec<i64>>(direction, &bytes, count),
            2 => codec_typed::<HashMap<String, String>>(direction, &bytes, count),
            4 => codec_typed::<Vec<Record>>(direction, &bytes, count),
            5 => codec_typed::<Vec<(i64, String, f64)>>(direction, &bytes, count),
            6 => codec_typed::<Vec<serde_bytes::ByteBuf>>(direction, &bytes, count),
            7 => codec_typed::<String>(direction, &bytes, count),
            8 => codec_typed::<HashSet<i64>>(direction, &bytes, count),
            10 => codec_typed::<Vec<i128>>(direction, &bytes, count),
            // Datetimes have no serde type of their own: the value model is the typed form.
            _ => codec_value(direction, &bytes, count),
        }
    };
    report(args, s, us, "us/op");
}

fn measure(args: &Args) {
    match args.imp.as_str() {
        "ipc-channel" => return measure_ipc_channel(args),
        "ceiling" => return measure_ceiling(args),
        _ => {}
    }
    match args.workload.as_str() {
        "codec" => return measure_codec(args),
        "wait" | "waitset" => return measure_wait(args),
        "handshake" => return measure_handshake(args),
        "accept" if args.imp == "conn-tokio" => return measure_accept_tokio(args),
        "accept" => return measure_accept(args),
        _ => {}
    }
    if args.imp == "conn-tokio" {
        let (stream, child) = link(args, one_way(&args.workload));
        return measure_tokio(args, stream, child);
    }
    if args.imp == "tokio-raw" {
        let (stream, mut child) = link(args, one_way(&args.workload));
        if args.workload == "stream" {
            let s = runtime().block_on(async {
                let mut r = TokioRaw::new(stream);
                let mut buf = Vec::new();
                r.recv(&mut buf).await;
                let t = Instant::now();
                for _ in 1..args.count {
                    r.recv(&mut buf).await;
                }
                t.elapsed().as_secs_f64()
            });
            let mib = (args.size * (args.count - 1)) as f64 / (1 << 20) as f64;
            report(args, s, mib / s, "MiB/s");
            let _ = child.wait();
            return;
        }
        let s = runtime().block_on(async {
            let mut r = TokioRaw::new(stream);
            let payload = vec![0x5au8; args.size];
            let mut buf = Vec::new();
            for _ in 0..WARMUP {
                r.send(&payload).await;
                r.recv(&mut buf).await;
            }
            let t = Instant::now();
            for _ in 0..args.count {
                r.send(&payload).await;
                r.recv(&mut buf).await;
            }
            t.elapsed().as_secs_f64()
        });
        report(args, s, s * 1e6 / args.count as f64, "us/rt");
        let _ = child.wait();
        return;
    }
    let (stream, mut child) = link(args, one_way(&args.workload));
    // Only ping-pong sends from this side; the rss workload must not hold a payload of its own.
    let payload = if args.workload == "pingpong" {
        vec![0x5au8; args.size]
    } else {
        Vec::new()
    };
    match (args.workload.as_str(), args.conn_as()) {
        ("pingpong", "conn") => {
            let mut c = conn_of(stream, Pickle::new());
            let mut buf = vec![0u8; args.size];
            let round = |c: &mut Connection| {
                c.send_bytes(&payload).unwrap();
                c.recv_bytes_into(&mut buf).unwrap();
            };
            let mut round = round;
            for _ in 0..WARMUP {
                round(&mut c);
            }
            let t = Instant::now();
            for _ in 0..args.count {
                round(&mut c);
            }
            let s = t.elapsed().as_secs_f64();
            report(args, s, s * 1e6 / args.count as f64, "us/rt");
        }
        ("pingpong", "raw") => {
            let mut r = Raw::new(stream);
            let mut buf = Vec::with_capacity(args.size);
            for _ in 0..WARMUP {
                r.send(&payload);
                r.recv(&mut buf);
            }
            let t = Instant::now();
            for _ in 0..args.count {
                r.send(&payload);
                r.recv(&mut buf);
            }
            let s = t.elapsed().as_secs_f64();
            report(args, s, s * 1e6 / args.count as f64, "us/rt");
        }
        ("objects", imp) => {
            let sample = Sample::new();
            let s = match imp {
                "conn-postcard" => object_rounds(conn_of(stream, Postcard), &sample, args.count),
                "conn-pickle" => object_rounds(conn_of(stream, Pickle::new()), &sample, args.count),
                other => panic!("objects needs conn-postcard or conn-pickle, not {other}"),
            };
            report(args, s, s * 1e6 / args.count as f64, "us/rt");
        }
        ("stream", "conn") => {
            let mut c = conn_of(stream, Pickle::new());
            let mut buf = vec![0u8; args.size];
            c.recv_bytes_into(&mut buf).unwrap();
            let t = Instant::now();
            for _ in 1..args.count {
                c.recv_bytes_into(&mut buf).unwrap();
            }
            let s = t.elapsed().as_secs_f64();
            let mib = (args.size * (args.count - 1)) as f64 / (1 << 20) as f64;
            report(args, s, mib / s, "MiB/s");
        }
        ("stream", "raw") => {
            let mut r = Raw::new(stream);
            let mut buf = Vec::with_capacity(args.size);
            r.recv(&mut buf);
            let t = Instant::now();
            for _ in 1..args.count {
                r.recv(&mut buf);
            }
            let s = t.elapsed().as_secs_f64();
            let mib = (args.size * (args.count - 1)) as f64 / (1 << 20) as f64;
            report(args, s, mib / s, "MiB/s");
        }
        ("rss", "conn") => {
            let mut c = conn_of(stream, Pickle::new());
            let t = Instant::now();
            let m = c.recv_bytes().unwrap();
            assert_eq!(m.len(), args.size);
            report(args, t.elapsed().as_secs_f64(), peak_rss_mib(), "MiB");
        }
        ("rss", "raw") => {
            let mut r = Raw::new(stream);
            let mut m = Vec::new();
            let t = Instant::now();
            r.recv(&mut m);
            report(args, t.elapsed().as_secs_f64(), peak_rss_mib(), "MiB");
        }
        (w, i) => panic!("no workload {w} for {i}"),
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "peer failed: {status}");
}

fn object_rounds<C: Codec + Clone>(mut c: Connection<C>, sample: &Sample, count: usize) -> f64 {
    for _ in 0..WARMUP.min(count) {
        c.send(sample).unwrap();
        let _: Sample = c.recv().unwrap();
    }
    let t = Instant::now();
    for _ in 0..count {
        c.send(sample).unwrap();
        let back: Sample = c.recv().unwrap();
        assert_eq!(back.floats.len(), 1000);
    }
    t.elapsed().as_secs_f64()
}

/// `conn-bench clients ADDRESS N`: N threads that connect, authenticate and hang up until the
/// listener goes away (the load of the `accept` workload, for conn's listener and CPython's).
fn clients() {
    let a: Vec<String> = std::env::args().skip(2).collect();
    let address: Address = a[0].parse().expect("ADDRESS");
    let n: usize = a[1].parse().expect("N");
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let address = address.clone();
            std::thread::spawn(move || {
                let key = conn::AuthKey::from("secret password");
                let until = Instant::now() + Duration::from_secs(120);
                while Instant::now() < until {
                    // CPython's client order (answer, then deliver, no pipelining), so that
                    // every listener meets the clients it was written for.
                    let handshake = conn::Client::builder(&address)
                        .timeout(Some(Duration::from_secs(10)))
                        .connect()
                        .and_then(|mut c| {
                            conn::answer_challenge(&mut c, &key)?;
                            conn::deliver_challenge(&mut c, &key)?;
                            Ok(c)
                        });
                    match handshake {
                        Ok(c) => drop(c),
                        // The listener is gone: the measurement is over.
                        Err(conn::Error::Io(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                            return;
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

/// The `accept` workload: accepted, authenticated connections per second with SIZE clients
/// at once.
/// The accept workloads' load: a `clients` process of this binary with SIZE clients connecting,
/// authenticating and hanging up in a loop; stopped when dropped.
struct Load(Child);

impl Load {
    fn start(address: &str, clients: usize) -> Self {
        Self(
            Command::new(std::env::current_exe().unwrap())
                .args(["clients", address, &clients.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn measure_accept(args: &Args) {
    let mut listener = conn::Listener::builder()
        .address("127.0.0.1:0")
        .authkey("secret password")
        .backlog(args.size as i32)
        .bind()
        .unwrap();
    let address = listener.address().to_string();
    let load = Load::start(&address, args.size);
    for _ in 0..args.size.min(100) {
        drop(listener.accept().unwrap());
    }
    let t = Instant::now();
    for _ in 0..args.count {
        drop(listener.accept().unwrap());
    }
    let s = t.elapsed().as_secs_f64();
    report(args, s, args.count as f64 / s, "conn/s");
    drop(listener);
    drop(load);
}

// ---- conn under tokio (conn-tokio): the same workloads, one current-thread runtime --------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An async connection over the benchmark's stream.
fn tokio_conn(s: Stream) -> conn::tokio::Connection {
    conn::tokio::Connection::from_blocking(conn_of(s, Pickle::new())).unwrap()
}

fn measure_tokio(args: &Args, stream: Stream, mut child: Child) {
    runtime().block_on(async {
        let mut c = tokio_conn(stream);
        let mut buf = vec![0u8; args.size];
        match args.workload.as_str() {
            "pingpong" => {
                let payload = vec![0x5au8; args.size];
                for _ in 0..WARMUP {
                    c.send_bytes(&payload).await.unwrap();
                    c.recv_bytes_into(&mut buf).await.unwrap();
                }
                let t = Instant::now();
                for _ in 0..args.count {
                    c.send_bytes(&payload).await.unwrap();
                    c.recv_bytes_into(&mut buf).await.unwrap();
                }
                let s = t.elapsed().as_secs_f64();
                report(args, s, s * 1e6 / args.count as f64, "us/rt");
            }
            "stream" => {
                c.recv_bytes_into(&mut buf).await.unwrap();
                let t = Instant::now();
                for _ in 1..args.count {
                    c.recv_bytes_into(&mut buf).await.unwrap();
                }
                let s = t.elapsed().as_secs_f64();
                let mib = (args.size * (args.count - 1)) as f64 / (1 << 20) as f64;
                report(args, s, mib / s, "MiB/s");
            }
            w => panic!("conn-tokio has no {w} workload"),
        }
        drop(c);
    });
    let _ = child.wait();
}

fn peer_tokio(args: &Args, stream: Stream) {
    runtime().block_on(async {
        let mut c = tokio_conn(stream);
        match args.workload.as_str() {
            "pingpong" => {
                let mut buf = vec![0u8; args.size];
                while let Ok(n) = c.recv_bytes_into(&mut buf).await {
                    c.send_bytes(&buf[..n]).await.unwrap();
                }
            }
            "stream" => {
                let payload = vec![0x5au8; args.size];
                for _ in 0..args.count {
                    c.send_bytes(&payload).await.unwrap();
                }
            }
            w => panic!("no conn-tokio peer for {w}"),
        }
    });
}

/// The async floor: plain tokio sockets (`tokio::net::UnixStream` / `TcpStream`, each
/// readiness handled by tokio itself) framing as `Raw` does, a 64 KiB buffered reader and one
/// vectored write per message.
struct TokioRaw {
    s: tokio::io::BufReader<TokioSocket>,
}

enum TokioSocket {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

impl tokio::io::AsyncRead for TokioSocket {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Unix(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Self::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for TokioSocket {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Unix(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Self::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Unix(s) => std::pin::Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tcp(s) => std::pin::Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl TokioRaw {
    fn new(stream: Stream) -> Self {
        let tcp = stream.kind() == conn::transport::os::StreamKind::Tcp;
        let fd = OwnedFd::from(conn::OwnedHandle::from(stream));
        let socket = if tcp {
            let s = std::net::TcpStream::from(fd);
            s.set_nonblocking(true).unwrap();
            TokioSocket::Tcp(tokio::net::TcpStream::from_std(s).unwrap())
        } else {
            let s = std::os::unix::net::UnixStream::from(fd);
            s.set_nonblocking(true).unwrap();
            TokioSocket::Unix(tokio::net::UnixStream::from_std(s).unwrap())
        };
        Self {
            s: tokio::io::BufReader::with_capacity(64 * 1024, socket),
        }
    }

    async fn send(&mut self, payload: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let header = (payload.len() as u32).to_be_bytes();
        let mut slices = [IoSlice::new(&header), IoSlice::new(payload)];
        let mut bufs = &mut slices[..];
        while !bufs.is_empty() {
            let n = self.s.get_mut().write_vectored(bufs).await.unwrap();
            IoSlice::advance_slices(&mut bufs, n);
        }
    }

    /// The next message into `buf`; false at end of file.
    async fn recv(&mut self, buf: &mut Vec<u8>) -> bool {
        use tokio::io::AsyncReadExt;
        let mut header = [0u8; 4];
        if self.s.read_exact(&mut header).await.is_err() {
            return false;
        }
        buf.resize(u32::from_be_bytes(header) as usize, 0);
        self.s.read_exact(buf).await.is_ok()
    }
}

fn measure_accept_tokio(args: &Args) {
    runtime().block_on(async {
        let mut listener = conn::tokio::Listener::builder()
            .address("127.0.0.1:0")
            .authkey("secret password")
            .backlog(args.size as i32)
            .bind()
            .unwrap();
        let address = listener.address().to_string();
        let load = Load::start(&address, args.size);
        for _ in 0..args.size.min(100) {
            drop(listener.accept().await.unwrap());
        }
        let t = Instant::now();
        for _ in 0..args.count {
            drop(listener.accept().await.unwrap());
        }
        let s = t.elapsed().as_secs_f64();
        report(args, s, args.count as f64 / s, "conn/s");
        drop(listener);
        drop(load);
    });
}

fn measure_handshake(args: &Args) {
    let mut builder = conn::Listener::builder()
        .authkey("secret password")
        .backlog(128);
    let _dir;
    builder = if args.transport == "unix" {
        let dir = conn::address::PrivateSocketDir::create().unwrap();
        let b = builder.address(dir.address());
        _dir = Some(dir);
        b
    } else {
        _dir = None;
        builder.address("127.0.0.1:0")
    };
    let mut listener = builder.bind().unwrap();
    let address = listener.address().to_string();
    let mut child = spawn_peer(args, None, Some(&address));
    drop(listener.accept().unwrap());
    let t = Instant::now();
    for _ in 1..args.count {
        drop(listener.accept().unwrap());
    }
    let s = t.elapsed().as_secs_f64();
    report(args, s, s * 1e6 / (args.count - 1) as f64, "us/handshake");
    assert!(child.wait().unwrap().success());
}

fn measure_wait(args: &Args) {
    // SIZE connections, one of them ready. The idle ones are dups of one idle socket (distinct
    // registrations, one fd each), so 10000 fit under a 20000-fd limit.
    let (idle, _idle_peer) = Stream::pair().unwrap();
    let idle_fd = OwnedFd::from(idle);
    let (ready, ready_peer) = Stream::pair().unwrap();
    (&ready_peer).write_all(&[0, 0, 0, 1, 7]).unwrap();
    let mut conns: Vec<Connection> = Vec::with_capacity(args.size);
    for _ in 1..args.size {
        let fd = idle_fd.try_clone().unwrap();
        conns.push(conn_of(
            Stream::from(std::os::unix::net::UnixStream::from(fd)),
            Pickle::new(),
        ));
    }
    conns.push(conn_of(ready, Pickle::new()));
    let calls = args.count;
    let s = if args.workload == "wait" {
        let objects: Vec<&dyn Waitable> = conns.iter().map(|c| c as &dyn Waitable).collect();
        let t = Instant::now();
        for _ in 0..calls {
            let r = conn::wait(&objects, Some(Duration::ZERO)).unwrap();
            assert_eq!(r.len(), 1);
        }
        t.elapsed().as_secs_f64()
    } else {
        let mut set = WaitSet::new().unwrap();
        for c in conns {
            set.insert(c).unwrap();
        }
        assert_eq!(set.wait(Some(Duration::ZERO)).unwrap().len(), 1);
        let t = Instant::now();
        for _ in 0..calls {
            let r = set.wait(Some(Duration::ZERO)).unwrap();
            assert_eq!(r.len(), 1);
        }
        t.elapsed().as_secs_f64()
    };
    report(args, s, s * 1e6 / calls as f64, "us/call");
}

/// Peak resident set size of this process (`VmHWM`), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

// ---- the peer side --------------------------------------------------------------------

fn peer(args: &Args) {
    match args.imp.as_str() {
        "ipc-channel" => return ipc_channel_peer(args),
        "ceiling" => return ceiling_peer(args),
        _ => {}
    }
    if args.workload == "handshake" {
        let address: Address = args.address.as_deref().unwrap().parse().unwrap();
        for _ in 0..args.count {
            let c = conn::Client::builder(&address)
                .authkey("secret password")
                .connect()
                .unwrap();
            drop(c);
        }
        return;
    }
    let stream = peer_link(args, one_way(&args.workload));
    if args.imp == "conn-tokio" {
        return peer_tokio(args, stream);
    }
    if args.imp == "tokio-raw" {
        return runtime().block_on(async {
            let mut r = TokioRaw::new(stream);
            if args.workload == "stream" {
                let payload = vec![0x5au8; args.size];
                for _ in 0..args.count {
                    r.send(&payload).await;
                }
                return;
            }
            let mut buf = Vec::new();
            while r.recv(&mut buf).await {
                r.send(&buf).await;
            }
        });
    }
    match (args.workload.as_str(), args.conn_as()) {
        ("pingpong", "conn") => {
            let mut c = conn_of(stream, Pickle::new());
            let mut buf = vec![0u8; args.size];
            while let Ok(n) = c.recv_bytes_into(&mut buf) {
                c.send_bytes(&buf[..n]).unwrap();
            }
        }
        ("pingpong", "raw") => {
            let mut r = Raw::new(stream);
            let mut buf = Vec::new();
            while r.recv(&mut buf) {
                r.send(&buf);
            }
        }
        ("objects", "conn-postcard") => echo_objects(conn_of(stream, Postcard)),
        ("objects", "conn-pickle") => echo_objects(conn_of(stream, Pickle::new())),
        ("stream" | "rss", "conn") => {
            let mut c = conn_of(stream, Pickle::new());
            let payload = vec![0x5au8; args.size];
            for _ in 0..args.count {
                c.send_bytes(&payload).unwrap();
            }
        }
        ("stream" | "rss", "raw") => {
            let mut r = Raw::new(stream);
            let payload = vec![0x5au8; args.size];
            for _ in 0..args.count {
                r.send(&payload);
            }
        }
        (w, i) => panic!("no peer for {w} / {i}"),
    }
}

fn echo_objects<C: Codec + Clone>(mut c: Connection<C>) {
    while let Ok(s) = c.recv::<Sample>() {
        c.send(&s).unwrap();
    }
}

// ---- peers from elsewhere: ipc-channel, and the ceiling ---------------------------------

/// ipc-channel's side of `stream`: the peer connects to a one-shot server, hands over the
/// receiving end of a bytes channel and sends COUNT messages of SIZE bytes through it.
fn measure_ipc_channel(args: &Args) {
    use ipc_channel::ipc::{IpcBytesReceiver, IpcOneShotServer};
    assert_eq!(
        args.workload, "stream",
        "ipc-channel runs the stream workload only"
    );
    let (server, name) = IpcOneShotServer::<IpcBytesReceiver>::new().unwrap();
    let mut child = spawn_peer(args, None, Some(&name));
    let (_, rx) = server.accept().unwrap();
    assert_eq!(rx.recv().unwrap().len(), args.size);
    let t = Instant::now();
    for _ in 1..args.count {
        let m = rx.recv().unwrap();
        assert_eq!(m.len(), args.size);
    }
    let s = t.elapsed().as_secs_f64();
    let mib = (args.size * (args.count - 1)) as f64 / (1 << 20) as f64;
    report(args, s, mib / s, "MiB/s");
    assert!(child.wait().unwrap().success());
}

fn ipc_channel_peer(args: &Args) {
    use ipc_channel::ipc::{IpcBytesReceiver, IpcSender, bytes_channel};
    let name = args.address.clone().unwrap();
    let bootstrap = IpcSender::<IpcBytesReceiver>::connect(name).unwrap();
    let (tx, rx) = bytes_channel().unwrap();
    bootstrap.send(rx).unwrap();
    let payload = vec![0x5au8; args.size];
    for _ in 0..args.count {
        tx.send(&payload).unwrap();
    }
}

/// The ceiling of `stream`: COUNT × SIZE bytes with no framing over a socketpair with large
/// buffers, read into one SIZE-byte buffer (the first SIZE bytes untimed, as the others' first
/// message).
fn measure_ceiling(args: &Args) {
    assert_eq!(args.workload, "stream", "the ceiling is a stream workload");
    let (ours, theirs) = Stream::pair().unwrap();
    let mut child = spawn_peer(args, Some((OwnedFd::from(theirs), true)), None);
    let mut buf = vec![0u8; args.size];
    (&ours).read_exact(&mut buf).unwrap();
    let t = Instant::now();
    for _ in 1..args.count {
        (&ours).read_exact(&mut buf).unwrap();
    }
    let s = t.elapsed().as_secs_f64();
    let mib = (args.size * (args.count - 1)) as f64 / (1 << 20) as f64;
    report(args, s, mib / s, "MiB/s");
    assert!(child.wait().unwrap().success());
}

fn ceiling_peer(args: &Args) {
    let fd = io::stdin().as_fd().try_clone_to_owned().unwrap();
    let stream = Stream::try_from(fd).unwrap();
    let payload = vec![0x5au8; args.size];
    for _ in 0..args.count {
        (&stream).write_all(&payload).unwrap();
    }
}
