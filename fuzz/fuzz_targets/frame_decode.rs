//! Any bytes a peer sends as frames, in any chunking: the framing core (fed directly) and its
//! blocking shell (`FrameReader` over the same bytes) must agree frame by frame, never panic,
//! and hold memory to a small multiple of what arrived, whatever a header claims.
#![no_main]

use conn_framing::{Decoder, FrameError, FrameReader, INITIAL_BUFFER};
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
    reader.set_max_message(max);
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
});
