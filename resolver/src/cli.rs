//! The `mach-nix` command line: `gen` (resolve and write a lock or a Nix expression), `env`
//! (resolve and write a Nix environment directory), `show` (what the snapshot knows of a
//! project), and `completions`/`man` (shell completions and the manual page, generated from these
//! clap definitions). Arguments are parsed here, each into its type (system, Python version,
//! glibc, providers); the work is done by the library modules.
//!
//! Logging: `tracing` to stderr, warnings by default, `-q` only errors, `-v` what was opened and
//! how long the solver worked, `-vv` every decision. Colours only when stderr is a terminal,
//! never with `NO_COLOR`, always with `CLICOLOR_FORCE` (as clap reads them).
//!
//! Exit codes: 0 success, 1 the requirements cannot be resolved (or `show` finds nothing),
//! 2 bad arguments, input files or snapshot.
//!
//! Outputs never leave a half-written file: `gen -o` replaces its file atomically
//! ([`db_format::atomic`]); `env DIR` first resolves and renders everything, writes all new
//! files into a staging directory inside DIR (fsynced), and only then renames them over the old
//! ones, so a failure or a kill before that point leaves DIR as it was, and the renames
//! themselves take microseconds. An output path that is an input file (the requirements and
//! their includes, `--nixpkgs-json`, a `--providers` file) or the snapshot (the `--db` file, or
//! the snapshot directory's `HEX.mnxdb` and `latest`) is refused, compared by canonical path.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{ArgAction, Args, CommandFactory as _, Parser, Subcommand, ValueEnum};
use tracing::level_filters::LevelFilter;
use uv_platform_tags::{Arch, Os, Platform};

use db_format::Snapshot;

use crate::input::{Input, read_input};
use crate::provider::{Mode, NixpkgsIndex, ProviderConfig};
use crate::resolution::{Resolution, SnapshotPin};
use crate::solve::{DEFAULT_MAX_STEPS, ResolveOptions, resolve};
use crate::target::{System, TargetEnv};

#[derive(Debug, Parser)]
#[command(
    name = "mach-nix",
    version,
    about = "Reproducible Python environments for Nix, resolved offline from a pinned PyPI snapshot"
)]
struct Cli {
    /// More detail on stderr: -v the snapshot opened, the projects read, the solver's steps
    /// and time; -vv every decision.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Resolve requirements and write a Nix expression, a pylock.toml or a hashed requirements.txt.
    Gen {
        #[command(flatten)]
        resolve: ResolveArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Nix)]
        format: Format,
        /// Write here instead of standard output (replaced atomically). A pylock must be named
        /// `pylock.toml` or `pylock.NAME.toml` (PEP 751).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Resolve requirements and write a Nix environment directory (default.nix, shell.nix,
    /// pylock.toml, the hashed requirements.txt, and the input as requirements.in or
    /// pyproject.toml): `nix-shell DIR` enters it.
    Env {
        /// The directory to write (created if missing).
        dir: PathBuf,
        #[command(flatten)]
        resolve: ResolveArgs,
    },
    /// Show what the snapshot knows of a project.
    Show {
        /// The project name (any spelling).
        name: String,
        #[command(flatten)]
        db: DbArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Fetch a pinned snapshot from its mirrors into the cache, for offline and air-gapped use:
    /// its manifest and pages, with `--all` every shard, with `--pack` one pack file. (`gen`
    /// caches exactly what its resolution reads: run it once online to prepare one project.)
    Fetch {
        /// The pin: sha256:HEX.
        pin: String,
        /// The snapshot directory looked in before the mirrors (default: $MACH_NIX_DB_DIR,
        /// else ~/.cache/mach-nix/snapshots).
        #[arg(long)]
        db_dir: Option<PathBuf>,
        /// A mirror to fetch from (repeatable, tried in order). Default: $MACH_NIX_DB_URL.
        #[arg(long = "db-url", value_name = "URL")]
        db_url: Vec<String>,
        /// Fetch and check every page and shard, not only the manifest and pages.
        #[arg(long)]
        all: bool,
        /// Also write the whole snapshot as one pack file here (implies --all); `--db FILE`
        /// and Nix read it offline.
        #[arg(long, value_name = "FILE")]
        pack: Option<PathBuf>,
    },
    /// Print a shell completion script for mach-nix (e.g. `mach-nix completions bash >
    /// ~/.local/share/bash-completion/completions/mach-nix`).
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
    /// Print the manual page of mach-nix (roff, for `man -l -`).
    Man,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A Nix expression building the Python environment.
    Nix,
    /// A PEP 751 lock file (pylock.toml).
    Pylock,
    /// A requirements.txt with every package pinned and hashed (pip --require-hashes).
    Requirements,
}

