//! Fetching snapshot blobs by hash: a content-addressed local cache in front of a list of
//! mirrors, as a [`BlobSource`] the snapshot reader asks for manifests, shards and packs.
//!
//! - **Cache.** Blobs live under the cache directory at [`BlobKind::path`], the layout of a
//!   published tree (so a cache is itself a valid `file://` mirror). A cached blob is hashed again
//!   before every use; a damaged entry is removed and fetched again, never used. Entries are
//!   written through [`db_format::atomic`] (temporary file in the same directory, fsync, rename),
//!   so a killed process never leaves a partial entry; temporary files a killed writer left
//!   behind are never read and are removed once they are an hour old.
//! - **Mirrors.** Base URLs of published trees (`https://…`, `http://…`, `file:///…` or a plain
//!   directory), tried in order for each blob. A mirror that cannot be reached, answers 5xx (after
//!   bounded retries with backoff), answers another error status, serves more bytes than the
//!   manifest states, or serves bytes whose sha256 differs is skipped for the next one, and the
//!   skip is recorded in [`Store::notes`]. When every mirror answers "not found" the blob is
//!   [`BlobError::Missing`]. Credentials in a mirror URL (`https://user:token@host/…`) are sent
//!   as HTTP basic authentication and never appear in a message.
//! - **Offline** (or no mirror given): the cache only.
//! - **Prefetch.** [`BlobSource::prefetch`] queues blobs for up to [`PREFETCH_THREADS`] std
//!   threads and returns at once; a later [`BlobSource::get`] of a queued blob waits for it.
//! - **Counters.** [`Store::stats`] counts requests, bytes received and cache hits.
//!
//! The HTTP client is `ureq` with rustls: blocking, no async runtime, small (the resolver stays
//! slim), and it sends a URL's userinfo as basic authentication on its own.
//!
//! ```no_run
//! use db_format::blob::{BlobHash, BlobKind, BlobSource};
//! use resolver::fetch::{self, Mirror, Store};
//!
//! let cache = fetch::default_cache_dir().expect("a cache directory");
//! let env = std::env::var("MACH_NIX_DB_URL").ok();
//! let mirrors = Mirror::list(&["https://example.org/mach-nix".to_owned()], env.as_deref())?;
//! let store = Store::new(cache, mirrors, false);
//! let pin = BlobHash::from_hex(&"ab".repeat(32)).expect("hex");
//! let manifest = store.get(BlobKind::Manifest, &pin, None)?;
//! eprintln!("{}", store.stats());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use db_format::atomic::TEMP_PREFIX;
use db_format::blob::{BlobError, BlobHash, BlobKind, BlobSource};
use sha2::{Digest as _, Sha256};

/// At most this many threads fetch prefetched blobs at once.
pub const PREFETCH_THREADS: usize = 8;
/// A body may exceed the size the manifest states by this much before it is refused unread.
pub const SIZE_SLACK: u64 = 4096;
/// The most bytes read for a blob whose size no manifest states (a manifest or a pack).
pub const UNSTATED_SIZE_LIMIT: u64 = 4 << 30;
/// A temporary file in the cache older than this was left by a killed writer and is removed.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);
/// The environment variable naming the cache directory.
pub const CACHE_DIR_ENV: &str = "MACH_NIX_CACHE_DIR";
/// The environment variable listing mirrors (space- or comma-separated) when none is given.
pub const DB_URL_ENV: &str = "MACH_NIX_DB_URL";

/// A mirror or cache setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("mirror `{mirror}`: {reason}")]
    BadMirror { mirror: String, reason: String },
}

/// The cache directory: `$MACH_NIX_CACHE_DIR`, else `$XDG_CACHE_HOME/mach-nix`, else
/// `~/.cache/mach-nix`; `None` when none of them is set.
pub fn default_cache_dir() -> Option<PathBuf> {
    cache_dir_from(|name| std::env::var_os(name))
}

