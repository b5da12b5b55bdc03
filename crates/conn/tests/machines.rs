//! The two handshake machines against each other over CPython's frames, with the bytes cut
//! anywhere: the framing core reassembles the messages, the machines agree on the outcome, and
//! the wire carries what CPython's peers send (the client's response and challenge together).

use conn::auth::{
    AuthError, AuthKey, Challenge, ClientHandshake, Digest, Policy, Progress, ServerHandshake,
    WELCOME,
};
use conn::framing::{Decoder, encode_frame_into};
use proptest::prelude::*;

type Outcome = Result<Progress, AuthError>;

/// One side's machine, whichever it is.
enum Side {
    Server(ServerHandshake),
    Client(ClientHandshake),
}

impl Side {
    fn transmit(&mut self) -> Vec<Vec<u8>> {
        match self {
            Self::Server(m) => m.transmit(),
            Self::Client(m) => m.transmit(),
        }
    }
    fn on_message(&mut self, key: &AuthKey, m: &[u8]) -> Result<Progress, AuthError> {
        match self {
            Self::Server(s) => s.on_message(key, m),
            Self::Client(c) => c.on_message(key, m),
        }
    }
}

/// Runs both machines; bytes from each side reach the other cut at `cuts` (positions in
/// its outgoing stream). Returns each side's outcome and the server's outgoing wire bytes.
fn run(
    server_key: &AuthKey,
    client_key: &AuthKey,
    policy: Policy,
    cuts: &[usize],
) -> (Outcome, Outcome, Vec<Vec<Vec<u8>>>) {
    let mut sides = [
        Side::Server(ServerHandshake::new(policy).unwrap()),
        Side::Client(ClientHandshake::new(policy).unwrap()),
    ];
    let keys = [server_key, client_key];
    let mut outcome = [Ok(Progress::Continue), Ok(Progress::Continue)];
    let mut decoders = [
        Decoder::with_max_message(256),
        Decoder::with_max_message(256),
    ];
    let mut client_batches = Vec::new();
    let mut cut = cuts.iter().cycle();
    for _round in 0..20 {
        let mut moved = false;
        for from in 0..2 {
            let to = 1 - from;
            let batch = sides[from].transmit();
            if from == 1 && !batch.is_empty() {
                client_batches.push(batch.clone());
            }
            let mut wire = Vec::new();
            for m in &batch {
                encode_frame_into(m, &mut wire);
            }
            // Deliver in pieces.
            let mut at = 0;
            while at < wire.len() {
                let n = (cut.next().copied().unwrap_or(1) % 7 + 1).min(wire.len() - at);
                decoders[to].feed(&wire[at..at + n]);
                at += n;
                while let Some(m) = decoders[to].next_frame().unwrap() {
                    moved = true;
                    if matches!(outcome[to], Ok(Progress::Continue)) {
                        outcome[to] = sides[to].on_message(keys[to], &m);
                    }
                }
            }
        }
        if !moved {
            break;
        }
    }
    let [s, c] = outcome;
    (s, c, client_batches)
}

proptest! {
    #[test]
    fn same_key_authenticates_both_ways_whatever_the_cuts(
        key in prop::collection::vec(any::<u8>(), 0..40),
        digest in prop::sample::select(Digest::ALL.to_vec()),
        cuts in prop::collection::vec(0usize..100, 1..30),
    ) {
        let key = AuthKey::from(key);
        let policy = Policy::new().challenge_digest(digest);
        let (server, client, batches) = run(&key, &key, policy, &cuts);
        prop_assert_eq!(server, Ok(Progress::Done));
        prop_assert_eq!(client, Ok(Progress::Done));
        // The pipelined client: response and its own challenge leave together, then #WELCOME#.
        prop_assert_eq!(batches.len(), 2);
        prop_assert_eq!(batches[0].len(), 2);
        prop_assert!(batches[0][1].starts_with(b"#CHALLENGE#"));
        prop_assert_eq!(&batches[1], &vec![WELCOME.to_vec()]);
    }

    #[test]
    fn different_keys_fail_on_both_sides_whatever_the_cuts(
        a in prop::collection::vec(any::<u8>(), 1..40),
        b in prop::collection::vec(any::<u8>(), 1..40),
        cuts in prop::collection::vec(0usize..100, 1..30),
    ) {
        prop_assume!(a != b);
        let (server, client, _) = run(&AuthKey::from(a), &AuthKey::from(b), Policy::new(), &cuts);
        prop_assert_eq!(server, Err(AuthError::WrongDigest));
        prop_assert_eq!(client, Err(AuthError::Rejected));
    }
}

#[test]
fn known_challenge_gives_cpythons_bytes() {
    // docs/protocol.md §2.5 (CPython's own `_create_response`, authkey b'secret'): the server's
    // machine checks the client machine's response to a fixed challenge.
    let key = AuthKey::from("secret");
    let random: Vec<u8> = (0..40).collect();
    let challenge = Challenge::from_parts(Some(Digest::Sha256), &random);
    let mut server = ServerHandshake::with_challenge(Policy::new(), challenge.clone(), false);
    assert_eq!(server.transmit(), vec![challenge.as_bytes().to_vec()]);
    let mut client = ClientHandshake::answer_only(Policy::new());
    assert_eq!(
        client.on_message(&key, challenge.as_bytes()),
        Ok(Progress::Continue)
    );
    let response = client.transmit();
    let hex: String = response[0].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "7b7368613235367dfc57fbe650d6124b98215e7b5d197d5807ad69982d275a9735ea2d56f1fa6989"
    );
    assert_eq!(server.on_message(&key, &response[0]), Ok(Progress::Done));
    assert_eq!(server.transmit(), vec![WELCOME.to_vec()]);
    assert_eq!(client.on_message(&key, WELCOME), Ok(Progress::Done));
    // Anything after the end is an error, not a silent acceptance.
    assert_eq!(
        server.on_message(&key, b"more"),
        Err(AuthError::UnexpectedMessage)
    );
}
