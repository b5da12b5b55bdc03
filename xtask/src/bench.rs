//! `cargo xtask bench [--quick] [--only WORKLOAD]`: conn, a raw-socket floor and CPython's
//! `multiprocessing.connection` on the same workloads (and, for Pipe streams of large messages,
//! servo's ipc-channel and a bytes-only ceiling), two processes each, implementations
//! interleaved, several runs, medians; a table of ratios, the targets met or missed, and every
//! run as JSON lines under `bench-results/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// One implementation: how to run its measuring side.
#[derive(Clone)]
struct Imp {
    name: String,
    program: PathBuf,
    /// Arguments before WORKLOAD (conn-bench takes `measure IMPL`, the driver `measure`).
    prefix: Vec<String>,
}

struct Config {
    workload: &'static str,
    transport: &'static str,
    size: usize,
    count: usize,
    imps: Vec<Imp>,
    runs: usize,
}

struct Row {
    label: String,
    /// (implementation, median value).
    medians: Vec<(String, f64)>,
    unit: String,
}

fn conn_imp(bin: &Path, name: &str) -> Imp {
    Imp {
        name: name.into(),
        program: bin.to_owned(),
        prefix: vec!["measure".into(), name.into()],
    }
}

fn python_imps(root: &Path) -> Vec<Imp> {
    let driver = root.join("benches/cpython_driver.py");
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let mut candidates = vec![PathBuf::from("python3")];
    if let Some(home) = std::env::var_os("HOME") {
        if let Ok(entries) = std::fs::read_dir(Path::new(&home).join(".pyenv/versions")) {
            let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            dirs.sort();
            for d in dirs {
                if d.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("3.13"))
                {
                    candidates.push(d.join("bin/python3"));
                }
            }
        }
    }
    for program in candidates {
        let Ok(o) = Command::new(&program)
            .args(["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
            .output()
        else {
            continue;
        };
        let version = String::from_utf8_lossy(&o.stdout).trim().to_owned();
        if !o.status.success() || seen.contains(&version) {
            continue;
        }
        seen.push(version.clone());
        out.push(Imp {
            name: format!("cpython-{version}"),
            program,
            prefix: vec![driver.to_string_lossy().into_owned(), "measure".into()],
        });
    }
    out
}

/// The codec corpora of `benches/cpython_driver.py` (`CORPORA`), by number.
const CODEC_CORPORA: [&str; 11] = [
    "sample",
    "10^5 ints",
    "10^4 str dict",
    "10^3 datetimes",
    "10^4 records",
    "10^4 tuples",
    "10^3 4KiB bytes",
    "16MiB str",
    "10^4 int set",
    "10^3 tz datetimes",
    "10^4 big ints",
];

/// Operations per codec run, by corpus (a full run; `--quick` takes a quarter): each run
/// about a tenth of a second to a second.
const CODEC_COUNTS: [usize; 11] = [20_000, 200, 200, 2000, 40, 200, 400, 10, 1000, 2000, 400];

fn configs(bin: &Path, pythons: &[Imp], quick: bool) -> Vec<Config> {
    let runs = if quick { 3 } else { 7 };
    let conn = conn_imp(bin, "conn");
    let raw = conn_imp(bin, "raw");
    let tokio = conn_imp(bin, "conn-tokio");
    let tokio_raw = conn_imp(bin, "tokio-raw");
    let with_py = |mut v: Vec<Imp>| {
        v.extend(pythons.iter().cloned());
        v
    };
    let mut out = Vec::new();
    let pings = if quick { 3000 } else { 10000 };
    for transport in ["pipe", "unix", "tcp"] {
        for size in [64, 4096] {
            let mut imps = vec![conn.clone(), raw.clone()];
            if transport != "pipe" {
                imps.push(tokio.clone());
                imps.push(tokio_raw.clone());
            }
            out.push(Config {
                workload: "pingpong",
                transport,
                size,
                count: pings,
                imps: with_py(imps),
                runs,
            });
        }
    }
    let total: usize = if quick { 64 << 20 } else { 512 << 20 };
    // Pipe streams of large messages also against ipc-channel and the ceiling (bytes only, no
    // framing, the fastest stream this OS gives: a socketpair with large buffers).
    let peers = [conn_imp(bin, "ipc-channel"), conn_imp(bin, "ceiling")];
    for transport in ["pipe", "duplex", "tcp"] {
        for size in [64usize, 4096, 65536, 1 << 20, 64 << 20] {
            if transport == "duplex" && size < 65536 {
                continue;
            }
            let mut imps = vec![conn.clone(), raw.clone()];
            if transport != "tcp" && size >= 65536 {
                imps.extend(peers.iter().cloned());
            }
            if transport == "pipe" && (size == 4096 || size == 1 << 20) {
                imps.push(tokio.clone());
                imps.push(tokio_raw.clone());
            }
            // conn over an OS pipe with the system's largest buffer (F_SETPIPE_SZ), beside
            // the socketpair `pipe_simplex()` uses.
            if transport == "pipe" && (size == 4096 || size == 65536 || size == 1 << 20) {
                imps.push(conn_imp(bin, "conn-ospipe"));
            }
            out.push(Config {
                workload: "stream",
                transport,
                size,
                count: (total / size).clamp(4, 200_000),
                imps: with_py(imps),
                runs,
            });
        }
    }
    out.push(Config {
        workload: "objects",
        transport: "unix",
        size: 0,
        count: if quick { 1000 } else { 3000 },
        imps: with_py(vec![
            conn_imp(bin, "conn-postcard"),
            conn_imp(bin, "conn-pickle"),
        ]),
        runs,
    });
    // Codec rows, one process each, on the corpora of `cpython_driver.py` (CODEC_CORPORA):
    // decoded and encoded, typed as a Rust program would declare the data and as a `PyValue`.
    for direction in ["decode", "encode", "decode-value", "encode-value"] {
        for (corpus, count) in CODEC_COUNTS.iter().enumerate() {
            out.push(Config {
                workload: "codec",
                transport: direction,
                size: corpus,
                count: if quick { (count / 4).max(4) } else { *count },
                // Decoding beside its allocation floor: the decoded value made again.
                imps: with_py(if direction.starts_with("decode") {
                    vec![conn.clone(), conn_imp(bin, "floor")]
                } else {
                    vec![conn.clone()]
                }),
                runs,
            });
        }
    }
    for transport in ["unix", "tcp"] {
        out.push(Config {
            workload: "handshake",
            transport,
            size: 0,
            count: if quick { 200 } else { 500 },
            imps: with_py(vec![conn.clone()]),
            runs,
        });
    }
    // SIZE clients at once connect, authenticate and hang up: accepted connections per second.
    for size in [10usize, 100, 1000] {
        out.push(Config {
            workload: "accept",
            transport: "tcp",
            size,
            count: if quick { 2000 } else { 8000 },
            imps: with_py(if size == 100 {
                vec![conn.clone(), tokio.clone()]
            } else {
                vec![conn.clone()]
            }),
            runs,
        });
    }
    for size in [10, 100, 1000, 10000] {
        out.push(Config {
            workload: "waitset",
            transport: "pipe",
            size,
            count: 2000,
            imps: vec![conn.clone()],
            runs,
        });
        let mut imps = vec![conn.clone()];
        if size <= 1000 {
            imps.extend(pythons.iter().cloned());
        }
        out.push(Config {
            workload: "wait",
            transport: "pipe",
            size,
            count: if size >= 1000 { 200 } else { 2000 },
            imps,
            runs,
        });
    }
    out.push(Config {
        workload: "rss",
        transport: "pipe",
        size: 1 << 30,
        count: 1,
        imps: vec![conn.clone(), raw],
        runs: 1,
    });
    out
}

/// The "value" field of a conn-bench / driver JSON line.
fn value_of(line: &str) -> Option<f64> {
    let at = line.find("\"value\"")? + "\"value\"".len();
    let rest = line[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn run_one(imp: &Imp, c: &Config) -> Result<(f64, String, String), String> {
    let out = Command::new(&imp.program)
        .args(&imp.prefix)
        .args([
            c.workload,
            c.transport,
            &c.size.to_string(),
            &c.count.to_string(),
        ])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", imp.name))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = stdout.lines().last().unwrap_or_default().to_owned();
    if !out.status.success() {
        return Err(format!(
            "{} {} {} {} failed: {}\n{}",
            imp.name,
            c.workload,
            c.transport,
            c.size,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let value = value_of(&line).ok_or_else(|| format!("{}: no value in {line:?}", imp.name))?;
    let unit = line
        .split("\"unit\"")
        .nth(1)
        .and_then(|r| r.split('"').nth(1))
        .unwrap_or("")
        .to_owned();
    Ok((value, unit, line))
}

fn size_label(size: usize) -> String {
    match size {
        0 => String::new(),
        s if s >= 1 << 30 => format!(" {}GiB", s >> 30),
        s if s >= 1 << 20 => format!(" {}MiB", s >> 20),
        s if s >= 1024 && s % 1024 == 0 => format!(" {}KiB", s >> 10),
        s => format!(" {s}"),
    }
}

/// Runs the benchmarks. `root` is the workspace root.
pub(crate) fn bench(root: &Path, quick: bool, only: Option<&str>) -> Result<(), String> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "-p", "benches", "--bin", "conn-bench"])
        .current_dir(root)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("building conn-bench failed".into());
    }
    let bin = root.join("target/release/conn-bench");
    let pythons = python_imps(root);
    let results_dir = root.join("bench-results");
    std::fs::create_dir_all(&results_dir).map_err(|e| e.to_string())?;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let jsonl = results_dir.join(format!("bench-{stamp}.jsonl"));
    let mut lines = String::new();
    let mut rows = Vec::new();
    let chosen = configs(&bin, &pythons, quick)
        .into_iter()
        .filter(|c| only.is_none_or(|w| w == c.workload));
    for c in chosen {
        let label = if c.workload == "codec" {
            format!(
                "codec {} {}",
                c.transport,
                CODEC_CORPORA.get(c.size).unwrap_or(&"?")
            )
        } else {
            format!("{} {}{}", c.workload, c.transport, size_label(c.size))
        };
        eprint!("{label:<28}");
        let mut values: Vec<Vec<f64>> = vec![Vec::new(); c.imps.len()];
        let mut unit = String::new();
        // Interleave: every implementation once per round, so drift hits all alike, starting
        // each round with the next one, so no implementation always runs first.
        for round in 0..c.runs {
            for k in 0..c.imps.len() {
                let i = (round + k) % c.imps.len();
                let imp = &c.imps[i];
                let (v, u, line) = run_one(imp, &c)?;
                values[i].push(v);
                unit = u;
                lines.push_str(&line);
                lines.push('\n');
            }
            eprint!(".");
        }
        eprintln!();
        rows.push(Row {
            label,
            medians: c
                .imps
                .iter()
                .zip(values)
                .map(|(imp, v)| (imp.name.clone(), median(v)))
                .collect(),
            unit,
        });
    }
    let table = render(&rows, &pythons);
    let verdicts = targets(&rows, &pythons);
    for row in &rows {
        let _ = writeln!(
            lines,
            "{{\"summary\":\"{}\",\"unit\":\"{}\",{}}}",
            row.label,
            row.unit,
            row.medians
                .iter()
                .map(|(n, v)| format!("\"{n}\":{v:.4}"))
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    std::fs::write(&jsonl, lines).map_err(|e| e.to_string())?;
    println!(
        "{table}\n{verdicts}\nevery run and the medians: {}",
        jsonl.display()
    );
    Ok(())
}

fn get(row: &Row, name: &str) -> Option<f64> {
    row.medians.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

fn render(rows: &[Row], pythons: &[Imp]) -> String {
    let py = pythons.first().map(|p| p.name.clone());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| workload | unit | conn | conn-tokio | raw floor | tokio floor | ipc-channel | ceiling | conn, OS pipe | value made alone | {} | conn / raw | conn / ipc-channel | conn / CPython |",
        pythons
            .iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|{}---:|---:|---:|",
        "---:|".repeat(pythons.len())
    );
    for row in rows {
        let conn = get(row, "conn")
            .or_else(|| get(row, "conn-postcard"))
            .unwrap_or(f64::NAN);
        let cell = |v: Option<f64>| v.map_or("".to_owned(), |v| format!("{v:.2}"));
        let mut conn_cell = cell(Some(conn));
        if let (Some(pc), Some(pk)) = (get(row, "conn-postcard"), get(row, "conn-pickle")) {
            conn_cell = format!("{pc:.2} (postcard), {pk:.2} (pickle)");
        }
        let raw = get(row, "raw");
        let cpy = py.as_deref().and_then(|p| get(row, p));
        let ratio = |a: f64, b: Option<f64>| b.map_or("".into(), |b| format!("{:.2}", a / b));
        let ipc = get(row, "ipc-channel");
        let mut cells = vec![
            row.label.clone(),
            row.unit.clone(),
            conn_cell,
            cell(get(row, "conn-tokio")),
            cell(raw),
            cell(get(row, "tokio-raw")),
            cell(ipc),
            cell(get(row, "ceiling")),
            cell(get(row, "conn-ospipe")),
            cell(get(row, "floor")),
        ];
        cells.extend(pythons.iter().map(|p| cell(get(row, &p.name))));
        cells.push(ratio(conn, raw));
        cells.push(ratio(conn, ipc));
        cells.push(ratio(conn, cpy));
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

fn targets(rows: &[Row], pythons: &[Imp]) -> String {
    let py = pythons.first().map(|p| p.name.clone()).unwrap_or_default();
    let mut out = String::from("targets (each a ratio of medians from this run):\n");
    let mut check = |what: String, ratio: f64, limit: f64, at_most: bool| {
        let ok = if at_most {
            ratio <= limit
        } else {
            ratio >= limit
        };
        let _ = writeln!(
            out,
            "  {} {what}: {ratio:.3} ({} {limit})",
            if ok { "MET " } else { "MISS" },
            if at_most { "<=" } else { ">=" }
        );
    };
    for row in rows {
        let w = row.label.split(' ').next().unwrap_or("");
        match w {
            "pingpong" => {
                if let (Some(c), Some(r)) = (get(row, "conn"), get(row, "raw")) {
                    check(format!("{} conn/raw time", row.label), c / r, 1.05, true);
                }
                if let (Some(t), Some(c)) = (get(row, "conn-tokio"), get(row, "conn")) {
                    check(
                        format!("{} conn-tokio/conn time", row.label),
                        t / c,
                        1.2,
                        true,
                    );
                }
                if let (Some(t), Some(f)) = (get(row, "conn-tokio"), get(row, "tokio-raw")) {
                    check(
                        format!("{} conn-tokio/tokio floor time", row.label),
                        t / f,
                        1.05,
                        true,
                    );
                }
            }
            "stream" => {
                if let (Some(c), Some(r)) = (get(row, "conn"), get(row, "raw")) {
                    check(
                        format!("{} conn/raw throughput", row.label),
                        c / r,
                        0.9,
                        false,
                    );
                }
                if let (Some(c), Some(o)) = (get(row, "conn"), get(row, "conn-ospipe")) {
                    check(
                        format!("{} conn/conn over an OS pipe throughput", row.label),
                        c / o,
                        1.0,
                        false,
                    );
                }
                if let (Some(t), Some(c)) = (get(row, "conn-tokio"), get(row, "conn")) {
                    check(
                        format!("{} conn-tokio/conn throughput", row.label),
                        t / c,
                        0.9,
                        false,
                    );
                }
                if let (Some(t), Some(f)) = (get(row, "conn-tokio"), get(row, "tokio-raw")) {
                    check(
                        format!("{} conn-tokio/tokio floor throughput", row.label),
                        t / f,
                        0.9,
                        false,
                    );
                }
                if let (Some(c), Some(i)) = (get(row, "conn"), get(row, "ipc-channel")) {
                    check(
                        format!("{} conn/ipc-channel throughput", row.label),
                        c / i,
                        1.0,
                        false,
                    );
                }
            }
            "objects" => {
                if let Some(p) = get(row, &py) {
                    if let Some(c) = get(row, "conn-postcard") {
                        check("objects postcard/CPython time".into(), c / p, 0.4, true);
                    }
                    if let Some(c) = get(row, "conn-pickle") {
                        check("objects pickle/CPython time".into(), c / p, 0.3, true);
                    }
                }
            }
            "codec" if row.label == "codec decode sample" => {
                if let (Some(c), Some(p)) = (get(row, "conn"), get(row, &py)) {
                    check("decode sample conn/CPython time".into(), c / p, 0.1, true);
                }
            }
            "codec" if row.label == "codec encode sample" => {
                if let (Some(c), Some(p)) = (get(row, "conn"), get(row, &py)) {
                    check("encode sample conn/CPython time".into(), c / p, 0.2, true);
                }
            }
            // Every other corpus, typed and as a PyValue: decoding at most half of CPython's
            // `loads` time, encoding at most 0.3 of its `dumps`.
            "codec" => {
                if let (Some(c), Some(p)) = (get(row, "conn"), get(row, &py)) {
                    let target = if row.label.starts_with("codec decode") {
                        0.5
                    } else {
                        0.3
                    };
                    // Where even making the decoded value (its allocation floor) takes more
                    // than the target, no decoder can meet it: said beside the ratio.
                    let floor = get(row, "floor")
                        .map(|f| f / p)
                        .filter(|r| *r > target)
                        .map(|r| format!(" (making the value alone: {r:.3})"))
                        .unwrap_or_default();
                    check(
                        format!("{} conn/CPython time{floor}", row.label),
                        c / p,
                        target,
                        true,
                    );
                }
            }
            "handshake" => {
                if let (Some(c), Some(p)) = (get(row, "conn"), get(row, &py)) {
                    check(format!("{} conn/CPython time", row.label), c / p, 0.6, true);
                }
            }
            "accept" if row.label.ends_with(" 100") => {
                if let (Some(t), Some(c)) = (get(row, "conn-tokio"), get(row, "conn")) {
                    check(
                        "accept with 100 clients conn-tokio/conn connections per second".into(),
                        t / c,
                        1.0,
                        false,
                    );
                }
                if let (Some(c), Some(p)) = (get(row, "conn"), get(row, &py)) {
                    check(
                        "accept with 100 clients conn/CPython connections per second".into(),
                        c / p,
                        3.0,
                        false,
                    );
                }
            }
            "wait" if row.label.ends_with(" 1000") => {
                if let (Some(c), Some(p)) = (get(row, "conn"), get(row, &py)) {
                    check("wait at 1000 conn/CPython time".into(), c / p, 0.5, true);
                }
            }
            "rss" => {
                if let Some(c) = get(row, "conn") {
                    check("rss receiving 1 GiB, GiB".into(), c / 1024.0, 1.1, true);
                }
            }
            _ => {}
        }
    }
    let waitset = |n: &str| {
        rows.iter()
            .find(|r| r.label == format!("waitset pipe {n}"))
            .and_then(|r| get(r, "conn"))
    };
    if let (Some(big), Some(small)) = (waitset("10000"), waitset("10")) {
        check(
            "WaitSet cost at 10000 / at 10".into(),
            big / small,
            2.0,
            true,
        );
    }
    out
}
