//! Static dependencies of a source distribution, read without running any of its code.
//!
//! The archive (`.tar.gz`/`.tgz`, `.tar.bz2`, `.tar.xz`, `.tar`, `.zip`) is walked as a stream;
//! only the few members that state dependencies are read (`PKG-INFO`, `pyproject.toml`,
//! `setup.cfg` at the top, and `*.egg-info/requires.txt` wherever setuptools put it: the
//! project's own egg-info at any depth (`lib/matplotlib.egg-info`), else one beside the package
//! (`top/`, `top/src/`)), each capped, with every path checked and links refused. A tar stream
//! is read only until its members decide the record ([`SdistMembers::decided`]), so a streamed
//! download can stop there ([`read_prefix`]).
//! The sources are tried in this order, the first that applies wins:
//!
//! 1. `PKG-INFO` with Metadata-Version >= 2.2 where `Requires-Dist` is not dynamic;
//! 2. `*.egg-info/requires.txt` (an `*.egg-info` without it means: no dependencies, since
//!    setuptools deletes the file when the list is empty);
//! 3. `PKG-INFO` of an older version that does list `Requires-Dist`;
//! 4. a static `[project]` table in `pyproject.toml`;
//! 5. `install_requires`/`extras_require` in `setup.cfg`.
//!
//! When none applies the outcome is [`SdistMetadata::NeedsBuild`] with the reason: that is the
//! seam where the sandboxed metadata build ([`crate::build`], `--build-sdists`) plugs in; without it the
//! caller records the file as needing a build ("unknown" with that reason).

use std::io::Read;

use db_format::{DependencyRecord, MetadataSource};

use super::metadata::{CoreMetadata, read_requirements, requirements_record, with_notes};
use super::static_metadata::{
    Pyproject, SetupCfg, StaticDependencies, parse_pyproject, parse_requires_txt, parse_setup_cfg,
};
use super::{ExtractError, Limits, zip};

/// The members of an sdist that can state dependencies.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SdistMembers {
    pub pkg_info: Option<Vec<u8>>,
    pub pyproject: Option<Vec<u8>>,
    pub setup_cfg: Option<Vec<u8>>,
    /// The `*.egg-info` directories that may speak for the sdist, in the order seen.
    pub egg_infos: Vec<EggInfo>,
    pub has_setup_py: bool,
    /// The project's name as the file name spells it, normalized (`PyYAML-6.0.tar.gz`: `pyyaml`
    /// is a prefix of `pyyaml-6-0-tar-gz`); `None` matches nothing.
    project_key: Option<String>,
    /// The archive's top directory (the first member's first component).
    top: Option<String>,
    /// Every member so far came in sorted order (by path component), as setuptools writes
    /// sdists: a member that would sort before the last one seen is then known to be absent.
    sorted: bool,
    /// The path of the last member seen.
    last: Vec<String>,
}

/// One `*.egg-info` directory of an sdist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EggInfo {
    /// Its path in the archive (`matplotlib-3.7.2/lib/matplotlib.egg-info`).
    pub dir: String,
    /// Its name is the project's (setuptools may leave vendored projects' egg-info around).
    pub matches_project: bool,
    /// Its `requires.txt`, once seen.
    pub requires: Option<Vec<u8>>,
}

impl EggInfo {
    fn depth(&self) -> usize {
        self.dir.matches('/').count()
    }
}

/// What an sdist says about its dependencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdistMetadata {
    /// Stated statically; `record.source` says where.
    Static(DependencyRecord),
    /// Only a build could tell. The record carries the reason and the build requirements.
    NeedsBuild(DependencyRecord),
}

impl SdistMetadata {
    /// The record to store: a static one, or "unknown" with the reason.
    pub fn into_record(self) -> DependencyRecord {
        match self {
            SdistMetadata::Static(record) | SdistMetadata::NeedsBuild(record) => record,
        }
    }
}

/// A reader that fails once more than `limit` bytes have come through it.
struct Capped<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::other(ExtractError::TooLarge {
                limit: self.limit,
            }));
        }
        Ok(n)
    }
}

