//! Issue 9: the whole pipeline under faults.
//!
//! - `publish-db` SIGKILLed at random moments leaves the published tree holding only complete
//!   snapshots (manifests whose sha256 matches their name, every blob they name in place and
//!   intact), a valid `index.json` and a `latest` naming an existing snapshot; a published hash
//!   with different bytes is never overwritten.
//! - A second crawl (or a publish) on a state a crawl is using fails at once with the lock
//!   message naming the other process.
//! - The fault run: the fake PyPI answers ~10 % of requests with 429, 5xx, a stall longer than
//!   the client's timeout, a truncated or a corrupted body, while the crawler is SIGKILLed at
//!   random moments and rerun; the snapshot it ends with equals the clean run's.
//!
//! The fault run's size is set by the environment, for a longer run by hand:
//! `FAULTS_ONE_IN` (one faulty answer in N requests, default 10), `FAULTS_KILLS` (default 6),
//! `FAULTS_SEED` (default 9), e.g.
//! `FAULTS_KILLS=60 FAULTS_SEED=1 cargo nextest run -p crawler --test faults --no-capture`.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use support::{FakePypi, Fault, publish};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn crawl_command(server: &FakePypi, state: &Path) -> Command {
    crawl_command_with_timeout(server, state, "1")
}

/// Crawl without interruption; panics if the crawl fails.
fn crawl_to_the_end(server: &FakePypi, state: &Path) {
    let status = crawl_command(server, state).status().expect("runs");
    assert!(status.success(), "the uninterrupted crawl failed: {status}");
}

fn crawl_command_with_timeout(server: &FakePypi, state: &Path, timeout: &str) -> Command {
    support::kill_test_crawl(server, state, &["--timeout", timeout, "--retries", "6"])
}

/// `publish-db`; the kill test alternates a one-project and a full state, so `latest` may
/// shrink on purpose.
fn publish_command(state: &Path, out: &Path) -> Command {
    let mut command = Command::new(support::bin());
    command
        .args(["publish-db", "--state", state.to_str().expect("utf-8")])
        .args(["--out", out.to_str().expect("utf-8"), "--allow-shrink"])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("readable")))
}

/// What a reader of `out` may rely on at any moment.
fn check_published(out: &Path, context: &str) {
    if !out.exists() {
        return;
    }
    let mut snapshots = Vec::new();
    let manifests = out.join("manifests");
    for entry in std::fs::read_dir(&manifests).into_iter().flatten() {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("named")
            .to_string_lossy()
            .into_owned();
        if name.starts_with(db_format::atomic::TEMP_PREFIX) {
            continue;
        }
        assert_eq!(
            sha256_hex(&path),
            name,
            "{context}: manifest {name} is not complete"
        );
        // A manifest is written after every blob it names: all are there, complete.
        support::open_published(out, &name)
            .verify()
            .unwrap_or_else(|err| panic!("{context}: snapshot {name} does not verify: {err}"));
        snapshots.push(name);
    }
    let index = out.join("index.json");
    if index.exists() {
        let manifest: crawler::publish::Manifest =
            serde_json::from_slice(&std::fs::read(&index).expect("readable"))
                .unwrap_or_else(|err| panic!("{context}: index.json is not valid: {err}"));
        for entry in &manifest.snapshots {
            assert!(
                snapshots.contains(&entry.sha256),
                "{context}: index.json lists {} which is not there",
                entry.sha256
            );
        }
    }
    let latest = out.join("latest");
    if latest.exists() {
        let text = std::fs::read_to_string(&latest).expect("readable");
        let hash = text.strip_suffix('\n').expect("latest ends with a newline");
        assert!(
            snapshots.iter().any(|known| known == hash),
            "{context}: latest names {hash}, which is not there"
        );
        assert!(index.exists(), "{context}: latest without index.json");
    }
}

