//! Any bytes a peer sends as a pickle: decoded into a `Value` and into typed Rust shapes, and,
//! when they decode, printed, compared and re-encoded in every protocol, which must decode to
//! an equal value. Nothing may panic, abort, recurse deeply or allocate by a claimed length;
//! under a counting allocator, the peak bytes live while decoding stay within the crate's
//! stated bound (`PER_BYTE` × input + `FLOOR`, as in conn-pickle's docs), and whatever is
//! printed (a value, an error) holds no control or bidi character raw.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use conn_pickle::{
    Error, Limit, Limits, Protocol, Value, from_slice_with, is_printable_text,
    value_from_slice_with, value_to_vec,
};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

/// conn-pickle's documented bound on decoding memory: bytes per input byte, and a floor.
const PER_BYTE: usize = 256;
const FLOOR: usize = 8 << 20;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

struct Counting;

// SAFETY: every call is forwarded to `System` unchanged; the bookkeeping is two atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and asserts the peak bytes it had live stay within the bound for `input`.
fn bounded<T>(what: &str, input: &[u8], f: impl FnOnce() -> T) -> T {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    let bound = PER_BYTE * input.len() + FLOOR;
    assert!(peak <= bound, "{what}: {} input bytes peaked at {peak} bytes", input.len());
    out
}

fn printable_error<T>(result: &Result<T, Error>) {
    if let Err(e) = result {
        let text = e.to_string();
        assert!(is_printable_text(&text), "error text {text:?}");
    }
}

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
    printable_error(&bounded("Record", data, || from_slice_with::<Record>(data, &limits)));
    printable_error(&bounded("Vec<(i64, String)>", data, || {
        from_slice_with::<Vec<(i64, String)>>(data, &limits)
    }));
    printable_error(&bounded("Value (serde)", data, || {
        from_slice_with::<Value>(data, &limits)
    }));
    // The default limits too: what a connection uses.
    printable_error(&bounded("Value", data, || {
        conn_pickle::value_from_slice(data).map(drop)
    }));
    printable_error(&bounded("Vec<Vec<u8>>", data, || {
        conn_pickle::from_slice::<Vec<Vec<u8>>>(data).map(drop)
    }));
    // Lists and sets sized by counting their first batch (a long tuple closes its `MARK`).
    printable_error(&bounded("Vec<(i64, String, f64, Vec<i64>)>", data, || {
        conn_pickle::from_slice::<Vec<(i64, String, f64, Vec<i64>)>>(data).map(drop)
    }));
    printable_error(&bounded("HashSet<i64>", data, || {
        conn_pickle::from_slice::<std::collections::HashSet<i64>>(data).map(drop)
    }));
    // The streaming fast path, wherever it answers, answers what the machine does.
    conn_pickle::stream_agrees_with_machine(data, &limits);
    // So does the direct path to a value, under the defaults and under tight limits (where
    // it must refuse, by giving up, whatever the machine refuses).
    conn_pickle::direct_agrees_with_machine(data, &limits);
    let tight = Limits::default()
        .max_depth(6)
        .max_memo(8)
        .max_values(48)
        .max_int_bytes(9);
    conn_pickle::direct_agrees_with_machine(data, &tight);
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
            let shown = value.to_string();
            assert!(is_printable_text(&shown), "Display {shown:?}");
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