/// Which member a path is, if it is one we read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Wanted {
    PkgInfo,
    Pyproject,
    SetupCfg,
    SetupPy,
    /// A member of the `*.egg-info` directory at this path; its `requires.txt` when `true`.
    Egg {
        dir: String,
        requires: bool,
    },
}

/// The most `*.egg-info` directories remembered per sdist (a hostile archive may hold many).
const MAX_EGG_INFOS: usize = 16;

/// `top/PKG-INFO`, `top/pyproject.toml`, `top/setup.cfg`, `top/setup.py`, and any
/// `top/**/x.egg-info/…` (setuptools puts it beside the package: `top/`, `top/src/`,
/// `top/lib/`, `top/lib3/`, …).
fn wanted(path: &str) -> Option<Wanted> {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let below = parts.get(1..)?;
    match below {
        ["PKG-INFO"] => return Some(Wanted::PkgInfo),
        ["pyproject.toml"] => return Some(Wanted::Pyproject),
        ["setup.cfg"] => return Some(Wanted::SetupCfg),
        ["setup.py"] => return Some(Wanted::SetupPy),
        _ => {}
    }
    let at = below.iter().position(|part| part.ends_with(".egg-info"))?;
    Some(Wanted::Egg {
        dir: parts[..at + 2].join("/"),
        requires: below[at + 1..] == ["requires.txt"],
    })
}

