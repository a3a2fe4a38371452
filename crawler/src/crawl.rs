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

use db_format::types::{PackageName, Version, normalize_version};
use uv_pep508::VerbatimUrl;

type ParsedRequirement = uv_pep508::Requirement<VerbatimUrl>;
use db_format::FileKind;
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use url::Url;

use crate::closure::{Wanted, dependency_keys, split_key};
use crate::extract::remote::{MetadataByHash, Pep658Probe, sdist_outcome, wheel_outcome};
use crate::extract::{EXTRACTOR_VERSION, FileOutcome, Limits, Method, read_again};
use crate::progress::Progress;
use crate::pypi::project::{parse_json_api, parse_simple_page};
use crate::pypi::{Client, Feed, IndexFile, RequestKind, SIMPLE_JSON, Since};
use crate::state::{Extracted, ProjectCommit, State, StoredFile};
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

/// Read a requirements file's projects and the extras it asks of them (`-r` includes are
/// followed).
pub fn requirements_wanted(path: &Path) -> Result<Vec<Wanted>> {
    let text = fs_err::read_to_string(path)?;
    let mut names = Vec::new();
    let mut logical = String::new();
    let mut first_line = 0;
    for (number, raw) in text.lines().enumerate() {
        let line = raw.split(" #").next().unwrap_or_default();
        let line = if line.trim_start().starts_with('#') {
            ""
        } else {
            line
        };
        if logical.is_empty() {
            first_line = number + 1;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            logical.push_str(continued);
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        if let Some(include) = entry
            .strip_prefix("-r ")
            .or_else(|| entry.strip_prefix("--requirement "))
        {
            let included = path.parent().unwrap_or(Path::new(".")).join(include.trim());
            names.extend(requirements_wanted(&included)?);
            continue;
        }
        if entry.starts_with('-') {
            // Options (`--index-url`, `-c`, `--hash` lines) name no project.
            continue;
        }
        let requirement_text = entry.split(" --hash").next().unwrap_or(entry);
        let requirement =
            ParsedRequirement::from_str(requirement_text).map_err(|err| Error::Input {
                file: path.to_path_buf(),
                line: first_line,
                message: format!("not a PEP 508 requirement: {err}"),
            })?;
        names.push(Wanted {
            name: requirement.name,
            extras: requirement.extras.to_vec(),
        });
    }
    Ok(names)
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
        if state.meta("extractor_version")?.as_deref() != Some(version.as_str()) {
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
        let mut progress = Progress::new(self.options.progress_every);
        let mut queue: VecDeque<String> = state.pending(&run)?.into();
        let mut in_flight: HashSet<String> = HashSet::new();
        let mut tasks: JoinSet<(String, ProjectResult)> = JoinSet::new();
        loop {
            while in_flight.len() < self.options.projects_in_flight.max(1) {
                let Some(name) = queue.pop_front() else { break };
                if !in_flight.insert(name.clone()) {
                    continue;
                }
                let row = state.project(&name)?;
                let etag = row
                    .filter(|row| row.status == "ok")
                    .and_then(|row| row.etag);
                let known = state
                    .files(&name)?
                    .into_iter()
                    .filter_map(|file| Some((file.sha256?, file.dependencies?)))
                    .filter(|(_, extracted)| {
                        // with builds on, build what a crawl without them left.
                        let build_now = self.options.builder.is_some()
                            && extracted.method == Method::SdistNeedsBuild.as_str();
                        !(read_again(&extracted.record, extracted.extractor) || build_now)
                    })
                    .collect::<HashMap<_, _>>();
                let crawler = self.clone();
                tasks.spawn(async move {
                    let result = crawler.project(&name, etag, known).await;
                    (name, result)
                });
            }
            let Some(joined) = tasks.join_next().await else {
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
                    report.projects += 1;
                    report.releases += releases;
                    report.files += commit.files.len() as u64;
                    report.files_examined += examined;
                    report.files_reused += reused;
                }
                ProjectResult::Unchanged => {
                    let enqueue = if self.options.with_deps {
                        let extras = state.run_extras(&run, &name)?;
                        self.in_shard(dependency_keys(&state.files(&name)?, &extras))
                    } else {
                        Vec::new()
                    };
                    state.commit_unchanged(&run, &name, &enqueue)?;
                    report.unchanged += 1;
                }
                ProjectResult::Missing(reason) => {
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
                progress.update(done, total, report.releases, self.client.counters());
            }
        }
        let (done, total) = state.run_counts(&run)?;
        progress.finish(done, total, report.releases, self.client.counters());
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
    ) -> ProjectResult {
        match self.project_inner(name, etag, known).await {
            Ok(result) => result,
            Err(err) => ProjectResult::Failed(err.to_string()),
        }
    }

    async fn project_inner(
        &self,
        name: &str,
        etag: Option<String>,
        known: HashMap<[u8; 32], Extracted>,
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
                url: file.url.clone(),
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
            let limits = self.options.limits;
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
        while let Some(joined) = tasks.join_next().await {
            let (at, outcome) =
                joined.map_err(|err| Error::Internal(format!("file task failed: {err}")))?;
            let outcome = outcome?;
            stored[at].dependencies = Some(Extracted {
                record: outcome.record,
                method: outcome.method.as_str().to_string(),
                extractor: EXTRACTOR_VERSION,
            });
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
}
