//! conn's task runner, `cargo xtask <task>` (alias in `.cargo/config.toml`).
//!
//! - `ci`: every check CI runs, in order, each timed; the first failure stops it with a non-zero
//!   exit: fmt, clippy (`-D warnings`), features (each crate alone, every feature combination),
//!   cross (Windows and macOS type-checks), msrv (`cargo +<rust-version> check`, the toolchain
//!   installed if missing), tests, windows (below), docs (`-D warnings`), cargo-deny (`bans licenses sources`,
//!   offline after `cargo fetch`; installed if missing).
//! - `windows`: the Windows build tested under Wine (also a step of `ci`): every layer's tests
//!   for `x86_64-pc-windows-gnu` run under `wine` (the facade's over AF_PIPE and AF_INET), then
//!   `tests/tests/wine.rs` runs the Windows programs against the Linux CPythons and over named
//!   pipes. Needs `wine` and `x86_64-w64-mingw32-gcc` (Debian: `wine wine64
//!   gcc-mingw-w64-x86-64`, which `.ci/run` installs); the prefix lives in `target/wine`.
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

/// The layers, each usable alone: every one is checked on its own (so no feature another crate
/// turns on hides a missing one) and cross-checked for the other OSes.
const PURE_CRATES: [&str; 4] = ["conn-address", "conn-pickle", "conn-framing", "conn-auth"];
/// The layers above the pure ones, which need an OS.
const OS_CRATES: [&str; 3] = ["conn-transport", "conn", "conn-tokio"];

/// Targets the workspace must keep compiling for (their rustup targets are installed by
/// `.ci/run`): Windows for the pure crates (all targets) and the workspace's libraries, bins
/// and examples (the layers' tests are built and run under Wine by the `windows` step), macOS for everything but the benches
/// (criterion builds C with a native compiler).
const WINDOWS: &str = "x86_64-pc-windows-gnu";
const MACOS: &str = "x86_64-apple-darwin";

fn check(args: &[&str]) -> Command {
    let mut all = vec!["check", "--quiet"];
    all.extend_from_slice(args);
    cargo(&all)
}

fn feature_checks() -> Vec<Command> {
    let mut commands = Vec::new();
    for krate in PURE_CRATES.into_iter().chain(OS_CRATES) {
        commands.push(check(&["-p", krate, "--all-targets"]));
    }
    for features in ["", "pickle", "postcard", "pickle,postcard"] {
        commands.push(check(&[
            "-p",
            "conn-framing",
            "--no-default-features",
            "--features",
            features,
        ]));
    }
    commands.push(check(&[
        "-p",
        "conn",
        "--no-default-features",
        "--all-targets",
    ]));
    commands
}

fn cross_checks() -> Vec<Command> {
    let mut pure = vec!["--all-targets", "--target", WINDOWS];
    for krate in PURE_CRATES {
        pure.extend(["-p", krate]);
    }
    vec![
        check(&pure),
        check(&[
            "--workspace",
            "--exclude",
            "benches",
            "--lib",
            "--bins",
            "--examples",
            "--target",
            WINDOWS,
        ]),
        check(&[
            "--workspace",
            "--exclude",
            "benches",
            "--all-targets",
            "--target",
            MACOS,
        ]),
    ]
}

/// The crates whose tests run under Wine: every layer (the `tests` crate's interop targets need
/// CPython, which is Linux-only here; `tests/tests/wine.rs` drives the Windows programs instead).
fn windows_crates() -> Vec<&'static str> {
    PURE_CRATES.into_iter().chain(OS_CRATES).collect()
}

/// A cargo command for the Windows target with Wine as its runner.
fn under_wine(args: &[&str], prefix: &std::path::Path) -> Command {
    let mut cmd = cargo(args);
    cmd.args(["--target", WINDOWS])
        .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER", "wine")
        .env(
            "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER",
            "x86_64-w64-mingw32-gcc",
        )
        .stdin(std::process::Stdio::null());
    wine_env(&mut cmd, prefix);
    cmd
}

