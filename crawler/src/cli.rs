//! The command line: `crawl`, `publish-db`, `merge-state` and `stats`.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use db_format::types::PackageName;
use url::Url;

use crate::closure::{Wanted, split_key};
use crate::crawl::{
    Api, CrawlOptions, CrawlReport, Crawler, Shard, Start, WheelSample, requirements_wanted,
};
use crate::extract::Limits;
use crate::pypi::client::{Credentials, INSECURE, redact_url, secure_enough, without_credentials};
use crate::pypi::{Client, ClientOptions, Counters, Feed, FeedChoice, RequestKind, Since};
use crate::state::State;
use crate::{Error, Result};

#[derive(Debug, Parser)]
#[command(
    name = "mach-nix-crawler",
    version,
    about = "Crawl PyPI into a resumable state and publish mach-nix snapshots",
    after_help = "Exit codes: 0 ok, 1 error, 2 usage error, 3 requested projects the index does not have."
)]
pub struct Cli {
    /// Less output: `-q` only warnings, `-qq` only errors (`RUST_LOG` overrides both flags).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
    /// More output: `-v` the crawler's debug lines (one per project, retries), `-vv` also the
    /// HTTP stack's, `-vvv` everything.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch projects from the index into the state.
    Crawl(Box<CrawlArgs>),
    /// Write the state as a snapshot into the published tree OUT (`manifests/`, `shards/`),
    /// add it to `OUT/index.json` and point `OUT/latest` at it.
    PublishDb {
        /// The crawl state directory to publish (made by `crawl`).
        #[arg(long)]
        state: PathBuf,
        /// The snapshot directory: `<sha256>.mnxdb` files, `index.json` and `latest`.
        #[arg(long)]
        out: PathBuf,
        /// Also write the whole snapshot as one file, `OUT/packs/<sha256>.mnxpack`.
        #[arg(long)]
        pack: bool,
        /// Move `latest` even to a snapshot with far fewer projects or files than the previous.
        #[arg(long)]
        allow_shrink: bool,
    },
    /// Merge shard states into one.
    MergeState {
        /// The state to merge into (created if missing).
        #[arg(long)]
        state: PathBuf,
        /// A shard state to merge from (repeatable).
        #[arg(long = "from", required = true)]
        from: Vec<PathBuf>,
    },
    /// Print what the state holds: files by kind, extraction method and record source (JSON).
    Stats {
        /// The crawl state directory to describe.
        #[arg(long)]
        state: PathBuf,
    },
    /// Print a shell completion script for this command line.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of this command line.
    Man,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("start").multiple(false).args(["packages", "packages_file", "requirements", "all", "since"]))]