#[derive(Debug, Args)]
struct DbArgs {
    /// The snapshot: sha256:HEX (its manifest, pack or .mnxdb file in the snapshot
    /// directory), or the path of a pack or .mnxdb file. Default: the directory's `latest`.
    #[arg(long)]
    db: Option<String>,
    /// The snapshot directory: a tree `publish-db` wrote, or a cache of the same layout
    /// (default: $MACH_NIX_DB_DIR, else ~/.cache/mach-nix/snapshots).
    #[arg(long)]
    db_dir: Option<PathBuf>,
    /// A mirror of published snapshots (an https:// or file:// base URL, or a directory) that
    /// `--db sha256:HEX` fetches the pin's manifest and only the shards it needs from, each
    /// checked against its hash and cached (repeatable: tried in order). Default:
    /// $MACH_NIX_DB_URL (space- or comma-separated).
    #[arg(long = "db-url", value_name = "URL")]
    db_url: Vec<String>,
    /// Never fetch: use only the snapshot directory and the cache ($MACH_NIX_CACHE_DIR, else
    /// ~/.cache/mach-nix).
    #[arg(long)]
    offline: bool,
}

impl DbArgs {
    /// The cache in front of the mirrors, as the snapshot's blob source; `None` when there is
    /// neither a cache directory nor a mirror.
    fn store(&self) -> Result<Option<crate::fetch::Store>, CliError> {
        let env = std::env::var(crate::fetch::DB_URL_ENV).ok();
        let mirrors = crate::fetch::Mirror::list(&self.db_url, env.as_deref())?;
        let Some(cache) = crate::fetch::default_cache_dir() else {
            return Ok(None);
        };
        Ok(Some(crate::fetch::Store::new(cache, mirrors, self.offline)))
    }

    /// Open the snapshot these arguments name (see [`crate::db::open`]), fetching what is
    /// missing through [`DbArgs::store`].
    fn open(&self) -> Result<(Snapshot, SnapshotPin), CliError> {
        let dir = self.db_dir.clone().unwrap_or_else(crate::db::default_dir);
        let store = self.store()?;
        let source = store
            .clone()
            .map(|store| Box::new(store) as Box<dyn db_format::blob::BlobSource>);
        let (snapshot, pin) = crate::db::open(self.db.as_deref(), &dir, source)?;
        log_snapshot(self, &dir, &snapshot, &pin);
        if let Some(store) = store {
            let stats = store.stats();
            if stats.requests > 0 || stats.cache_hits > 0 {
                tracing::info!("snapshot blobs: {stats}");
            }
            for note in store.notes() {
                tracing::info!("{note}");
            }
        }
        Ok((snapshot, pin))
    }
}

