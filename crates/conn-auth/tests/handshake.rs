//! Handshakes between two in-memory peers: every reaction of docs/protocol.md §2.4 and the
//! handshake error cases, with hand-written legacy (CPython ≤ 3.11) peers where needed.

use std::thread;
use std::time::Duration;

use conn_auth::test_util::{MemoryChannel, MemoryError, memory_pair};
use conn_auth::{
    AuthError, AuthKey, CHALLENGE, Challenge, Channel, Digest, FAILURE, HandshakeError, Policy,
    WELCOME, answer_challenge, answer_challenge_with, client_handshake, deliver_challenge,
    deliver_challenge_with, server_handshake,
};

const TIMEOUT: Duration = Duration::from_secs(5);

fn key() -> AuthKey {
    AuthKey::from("k")
}

/// Runs `peer` on the other end of a fresh pair, in a thread; returns our end and its handle.
fn with_peer<T: Send + 'static>(
    peer: impl FnOnce(MemoryChannel) -> T + Send + 'static,
) -> (MemoryChannel, thread::JoinHandle<T>) {
    let (ours, theirs) = memory_pair(TIMEOUT);
    (ours, thread::spawn(move || peer(theirs)))
}

/// CPython ≤ 3.11's deliver_challenge: 20 random bytes, expects a bare HMAC-MD5.
fn legacy_deliver(mut chan: MemoryChannel, key: &[u8]) -> Result<(), &'static str> {
    let random = [7u8; 20];
    let mut msg = CHALLENGE.to_vec();
    msg.extend_from_slice(&random);
    chan.send_message(&msg).map_err(|_| "send")?;
    let response = chan.recv_message(256).map_err(|_| "recv")?;
    if response[..] == Digest::Md5.hmac(key, &random)[..] {
        chan.send_message(WELCOME).map_err(|_| "send")?;
        Ok(())
    } else {
        chan.send_message(FAILURE).map_err(|_| "send")?;
        Err("digest received was wrong")
    }
}

/// CPython ≤ 3.11's answer_challenge: a bare HMAC-MD5 over whatever follows `#CHALLENGE#`.
fn legacy_answer(mut chan: MemoryChannel, key: &[u8]) -> Result<(), &'static str> {
    let msg = chan.recv_message(256).map_err(|_| "recv")?;
    let body = msg.strip_prefix(CHALLENGE).ok_or("not a challenge")?;
    chan.send_message(&Digest::Md5.hmac(key, body))
        .map_err(|_| "send")?;
    match chan.recv_message(256).map_err(|_| "recv")?.as_slice() {
        v if v == WELCOME => Ok(()),
        _ => Err("digest sent was rejected"),
    }
}

#[test]
fn modern_to_modern_full_handshake() {
    let (mut server, client) = with_peer(|mut c| client_handshake(&mut c, &key(), &Policy::new()));
    let done = server_handshake(&mut server, &key(), &Policy::new()).unwrap();
    assert_eq!(
        (done.peer_digest(), done.our_digest()),
        (Digest::Sha256, Digest::Sha256)
    );
    let theirs = client.join().unwrap().unwrap();
    assert_eq!(theirs.peer_digest(), Digest::Sha256);
}

#[test]
fn every_digest_is_negotiated_by_the_challenger() {
    for &digest in Digest::ALL {
        let policy = Policy::new().challenge_digest(digest);
        let (mut server, client) = with_peer(|mut c| answer_challenge(&mut c, &key()));
        let used = deliver_challenge_with(&mut server, &key(), &policy).unwrap();
        assert_eq!(used, digest);
        assert_eq!(client.join().unwrap().unwrap(), digest);
    }
}

#[test]
fn legacy_server_modern_client() {
    // ≤3.11 server, ≥3.12 client: the 20-byte challenge gets a bare MD5 → WELCOME.
    let (mut client, server) = with_peer(|c| legacy_deliver(c, b"k"));
    assert_eq!(answer_challenge(&mut client, &key()).unwrap(), Digest::Md5);
    assert_eq!(server.join().unwrap(), Ok(()));
}

#[test]
fn modern_server_legacy_client() {
    // ≥3.12 server, ≤3.11 client: a bare MD5 over the prefixed 48 bytes is accepted.
    let (mut server, client) = with_peer(|c| legacy_answer(c, b"k"));
    assert_eq!(deliver_challenge(&mut server, &key()).unwrap(), Digest::Md5);
    assert_eq!(client.join().unwrap(), Ok(()));
}