#[test]
fn publish_db_killed_at_random_moments_leaves_only_complete_snapshots() {
    let server = FakePypi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // Two states (one project, all projects) give two snapshots, so the index grows.
    let small = dir.path().join("small");
    let big = dir.path().join("big");
    support::run(&[
        "crawl",
        "--state",
        small.to_str().expect("utf-8"),
        "--index-url",
        &server.url(),
        "--rate",
        "0",
        "--packages",
        "six",
    ]);
    crawl_to_the_end(&server, &big);
    let out = dir.path().join("out");
    let started = Instant::now();
    let reference = publish(&big, &dir.path().join("reference"));
    let window = (started.elapsed().as_millis() as u64).max(20);
    let seed = env_or("FAULTS_SEED", 9);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kills = 0;
    // Kills that left a temporary file behind: they hit a publish in the middle of writing.
    let mut mid_write = 0;
    let mut round = 0;
    while kills < 24 {
        round += 1;
        assert!(
            round <= 300,
            "only {kills} of {round} publishes were killed"
        );
        let state = if round % 2 == 0 { &big } else { &small };
        let mut child = publish_command(state, &out).spawn().expect("spawns");
        std::thread::sleep(Duration::from_millis(rng.random_range(0..window)));
        if child.try_wait().expect("polls").is_none() {
            child.kill().expect("SIGKILL");
            kills += 1;
        }
        child.wait().expect("reaped");
        check_published(&out, &format!("round {round} (seed {seed})"));
        mid_write += usize::from(!temp_files(&out).is_empty());
    }
    eprintln!("publish-db: {kills} kills, {mid_write} in the middle of writing");
    // Finished publishes after the kills: the same state twice gives the same pin, latest is
    // the last, and the full state reads as the reference publish of it (on top of earlier
    // snapshots a publish keeps their unchanged shards, so its pin may differ from a fresh
    // tree's; its content may not).
    let again = publish_with(&small, &out);
    assert_eq!(again, publish_with(&small, &out));
    let last = publish_with(&big, &out);
    let read = |out: &Path, hash: &str| -> Vec<db_format::Project> {
        support::open_published(out, hash)
            .projects()
            .collect::<Result<_, _>>()
            .expect("decodes")
    };
    assert_eq!(
        read(&out, &last),
        read(&dir.path().join("reference"), &reference)
    );
    check_published(&out, "after the kills");
    let manifest: crawler::publish::Manifest =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).expect("index"))
            .expect("json");
    assert!(
        manifest.snapshots.iter().any(|entry| entry.sha256 == again)
            && manifest.snapshots.iter().any(|entry| entry.sha256 == last),
        "{manifest:?}"
    );
    let mut pins: Vec<&str> = manifest
        .snapshots
        .iter()
        .map(|e| e.sha256.as_str())
        .collect();
    pins.sort_unstable();
    pins.dedup();
    assert_eq!(pins.len(), manifest.snapshots.len(), "each pin listed once");
    assert_eq!(
        std::fs::read_to_string(out.join("latest")).expect("latest"),
        format!("{last}\n")
    );
    let leftovers = temp_files(&out);
    assert!(leftovers.is_empty(), "stale temporary files: {leftovers:?}");
}

