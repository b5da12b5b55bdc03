//! Any bytes a peer sends as a pickle: decoded into a `Value` and into typed Rust shapes, and,
//! when they decode, printed, compared and re-encoded in every protocol, which must decode to
//! an equal value. Nothing may panic, abort, recurse deeply or allocate by a claimed length.
#![no_main]

use conn_pickle::{
    Error, Limit, Limits, Protocol, Value, from_slice_with, value_from_slice_with, value_to_vec,
};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

#[derive(Deserialize)]
#[allow(dead_code)]
struct Record {
    name: String,
    values: Vec<f64>,
    tags: Option<std::collections::BTreeMap<String, i64>>,
}

fuzz_target!(|data: &[u8]| {
    // Small limits keep each run fast; the paths are the same.
    let limits = Limits::default().max_expanded(1 << 16);
    let _ = from_slice_with::<Record>(data, &limits);
    let _ = from_slice_with::<Vec<(i64, String)>>(data, &limits);
    let _ = from_slice_with::<Value>(data, &limits);
    // The streaming fast path, wherever it answers, answers what the machine does.
    conn_pickle::stream_agrees_with_machine(data, &limits);
    // Copying out expands shared parts: this fails up front when that would be too big, which
    // also says whether printing (which expands too) stays small.
    let expands_too_far = matches!(
        from_slice_with::<serde::de::IgnoredAny>(data, &limits),
        Err(Error::LimitExceeded { limit: Limit::Expanded, .. })
    ) || matches!(
        from_slice_with::<Vec<serde::de::IgnoredAny>>(data, &limits),
        Err(Error::LimitExceeded { limit: Limit::Expanded, .. })
    );
    if let Ok(value) = value_from_slice_with(data, &limits) {
        if !expands_too_far {
            let _ = value.to_string().len();
        }
        assert_eq!(value, value.clone());
        let unlimited = Limits::default().max_depth(u32::MAX);
        for proto in [Protocol::V2, Protocol::V3, Protocol::V4, Protocol::V5] {
            if let Ok(bytes) = value_to_vec(&value, proto) {
                let back = value_from_slice_with(&bytes, &unlimited).expect("own pickle decodes");
                if proto >= Protocol::V4 {
                    assert_eq!(back, value, "{proto:?}");
                } else {
                    // Protocols 2 and 3 cannot carry a datetime's `fold` (CPython drops it too);
                    // what they carry must be stable.
                    assert_eq!(value_to_vec(&back, proto).ok(), Some(bytes), "{proto:?}");
                }
            }
        }
    }
});
