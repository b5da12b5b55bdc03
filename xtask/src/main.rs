//! conn's task runner, `cargo xtask <task>` (alias in `.cargo/config.toml`).
//!
//! - `ci`: every check CI runs, in order, each timed; the first failure stops it with a non-zero
//!   exit: fmt, clippy (`-D warnings`), feature combinations, tests, docs (`-D warnings`),
//!   cargo-deny (`bans licenses sources`, offline after `cargo fetch`; installed if missing).
//! - `fuzz [SECONDS]`: the pickle decoder under libFuzzer (cargo-fuzz, nightly) for SECONDS
//!   (default 60), from the committed seeds; prints executions and peak RSS; a crash fails it.
//! - `bench [--quick] [--only WORKLOAD]`: conn against a raw-socket floor and CPython on the same workloads; a
//!   table of ratios, the targets met or missed, every run under `bench-results/`.

mod bench;

use std::env;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

/// One check: a name and the commands it runs.
struct Step {
    name: &'static str,
    commands: Vec<Command>,
}

fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(args);
    cmd
}

fn ci_steps() -> Vec<Step> {
    let mut doc = cargo(&["doc", "--workspace", "--no-deps", "--all-features"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    vec![
        Step {
            name: "fmt",
            commands: vec![cargo(&["fmt", "--all", "--check"])],
        },
        Step {
            name: "clippy",
            commands: vec![cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ])],
        },
        Step {
            name: "features",
            commands: ["", "pickle", "postcard"]
                .iter()
                .map(|features| {
                    cargo(&[
                        "check",
                        "--quiet",
                        "-p",
                        "conn-framing",
                        "--no-default-features",
                        "--features",
                        features,
                    ])
                })
                .collect(),
        },
        Step {
            name: "test",
            commands: vec![cargo(&["test", "--workspace"])],
        },
        Step {
            name: "doc",
            commands: vec![doc],
        },
        Step {
            name: "deny",
            commands: vec![
                cargo(&["fetch", "--quiet"]),
                cargo(&["deny", "--offline", "check", "bans", "licenses", "sources"]),
            ],
        },
    ]
}

/// Installs the cargo tool `krate` (`cargo install --locked`) if `probe` does not succeed.
fn ensure_installed(probe: &mut Command, krate: &str) -> Result<(), String> {
    if probe.output().is_ok_and(|o| o.status.success()) {
        return Ok(());
    }
    eprintln!("xtask: {krate} is missing; installing it (a few minutes, once)");
    run(&mut cargo(&["install", "--locked", krate]))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

fn ci() -> Result<(), String> {
    let start = Instant::now();
    for mut step in ci_steps() {
        if step.name == "deny" {
            ensure_installed(&mut cargo(&["deny", "--version"]), "cargo-deny")?;
        }
        eprintln!("==> {}", step.name);
        let step_start = Instant::now();
        for cmd in &mut step.commands {
            run(cmd).map_err(|e| format!("step {} failed: {e}", step.name))?;
        }
        eprintln!(
            "==> {} ok in {:.1}s",
            step.name,
            step_start.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "==> all checks passed in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The fuzz targets and their share of the time: the pickle decoder gets the time asked for,
/// the framing core and the handshake machines half of it each.
const FUZZ_TARGETS: [(&str, u64); 3] =
    [("pickle_decode", 2), ("frame_decode", 1), ("handshake", 1)];

/// Runs every fuzz target (`seconds` for the pickle decoder, half for the others), reporting
/// executions and peak RSS of each.
fn fuzz(seconds: u64) -> Result<(), String> {
    let mut probe = Command::new("cargo");
    probe.args(["+nightly", "fuzz", "--version"]);
    ensure_installed(&mut probe, "cargo-fuzz")?;
    for (target, share) in FUZZ_TARGETS {
        fuzz_target(target, (seconds * share / 2).max(1))?;
    }
    Ok(())
}

fn fuzz_target(target: &str, seconds: u64) -> Result<(), String> {
    let root = workspace_root();
    // New inputs go to a scratch corpus under target/; the committed seeds stay as they are.
    let scratch = root.join("target/fuzz-corpus").join(target);
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let seeds = root.join("fuzz/seeds").join(target);
    let started = Instant::now();
    let output = Command::new("cargo")
        .current_dir(&root)
        .args(["+nightly", "fuzz", "run", "--fuzz-dir", "fuzz", target])
        .arg(&scratch)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .args(["-rss_limit_mb=2048", "-timeout=10", "-print_final_stats=1"])
        .stdout(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
    let log = String::from_utf8_lossy(&output.stderr);
    let stat = |name: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| "?".into())
    };
    if !output.status.success() {
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "fuzzing {target} failed ({}); the crashing input is under fuzz/artifacts/{target}/: \
             copy it to fuzz/regressions/{target}/ so the tests keep it\n{}",
            output.status,
            tail.join("\n")
        ));
    }
    eprintln!(
        "==> fuzz {target}: {} executions in {:.0}s (including the build), peak RSS {} MB",
        stat("stat::number_of_executed_units:"),
        started.elapsed().as_secs_f64(),
        stat("stat::peak_rss_mb:")
    );
    Ok(())
}

fn usage() -> String {
    "usage: cargo xtask <task>\n\ntasks:\n  ci               run every check CI runs (fmt, clippy, features, test, doc, deny)\n  fuzz [SECONDS]   fuzz the pickle decoder for SECONDS, the framing core and the handshake\n                   machines for half that each (cargo-fuzz, nightly; default 60 s)\n  bench [--quick] [--only WORKLOAD]\n                   benchmarks: conn vs a raw floor vs CPython, ratios and targets".into()
}

/// The workspace root: xtask's manifest directory's parent.
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}

fn main() -> ExitCode {
    let task = env::args().nth(1);
    let result = match task.as_deref() {
        Some("ci") => ci(),
        Some("fuzz") => match env::args().nth(2).map(|s| s.parse::<u64>()) {
            None => fuzz(60),
            Some(Ok(seconds)) => fuzz(seconds),
            Some(Err(_)) => Err(usage()),
        },
        Some("bench") => {
            let args: Vec<String> = env::args().skip(2).collect();
            let quick = args.iter().any(|a| a == "--quick");
            let only = args
                .iter()
                .position(|a| a == "--only")
                .and_then(|i| args.get(i + 1))
                .map(String::as_str);
            bench::bench(&workspace_root(), quick, only)
        }
        Some("-h" | "--help" | "help") => {
            println!("{}", usage());
            Ok(())
        }
        _ => Err(usage()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