/// PEP 503-style key: lowercase, runs of `-`, `_`, `.` as one `-`.
fn normalized(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

impl SdistMembers {
    /// Members of the sdist `filename` (its name tells which egg-info is the project's).
    pub fn for_file(filename: &str) -> Self {
        SdistMembers {
            project_key: Some(normalized(filename)),
            sorted: true,
            ..SdistMembers::default()
        }
    }

    /// Note a member's path (every member, in archive order).
    fn see(&mut self, path: &str) {
        let parts: Vec<String> = path
            .trim_end_matches('/')
            .split('/')
            .map(str::to_string)
            .collect();
        if self.top.is_none() {
            self.top = parts.first().cloned();
        }
        if parts < self.last {
            self.sorted = false;
        }
        self.last = parts;
    }

    /// Whether `top/name` is known to be absent: not seen, and the archive is sorted past it.
    fn passed(&self, name: &[&str]) -> bool {
        let Some(top) = &self.top else { return false };
        self.sorted
            && self
                .last
                .iter()
                .map(String::as_str)
                .cmp(std::iter::once(top.as_str()).chain(name.iter().copied()))
                .is_gt()
    }

    fn take(&mut self, kind: Wanted, bytes: Option<Vec<u8>>) {
        match (kind, bytes) {
            (Wanted::PkgInfo, Some(bytes)) => self.pkg_info = Some(bytes),
            (Wanted::Pyproject, Some(bytes)) => self.pyproject = Some(bytes),
            (Wanted::SetupCfg, Some(bytes)) => self.setup_cfg = Some(bytes),
            (Wanted::SetupPy, _) => self.has_setup_py = true,
            (Wanted::Egg { dir, requires }, bytes) => {
                let known = self.egg_infos.iter().position(|egg| egg.dir == dir);
                let at = match known {
                    Some(at) => at,
                    None => {
                        let name = dir.rsplit('/').next().unwrap_or_default();
                        let stem = normalized(name.trim_end_matches(".egg-info"));
                        let matches_project = self
                            .project_key
                            .as_deref()
                            .is_some_and(|key| key.starts_with(&format!("{stem}-")));
                        // Beside the package (`top/x.egg-info`, `top/src/x.egg-info`) any
                        // egg-info may speak for the sdist; deeper, only the project's own.
                        let beside = dir.matches('/').count() == 1
                            || dir.split('/').nth(1) == Some("src")
                                && dir.matches('/').count() == 2;
                        if !(matches_project || beside) || self.egg_infos.len() >= MAX_EGG_INFOS {
                            return;
                        }
                        self.egg_infos.push(EggInfo {
                            dir,
                            matches_project,
                            requires: None,
                        });
                        self.egg_infos.len() - 1
                    }
                };
                if requires && let Some(bytes) = bytes {
                    self.egg_infos[at].requires = Some(bytes);
                }
            }
            _ => {}
        }
    }

    /// The `*.egg-info` that speaks for the sdist: the project's own (shallowest first), else
    /// the shallowest beside the package; ties go to the first path in string order.
    pub fn egg_info(&self) -> Option<&EggInfo> {
        self.egg_infos
            .iter()
            .min_by_key(|egg| (!egg.matches_project, egg.depth(), &egg.dir))
    }

    /// Whether the members seen so far decide the record, so the rest of the archive need not
    /// be read: [`decide`] on them gives what it would give on the whole archive. That holds
    /// once PKG-INFO has been seen, the dependencies are stated (PKG-INFO >= 2.2 with static
    /// `Requires-Dist`, or the project's own egg-info with its `requires.txt`), and the build
    /// requirements are settled: `pyproject.toml` seen or known absent, and unless it names a
    /// backend other than setuptools, `setup.cfg` too (its `setup_requires`). "Known absent"
    /// needs a sorted archive, as setuptools writes them.
    pub fn decided(&self) -> bool {
        let Some(pkg_info) = self.pkg_info.as_deref().map(CoreMetadata::parse) else {
            return false;
        };
        let dependencies = (pkg_info.version_at_least(2, 2)
            && !pkg_info.is_dynamic("requires-dist"))
            || self
                .egg_info()
                .is_some_and(|egg| egg.matches_project && egg.requires.is_some());
        if !dependencies {
            return false;
        }
        let pyproject = match self.pyproject.as_deref() {
            Some(bytes) => Some(parse_pyproject(&String::from_utf8_lossy(bytes))),
            None if self.passed(&["pyproject.toml"]) => None,
            None => return false,
        };
        let other_backend = pyproject
            .as_ref()
            .and_then(|parsed| parsed.as_ref().ok())
            .is_some_and(|p| {
                p.build_requires.is_some() && !uses_setuptools(p.build_backend.as_deref())
            });
        other_backend || self.setup_cfg.is_some() || self.passed(&["setup.cfg"])
    }
}

/// Whether a `build-backend` is setuptools' (which reads `setup_requires`); none stated means
/// PEP 517's setuptools fallback.
fn uses_setuptools(backend: Option<&str>) -> bool {
    backend.is_none_or(|backend| backend.starts_with("setuptools"))
}

/// The archive formats sdists have been published in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    TarGz,
    TarBz2,
    TarXz,
    Tar,
    Zip,
}

impl Format {
    /// The format a file name states.
    pub fn of(filename: &str) -> Result<Format, ExtractError> {
        let lower = filename.to_ascii_lowercase();
        let ends = |suffixes: &[&str]| suffixes.iter().any(|suffix| lower.ends_with(suffix));
        Ok(if ends(&[".tar.gz", ".tgz"]) {
            Format::TarGz
        } else if ends(&[".tar.bz2", ".tbz", ".tbz2"]) {
            Format::TarBz2
        } else if ends(&[".tar.xz", ".txz"]) {
            Format::TarXz
        } else if ends(&[".tar"]) {
            Format::Tar
        } else if ends(&[".zip"]) {
            Format::Zip
        } else {
            return Err(ExtractError::Unsupported(format!(
                "{filename}: only .tar.gz, .tgz, .tar.bz2, .tar.xz, .tar and .zip sdists are read"
            )));
        })
    }

    /// Whether a prefix of the file can be read (a tar stream); a zip needs its end.
    pub fn streams(self) -> bool {
        self != Format::Zip
    }
}

/// Most memory the xz decoder may take for its dictionary (xz -9 needs 64 MiB).
const XZ_MEMORY_LIMIT_KIB: u32 = 128 << 10;