#[derive(Debug, Args)]
struct ResolveArgs {
    /// A requirements.txt (pip syntax) or a pyproject.toml.
    #[arg(short = 'r', long = "requirement")]
    requirements: PathBuf,
    #[command(flatten)]
    db: DbArgs,
    /// Target CPython version, e.g. 3.12 or 3.12.4.
    #[arg(short, long, default_value = "3.12", value_parser = python_version)]
    python: String,
    /// Target Nix system.
    #[arg(long, default_value = "x86_64-linux", value_parser = system_parser())]
    system: System,
    /// Provider order: `_default=wheel,sdist,nixpkgs numpy=wheel`, or a TOML file of the same;
    /// `conda/CHANNEL` takes packages from a conda channel of the snapshot.
    #[arg(long, value_parser = providers_spec)]
    providers: Option<String>,
    /// nixpkgs' Python packages (a JSON list of {attribute, pname, version}) for the nixpkgs
    /// provider.
    #[arg(long)]
    nixpkgs_json: Option<PathBuf>,
    /// Candidate order: `newest` (as pip and uv) or `provider-order` (as the original mach-nix).
    #[arg(long, default_value = "newest", value_parser = mode_parser())]
    mode: Mode,
    /// Allow pre-releases everywhere (as pip's --pre).
    #[arg(long)]
    pre: bool,
    /// Optional-dependency groups of a pyproject.toml to include.
    #[arg(long = "extra")]
    extras: Vec<String>,
    /// glibc of the Linux target for manylinux wheels (default 2.39, nixpkgs' own).
    #[arg(long, value_name = "MAJOR.MINOR", value_parser = glibc)]
    manylinux: Option<(u16, u16)>,
    /// Stop a resolution that takes more steps than this (pubgrub decisions plus conflicts;
    /// it then says so).
    #[arg(long, default_value_t = DEFAULT_MAX_STEPS)]
    max_steps: u64,
    /// conda providers: also take conda records that carry only an md5 (no sha256).
    #[arg(long)]
    conda_allow_md5: bool,
    /// conda providers: the target's CUDA driver version (`__cuda`), if it has one.
    #[arg(long, value_name = "VERSION")]
    cuda: Option<String>,
}