/// [`default_cache_dir`] with the environment given as a lookup (empty values count as unset).
pub fn cache_dir_from(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let var = |name: &str| {
        env(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    var(CACHE_DIR_ENV)
        .or_else(|| var("XDG_CACHE_HOME").map(|dir| dir.join("mach-nix")))
        .or_else(|| var("HOME").map(|home| home.join(".cache").join("mach-nix")))
}

/// Where a published tree is served from.
#[derive(Clone, PartialEq, Eq)]
pub enum Mirror {
    /// An HTTP(S) base URL, kept with a trailing `/`.
    Http {
        url: String,
        /// The URL with any userinfo replaced by `***`: the only spelling messages use.
        shown: String,
        /// The userinfo as written in the URL, scrubbed from every message that could echo it.
        secret: Option<String>,
    },
    /// A local directory (a plain path or a `file://` URL).
    Dir(PathBuf),
}

impl Mirror {
    /// Parse one mirror: `http://…`, `https://…`, `file:///abs/path` or a plain directory path.
    pub fn parse(text: &str) -> Result<Mirror, ConfigError> {
        let bad = |reason: &str| ConfigError::BadMirror {
            mirror: redact(text),
            reason: reason.to_owned(),
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(bad("empty"));
        }
        if let Some(path) = text.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(bad("a file:// URL needs an absolute path (file:///dir)"));
            }
            return Ok(Mirror::Dir(PathBuf::from(path)));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Mirror::Dir(PathBuf::from(text)));
        };
        if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
            return Err(bad(
                "expected an http://, https:// or file:// URL, or a directory",
            ));
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.rsplit('@').next().unwrap_or_default().is_empty() {
            return Err(bad("the URL names no host"));
        }
        if rest.contains(['?', '#']) {
            return Err(bad("a mirror is a base URL, without query or fragment"));
        }
        let secret = authority
            .rsplit_once('@')
            .map(|(userinfo, _)| userinfo.to_owned());
        let url = if text.ends_with('/') {
            text.to_owned()
        } else {
            format!("{text}/")
        };
        Ok(Mirror::Http {
            shown: redact(&url),
            url,
            secret,
        })
    }

    /// The mirrors to use: those given on the command line, else those in `env` (the value of
    /// `MACH_NIX_DB_URL`, separated by spaces or commas); in order, as they will be tried.
    pub fn list(given: &[String], env: Option<&str>) -> Result<Vec<Mirror>, ConfigError> {
        if !given.is_empty() {
            return given.iter().map(|text| Mirror::parse(text)).collect();
        }
        env.unwrap_or_default()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|text| !text.is_empty())
            .map(Mirror::parse)
            .collect()
    }

    /// Remove this mirror's credentials from a message (an HTTP library's error may echo the URL).
    fn scrub(&self, message: String) -> String {
        match self {
            Mirror::Http {
                secret: Some(secret),
                ..
            } if !secret.is_empty() => message.replace(secret.as_str(), "***"),
            _ => message,
        }
    }
}

impl fmt::Display for Mirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mirror::Http { shown, .. } => f.write_str(shown),
            Mirror::Dir(path) => write!(f, "{}", path.display()),
        }
    }
}

impl fmt::Debug for Mirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mirror({self})")
    }
}

/// A URL with its userinfo (`user:password@`) replaced by `***@`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// How hard to try one mirror.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Attempts per mirror and blob when the mirror cannot be reached or answers 5xx.
    pub attempts: u32,
    /// The wait before the second attempt; doubled for each further one.
    pub backoff: Duration,
    /// Limit for connecting (DNS, TCP, TLS).
    pub connect_timeout: Duration,
    /// Limit for each wait on the mirror once connected (response headers, each read of the body).
    pub read_timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            attempts: 3,
            backoff: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
        }
    }
}

