//! Live end-to-end tests against real PyPI (names start with `live_`; nextest retries them on
//! transient failures): crawl a real requirement closure as of a fixed date, publish the
//! snapshot, resolve it with `mach-nix`, install the hashed lock with pip into a fresh venv,
//! and compare the pins with `uv pip compile` for the same date and target.

use std::collections::BTreeMap;
use std::process::Command;

use e2e::{binary, crawl_and_publish, pins, requirements, run, uv_pins};

/// The host interpreter the lock is installed into: CPython 3.11 on glibc 2.36 (Debian 12).
const HOST_PYTHON: &str = "3.11";
const HOST_GLIBC: &str = "2.36";

fn resolve(work: &std::path::Path, sha: &str, reqs: &std::path::Path, args: &[&str]) -> String {
    let output = run(Command::new(binary("mach-nix"))
        .arg("gen")
        .arg("-r")
        .arg(reqs)
        .arg("--db")
        .arg(format!("sha256:{sha}"))
        .arg("--db-dir")
        .arg(work.join("snapshots"))
        .args(args));
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Resolve `reqs` for one target with `mach-nix` (`--format requirements` plus `args`), check
/// that the pins equal uv's for the same target and date and include `expected`; return the
/// lock and its pins.
fn assert_agrees_with_uv(
    work: &std::path::Path,
    sha: &str,
    reqs: &std::path::Path,
    (python, args, uv_platform): (&str, &[&str], &str),
    expected: &[&str],
) -> (String, BTreeMap<String, String>) {
    let mut all = vec!["-p", python, "--format", "requirements"];
    all.extend_from_slice(args);
    let lock = resolve(work, sha, reqs, &all);
    let ours = pins(&lock);
    assert_eq!(
        ours,
        uv_pins(reqs, python, uv_platform),
        "{} for {uv_platform} / {python}: mach-nix and uv disagree",
        reqs.display()
    );
    for name in expected {
        assert!(
            ours.contains_key(*name),
            "{name} missing from the lock:\n{lock}"
        );
    }
    (lock, ours)
}

#[test]
fn live_web_closure_installs_with_pip_and_matches_uv() {
    let work = tempfile::tempdir().expect("tempdir");
    let reqs = requirements("web.txt");
    let sha = crawl_and_publish(&reqs, work.path());
    let uv_platform = format!("x86_64-manylinux_{}", HOST_GLIBC.replace('.', "_"));
    let (lock, ours) = assert_agrees_with_uv(
        work.path(),
        &sha,
        &reqs,
        (HOST_PYTHON, &["--manylinux", HOST_GLIBC], &uv_platform),
        &["requests", "flask", "pysocks", "urllib3", "werkzeug"],
    );

    // The lock installs with pip's hash checking into a fresh venv, and pip check is clean.
    let lock_path = work.path().join("requirements.lock.txt");
    std::fs::write(&lock_path, &lock).expect("write lock");
    let venv = work.path().join("venv");
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    let pip = venv.join("bin/pip");
    run(Command::new(&pip)
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(["--require-hashes", "--no-deps", "-r"])
        .arg(&lock_path));
    run(Command::new(&pip).args(["check", "--disable-pip-version-check"]));
    run(Command::new(venv.join("bin/python")).args(["-c", "import requests, flask, socks"]));

    // pylock.toml from the same resolution lists the same packages, each with URL and sha256.
    let pylock = resolve(
        work.path(),
        &sha,
        &reqs,
        &[
            "-p",
            HOST_PYTHON,
            "--manylinux",
            HOST_GLIBC,
            "--format",
            "pylock",
        ],
    );
    let parsed: toml::Table = toml::from_str(&pylock).expect("pylock.toml parses");
    let packages = parsed["packages"].as_array().expect("[[packages]]");
    assert_eq!(packages.len(), ours.len());
    for package in packages {
        let text = package.to_string();
        assert!(text.contains("sha256"), "no hash in {text}");
        assert!(
            text.contains("https://files.pythonhosted.org/"),
            "no URL in {text}"
        );
    }
}

#[test]
fn live_cli_tools_match_uv_on_four_systems() {
    let work = tempfile::tempdir().expect("tempdir");
    let reqs = requirements("cli.txt");
    let sha = crawl_and_publish(&reqs, work.path());
    for (system, python, uv_platform) in [
        ("x86_64-linux", "3.12", "x86_64-manylinux_2_39"),
        ("aarch64-linux", "3.11", "aarch64-manylinux_2_39"),
        ("x86_64-darwin", "3.12", "x86_64-apple-darwin"),
        ("aarch64-darwin", "3.13", "aarch64-apple-darwin"),
    ] {
        assert_agrees_with_uv(
            work.path(),
            &sha,
            &reqs,
            (python, &["--system", system], uv_platform),
            &["click", "rich", "typer", "attrs", "markdown-it-py"],
        );
    }
}

/// Regression: pandas' METADATA has blank continuation lines; they once hid all its
/// requirements, so numpy and pytz went missing from the lock.
#[test]
fn live_scientific_stack_matches_uv() {
    let work = tempfile::tempdir().expect("tempdir");
    let reqs = requirements("data.txt");
    let sha = crawl_and_publish(&reqs, work.path());
    assert_agrees_with_uv(
        work.path(),
        &sha,
        &reqs,
        ("3.12", &[], "x86_64-manylinux_2_39"),
        &["numpy", "pandas", "pytz", "tzdata", "six"],
    );
}