/// Wine's settings: our prefix, no debug channels, no Mono/Gecko prompts, no display.
fn wine_env(cmd: &mut Command, prefix: &std::path::Path) {
    cmd.env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
        .env_remove("DISPLAY");
}

/// The `windows` step: prepare the prefix, run every layer's tests under Wine, build the
/// Windows programs and run `tests/tests/wine.rs` against them (with `CI` as given, so 3.11
/// and 3.13 are required on CI).
fn windows_commands(prefix: &std::path::Path) -> Vec<Command> {
    let root = workspace_root();
    let mut prepare = Command::new("bash");
    prepare
        .arg(root.join("xtask/wine/prepare.sh"))
        .stdin(std::process::Stdio::null());
    wine_env(&mut prepare, prefix);
    let mut test = vec!["test", "--quiet"];
    for krate in windows_crates() {
        test.extend(["-p", krate]);
    }
    let mut interop = cargo(&["test", "--quiet", "-p", "conn-tests", "--test", "wine"]);
    interop.env(
        "CONN_WINE_BUILD",
        root.join("target").join(WINDOWS).join("debug"),
    );
    wine_env(&mut interop, prefix);
    vec![
        prepare,
        under_wine(&test, prefix),
        under_wine(&["build", "--quiet", "-p", "conn", "--examples"], prefix),
        under_wine(
            &["build", "--quiet", "-p", "conn-tokio", "--examples"],
            prefix,
        ),
        under_wine(&["build", "--quiet", "-p", "conn-cli"], prefix),
        under_wine(
            &["build", "--quiet", "-p", "conn-tests", "--bin", "conn-peer"],
            prefix,
        ),
        interop,
    ]
}

/// Checks that Wine and the MinGW linker are installed.
fn ensure_wine() -> Result<(), String> {
    for tool in ["wine", "wineserver", "x86_64-w64-mingw32-gcc"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Err(format!(
                "{tool} is missing: install Debian's wine, wine64 and gcc-mingw-w64-x86-64 \
                 (.ci/run does)"
            ));
        }
    }
    ensure_target(WINDOWS)
}

/// Runs the `windows` step, stopping Wine's server afterwards whatever happened.
fn windows() -> Result<(), String> {
    ensure_wine()?;
    let prefix = workspace_root().join("target/wine");
    let mut result = Ok(());
    for mut cmd in windows_commands(&prefix) {
        result = run(&mut cmd);
        if result.is_err() {
            break;
        }
    }
    let mut stop = Command::new("wineserver");
    stop.arg("-k");
    wine_env(&mut stop, &prefix);
    let _ = stop.status();
    result
}

