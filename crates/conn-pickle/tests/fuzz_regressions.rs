//! Every input the fuzzer ever found (`fuzz/regressions/pickle_decode/`), through the fuzz
//! target's checks: decoding never panics, and what decodes re-encodes to an equal value.

use conn_pickle::{
    Limits, Protocol, Value, from_slice, value_from_slice, value_from_slice_with, value_to_vec,
};

#[test]
fn fuzz_regressions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions/pickle_decode");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let _ = from_slice::<Vec<(i64, String)>>(&data);
        let _ = from_slice::<Value>(&data);
        if let Ok(value) = value_from_slice(&data) {
            let unlimited = Limits::default().max_depth(u32::MAX);
            for proto in [Protocol::V2, Protocol::V3, Protocol::V4, Protocol::V5] {
                if let Ok(bytes) = value_to_vec(&value, proto) {
                    let back = value_from_slice_with(&bytes, &unlimited)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    if proto >= Protocol::V4 {
                        assert_eq!(back, value, "{}", path.display());
                    } else {
                        // No `fold` before protocol 4 (as in CPython): the rest must be stable.
                        assert_eq!(
                            value_to_vec(&back, proto).ok(),
                            Some(bytes),
                            "{}",
                            path.display()
                        );
                    }
                }
            }
        }
        count += 1;
    }
    eprintln!("{count} fuzz regressions checked");
}
