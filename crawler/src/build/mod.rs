//! Sandboxed sdist metadata builds: the fallback used only when static extraction
//! ([`crate::extract::sdist`]) answers "needs a build".
//!
//! A build runs the sdist's own code, so it runs confined:
//! - bubblewrap (`bwrap --unshare-all --die-with-parent`): no network (an empty network
//!   namespace), a read-only view of the system, empty `/tmp`, `/home`, `/root` and the crawl
//!   user's home, its own empty `$HOME`, and one writable directory (`/build`) holding the
//!   unpacked sdist;
//! - rlimits set by util-linux `prlimit` before `bwrap` starts: address space (memory), number of
//!   processes, file size, CPU seconds; and a wall-clock limit enforced here (the sandbox is
//!   killed; `--die-with-parent` and the PID namespace take every process in it down too).
//!
//! bubblewrap rather than raw namespaces: it is packaged by Debian, audited, used by Flatpak,
//! and sets up the mounts without a line of `unsafe` here (`scripts/install-sandbox.sh`).
//!
//! The build follows PEP 517: the backend `pyproject.toml` declares (default
//! `setuptools.build_meta:__legacy__`, which runs `setup.py egg_info` for legacy projects),
//! `get_requires_for_build_wheel`, then `prepare_metadata_for_build_wheel` (or the `METADATA` of
//! `build_wheel` when the backend lacks the hook). Build requirements are installed beforehand,
//! outside the sandbox, as wheels only (`pip install --only-binary=:all: --target`: installing a
//! wheel runs none of its code) into a cached directory the sandbox mounts read-only. The
//! resulting `METADATA` is read by the crawler's own parser ([`crate::extract::metadata`]).
//!
//! A failure is recorded as "unknown" with a normalized error ([`normalize_error`](crate::build::normalize_error)): paths,
//! versions, line numbers and addresses masked so that identical failures group.
//!
//! `regex` does the masking rather than hand-written scanners: it is the well-kept standard,
//! and its linear-time matching is safe on the untrusted text a build prints. Build
//! requirements are fetched by pip, not the crawler's client: resolving a requirement set
//! (specifiers, markers, transitive dependencies) to wheels is a resolver's job, and pip's
//! `--only-binary=:all:` guarantees no package code runs outside the sandbox.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use db_format::{DependencyRecord, MetadataSource};
use regex::Regex;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::extract::metadata::CoreMetadata;
use crate::extract::{Limits, zip};

/// The Python program run inside the sandbox.
const DRIVER: &str = include_str!("driver.py");

/// The build directory inside the sandbox (below its empty `/tmp`: the read-only root cannot
/// take a new mount point).
const INSIDE: &str = "/tmp/build";

/// Size of the sandbox's `/tmp` (a tmpfs, i.e. memory that RLIMIT_AS does not count).
const TMP_BYTES: u64 = 512 << 20;

/// Size of the other empty directories (`$HOME`, `/run`, …): room for caches, no more.
const HIDDEN_BYTES: u64 = 64 << 20;

/// Where build requirements come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WheelSource {
    /// A PEP 503 simple index (e.g. `https://pypi.org/simple`).
    Index(String),
    /// A local directory of wheels (`pip --no-index --find-links`), as the tests use.
    FindLinks(PathBuf),
}

/// How builds are run and confined.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The host CPython that runs the backend (its prefix is mounted read-only).
    pub python: PathBuf,
    /// The `bwrap` executable.
    pub bwrap: PathBuf,
    /// The `prlimit` executable (util-linux).
    pub prlimit: PathBuf,
    /// Wall-clock limit of one sandbox run.
    pub time_limit: Duration,
    /// Address-space limit (bytes) of every process in the sandbox.
    pub memory_bytes: u64,
    /// Process limit (RLIMIT_NPROC).
    pub max_processes: u64,
    /// Largest file a build may write (RLIMIT_FSIZE).
    pub max_file_bytes: u64,
    /// Where build requirements are fetched from.
    pub wheels: WheelSource,
    /// Where installed build environments are cached (one directory per requirement set).
    pub cache_dir: PathBuf,
    /// Caps on unpacking the sdist.
    pub limits: Limits,
}

