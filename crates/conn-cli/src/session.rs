//! `conn connect` and `conn listen`: messages to and from an endpoint.

use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use conn::{Address, AuthError, Connection, Error};

use crate::format::{self, Format};
use crate::text::escape;
use crate::{ConnectArgs, Failure, ListenArgs, seconds};

/// Prints whole lines, one writer at a time (clients served at once print in turn).
static OUT: Mutex<()> = Mutex::new(());

/// Writes one received message as `format` says, with `label` before it (a listener's
/// client).
fn show(label: Option<&str>, message: &[u8], format: Format) -> Result<(), Failure> {
    let body = format::render(message, format);
    let _turn = OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = io::stdout().lock();
    let written = (|| {
        if let Some(l) = label {
            write!(out, "{l} ")?;
        }
        out.write_all(&body)?;
        if format != Format::Raw {
            out.write_all(b"\n")?;
        }
        out.flush()
    })();
    written.map_err(|e| Failure::Io(format!("writing to stdout: {e}")))
}

fn say(line: &str) {
    let _turn = OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    println!("{line}");
}

fn check_raw(format: Format) -> Result<(), Failure> {
    if format == Format::Raw && io::stdout().is_terminal() {
        return Err(Failure::Io(
            "--format raw writes a peer's bytes as they are: not to a terminal (pipe it, or use \
             hex)"
                .into(),
        ));
    }
    Ok(())
}

/// The error of a failed connection or message, with its exit code.
pub(crate) fn failure(e: Error, address: &Address) -> Failure {
    let at = escape(address.to_string().as_bytes());
    match e {
        Error::Io(io) => match io.kind() {
            io::ErrorKind::ConnectionRefused => {
                Failure::Connect(format!("{at}: connection refused (nothing listens there)"))
            }
            io::ErrorKind::NotFound => Failure::Connect(format!("{at}: no such socket or pipe")),
            io::ErrorKind::TimedOut => Failure::Timeout(format!("{at}: timed out")),
            io::ErrorKind::AddrInUse => Failure::Connect(format!("{at}: address in use")),
            _ => Failure::Io(format!("{at}: {io}")),
        },
        Error::Timeout { operation } => Failure::Timeout(format!("{at}: timed out ({operation})")),
        Error::Auth(AuthError::Rejected) => Failure::Auth(format!(
            "{at}: the listener refused our key (the keys differ)"
        )),
        Error::Auth(AuthError::WrongDigest) => Failure::Auth(format!(
            "{at}: the peer's answer to our challenge was wrong (the keys differ)"
        )),
        Error::Auth(AuthError::DigestRefused { digest, minimum }) => Failure::Digest(format!(
            "{at}: the peer uses {digest}, weaker than the {minimum} we accept"
        )),
        Error::Auth(AuthError::NotAChallenge { .. }) => Failure::Protocol(format!(
            "{at}: the peer did not challenge us, yet we have a key (does it have one?)"
        )),
        Error::Auth(e) => Failure::Auth(format!("{at}: {e}")),
        Error::Framing(e) => Failure::Protocol(format!("{at}: {e}")),
        Error::Eof => Failure::Protocol(format!("{at}: the peer closed the connection")),
        e => Failure::Io(format!("{at}: {e}")),
    }
}

pub(crate) fn connect(args: &ConnectArgs) -> Result<(), Failure> {
    check_raw(args.io.format)?;
    let timeout = seconds(args.timeout)?;
    let protocol = format::protocol(args.io.protocol).map_err(Failure::Io)?;
    let address: Address = args
        .address
        .parse()
        .map_err(|e| Failure::Connect(format!("{}: {e}", escape(args.address.as_bytes()))))?;
    // Every typed message is checked before anything is sent.
    let typed: Vec<Vec<u8>> = args
        .messages
        .iter()
        .map(|m| format::message(m, args.io.input, protocol))
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::Io(format!("a message: {e}")))?;
    let mut builder = conn::Client::builder(address.clone())
        .timeout(Some(timeout))
        .handshake_timeout(Some(timeout))
        .policy(args.key.policy()?);
    if let Some(key) = args.key.key()? {
        builder = builder.authkey(key);
    }
    let mut conn = builder.connect().map_err(|e| failure(e, &address))?;
    conn.set_read_timeout(Some(timeout));
    let replies = |conn: &mut Connection, n: usize| -> Result<(), Failure> {
        for _ in 0..n {
            let m = conn.recv_bytes().map_err(|e| failure(e, &address))?;
            show(None, &m, args.io.format)?;
        }
        Ok(())
    };
    // Replies that have come are read as we go: a peer answering each message could
    // otherwise fill both directions' buffers and wait for us while we wait for it.
    let mut received = 0;
    let mut drain = |conn: &mut Connection, wanted: usize| -> Result<(), Failure> {
        while received < wanted
            && conn
                .poll(Some(Duration::ZERO))
                .map_err(|e| failure(e, &address))?
        {
            replies(conn, 1)?;
            received += 1;
        }
        Ok(())
    };
    if !typed.is_empty() {
        let wanted = args.recv.unwrap_or(typed.len());
        for m in &typed {
            conn.send_bytes(m).map_err(|e| failure(e, &address))?;
            drain(&mut conn, wanted)?;
        }
        return replies(&mut conn, wanted.saturating_sub(received));
    }
    let stdin = io::stdin();
    let interactive = stdin.is_terminal();
    let mut sent = 0;
    let mut line = String::new();
    loop {
        if interactive {
            eprint!("conn> ");
            let _ = io::stderr().flush();
        }
        line.clear();
        let n = stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::Io(format!("reading stdin: {e}")))?;
        if n == 0 {
            break;
        }
        let text = line.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        let m = match format::message(text, args.io.input, protocol) {
            Ok(m) => m,
            Err(e) if interactive => {
                eprintln!("conn: {e}");
                continue;
            }
            Err(e) => return Err(Failure::Io(format!("line {}: {e}", sent + 1))),
        };
        conn.send_bytes(&m).map_err(|e| failure(e, &address))?;
        sent += 1;
        if interactive {
            // One reply per line, unless told how many.
            replies(&mut conn, args.recv.unwrap_or(1))?;
            continue;
        }
        drain(&mut conn, args.recv.unwrap_or(sent))?;
    }
    if !interactive {
        replies(
            &mut conn,
            args.recv.unwrap_or(sent).saturating_sub(received),
        )?;
    }
    Ok(())
}

