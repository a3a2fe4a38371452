//! End-to-end crawls of the fake PyPI (recorded real responses) with the real binary.

mod support;

use std::path::Path;

use crawler::state::State;
use db_format::{FileKind, MetadataSource, Project, Snapshot};
use support::{FakePypi, Fault, crawl, fast_flags, publish, recorded_projects, run};

fn all_packages() -> String {
    recorded_projects().join(",")
}

fn snapshot(out: &Path, hash: &str) -> Snapshot {
    support::open_published(out, hash)
}

fn project(snapshot: &Snapshot, name: &str) -> Project {
    snapshot
        .project(name)
        .expect("decodes")
        .unwrap_or_else(|| panic!("{name} is in the snapshot"))
}

/// The record of one file of a project in a snapshot.
fn record_of(project: &Project, filename: &str) -> db_format::DependencyRecord {
    for release in &project.releases {
        for file in &release.files {
            if file.filename == filename {
                let index = file.dependencies.expect("examined") as usize;
                return release.dependencies[index].clone();
            }
        }
    }
    panic!("{filename} not in {}", project.name)
}

/// One crawl of every recorded project, shared by the assertions below.
struct Crawled {
    server: FakePypi,
    _dir: tempfile::TempDir,
    state: std::path::PathBuf,
    out: std::path::PathBuf,
    hash: String,
}

fn crawl_everything() -> Crawled {
    let server = FakePypi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let out = dir.path().join("out");
    crawl(&server, &state, &["--packages", &all_packages()]);
    let hash = publish(&state, &out);
    Crawled {
        server,
        _dir: dir,
        state,
        out,
        hash,
    }
}

#[test]
fn every_extraction_path_reads_the_recorded_projects() {
    let crawled = crawl_everything();
    let snapshot = snapshot(&crawled.out, &crawled.hash);
    snapshot.verify().expect("verifies");
    let names: Vec<String> = snapshot
        .project_names()
        .map(|name| name.expect("decodes").to_string())
        .collect();
    // Odd names are stored normalized (PEP 503).
    assert_eq!(names, recorded_projects());
    assert!(
        names.contains(&"zope-interface".to_string())
            && names.contains(&"pdfminer-six".to_string())
    );

    let iniconfig = project(&snapshot, "iniconfig");
    // PKG-INFO 2.4 (hatchling/setuptools 77+), static pyproject, egg-info without requires.txt.
    assert_eq!(
        record_of(&iniconfig, "iniconfig-2.3.0.tar.gz").source,
        MetadataSource::SdistPkgInfo
    );
    let pyproject = record_of(&iniconfig, "iniconfig-2.0.0.tar.gz");
    assert_eq!(pyproject.source, MetadataSource::Pyproject);
    assert_eq!(pyproject.build_requires, ["hatch-vcs", "hatchling"]);
    assert_eq!(pyproject.build_backend.as_deref(), Some("hatchling.build"));
    assert_eq!(
        record_of(&iniconfig, "iniconfig-1.1.1.tar.gz").source,
        MetadataSource::EggInfo
    );
    // A pre-release version is kept, normalized.
    assert!(
        iniconfig
            .releases
            .iter()
            .any(|release| release.version == "0.2.dev0")
    );

    let requests = project(&snapshot, "requests");
    let egg = record_of(&requests, "requests-2.31.0.tar.gz");
    assert_eq!(egg.source, MetadataSource::EggInfo);
    assert!(
        egg.requires_dist
            .contains(&"PySocks!=1.5.7,>=1.5.6; extra == \"socks\"".to_string())
    );
    let wheel = record_of(&requests, "requests-2.31.0-py3-none-any.whl");
    assert_eq!(wheel.source, MetadataSource::WheelMetadata);
    assert_eq!(wheel.requires_dist.len(), 6);
    // 2.32.0 was yanked on PyPI.
    let yanked = requests
        .releases
        .iter()
        .find(|r| r.version == "2.32.0")
        .expect("2.32.0");
    assert!(yanked.yanked.is_some() && yanked.files.iter().all(|f| f.yanked.is_some()));
    assert!(
        requests
            .releases
            .iter()
            .find(|r| r.version == "2.32.3")
            .expect("2.32.3")
            .yanked
            .is_none()
    );

    // A setup.py-only sdist from 2010: unknown, with the reason.
    let six = project(&snapshot, "six");
    let unknown = record_of(&six, "six-1.0.0.tar.gz");
    assert_eq!(unknown.source, MetadataSource::Unknown);
    assert!(unknown.detail.expect("reason").contains("setup.py"));

    // Pre-releases of exceptiongroup, flit sdists with PKG-INFO 2.1 listing Requires-Dist.
    let exceptiongroup = project(&snapshot, "exceptiongroup");
    assert!(
        exceptiongroup
            .releases
            .iter()
            .any(|r| r.version == "1.0.0rc1")
    );
    assert_eq!(
        record_of(&exceptiongroup, "exceptiongroup-1.0.0rc1.tar.gz").source,
        MetadataSource::SdistPkgInfo
    );

    // Wheels read through range requests (no PEP 658 file recorded for them).
    let zope = project(&snapshot, "zope-interface");
    let zope_wheel = record_of(&zope, "zope.interface-6.0-cp311-cp311-win_amd64.whl");
    assert_eq!(zope_wheel.provides_extra, ["docs", "test", "testing"]);
    let pdfminer = project(&snapshot, "pdfminer-six");
    assert!(
        record_of(&pdfminer, "pdfminer.six-20221105-py3-none-any.whl")
            .requires_dist
            .iter()
            .any(|r| r.starts_with("charset-normalizer"))
    );
    // A wheels-only project.
    let estimator = project(&snapshot, "tensorflow-estimator");
    assert!(
        estimator
            .releases
            .iter()
            .all(|r| r.files.iter().all(|f| f.kind == FileKind::Wheel))
    );

    // URLs are absolute and point at the index that served them.
    for name in recorded_projects() {
        for release in project(&snapshot, &name).releases {
            for file in release.files {
                assert!(
                    file.url
                        .starts_with(&format!("{}files/", crawled.server.url())),
                    "{}",
                    file.url
                );
                assert!(file.sha256.is_some() && file.upload_time.is_some());
            }
        }
    }

    // How each wheel was read: PEP 658 where the file exists, ranges for large wheels without
    // one, the whole file for small ones. Ranges never fetched a whole large wheel.
    let state = State::open(&crawled.state).expect("state");
    let methods = state.method_counts().expect("counts");
    let method = |wanted: &str| -> u64 {
        methods
            .iter()
            .filter(|(kind, method, _, _)| *kind == FileKind::Wheel && method == wanted)
            .map(|(_, _, _, count)| count)
            .sum()
    };
    assert_eq!(method("range"), 2, "{methods:?}");
    assert!(method("pep658") >= 15, "{methods:?}");
    assert_eq!(method("wheel-download"), 1, "{methods:?}");
    let seen = crawled.server.seen();
    assert!(
        seen.iter()
            .filter(|s| s.path.ends_with("pdfminer.six-20221105-py3-none-any.whl"))
            .all(|s| s.range.is_some()),
        "the 5.6 MB wheel is only read by ranges"
    );
}