/// What a [`Store`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Requests sent to mirrors (each retry counts; a read from a directory mirror counts one).
    pub requests: u64,
    /// Body bytes received from mirrors.
    pub bytes: u64,
    /// Blobs served from the cache after their hash was checked.
    pub cache_hits: u64,
    /// Blobs fetched from a mirror, checked and stored in the cache.
    pub fetched: u64,
}

impl fmt::Display for FetchStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fetched {} blobs ({} bytes in {} requests), {} from the cache",
            self.fetched, self.bytes, self.requests, self.cache_hits
        )
    }
}

/// The local cache in front of the mirrors; a [`BlobSource`]. Cheap to clone (clones share the
/// cache state, counters and prefetch threads).
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cache_dir: PathBuf,
    mirrors: Vec<Mirror>,
    offline: bool,
    options: FetchOptions,
    agent: ureq::Agent,
    requests: AtomicU64,
    bytes: AtomicU64,
    cache_hits: AtomicU64,
    fetched: AtomicU64,
    notes: Mutex<Vec<String>>,
    queue: Mutex<Queue>,
    /// Signalled whenever a prefetched blob is done (fetched or failed).
    done: Condvar,
}

type Wanted = (BlobKind, BlobHash, Option<u64>);

#[derive(Debug, Default)]
struct Queue {
    waiting: VecDeque<Wanted>,
    /// Blobs queued or being fetched by a prefetch thread.
    pending: HashSet<(BlobKind, BlobHash)>,
    threads: usize,
}

/// Why one mirror did not deliver a blob.
enum Skip {
    NotFound,
    Mismatch(BlobHash),
    Failed(String),
}

impl Store {
    /// A store caching under `cache_dir` (see [`default_cache_dir`]) and fetching from `mirrors`
    /// in order (see [`Mirror::list`]); with `offline`, or with no mirror, the cache only.
    pub fn new(cache_dir: PathBuf, mirrors: Vec<Mirror>, offline: bool) -> Store {
        Store::with_options(cache_dir, mirrors, offline, FetchOptions::default())
    }

    /// [`Store::new`] with explicit retry and timeout settings.
    pub fn with_options(
        cache_dir: PathBuf,
        mirrors: Vec<Mirror>,
        offline: bool,
        options: FetchOptions,
    ) -> Store {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(options.connect_timeout))
            .timeout_recv_response(Some(options.read_timeout))
            .timeout_per_read(Some(options.read_timeout))
            .user_agent(concat!("mach-nix/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Store {
            inner: Arc::new(Inner {
                cache_dir,
                mirrors,
                offline,
                options,
                agent,
                requests: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
                fetched: AtomicU64::new(0),
                notes: Mutex::new(Vec::new()),
                queue: Mutex::new(Queue::default()),
                done: Condvar::new(),
            }),
        }
    }

