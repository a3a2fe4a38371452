//! Helpers for the cross-crate end-to-end tests: find the workspace's binaries, run them with
//! clear failure messages, crawl and publish a real snapshot, and ask uv for its pins.
//!
//! The binaries are the ones cargo builds for the workspace (`target/debug/mach-nix`,
//! `target/debug/mach-nix-crawler`); `scripts/test.sh` builds them before the tests run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// A workspace binary, built by `cargo build --workspace --bins`.
pub fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target.join("debug").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Run a command; on failure, panic with its command line, stdout and stderr.
pub fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A requirements file of `tests/requirements/`.
pub fn requirements(name: &str) -> PathBuf {
    workspace_root().join("tests/requirements").join(name)
}

/// The date every live test pins PyPI to, so results do not drift with new uploads.
pub const AS_OF: &str = "2025-06-01";

/// Crawl the closure of `requirements` from live PyPI as of [`AS_OF`] into `work/state` and
/// publish it into `work/snapshots`; returns the snapshot's sha256.
///
/// Only the newest releases before the date are crawled, and one wheel's metadata per release,
/// to keep a live test to a few minutes.
pub fn crawl_and_publish(requirements: &Path, work: &Path) -> String {
    let state = work.join("state");
    let snapshots = work.join("snapshots");
    run(Command::new(binary("mach-nix-crawler"))
        .arg("crawl")
        .arg("--state")
        .arg(&state)
        .arg("--requirements")
        .arg(requirements)
        .args(["--with-deps", "--as-of", AS_OF])
        .args(["--wheels", "one-per-release", "--max-releases", "3"])
        .args(["--concurrency", "16"]));
    run(Command::new(binary("mach-nix-crawler"))
        .arg("publish-db")
        .arg("--state")
        .arg(&state)
        .arg("--out")
        .arg(&snapshots));
    let latest =
        std::fs::read_to_string(snapshots.join("latest")).expect("publish-db wrote latest");
    latest.trim().to_owned()
}

/// Parse `name==version` pins from a requirements file (ours or uv's), ignoring comments,
/// hashes and continuation lines.
pub fn pins(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#') && !line.starts_with("--"))
        .filter_map(|line| {
            let line = line.trim_end_matches('\\').trim();
            let (name, version) = line.split_once("==")?;
            let version = version.split([' ', ';']).next()?;
            let name = name
                .split('[')
                .next()?
                .trim()
                .to_lowercase()
                .replace(['_', '.'], "-");
            Some((name, version.to_owned()))
        })
        .collect()
}

/// `uv pip compile` of `requirements` for the same target and date, from live PyPI.
pub fn uv_pins(requirements: &Path, python: &str, platform: &str) -> BTreeMap<String, String> {
    let output = run(Command::new("uv")
        .args(["pip", "compile", "--no-header", "--quiet"])
        .arg(requirements)
        .args(["--python-version", python, "--python-platform", platform])
        .args(["--exclude-newer", &format!("{AS_OF}T00:00:00Z")]));
    pins(&String::from_utf8_lossy(&output.stdout))
}

#[cfg(test)]
mod tests {
    use super::pins;

    #[test]
    fn pins_read_both_our_output_and_uvs() {
        let ours = "requests==2.32.3 \\\n    --hash=sha256:abc\nPySocks==1.7.1 ; python_version >= \"3\"\n";
        let uv = "# via flask\nmarkupsafe==3.0.2\n    # via jinja2\nzope.interface==6.0\n";
        assert_eq!(
            pins(ours).into_iter().collect::<Vec<_>>(),
            [
                ("pysocks".into(), "1.7.1".into()),
                ("requests".into(), "2.32.3".into())
            ]
        );
        assert_eq!(
            pins(uv).get("zope-interface").map(String::as_str),
            Some("6.0")
        );
        assert_eq!(pins(uv).len(), 2);
    }
}