#[test]
fn strict_policy_locks_out_legacy_peers_both_ways() {
    let (mut server, client) = with_peer(|c| legacy_answer(c, b"k"));
    let err = deliver_challenge_with(&mut server, &key(), &Policy::strict()).unwrap_err();
    assert!(matches!(
        err,
        HandshakeError::Auth(AuthError::DigestRefused {
            digest: Digest::Md5,
            ..
        })
    ));
    assert_eq!(client.join().unwrap(), Err("digest sent was rejected"));

    let (mut client, server) = with_peer(|c| legacy_deliver(c, b"k"));
    let err = answer_challenge_with(&mut client, &key(), &Policy::strict()).unwrap_err();
    assert!(matches!(
        err,
        HandshakeError::Auth(AuthError::DigestRefused { .. })
    ));
    drop(client);
    assert_eq!(server.join().unwrap(), Err("recv"), "nothing was sent back");
}

#[test]
fn wrong_key_fails_on_both_sides() {
    let (mut server, client) =
        with_peer(|mut c| client_handshake(&mut c, &AuthKey::from("other"), &Policy::new()));
    let err = server_handshake(&mut server, &key(), &Policy::new()).unwrap_err();
    assert!(matches!(err, HandshakeError::Auth(AuthError::WrongDigest)));
    let err = client.join().unwrap().unwrap_err();
    assert!(matches!(err, HandshakeError::Auth(AuthError::Rejected)));
}

#[test]
fn empty_key_authenticates_like_cpython_3_13() {
    let empty = AuthKey::from("");
    let (mut server, client) = with_peer(move |mut c| {
        client_handshake(&mut c, &AuthKey::from(""), &Policy::new()).map(drop)
    });
    assert!(server_handshake(&mut server, &empty, &Policy::new()).is_ok());
    assert!(client.join().unwrap().is_ok());
}

/// Sends a challenge, then `response`, as a scripted server would see it; returns the verdict
/// our deliver_challenge produced and what the scripted peer received after its response.
fn scripted_response(
    response: Vec<u8>,
) -> (Result<Digest, HandshakeError<MemoryError>>, Option<Vec<u8>>) {
    let (mut server, client) = with_peer(move |mut c| {
        let _challenge = c.recv_message(256).unwrap();
        c.send_message(&response).unwrap();
        c.recv_message(256).ok()
    });
    let result = deliver_challenge(&mut server, &key());
    drop(server);
    (result, client.join().unwrap())
}

#[test]
fn a_20_byte_response_is_a_wrong_length_md5_with_failure_sent() {
    let (result, verdict) = scripted_response(vec![0; 20]);
    let err = result.unwrap_err();
    assert_eq!(err.to_string(), "expected 'md5' of length 16 got 20");
    assert_eq!(verdict.as_deref(), Some(FAILURE));
}

#[test]
fn a_sha512_response_is_unsupported_with_failure_sent() {
    let mut response = b"{sha512}".to_vec();
    response.extend([0; 64]);
    let (result, verdict) = scripted_response(response);
    assert!(matches!(
        result,
        Err(HandshakeError::Auth(AuthError::UnsupportedMessage {
            len: 72
        }))
    ));
    assert_eq!(verdict.as_deref(), Some(FAILURE));
}

#[test]
fn a_300_byte_response_is_a_transport_error_and_no_verdict() {
    let (result, verdict) = scripted_response(vec![1; 300]);
    assert!(matches!(
        result,
        Err(HandshakeError::Channel(MemoryError::TooLong {
            len: 300,
            max: 256
        }))
    ));
    assert_eq!(
        verdict, None,
        "CPython sends no verdict for an oversize response"
    );
}

/// Sends `challenge` to our answer_challenge; returns its result and whether anything came back.
fn scripted_challenge(challenge: Vec<u8>) -> (Result<Digest, HandshakeError<MemoryError>>, bool) {
    let (mut client, server) = with_peer(move |mut c| {
        c.send_message(&challenge).unwrap();
        c.recv_message(256).is_ok()
    });
    let result = answer_challenge(&mut client, &key());
    drop(client);
    (result, server.join().unwrap())
}