/// The `rust-version` the workspace declares (`[workspace.package]`), as `1.87.0`.
fn msrv() -> Result<String, String> {
    let manifest = workspace_root().join("Cargo.toml");
    let text =
        std::fs::read_to_string(&manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version"))
        .and_then(|rest| rest.split('"').nth(1))
        .ok_or("no rust-version in the workspace manifest")?;
    Ok(match version.matches('.').count() {
        1 => format!("{version}.0"),
        _ => version.to_owned(),
    })
}

fn msrv_check(version: &str) -> Command {
    // Through rustup (the `CARGO` that runs xtask is a toolchain's own cargo, which knows no
    // `+toolchain`), with the outer cargo's settings removed; its own target directory keeps
    // the stable build's artifacts warm.
    let mut cmd = Command::new("rustup");
    cmd.args([
        "run",
        version,
        "cargo",
        "check",
        "--quiet",
        "--workspace",
        "--all-targets",
    ])
    .args(["--target-dir", "target/msrv"])
    .env_remove("CARGO")
    .env_remove("RUSTC")
    .env_remove("RUSTDOC");
    cmd
}

fn ci_steps(msrv: &str) -> Vec<Step> {
    let mut doc = cargo(&["doc", "--workspace", "--no-deps", "--all-features"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    vec![
        Step {
            name: "fmt",
            commands: vec![cargo(&["fmt", "--all", "--check"])],
        },
        Step {
            name: "clippy",
            // The tests' lint allowances live here, in one place: test and bench targets may
            // unwrap, expect and panic (a failed unwrap is a failed test); libraries, binaries
            // and examples may not (and a test module inside a library is covered by
            // clippy.toml's allow-*-in-tests).
            commands: vec![
                cargo(&[
                    "clippy",
                    "--workspace",
                    "--lib",
                    "--bins",
                    "--examples",
                    "--all-features",
                    "--",
                    "-D",
                    "warnings",
                ]),
                cargo(&[
                    "clippy",
                    "--workspace",
                    "--tests",
                    "--benches",
                    "--all-features",
                    "--",
                    "-D",
                    "warnings",
                    "-A",
                    "clippy::unwrap_used",
                    "-A",
                    "clippy::expect_used",
                    "-A",
                    "clippy::panic",
                ]),
            ],
        },
        Step {
            name: "features",
            commands: feature_checks(),
        },
        Step {
            name: "cross",
            commands: cross_checks(),
        },
        Step {
            name: "msrv",
            commands: vec![msrv_check(msrv)],
        },
        Step {
            name: "test",
            // The README's `cargo test --workspace` runs the default features first (in
            // .ci/run); this run turns every feature on (conn's tokio re-export, conn-tokio's
            // tokio-util codec, the postcard codec).
            commands: vec![cargo(&["test", "--workspace", "--all-features"])],
        },
        Step {
            name: "windows",
            commands: Vec::new(),
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

/// Installs the rustup toolchain `version` (minimal profile) if it is missing.
fn ensure_toolchain(version: &str) -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["run", version, "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if installed {
        return Ok(());
    }
    eprintln!("xtask: toolchain {version} (the MSRV) is missing; installing it");
    run(Command::new("rustup").args(["toolchain", "install", version, "--profile", "minimal"]))
}

/// Adds the rustup target `target` if it is missing.
fn ensure_target(target: &str) -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == target)
        });
    if installed {
        return Ok(());
    }
    eprintln!("xtask: rustup target {target} is missing; adding it");
    run(Command::new("rustup").args(["target", "add", target]))
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
    let msrv = msrv()?;
    for mut step in ci_steps(&msrv) {
        match step.name {
            "deny" => ensure_installed(&mut cargo(&["deny", "--version"]), "cargo-deny")?,
            "cross" => [WINDOWS, MACOS].into_iter().try_for_each(ensure_target)?,
            "msrv" => ensure_toolchain(&msrv)?,
            _ => {}
        }
        eprintln!("==> {}", step.name);
        let step_start = Instant::now();
        if step.name == "windows" {
            windows().map_err(|e| format!("step windows failed: {e}"))?;
        }
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
        // `-a`: debug assertions and overflow checks on, so arithmetic on a peer's lengths that
        // would wrap in release panics here.
        .args([
            "+nightly",
            "fuzz",
            "run",
            "-a",
            "--fuzz-dir",
            "fuzz",
            target,
        ])
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
    "usage: cargo xtask <task>\n\ntasks:\n  ci               run every check CI runs (fmt, clippy, features, cross, msrv, test, windows,\n                   doc, deny)\n  windows          the Windows build's tests under Wine, and against the Linux CPythons\n  fuzz [SECONDS]   fuzz the pickle decoder for SECONDS, the framing core and the handshake\n                   machines for half that each (cargo-fuzz, nightly; default 60 s)\n  bench [--quick] [--only WORKLOAD]\n                   benchmarks: conn vs a raw floor vs CPython, ratios and targets".into()
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
        Some("windows") => windows(),
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
