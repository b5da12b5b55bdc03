//! `conn`, the command line: talk to any `multiprocessing.connection` endpoint from a shell.
//!
//! `conn connect ADDRESS [MESSAGE...]` sends messages and prints the replies; `conn listen
//! ADDRESS` accepts clients and prints what they send. `conn probe ADDRESS` connects and reports what the endpoint speaks (does it challenge,
//! legacy or `{digest}`, which digest, does our key pass, does it prove it knows the key, how
//! long each step took) without sending a message. Keys never come from the command line
//! (they would show in `ps` and shell history): `--authkey-env`, `--authkey-file` or
//! `--authkey-prompt`. Exit codes: see [`Failure`].

#![deny(unsafe_code)]

mod format;
mod interrupt;
mod key;
mod literal;
mod probe;
mod session;
mod text;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Talk to any Python multiprocessing.connection endpoint (Listener, Client, managers).
///
/// Addresses are written as conn parses them: HOST:PORT, [V6]:PORT, a Unix socket path,
/// @abstract (Linux), \\.\pipe\NAME (Windows).
///
/// Exit codes: 0 done; 1 other I/O error; 2 usage; 3 could not connect; 4 authentication
/// failed; 5 the peer does not speak multiprocessing.connection; 6 timed out; 7 a digest
/// refused by --strict or --digest.
#[derive(Parser, Debug)]
#[command(name = "conn", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Connect and report what the endpoint speaks, without sending a message: does it
    /// challenge, legacy (MD5) or {digest}, does our key pass, does the endpoint prove it knows
    /// the key, and how long each step took.
    Probe(ProbeArgs),
    /// Connect, send messages and print what comes back. Messages are the arguments, or one
    /// per line on stdin; on a terminal, an interactive prompt (one reply per line).
    Connect(ConnectArgs),
    /// Accept clients (several at once), print each message with the client's address, and
    /// answer as told. Ctrl-C ends it.
    Listen(ListenArgs),
}

#[derive(Args, Debug)]
struct ConnectArgs {
    /// The endpoint: HOST:PORT, [V6]:PORT, a socket path, @abstract, \\.\pipe\NAME.
    address: String,
    /// Messages to send, typed as --input says (default: Python literals, sent as pickles).
    messages: Vec<String>,
    /// How many replies to wait for (default: one per message sent).
    #[arg(long, value_name = "N")]
    recv: Option<usize>,
    /// How long to wait for the connection, the handshake and each reply, in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    timeout: f64,
    #[command(flatten)]
    io: format::MessageArgs,
    #[command(flatten)]
    key: key::KeyArgs,
}

#[derive(Args, Debug)]
struct ListenArgs {
    /// Where to listen: HOST:PORT, [V6]:PORT, a socket path, @abstract, \\.\pipe\NAME.
    address: String,
    /// Send each message back to its sender.
    #[arg(long, conflicts_with = "reply")]
    echo: bool,
    /// Answer each message with this value (typed as --input says).
    #[arg(long, value_name = "VALUE")]
    reply: Option<String>,
    /// Serve one client, then stop.
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    io: format::MessageArgs,
    #[command(flatten)]
    key: key::KeyArgs,
}

#[derive(Args, Debug)]
struct ProbeArgs {
    /// The endpoint: HOST:PORT, [V6]:PORT, a socket path, @abstract, \\.\pipe\NAME.
    address: String,
    #[command(flatten)]
    key: key::KeyArgs,
    /// How long to wait for the connection and for each message, in seconds.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    timeout: f64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Why a command failed, with its exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// 1: any other I/O error.
    Io(String),
    /// 3: could not connect (refused, no such socket file or pipe, a bad address).
    Connect(String),
    /// 4: authentication failed (either side refused the other's key).
    Auth(String),
    /// 5: the peer does not speak multiprocessing.connection.
    Protocol(String),
    /// 6: timed out.
    Timeout(String),
    /// 7: a digest our policy refuses.
    Digest(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Self::Io(_) => 1,
            Self::Connect(_) => 3,
            Self::Auth(_) => 4,
            Self::Protocol(_) => 5,
            Self::Timeout(_) => 6,
            Self::Digest(_) => 7,
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::Io(m)
            | Self::Connect(m)
            | Self::Auth(m)
            | Self::Protocol(m)
            | Self::Timeout(m)
            | Self::Digest(m) => m,
        }
    }
}

/// A timeout given in seconds, checked.
pub(crate) fn seconds(s: f64) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Failure::Io(format!("--timeout {s}: give a positive number of seconds")))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Probe(args) => probe::run(&args),
        Command::Connect(args) => session::connect(&args),
        Command::Listen(args) => session::listen(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("conn: {}", failure.message());
            ExitCode::from(failure.code())
        }
    }
}