/// Read the interesting members of a whole sdist held in memory.
pub fn read_members(
    filename: &str,
    bytes: &[u8],
    limits: &Limits,
) -> Result<SdistMembers, ExtractError> {
    match read_prefix(filename, bytes, true, limits)? {
        Some(members) => Ok(members),
        // A whole file never runs out before its end.
        None => Err(ExtractError::Corrupt(format!(
            "{filename}: archive ends early"
        ))),
    }
}

/// Read the interesting members from the first bytes of an sdist, stopping as soon as they
/// decide the record ([`SdistMembers::decided`]). `complete` says `prefix` is the whole file.
/// `Ok(None)`: the prefix ended before the decision, more bytes are needed.
pub fn read_prefix(
    filename: &str,
    prefix: &[u8],
    complete: bool,
    limits: &Limits,
) -> Result<Option<SdistMembers>, ExtractError> {
    let format = Format::of(filename)?;
    let members = SdistMembers::for_file(filename);
    if format == Format::Zip {
        return if complete {
            read_zip_members(prefix, members, limits).map(Some)
        } else {
            Ok(None)
        };
    }
    let mut input = Prefix {
        bytes: prefix,
        exhausted: false,
    };
    let outcome = match format {
        Format::TarGz => read_tar_members(
            flate2::read::MultiGzDecoder::new(&mut input),
            members,
            limits,
        ),
        Format::TarBz2 => read_tar_members(
            bzip2::read::MultiBzDecoder::new(&mut input),
            members,
            limits,
        ),
        Format::TarXz => read_tar_members(
            lzma_rust2::XzReader::new_mem_limit(&mut input, true, XZ_MEMORY_LIMIT_KIB),
            members,
            limits,
        ),
        Format::Tar | Format::Zip => read_tar_members(&mut input, members, limits),
    };
    match outcome {
        Ok(members) if complete || members.decided() => Ok(Some(members)),
        // The prefix ran out before the archive's end: read more.
        Ok(_) => Ok(None),
        Err(_) if !complete && input.exhausted => Ok(None),
        Err(err) => Err(err),
    }
}

/// The bytes of a prefix, remembering whether a reader asked for more than they hold.
struct Prefix<'a> {
    bytes: &'a [u8],
    exhausted: bool,
}

impl Read for Prefix<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.bytes.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.exhausted = true;
        }
        Ok(n)
    }
}

fn read_tar_members<R: Read>(
    reader: R,
    mut members: SdistMembers,
    limits: &Limits,
) -> Result<SdistMembers, ExtractError> {
    let capped = Capped {
        inner: reader,
        read: 0,
        limit: limits.max_total_bytes,
    };
    let mut archive = tar::Archive::new(capped);
    let io_error = |err: std::io::Error| match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ExtractError>())
    {
        Some(extract) => extract.clone(),
        None => ExtractError::Corrupt(format!("tar: {err}")),
    };
    let mut count = 0u64;
    for entry in archive.entries().map_err(io_error)? {
        let mut entry = entry.map_err(io_error)?;
        count += 1;
        if count > limits.max_members {
            return Err(ExtractError::TooManyMembers {
                limit: limits.max_members,
            });
        }
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        zip::check_path(&path)?;
        members.see(&path);
        let kind = entry.header().entry_type();
        let interesting = wanted(&path);
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|name| String::from_utf8_lossy(&name).into_owned())
                .unwrap_or_default();
            // A link that leaves the archive, or one standing in for a member we read, is
            // refused: an honest sdist needs neither.
            let escapes = zip::link_escapes(&path, &target);
            if escapes || interesting.as_ref().is_some_and(is_read) {
                return Err(ExtractError::Link { path, target });
            }
            continue;
        }
        let Some(wanted_kind) = interesting else {
            continue;
        };
        if !kind.is_file() {
            continue;
        }
        let bytes = if is_read(&wanted_kind) {
            let size = entry.header().size().map_err(io_error)?;
            if size > limits.max_member_bytes {
                return Err(ExtractError::MemberTooLarge {
                    path,
                    size,
                    limit: limits.max_member_bytes,
                });
            }
            let mut bytes = Vec::new();
            (&mut entry)
                .take(limits.max_member_bytes + 1)
                .read_to_end(&mut bytes)
                .map_err(io_error)?;
            Some(bytes)
        } else {
            None
        };
        members.take(wanted_kind, bytes);
        if members.decided() {
            break;
        }
    }
    Ok(members)
}