/// Errors of the command line itself (the library errors are wrapped).
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    #[error(transparent)]
    Target(#[from] crate::target::TargetError),
    #[error(transparent)]
    Provider(#[from] crate::provider::ProviderError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(transparent)]
    Mirror(#[from] crate::fetch::ConfigError),
    #[error("snapshot sha256:{pin}: {source}")]
    Fetch {
        pin: String,
        #[source]
        source: db_format::Error,
    },
    #[error(transparent)]
    Resolve(#[from] crate::report::ResolveError),
    #[error(transparent)]
    Show(#[from] crate::show::ShowError),
    #[error(transparent)]
    Nix(#[from] crate::output::nix::NixError),
    #[error(transparent)]
    Conda(#[from] crate::conda::mixed::MixedError),
    #[error("conda providers: {0}")]
    CondaUnsupported(&'static str),
    #[error(
        "-o {}: installers take a PEP 751 lock only as pylock.toml or pylock.NAME.toml; \
         use -o {}",
        path.display(),
        path.with_file_name(suggestion).display()
    )]
    LockFileName { path: PathBuf, suggestion: String },
    #[error(
        "{}: it is {what} {}; refusing to overwrite it (write the output elsewhere)",
        output.display(),
        protected.display()
    )]
    OverwritesInput {
        output: PathBuf,
        what: &'static str,
        protected: PathBuf,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// The whole derivation of a conflict whose message shows only its ends.
    fn full_explanation(&self) -> Option<&str> {
        match self {
            CliError::Resolve(err)
            | CliError::Conda(crate::conda::mixed::MixedError::Pypi(err)) => err.full_explanation(),
            _ => None,
        }
    }

    fn exit_code(&self) -> u8 {
        match self {
            CliError::Resolve(crate::report::ResolveError::Snapshot(_))
            | CliError::Resolve(crate::report::ResolveError::PythonMismatch { .. })
            | CliError::Resolve(crate::report::ResolveError::UrlNotInSnapshot { .. }) => 2,
            CliError::Resolve(_) | CliError::Show(crate::show::ShowError::NotInSnapshot { .. }) => {
                1
            }
            CliError::Conda(crate::conda::mixed::MixedError::Conda(
                crate::conda::CondaError::NoSolution(_)
                | crate::conda::CondaError::Constraint { .. },
            )) => 1,
            CliError::Conda(crate::conda::mixed::MixedError::Pypi(
                crate::report::ResolveError::Snapshot(_)
                | crate::report::ResolveError::PythonMismatch { .. }
                | crate::report::ResolveError::UrlNotInSnapshot { .. },
            )) => 2,
            CliError::Conda(crate::conda::mixed::MixedError::Pypi(_)) => 1,
            _ => 2,
        }
    }
}

/// An input file other than the requirements: bounded like them (regular files, at most
/// [`mach_nix_requirements::MAX_FILE_SIZE`]).
fn read(path: &Path) -> Result<String, CliError> {
    mach_nix_requirements::read_text(path)
        .map_err(|err| CliError::Input(crate::input::InputError::Requirements(err)))
}

/// `--python`: a CPython version the target accepts.
fn python_version(text: &str) -> Result<String, crate::target::TargetError> {
    TargetEnv::new(text, System::X86_64Linux).map(|_| text.to_owned())
}

/// `--system`: one of [`System::ALL`], listed in the help and completions.
fn system_parser() -> impl TypedValueParser<Value = System> {
    PossibleValuesParser::new(System::ALL.map(System::as_str))
        .try_map(|text| text.parse::<System>())
}

/// `--mode`: the candidate orders, listed in the help and completions.
fn mode_parser() -> impl TypedValueParser<Value = Mode> {
    PossibleValuesParser::new(["newest", "provider-order"]).try_map(|text| text.parse::<Mode>())
}

/// `--manylinux`: a glibc version `MAJOR.MINOR`.
fn glibc(text: &str) -> Result<(u16, u16), String> {
    let bad = || format!("expected a glibc version like 2.28, not {text:?}");
    let (major, minor) = text.split_once('.').ok_or_else(bad)?;
    Ok((
        major.parse().map_err(|_| bad())?,
        minor.parse().map_err(|_| bad())?,
    ))
}

/// `--providers`: a provider order (with `conda/CHANNEL` items), or a TOML file of one (read
/// when the resolution starts).
fn providers_spec(text: &str) -> Result<String, String> {
    if text.ends_with(".toml") && Path::new(text).is_file() {
        return Ok(text.to_owned());
    }
    let (rest, _) = crate::conda::mixed::split_providers(text).map_err(|err| err.to_string())?;
    if let Some(rest) = rest {
        ProviderConfig::parse(&rest).map_err(|err| err.to_string())?;
    }
    Ok(text.to_owned())
}

fn target(args: &ResolveArgs) -> Result<TargetEnv, CliError> {
    let system = args.system;
    let Some((major, minor)) = args.manylinux else {
        return Ok(TargetEnv::new(&args.python, system)?);
    };
    let platform = match system {
        System::X86_64Linux => Platform::new(Os::Manylinux { major, minor }, Arch::X86_64),
        System::Aarch64Linux => Platform::new(Os::Manylinux { major, minor }, Arch::Aarch64),
        _ => system.default_platform(),
    };
    Ok(TargetEnv::with_platform(&args.python, system, platform)?)
}

fn providers(spec: Option<&str>) -> Result<ProviderConfig, CliError> {
    match spec {
        None => Ok(ProviderConfig::default()),
        Some(spec) if spec.ends_with(".toml") && Path::new(spec).is_file() => {
            let path = Path::new(spec);
            Ok(ProviderConfig::from_toml(&read(path)?, path)?)
        }
        Some(spec) => Ok(ProviderConfig::parse(spec)?),
    }
}

/// What a resolution starts from: options (with the PyPI providers of `providers_spec`), the
/// input, its text, and the snapshot.
type Prepared = (ResolveOptions, Input, String, Snapshot, SnapshotPin);

/// The files an output must not replace: the inputs read for `args` (`input_files`: the
/// requirements and their includes) and the snapshot `pin` names, each with what it is.
fn protected_paths(
    args: &ResolveArgs,
    input_files: &[PathBuf],
    pin: &SnapshotPin,
) -> Vec<(&'static str, PathBuf)> {
    let mut protected: Vec<(&'static str, PathBuf)> = input_files
        .iter()
        .map(|file| ("the input file", file.clone()))
        .collect();
    protected.extend(
        args.nixpkgs_json
            .iter()
            .map(|file| ("the --nixpkgs-json file", file.clone())),
    );
    if let Some(spec) = args
        .providers
        .as_deref()
        .filter(|spec| spec.ends_with(".toml"))
    {
        protected.push(("the --providers file", PathBuf::from(spec)));
    }
    match args.db.db.as_deref() {
        Some(db) if !db.starts_with("sha256:") => protected.push(("the snapshot", db.into())),
        _ => {
            // The files a pinned snapshot may be in, and `latest` (crate::db).
            let dir = args
                .db
                .db_dir
                .clone()
                .unwrap_or_else(crate::db::default_dir);
            if let Some(hash) = db_format::blob::BlobHash::from_hex(&pin.sha256) {
                for path in crate::db::pinned_paths(&dir, &hash) {
                    protected.push(("the snapshot", path));
                }
            }
            protected.push((
                "the snapshot directory's pointer",
                dir.join(db_format::blob::LATEST),
            ));
        }
    }
    protected
}

/// `path` with its directory resolved (the file itself need not exist yet).
fn canonical(path: &Path) -> PathBuf {
    if let Ok(path) = std::fs::canonicalize(path) {
        return path;
    }
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            std::fs::canonicalize(dir).map_or_else(|_| path.to_owned(), |dir| dir.join(name))
        }
        _ => path.to_owned(),
    }
}

/// Refuse to write `outputs` over one of `protected`.
fn check_outputs(
    outputs: &[PathBuf],
    protected: &[(&'static str, PathBuf)],
) -> Result<(), CliError> {
    let protected: Vec<_> = protected
        .iter()
        .map(|(what, path)| (*what, path, canonical(path)))
        .collect();
    for output in outputs {
        let resolved = canonical(output);
        if let Some((what, path, _)) = protected
            .iter()
            .find(|(_, _, canonical)| &resolved == canonical)
        {
            return Err(CliError::OverwritesInput {
                output: output.clone(),
                what,
                protected: (*path).clone(),
            });
        }
    }
    Ok(())
}

fn prepare(args: &ResolveArgs, providers_spec: Option<&str>) -> Result<Prepared, CliError> {
    let options = ResolveOptions {
        target: target(args)?,
        providers: providers(providers_spec)?,
        mode: args.mode,
        nixpkgs: match &args.nixpkgs_json {
            Some(path) => Some(NixpkgsIndex::from_json(&read(path)?, path)?),
            None => None,
        },
        allow_prereleases: args.pre,
        max_steps: args.max_steps,
    };
    let (input, text) = read_input(&args.requirements, &args.extras)?;
    let (snapshot, pin) = args.db.open()?;
    Ok((options, input, text, snapshot, pin))
}

/// `-v`: which snapshot was opened, and how it was found.
fn log_snapshot(db: &DbArgs, dir: &Path, snapshot: &Snapshot, pin: &SnapshotPin) {
    let found = match db.db.as_deref() {
        Some(hash) if hash.starts_with("sha256:") => format!("by hash in {}", dir.display()),
        Some(path) => format!("the file {path}"),
        None => format!("{}'s latest", dir.display()),
    };
    let meta = snapshot.meta();
    tracing::info!(
        "snapshot sha256:{} of {} ({found}): {} projects, {} releases, {} files",
        pin.sha256,
        crate::report::snapshot_date(pin),
        meta.project_count,
        meta.release_count,
        meta.file_count
    );
}

/// `mach-nix fetch`: the pinned snapshot into the cache (and optionally a pack); prints what it
/// holds and where.
fn fetch(args: DbArgs, all: bool, pack: Option<&Path>) -> Result<(), CliError> {
    let spec = args.db.clone().unwrap_or_default();
    if !spec.starts_with("sha256:") {
        return Err(crate::db::DbError::BadHash(spec).into());
    }
    let (snapshot, pin) = args.open()?;
    let failed = |source| CliError::Fetch {
        pin: pin.sha256.clone(),
        source,
    };
    // Every page is fetched here (the list of blobs comes from them).
    let blobs = snapshot.blobs().map_err(failed)?;
    if all {
        snapshot.verify().map_err(failed)?;
    }
    if let Some(path) = pack {
        db_format::atomic::write_with(path, |file| {
            let mut out = std::io::BufWriter::new(file);
            snapshot
                .write_pack(&mut out)
                .map_err(std::io::Error::other)?;
            out.flush()
        })
        .map_err(|err| CliError::Io {
            path: err.path,
            source: err.source,
        })?;
    }
    let bytes: u64 = blobs.iter().map(|(_, _, size)| size).sum();
    let meta = snapshot.meta();
    let text = format!(
        "sha256:{}: {} projects, {} files; {} blobs ({bytes} bytes){}{}\n",
        pin.sha256,
        meta.project_count,
        meta.file_count,
        blobs.len(),
        if all {
            ", every one fetched and checked"
        } else {
            "; manifest and pages fetched"
        },
        pack.map(|path| format!("; pack written to {}", path.display()))
            .unwrap_or_default(),
    );
    emit(None, &text)
}

/// Resolve as `gen` and `env` do, once it is clear that `outputs` replace no input; returns the
/// resolution and the input file's text.
fn resolve_args(args: &ResolveArgs, outputs: &[PathBuf]) -> Result<(Resolution, String), CliError> {
    let (options, input, text, snapshot, pin) = prepare(args, args.providers.as_deref())?;
    check_outputs(outputs, &protected_paths(args, &input.files, &pin))?;
    Ok((resolve(&snapshot, pin, &input, &options)?, text))
}

/// The command line, quoted as a shell reads it, for the header of generated files.
fn command_line() -> String {
    let words: Vec<String> = std::iter::once("mach-nix".to_owned())
        .chain(
            std::env::args_os()
                .skip(1)
                .map(|arg| arg.to_string_lossy().into_owned()),
        )
        .map(|word| {
            if word.chars().any(char::is_control) {
                // A newline would end the comment the command is written in.
                format!("{word:?}")
            } else {
                shlex::try_quote(&word).map_or_else(|_| format!("{word:?}"), |q| q.into_owned())
            }
        })
        .collect();
    words.join(" ")
}

/// `text` with a first comment saying which command generated it (as uv writes one).
fn with_header(text: &str) -> String {
    format!(
        "# This file was generated by mach-nix via the following command:\n#    {}\n{text}",
        command_line()
    )
}

/// Refuse a pylock `output` whose name installers refuse.
fn check_lock_name(output: &Path) -> Result<(), CliError> {
    let name = output
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    if crate::output::pylock::is_lock_file_name(&name) {
        return Ok(());
    }
    Err(CliError::LockFileName {
        path: output.to_owned(),
        suggestion: crate::output::pylock::lock_file_name_for(&name),
    })
}

/// The files `env` writes besides the kept input ([`kept_input_name`]).
const ENV_FILES: [&str; 4] = [
    "default.nix",
    "shell.nix",
    "pylock.toml",
    "requirements.txt",
];

/// The name `env` keeps its input under: `requirements.in`, or `pyproject.toml` for a pyproject.
fn kept_input_name(requirements: &Path) -> &'static str {
    if requirements
        .file_name()
        .is_some_and(|name| name == "pyproject.toml")
    {
        "pyproject.toml"
    } else {
        "requirements.in"
    }
}

/// `mach-nix env DIR`: resolve and render everything, stage the new files inside DIR, then
/// rename them over the old ones (see the module doc).
fn env(dir: &Path, args: &ResolveArgs) -> Result<(), CliError> {
    let kept = kept_input_name(&args.requirements);
    let mut outputs: Vec<PathBuf> = ENV_FILES.iter().map(|name| dir.join(name)).collect();
    // The kept input may be the input itself (`env DIR -r DIR/requirements.in`): it is
    // rewritten with the text just read from it.
    let kept_path = dir.join(kept);
    if canonical(&kept_path) != canonical(&args.requirements) {
        outputs.push(kept_path);
    }
    let (resolution, text) = resolve_args(args, &outputs)?;
    let lock = with_header(&crate::output::pylock::render(&resolution));
    let hashed = with_header(&crate::output::requirements::render(&resolution));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| CliError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let staging = tempfile::Builder::new()
        .prefix(db_format::atomic::TEMP_PREFIX)
        .tempdir_in(dir)
        .map_err(io(dir))?;
    crate::output::nix::write_env(staging.path(), &resolution, &hashed, &lock)?;
    std::fs::write(staging.path().join(kept), &text).map_err(io(&staging.path().join(kept)))?;
    let names = ENV_FILES.iter().chain([&kept]);
    for name in names.clone() {
        let path = staging.path().join(name);
        std::fs::File::open(&path)
            .and_then(|file| file.sync_all())
            .map_err(io(&path))?;
    }
    for name in names {
        let target = dir.join(name);
        std::fs::rename(staging.path().join(name), &target).map_err(io(&target))?;
    }
    db_format::atomic::sync_dir(dir).map_err(io(dir))
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "mach-nix", &mut text);
            emit(None, &String::from_utf8_lossy(&text))
        }
        Command::Fetch {
            pin,
            db_dir,
            db_url,
            all,
            pack,
        } => fetch(
            DbArgs {
                db: Some(pin),
                db_dir,
                db_url,
                offline: false,
            },
            all || pack.is_some(),
            pack.as_deref(),
        ),
        Command::Man => {
            let mut text = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut text)
                .map_err(|source| CliError::Io {
                    path: PathBuf::from("<stdout>"),
                    source,
                })?;
            emit(None, &String::from_utf8_lossy(&text))
        }
        Command::Gen {
            resolve,
            format,
            output,
        } => {
            if let (Some(path), Format::Pylock) = (&output, format)
                && !is_device(path)
            {
                check_lock_name(path)?;
            }
            let outputs: Vec<PathBuf> = output.iter().cloned().collect();
            // conda: `conda/CHANNEL` providers resolve and render through crate::conda.
            if let Some(text) = conda_gen(&resolve, format, &outputs)? {
                return emit(output.as_deref(), &text);
            }
            let (resolution, _) = resolve_args(&resolve, &outputs)?;
            let text = match format {
                // Nix output: rendered by the Nix-generation module.
                Format::Nix => crate::output::nix::render(&resolution)?,
                Format::Pylock => with_header(&crate::output::pylock::render(&resolution)),
                Format::Requirements => {
                    with_header(&crate::output::requirements::render(&resolution))
                }
            };
            emit(output.as_deref(), &text)
        }
        Command::Env { dir, resolve } => {
            if conda_providers(&resolve)?.is_some() {
                return Err(CliError::CondaUnsupported(
                    "`mach-nix env` does not take them yet; use `mach-nix gen` (Nix output)",
                ));
            }
            env(&dir, &resolve)
        }
        Command::Show { name, db, json } => {
            let (snapshot, pin) = db.open()?;
            let project = crate::show::lookup(&snapshot, &pin, &name)?;
            let text = if json {
                format!("{:#}\n", crate::show::to_json(&project, &pin))
            } else {
                crate::show::to_text(&project, &pin)
            };
            std::io::stdout()
                .write_all(text.as_bytes())
                .map_err(|source| CliError::Io {
                    path: PathBuf::from("<stdout>"),
                    source,
                })
        }
    }
}

