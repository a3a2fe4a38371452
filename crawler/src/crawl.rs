//! The crawl: which projects, which of their files, and committing each project to the state.
//!
//! Projects are fetched concurrently (each in its own task, its files' metadata fetched
//! concurrently too, all bounded by the client's semaphore) and committed one by one by this
//! loop, which owns the state. `--with-deps` queues the projects a crawled release's
//! requirements name (every marker; extras only when requested, see [`crate::closure`]) in the
//! same transaction that stores the release.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use db_format::FileKind;
use db_format::types::{PackageName, Version, normalize_version};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use url::Url;

use crate::closure::{Wanted, dependency_keys, split_key};
use crate::extract::remote::{MetadataByHash, Pep658Probe, sdist_outcome, wheel_outcome};
use crate::extract::{EXTRACTOR_VERSION, FileOutcome, Limits, Method, read_again};
use crate::progress::Progress;
use crate::pypi::project::{parse_json_api, parse_simple_page};
use crate::pypi::{Client, Feed, IndexFile, RequestKind, SIMPLE_JSON, Since};
use crate::state::{Extracted, ProjectCommit, State, StoredFile, better_record};
use crate::{Error, Result};

/// Which project listing the crawl reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Api {
    /// The PEP 691 JSON simple page (`/simple/NAME/`), with ETags.
    Simple,
    /// The JSON API (`/pypi/NAME/json`).
    Json,
}

/// Which wheels' metadata is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WheelSample {
    /// Every wheel (wheels of one release may disagree).
    All,
    /// One wheel per release (a pure-Python one if any); the others are left unexamined.
    OnePerRelease,
}

/// `--shard i/n`: project `p` belongs to shard `sha256(p) mod n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    pub fn contains(&self, name: &str) -> bool {
        let digest = Sha256::digest(name.as_bytes());
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(head) % self.count == self.index
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| format!("--shard {text:?}: expected I/N, e.g. 0/8"))?;
        let index: u64 = index
            .parse()
            .map_err(|_| format!("--shard {text:?}: I is not a number"))?;
        let count: u64 = count
            .parse()
            .map_err(|_| format!("--shard {text:?}: N is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!("--shard {text:?}: need 0 <= I < N"));
        }
        Ok(Shard { index, count })
    }
}

/// Where a crawl starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Projects (with the extras asked of them, which `--with-deps` follows).
    Packages(Vec<Wanted>),
    All,
    Since(Since, String),
}

/// How a crawl behaves.
#[derive(Debug, Clone)]
pub struct CrawlOptions {
    pub index_url: Url,
    pub api: Api,
    pub as_of: Option<i64>,
    pub with_deps: bool,
    pub shard: Option<Shard>,
    /// Keep only the newest N releases of each project (for measurements).
    pub max_releases: Option<usize>,
    pub wheels: WheelSample,
    pub limits: Limits,
    /// Projects fetched at once.
    pub projects_in_flight: usize,
    pub progress_every: Duration,
    /// `--build-sdists`: sandboxed metadata builds for sdists static reading cannot
    /// tell about; `None` leaves them "unknown".
    pub builder: Option<crate::build::Builder>,
}

/// What a crawl did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CrawlReport {
    pub resumed: bool,
    pub projects: u64,
    pub unchanged: u64,
    pub failed: Vec<(String, String)>,
    pub missing: Vec<String>,
    pub releases: u64,
    pub files: u64,
    pub files_examined: u64,
    pub files_reused: u64,
    /// Projects crawled before whose page was read again in full because the index sent no
    /// ETag for it (so it could not answer 304 Not Modified).
    pub reread_without_etag: u64,
}

/// The outcome of one project's task.
enum ProjectResult {
    Crawled {
        commit: ProjectCommit,
        releases: u64,
        examined: u64,
        reused: u64,
    },
    Unchanged,
    Missing(String),
    Failed(String),
}