/// `publish-db --allow-shrink` (the kill test's states shrink on purpose); the pin.
fn publish_with(state: &Path, out: &Path) -> String {
    let output = support::run(&[
        "publish-db",
        "--state",
        state.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--allow-shrink",
    ]);
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The temporary files of publishes anywhere in the tree `out`.
fn temp_files(out: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![out.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten() {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().is_some_and(|name| {
                name.to_string_lossy()
                    .starts_with(db_format::atomic::TEMP_PREFIX)
            }) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn a_published_hash_with_different_bytes_is_never_overwritten() {
    let server = FakePypi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    crawl_to_the_end(&server, &state);
    let out = dir.path().join("out");
    let hash = publish(&state, &out);
    let path = out.join(format!("manifests/{hash}"));
    let mut bytes = std::fs::read(&path).expect("published");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).expect("tampered");
    let output = Command::new(support::bin())
        .args(["publish-db", "--state", state.to_str().expect("utf-8")])
        .args(["--out", out.to_str().expect("utf-8")])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "publish over a tampered file succeeded"
    );
    assert!(
        stderr.contains("refusing to overwrite") && stderr.contains(&hash),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&path).expect("still there"),
        bytes,
        "it was rewritten"
    );
}

#[test]
fn a_second_crawl_or_a_publish_on_a_state_in_use_fails_with_the_lock_message() {
    let server = FakePypi::start();
    // Keep the first crawl busy: its first page stalls.
    server.fault("/simple/", vec![Fault::Stall(Duration::from_secs(3))]);
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let mut first = crawl_command_with_timeout(&server, &state, "10")
        .spawn()
        .expect("spawns");
    let lock = state.join("lock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&lock).is_ok_and(|text| text.contains("pid")) {
        assert!(
            Instant::now() < deadline,
            "the first crawl never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = format!("pid {}", first.id());
    let unused = dir.path().join("unused");
    for args in [
        vec!["crawl", "--packages", "six"],
        vec!["publish-db", "--out", unused.to_str().expect("utf-8")],
    ] {
        let output = Command::new(support::bin())
            .args(&args[..1])
            .args(["--state", state.to_str().expect("utf-8")])
            .args(&args[1..])
            .args(if args[0] == "crawl" {
                vec!["--index-url".to_string(), server.url()]
            } else {
                Vec::new()
            })
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} ran beside a crawl");
        assert!(
            stderr.contains("is in use by") && stderr.contains(&pid) && stderr.contains("crawl"),
            "{args:?}: {stderr}"
        );
    }
    assert!(first.wait().expect("reaped").success());
    // Once the crawl is done (or killed) the state is free again.
    assert!(!publish(&state, &dir.path().join("out")).is_empty());
}

#[test]
fn faults_and_kills_end_in_the_clean_snapshot() {
    let server = FakePypi::start();
    // As public PyPI does: simple pages state the hash of each `.metadata` file.
    server.state_core_metadata(None);
    let dir = tempfile::tempdir().expect("tempdir");
    let clean_state = dir.path().join("clean");
    let started = Instant::now();
    crawl_to_the_end(&server, &clean_state);
    let window = (started.elapsed().as_millis() as u64).max(50);
    let clean = publish(&clean_state, &dir.path().join("clean-out"));
    server.clear_seen();

    let one_in = env_or("FAULTS_ONE_IN", 10);
    let kills_wanted = env_or("FAULTS_KILLS", 6);
    let seed = env_or("FAULTS_SEED", 9);
    server.chaos_with(
        seed,
        one_in,
        vec![
            Fault::TooMany { retry_after: 0 },
            Fault::Status(500),
            Fault::Status(502),
            Fault::Status(503),
            // Longer than the crawler's --timeout of 1 s.
            Fault::Stall(Duration::from_millis(1500)),
            Fault::Truncate,
            Fault::Corrupt,
        ],
    );
    // On top of chance: the first files served are corrupted and the first page stalls past
    // the timeout, so even the short form sees both.
    server.fault("/files/", vec![Fault::Corrupt; 3]);
    server.fault("/simple/", vec![Fault::Stall(Duration::from_millis(1500))]);
    let mut rng = StdRng::seed_from_u64(seed);
    let state = dir.path().join("faulty");
    let out = dir.path().join("out");
    let mut kills = 0;
    let mut runs = 0;
    // Kill runs at random moments (a run that ends first just ends: the next one starts over,
    // or resumes what faults left failed).
    while kills < kills_wanted {
        runs += 1;
        assert!(
            runs <= kills_wanted * 20,
            "only {kills} kills in {runs} runs"
        );
        let mut child = crawl_command(&server, &state).spawn().expect("spawns");
        // The faults slow a run down: aim kills over a longer window than the clean run's.
        std::thread::sleep(Duration::from_millis(rng.random_range(0..window * 2)));
        if child.try_wait().expect("polls").is_none() {
            child.kill().expect("SIGKILL");
            kills += 1;
        }
        child.wait().expect("reaped");
    }
    // Then run to the end, again while a run leaves projects failed (the next run retries them).
    for finish in 1.. {
        runs += 1;
        let status = crawl_command(&server, &state).status().expect("runs");
        let failed = crawler::state::State::open(&state)
            .expect("state")
            .projects_with_status("failed")
            .expect("failed");
        if status.success() && failed.is_empty() {
            break;
        }
        assert!(
            finish < 20,
            "still failing after {finish} runs: {status}, {failed:?}"
        );
    }
    let requests = server.seen().len();
    let injected = server.injected();
    let count = |wanted: fn(&str, &Fault) -> bool| {
        injected
            .iter()
            .filter(|(path, fault)| wanted(path, fault))
            .count()
    };
    let corrupted = count(|path, f| *f == Fault::Corrupt && path.starts_with("/files/"));
    eprintln!(
        "fault run (seed {seed}, one in {one_in}): {requests} requests, {} faults injected \
         ({} 429, {} 5xx, {} stalls past the timeout, {} truncated bodies, {corrupted} \
         corrupted files), {kills} kills, {runs} runs",
        injected.len(),
        count(|_, f| matches!(f, Fault::TooMany { .. })),
        count(|_, f| matches!(f, Fault::Status(_))),
        count(|_, f| matches!(f, Fault::Stall(_))),
        count(
            |path, f| *f == Fault::Truncate || *f == Fault::Corrupt && !path.starts_with("/files/")
        ),
    );
    assert!(corrupted > 0, "no corrupted file was served");
    assert!(
        count(|_, f| matches!(f, Fault::Stall(_))) > 0,
        "no timeout was provoked"
    );
    assert_eq!(
        publish(&state, &out),
        clean,
        "seed {seed}: the snapshot after faults and {kills} kills differs from the clean run's"
    );
}

/// A corrupted body the crawler can detect (a download whose sha256 is not the index's, a
/// `.metadata` file whose hash is not the stated one, a zip member whose CRC-32 does not match)
/// is fetched again or read another way, never recorded as a fact about the file. (Index pages
/// carry no checksum: keeping them intact is TLS's job, and the fake server never corrupts
/// them.)
#[test]
fn corrupted_bodies_of_every_kind_give_the_clean_snapshot() {
    let server = FakePypi::start();
    // As public PyPI does: simple pages state the hash of each `.metadata` file.
    server.state_core_metadata(None);
    let dir = tempfile::tempdir().expect("tempdir");
    let clean_state = dir.path().join("clean");
    crawl_to_the_end(&server, &clean_state);
    let clean = publish(&clean_state, &dir.path().join("clean-out"));
    let targets = [
        // an sdist download, a whole wheel, a PEP 658 file, a range-read wheel
        "iniconfig-2.0.0.tar.gz",
        "six-1.16.0-py2.py3-none-any.whl",
        "requests-2.31.0-py3-none-any.whl.metadata",
        "pdfminer.six-20221105-py3-none-any.whl",
    ];
    for target in targets {
        server.fault(target, vec![Fault::Corrupt; 3]);
    }
    let state = dir.path().join("corrupted");
    for run in 1.. {
        let status = crawl_command(&server, &state).status().expect("runs");
        let failed = crawler::state::State::open(&state)
            .expect("state")
            .projects_with_status("failed")
            .expect("failed");
        if status.success() && failed.is_empty() {
            break;
        }
        assert!(run < 10, "still failing after {run} runs: {failed:?}");
    }
    let corrupted: Vec<String> = server
        .injected()
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    for target in targets {
        assert!(
            corrupted.iter().any(|path| path.contains(target)),
            "{target} was never corrupted: {corrupted:?}"
        );
    }
    assert_eq!(publish(&state, &dir.path().join("out")), clean);
}

/// A small sdist whose PKG-INFO states its dependencies (read statically).
fn small_sdist(name: &str, version: &str) -> Vec<u8> {
    let pkg_info = format!(
        "Metadata-Version: 2.2\nName: {name}\nVersion: {version}\nRequires-Dist: six>={version}\n"
    );
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(pkg_info.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(
            &mut header,
            format!("{name}-{version}/PKG-INFO"),
            pkg_info.as_bytes(),
        )
        .expect("tar");
    let tar = builder.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gzip");
    gz.finish().expect("gzip")
}

// Commits were per project, so a project with thousands of files (botocore) restarted from
// zero after every kill and repeated short runs never finished it.
#[test]
fn repeated_short_runs_move_a_project_of_many_files_forward() {
    const FILES: usize = 240;
    const KILL_AFTER: usize = 40;
    let server = FakePypi::start();
    server.add_project(
        "many",
        (0..FILES)
            .map(|n| {
                let version = format!("1.{n}");
                (
                    format!("many-{version}.tar.gz"),
                    small_sdist("many", &version),
                )
            })
            .collect(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let command = |state: &Path| {
        let mut command = Command::new(support::bin());
        command
            .args(["crawl", "--state", state.to_str().expect("utf-8")])
            .args(["--index-url", &server.url(), "--backoff-ms", "20"])
            .args(["--packages", "many", "--rate", "150"])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    };
    let downloads = || {
        server
            .seen()
            .iter()
            .filter(|seen| seen.path.starts_with("/files/"))
            .count()
    };
    let reference_state = dir.path().join("reference");
    assert!(command(&reference_state).status().expect("runs").success());
    let reference = publish(&reference_state, &dir.path().join("reference-out"));
    assert_eq!(downloads(), FILES);

    let state = dir.path().join("killed");
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs <= 20, "{runs} runs did not finish one project");
        server.clear_seen();
        let mut child = command(&state).spawn().expect("spawns");
        let finished = loop {
            if let Some(status) = child.try_wait().expect("polls") {
                assert!(status.success(), "run {runs}: {status}");
                break true;
            }
            if downloads() >= KILL_AFTER {
                child.kill().expect("SIGKILL");
                child.wait().expect("reaped");
                break false;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if finished {
            break;
        }
    }
    // Each killed run fetched at least KILL_AFTER files and kept all but its last batch.
    assert!(
        runs <= FILES / (KILL_AFTER - 16 - 16) + 1,
        "{runs} runs for {FILES} files"
    );
    assert_eq!(publish(&state, &dir.path().join("out")), reference);
}
