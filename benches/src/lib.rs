//! conn's benchmarks, kept out of the libraries' dependency graph.
//!
//! - `benches/layers.rs`: criterion micro-benchmarks of the pure layers (`cargo bench -p benches`).
//! - `src/bin/conn-bench.rs`: one side of each two-process workload, for conn and for a raw
//!   floor; `cpython_driver.py` is the CPython side. `cargo xtask bench` runs them interleaved
//!   and prints the ratios.

use serde::{Deserialize, Serialize};

/// The object of the object ping-pong: 1000 floats, a string and a small list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// 1000 floats.
    pub floats: Vec<f64>,
    /// A short string.
    pub name: String,
    /// A small list.
    pub tags: Vec<i64>,
}

impl Sample {
    /// The sample every implementation sends (`cpython_driver.py` builds the same as a dict).
    pub fn new() -> Self {
        Self {
            floats: (0..1000).map(|i| f64::from(i) * 0.5).collect(),
            name: "benchmark sample".into(),
            tags: vec![1, 2, 3, 4, 5],
        }
    }
}

impl Default for Sample {
    fn default() -> Self {
        Self::new()
    }
}