pub(crate) fn listen(args: &ListenArgs) -> Result<(), Failure> {
    check_raw(args.io.format)?;
    let protocol = format::protocol(args.io.protocol).map_err(Failure::Io)?;
    let reply = match &args.reply {
        Some(r) => Some(
            format::message(r, args.io.input, protocol)
                .map_err(|e| Failure::Io(format!("--reply: {e}")))?,
        ),
        None => None,
    };
    let address: Address = args
        .address
        .parse()
        .map_err(|e| Failure::Connect(format!("{}: {e}", escape(args.address.as_bytes()))))?;
    let mut builder = conn::Listener::builder()
        .address(address.clone())
        .backlog(128)
        .policy(args.key.policy()?)
        // Wakes to look for Ctrl-C.
        .accept_timeout(Some(Duration::from_millis(200)));
    if let Some(key) = args.key.key()? {
        builder = builder.authkey(key);
    }
    let mut listener = builder.bind().map_err(|e| failure(e, &address))?;
    // Clients still connected when Ctrl-C comes are dropped with the process.
    let stop = crate::interrupt::install();
    say(&format!(
        "listening on {}",
        escape(listener.address().to_string().as_bytes())
    ));
    let job = std::sync::Arc::new(Serve {
        format: args.io.format,
        echo: args.echo,
        reply,
        clients: std::sync::atomic::AtomicUsize::new(0),
    });
    let mut served = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let conn = match listener.accept() {
            Ok(c) => c,
            Err(Error::Timeout { .. }) => continue,
            Err(e) => {
                say(&format!("accept: {}", escape(e.to_string().as_bytes())));
                continue;
            }
        };
        served += 1;
        let label = match listener.last_accepted() {
            Some(peer) => format!("[{}]", escape(peer.to_string().as_bytes())),
            None => format!("[client {served}]"),
        };
        if args.once {
            job.serve(conn, &label);
            break;
        }
        if job.clients.load(std::sync::atomic::Ordering::Relaxed) >= MAX_CLIENTS {
            say(&format!(
                "{label} refused: {MAX_CLIENTS} clients are connected already"
            ));
            drop(conn);
            continue;
        }
        job.clients
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let job = std::sync::Arc::clone(&job);
        std::thread::spawn(move || {
            job.serve(conn, &label);
            job.clients
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        });
    }
    for e in listener.take_handshake_failures() {
        say(&format!(
            "refused a client: {}",
            escape(e.to_string().as_bytes())
        ));
    }
    listener.close().map_err(|e| failure(e, &address))
}

/// How many clients `listen` serves at once (a thread each); more are closed at once, with a
/// line saying so.
const MAX_CLIENTS: usize = 256;

/// What `listen` does with each client.
struct Serve {
    format: Format,
    echo: bool,
    reply: Option<Vec<u8>>,
    /// Clients being served now.
    clients: std::sync::atomic::AtomicUsize,
}

impl Serve {
    /// Prints each message from the client, answers as told, until it closes.
    fn serve(&self, mut conn: Connection, label: &str) {
        say(&format!("{label} connected"));
        loop {
            match conn.recv_bytes() {
                Ok(m) => {
                    if show(Some(label), &m, self.format).is_err() {
                        return;
                    }
                    let answer = if self.echo {
                        Some(&m)
                    } else {
                        self.reply.as_ref()
                    };
                    if let Some(a) = answer {
                        if let Err(e) = conn.send_bytes(a) {
                            say(&format!(
                                "{label} error: {}",
                                escape(e.to_string().as_bytes())
                            ));
                            return;
                        }
                    }
                }
                Err(Error::Eof) => break,
                Err(e) => {
                    say(&format!(
                        "{label} error: {}",
                        escape(e.to_string().as_bytes())
                    ));
                    return;
                }
            }
        }
        say(&format!("{label} closed"));
    }
}