/// A digest of everything that decides what a run does, so the same command resumes it.
pub fn run_key(start: &Start, options: &CrawlOptions) -> String {
    let start = match start {
        Start::Packages(wanted) => {
            let keys: BTreeSet<String> = wanted.iter().flat_map(Wanted::keys).collect();
            format!("packages:{keys:?}")
        }
        Start::All => "all".to_string(),
        Start::Since(_, text) => format!("since:{text}"),
    };
    let text = format!(
        "{start}|{}|{:?}|{:?}|{:?}|{}|{:?}|{:?}|{:?}",
        options.index_url,
        options.api,
        options.as_of,
        options.with_deps,
        options
            .shard
            .map(|s| (s.index, s.count))
            .unwrap_or((0, 1))
            .0,
        options.shard.map(|s| s.count),
        options.max_releases,
        options.wheels,
    );
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Read a requirements file's projects and the extras it asks of them, with the resolver's own
/// parser and rules (`mach-nix-requirements`): every include spelling is followed, and what the
/// resolver would refuse (`-e`, unknown options, VCS URLs) is refused here too, never skipped.
/// `-c` constraints name no project to crawl.
pub fn requirements_wanted(path: &Path) -> Result<Vec<Wanted>> {
    let file = mach_nix_requirements::read_requirements_txt(path)?;
    Ok(file
        .requirements
        .into_iter()
        .map(|entry| Wanted {
            name: entry.requirement.name,
            extras: entry.requirement.extras.to_vec(),
        })
        .collect())
}

/// Names listed in a root index page: PEP 691 JSON, or the HTML of PEP 503.
pub fn root_index_names(body: &[u8]) -> Vec<PackageName> {
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) {
        return doc["projects"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|project| project["name"].as_str())
            .filter_map(|name| PackageName::from_str(name).ok())
            .collect();
    }
    let text = String::from_utf8_lossy(body);
    text.split("<a ")
        .skip(1)
        .filter_map(|anchor| {
            let inner = anchor.split_once('>')?.1;
            let name = inner.split_once("</a>")?.0;
            PackageName::from_str(name.trim()).ok()
        })
        .collect()
}

/// Everything a crawl needs besides the state.
#[derive(Debug, Clone)]
pub struct Crawler {
    pub client: Client,
    pub feed: Feed,
    pub options: CrawlOptions,
    pub pep658: std::sync::Arc<Pep658Probe>,
}

impl Crawler {
    async fn seeds(&self, state: &State, start: &Start) -> Result<(Vec<String>, Option<u64>)> {
        let in_shard = |key: &String| {
            let (name, _) = split_key(key);
            self.options.shard.is_none_or(|shard| shard.contains(name))
        };
        let (names, watermark): (Vec<String>, Option<u64>) = match start {
            Start::Packages(wanted) => (wanted.iter().flat_map(Wanted::keys).collect(), None),
            Start::All => {
                let url = join(&self.options.index_url, "simple/")?;
                let response = self
                    .client
                    .get(
                        RequestKind::Feed,
                        &url,
                        &[("accept", format!("{SIMPLE_JSON}, text/html;q=0.1"))],
                        1 << 30,
                    )
                    .await?
                    .expect_ok(&url)?;
                let names = root_index_names(&response.body);
                (
                    names.into_iter().map(|name| name.to_string()).collect(),
                    None,
                )
            }
            Start::Since(since, _) => {
                let serials = state.serials()?;
                let watermark = state
                    .meta("watermark")?
                    .and_then(|value| value.parse::<u64>().ok());
                let known = |name: &PackageName| serials.get(name.as_str()).copied();
                let changes = self.feed.changes(*since, watermark, &known).await?;
                (
                    changes
                        .projects
                        .keys()
                        .map(|name| name.to_string())
                        .collect(),
                    Some(changes.serial),
                )
            }
        };
        Ok((names.into_iter().filter(in_shard).collect(), watermark))
    }