impl BuildOptions {
    /// Defaults: `python3`, `bwrap` and `prlimit` from `PATH`, 120 s, 2 GiB, 256 processes,
    /// 256 MiB files, wheels from `index` (a simple index URL).
    pub fn new(wheels: WheelSource, cache_dir: PathBuf) -> Self {
        BuildOptions {
            python: PathBuf::from("python3"),
            bwrap: PathBuf::from("bwrap"),
            prlimit: PathBuf::from("prlimit"),
            time_limit: Duration::from_secs(120),
            memory_bytes: 2 << 30,
            max_processes: 256,
            max_file_bytes: 256 << 20,
            wheels,
            cache_dir,
            limits: Limits::default(),
        }
    }
}

/// Why a build gave no metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("the build sandbox cannot run: {0} (run scripts/install-sandbox.sh)")]
    Sandbox(String),
    #[error("cannot unpack the sdist: {0}")]
    Unpack(String),
    #[error("no setup.py or pyproject.toml at the sdist's top level")]
    NotBuildable,
    #[error("build requirements could not be installed as wheels: {0}")]
    Requirements(String),
    #[error("build killed at the time limit of {0} s")]
    TimeLimit(u64),
    #[error("build killed at the memory limit: {0}")]
    MemoryLimit(String),
    #[error("build failed: {0}")]
    Failed(String),
    #[error("build produced no usable METADATA: {0}")]
    NoMetadata(String),
    #[error("build I/O: {0}")]
    Io(String),
}

fn io_error(what: &str) -> impl Fn(std::io::Error) -> BuildError + '_ {
    move |err| BuildError::Io(format!("{what}: {err}"))
}

static MASKS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // Paths (absolute, or below the build directory), before anything inside them is masked.
        (r#"(?:[A-Za-z]:)?/[^\s'"(),:;]+"#, "<path>"),
        (r"\b0x[0-9a-fA-F]+\b", "<addr>"),
        (r"\bline \d+", "line <n>"),
        (r"\b[vV]?\d+(?:\.\d+)+(?:[-._+]?[A-Za-z0-9]+)*", "<version>"),
        (r"\b\d+\b", "<n>"),
    ]
    .into_iter()
    .filter_map(|(pattern, mask)| Regex::new(pattern).ok().map(|regex| (regex, mask)))
    .collect()
});

/// Mask what differs between identical failures (paths, versions, line numbers, addresses,
/// numbers) so they group; at most 300 characters.
pub fn normalize_error(message: &str) -> String {
    let mut text = message.trim().to_string();
    for (regex, mask) in MASKS.iter() {
        text = regex.replace_all(&text, *mask).into_owned();
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    text.chars().take(300).collect()
}

/// The line of a Python failure that says what went wrong: the last `SomethingError: …` (or
/// `error: …`) line, else the last non-empty one.
fn failure_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let is_exception = |line: &&&str| {
        let head = line.split(':').next().unwrap_or_default();
        line.contains(':')
            && !head.contains(' ')
            && (head.ends_with("Error") || head.ends_with("Exception") || head == "error")
    };
    lines
        .iter()
        .rev()
        .find(is_exception)
        .or_else(|| lines.last())
        .map(|line| line.to_string())
        .unwrap_or_else(|| "no output".to_string())
}

/// Runs builds, at most `concurrency` at once.
#[derive(Debug, Clone)]
pub struct Builder {
    options: Arc<BuildOptions>,
    permits: Arc<Semaphore>,
}

impl Builder {
    /// Check that the sandbox works (a clear error if `bwrap` is missing or cannot create its
    /// namespaces), then return a builder running at most `concurrency` builds at once.
    pub fn new(options: BuildOptions, concurrency: usize) -> Result<Self, BuildError> {
        check_sandbox(&options)?;
        fs_err::create_dir_all(&options.cache_dir).map_err(io_error("build cache"))?;
        Ok(Builder {
            options: Arc::new(options),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        })
    }

    pub fn options(&self) -> &BuildOptions {
        &self.options
    }