pub struct CrawlArgs {
    /// The crawl state directory.
    #[arg(long)]
    pub state: PathBuf,
    /// Projects to crawl, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub packages: Vec<String>,
    /// A file with one project name per line (`#` comments).
    #[arg(long)]
    pub packages_file: Option<PathBuf>,
    /// A requirements file whose projects start the crawl.
    #[arg(short = 'r', long)]
    pub requirements: Option<PathBuf>,
    /// Every project of the index (its root listing).
    #[arg(long)]
    pub all: bool,
    /// Only projects changed since `yesterday`, a date/time (RFC 3339 or YYYY-MM-DD) or a serial.
    #[arg(long)]
    pub since: Option<String>,
    /// The change source for `--since`.
    #[arg(long, value_enum, default_value = "auto")]
    pub feed: FeedChoice,
    /// Follow the dependencies of crawled releases transitively: every marker, and the
    /// requirements of an extra when a root or a followed requirement asks for that extra.
    #[arg(long)]
    pub with_deps: bool,
    /// Keep only files uploaded before this time (RFC 3339, YYYY-MM-DD or unix seconds).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Crawl only shard I of N (projects split by the hash of their name).
    #[arg(long)]
    pub shard: Option<Shard>,
    /// The package index. Credentials may be given here (`https://user:password@host/`), in
    /// `MACH_NIX_INDEX_USERNAME`/`MACH_NIX_INDEX_PASSWORD` or `MACH_NIX_INDEX_TOKEN`, or in
    /// `~/.netrc` (or `$NETRC`); they are sent to the index's host only and never stored.
    #[arg(long, default_value = "https://pypi.org")]
    pub index_url: Url,
    /// Allow plain `http://` index and file URLs on hosts other than loopback ones.
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// Which project listing to read.
    #[arg(long, value_enum, default_value = "simple")]
    pub api: Api,
    /// Which wheels' metadata to read.
    #[arg(long, value_enum, default_value = "all")]
    pub wheels: WheelSample,
    /// Keep only the newest N releases of each project.
    #[arg(long)]
    pub max_releases: Option<usize>,
    /// Most HTTP requests in flight (1 to 64).
    #[arg(long, default_value_t = 16, allow_negative_numbers = true, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Most requests started per second (0: unlimited; else 0.01 to 10000).
    #[arg(long, default_value_t = 20.0, allow_negative_numbers = true, value_parser = parse_rate)]
    pub rate: f64,
    /// Projects fetched at once (1 to 1024).
    #[arg(long, default_value_t = 8, allow_negative_numbers = true, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub projects_in_flight: u16,
    /// Timeout of one request attempt, in seconds (0.1 to 3600).
    #[arg(long, default_value_t = 60.0, allow_negative_numbers = true, value_parser = parse_timeout)]
    pub timeout: f64,
    /// Retries after a failed attempt (0 to 100).
    #[arg(long, default_value_t = 5, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub retries: u32,
    /// The first retry's backoff in milliseconds, doubled each time (0 to 600000).
    #[arg(long, default_value_t = 500, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub backoff_ms: u64,
    /// Seconds between progress lines when not on a terminal (1 to 86400).
    #[arg(long, default_value_t = 10, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub progress_every: u64,
    /// Write the crawl report (with request and byte counts) as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Conda channel subdirs to fetch (`CHANNEL/SUBDIR`, repeatable or comma separated, e.g.
    /// `intel/linux-64`). Without a PyPI selection only the channels are crawled.
    #[arg(long, value_delimiter = ',')]
    pub conda: Vec<String>,
    /// Where conda channels are fetched from (`URL/CHANNEL/SUBDIR/repodata.json`).
    #[arg(long, default_value = crate::conda::DEFAULT_BASE_URL)]
    pub conda_url: Url,
    /// Fetch `current_repodata.json` (the newest version of each package) instead of the full
    /// `repodata.json`.
    #[arg(long)]
    pub conda_current: bool,
    /// Build the metadata of sdists whose dependencies static reading cannot tell, in a sandbox
    /// (bubblewrap; `scripts/install-sandbox.sh`), with build requirements from the index.
    #[arg(long)]
    pub build_sdists: bool,
    /// Most sandboxed sdist builds at once (with `--build-sdists`).
    #[arg(long, default_value_t = 2, allow_negative_numbers = true, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub build_concurrency: u16,
}

/// The sandboxed sdist builder of `--build-sdists`: build requirements from the crawled
/// index's simple API, build environments cached in the system's temporary directory.
fn sdist_builder(args: &CrawlArgs, index_url: &Url) -> Result<Option<crate::build::Builder>> {
    if !args.build_sdists {
        return Ok(None);
    }
    let simple = index_url
        .join("simple/")
        .map_err(|err| Error::Usage(format!("--index-url: {err}")))?;
    let options = crate::build::BuildOptions::new(
        crate::build::WheelSource::Index(simple.to_string()),
        std::env::temp_dir().join("mach-nix-build-envs"),
    );
    crate::build::Builder::new(options, usize::from(args.build_concurrency))
        .map(Some)
        .map_err(|err| Error::Usage(format!("--build-sdists: {err}")))
}

/// A decimal number within `range`, for `--timeout` and `--rate`: finite, so neither `inf`,
/// `NaN` nor `1e300` reaches `Duration` (which panics on them).
fn bounded_float(text: &str, range: std::ops::RangeInclusive<f64>) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if !value.is_finite() || !range.contains(&value) {
        return Err(format!(
            "{text:?} is out of range: expected {} to {}",
            range.start(),
            range.end()
        ));
    }
    Ok(value)
}

