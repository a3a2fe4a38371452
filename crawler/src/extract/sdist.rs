//! Static dependencies of a source distribution, read without running any of its code.
//!
//! The archive (`.tar.gz`, `.tgz`, `.tar`, `.zip`) is walked as a stream; only the few members
//! that state dependencies are read (`PKG-INFO`, `pyproject.toml`, `setup.cfg`,
//! `*.egg-info/requires.txt`), each capped, with every path checked and links refused.
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
    /// `(path, bytes)` of the shallowest `*.egg-info/requires.txt`.
    pub egg_requires: Option<(String, Vec<u8>)>,
    /// Path of the shallowest `*.egg-info/` directory seen.
    pub egg_info_dir: Option<String>,
    pub has_setup_py: bool,
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

/// Which member a path (below the top directory) is, if it is one we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    PkgInfo,
    Pyproject,
    SetupCfg,
    SetupPy,
    EggRequires,
    EggOther,
}

fn wanted(path: &str) -> Option<(Wanted, usize)> {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    // `top/PKG-INFO`, `top/x.egg-info/requires.txt`, `top/src/x.egg-info/requires.txt`.
    let below = parts.get(1..)?;
    match below {
        ["PKG-INFO"] => Some((Wanted::PkgInfo, 1)),
        ["pyproject.toml"] => Some((Wanted::Pyproject, 1)),
        ["setup.cfg"] => Some((Wanted::SetupCfg, 1)),
        ["setup.py"] => Some((Wanted::SetupPy, 1)),
        [dir, "requires.txt"] if dir.ends_with(".egg-info") => Some((Wanted::EggRequires, 2)),
        ["src", dir, "requires.txt"] if dir.ends_with(".egg-info") => {
            Some((Wanted::EggRequires, 3))
        }
        [dir, ..] if dir.ends_with(".egg-info") => Some((Wanted::EggOther, 2)),
        ["src", dir, ..] if dir.ends_with(".egg-info") => Some((Wanted::EggOther, 3)),
        _ => None,
    }
}

impl SdistMembers {
    fn take(&mut self, path: &str, kind: Wanted, depth: usize, bytes: Option<Vec<u8>>) {
        let dir_depth = |dir: &Option<String>| dir.as_ref().map(|d| d.matches('/').count());
        match (kind, bytes) {
            (Wanted::PkgInfo, Some(bytes)) => self.pkg_info = Some(bytes),
            (Wanted::Pyproject, Some(bytes)) => self.pyproject = Some(bytes),
            (Wanted::SetupCfg, Some(bytes)) => self.setup_cfg = Some(bytes),
            (Wanted::SetupPy, _) => self.has_setup_py = true,
            (Wanted::EggRequires, Some(bytes)) => {
                let shallower = self
                    .egg_requires
                    .as_ref()
                    .is_none_or(|(known, _)| known.matches('/').count() > depth);
                if shallower {
                    self.egg_requires = Some((path.to_string(), bytes));
                }
            }
            _ => {}
        }
        if matches!(kind, Wanted::EggRequires | Wanted::EggOther) {
            let dir = path.split('/').take(depth).collect::<Vec<_>>().join("/");
            if dir_depth(&self.egg_info_dir).is_none_or(|known| known > dir.matches('/').count()) {
                self.egg_info_dir = Some(dir);
            }
        }
    }
}

/// Read the interesting members of an sdist held in memory.
pub fn read_members(
    filename: &str,
    bytes: &[u8],
    limits: &Limits,
) -> Result<SdistMembers, ExtractError> {
    let lower = filename.to_ascii_lowercase();
    if lower.ends_with(".zip") {
        return read_zip_members(bytes, limits);
    }
    if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        return read_tar_members(flate2::read::MultiGzDecoder::new(bytes), limits);
    }
    if lower.ends_with(".tar") {
        return read_tar_members(bytes, limits);
    }
    Err(ExtractError::Unsupported(format!(
        "{filename}: only .tar.gz, .tgz, .tar and .zip sdists are read"
    )))
}

fn read_tar_members<R: Read>(reader: R, limits: &Limits) -> Result<SdistMembers, ExtractError> {
    let capped = Capped {
        inner: reader,
        read: 0,
        limit: limits.max_total_bytes,
    };
    let mut archive = tar::Archive::new(capped);
    let mut members = SdistMembers::default();
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
            if escapes || interesting.is_some_and(|(kind, _)| kind != Wanted::EggOther) {
                return Err(ExtractError::Link { path, target });
            }
            continue;
        }
        let Some((wanted_kind, depth)) = interesting else {
            continue;
        };
        if !kind.is_file() {
            continue;
        }
        let bytes = if matches!(wanted_kind, Wanted::SetupPy | Wanted::EggOther) {
            None
        } else {
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
        };
        members.take(&path, wanted_kind, depth, bytes);
    }
    Ok(members)
}

fn read_zip_members(bytes: &[u8], limits: &Limits) -> Result<SdistMembers, ExtractError> {
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
    let mut members = SdistMembers::default();
    for entry in &entries {
        zip::check_path(&entry.name)?;
        let interesting = wanted(&entry.name);
        if entry.is_symlink {
            if interesting.is_some_and(|(kind, _)| kind != Wanted::EggOther) {
                return Err(ExtractError::Link {
                    path: entry.name.clone(),
                    target: String::new(),
                });
            }
            continue;
        }
        let Some((kind, depth)) = interesting else {
            continue;
        };
        let data = if matches!(kind, Wanted::SetupPy | Wanted::EggOther) {
            None
        } else {
            Some(zip::read_member(bytes, entry, limits.max_member_bytes)?)
        };
        members.take(&entry.name, kind, depth, data);
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
    if let Some(cfg) = &setup_cfg {
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
    if let Some((path, bytes)) = &members.egg_requires {
        let deps = parse_requires_txt(&String::from_utf8_lossy(bytes));
        return SdistMetadata::Static(from_static(
            MetadataSource::EggInfo,
            path.clone(),
            &deps,
            &pkg_extras,
        ));
    }
    if let Some(dir) = &members.egg_info_dir {
        let deps = StaticDependencies::default();
        return SdistMetadata::Static(from_static(
            MetadataSource::EggInfo,
            format!("{dir} has no requires.txt: no dependencies"),
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
        sdist.egg_info_dir = Some("x-1.0/x.egg-info".into());
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
        assert_eq!(wanted("x-1/PKG-INFO"), Some((Wanted::PkgInfo, 1)));
        assert_eq!(
            wanted("x-1/x.egg-info/requires.txt"),
            Some((Wanted::EggRequires, 2))
        );
        assert_eq!(
            wanted("x-1/src/x.egg-info/requires.txt"),
            Some((Wanted::EggRequires, 3))
        );
        assert_eq!(wanted("x-1/docs/PKG-INFO"), None);
        assert_eq!(wanted("PKG-INFO"), None);
    }
}
