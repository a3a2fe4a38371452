//! Integrity end to end: credentials never reach a file or a log line, bodies stop at the
//! size the index declares, plain HTTP is refused.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{FakePypi, bin, fast_flags};

const SECRET: &str = "s3cr3t-t0ken";
/// `Basic base64("alice:s3cr3t-t0ken")`.
const AUTHORIZATION: &str = "Basic YWxpY2U6czNjcjN0LXQwa2Vu";

/// Run the crawler with `args`; returns (success, stderr).
fn crawler(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let output = Command::new(bin())
        .args(args)
        .env("RUST_LOG", "debug")
        .env("NETRC", "/nonexistent")
        .envs(env.iter().copied())
        .output()
        .expect("crawler runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), stderr)
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

// `--index-url https://user:secret@host` put the secret into stderr, the lock file, the
// state, the --report JSON and (for relative file URLs) the published snapshot.
#[test]
fn credentials_in_the_index_url_reach_no_file_and_no_log() {
    let server = FakePypi::start();
    server.require_authorization(AUTHORIZATION);
    // One project fails (its page answers 500 every time), so errors are logged and stored.
    server.fault("/simple/iniconfig/", vec![support::Fault::Status(500); 8]);
    server.fault("/pypi/iniconfig/", vec![support::Fault::Status(500); 8]);
    let dir = tempfile::tempdir().expect("tempdir");
    let index = server
        .url()
        .replace("http://", &format!("http://alice:{SECRET}@"));
    let mut stderr = String::new();
    for api in ["simple", "json"] {
        let state = dir.path().join(format!("state-{api}"));
        let report = dir.path().join(format!("report-{api}.json"));
        let mut args: Vec<String> = fast_flags(&server)[2..].to_vec();
        args.extend(
            [
                "--index-url",
                &index,
                "--api",
                api,
                "--packages",
                "six,iniconfig",
                "--retries",
                "1",
                "--report",
                report.to_str().expect("utf-8"),
            ]
            .map(String::from),
        );
        let mut command = vec![
            "crawl".to_string(),
            "--state".into(),
            state.display().to_string(),
        ];
        command.extend(args);
        let command: Vec<&str> = command.iter().map(String::as_str).collect();
        let (ok, err) = crawler(&command, &[]);
        assert!(ok, "{err}");
        assert!(err.contains("iniconfig"), "the failure is logged: {err}");
        stderr.push_str(&err);
        let out = dir.path().join(format!("out-{api}"));
        for command in [
            vec![
                "publish-db",
                "--state",
                state.to_str().expect("utf-8"),
                "--out",
                out.to_str().expect("utf-8"),
            ],
            vec!["stats", "--state", state.to_str().expect("utf-8")],
        ] {
            let (ok, err) = crawler(&command, &[]);
            assert!(ok, "{err}");
            stderr.push_str(&err);
        }
    }
    // The credentials were used: every page and file came through the 401 wall.
    assert!(
        server
            .seen()
            .iter()
            .any(|seen| seen.path.starts_with("/files/") && seen.status == 200)
    );
    assert!(
        server.seen().iter().all(|seen| seen.status != 401),
        "{:?}",
        server.seen()
    );
    assert!(!stderr.contains(SECRET), "{stderr}");
    let written = files_under(dir.path());
    assert!(written.len() > 8, "{written:?}");
    for path in written {
        let bytes = std::fs::read(&path).expect("readable");
        assert!(
            !bytes
                .windows(SECRET.len())
                .any(|window| window == SECRET.as_bytes()),
            "{} holds the secret",
            path.display()
        );
    }
}

#[test]
fn credentials_from_the_environment_are_sent_to_the_index() {
    let server = FakePypi::start();
    server.require_authorization(AUTHORIZATION);
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let mut command = vec![
        "crawl".to_string(),
        "--state".into(),
        state.display().to_string(),
    ];
    command.extend(fast_flags(&server));
    command.extend(["--packages".into(), "six".into()]);
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let (ok, err) = crawler(&command, &[]);
    assert!(ok, "{err}");
    assert!(
        err.contains("failed: six"),
        "without credentials the index refuses: {err}"
    );
    let state = dir.path().join("state2");
    let mut command = vec![
        "crawl".to_string(),
        "--state".into(),
        state.display().to_string(),
    ];
    command.extend(fast_flags(&server));
    command.extend(["--packages".into(), "six".into()]);
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let (ok, err) = crawler(
        &command,
        &[
            ("MACH_NIX_INDEX_USERNAME", "alice"),
            ("MACH_NIX_INDEX_PASSWORD", SECRET),
        ],
    );
    assert!(ok && !err.contains("failed: six"), "{err}");
}

// A file declared at a few KB was read up to the 256 MiB limit; an endless body at the
// default concurrency took ~1.5 GB of memory.
#[test]
fn a_file_body_stops_at_its_declared_size() {
    let server = FakePypi::start();
    let mut files = Vec::new();
    for n in 0..16 {
        let filename = format!("endless-{n}.0.tar.gz");
        server.endless(&filename);
        files.push((filename, vec![7u8; 4000]));
    }
    server.add_project("endless", files);
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let mut command = vec![
        "crawl".to_string(),
        "--state".into(),
        state.display().to_string(),
    ];
    command.extend(fast_flags(&server));
    command.extend([
        "--packages".into(),
        "endless".into(),
        "--retries".into(),
        "0".into(),
    ]);
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let (ok, err) = crawler(&command, &[]);
    assert!(ok, "{err}");
    // 16 files, each cut at 4000 bytes + 64 KiB of slack (socket buffers add a little).
    let sent = server.endless_sent();
    assert!(sent < 16 * (8 << 20), "{sent} bytes sent: {err}");
    let files = crawler::state::State::open_existing(&state)
        .expect("opens")
        .files("endless")
        .expect("files");
    assert_eq!(files.len(), 16);
    for file in files {
        let record = file.dependencies.expect("examined").record;
        let detail = record.detail.unwrap_or_default();
        assert!(detail.contains("over the limit of 69536"), "{detail}");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn plain_http_is_refused_except_on_loopback_or_when_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state").display().to_string();
    let base = [
        "crawl",
        "--state",
        &state,
        "--packages",
        "six",
        "--retries",
        "0",
        "--timeout",
        "2",
    ];
    let mut args = base.to_vec();
    args.extend(["--index-url", "http://pypi.invalid/"]);
    let output = Command::new(bin())
        .args(&args)
        .env("NETRC", "/nonexistent")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "a usage error: {err}");
    assert!(
        err.contains("http://pypi.invalid/: plain HTTP refused"),
        "{err}"
    );
    args.push("--allow-insecure-http");
    // Allowed: it gets as far as looking the host up.
    let (_, err) = crawler(&args, &[]);
    assert!(!err.contains("plain HTTP refused"), "{err}");
}

fn crawl_six(server: &FakePypi, state: &Path, extra: &[&str]) -> (bool, String) {
    let state = state.display().to_string();
    let mut args = vec!["crawl", "--state", &state, "--packages", "six"];
    let flags = fast_flags(server);
    args.extend(flags.iter().map(String::as_str));
    args.extend(extra);
    crawler(&args, &[])
}

// Redirects were followed to any host, silently.
#[test]
fn redirects_stay_on_the_index_and_its_file_hosts() {
    let server = FakePypi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // Same host: followed.
    server.fault(
        "/simple/six/",
        vec![support::Fault::Redirect(
            "http://127.0.0.1:{port}/simple/six/?again".into(),
        )],
    );
    let (ok, err) = crawl_six(&server, &dir.path().join("same"), &["--retries", "0"]);
    assert!(ok && !err.contains("failed: six"), "{err}");
    // Another host (the same server under another name): refused, named in the error.
    server.fault(
        "/simple/six/",
        vec![support::Fault::Redirect(
            "http://localhost:{port}/simple/six/".into(),
        )],
    );
    let (ok, err) = crawl_six(&server, &dir.path().join("other"), &["--retries", "0"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("redirect to another host refused: http://localhost:"),
        "{err}"
    );
    assert!(err.contains("failed: six"), "{err}");
}

// A Retry-After stalled the crawl without a word.
#[test]
fn waits_of_seconds_are_logged() {
    let server = FakePypi::start();
    server.fault(
        "/simple/six/",
        vec![support::Fault::TooMany { retry_after: 3 }],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, err) = crawl_six(&server, &dir.path().join("state"), &[]);
    assert!(ok, "{err}");
    assert!(
        err.contains("/simple/six/: HTTP 429; waiting 3.0s before attempt 2 of 6"),
        "{err}"
    );
}

// `publish-db --state /nonexistent` published a 0-project snapshot and moved `latest` to it.
#[test]
fn publish_and_stats_refuse_a_missing_or_empty_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nonexistent");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    std::fs::write(empty.join("state.sqlite"), b"").expect("writes");
    let out = dir.path().join("out");
    for state in [&missing, &empty] {
        let state = state.to_str().expect("utf-8");
        let (ok, err) = crawler(
            &[
                "publish-db",
                "--state",
                state,
                "--out",
                out.to_str().expect("utf-8"),
            ],
            &[],
        );
        assert!(!ok && err.contains("crawl state"), "{err}");
        let (ok, err) = crawler(&["stats", "--state", state], &[]);
        assert!(!ok && err.contains("crawl state"), "{err}");
    }
    assert!(!missing.exists(), "nothing was created");
    assert!(!out.join("latest").exists(), "nothing was published");
}

// At the default concurrency, endless bodies of files declared large took ~1.5 GB: whole-file
// downloads now share one byte budget, so only as many run at once as it holds.
#[test]
fn whole_file_downloads_share_one_byte_budget() {
    use crawler::pypi::{Client, ClientOptions, RequestKind};
    let server = FakePypi::start();
    let files: Vec<(String, Vec<u8>)> = (0..8)
        .map(|n| (format!("big-{n}.0.tar.gz"), vec![1u8; 16]))
        .collect();
    for (filename, _) in &files {
        server.endless(filename);
    }
    server.add_project("big", files.clone());
    let three_started_within = |budget: u64| {
        let client = Client::new(ClientOptions {
            download_budget: budget,
            retries: 0,
            requests_per_second: None,
            ..ClientOptions::default()
        })
        .expect("client");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let mut downloads = tokio::task::JoinSet::new();
            for (filename, _) in &files {
                let client = client.clone();
                let url = url::Url::parse(&format!("{}files/synthetic/{filename}", server.url()))
                    .expect("url");
                downloads.spawn(async move {
                    client
                        .get(RequestKind::SdistDownload, &url, &[], 512 << 10)
                        .await
                        .expect_err("endless")
                        .to_string()
                });
            }
            while let Some(err) = downloads.join_next().await {
                let err = err.expect("joins");
                assert!(err.contains("over the limit of 524288 bytes"), "{err}");
            }
        });
        // The shortest time in which three downloads started.
        let starts = server.take_endless_starts();
        starts
            .windows(3)
            .map(|three| three[2] - three[0])
            .min()
            .expect("eight downloads")
    };
    // 1 MiB holds two reservations of 512 KiB: a third download starts only when one of two
    // has ended (each takes at least 16 ms: 8 chunks of 64 KiB, 2 ms apart); a budget that
    // holds them all lets them start together.
    let budgeted = three_started_within(1 << 20);
    assert!(
        budgeted >= Duration::from_millis(14),
        "three started within {budgeted:?}"
    );
    let unbounded = three_started_within(64 << 20);
    assert!(unbounded < Duration::from_millis(14), "{unbounded:?}");
}
