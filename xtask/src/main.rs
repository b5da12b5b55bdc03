//! conn's task runner, `cargo xtask <task>` (alias in `.cargo/config.toml`).
//!
//! - `ci`: every check CI runs, in order, each timed; the first failure stops it with a non-zero
//!   exit: fmt, clippy (`-D warnings`), feature combinations, tests, docs (`-D warnings`),
//!   cargo-deny (`bans licenses sources`, offline after `cargo fetch`; installed if missing).
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

/// Installs cargo-deny if `cargo deny` is not available.
fn ensure_cargo_deny() -> Result<(), String> {
    let present = cargo(&["deny", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    eprintln!("xtask: cargo-deny is missing; installing it (a few minutes, once)");
    run(&mut cargo(&["install", "--locked", "cargo-deny"]))
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
            ensure_cargo_deny()?;
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

fn usage() -> String {
    "usage: cargo xtask <task>\n\ntasks:\n  ci               run every check CI runs (fmt, clippy, features, test, doc, deny)\n  bench [--quick] [--only WORKLOAD]\n                   benchmarks: conn vs a raw floor vs CPython, ratios and targets".into()
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