/// `--timeout`: seconds, 0.1 to one hour.
fn parse_timeout(text: &str) -> Result<f64, String> {
    bounded_float(text, 0.1..=3600.0)
}

/// `--rate`: 0 (unlimited) or 0.01 to 10000 requests per second.
fn parse_rate(text: &str) -> Result<f64, String> {
    let rate = bounded_float(text, 0.0..=10_000.0)?;
    if rate != 0.0 && rate < 0.01 {
        return Err(format!(
            "{text:?} is out of range: expected 0 (unlimited) or 0.01 to 10000"
        ));
    }
    Ok(rate)
}

/// `$NETRC`, else `~/.netrc`, if there is one.
fn netrc() -> Result<Option<netrc::Netrc>> {
    let Some(path) = netrc::Netrc::get_file() else {
        return Ok(None);
    };
    netrc::Netrc::from_file(&path)
        .map(Some)
        .map_err(|err| Error::Input {
            file: path,
            line: 0,
            message: format!("not a readable netrc file: {err}"),
        })
}

/// Parse a time: RFC 3339, `YYYY-MM-DD` (midnight UTC) or unix seconds.
pub fn parse_time(text: &str) -> Result<i64> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    if let Ok(date) = jiff::civil::Date::from_str(text)
        && let Ok(zoned) = date.to_zoned(jiff::tz::TimeZone::UTC)
    {
        return Ok(zoned.timestamp().as_second());
    }
    crate::pypi::project::parse_time(text).map_err(|err| {
        Error::Usage(format!(
            "{err}: expected RFC 3339, YYYY-MM-DD or unix seconds"
        ))
    })
}

/// Parse `--since`: `yesterday`, a serial (a bare number), or a time.
pub fn parse_since(text: &str, now: i64) -> Result<Since> {
    if text == "yesterday" {
        return Ok(Since::Time(now - 86_400));
    }
    if let Ok(serial) = text.parse::<u64>() {
        return Ok(Since::Serial(serial));
    }
    parse_time(text).map(Since::Time)
}

fn names_file(path: &PathBuf) -> Result<Vec<PackageName>> {
    let text = fs_err::read_to_string(path)?;
    let mut names = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        names.push(PackageName::from_str(line).map_err(|err| Error::Input {
            file: path.clone(),
            line: number + 1,
            message: format!("not a project name: {err}"),
        })?);
    }
    Ok(names)
}

fn start_of(args: &CrawlArgs) -> Result<Start> {
    let mut names = Vec::new();
    for name in &args.packages {
        names.push(Wanted::project(
            PackageName::from_str(name.trim())
                .map_err(|err| Error::Usage(format!("--packages {name:?}: {err}")))?,
        ));
    }
    if let Some(path) = &args.packages_file {
        names.extend(names_file(path)?.into_iter().map(Wanted::project));
    }
    if let Some(path) = &args.requirements {
        names.extend(requirements_wanted(path)?);
    }
    let chosen = [!names.is_empty(), args.all, args.since.is_some()]
        .into_iter()
        .filter(|&given| given)
        .count();
    if chosen != 1 {
        return Err(Error::Usage(
            "give exactly one of --packages/--packages-file/--requirements, --all, --since".into(),
        ));
    }
    if args.all {
        return Ok(Start::All);
    }
    if let Some(since) = &args.since {
        let now = jiff::Timestamp::now().as_second();
        return Ok(Start::Since(parse_since(since, now)?, since.clone()));
    }
    names.sort();
    names.dedup();
    Ok(Start::Packages(names))
}