    /// Build `sdist` (named `filename`) whose static extraction gave `hint` ("needs a build",
    /// with the build requirements). Returns the record to store: `Build` on success, else
    /// `Unknown` with the normalized error in `detail`.
    pub async fn build(
        &self,
        filename: String,
        sdist: Arc<Vec<u8>>,
        hint: DependencyRecord,
    ) -> DependencyRecord {
        let Ok(_permit) = self.permits.clone().acquire_owned().await else {
            return failed_record(&hint, &BuildError::Io("build pool closed".into()));
        };
        let options = self.options.clone();
        let task_hint = hint.clone();
        let joined = tokio::task::spawn_blocking(move || {
            build_sdist(&options, &filename, &sdist, &task_hint)
        })
        .await;
        match joined {
            Ok(Ok(record)) => record,
            Ok(Err(err)) => failed_record(&hint, &err),
            Err(err) => failed_record(&hint, &BuildError::Io(format!("build task: {err}"))),
        }
    }
}

/// The "unknown" record of a failed build: the static hint's build requirements, and the
/// normalized error.
pub fn failed_record(hint: &DependencyRecord, err: &BuildError) -> DependencyRecord {
    DependencyRecord {
        source: MetadataSource::Unknown,
        detail: Some(format!(
            "sdist build: {}",
            normalize_error(&err.to_string())
        )),
        requires_dist: Vec::new(),
        provides_extra: Vec::new(),
        ..hint.clone()
    }
}

