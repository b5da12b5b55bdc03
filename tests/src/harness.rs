//! The interop test harness (`harness = false` test targets, on libtest-mimic): each interop test
//! runs once per CPython version as its own test case, named `test_name::cpython_3_11`, so cargo's
//! summary line counts what really ran. A version that is not installed, or that a test does not
//! apply to, is an *ignored* case with the reason beside it, never a pass. With `CI=true`, a
//! missing 3.11 or 3.13 is a *failed* case.
//!
//! It takes libtest's usual arguments (a name filter, `--exact`, `--ignored`, `--list`,
//! `--test-threads`, `--nocapture`).

use std::process::ExitCode;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use crate::python::{Python, REQUIRED_IN_CI, WANTED, discover, in_ci};

/// One test run against every CPython version.
pub struct PerPython {
    name: &'static str,
    since: Option<((u32, u32), &'static str)>,
    until: Option<((u32, u32), &'static str)>,
    run: fn(&Python),
}

/// A test to run once per CPython version: `run` gets the interpreter.
pub fn per_python(name: &'static str, run: fn(&Python)) -> PerPython {
    PerPython {
        name,
        since: None,
        until: None,
        run,
    }
}

impl PerPython {
    /// Applies only to CPython `major.minor` and later; older versions are ignored cases,
    /// with `why`.
    pub fn since(mut self, major: u32, minor: u32, why: &'static str) -> Self {
        self.since = Some(((major, minor), why));
        self
    }

    /// Applies only to CPython `major.minor` and earlier; newer versions are ignored cases,
    /// with `why`.
    pub fn until(mut self, major: u32, minor: u32, why: &'static str) -> Self {
        self.until = Some(((major, minor), why));
        self
    }

    fn applies(&self, version: (u32, u32)) -> Result<(), String> {
        if let Some((min, why)) = self.since {
            if version < min {
                return Err(format!("needs CPython >= {}.{}: {why}", min.0, min.1));
            }
        }
        if let Some((max, why)) = self.until {
            if version > max {
                return Err(format!("needs CPython <= {}.{}: {why}", max.0, max.1));
            }
        }
        Ok(())
    }
}

/// A test that runs once, not per version (`#[test]` in a harness-less target).
pub fn once(name: &'static str, run: fn()) -> Trial {
    Trial::test(name, move || {
        run();
        Ok(())
    })
}

/// A test that runs once and may decide at run time that it cannot run here: `run` returns
/// `Err(reason)` to be reported as ignored with that reason.
pub fn once_or_ignored(name: &'static str, run: fn() -> Result<(), String>) -> Trial {
    Trial::ignorable_test(name, move || {
        Ok(match run() {
            Ok(()) => Completion::Completed,
            Err(reason) => Completion::ignored_with(reason),
        })
    })
}

/// The case name for `version`: `cpython_3_11`.
fn case_name(test: &str, (major, minor): (u32, u32)) -> String {
    format!("{test}::cpython_{major}_{minor}")
}

/// Builds one case per (test, CPython version): every wanted version, and any other installed
/// one.
pub fn trials(tests: Vec<PerPython>, found: &[Python]) -> Vec<Trial> {
    let mut versions: Vec<(u32, u32)> = WANTED.to_vec();
    for py in found {
        if !versions.contains(&py.minor()) {
            versions.push(py.minor());
        }
    }
    versions.sort_unstable();
    let mut out = Vec::new();
    for test in &tests {
        for &version in &versions {
            let name = case_name(test.name, version);
            let py = found.iter().find(|p| p.minor() == version).cloned();
            let trial = match (py, test.applies(version)) {
                (Some(py), Ok(())) => {
                    let run = test.run;
                    Trial::test(name, move || {
                        run(&py);
                        Ok(())
                    })
                }
                (Some(_), Err(reason)) => {
                    Trial::ignorable_test(name, move || Ok(Completion::ignored_with(reason)))
                }
                (None, applies) => {
                    let required = in_ci() && REQUIRED_IN_CI.contains(&version);
                    let (major, minor) = version;
                    let missing =
                        format!("CPython {major}.{minor} not found under ~/.pyenv/versions");
                    if required && applies.is_ok() {
                        Trial::test(name, move || {
                            Err(Failed::from(format!("CI=true requires it: {missing}")))
                        })
                    } else {
                        Trial::ignorable_test(name, move || Ok(Completion::ignored_with(missing)))
                    }
                }
            };
            out.push(trial);
        }
    }
    out
}

/// The `main` of an interop test target: runs `tests` once per CPython version and `plain`
/// once, with libtest's command line, and exits with its status.
pub fn main(tests: Vec<PerPython>, plain: Vec<Trial>) -> ExitCode {
    let args = Arguments::from_args();
    let found = discover();
    let mut all = trials(tests, &found);
    all.extend(plain);
    libtest_mimic::run(&args, all).exit_code()
}

/// The newest installed CPython that is at least `major.minor`.
pub fn newest_since(major: u32, minor: u32) -> Option<Python> {
    discover()
        .into_iter()
        .rev()
        .find(|p| p.at_least(major, minor))
}
