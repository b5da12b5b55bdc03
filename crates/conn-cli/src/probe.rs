//! `conn probe`: what an endpoint speaks, found without sending it a message.
//!
//! A CPython `Listener` with an authkey sends its challenge (`#CHALLENGE#`, then 20 random
//! bytes on 3.11 and earlier, or `{digest}` and 40 random bytes on 3.12 and later) as soon as
//! it accepts; one without an authkey sends nothing and waits for the client. So: connect,
//! wait for a first message, read what it offers; with a key, answer it and challenge the
//! listener back, as CPython's `Client` does (conn-auth's client machine).

use std::io;
use std::time::{Duration, Instant};

use conn::auth::{
    CHALLENGE, ClientHandshake, MAX_HANDSHAKE_MESSAGE, Progress, split_digest_prefix,
};
use conn::transport::os::Stream;
use conn::{Address, AuthError, AuthKey, Connection, Digest, Error, Family, Pickle};

use crate::text::{escape, json_string, preview};
use crate::{Failure, ProbeArgs, seconds};

/// What the first message offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offer {
    /// No message within the timeout: the listener has no authkey (or speaks something else).
    Nothing,
    /// `#CHALLENGE#` and 20 random bytes: CPython 3.11 and earlier, HMAC-MD5.
    Legacy,
    /// `#CHALLENGE#{digest}…`: CPython 3.12 and later.
    Named(Digest),
}

/// What became of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyOutcome {
    /// No key was needed (no challenge came) and none was given.
    NotNeeded,
    /// No challenge came, yet a key was given: CPython's `Client` with it would wait for one.
    Unused,
    /// Challenged, and no key given.
    Required,
    /// Our answer was welcomed (with `ours`) and the listener answered our challenge (with
    /// `theirs`): both sides know the key.
    Mutual { ours: Digest, theirs: Digest },
}

/// The probe's findings.
struct Report {
    address: Address,
    connect: Duration,
    offer: Offer,
    /// From connecting to the challenge's arrival.
    challenge: Option<Duration>,
    key: KeyOutcome,
    /// From the challenge's arrival to the end of the handshake.
    handshake: Option<Duration>,
    waited: Duration,
}

pub(crate) fn run(args: &ProbeArgs) -> Result<(), Failure> {
    let timeout = seconds(args.timeout)?;
    let policy = args.key.policy()?;
    let key = args.key.key()?;
    let address: Address = args
        .address
        .parse()
        .map_err(|e| Failure::Connect(format!("{}: {e}", escape(args.address.as_bytes()))))?;
    let started = Instant::now();
    let stream =
        Stream::connect(&address, Some(timeout)).map_err(|e| connect_failure(&address, &e))?;
    let connect = started.elapsed();
    // Our answer and our challenge leave back to back: without this, Nagle's algorithm holds
    // the second until the first is acknowledged (a delayed ACK: 40 ms on Linux).
    let _ = stream.set_nodelay(true);
    let tcp = stream.kind() == conn::transport::os::StreamKind::Tcp;
    let mut conn = Connection::from_stream(stream, Pickle::new());
    // A peer that sends half a message and stalls cannot hold the probe past its timeout.
    conn.set_read_timeout(Some(timeout));
    let mut report = Report {
        address,
        connect,
        offer: Offer::Nothing,
        challenge: None,
        key: if key.is_some() {
            KeyOutcome::Unused
        } else {
            KeyOutcome::NotNeeded
        },
        handshake: None,
        waited: timeout,
    };
    let Some(first) = next_message(&mut conn, timeout, true)? else {
        return print(&report, args.json);
    };
    let challenged = Instant::now();
    report.challenge = Some(challenged - started - connect);
    let Some(body) = first.strip_prefix(CHALLENGE) else {
        return Err(Failure::Protocol(format!(
            "the first message is not a multiprocessing.connection challenge: b'{}'",
            preview(&first, 40)
        )));
    };
    report.offer = match split_digest_prefix(body) {
        Ok((None, _)) => Offer::Legacy,
        Ok((Some(digest), _)) => Offer::Named(digest),
        Err(e) => {
            return Err(Failure::Protocol(format!(
                "a challenge we cannot read: {e}"
            )));
        }
    };
    let Some(key) = key else {
        report.key = KeyOutcome::Required;
        return print(&report, args.json);
    };
    let (ours, theirs) = handshake(&mut conn, &key, policy, first, timeout, tcp)?;
    report.handshake = Some(challenged.elapsed());
    report.key = KeyOutcome::Mutual { ours, theirs };
    print(&report, args.json)
}

