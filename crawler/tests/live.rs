//! A small crawl of real PyPI (network). Transient failures are retried; a real breakage (the
//! wrong dependencies, an unreadable page) fails.

mod support;

use crawler::state::State;
use db_format::MetadataSource;

/// Run `attempt` up to three times, for the network's sake.
fn with_retries(mut attempt: impl FnMut() -> Result<(), String>) {
    let mut last = String::new();
    for round in 0..3 {
        match attempt() {
            Ok(()) => return,
            Err(err) => {
                eprintln!("live attempt {round} failed: {err}");
                last = err;
                std::thread::sleep(std::time::Duration::from_secs(5 << round));
            }
        }
    }
    panic!("live test failed three times: {last}");
}

#[test]
fn live_crawl_of_a_few_real_projects_publishes_a_snapshot() {
    with_retries(|| {
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        let state_dir = dir.path().join("state");
        let output = std::process::Command::new(support::bin())
            .args(["crawl", "--state", state_dir.to_str().unwrap_or_default()])
            .args([
                "--packages",
                "iniconfig,six,pdfminer.six",
                "--max-releases",
                "2",
                "--wheels",
                "one-per-release",
            ])
            .args(["--rate", "5", "--concurrency", "4"])
            .output()
            .map_err(|err| err.to_string())?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        // Closed again before publish-db: an open state is locked.
        let failed = State::open(&state_dir)
            .map_err(|err| err.to_string())?
            .projects_with_status("failed")
            .map_err(|err| err.to_string())?;
        if !failed.is_empty() {
            return Err(format!("failed projects: {failed:?}"));
        }
        let out = dir.path().join("out");
        let first = support::publish(&state_dir, &out);
        assert_eq!(
            support::publish(&state_dir, &out),
            first,
            "publishing is reproducible"
        );
        let snapshot = support::open_published(&out, &first);
        let pdfminer = snapshot
            .project("pdfminer-six")
            .map_err(|err| err.to_string())?
            .ok_or("pdfminer-six missing")?;
        assert_eq!(pdfminer.releases.len(), 2);
        for release in &pdfminer.releases {
            let wheel_record = release
                .dependencies
                .iter()
                .find(|record| record.source == MetadataSource::WheelMetadata)
                .ok_or("no wheel record")?;
            // pdfminer.six has needed charset-normalizer for years.
            assert!(
                wheel_record
                    .requires_dist
                    .iter()
                    .any(|r| r.to_ascii_lowercase().starts_with("charset-normalizer")),
                "{wheel_record:?}"
            );
            for file in &release.files {
                assert!(file.url.starts_with("https://"), "{}", file.url);
            }
        }
        Ok(())
    });
}