async fn crawl(args: CrawlArgs) -> Result<()> {
    // conda: `--conda` without a PyPI selection crawls only the channels.
    let pypi_selected = !args.packages.is_empty()
        || args.packages_file.is_some()
        || args.requirements.is_some()
        || args.all
        || args.since.is_some();
    let start = if args.conda.is_empty() || pypi_selected {
        Some(start_of(&args)?)
    } else {
        None
    };
    if !args.conda_url.username().is_empty() {
        return Err(Error::Usage(format!(
            "--conda-url {}: put credentials in ~/.netrc, not in the URL",
            redact_url(&args.conda_url)
        )));
    }
    let credentials = Credentials::new(
        &args.index_url,
        |name| std::env::var(name).ok(),
        netrc()?.as_ref(),
    );
    let client = Client::new(ClientOptions {
        credentials,
        allow_insecure_http: args.allow_insecure_http,
        concurrency: usize::from(args.concurrency),
        requests_per_second: Some(args.rate).filter(|rate| *rate > 0.0),
        timeout: Duration::from_secs_f64(args.timeout),
        retries: args.retries,
        backoff: Duration::from_millis(args.backoff_ms),
        ..ClientOptions::default()
    })?;
    let mut index_url = without_credentials(&args.index_url);
    if !index_url.path().ends_with('/') {
        index_url.set_path(&format!("{}/", index_url.path()));
    }
    // A plain-HTTP index is a mistake of the command, not of one project: refuse it at once.
    if !secure_enough(&index_url, args.allow_insecure_http) {
        return Err(Error::Usage(format!(
            "--index-url {}: {INSECURE}",
            redact_url(&index_url)
        )));
    }
    client.trust_host_of(&index_url);
    // `crawl` creates the state (also for channels only, so `publish-db` finds it) and holds
    // its lock while the channels are fetched into its directory too.
    let mut state = State::open(&args.state)?;
    // conda: the channels' repodata, then the PyPI crawl if one was asked for.
    if !args.conda.is_empty() {
        let index = if args.conda_current {
            crate::conda::Index::Current
        } else {
            crate::conda::Index::Full
        };
        crate::conda::crawl_targets(&client, &args.conda_url, &args.state, &args.conda, index)
            .await?;
    }
    let Some(start) = start else {
        return Ok(());
    };
    let feed = Feed::new(&client, &index_url, args.feed)?;
    let builder = sdist_builder(&args, &index_url)?;
    let crawler = Crawler {
        client: client.clone(),
        feed,
        options: CrawlOptions {
            index_url,
            api: args.api,
            as_of: args.as_of.as_deref().map(parse_time).transpose()?,
            with_deps: args.with_deps,
            shard: args.shard,
            max_releases: args.max_releases,
            wheels: args.wheels,
            limits: Limits::default(),
            projects_in_flight: usize::from(args.projects_in_flight),
            progress_every: Duration::from_secs(args.progress_every),
            builder,
        },
        pep658: Default::default(),
    };
    let started = std::time::Instant::now();
    let report = crawler.crawl(&mut state, &start).await?;
    let requested_missing = requested_missing(&start, &report.missing, &state)?;
    let seconds = started.elapsed().as_secs_f64();
    let counters = client.counters();
    let per_kind: serde_json::Map<String, serde_json::Value> = RequestKind::ALL
        .iter()
        .map(|&kind| {
            (
                kind.as_str().to_string(),
                serde_json::json!({"requests": counters.requests(kind), "bytes": counters.bytes(kind)}),
            )
        })
        .collect();
    let summary = serde_json::json!({
        "report": report,
        "seconds": seconds,
        "requests": counters.total_requests(),
        "bytes": counters.total_bytes(),
        "retries": counters.retries(),
        "by_kind": per_kind,
    });
    tracing::info!("{}", summary_line(&report, seconds, counters));
    for (name, error) in &report.failed {
        tracing::warn!("failed: {name}: {error}");
    }
    if let Some(path) = &args.report {
        db_format::atomic::write(
            path,
            &serde_json::to_vec_pretty(&summary).map_err(|err| Error::Internal(err.to_string()))?,
        )?;
    }
    if requested_missing.is_empty() {
        Ok(())
    } else {
        Err(Error::NotOnIndex(requested_missing))
    }
}