#[test]
fn publishing_is_reproducible_and_recrawls_use_etags() {
    let crawled = crawl_everything();
    let published = crawled.out.join(format!("manifests/{}", crawled.hash));
    let before = std::fs::metadata(&published)
        .expect("published")
        .modified()
        .expect("mtime");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = publish(&crawled.state, &crawled.out);
    assert_eq!(
        again, crawled.hash,
        "the same state publishes the same bytes"
    );
    let after = std::fs::metadata(&published)
        .expect("published")
        .modified()
        .expect("mtime");
    assert_eq!(before, after, "a published snapshot is never rewritten");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(crawled.out.join("index.json")).expect("index.json"))
            .expect("json");
    let snapshots = manifest["snapshots"].as_array().expect("list");
    assert_eq!(
        snapshots.len(),
        1,
        "republishing does not duplicate the entry"
    );
    assert_eq!(snapshots[0]["sha256"], crawled.hash.as_str());
    assert_eq!(snapshots[0]["projects"], recorded_projects().len());
    assert_eq!(
        std::fs::read_to_string(crawled.out.join("latest")).expect("latest"),
        format!("{}\n", crawled.hash)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for name in [
            format!("manifests/{}", crawled.hash),
            "index.json".into(),
            "latest".into(),
        ] {
            let mode = std::fs::metadata(crawled.out.join(&name))
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o644, "{name} is readable by all");
        }
    }
    // The manifest's name is its content's sha256: the pin.
    let bytes = std::fs::read(&published).expect("file");
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), crawled.hash);

    // A second crawl sends If-None-Match, gets 304s and fetches no file at all.
    crawled.server.clear_seen();
    crawl(
        &crawled.server,
        &crawled.state,
        &["--packages", &all_packages()],
    );
    let seen = crawled.server.seen();
    assert!(
        !seen.is_empty() && seen.iter().all(|s| s.status == 304),
        "{seen:?}"
    );
    assert_eq!(publish(&crawled.state, &crawled.out), crawled.hash);
}