// ---- conda providers -------------------------------------------------------------

/// The `conda/CHANNEL` items of `--providers`, and the providers text left for PyPI.
fn conda_providers(
    args: &ResolveArgs,
) -> Result<Option<(Option<String>, crate::conda::mixed::CondaProviders)>, CliError> {
    let Some(spec) = args.providers.as_deref() else {
        return Ok(None);
    };
    let (rest, conda) = crate::conda::mixed::split_providers(spec)
        .map_err(crate::conda::mixed::MixedError::from)?;
    Ok(conda.map(|conda| (rest, conda)))
}

/// `gen` with conda providers: the Nix of the mixed resolution; `None` without conda providers.
fn conda_gen(
    args: &ResolveArgs,
    format: Format,
    outputs: &[PathBuf],
) -> Result<Option<String>, CliError> {
    let Some((rest, conda)) = conda_providers(args)? else {
        return Ok(None);
    };
    if format != Format::Nix {
        return Err(CliError::CondaUnsupported(
            "only the Nix output can hold conda packages (not pylock.toml or requirements.txt)",
        ));
    }
    let (options, input, _, snapshot, pin) = prepare(args, rest.as_deref())?;
    check_outputs(outputs, &protected_paths(args, &input.files, &pin))?;
    let system = options.target.system;
    let (major, minor) = crate::target::NIXPKGS_GLIBC;
    let (major, minor) = args.manylinux.unwrap_or((major, minor));
    let glibc = format!("{major}.{minor}");
    let macos = if system == System::Aarch64Darwin {
        "11.0"
    } else {
        "10.12"
    };
    let conda_options = crate::conda::CondaOptions {
        channels: conda.channels,
        system,
        virtual_packages: crate::conda::VirtualPackages::for_target(
            system,
            &glibc,
            macos,
            args.cuda.as_deref(),
        ),
        allow_md5_only: args.conda_allow_md5,
    };
    let mixed = crate::conda::mixed::resolve(
        &snapshot,
        pin,
        &input,
        &options,
        &conda_options,
        &conda.selection,
    )?;
    Ok(Some(crate::conda::nix::render_mixed(&mixed)?))
}