/// Whether a member's bytes are read (the others only count as present).
fn is_read(kind: &Wanted) -> bool {
    match kind {
        Wanted::SetupPy => false,
        Wanted::Egg { requires, .. } => *requires,
        _ => true,
    }
}

fn read_zip_members(
    bytes: &[u8],
    mut members: SdistMembers,
    limits: &Limits,
) -> Result<SdistMembers, ExtractError> {
    let entries = zip::entries_of(bytes, limits)?;
    let declared: u64 = entries
        .iter()
        .map(|entry| entry.uncompressed_size)
        .fold(0, u64::saturating_add);
    if declared > limits.max_total_bytes {
        return Err(ExtractError::TooLarge {
            limit: limits.max_total_bytes,
        });
    }
    for entry in &entries {
        zip::check_path(&entry.name)?;
        members.see(&entry.name);
        let interesting = wanted(&entry.name);
        if entry.is_symlink {
            if interesting.as_ref().is_some_and(is_read) {
                return Err(ExtractError::Link {
                    path: entry.name.clone(),
                    target: String::new(),
                });
            }
            continue;
        }
        let Some(kind) = interesting else {
            continue;
        };
        let data = if is_read(&kind) {
            Some(zip::read_member(bytes, entry, limits.max_member_bytes)?)
        } else {
            None
        };
        members.take(kind, data);
    }
    Ok(members)
}