    /// Crawl into `state`, resuming an unfinished run of the same command.
    pub async fn crawl(&self, state: &mut State, start: &Start) -> Result<CrawlReport> {
        check_as_of(state, self.options.as_of)?;
        // A new extractor may know what an old one did not: read every page again once.
        // turning sdist builds on is a new extractor too (pages of unchanged projects
        // must be read again for their sdists to be built).
        let builds = if self.options.builder.is_some() {
            "+build"
        } else {
            ""
        };
        let version = format!("{EXTRACTOR_VERSION}{builds}");
        let previous = state.meta("extractor_version")?;
        let etags_forgotten = previous.as_deref() != Some(version.as_str());
        if etags_forgotten {
            if let Some(previous) = previous {
                tracing::info!(
                    "extractor {previous} -> {version}: every project page is read again once"
                );
            }
            state.forget_etags()?;
            state.set_meta("extractor_version", &version)?;
        }
        let key = run_key(start, &self.options);
        // Seeds may need the network; fetch them first, then begin the run with them.
        let resumable = state.pending_run_exists(&key)?;
        let seeds = if resumable {
            None
        } else {
            Some(self.seeds(state, start).await?)
        };
        let run = state.begin_run(&key, || Ok(seeds.unwrap_or_default()))?;
        let mut report = CrawlReport {
            resumed: run.resumed,
            ..CrawlReport::default()
        };
        let mut progress = Progress::new(self.options.progress_every, self.options.with_deps);
        let (done, total) = state.run_counts(&run)?;
        progress.update(done, total, 0, self.client.counters(), &HashSet::new());
        // The heartbeat while projects run: requests, bytes/s, projects in flight.
        let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // Projects crawled before with no ETag stored: a full read is no news of a change.
        let mut without_etag: HashSet<String> = HashSet::new();
        let mut queue: VecDeque<String> = state.pending(&run)?.into();
        let mut in_flight: HashSet<String> = HashSet::new();
        let mut tasks: JoinSet<(String, ProjectResult)> = JoinSet::new();
        let (partial_sender, mut partial_receiver) = tokio::sync::mpsc::unbounded_channel();
        loop {
            while in_flight.len() < self.options.projects_in_flight.max(1) {
                let Some(name) = queue.pop_front() else { break };
                if !in_flight.insert(name.clone()) {
                    continue;
                }
                let row = state.project(&name)?;
                if !etags_forgotten
                    && row
                        .as_ref()
                        .is_some_and(|row| row.status == "ok" && row.etag.is_none())
                {
                    without_etag.insert(name.clone());
                }
                let etag = row
                    .filter(|row| row.status == "ok")
                    .and_then(|row| row.etag);
                // What is known of the project's files: their stored records, and those
                // examined before an earlier run of this crawl was stopped (the better of
                // the two where both exist).
                let mut known: HashMap<[u8; 32], Extracted> = HashMap::new();
                let stored = state
                    .files(&name)?
                    .into_iter()
                    .filter_map(|file| Some((file.sha256?, file.dependencies?)));
                for (sha256, extracted) in stored.chain(state.partial(&name)?) {
                    let better = better_record(known.remove(&sha256), Some(extracted));
                    known.extend(better.map(|extracted| (sha256, extracted)));
                }
                let known = known
                    .into_iter()
                    .filter(|(_, extracted)| {
                        // with builds on, build what a crawl without them left.
                        let build_now = self.options.builder.is_some()
                            && extracted.method == Method::SdistNeedsBuild.as_str();
                        !(read_again(&extracted.record, extracted.extractor) || build_now)
                    })
                    .collect::<HashMap<_, _>>();
                let crawler = self.clone();
                let partial = partial_sender.clone();
                tasks.spawn(async move {
                    let result = crawler.project(&name, etag, known, partial).await;
                    (name, result)
                });
            }
            // Keep the partial progress of projects still in flight while waiting for one to
            // finish; a finished project's last batches are in the channel before its result.
            let joined = loop {
                tokio::select! {
                    biased;
                    Some((name, records)) = partial_receiver.recv() => {
                        state.save_partial(&name, &records)?;
                    }
                    joined = tasks.join_next() => break joined,
                    _ = heartbeat.tick() => {
                        progress.tick(report.releases, self.client.counters(), &in_flight);
                    }
                }
            };
            while let Ok((name, records)) = partial_receiver.try_recv() {
                state.save_partial(&name, &records)?;
            }
            let Some(joined) = joined else {
                queue = state.pending(&run)?.into();
                if queue.is_empty() {
                    break;
                }
                continue;
            };
            let (name, result) =
                joined.map_err(|err| Error::Internal(format!("project task failed: {err}")))?;
            in_flight.remove(&name);
            match result {
                ProjectResult::Crawled {
                    mut commit,
                    releases,
                    examined,
                    reused,
                } => {
                    if self.options.with_deps {
                        let extras = state.run_extras(&run, &name)?;
                        commit.enqueue = self.in_shard(dependency_keys(&commit.files, &extras));
                    }
                    state.commit_project(Some(&run), &commit)?;
                    tracing::debug!(
                        project = %name,
                        "crawled: {releases} releases, {} files ({examined} examined, {reused} reused)",
                        commit.files.len()
                    );
                    report.projects += 1;
                    report.releases += releases;
                    report.files += commit.files.len() as u64;
                    report.files_examined += examined;
                    report.files_reused += reused;
                    report.reread_without_etag += u64::from(without_etag.remove(&name));
                }
                ProjectResult::Unchanged => {
                    let enqueue = if self.options.with_deps {
                        let extras = state.run_extras(&run, &name)?;
                        self.in_shard(dependency_keys(&state.files(&name)?, &extras))
                    } else {
                        Vec::new()
                    };
                    state.commit_unchanged(&run, &name, &enqueue)?;
                    tracing::debug!(project = %name, "unchanged (304 to its ETag)");
                    report.unchanged += 1;
                }
                ProjectResult::Missing(reason) => {
                    tracing::debug!(project = %name, "missing: {reason}");
                    state.commit_failure(&run, &name, "missing", &reason)?;
                    report.missing.push(name.clone());
                }
                ProjectResult::Failed(error) => {
                    tracing::warn!(project = %name, "failed: {error}");
                    state.commit_failure(&run, &name, "failed", &error)?;
                    report.failed.push((name.clone(), error));
                }
            }
            if queue.is_empty() {
                queue = state
                    .pending(&run)?
                    .into_iter()
                    .filter(|name| !in_flight.contains(name))
                    .collect();
            }
            // Counting the queue costs a scan: only when a report is due.
            if progress.due() {
                let (done, total) = state.run_counts(&run)?;
                progress.update(
                    done,
                    total,
                    report.releases,
                    self.client.counters(),
                    &in_flight,
                );
            }
        }
        progress.finish();
        state.finish_run(&run)?;
        Ok(report)
    }

