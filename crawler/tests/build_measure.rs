//! The issue-8 measurement, run by hand through `scripts/measure-builds.sh` (ignored in the
//! suite: it needs the network and minutes): for every sdist of the seeded sample that the
//! script downloaded, static extraction, then — where it says "needs a build" — the sandboxed
//! build with build requirements from PyPI. One JSON line per sdist goes to `$MEASURE_OUT`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crawler::build::{BuildOptions, WheelSource, build_sdist, check_sandbox, failed_record};
use crawler::extract::Limits;
use crawler::extract::sdist::{SdistMetadata, extract_sdist};

fn env_path(name: &str) -> PathBuf {
    std::env::var_os(name)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("set {name} (scripts/measure-builds.sh does)"))
}

#[test]
#[ignore = "network and minutes: run through scripts/measure-builds.sh"]
fn measure_sample() {
    let sample = env_path("MEASURE_SAMPLE");
    let sdists = env_path("MEASURE_SDISTS");
    let out = env_path("MEASURE_OUT");
    let jobs: usize = std::env::var("MEASURE_JOBS")
        .ok()
        .and_then(|jobs| jobs.parse().ok())
        .unwrap_or(2);
    let options = BuildOptions::new(
        WheelSource::Index("https://pypi.org/simple".into()),
        env_path("MEASURE_CACHE"),
    );
    check_sandbox(&options).unwrap_or_else(|err| panic!("{err}"));
    fs_err::create_dir_all(&options.cache_dir).expect("cache dir");
    let text = fs_err::read_to_string(&sample).expect("sample");
    let rows: Vec<Vec<String>> = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line.split('\t').map(str::to_string).collect())
        .collect();
    let next = AtomicUsize::new(0);
    let writer = Mutex::new(fs_err::File::create(&out).expect("out"));
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let at = next.fetch_add(1, Ordering::SeqCst);
                    let Some(row) = rows.get(at) else { break };
                    let (project, version, filename) = (&row[0], &row[1], &row[2]);
                    let line = match fs_err::read(sdists.join(filename)) {
                        Err(err) => serde_json::json!({"project": project, "version": version,
                            "filename": filename, "method": "download-failed", "error": err.to_string()}),
                        Ok(bytes) => {
                            let started = Instant::now();
                            let (method, record) =
                                match extract_sdist(filename, &bytes, &Limits::default()) {
                                    Err(err) => ("unreadable", failed_record(&Default::default(), &crawler::build::BuildError::Unpack(err.to_string()))),
                                    Ok(SdistMetadata::Static(record)) => ("static", record),
                                    Ok(SdistMetadata::NeedsBuild(hint)) => {
                                        match build_sdist(&options, filename, &bytes, &hint) {
                                            Ok(record) => ("build", record),
                                            Err(err) => ("build-failed", failed_record(&hint, &err)),
                                        }
                                    }
                                };
                            serde_json::json!({"project": project, "version": version,
                                "filename": filename, "method": method,
                                "source": record.source.as_str(),
                                "requires_dist": record.requires_dist.len(),
                                "detail": record.detail,
                                "seconds": started.elapsed().as_secs_f64()})
                        }
                    };
                    let mut file = writer.lock().expect("writer");
                    writeln!(file, "{line}").expect("write");
                }
            });
        }
    });
}