/// The one line that ends a crawl. A project read again in full is not called changed when
/// the index gave no ETag to ask with.
fn summary_line(report: &CrawlReport, seconds: f64, counters: &Counters) -> String {
    let reread = if report.reread_without_etag > 0 {
        format!(
            " ({} re-read: the index sends no ETag/304)",
            report.reread_without_etag
        )
    } else {
        String::new()
    };
    format!(
        "crawled {} projects, {} unchanged{reread}, {} failed, {} missing; {} releases, {} files in {seconds:.1}s; {} requests, {:.1} MB",
        report.projects,
        report.unchanged,
        report.failed.len(),
        report.missing.len(),
        report.releases,
        report.files,
        counters.total_requests(),
        counters.total_bytes() as f64 / 1e6
    )
}

/// The projects named on the command line (not those `--with-deps` found) that the index does
/// not have, each with the closest name the state knows ("did you mean").
fn requested_missing(
    start: &Start,
    missing: &[String],
    state: &State,
) -> Result<Vec<(String, Option<String>)>> {
    let Start::Packages(wanted) = start else {
        return Ok(Vec::new());
    };
    let requested: BTreeSet<&str> = wanted.iter().map(|wanted| wanted.name.as_str()).collect();
    let missing: BTreeSet<&str> = missing
        .iter()
        .map(|key| split_key(key).0)
        .filter(|name| requested.contains(name))
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let known = state.project_names()?;
    Ok(missing
        .into_iter()
        .map(|name| (name.to_string(), did_you_mean(name, &known)))
        .collect())
}

/// The known name closest to `name` by edit distance, if it is close enough to be a typo: one
/// edit for names of up to four letters, two for longer ones.
fn did_you_mean(name: &str, known: &[String]) -> Option<String> {
    let most = if name.chars().count() <= 4 { 1 } else { 2 };
    known
        .iter()
        .filter(|candidate| candidate.as_str() != name)
        .map(|candidate| (strsim::levenshtein(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= most)
        .min()
        .map(|(_, candidate)| candidate.clone())
}

fn stats(state: &State) -> Result<serde_json::Value> {
    let rows: Vec<serde_json::Value> = state
        .method_counts()?
        .into_iter()
        .map(|(kind, method, source, count)| {
            serde_json::json!({"kind": format!("{kind:?}"), "method": method, "source": source, "files": count})
        })
        .collect();
    Ok(serde_json::json!({
        "projects": state.project_names()?.len(),
        "failed": state.projects_with_status("failed")?.len(),
        "missing": state.projects_with_status("missing")?.len(),
        "files": rows,
    }))
}

/// Run a parsed command.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Crawl(args) => crawl(*args).await,
        Command::PublishDb {
            state,
            out,
            pack,
            allow_shrink,
        } => {
            let state = State::open_existing(&state)?;
            state.verify()?;
            let options = crate::publish::PublishOptions { pack, allow_shrink };
            let published = crate::publish::publish(&state, &out, options)?;
            println!("{}", published.entry.sha256);
            tracing::info!(
                "{} sha256:{} in {} ({} bytes, {} new in {} blobs; {} projects, {} releases, \
                 {} files, {} dependency records; {} units written ({} bytes before \
                 compression), {} kept)",
                if published.existed {
                    "already published"
                } else {
                    "published"
                },
                published.entry.sha256,
                out.display(),
                published.entry.size,
                published.entry.new_bytes,
                published.new_blobs,
                published.entry.projects,
                published.entry.releases,
                published.entry.files,
                published.dependency_records,
                published.units_written,
                published.unit_bytes_written,
                published.units_kept,
            );
            Ok(())
        }
        Command::MergeState { state, from } => {
            let mut target = State::open(&state)?;
            let sources = from
                .iter()
                .map(|dir| State::open_existing(dir))
                .collect::<Result<Vec<_>>>()?;
            let report = target.merge_from(&sources)?;
            for replaced in &report.replaced {
                tracing::info!(
                    "{} {}: replaced the {} record by a {} record",
                    replaced.project,
                    replaced.filename,
                    replaced.from,
                    replaced.to
                );
            }
            tracing::info!(
                "merged {} states: {} project pages taken, {} records replaced by better ones",
                sources.len(),
                report.pages,
                report.replaced.len()
            );
            Ok(())
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(
                shell,
                &mut command,
                "mach-nix-crawler",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man => {
            let command = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(command).render(&mut std::io::stdout())?;
            Ok(())
        }
        Command::Stats { state } => {
            let state = State::open_existing(&state)?;
            let value = stats(&state)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&value)
                    .map_err(|err| Error::Internal(err.to_string()))?
            );
            Ok(())
        }
    }
}