    /// Keep the queue keys whose project is in this crawl's shard.
    fn in_shard(&self, keys: Vec<String>) -> Vec<String> {
        keys.into_iter()
            .filter(|key| {
                let (name, _) = split_key(key);
                self.options.shard.is_none_or(|shard| shard.contains(name))
            })
            .collect()
    }

    async fn project(
        &self,
        name: &str,
        etag: Option<String>,
        known: HashMap<[u8; 32], Extracted>,
        partial: PartialSender,
    ) -> ProjectResult {
        match self.project_inner(name, etag, known, partial).await {
            Ok(result) => result,
            // Logged, stored and reported: no credentials, even from a URL a page gave.
            Err(err) => ProjectResult::Failed(crate::pypi::client::redact_text(&err.to_string())),
        }
    }

    async fn project_inner(
        &self,
        name: &str,
        etag: Option<String>,
        known: HashMap<[u8; 32], Extracted>,
        partial: PartialSender,
    ) -> Result<ProjectResult> {
        let package =
            PackageName::from_str(name).map_err(|err| Error::Usage(format!("{name}: {err}")))?;
        let (url, accept) = match self.options.api {
            Api::Simple => (
                join(&self.options.index_url, &format!("simple/{name}/"))?,
                SIMPLE_JSON,
            ),
            Api::Json => (
                join(&self.options.index_url, &format!("pypi/{name}/json"))?,
                "application/json",
            ),
        };
        let mut headers = vec![("accept", accept.to_string())];
        if let Some(etag) = etag {
            headers.push(("if-none-match", etag));
        }
        let response = self
            .client
            .get(RequestKind::Page, &url, &headers, 256 << 20)
            .await?;
        match response.status {
            200 => {}
            304 => return Ok(ProjectResult::Unchanged),
            404 | 410 => {
                return Ok(ProjectResult::Missing(format!(
                    "{url}: HTTP {}",
                    response.status
                )));
            }
            status => {
                return Ok(ProjectResult::Failed(format!("{url}: HTTP {status}")));
            }
        }
        let new_etag = response.header("etag").map(str::to_string);
        let page = match self.options.api {
            Api::Simple => parse_simple_page(&package, &url, &response.body),
            Api::Json => parse_json_api(&package, &url, &response.body),
        }
        .map_err(|reason| Error::InvalidResponse {
            url: url.to_string(),
            reason,
        })?;
        let files = self.select_files(page.files);
        for file in &files {
            if let Ok(url) = Url::parse(&file.url) {
                self.client.trust_host_of(&url);
            }
        }
        let releases = files
            .iter()
            .map(|file| file.version.as_str())
            .collect::<BTreeSet<_>>()
            .len() as u64;
        let examine = self.files_to_examine(&files);
        let mut stored: Vec<StoredFile> = Vec::with_capacity(files.len());
        let mut tasks: JoinSet<(usize, Result<FileOutcome>)> = JoinSet::new();
        let mut reused = 0;
        let metadata = std::sync::Arc::new(MetadataByHash::default());
        for (at, file) in files.iter().enumerate() {
            stored.push(StoredFile {
                filename: file.filename.clone(),
                version: normalize_version(&file.version).unwrap_or_else(|| file.version.clone()),
                kind: file.kind,
                size: file.size,
                sha256: file.sha256,
                upload_time: file.upload_time,
                yanked: file.yanked.clone(),
                requires_python: file.requires_python.clone(),
                url: stored_url(&file.url)?,
                dependencies: None,
            });
            if !examine.contains(&at) {
                continue;
            }
            if let Some(outcome) = file.sha256.and_then(|hash| known.get(&hash)) {
                stored[at].dependencies = Some(outcome.clone());
                reused += 1;
                continue;
            }
            let client = self.client.clone();
            let limits = Limits {
                max_download_bytes: download_limit(
                    self.options.limits.max_download_bytes,
                    file.size,
                ),
                ..self.options.limits
            };
            let file = file.clone();
            let probe = self.pep658.clone();
            let metadata = metadata.clone();
            let builder = self.options.builder.clone();
            tasks.spawn(async move {
                let outcome = match file.kind {
                    FileKind::Wheel => {
                        wheel_outcome(&client, &file, &limits, &probe, &metadata).await
                    }
                    _ => sdist_outcome(&client, &file, &limits, builder.as_ref()).await,
                };
                (at, outcome)
            });
        }
        let mut examined = 0;
        let mut batch = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (at, outcome) =
                joined.map_err(|err| Error::Internal(format!("file task failed: {err}")))?;
            let outcome = outcome?;
            let extracted = Extracted {
                record: outcome.record,
                method: outcome.method.as_str().to_string(),
                extractor: EXTRACTOR_VERSION,
            };
            if let Some(sha256) = stored[at].sha256 {
                batch.push((sha256, extracted.clone()));
            }
            if batch.len() >= PARTIAL_BATCH {
                // The receiver lives as long as the crawl loop that awaits this task.
                let _ = partial.send((name.to_string(), std::mem::take(&mut batch)));
            }
            stored[at].dependencies = Some(extracted);
            examined += 1;
        }
        Ok(ProjectResult::Crawled {
            commit: ProjectCommit {
                name: name.to_string(),
                last_serial: page.last_serial,
                etag: new_etag,
                files: stored,
                enqueue: Vec::new(),
            },
            releases,
            examined,
            reused,
        })
    }

    /// Apply `--as-of` and `--max-releases`.
    fn select_files(&self, files: Vec<IndexFile>) -> Vec<IndexFile> {
        let mut files: Vec<IndexFile> = match self.options.as_of {
            Some(as_of) => files
                .into_iter()
                .filter(|file| file.upload_time.is_some_and(|time| time < as_of))
                .collect(),
            None => files,
        };
        if let Some(keep) = self.options.max_releases {
            let mut versions: Vec<(Option<Version>, String)> = files
                .iter()
                .map(|file| file.version.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(|version| (Version::from_str(&version).ok(), version))
                .collect();
            // Newest first: parseable versions descending, legacy ones after.
            versions.sort_by(|(a, sa), (b, sb)| (b.is_some(), b, sb).cmp(&(a.is_some(), a, sa)));
            let kept: HashSet<String> = versions.into_iter().take(keep).map(|(_, v)| v).collect();
            files.retain(|file| kept.contains(&file.version));
        }
        files
    }

    /// Indices of the files whose metadata is read.
    fn files_to_examine(&self, files: &[IndexFile]) -> HashSet<usize> {
        let mut chosen = HashSet::new();
        let mut wheel_of_release: HashMap<&str, usize> = HashMap::new();
        for (at, file) in files.iter().enumerate() {
            match file.kind {
                FileKind::Sdist => {
                    chosen.insert(at);
                }
                FileKind::Wheel if self.options.wheels == WheelSample::All => {
                    chosen.insert(at);
                }
                FileKind::Wheel => {
                    let pure = file.filename.ends_with("-none-any.whl");
                    let better = wheel_of_release
                        .get(file.version.as_str())
                        .is_none_or(|&best| {
                            let best_pure = files[best].filename.ends_with("-none-any.whl");
                            (pure, std::cmp::Reverse(&file.filename))
                                > (best_pure, std::cmp::Reverse(&files[best].filename))
                        });
                    if better {
                        wheel_of_release.insert(&file.version, at);
                    }
                }
                FileKind::Other => {}
            }
        }
        chosen.extend(wheel_of_release.into_values());
        chosen
    }
}