/// Decide the sdist's dependencies from its members (see the module docs for the order).
pub fn decide(members: &SdistMembers) -> SdistMetadata {
    let pkg_info = members.pkg_info.as_deref().map(CoreMetadata::parse);
    let pyproject: Option<Result<Pyproject, String>> = members
        .pyproject
        .as_deref()
        .map(|bytes| parse_pyproject(&String::from_utf8_lossy(bytes)));
    let setup_cfg: Option<SetupCfg> = members
        .setup_cfg
        .as_deref()
        .map(|bytes| parse_setup_cfg(&String::from_utf8_lossy(bytes)));
    let pyproject_ok = pyproject.as_ref().and_then(|parsed| parsed.as_ref().ok());
    let requires_python = pkg_info
        .as_ref()
        .and_then(|meta| meta.requires_python.clone())
        .or_else(|| {
            pyproject_ok
                .and_then(|p| p.dependencies.as_ref())
                .and_then(|deps| deps.requires_python.clone())
        });

    // The build requirements: `[build-system]`, else PEP 517's setuptools fallback, plus
    // `setup_requires` from setup.cfg.
    let (mut build_requires, build_backend) = match pyproject_ok.and_then(|p| {
        p.build_requires
            .clone()
            .map(|r| (r, p.build_backend.clone()))
    }) {
        Some((requires, backend)) => (requires, backend),
        None if members.has_setup_py || members.setup_cfg.is_some() || pyproject_ok.is_some() => (
            vec!["setuptools>=40.8.0".to_string()],
            Some("setuptools.build_meta:__legacy__".to_string()),
        ),
        None => (Vec::new(), None),
    };
    if let Some(cfg) = setup_cfg
        .as_ref()
        .filter(|_| uses_setuptools(build_backend.as_deref()))
    {
        for requirement in &cfg.setup_requires {
            if !build_requires.contains(requirement) {
                build_requires.push(requirement.clone());
            }
        }
    }
    // Build requirements are read like run-time ones: one that cannot be read makes the
    // record unknown (a build from it would lack something), relaxed ones are noted.
    let (build_requires, build_notes) =
        match read_requirements("build requirement", &build_requires) {
            Ok(read) => read,
            Err(reason) => {
                let mut record = super::unknown(reason);
                record.requires_python = requires_python;
                return SdistMetadata::Static(record);
            }
        };
    let finish = |record: DependencyRecord| DependencyRecord {
        build_requires: build_requires.clone(),
        build_backend: build_backend.clone(),
        detail: with_notes(record.detail, build_notes.clone()),
        ..record
    };
    let from_static =
        |source: MetadataSource, detail: String, deps: &StaticDependencies, extra: &[String]| {
            // PEP 685: extras compare normalized (`use_chardet_on_py3` is `use-chardet-on-py3`).
            let normalized = |name: &str| name.to_ascii_lowercase().replace(['_', '.'], "-");
            let mut provides = deps.provides_extra.clone();
            for name in extra {
                if !provides
                    .iter()
                    .any(|known| normalized(known) == normalized(name))
                {
                    provides.push(name.clone());
                }
            }
            finish(requirements_record(
                source,
                Some(detail),
                deps.requires_python
                    .clone()
                    .or_else(|| requires_python.clone()),
                deps.requires_dist.clone(),
                provides,
            ))
        };

    // 1. PKG-INFO >= 2.2 with static Requires-Dist.
    if let Some(meta) = &pkg_info
        && meta.version_at_least(2, 2)
        && !meta.is_dynamic("requires-dist")
    {
        let detail = format!(
            "PKG-INFO {}",
            meta.metadata_version.as_deref().unwrap_or_default()
        );
        return SdistMetadata::Static(finish(
            meta.clone()
                .into_record(MetadataSource::SdistPkgInfo, Some(detail)),
        ));
    }
    let pkg_extras = pkg_info
        .as_ref()
        .map(|meta| meta.provides_extra.clone())
        .unwrap_or_default();
    // 2. egg-info.
    if let Some(egg) = members.egg_info() {
        let (deps, detail) = match &egg.requires {
            Some(bytes) => (
                parse_requires_txt(&String::from_utf8_lossy(bytes)),
                format!("{}/requires.txt", egg.dir),
            ),
            None => (
                StaticDependencies::default(),
                format!("{} has no requires.txt: no dependencies", egg.dir),
            ),
        };
        return SdistMetadata::Static(from_static(
            MetadataSource::EggInfo,
            detail,
            &deps,
            &pkg_extras,
        ));
    }
    // 3. Older PKG-INFO that does list Requires-Dist.
    if let Some(meta) = &pkg_info
        && !meta.requires_dist.is_empty()
    {
        let detail = format!(
            "PKG-INFO {} with Requires-Dist",
            meta.metadata_version.as_deref().unwrap_or("(no version)")
        );
        return SdistMetadata::Static(finish(
            meta.clone()
                .into_record(MetadataSource::SdistPkgInfo, Some(detail)),
        ));
    }
    // 4. Static [project].
    if let Some(deps) = pyproject_ok.and_then(|p| p.dependencies.as_ref()) {
        return SdistMetadata::Static(from_static(
            MetadataSource::Pyproject,
            "pyproject.toml [project]".into(),
            deps,
            &pkg_extras,
        ));
    }
    // 5. setup.cfg.
    if let Some(deps) = setup_cfg.as_ref().and_then(|cfg| cfg.dependencies.as_ref()) {
        return SdistMetadata::Static(from_static(
            MetadataSource::SetupCfg,
            "setup.cfg [options]".into(),
            deps,
            &pkg_extras,
        ));
    }
    let reason = if let Some(Err(err)) = &pyproject {
        format!("no static dependencies, and {err}")
    } else if pkg_info
        .as_ref()
        .is_some_and(|meta| meta.is_dynamic("requires-dist"))
    {
        "PKG-INFO declares Requires-Dist dynamic and no other static source exists: needs a build"
            .to_string()
    } else if pyproject_ok.is_some_and(|p| p.has_project) {
        "pyproject.toml [project] declares its dependencies dynamic: needs a build".to_string()
    } else if members.has_setup_py {
        "dependencies are computed by setup.py (no PKG-INFO >= 2.2, egg-info, static pyproject \
         or setup.cfg): needs a build"
            .to_string()
    } else if members.pkg_info.is_none() {
        "no PKG-INFO, setup.py, pyproject.toml or setup.cfg at the sdist's top level".to_string()
    } else {
        "PKG-INFO lists no Requires-Dist and nothing else states dependencies".to_string()
    };
    let mut record = super::unknown(reason);
    record.requires_python = requires_python.clone();
    SdistMetadata::NeedsBuild(finish(record))
}