/// Whether log lines are coloured: never with `NO_COLOR` (non-empty), always with
/// `CLICOLOR_FORCE` (non-empty, not `0`), else only when stderr is a terminal — never escape
/// codes in a log file or a CI log.
fn colour(no_color: Option<&str>, clicolor_force: Option<&str>, terminal: bool) -> bool {
    if no_color.is_some_and(|value| !value.is_empty()) {
        return false;
    }
    if clicolor_force.is_some_and(|value| !value.is_empty() && value != "0") {
        return true;
    }
    terminal
}

/// The log filter of `-q`/`-v`: info by default; `-v` adds the crawler's debug lines (one per
/// project, retries), `-vv` its trace lines and the HTTP stack's debug lines, `-vvv` everything.
fn level(quiet: u8, verbose: u8) -> &'static str {
    match (quiet, verbose) {
        (0, 0) => "info",
        (1, _) => "warn",
        (_, 0) => "error",
        (_, 1) => "info,crawler=debug",
        (_, 2) => "debug,crawler=trace",
        _ => "trace",
    }
}

/// Exit codes: 0 ok, 1 failure, 2 usage, 3 requested projects the index does not have.
fn exit_code(err: &Error) -> ExitCode {
    match err {
        Error::Usage(_) => ExitCode::from(2),
        Error::NotOnIndex(_) => ExitCode::from(3),
        _ => ExitCode::FAILURE,
    }
}