/// Files examined per partial commit of a project (see [`State::save_partial`]).
const PARTIAL_BATCH: usize = 16;

/// Where a project's task sends the records it examined so far.
type PartialSender = tokio::sync::mpsc::UnboundedSender<(String, Vec<([u8; 32], Extracted)>)>;

/// Bytes a download may exceed the size the index declares by, before it is cut off.
const DECLARED_SIZE_SLACK: u64 = 64 << 10;

/// The most bytes read of a file the index says has `declared` bytes: that plus a little
/// slack (a hostile or broken server cannot make the crawler read more), never over `limit`.
fn download_limit(limit: u64, declared: u64) -> u64 {
    limit.min(declared.saturating_add(DECLARED_SIZE_SLACK))
}

/// A file URL as the state stores it (and the snapshot publishes it): without userinfo, which
/// the client adds per host from [`crate::pypi::client::Credentials`].
fn stored_url(url: &str) -> Result<String> {
    Url::parse(url)
        .map(|url| crate::pypi::client::without_credentials(&url).to_string())
        .map_err(|err| Error::Url {
            url: crate::pypi::client::redact_text(url),
            reason: err.to_string(),
        })
}

fn join(base: &Url, path: &str) -> Result<Url> {
    base.join(path).map_err(|err| Error::Url {
        url: format!("{base}{path}"),
        reason: err.to_string(),
    })
}