/// Answers the challenge `first` with `key` and challenges the listener back; the digests
/// each side used.
fn handshake(
    conn: &mut Connection,
    key: &AuthKey,
    policy: conn::Policy,
    first: Vec<u8>,
    timeout: Duration,
    tcp: bool,
) -> Result<(Digest, Digest), Failure> {
    let mut machine = ClientHandshake::new(policy).map_err(|e| Failure::Io(e.to_string()))?;
    if tcp {
        // As CPython's Client: see `ClientHandshake::in_turn` (a 40 ms stall otherwise).
        machine = machine.in_turn();
    }
    let mut message = first;
    loop {
        let step = machine.on_message(key, &message);
        for out in machine.transmit() {
            // A verdict after a failure is a courtesy: the failure is what is reported.
            if let Err(e) = conn.send_bytes(&out) {
                if step.is_ok() {
                    return Err(transport_failure(e, "sending our answer"));
                }
            }
        }
        match step {
            Ok(Progress::Done) => break,
            Ok(Progress::Continue) => {}
            Err(e) => return Err(auth_failure(&e)),
        }
        message = next_message(conn, timeout, false)?.ok_or_else(|| {
            Failure::Timeout(format!(
                "no answer within {} s during the handshake",
                timeout.as_secs_f64()
            ))
        })?;
    }
    match (machine.our_digest(), machine.peer_digest()) {
        (Some(ours), Some(theirs)) => Ok((ours, theirs)),
        _ => Err(Failure::Protocol("the handshake ended half done".into())),
    }
}

/// The next handshake message (at most 256 bytes, as CPython reads them), or `None` if none
/// came within `timeout`. `first`: the first message, whose absence is an answer, not a
/// failure.
fn next_message(
    conn: &mut Connection,
    timeout: Duration,
    first: bool,
) -> Result<Option<Vec<u8>>, Failure> {
    let ready = conn
        .poll(Some(timeout))
        .map_err(|e| transport_failure(e, "waiting"))?;
    if !ready {
        return Ok(None);
    }
    match conn.recv_bytes_max(MAX_HANDSHAKE_MESSAGE) {
        Ok(m) => Ok(Some(m)),
        Err(Error::Eof) if first => Err(Failure::Protocol(
            "the endpoint closed the connection without a word (full, or not \
             multiprocessing.connection)"
                .into(),
        )),
        Err(Error::Eof) => Err(Failure::Auth(
            "the endpoint closed the connection during the handshake".into(),
        )),
        Err(Error::BadMessageLength { len, .. }) => Err(Failure::Protocol(format!(
            "a {len}-byte first message: a handshake message is at most \
             {MAX_HANDSHAKE_MESSAGE} bytes (not multiprocessing.connection?)"
        ))),
        Err(e) => Err(transport_failure(e, "reading")),
    }
}

fn connect_failure(address: &Address, e: &io::Error) -> Failure {
    let what = escape(address.to_string().as_bytes());
    match e.kind() {
        io::ErrorKind::TimedOut => Failure::Timeout(format!("connecting to {what}: timed out")),
        io::ErrorKind::ConnectionRefused => Failure::Connect(format!(
            "connecting to {what}: refused (nothing listens there)"
        )),
        io::ErrorKind::NotFound => Failure::Connect(format!(
            "connecting to {what}: no such {}",
            if address.family() == Family::Pipe {
                "pipe"
            } else {
                "socket file"
            }
        )),
        _ => Failure::Connect(format!("connecting to {what}: {e}")),
    }
}