/// The binary's entry point: logging, the runtime, exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = |name| std::env::var(name).ok();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(level(cli.quiet, cli.verbose))
            }),
        )
        .with_ansi(colour(
            env("NO_COLOR").as_deref(),
            env("CLICOLOR_FORCE").as_deref(),
            std::io::stderr().is_terminal(),
        ))
        .with_writer(crate::progress::LogWriter)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            exit_code(&err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crawl_flag(flag: &str, value: &str) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_from([
            "mach-nix-crawler",
            "crawl",
            "--state",
            "s",
            "--packages",
            "six",
            flag,
            value,
        ])
    }

    // `--timeout inf` and `--rate 1e-300` panicked in `Duration`, `--retries 4294967295`
    // wrapped to zero attempts: every numeric flag is checked at parse time.
    #[test]
    fn numeric_flags_out_of_range_are_refused_at_parse_time() {
        for (flag, value) in [
            ("--timeout", "inf"),
            ("--timeout", "1e300"),
            ("--timeout", "-1"),
            ("--timeout", "NaN"),
            ("--timeout", "0"),
            ("--rate", "1e-300"),
            ("--rate", "-5"),
            ("--retries", "-1"),
            ("--rate", "inf"),
            ("--retries", "4294967295"),
            ("--retries", "101"),
            ("--concurrency", "0"),
            ("--concurrency", "100000"),
            ("--projects-in-flight", "0"),
            ("--backoff-ms", "18446744073709551615"),
            ("--progress-every", "0"),
            ("--build-concurrency", "0"),
        ] {
            let err = crawl_flag(flag, value).expect_err(&format!("{flag} {value} is refused"));
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{flag} {value}"
            );
            let text = err.to_string();
            assert!(text.contains(flag) && text.contains(value), "{text}");
        }
        for (flag, value) in [
            ("--timeout", "0.5"),
            ("--timeout", "3600"),
            ("--rate", "0"),
            ("--rate", "0.01"),
            ("--retries", "0"),
            ("--concurrency", "64"),
        ] {
            crawl_flag(flag, value).unwrap_or_else(|err| panic!("{flag} {value}: {err}"));
        }
    }

    #[test]
    fn every_option_of_every_subcommand_has_help() {
        let command = <Cli as clap::CommandFactory>::command();
        let mut missing = Vec::new();
        for sub in command.get_subcommands() {
            if sub.get_about().is_none() {
                missing.push(sub.get_name().to_string());
            }
            for arg in sub.get_arguments() {
                if arg.get_help().is_none() && !["help", "version"].contains(&arg.get_id().as_str())
                {
                    missing.push(format!("{} {}", sub.get_name(), arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    #[test]
    fn crawl_starts_exclude_each_other_in_clap() {
        let starts: [&[&str]; 5] = [
            &["--packages", "six"],
            &["--packages-file", "f"],
            &["-r", "r.txt"],
            &["--all"],
            &["--since", "yesterday"],
        ];
        for (at, first) in starts.iter().enumerate() {
            for second in &starts[at + 1..] {
                let mut args = vec!["mach-nix-crawler", "crawl", "--state", "s"];
                args.extend(*first);
                args.extend(*second);
                let err = Cli::try_parse_from(&args).expect_err("two starts");
                assert_eq!(
                    err.kind(),
                    clap::error::ErrorKind::ArgumentConflict,
                    "{args:?}"
                );
            }
        }
    }

    #[test]
    fn quiet_and_verbose_are_global_and_counted() {
        let cli = Cli::try_parse_from(["mach-nix-crawler", "stats", "--state", "s", "-vv"])
            .expect("parses");
        assert_eq!((cli.quiet, cli.verbose), (0, 2));
        assert_eq!(level(cli.quiet, cli.verbose), "debug,crawler=trace");
        let cli = Cli::try_parse_from(["mach-nix-crawler", "-q", "stats", "--state", "s"])
            .expect("parses");
        assert_eq!(level(cli.quiet, cli.verbose), "warn");
        assert_eq!(level(2, 0), "error");
        assert_eq!(level(0, 0), "info");
        assert_eq!(level(0, 1), "info,crawler=debug");
        assert_eq!(level(0, 3), "trace");
        assert!(Cli::try_parse_from(["mach-nix-crawler", "-q", "-v", "man"]).is_err());
    }

    #[test]
    fn colour_only_on_a_terminal_unless_forced_or_refused() {
        assert!(colour(None, None, true));
        assert!(!colour(None, None, false));
        assert!(!colour(Some("1"), None, true));
        assert!(!colour(Some("1"), Some("1"), true));
        assert!(colour(Some(""), None, true), "an empty NO_COLOR is unset");
        assert!(colour(None, Some("1"), false));
        assert!(!colour(None, Some("0"), false));
        assert!(!colour(None, Some(""), false));
    }

    #[test]
    fn did_you_mean_takes_the_closest_name_within_reach() {
        let known: Vec<String> = ["httpx", "requests", "six", "attrs"]
            .map(String::from)
            .to_vec();
        assert_eq!(did_you_mean("htpx", &known).as_deref(), Some("httpx"));
        assert_eq!(
            did_you_mean("reqeusts", &known).as_deref(),
            Some("requests")
        );
        assert_eq!(did_you_mean("sx", &known).as_deref(), Some("six"));
        assert_eq!(did_you_mean("numpy", &known), None);
        assert_eq!(did_you_mean("abc", &known), None);
    }

    #[test]
    fn times_and_since_parse() {
        assert_eq!(parse_time("2024-01-01").expect("date"), 1_704_067_200);
        assert_eq!(
            parse_time("2024-01-01T00:00:10Z").expect("rfc3339"),
            1_704_067_210
        );
        assert_eq!(parse_time("1704067200").expect("seconds"), 1_704_067_200);
        assert!(parse_time("soon").is_err());
        assert_eq!(
            parse_since("yesterday", 100_000).expect("ok"),
            Since::Time(13_600)
        );
        assert_eq!(parse_since("42", 0).expect("ok"), Since::Serial(42));
        assert_eq!(
            parse_since("2024-01-01", 0).expect("ok"),
            Since::Time(1_704_067_200)
        );
    }
}