/// Read an sdist held in memory: its members, then the decision.
pub fn extract_sdist(
    filename: &str,
    bytes: &[u8],
    limits: &Limits,
) -> Result<SdistMetadata, ExtractError> {
    let members = read_members(filename, bytes, limits)?;
    Ok(decide(&members))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(pkg_info: &str) -> SdistMembers {
        SdistMembers {
            pkg_info: Some(pkg_info.as_bytes().to_vec()),
            has_setup_py: true,
            ..SdistMembers::default()
        }
    }

    #[test]
    fn pkg_info_2_2_wins_unless_dynamic() {
        let outcome = decide(&members("Metadata-Version: 2.2\nRequires-Dist: a\n"));
        let SdistMetadata::Static(record) = outcome else {
            panic!("static expected")
        };
        assert_eq!(record.source, MetadataSource::SdistPkgInfo);
        assert_eq!(record.requires_dist, ["a"]);
        assert_eq!(
            record.build_backend.as_deref(),
            Some("setuptools.build_meta:__legacy__")
        );

        let dynamic = decide(&members("Metadata-Version: 2.2\nDynamic: Requires-Dist\n"));
        let SdistMetadata::NeedsBuild(record) = dynamic else {
            panic!("needs a build")
        };
        assert_eq!(record.source, MetadataSource::Unknown);
        assert!(record.detail.expect("reason").contains("dynamic"));
    }

    #[test]
    fn setup_py_only_is_unknown_with_a_reason() {
        let outcome = decide(&members("Metadata-Version: 1.0\nName: old\n"));
        let record = outcome.into_record();
        assert_eq!(record.source, MetadataSource::Unknown);
        assert!(record.detail.expect("reason").contains("setup.py"));
    }

    #[test]
    fn egg_info_without_requires_means_no_dependencies() {
        let mut sdist = members("Metadata-Version: 1.1\n");
        sdist.egg_infos.push(EggInfo {
            dir: "x-1.0/x.egg-info".into(),
            matches_project: true,
            requires: None,
        });
        let record = decide(&sdist).into_record();
        assert_eq!(record.source, MetadataSource::EggInfo);
        assert!(record.requires_dist.is_empty());
    }

    #[test]
    fn setup_cfg_is_the_last_static_source() {
        let mut sdist = members("Metadata-Version: 2.1\n");
        sdist.setup_cfg = Some(b"[options]\ninstall_requires =\n    requests\n".to_vec());
        let record = decide(&sdist).into_record();
        assert_eq!(record.source, MetadataSource::SetupCfg);
        assert_eq!(record.requires_dist, ["requests"]);
        sdist.pyproject = Some(b"[project]\nname = \"x\"\ndependencies = [\"attrs\"]\n".to_vec());
        let record = decide(&sdist).into_record();
        assert_eq!(record.source, MetadataSource::Pyproject);
        assert_eq!(record.requires_dist, ["attrs"]);
    }

    #[test]
    fn paths_below_the_top_directory_are_recognized() {
        assert_eq!(wanted("x-1/PKG-INFO"), Some(Wanted::PkgInfo));
        let egg = |dir: &str, requires| {
            Some(Wanted::Egg {
                dir: dir.into(),
                requires,
            })
        };
        assert_eq!(
            wanted("x-1/x.egg-info/requires.txt"),
            egg("x-1/x.egg-info", true)
        );
        assert_eq!(
            wanted("x-1/src/x.egg-info/requires.txt"),
            egg("x-1/src/x.egg-info", true)
        );
        assert_eq!(
            wanted("x-1/lib/x.egg-info/PKG-INFO"),
            egg("x-1/lib/x.egg-info", false)
        );
        assert_eq!(wanted("x-1/docs/PKG-INFO"), None);
        assert_eq!(wanted("PKG-INFO"), None);
    }

    /// matplotlib 3.7.2 keeps its egg-info in `lib/`, pyyaml in `lib/` and `lib3/`: only
    /// `top/` and `top/src/` were looked at, and the sdists were "unknown".
    #[test]
    fn regression_the_projects_egg_info_is_found_wherever_it_is() {
        let mut sdist = SdistMembers::for_file("PyYAML-5.1.tar.gz");
        let take = |sdist: &mut SdistMembers, path: &str, bytes: &[u8]| {
            sdist.see(path);
            let kind = wanted(path).expect("wanted");
            sdist.take(kind, Some(bytes.to_vec()));
        };
        take(
            &mut sdist,
            "PyYAML-5.1/PKG-INFO",
            b"Metadata-Version: 1.1\n",
        );
        take(
            &mut sdist,
            "PyYAML-5.1/tests/vendored/six.egg-info/requires.txt",
            b"bogus\n",
        );
        take(
            &mut sdist,
            "PyYAML-5.1/lib3/PyYAML.egg-info/requires.txt",
            b"",
        );
        take(
            &mut sdist,
            "PyYAML-5.1/lib/PyYAML.egg-info/requires.txt",
            b"",
        );
        let egg = sdist.egg_info().expect("found");
        assert_eq!(egg.dir, "PyYAML-5.1/lib/PyYAML.egg-info");
        assert_eq!(sdist.egg_infos.len(), 2, "the vendored one is not kept");
        let record = decide(&sdist).into_record();
        assert_eq!(record.source, MetadataSource::EggInfo);
    }

    #[test]
    fn a_sorted_archive_is_decided_once_past_setup_cfg() {
        let mut sdist = SdistMembers::for_file("x-1.0.tar.gz");
        let mut see = |path: &str, bytes: Option<&[u8]>| {
            sdist.see(path);
            if let Some(kind) = wanted(path) {
                sdist.take(kind, bytes.map(<[u8]>::to_vec));
            }
            sdist.decided()
        };
        assert!(!see("x-1.0/LICENSE", None));
        assert!(!see("x-1.0/PKG-INFO", Some(b"Metadata-Version: 2.1\n")));
        assert!(!see("x-1.0/setup.cfg", Some(b"[metadata]\n")));
        assert!(!see("x-1.0/x.egg-info/PKG-INFO", Some(b"")));
        // pyproject.toml would have come before setup.cfg: it is absent.
        assert!(see("x-1.0/x.egg-info/requires.txt", Some(b"six\n")));

        let mut unsorted = SdistMembers::for_file("x-1.0.tar.gz");
        for (path, bytes) in [
            ("x-1.0/setup.py", None),
            ("x-1.0/PKG-INFO", Some(&b"Metadata-Version: 2.2\n"[..])),
            ("x-1.0/setup.cfg", Some(b"")),
        ] {
            unsorted.see(path);
            unsorted.take(wanted(path).expect("wanted"), bytes.map(<[u8]>::to_vec));
        }
        assert!(!unsorted.decided(), "pyproject.toml may still come");
    }

    #[test]
    fn formats_come_from_the_file_name() {
        assert_eq!(Format::of("Twisted-8.2.0.tar.bz2"), Ok(Format::TarBz2));
        assert_eq!(Format::of("x-1.tgz"), Ok(Format::TarGz));
        assert_eq!(Format::of("x-1.tar.xz"), Ok(Format::TarXz));
        assert_eq!(Format::of("x-1.ZIP"), Ok(Format::Zip));
        assert!(Format::of("x-1.tar.Z").is_err());
    }
}