/// Check that `bwrap` can start a sandbox like the builds' here.
pub fn check_sandbox(options: &BuildOptions) -> Result<(), BuildError> {
    let output = Command::new(&options.bwrap)
        .args(["--unshare-all", "--die-with-parent", "--ro-bind", "/", "/"])
        .args(["--proc", "/proc", "--dev", "/dev", "true"])
        .output()
        .map_err(|err| {
            BuildError::Sandbox(format!("cannot run {}: {err}", options.bwrap.display()))
        })?;
    if !output.status.success() {
        return Err(BuildError::Sandbox(format!(
            "{} failed: {}",
            options.bwrap.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

/// Build one sdist (blocking): unpack, install build requirements, run the backend in the
/// sandbox (twice when the backend asks for more requirements), read `METADATA`.
pub fn build_sdist(
    options: &BuildOptions,
    filename: &str,
    sdist: &[u8],
    hint: &DependencyRecord,
) -> Result<DependencyRecord, BuildError> {
    let work = tempfile::Builder::new()
        .prefix("mach-nix-build-")
        .tempdir()
        .map_err(io_error("temporary directory"))?;
    let unpacked = work.path().join("unpacked");
    unpack(filename, sdist, &unpacked, &options.limits)?;
    let top = project_root(&unpacked)?;
    let build = work.path().join("build");
    for dir in ["out", "env", "home"] {
        fs_err::create_dir_all(build.join(dir)).map_err(io_error("build directory"))?;
    }
    fs_err::write(build.join("driver.py"), DRIVER).map_err(io_error("driver"))?;

    let mut requires: BTreeSet<String> = hint.build_requires.iter().cloned().collect();
    if requires.is_empty() {
        requires.insert("setuptools>=40.8.0".to_string());
    }
    let python = python_prefix(options)?;
    let started = Instant::now();
    let mut round = 1;
    loop {
        let env = build_env(options, &requires)?;
        let outcome = run_sandboxed(options, &python, &top, &build, &env, round)?;
        match outcome {
            Sandboxed::Requires(more) if round == 1 => {
                requires.extend(more);
                round = 2;
            }
            Sandboxed::Requires(more) => {
                return Err(BuildError::Requirements(format!(
                    "still missing after installing them: {}",
                    more.join(", ")
                )));
            }
            Sandboxed::Metadata { path, hook } => {
                let bytes = read_capped(&path, options.limits.max_member_bytes)?;
                let metadata = CoreMetadata::parse(&bytes);
                let detail = format!(
                    "{hook} of {} in {:.1}s",
                    hint.build_backend
                        .as_deref()
                        .unwrap_or("setuptools.build_meta:__legacy__"),
                    started.elapsed().as_secs_f64()
                );
                let record = metadata.into_record(MetadataSource::Build, Some(detail));
                return Ok(DependencyRecord {
                    requires_python: record.requires_python.or(hint.requires_python.clone()),
                    build_requires: requires.into_iter().collect(),
                    build_backend: hint.build_backend.clone(),
                    ..record
                });
            }
        }
    }
}

fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, BuildError> {
    let file = File::open(path)
        .map_err(|err| BuildError::NoMetadata(format!("{}: {err}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error("METADATA"))?;
    if bytes.len() as u64 > limit {
        return Err(BuildError::NoMetadata(format!("over {limit} bytes")));
    }
    Ok(bytes)
}

/// The host Python's installation prefix and real executable (mounted read-only in the sandbox).
struct HostPython {
    prefix: PathBuf,
    executable: PathBuf,
}

fn python_prefix(options: &BuildOptions) -> Result<HostPython, BuildError> {
    let output = Command::new(&options.python)
        .args([
            "-c",
            "import os, sys; print(sys.base_prefix); print(os.path.realpath(sys.executable))",
        ])
        .output()
        .map_err(|err| {
            BuildError::Sandbox(format!("cannot run {}: {err}", options.python.display()))
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    match (output.status.success(), lines.next(), lines.next()) {
        (true, Some(prefix), Some(executable)) => Ok(HostPython {
            prefix: PathBuf::from(prefix),
            executable: PathBuf::from(executable),
        }),
        _ => Err(BuildError::Sandbox(format!(
            "{} did not report its prefix: {}",
            options.python.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))),
    }
}

/// Install `requires` (wheels only) into a cached directory named by the requirement set.
fn build_env(options: &BuildOptions, requires: &BTreeSet<String>) -> Result<PathBuf, BuildError> {
    let mut hasher = Sha256::new();
    match &options.wheels {
        WheelSource::Index(url) => hasher.update(format!("index {url}\n")),
        WheelSource::FindLinks(dir) => hasher.update(format!("links {}\n", dir.display())),
    }
    for requirement in requires {
        hasher.update(requirement.as_bytes());
        hasher.update(b"\n");
    }
    let key = hex::encode(&hasher.finalize()[..12]);
    let env = options.cache_dir.join(format!("env-{key}"));
    if env.is_dir() {
        return Ok(env);
    }
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(&options.cache_dir)
        .map_err(io_error("build environment"))?;
    let mut pip = Command::new(&options.python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ])
    .args([
        "--no-input",
        "--no-compile",
        "--only-binary=:all:",
        "--timeout",
        "30",
        "--retries",
        "3",
        "--target",
    ])
    .arg(staging.path());
    match &options.wheels {
        WheelSource::Index(url) => pip.args(["--index-url", url]),
        WheelSource::FindLinks(dir) => pip.arg("--no-index").arg("--find-links").arg(dir),
    };
    let output = pip
        .arg("--")
        .args(requires)
        .env("PIP_NO_CACHE_DIR", "1")
        .stdin(Stdio::null())
        .output()
        .map_err(io_error("pip"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(BuildError::Requirements(failure_line(&stderr)));
    }
    let staged = staging.keep();
    if fs_err::rename(&staged, &env).is_err() {
        // Another build installed the same set meanwhile: use that one.
        let _ = fs_err::remove_dir_all(&staged);
    }
    Ok(env)
}

enum Sandboxed {
    Requires(Vec<String>),
    Metadata { path: PathBuf, hook: String },
}

#[derive(serde::Deserialize)]
struct DriverResult {
    status: String,
    #[serde(default)]
    requires: Vec<String>,
    #[serde(default)]
    metadata: String,
    #[serde(default)]
    hook: String,
}

/// Directories hidden behind an empty tmpfs in the sandbox (when they exist on the host).
fn hidden_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["/tmp", "/var/tmp", "/home", "/root", "/run", "/work"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home));
    }
    dirs.into_iter().filter(|dir| dir.is_dir()).collect()
}

fn run_sandboxed(
    options: &BuildOptions,
    python: &HostPython,
    source: &Path,
    build: &Path,
    env: &Path,
    round: u32,
) -> Result<Sandboxed, BuildError> {
    let result_file = build.join("result.json");
    let _ = fs_err::remove_file(&result_file);
    let stderr_path = build.join("stderr.log");
    let stderr = File::create(&stderr_path).map_err(io_error("log"))?;
    let stdout = File::create(build.join("stdout.log")).map_err(io_error("log"))?;
    let cpu_seconds = options.time_limit.as_secs().max(1) + 5;
    let mut command = Command::new(&options.prlimit);
    command
        .arg(format!("--as={}", options.memory_bytes))
        .arg(format!("--nproc={}", options.max_processes))
        .arg(format!("--fsize={}", options.max_file_bytes))
        .arg(format!("--cpu={cpu_seconds}"))
        .arg("--core=0")
        .arg("--")
        .arg(&options.bwrap)
        .args(["--unshare-all", "--die-with-parent", "--new-session"])
        .args(["--ro-bind", "/", "/"]);
    for dir in hidden_dirs() {
        let size = if dir == Path::new("/tmp") {
            TMP_BYTES
        } else {
            HIDDEN_BYTES
        };
        command
            .args(["--size", &size.to_string(), "--tmpfs"])
            .arg(dir);
    }
    command
        .arg("--ro-bind")
        .arg(&python.prefix)
        .arg(&python.prefix)
        .arg("--bind")
        .arg(build)
        .arg(INSIDE)
        .arg("--bind")
        .arg(source)
        .arg(format!("{INSIDE}/src"))
        .arg("--ro-bind")
        .arg(env)
        .arg(format!("{INSIDE}/env"))
        .args(["--proc", "/proc", "--dev", "/dev", "--chdir"])
        .arg(format!("{INSIDE}/src"))
        .arg("--clearenv")
        .args(["--setenv", "MACH_NIX_BUILD", INSIDE])
        .args(["--setenv", "HOME", &format!("{INSIDE}/home")])
        .args(["--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin"])
        .args(["--setenv", "LANG", "C.UTF-8"])
        .args(["--setenv", "TMPDIR", "/tmp"])
        .args(["--setenv", "PYTHONPATH", &format!("{INSIDE}/env")])
        .args(["--setenv", "PYTHONDONTWRITEBYTECODE", "1"])
        .args(["--setenv", "PIP_NO_INDEX", "1"])
        .args(["--setenv", "MACH_NIX_BUILD_ROUND", &round.to_string()])
        .arg("--")
        .arg(&python.executable)
        .arg("-S")
        .arg(format!("{INSIDE}/driver.py"))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    let mut child = command
        .spawn()
        .map_err(|err| BuildError::Sandbox(format!("cannot start prlimit/bwrap: {err}")))?;
    let deadline = Instant::now() + options.time_limit;
    let status: ExitStatus = loop {
        match child
            .try_wait()
            .map_err(io_error("waiting for the build"))?
        {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(BuildError::TimeLimit(options.time_limit.as_secs()));
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let log = tail(&stderr_path, 64 << 10);
    if !status.success() {
        let line = failure_line(&log);
        if line.starts_with("MemoryError") || killed_by_memory(&status) {
            return Err(BuildError::MemoryLimit(line));
        }
        return Err(BuildError::Failed(line));
    }
    let text = fs_err::read_to_string(&result_file)
        .map_err(|_| BuildError::NoMetadata(format!("the driver wrote no result ({log})")))?;
    let result: DriverResult = serde_json::from_str(&text)
        .map_err(|err| BuildError::NoMetadata(format!("driver result: {err}")))?;
    match result.status.as_str() {
        "requires" => Ok(Sandboxed::Requires(result.requires)),
        "ok" => {
            let inside = Path::new(&result.metadata);
            let path = inside
                .strip_prefix(INSIDE)
                .map(|rest| build.join(rest))
                .map_err(|_| {
                    BuildError::NoMetadata(format!("outside {INSIDE}: {}", result.metadata))
                })?;
            Ok(Sandboxed::Metadata {
                path,
                hook: result.hook,
            })
        }
        other => Err(BuildError::NoMetadata(format!("driver status {other:?}"))),
    }
}

/// A process killed by SIGKILL/SIGSEGV/SIGABRT after an allocation failed under RLIMIT_AS.
fn killed_by_memory(status: &ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    matches!(status.signal(), Some(6 | 9 | 11))
}

fn tail(path: &Path, limit: u64) -> String {
    let Ok(bytes) = fs_err::read(path) else {
        return String::new();
    };
    let start = bytes
        .len()
        .saturating_sub(usize::try_from(limit).unwrap_or(usize::MAX));
    String::from_utf8_lossy(bytes.get(start..).unwrap_or_default()).into_owned()
}

/// The directory holding `setup.py` or `pyproject.toml`: the single top directory, or the
/// archive's root.
fn project_root(unpacked: &Path) -> Result<PathBuf, BuildError> {
    let is_project =
        |dir: &Path| dir.join("setup.py").is_file() || dir.join("pyproject.toml").is_file();
    if is_project(unpacked) {
        return Ok(unpacked.to_path_buf());
    }
    let entries = fs_err::read_dir(unpacked).map_err(io_error("unpacked sdist"))?;
    entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|dir| dir.is_dir() && is_project(dir))
        .ok_or(BuildError::NotBuildable)
}

/// Unpack an sdist (`.tar.gz`, `.tgz`, `.tar.bz2` is not supported, `.tar`, `.zip`) into `dest`,
/// regular files and directories only, every path checked, sizes capped.
pub fn unpack(
    filename: &str,
    bytes: &[u8],
    dest: &Path,
    limits: &Limits,
) -> Result<(), BuildError> {
    fs_err::create_dir_all(dest).map_err(io_error("unpack directory"))?;
    let lower = filename.to_ascii_lowercase();
    if lower.ends_with(".zip") {
        return unpack_zip(bytes, dest, limits);
    }
    let reader: Box<dyn Read + '_> = if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else if lower.ends_with(".tar") {
        Box::new(bytes)
    } else {
        return Err(BuildError::Unpack(format!(
            "unsupported archive {filename}"
        )));
    };
    let mut archive = tar::Archive::new(reader);
    let mut total = 0u64;
    let entries = archive
        .entries()
        .map_err(|err| BuildError::Unpack(err.to_string()))?;
    for (count, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|err| BuildError::Unpack(err.to_string()))?;
        if count as u64 >= limits.max_members {
            return Err(BuildError::Unpack(format!(
                "more than {} members",
                limits.max_members
            )));
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            continue;
        }
        let path = entry
            .path()
            .map_err(|err| BuildError::Unpack(err.to_string()))?
            .to_string_lossy()
            .into_owned();
        zip::check_path(&path).map_err(|err| BuildError::Unpack(err.to_string()))?;
        total = total.saturating_add(entry.size());
        if total > limits.max_total_bytes {
            return Err(BuildError::Unpack(format!(
                "expands past {} bytes",
                limits.max_total_bytes
            )));
        }
        entry
            .unpack_in(dest)
            .map_err(|err| BuildError::Unpack(format!("{path}: {err}")))?;
    }
    Ok(())
}

fn unpack_zip(bytes: &[u8], dest: &Path, limits: &Limits) -> Result<(), BuildError> {
    let entries =
        zip::entries_of(bytes, limits).map_err(|err| BuildError::Unpack(err.to_string()))?;
    let mut total = 0u64;
    for entry in entries {
        zip::check_path(&entry.name).map_err(|err| BuildError::Unpack(err.to_string()))?;
        let target = dest.join(&entry.name);
        if entry.name.ends_with('/') {
            fs_err::create_dir_all(&target).map_err(io_error("unpack"))?;
            continue;
        }
        let data = zip::read_member(bytes, &entry, limits.max_member_bytes.max(64 << 20))
            .map_err(|err| BuildError::Unpack(err.to_string()))?;
        total = total.saturating_add(data.len() as u64);
        if total > limits.max_total_bytes {
            return Err(BuildError::Unpack(format!(
                "expands past {} bytes",
                limits.max_total_bytes
            )));
        }
        if let Some(parent) = target.parent() {
            fs_err::create_dir_all(parent).map_err(io_error("unpack"))?;
        }
        fs_err::write(&target, data).map_err(io_error("unpack"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_failures_normalize_alike() {
        let a = normalize_error(
            "File \"/tmp/mach-nix-build-abc/build/src/setup.py\", line 12: ModuleNotFoundError: No module named 'numpy' (numpy 1.21.0)",
        );
        let b = normalize_error(
            "File \"/tmp/mach-nix-build-xyz/build/src/setup.py\", line 7: ModuleNotFoundError: No module named 'numpy' (numpy 2.0.1)",
        );
        assert_eq!(a, b);
        assert!(a.contains("No module named 'numpy'"), "{a}");
        assert!(!a.contains("/tmp"), "{a}");
    }

    #[test]
    fn failure_line_is_the_exception() {
        let stderr = "Traceback (most recent call last):\n  File \"x\", line 3\nKeyError: 'a'\n\n";
        assert_eq!(failure_line(stderr), "KeyError: 'a'");
        assert_eq!(failure_line("just words\n"), "just words");
        assert_eq!(failure_line(""), "no output");
    }
}