    /// The cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.inner.cache_dir
    }

    /// Where `kind`/`hash` is (or would be) cached.
    pub fn cache_path(&self, kind: BlobKind, hash: &BlobHash) -> PathBuf {
        self.inner.cache_path(kind, hash)
    }

    /// Requests, bytes and cache hits so far.
    pub fn stats(&self) -> FetchStats {
        let inner = &self.inner;
        FetchStats {
            requests: inner.requests.load(Ordering::Relaxed),
            bytes: inner.bytes.load(Ordering::Relaxed),
            cache_hits: inner.cache_hits.load(Ordering::Relaxed),
            fetched: inner.fetched.load(Ordering::Relaxed),
        }
    }

    /// What went wrong on the way without failing: mirrors skipped for a blob (and why),
    /// damaged cache entries removed. For `-v`.
    pub fn notes(&self) -> Vec<String> {
        lock(&self.inner.notes).clone()
    }

    /// Block until every prefetched blob is fetched or has failed.
    pub fn wait_for_prefetch(&self) {
        let mut queue = lock(&self.inner.queue);
        while !queue.pending.is_empty() {
            queue = self
                .inner
                .done
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl BlobSource for Store {
    fn get(
        &self,
        kind: BlobKind,
        hash: &BlobHash,
        size: Option<u64>,
    ) -> Result<Vec<u8>, BlobError> {
        {
            let mut queue = lock(&self.inner.queue);
            while queue.pending.contains(&(kind, *hash)) {
                queue = self
                    .inner
                    .done
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        self.inner.get(kind, hash, size)
    }

    fn prefetch(&self, blobs: &[(BlobKind, BlobHash, Option<u64>)]) {
        if self.inner.offline || self.inner.mirrors.is_empty() {
            return;
        }
        let mut queue = lock(&self.inner.queue);
        for &(kind, hash, size) in blobs {
            if !queue.pending.contains(&(kind, hash))
                && !self.inner.cache_path(kind, &hash).is_file()
            {
                queue.pending.insert((kind, hash));
                queue.waiting.push_back((kind, hash, size));
            }
        }
        while queue.threads < PREFETCH_THREADS && queue.threads < queue.waiting.len() {
            queue.threads += 1;
            let inner = Arc::clone(&self.inner);
            std::thread::spawn(move || inner.prefetch_worker());
        }
    }
}

impl Inner {
    fn cache_path(&self, kind: BlobKind, hash: &BlobHash) -> PathBuf {
        self.cache_dir.join(kind.path(hash))
    }

    fn note(&self, message: String) {
        lock(&self.notes).push(message);
    }

    /// Take queued blobs until none is left; errors are dropped here and met again by `get`.
    fn prefetch_worker(&self) {
        loop {
            let next = {
                let mut queue = lock(&self.queue);
                match queue.waiting.pop_front() {
                    Some(next) => next,
                    None => {
                        queue.threads -= 1;
                        return;
                    }
                }
            };
            let (kind, hash, size) = next;
            let _ = self.get(kind, &hash, size);
            lock(&self.queue).pending.remove(&(kind, hash));
            self.done.notify_all();
        }
    }

    fn get(
        &self,
        kind: BlobKind,
        hash: &BlobHash,
        size: Option<u64>,
    ) -> Result<Vec<u8>, BlobError> {
        if let Some(bytes) = self.read_cache(kind, hash) {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(bytes);
        }
        if self.offline || self.mirrors.is_empty() {
            let why = if self.offline {
                "offline"
            } else {
                "no mirror given (--db-url or MACH_NIX_DB_URL)"
            };
            return Err(BlobError::Missing {
                kind,
                hash: *hash,
                detail: format!("not in the cache {} and {why}", self.cache_dir.display()),
            });
        }
        let limit = size.map_or(UNSTATED_SIZE_LIMIT, |size| size.saturating_add(SIZE_SLACK));
        let mut skips = Vec::new();
        for mirror in &self.mirrors {
            let skip = match self.fetch_mirror(mirror, kind, hash, limit) {
                Ok(bytes) => {
                    let actual = sha256(&bytes);
                    if actual == *hash {
                        self.store(kind, hash, &bytes)?;
                        self.fetched.fetch_add(1, Ordering::Relaxed);
                        return Ok(bytes);
                    }
                    Skip::Mismatch(actual)
                }
                Err(skip) => skip,
            };
            let why = match &skip {
                Skip::NotFound => "not found".to_owned(),
                Skip::Mismatch(actual) => {
                    format!("served bytes with sha256:{actual} (damaged or forged, refused)")
                }
                Skip::Failed(why) => why.clone(),
            };
            self.note(format!(
                "{} sha256:{hash} from mirror {mirror}: {why}; skipped",
                kind.as_str()
            ));
            skips.push((mirror, skip, why));
        }
        Err(give_up(kind, hash, skips))
    }

    /// The cached blob, if present and intact; a damaged entry is removed.
    fn read_cache(&self, kind: BlobKind, hash: &BlobHash) -> Option<Vec<u8>> {
        let path = self.cache_path(kind, hash);
        let bytes = std::fs::read(&path).ok()?;
        let actual = sha256(&bytes);
        if actual == *hash {
            return Some(bytes);
        }
        let removed = match std::fs::remove_file(&path) {
            Ok(()) => "removed".to_owned(),
            Err(err) => format!("could not remove it ({err}); it will be replaced"),
        };
        self.note(format!(
            "cache entry {} has sha256:{actual}, not sha256:{hash}: damaged, {removed}",
            path.display()
        ));
        None
    }

    fn fetch_mirror(
        &self,
        mirror: &Mirror,
        kind: BlobKind,
        hash: &BlobHash,
        limit: u64,
    ) -> Result<Vec<u8>, Skip> {
        let path = kind.path(hash);
        match mirror {
            Mirror::Dir(dir) => {
                self.requests.fetch_add(1, Ordering::Relaxed);
                let bytes = read_limited(&dir.join(&path), limit)?;
                self.bytes.fetch_add(len(&bytes), Ordering::Relaxed);
                Ok(bytes)
            }
            Mirror::Http { url, .. } => {
                self.fetch_http(&format!("{url}{path}"), limit)
                    .map_err(|skip| match skip {
                        Skip::Failed(why) => Skip::Failed(mirror.scrub(why)),
                        other => other,
                    })
            }
        }
    }

    fn fetch_http(&self, url: &str, limit: u64) -> Result<Vec<u8>, Skip> {
        let attempts = self.options.attempts.max(1);
        let mut last = String::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                std::thread::sleep(self.options.backoff * 2u32.saturating_pow(attempt - 1));
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut response = match self.agent.get(url).call() {
                Ok(response) => response,
                Err(err) => {
                    last = format!("unreachable: {err}");
                    continue;
                }
            };
            let status = response.status().as_u16();
            match status {
                200 => {}
                404 | 410 => return Err(Skip::NotFound),
                500..=599 => {
                    last = format!("answered HTTP {status}");
                    continue;
                }
                _ => return Err(Skip::Failed(format!("answered HTTP {status}"))),
            }
            match response.body_mut().with_config().limit(limit).read_to_vec() {
                Ok(bytes) => {
                    self.bytes.fetch_add(len(&bytes), Ordering::Relaxed);
                    return Ok(bytes);
                }
                Err(ureq::Error::BodyExceedsLimit(_)) => {
                    return Err(Skip::Failed(format!(
                        "served more than {limit} bytes, more than stated"
                    )));
                }
                Err(err) => last = format!("broke off the download: {err}"),
            }
        }
        Err(Skip::Failed(format!("{last} (after {attempts} attempts)")))
    }

    /// Put a verified blob into the cache atomically.
    fn store(&self, kind: BlobKind, hash: &BlobHash, bytes: &[u8]) -> Result<(), BlobError> {
        let path = self.cache_path(kind, hash);
        let failed = |err: String| {
            BlobError::Other(format!(
                "cannot store {} sha256:{hash} in the cache: {err}",
                kind.as_str()
            ))
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|err| failed(format!("{}: {err}", dir.display())))?;
            remove_stale_temps(dir);
        }
        db_format::atomic::write(&path, bytes).map_err(|err| failed(err.to_string()))
    }
}

/// The error once every mirror was tried: the one mirror's own error, [`BlobError::Missing`]
/// when all answered "not found", else every mirror's reason.
fn give_up(kind: BlobKind, hash: &BlobHash, skips: Vec<(&Mirror, Skip, String)>) -> BlobError {
    let names = || {
        skips
            .iter()
            .map(|(mirror, _, _)| mirror.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if skips
        .iter()
        .all(|(_, skip, _)| matches!(skip, Skip::NotFound))
    {
        return BlobError::Missing {
            kind,
            hash: *hash,
            detail: format!("not found at any mirror ({})", names()),
        };
    }
    if let [(mirror, Skip::Mismatch(actual), _)] = skips.as_slice() {
        return BlobError::HashMismatch {
            kind,
            hash: *hash,
            actual: *actual,
            from: mirror.to_string(),
        };
    }
    let reasons: Vec<String> = skips
        .iter()
        .map(|(mirror, _, why)| format!("mirror {mirror}: {why}"))
        .collect();
    BlobError::Other(format!(
        "{} sha256:{hash} could not be fetched: {}",
        kind.as_str(),
        reasons.join("; ")
    ))
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, Skip> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(Skip::NotFound),
        Err(err) => return Err(Skip::Failed(format!("{}: {err}", path.display()))),
    };
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|err| Skip::Failed(format!("{}: {err}", path.display())))?;
    if len(&bytes) > limit {
        return Err(Skip::Failed(format!(
            "{} holds more than {limit} bytes, more than stated",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Remove temporary files of killed writers (older than an hour) from a cache directory.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let stale = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
            && entry
                .metadata()
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| {
                    now.duration_since(modified)
                        .is_ok_and(|age| age > STALE_TEMP_AGE)
                });
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn sha256(bytes: &[u8]) -> BlobHash {
    BlobHash(Sha256::digest(bytes).into())
}

fn len(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.len()).unwrap_or(u64::MAX)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_removes_userinfo_only() {
        assert_eq!(
            redact("https://user:s3cret@host.example/base/"),
            "https://***@host.example/base/"
        );
        assert_eq!(
            redact("https://host.example/a@b"),
            "https://host.example/a@b"
        );
        assert_eq!(redact("/plain/dir"), "/plain/dir");
    }

    #[test]
    fn mirrors_parse_urls_directories_and_the_environment_list() {
        let given = Mirror::list(&[], Some(" https://a.example/x, file:///srv/tree  /local"))
            .expect("valid list");
        assert_eq!(
            given,
            vec![
                Mirror::Http {
                    url: "https://a.example/x/".to_owned(),
                    shown: "https://a.example/x/".to_owned(),
                    secret: None,
                },
                Mirror::Dir(PathBuf::from("/srv/tree")),
                Mirror::Dir(PathBuf::from("/local")),
            ]
        );
        let cli = Mirror::list(&["http://u:pw@b.example".to_owned()], Some("/ignored"))
            .expect("valid mirror");
        assert_eq!(cli.len(), 1, "the command line wins over the environment");
        assert_eq!(cli[0].to_string(), "http://***@b.example/");
        for bad in [
            "ftp://u:pw@c.example/",
            "file://relative",
            "https://",
            "https://h/?q",
        ] {
            let err = Mirror::parse(bad).expect_err(bad).to_string();
            assert!(!err.contains("pw"), "{err}");
        }
    }

    #[test]
    fn the_cache_dir_follows_the_environment_in_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| std::ffi::OsString::from(value))
            }
        };
        assert_eq!(
            cache_dir_from(env(&[("MACH_NIX_CACHE_DIR", "/c"), ("HOME", "/h")])),
            Some(PathBuf::from("/c"))
        );
        assert_eq!(
            cache_dir_from(env(&[("MACH_NIX_CACHE_DIR", ""), ("XDG_CACHE_HOME", "/x")])),
            Some(PathBuf::from("/x/mach-nix"))
        );
        assert_eq!(
            cache_dir_from(env(&[("HOME", "/h")])),
            Some(PathBuf::from("/h/.cache/mach-nix"))
        );
        assert_eq!(cache_dir_from(env(&[])), None);
    }

    #[test]
    fn stale_temporaries_are_removed_and_fresh_ones_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let stale = dir.path().join(format!("{TEMP_PREFIX}old"));
        let fresh = dir.path().join(format!("{TEMP_PREFIX}new"));
        std::fs::write(&stale, b"half").expect("write");
        std::fs::write(&fresh, b"half").expect("write");
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .expect("open")
            .set_modified(SystemTime::now() - 2 * STALE_TEMP_AGE)
            .expect("age the file");
        remove_stale_temps(dir.path());
        assert!(!stale.exists());
        assert!(fresh.exists(), "a writer may still be filling it");
    }
}