#[test]
fn the_json_api_with_relative_urls_gives_the_same_releases() {
    let crawled = crawl_everything();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    crawl(
        &crawled.server,
        &state,
        &["--packages", &all_packages(), "--api", "json"],
    );
    let hash = publish(&state, &dir.path().join("out"));
    let from_json = snapshot(&dir.path().join("out"), &hash);
    let from_simple = snapshot(&crawled.out, &crawled.hash);
    for name in recorded_projects() {
        let (mut a, mut b) = (project(&from_json, &name), project(&from_simple, &name));
        for project in [&mut a, &mut b] {
            for release in &mut project.releases {
                for file in &mut release.files {
                    // JSON API URLs were relative (`../../packages/...`), resolved to absolute.
                    assert!(file.url.starts_with(&crawled.server.url()), "{}", file.url);
                    file.url.clear();
                }
            }
        }
        assert_eq!(a, b, "{name}");
    }
}

#[test]
fn faults_are_retried_and_change_nothing() {
    let clean = crawl_everything();
    let server = FakePypi::start();
    server.fault(
        "/simple/six/",
        vec![Fault::TooMany { retry_after: 1 }, Fault::Status(500)],
    );
    server.fault(
        "/simple/requests/",
        vec![Fault::Truncate, Fault::Status(503)],
    );
    server.fault(
        "requests-2.31.0.tar.gz",
        vec![Fault::Truncate, Fault::Status(502)],
    );
    server.fault(
        "zope.interface-6.0-cp311",
        vec![Fault::Stall(std::time::Duration::from_secs(3))],
    );
    server.fault(
        "iniconfig-2.0.0-py3-none-any.whl.metadata",
        vec![Fault::Status(500), Fault::Truncate],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    crawl(
        &server,
        &state,
        &["--packages", &all_packages(), "--timeout", "1"],
    );
    let seen = server.seen();
    for status in [429, 500, 503, 502] {
        assert!(
            seen.iter().any(|s| s.status == status),
            "fault {status} was injected"
        );
    }
    // Retry-After: 1 was honoured: the next try of that page came at least a second later.
    let six: Vec<&support::Seen> = seen.iter().filter(|s| s.path == "/simple/six/").collect();
    assert_eq!(six[0].status, 429);
    assert!(six[1].at.duration_since(six[0].at) >= std::time::Duration::from_millis(950));
    // Every request says who is asking.
    assert!(
        seen.iter().all(|s| s
            .user_agent
            .as_deref()
            .is_some_and(|ua| ua.starts_with("mach-nix-crawler/"))),
        "a descriptive User-Agent"
    );
    // URLs differ between servers (the port); compare everything else.
    let hash = publish(&state, &dir.path().join("out"));
    let (a, b) = (
        snapshot(&dir.path().join("out"), &hash),
        snapshot(&clean.out, &clean.hash),
    );
    for name in recorded_projects() {
        let (mut x, mut y) = (project(&a, &name), project(&b, &name));
        for project in [&mut x, &mut y] {
            for release in &mut project.releases {
                for file in &mut release.files {
                    file.url = file.url.rsplit('/').next().unwrap_or_default().to_string();
                }
            }
        }
        assert_eq!(x, y, "{name}");
    }
}

#[test]
fn random_faults_everywhere_still_give_the_same_snapshot() {
    let server = FakePypi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let clean_state = dir.path().join("clean");
    crawl(&server, &clean_state, &["--packages", &all_packages()]);
    let clean = publish(&clean_state, &dir.path().join("clean-out"));
    // One request in four fails (500, 503, 429 or a truncated body); retries absorb it all.
    server.chaos(7, 4);
    let state = dir.path().join("chaos");
    crawl(
        &server,
        &state,
        &["--packages", &all_packages(), "--retries", "8"],
    );
    assert!(server.seen().iter().any(|s| s.status >= 500));
    assert_eq!(publish(&state, &dir.path().join("chaos-out")), clean);
}

#[test]
fn a_project_that_keeps_failing_is_recorded_and_retried_next_run() {
    let server = FakePypi::start();
    server.fault("/simple/six/", vec![Fault::Status(500); 3]);
    let dir = tempfile::tempdir().expect("tempdir");
    let state_dir = dir.path().join("state");
    crawl(
        &server,
        &state_dir,
        &["--packages", "six,iniconfig", "--retries", "2"],
    );
    {
        let state = State::open(&state_dir).expect("state");
        let row = state.project("six").expect("query").expect("recorded");
        assert_eq!(row.status, "failed");
        assert!(row.error.expect("error").contains("500"));
        assert_eq!(
            state
                .project("iniconfig")
                .expect("query")
                .expect("row")
                .status,
            "ok"
        );
    }
    crawl(&server, &state_dir, &["--packages", "six,iniconfig"]);
    let state = State::open(&state_dir).expect("state");
    assert_eq!(
        state.project("six").expect("query").expect("row").status,
        "ok"
    );
    assert_eq!(state.files("six").expect("files").len(), 5);
}

#[test]
fn as_of_keeps_only_files_uploaded_before() {
    let server = FakePypi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    crawl(
        &server,
        &state,
        &["--packages", "iniconfig,requests", "--as-of", "2023-06-01"],
    );
    let out = dir.path().join("out");
    let hash = publish(&state, &out);
    let snapshot = snapshot(&out, &hash);
    let cutoff = 1_685_577_600; // 2023-06-01T00:00:00Z
    assert_eq!(snapshot.meta().as_of, Some(cutoff));
    assert_eq!(snapshot.meta().created, cutoff);
    let versions: Vec<String> = project(&snapshot, "iniconfig")
        .releases
        .into_iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(
        versions,
        [
            "0.1", "0.2.dev0", "1.0.0", "1.0.1", "1.1.0", "1.1.1", "2.0.0"
        ]
    );
    let requests: Vec<String> = project(&snapshot, "requests")
        .releases
        .into_iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(requests, ["2.31.0"]);
    // A state keeps one cutoff: mixing two would mix two pictures of PyPI.
    let output = std::process::Command::new(support::bin())
        .args([
            "crawl",
            "--state",
            state.to_str().expect("utf-8"),
            "--index-url",
            &server.url(),
            "--packages",
            "six",
        ])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--as-of"));
}

#[test]
fn with_deps_follows_every_marker_and_only_the_requested_extras() {
    let server = FakePypi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let requirements = dir.path().join("requirements.txt");
    std::fs::write(
        &requirements,
        "# the app\nexceptiongroup>=1.0.0rc1\nzope.interface[test]==6.0 ; python_version >= '3.8'\n",
    )
    .expect("writes");
    let state_dir = dir.path().join("state");
    crawl(
        &server,
        &state_dir,
        &[
            "--requirements",
            requirements.to_str().expect("utf-8"),
            "--with-deps",
        ],
    );
    let state = State::open(&state_dir).expect("state");
    assert_eq!(
        state.project_names().expect("names"),
        ["exceptiongroup", "zope-interface"]
    );
    // Followed: plain requirements (setuptools) and those of the requested extra `test` of
    // zope.interface; the fake index does not have them, so they are "missing". Not followed:
    // extras nobody asked for (`docs` → sphinx; exceptiongroup's `test` → pytest).
    let missing: Vec<String> = state
        .projects_with_status("missing")
        .expect("query")
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    for name in ["coverage", "setuptools", "zope-event", "zope-testing"] {
        assert!(
            missing.contains(&name.to_string()),
            "{name} not followed: {missing:?}"
        );
    }
    for name in ["pytest", "sphinx", "repoze-sphinx-autointerface"] {
        assert!(
            !missing.contains(&name.to_string()),
            "{name} followed though no one asked for its extra: {missing:?}"
        );
    }
}

#[test]
fn since_uses_the_xmlrpc_changelog_or_the_json_root_index() {
    let server = FakePypi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // The recorded serials: pick one in the middle, so some projects changed after it.
    let serials: Vec<u64> = recorded_projects()
        .iter()
        .map(|name| {
            let page: serde_json::Value = serde_json::from_slice(
                &std::fs::read(
                    support::data_dir()
                        .join("simple")
                        .join(format!("{name}.json")),
                )
                .expect("page"),
            )
            .expect("json");
            page["meta"]["_last-serial"]
                .as_str()
                .expect("string serial")
                .parse()
                .expect("number")
        })
        .collect();
    let mut sorted = serials.clone();
    sorted.sort();
    let middle = sorted[sorted.len() / 2];
    let changed: Vec<String> = recorded_projects()
        .into_iter()
        .zip(&serials)
        .filter(|(_, serial)| **serial > middle)
        .map(|(name, _)| name)
        .collect();
    assert!(!changed.is_empty() && changed.len() < serials.len());

    for (feed, xmlrpc) in [("xml-rpc", true), ("root-index", true), ("auto", false)] {
        server.set_xmlrpc(xmlrpc);
        server.clear_seen();
        let state_dir = dir.path().join(format!("state-{feed}-{xmlrpc}"));
        crawl(
            &server,
            &state_dir,
            &["--since", &middle.to_string(), "--feed", feed],
        );
        let state = State::open(&state_dir).expect("state");
        assert_eq!(
            state.project_names().expect("names"),
            changed,
            "feed {feed}"
        );
        assert_eq!(state.serial().expect("serial"), sorted[sorted.len() - 1]);
        let seen = server.seen();
        let used_xmlrpc = seen.iter().any(|s| s.method == "POST" && s.status == 200);
        let used_root = seen.iter().any(|s| s.path == "/simple/");
        assert_eq!(
            (used_xmlrpc, used_root),
            (feed == "xml-rpc", feed != "xml-rpc"),
            "feed {feed}"
        );
    }
    // `--since DATE` on a fresh state asks XML-RPC `changelog(time)`; on a state with a
    // watermark it asks for the events after the watermark instead (no gap, no clock).
    server.set_xmlrpc(true);
    let fresh = dir.path().join("state-date");
    crawl(
        &server,
        &fresh,
        &["--since", "2020-01-01", "--feed", "xml-rpc"],
    );
    let state = State::open(&fresh).expect("state");
    assert_eq!(state.project_names().expect("names"), recorded_projects());
    drop(state);
    server.clear_seen();
    crawl(
        &server,
        &fresh,
        &["--since", "2020-01-01", "--feed", "xml-rpc"],
    );
    assert!(
        server.seen().iter().all(|s| s.method == "POST"),
        "nothing changed after the watermark: {:?}",
        server.seen()
    );
    // A second --since with the stored serials finds nothing new to fetch.
    server.set_xmlrpc(true);
    let state_dir = dir.path().join("state-root-index-true");
    server.clear_seen();
    crawl(
        &server,
        &state_dir,
        &["--since", &middle.to_string(), "--feed", "root-index"],
    );
    assert!(
        server.seen().iter().all(|s| s.path == "/simple/"),
        "only the index was read"
    );
}

#[test]
fn shards_partition_the_index_and_merge_into_the_whole() {
    let server = FakePypi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let whole = dir.path().join("whole");
    crawl(&server, &whole, &["--all"]);
    let whole_hash = publish(&whole, &dir.path().join("out-whole"));
    let mut shard_states = Vec::new();
    let mut total = 0;
    for index in 0..3 {
        let state = dir.path().join(format!("shard{index}"));
        crawl(
            &server,
            &state,
            &["--all", "--shard", &format!("{index}/3")],
        );
        total += State::open(&state)
            .expect("state")
            .project_names()
            .expect("names")
            .len();
        shard_states.push(state);
    }
    assert_eq!(
        total,
        recorded_projects().len(),
        "every project is in exactly one shard"
    );
    let merged = dir.path().join("merged");
    let mut args = vec![
        "merge-state".to_string(),
        "--state".into(),
        merged.display().to_string(),
    ];
    for state in &shard_states {
        args.push("--from".into());
        args.push(state.display().to_string());
    }
    run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(publish(&merged, &dir.path().join("out-merged")), whole_hash);
}

#[test]
fn pep658_hashes_are_checked_when_the_index_states_them() {
    let server = FakePypi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    server.state_core_metadata(None);
    let good = dir.path().join("good");
    crawl(&server, &good, &["--packages", "requests"]);
    let good_hash = publish(&good, &dir.path().join("out-good"));
    let methods = State::open(&good)
        .expect("state")
        .method_counts()
        .expect("counts");
    assert!(
        methods
            .iter()
            .any(|(_, method, _, n)| method == "pep658" && *n == 3),
        "{methods:?}"
    );

    // A wrong hash: the .metadata file is not trusted, the wheel itself is read instead.
    server.state_core_metadata(Some("00".repeat(32)));
    let bad = dir.path().join("bad");
    crawl(&server, &bad, &["--packages", "requests"]);
    let methods = State::open(&bad)
        .expect("state")
        .method_counts()
        .expect("counts");
    assert!(
        !methods.iter().any(|(_, method, _, _)| method == "pep658"),
        "{methods:?}"
    );
    // Same dependencies either way (the page differs only in its core-metadata hashes).
    let (a, b) = (
        snapshot(&dir.path().join("out-good"), &good_hash),
        snapshot(
            &dir.path().join("out-bad"),
            &publish(&bad, &dir.path().join("out-bad")),
        ),
    );
    assert_eq!(project(&a, "requests"), project(&b, "requests"));
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let requirements = dir.path().join("req.txt");
    std::fs::write(&requirements, "requests\nthis is not ( a requirement\n").expect("writes");
    let output = std::process::Command::new(support::bin())
        .args([
            "crawl",
            "--state",
            dir.path().join("s").to_str().expect("utf-8"),
            "--requirements",
            requirements.to_str().expect("utf-8"),
        ])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("req.txt:2:"), "{stderr}");
    let output = std::process::Command::new(support::bin())
        .args([
            "crawl",
            "--state",
            dir.path().join("s").to_str().expect("utf-8"),
            "--all",
            "--packages",
            "six",
        ])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn progress_is_logged_without_a_terminal_and_stats_report_methods() {
    let server = FakePypi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let report = dir.path().join("report.json");
    let output = std::process::Command::new(support::bin())
        .args([
            "crawl",
            "--state",
            state.to_str().expect("utf-8"),
            "--packages",
            &all_packages(),
        ])
        .args([
            "--projects-in-flight",
            "1",
            "--report",
            report.to_str().expect("utf-8"),
        ])
        .args(fast_flags(&server))
        .env("RUST_LOG", "info")
        .output()
        .expect("runs");
    assert!(output.status.success());
    // stderr is a pipe here, so progress comes as plain lines, never as a bar.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("projects, "), "{stderr}");
    assert!(
        !stderr.contains('\r'),
        "no terminal bar when not on a terminal"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("json");
    assert_eq!(report["report"]["projects"], recorded_projects().len());
    assert!(
        report["by_kind"]["wheel-range"]["requests"]
            .as_u64()
            .expect("count")
            >= 4
    );
    assert!(
        report["by_kind"]["sdist-download"]["bytes"]
            .as_u64()
            .expect("count")
            > 100_000
    );
    let stats = run(&["stats", "--state", state.to_str().expect("utf-8")]);
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).expect("json");
    assert_eq!(stats["projects"], recorded_projects().len());
    let unknown: u64 = stats["files"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|row| row["source"] == "unknown")
        .map(|row| row["files"].as_u64().expect("count"))
        .sum();
    assert_eq!(unknown, 1, "only six 1.0.0 (setup.py only) is unknown");
}

#[test]
fn unknown_records_from_an_older_extractor_are_read_again_and_known_ones_kept() {
    let server = FakePypi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let state_dir = dir.path().join("state");
    crawl(&server, &state_dir, &["--packages", "six"]);
    let out = dir.path().join("out");
    let reference = publish(&state_dir, &out);
    // Pretend an older extractor wrote the state and gave up on six-1.0.0.tar.gz. The page
    // is stored empty first: a stored record that is better than a new one would be kept.
    {
        let mut state = State::open(&state_dir).expect("opens");
        let row = state.project("six").expect("row").expect("crawled");
        let mut files = state.files("six").expect("files");
        let page = |files: Vec<crawler::state::StoredFile>| crawler::state::ProjectCommit {
            name: "six".into(),
            last_serial: row.last_serial,
            etag: row.etag.clone(),
            files,
            enqueue: Vec::new(),
        };
        state
            .commit_project(None, &page(Vec::new()))
            .expect("empties");
        for file in &mut files {
            let extracted = file.dependencies.as_mut().expect("examined");
            extracted.extractor = 0;
            if file.filename == "six-1.0.0.tar.gz" {
                extracted.record = db_format::DependencyRecord {
                    source: MetadataSource::Unknown,
                    detail: Some("an old extractor gave up".into()),
                    ..Default::default()
                };
            }
        }
        state.commit_project(None, &page(files)).expect("rewrites");
        state.set_meta("extractor_version", "0").expect("meta");
    }
    assert_ne!(publish(&state_dir, &dir.path().join("stale")), reference);
    server.clear_seen();
    crawl(&server, &state_dir, &["--packages", "six"]);
    let files: Vec<String> = server
        .seen()
        .into_iter()
        .filter(|seen| seen.path.starts_with("/files/"))
        .map(|seen| seen.path)
        .collect();
    // The page is read again despite its ETag, only the unknown file is fetched again.
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with("six-1.0.0.tar.gz"));
    assert_eq!(publish(&state_dir, &out), reference);
}