#[test]
fn malformed_challenges_get_no_answer() {
    let mut short = CHALLENGE.to_vec();
    short.extend([0; 10]);
    let mut unprefixed = CHALLENGE.to_vec();
    unprefixed.extend([0; 40]);
    let mut sha512 = CHALLENGE.to_vec();
    sha512.extend(b"{sha512}");
    sha512.extend([0; 40]);
    type Check = fn(&AuthError) -> bool;
    let cases: Vec<(Vec<u8>, Check)> = vec![
        (b"not a challenge at all".to_vec(), |e| {
            matches!(e, AuthError::NotAChallenge { len: 22 })
        }),
        (short, |e| {
            matches!(e, AuthError::ChallengeTooShort { len: 10 })
        }),
        (unprefixed, |e| {
            matches!(e, AuthError::UnsupportedMessage { len: 40 })
        }),
        (sha512, |e| {
            matches!(e, AuthError::UnsupportedMessage { len: 48 })
        }),
    ];
    for (challenge, expected) in cases {
        let (result, answered) = scripted_challenge(challenge);
        match result {
            Err(HandshakeError::Auth(e)) => assert!(expected(&e), "{e:?}"),
            other => panic!("{other:?}"),
        }
        assert!(
            !answered,
            "CPython's client sends nothing on a bad challenge"
        );
    }
}

#[test]
fn an_oversize_challenge_is_a_transport_error() {
    let mut huge = CHALLENGE.to_vec();
    huge.extend([0; 300]);
    let (result, _) = scripted_challenge(huge);
    assert!(matches!(
        result,
        Err(HandshakeError::Channel(MemoryError::TooLong { .. }))
    ));
}

#[test]
fn anything_but_welcome_is_rejection() {
    for verdict in [FAILURE.to_vec(), b"#WELCOME".to_vec(), b"".to_vec()] {
        let (mut client, server) = with_peer(move |mut c| {
            let challenge = Challenge::new(Digest::Sha256).unwrap();
            c.send_message(challenge.as_bytes()).unwrap();
            let _ = c.recv_message(256).unwrap();
            c.send_message(&verdict).unwrap();
        });
        let err = answer_challenge(&mut client, &key()).unwrap_err();
        assert!(matches!(err, HandshakeError::Auth(AuthError::Rejected)));
        server.join().unwrap();
    }
}

#[test]
fn a_silent_or_vanished_peer_ends_the_handshake() {
    let (mut ours, theirs) = memory_pair(Duration::from_millis(50));
    let err = deliver_challenge(&mut ours, &key()).unwrap_err();
    assert!(matches!(
        err,
        HandshakeError::Channel(MemoryError::TimedOut)
    ));
    drop(theirs);
    let err = answer_challenge(&mut ours, &key()).unwrap_err();
    assert!(matches!(err, HandshakeError::Channel(MemoryError::Closed)));
}

#[test]
fn the_client_sends_its_challenge_without_waiting_for_the_verdict() {
    // A server that reads the response and then the client's challenge before sending any
    // verdict: it only gets one if the client pipelines (a CPython client would wait here).
    let (mut client, server) = with_peer(|mut c| {
        let challenge = Challenge::new(Digest::Sha256).unwrap();
        c.send_message(challenge.as_bytes()).unwrap();
        let response = c.recv_message(256).unwrap();
        let theirs = c.recv_message(256).unwrap();
        assert!(challenge.verify(&key(), &response, &Policy::new()).is_ok());
        c.send_message(WELCOME).unwrap();
        let (answer, _) = conn_auth::respond(&key(), &theirs, &Policy::new()).unwrap();
        c.send_message(&answer).unwrap();
        c.recv_message(256).unwrap()
    });
    let done = client_handshake(&mut client, &key(), &Policy::new()).unwrap();
    assert_eq!(done.peer_digest(), Digest::Sha256);
    assert_eq!(server.join().unwrap(), WELCOME);
}

#[test]
fn in_turn_the_client_challenges_only_after_the_verdict() {
    use conn_auth::{ClientHandshake, Progress};
    let server_challenge = Challenge::new(Digest::Sha256).unwrap();
    let mut client = ClientHandshake::new(Policy::new()).unwrap().in_turn();
    assert_eq!(
        client.on_message(&key(), server_challenge.as_bytes()),
        Ok(Progress::Continue)
    );
    let first = client.transmit();
    assert_eq!(first.len(), 1, "only the response before the verdict");
    assert!(
        server_challenge
            .verify(&key(), &first[0], &Policy::new())
            .is_ok()
    );
    assert_eq!(client.on_message(&key(), WELCOME), Ok(Progress::Continue));
    let second = client.transmit();
    assert_eq!(second.len(), 1);
    assert!(
        second[0].starts_with(b"#CHALLENGE#"),
        "our challenge after the verdict"
    );
    let (answer, _) = conn_auth::respond(&key(), &second[0], &Policy::new()).unwrap();
    assert_eq!(client.on_message(&key(), &answer), Ok(Progress::Done));
    assert_eq!(client.transmit(), vec![WELCOME.to_vec()]);
}