/// Whether `path` is a device or FIFO (`/dev/null`, a process substitution): written to as it
/// is, never replaced, and not held to a lock file's naming rule.
fn is_device(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| !meta.is_file() && !meta.is_dir())
}

/// Write `text` to `output`, or to stdout. A regular file (or a new one) is replaced
/// atomically; a device or FIFO (`-o /dev/null`) is written to as it is, never replaced.
fn emit(output: Option<&Path>, text: &str) -> Result<(), CliError> {
    match output {
        Some(path) if is_device(path) => std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .map_err(|source| CliError::Io {
                path: path.to_owned(),
                source,
            }),
        Some(path) => db_format::atomic::write(path, text.as_bytes()).map_err(|err| CliError::Io {
            path: err.path,
            source: err.source,
        }),
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|source| CliError::Io {
                path: PathBuf::from("<stdout>"),
                source,
            }),
    }
}

/// Whether stderr gets colours: never with `NO_COLOR`, always with `CLICOLOR_FORCE`, else on a
/// terminal that is not `TERM=dumb`.
fn colours() -> bool {
    if anstyle_query::no_color() {
        return false;
    }
    anstyle_query::clicolor_force()
        || (std::io::stderr().is_terminal() && anstyle_query::term_supports_color())
}

/// Log to stderr at the level `-q`/`-v` ask for: the resolver's own events (pubgrub's internal
/// ones only from `-vvv`).
fn init_logging(cli: &Cli) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => LevelFilter::ERROR,
        (false, 0) => LevelFilter::WARN,
        (false, 1) => LevelFilter::INFO,
        (false, 2) => LevelFilter::DEBUG,
        (false, _) => LevelFilter::TRACE,
    };
    let pubgrub = if level == LevelFilter::TRACE {
        LevelFilter::TRACE
    } else {
        LevelFilter::OFF
    };
    let targets = tracing_subscriber::filter::Targets::new()
        .with_default(level)
        .with_target("pubgrub", pubgrub);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colours())
        .with_max_level(level)
        .with_target(false)
        .without_time()
        .finish()
        .with(targets)
        .init();
}

/// Run the command line; the exit code says how it went.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(full) = err.full_explanation() {
                tracing::info!("the whole derivation:\n{full}");
            }
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::Cli;

    /// Every subcommand and option of `command` and its subcommands, with its help text.
    fn helps(command: &clap::Command, path: &str, out: &mut Vec<(String, String)>) {
        let about = command
            .get_about()
            .map(ToString::to_string)
            .unwrap_or_default();
        out.push((path.to_owned(), about));
        for arg in command.get_arguments() {
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            out.push((format!("{path} {}", arg.get_id()), help));
        }
        for sub in command.get_subcommands() {
            helps(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_subcommand_and_option_has_help_without_process_words() {
        let mut command = Cli::command();
        command.build();
        command.clone().debug_assert();
        let mut all = Vec::new();
        helps(&command, "mach-nix", &mut all);
        assert!(all.len() > 30, "{all:?}");
        for (what, help) in all {
            assert!(!help.trim().is_empty(), "{what} has no help text");
            assert!(!help.to_lowercase().contains("issue"), "{what}: {help}");
        }
    }
}
