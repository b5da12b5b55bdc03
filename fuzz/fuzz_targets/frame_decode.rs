//! Any bytes a peer sends as frames, in any chunking: the framing core (fed directly) and its
//! blocking shell (`FrameReader` over the same bytes) must agree frame by frame, never panic,
//! and hold memory to a small multiple of what arrived, whatever a header claims. The same
//! bytes also go, with no message limit (the default after authentication), through the reads
//! a non-blocking connection makes into the core's own buffer (`spare` / `commit`, with and
//! without body room). `cargo xtask fuzz` builds with overflow checks on.
#![no_main]

use conn_framing::tuning::{INITIAL_BUFFER, MIN_ROOM, READ_BUFFER};
use conn_framing::{Decoder, FrameError, FrameReader, UNLIMITED};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, bytes)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk % 64) + 1;
    let max = 1 << 16;
    let mut core = Decoder::with_max_message(max);
    let mut frames = Vec::new();
    let mut error = None;
    let mut fed = 0;
    for piece in bytes.chunks(chunk) {
        core.feed(piece);
        fed += piece.len();
        assert!(core.capacity() <= 2 * fed + INITIAL_BUFFER + 64);
        loop {
            match core.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => {
                    // Once out of step, always out of step.
                    assert!(matches!(core.next_frame(), Err(FrameError::Desynchronized)));
                    error.get_or_insert(e);
                    break;
                }
            }
        }
        if error.is_some() {
            break;
        }
    }
    let _ = core.finish();
    // The blocking shell over the same bytes gives the same frames, then the same kind of end.
    let mut reader = FrameReader::new(bytes);
    reader.decoder_mut().set_max_message(max);
    for f in &frames {
        assert_eq!(&reader.read_frame(None).expect("shell agrees"), f);
    }
    let end = reader.read_frame(None);
    match &error {
        Some(FrameError::TooLarge { .. }) => {
            assert!(matches!(end, Err(FrameError::TooLarge { .. })))
        }
        Some(FrameError::NegativeLength { .. }) => {
            assert!(matches!(end, Err(FrameError::NegativeLength { .. })))
        }
        _ => assert!(end.is_err()),
    }
    unlimited_in_place(bytes, chunk);
});

/// The non-blocking shell's reads: into the decoder's spare room, `chunk` bytes at most per
/// read, no message limit. Memory follows what arrived; every read while a frame is owed
/// bytes gets at least `MIN_ROOM` of room; frames come out as they went in.
fn unlimited_in_place(bytes: &[u8], chunk: usize) {
    for body_room in [false, true] {
        let mut core = Decoder::with_max_message(UNLIMITED);
        let mut at = 0;
        while at < bytes.len() {
            let full = core.buffered() > 0 && core.capacity() == core.buffered();
            let room = core.spare(body_room);
            // A full buffer grows by at least MIN_ROOM: never a read of one byte.
            assert!(!room.is_empty() && (!full || room.len() >= MIN_ROOM));
            let n = room.len().min(chunk).min(bytes.len() - at);
            room[..n].copy_from_slice(&bytes[at..at + n]);
            core.commit(n);
            at += n;
            assert!(core.capacity() <= 2 * at + READ_BUFFER + INITIAL_BUFFER);
            loop {
                match core.next_frame() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
        }
        let _ = core.finish();
    }
}