fn transport_failure(e: Error, doing: &str) -> Failure {
    match e {
        Error::Timeout { .. } => Failure::Timeout(format!("{doing}: timed out")),
        Error::Eof => Failure::Protocol(format!("{doing}: the endpoint closed the connection")),
        Error::Framing(e) => Failure::Protocol(format!("{doing}: {e}")),
        e => Failure::Io(format!("{doing}: {e}")),
    }
}

fn auth_failure(e: &AuthError) -> Failure {
    match e {
        AuthError::Rejected => Failure::Auth(
            "the listener refused our key (it answered #FAILURE#): the keys differ".into(),
        ),
        AuthError::WrongDigest => Failure::Auth(
            "the listener's answer to our challenge was wrong: it does not know our key".into(),
        ),
        AuthError::DigestRefused { digest, minimum } => Failure::Digest(format!(
            "the listener uses {digest}, weaker than the {minimum} we accept (--strict or \
             --digest)"
        )),
        e => Failure::Protocol(format!("the handshake broke: {e}")),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn print(r: &Report, json: bool) -> Result<(), Failure> {
    let address = escape(r.address.to_string().as_bytes());
    let family = r.address.family();
    let (offer, offer_text) = match r.offer {
        Offer::Nothing => (
            "none".to_owned(),
            format!(
                "none within {} s: the listener takes clients without an authkey (or does not \
                 speak multiprocessing.connection)",
                r.waited.as_secs_f64()
            ),
        ),
        Offer::Legacy => (
            "md5".to_owned(),
            "legacy: HMAC-MD5 with no digest name (CPython 3.11 and earlier)".to_owned(),
        ),
        Offer::Named(d) => (
            d.name().to_owned(),
            format!("{{{d}}} (CPython 3.12 and later)"),
        ),
    };
    let (key, key_text) = match r.key {
        KeyOutcome::NotNeeded => ("not-needed", "not needed".to_owned()),
        KeyOutcome::Unused => (
            "unused",
            "given but not asked for: a Python Client with this key would wait for a \
             challenge that never comes"
                .to_owned(),
        ),
        KeyOutcome::Required => (
            "required",
            "required: give one with --authkey-env, --authkey-file or --authkey-prompt".to_owned(),
        ),
        KeyOutcome::Mutual { ours, theirs } => (
            "accepted",
            format!(
                "accepted: the listener took our {ours} answer and answered our challenge with \
                 {theirs} (both sides know the key)"
            ),
        ),
    };
    if json {
        let mut fields = vec![
            format!("\"address\":{}", json_string(&r.address.to_string())),
            format!("\"family\":\"{family}\""),
            format!("\"connect_ms\":{}", ms(r.connect)),
            format!("\"challenge\":{}", json_string(&offer)),
            format!("\"authkey\":\"{key}\""),
        ];
        if let Some(c) = r.challenge {
            fields.push(format!("\"challenge_ms\":{}", ms(c)));
        }
        if let KeyOutcome::Mutual { ours, theirs } = r.key {
            fields.push(format!("\"our_digest\":\"{ours}\""));
            fields.push(format!("\"their_digest\":\"{theirs}\""));
        }
        if let Some(h) = r.handshake {
            fields.push(format!("\"handshake_ms\":{}", ms(h)));
        }
        println!("{{{}}}", fields.join(","));
        return Ok(());
    }
    println!("address    {address} ({family})");
    println!("connected  in {} ms", ms(r.connect));
    match r.challenge {
        Some(c) => println!("challenge  {offer_text}, {} ms after connecting", ms(c)),
        None => println!("challenge  {offer_text}"),
    }
    println!("authkey    {key_text}");
    if let Some(h) = r.handshake {
        println!("handshake  {} ms after the challenge", ms(h));
    }
    Ok(())
}