/// A state holds one `--as-of` view of PyPI: mixing cutoffs would mix two pictures.
fn check_as_of(state: &mut State, as_of: Option<i64>) -> Result<()> {
    let wanted = as_of
        .map(|time| time.to_string())
        .unwrap_or_else(|| "none".into());
    match state.meta("as_of")? {
        Some(stored) if stored != wanted => Err(Error::Usage(format!(
            "the state in {} was crawled with --as-of {stored}, not {wanted}: use another --state",
            state.path().display()
        ))),
        Some(_) => Ok(()),
        None => state.set_meta("as_of", &wanted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_names() {
        let shards: Vec<Shard> = (0..4).map(|index| Shard { index, count: 4 }).collect();
        for name in ["requests", "six", "zope-interface", "a", "b", "c"] {
            assert_eq!(
                shards.iter().filter(|shard| shard.contains(name)).count(),
                1
            );
        }
        assert!("1/0".parse::<Shard>().is_err());
        assert!("4/4".parse::<Shard>().is_err());
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
    }

    #[test]
    fn root_index_names_from_json_and_html() {
        let json = br#"{"meta":{"_last-serial":3},"projects":[{"name":"Zope.Interface","_last-serial":1}]}"#;
        assert_eq!(root_index_names(json)[0].as_str(), "zope-interface");
        let html = b"<html><body><a href=\"/simple/six/\">six</a>\n<a href=\"/simple/pdfminer-six/\">pdfminer.six</a></body></html>";
        let names: Vec<String> = root_index_names(html)
            .into_iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["six", "pdfminer-six"]);
    }

    #[test]
    fn requirements_files_name_projects_with_line_numbers_on_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("base.txt");
        fs_err::write(&base, "six==1.16.0\n").expect("writes");
        let main = dir.path().join("requirements.txt");
        fs_err::write(
            &main,
            "# comment\n-r base.txt\nrequests[socks]>=2 ; python_version > '3'\n--index-url x\nZope.Interface \\\n  >=5\n",
        )
        .expect("writes");
        let keys: Vec<String> = requirements_wanted(&main)
            .expect("parses")
            .iter()
            .flat_map(Wanted::keys)
            .collect();
        assert_eq!(
            keys,
            ["six", "requests", "requests[socks]", "zope-interface"]
        );
        fs_err::write(&main, "ok\nnot a (valid requirement\n").expect("writes");
        let err = requirements_wanted(&main).expect_err("invalid");
        assert!(err.to_string().contains("requirements.txt:2:"), "{err}");
    }

    // Regression: `-rF` and `--requirement=F` includes were skipped (their projects were never
    // crawled), an include cycle overflowed the stack, and `-e` lines were dropped silently.
    #[test]
    fn requirements_files_are_read_with_the_resolvers_rules() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs_err::write(dir.path().join("a.txt"), "six\n").expect("writes");
        fs_err::write(dir.path().join("b.txt"), "attrs\n").expect("writes");
        fs_err::write(dir.path().join("c.txt"), "idna<4\n").expect("writes");
        let main = dir.path().join("requirements.txt");
        fs_err::write(&main, "-ra.txt\n--requirement=b.txt\n-c c.txt\nflask\n").expect("writes");
        let keys: Vec<String> = requirements_wanted(&main)
            .expect("parses")
            .iter()
            .flat_map(Wanted::keys)
            .collect();
        assert_eq!(keys, ["six", "attrs", "flask"]);
        fs_err::write(dir.path().join("a.txt"), "-r requirements.txt\n").expect("writes");
        let err = requirements_wanted(&main).expect_err("cycle");
        assert!(err.to_string().contains("includes itself"), "{err}");
        fs_err::write(&main, "six\n-e ./local\n").expect("writes");
        let err = requirements_wanted(&main).expect_err("editable");
        assert!(
            err.to_string()
                .contains("requirements.txt:2: the option -e is not supported"),
            "{err}"
        );
    }
}
