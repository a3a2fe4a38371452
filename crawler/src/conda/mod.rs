//! Conda channels: `crawl --conda CHANNEL/SUBDIR` fetches a channel's `repodata.json`
//! into the crawl state, and `publish-db` adds its package records to the snapshot.
//!
//! The crawl state keeps each fetched repodata as a file, `STATE/conda/<channel>/<subdir>/
//! repodata.json` (always decompressed), next to `fetch.json` (the URL it came from, its ETag and
//! the base URL of the downloads). Files rather than SQLite rows: a channel's repodata is one
//! document replaced as a whole, tens of megabytes for big channels, and keeping it verbatim lets
//! a newer publisher re-read fields this one ignores. Each file is replaced atomically, so a
//! killed crawl leaves either the old or the new repodata.
//!
//! `repodata.json.zst` is asked for first (what anaconda.org and conda-forge offer); a 404 falls
//! back to `repodata.json`. `--conda-current` fetches `current_repodata.json` instead (only the
//! newest version of each package), stored in the same place. Decompression uses `ruzstd` (pure Rust, no C toolchain needed).
//!
//! Records are read leniently (`serde_json::Value`, field by field): a record without a name,
//! version or build is skipped and reported; match specs are kept exactly as published, and
//! [`check_specs`](crate::conda::check_specs) parses them with `rattler_conda_types` (the conda ecosystem's Rust types,
//! used by pixi and rattler-build) to report the ones that do not parse, never failing on them.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use db_format::{CondaRecord, ShardedWriter};
use rattler_conda_types::{MatchSpec, ParseStrictness};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::pypi::client::{Client, RequestKind};
use crate::{Error, Result};

/// The default place channels are fetched from.
pub const DEFAULT_BASE_URL: &str = "https://conda.anaconda.org";

/// Largest repodata accepted (conda-forge's linux-64 is a few hundred MB uncompressed).
const REPODATA_LIMIT: u64 = 2 << 30;

/// One `CHANNEL/SUBDIR` to crawl.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChannelSubdir {
    pub channel: String,
    pub subdir: String,
}

impl FromStr for ChannelSubdir {
    type Err = Error;

    /// `intel/linux-64`, `conda-forge/noarch`; the subdir is the part after the last `/`.
    fn from_str(text: &str) -> Result<Self> {
        let usage = |why: &str| Error::Usage(format!("--conda {text:?}: {why}"));
        let (channel, subdir) = text
            .trim()
            .rsplit_once('/')
            .ok_or_else(|| usage("expected CHANNEL/SUBDIR, e.g. intel/linux-64"))?;
        let safe = |part: &str| {
            !part.is_empty()
                && part.split('/').all(|segment| {
                    !segment.is_empty()
                        && segment != "."
                        && segment != ".."
                        && segment
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                })
        };
        if !safe(channel) || !safe(subdir) {
            return Err(usage(
                "channel and subdir are made of letters, digits, '.', '_' and '-'",
            ));
        }
        Ok(ChannelSubdir {
            channel: channel.to_string(),
            subdir: subdir.to_string(),
        })
    }
}

impl std::fmt::Display for ChannelSubdir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.channel, self.subdir)
    }
}

/// What `fetch.json` remembers of the last fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchInfo {
    /// The URL the repodata came from (`.json.zst` or `.json`).
    pub url: String,
    pub etag: Option<String>,
    /// Downloads are `base_url/<filename>`: the repodata's `info.base_url` when it has one,
    /// else the directory the repodata came from.
    pub base_url: String,
}

/// How one fetch went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// New or changed repodata was stored.
    Updated { url: String, bytes: u64 },
    /// The server answered 304 to our ETag: the stored repodata is current.
    Unchanged,
}

fn subdir_dir(state_dir: &Path, target: &ChannelSubdir) -> PathBuf {
    state_dir
        .join("conda")
        .join(&target.channel)
        .join(&target.subdir)
}

fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut temp, bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|err| err.error)?;
    Ok(())
}

fn read_fetch_info(dir: &Path) -> Result<Option<FetchInfo>> {
    let path = dir.join("fetch.json");
    if !path.exists() {
        return Ok(None);
    }
    let text = fs_err::read(&path)?;
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|err| Error::Input {
            file: path,
            line: err.line(),
            message: format!("not a conda fetch record: {err}"),
        })
}

/// Which index of a channel subdir to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Index {
    /// `repodata.json`: every package file.
    #[default]
    Full,
    /// `current_repodata.json`: only the newest version of each package (and what it needs),
    /// much smaller; conda's own first try.
    Current,
}

impl Index {
    fn stem(self) -> &'static str {
        match self {
            Index::Full => "repodata",
            Index::Current => "current_repodata",
        }
    }
}

/// Fetch one channel subdir into the state directory, with the stored ETag.
pub async fn fetch(
    client: &Client,
    base_url: &Url,
    state_dir: &Path,
    target: &ChannelSubdir,
    index: Index,
) -> Result<Fetch> {
    let dir = subdir_dir(state_dir, target);
    let previous = read_fetch_info(&dir)?.filter(|_| dir.join("repodata.json").exists());
    let folder = format!(
        "{}/{}/{}/",
        base_url.as_str().trim_end_matches('/'),
        target.channel,
        target.subdir
    );
    let stem = index.stem();
    for (name, compressed) in [
        (format!("{stem}.json.zst"), true),
        (format!("{stem}.json"), false),
    ] {
        let url = Url::parse(&format!("{folder}{name}")).map_err(|err| Error::Url {
            url: format!("{folder}{name}"),
            reason: err.to_string(),
        })?;
        let mut headers = Vec::new();
        if let Some(etag) = previous
            .as_ref()
            .filter(|info| info.url == url.as_str())
            .and_then(|info| info.etag.clone())
        {
            headers.push(("if-none-match", etag));
        }
        let fetched = client
            .get(RequestKind::Page, &url, &headers, REPODATA_LIMIT)
            .await?;
        match fetched.status {
            304 => return Ok(Fetch::Unchanged),
            404 | 403 if compressed => continue,
            200 => {}
            status => {
                return Err(Error::Status {
                    url: url.to_string(),
                    status,
                    attempts: 1,
                });
            }
        }
        let json = if compressed {
            let mut decoder = ruzstd::decoding::StreamingDecoder::new(fetched.body.as_slice())
                .map_err(|err| Error::InvalidResponse {
                    url: url.to_string(),
                    reason: format!("not zstd: {err}"),
                })?;
            let mut out = Vec::new();
            decoder
                .read_to_end(&mut out)
                .map_err(|err| Error::InvalidResponse {
                    url: url.to_string(),
                    reason: format!("zstd stream: {err}"),
                })?;
            out
        } else {
            fetched.body.clone()
        };
        let info_base = repodata_base_url(&json).map_err(|reason| Error::InvalidResponse {
            url: url.to_string(),
            reason,
        })?;
        let info = FetchInfo {
            url: url.to_string(),
            etag: fetched.header("etag").map(str::to_owned),
            base_url: info_base.unwrap_or_else(|| folder.clone()),
        };
        replace_file(&dir.join("repodata.json"), &json)?;
        let info_json =
            serde_json::to_vec_pretty(&info).map_err(|err| Error::Internal(err.to_string()))?;
        replace_file(&dir.join("fetch.json"), &info_json)?;
        return Ok(Fetch::Updated {
            url: url.to_string(),
            bytes: json.len() as u64,
        });
    }
    // The loop returns on every answer to `repodata.json`.
    Err(Error::Internal(format!("no repodata fetched for {target}")))
}

/// Check the document is a repodata object and return its `info.base_url` (CEP 15), if any.
fn repodata_base_url(json: &[u8]) -> std::result::Result<Option<String>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|err| format!("not JSON: {err}"))?;
    let object = value.as_object().ok_or("repodata is not a JSON object")?;
    if !object.contains_key("packages") && !object.contains_key("packages.conda") {
        return Err("repodata has neither \"packages\" nor \"packages.conda\"".into());
    }
    Ok(object
        .get("info")
        .and_then(|info| info.get("base_url"))
        .and_then(|base| base.as_str())
        .map(|base| format!("{}/", base.trim_end_matches('/'))))
}

/// A record of the stored repodata that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRecord {
    pub channel_subdir: String,
    pub filename: String,
    pub reason: String,
}

/// Every stored channel subdir of a state, in order.
pub fn stored(state_dir: &Path) -> Result<Vec<ChannelSubdir>> {
    let root = state_dir.join("conda");
    let mut found = Vec::new();
    if !root.exists() {
        return Ok(found);
    }
    // Channels may have several segments (`conda-forge/label/x`): walk down to repodata files.
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in fs_err::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|name| name == "repodata.json")
                && let Some(relative) = path
                    .parent()
                    .and_then(|parent| parent.strip_prefix(&root).ok())
            {
                let text = relative
                    .components()
                    .map(|part| part.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                found.push(ChannelSubdir::from_str(&text)?);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Read one stored repodata into records (unsorted) and the records it had to skip.
pub fn read_records(
    state_dir: &Path,
    target: &ChannelSubdir,
) -> Result<(Vec<CondaRecord>, Vec<SkippedRecord>)> {
    let dir = subdir_dir(state_dir, target);
    let info = read_fetch_info(&dir)?;
    let path = dir.join("repodata.json");
    let bytes = fs_err::read(&path)?;
    let base_url = info
        .map(|info| info.base_url)
        .unwrap_or_else(|| format!("{DEFAULT_BASE_URL}/{target}/"));
    parse_repodata(target, &base_url, &bytes).map_err(|err| Error::Input {
        file: path,
        line: err.line(),
        message: format!("repodata is not JSON: {err}"),
    })
}

/// Parse the bytes of one `repodata.json` into records (unsorted) and the records it had to
/// skip; `base_url` prefixes each file name. The pure half of [`read_records`] (also the
/// entry point of the `repodata` fuzz target).
pub fn parse_repodata(
    target: &ChannelSubdir,
    base_url: &str,
    bytes: &[u8],
) -> std::result::Result<(Vec<CondaRecord>, Vec<SkippedRecord>), serde_json::Error> {
    let value: serde_json::Value = serde_json::from_slice(bytes)?;
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    for key in ["packages", "packages.conda"] {
        let Some(packages) = value.get(key).and_then(|packages| packages.as_object()) else {
            continue;
        };
        for (filename, record) in packages {
            match record_of(target, base_url, filename, record) {
                Ok(record) => records.push(record),
                Err(reason) => skipped.push(SkippedRecord {
                    channel_subdir: target.to_string(),
                    filename: filename.clone(),
                    reason,
                }),
            }
        }
    }
    Ok((records, skipped))
}

fn record_of(
    target: &ChannelSubdir,
    base_url: &str,
    filename: &str,
    record: &serde_json::Value,
) -> std::result::Result<CondaRecord, String> {
    let text = |field: &str| record.get(field).and_then(|value| value.as_str());
    let required = |field: &str| {
        text(field)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("no {field:?}"))
    };
    let strings = |field: &str| -> std::result::Result<Vec<String>, String> {
        match record.get(field) {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{field:?} holds a non-string: {item}"))
                })
                .collect(),
            Some(other) => Err(format!("{field:?} is not a list: {other}")),
        }
    };
    let digest = |field: &str, len: usize| -> std::result::Result<Option<Vec<u8>>, String> {
        text(field)
            .map(|hex_text| {
                hex::decode(hex_text)
                    .ok()
                    .filter(|bytes| bytes.len() == len)
                    .ok_or_else(|| format!("{field:?} is not {len} bytes of hex: {hex_text:?}"))
            })
            .transpose()
    };
    if filename.is_empty() || filename.contains('/') {
        return Err("file name is empty or has a '/'".into());
    }
    let sha256 = digest("sha256", 32)?.map(|bytes| {
        let mut out = [0; 32];
        out.copy_from_slice(&bytes);
        out
    });
    let md5 = digest("md5", 16)?.map(|bytes| {
        let mut out = [0; 16];
        out.copy_from_slice(&bytes);
        out
    });
    // Old records say `"noarch": true` (meaning generic) or carry `"noarch": null`.
    let noarch = match record.get("noarch") {
        Some(serde_json::Value::String(kind)) => Some(kind.clone()),
        Some(serde_json::Value::Bool(true)) => Some("generic".to_string()),
        _ => None,
    };
    Ok(CondaRecord {
        name: required("name")?,
        channel: target.channel.clone(),
        subdir: target.subdir.clone(),
        filename: filename.to_string(),
        version: required("version")?,
        build: required("build")?,
        build_number: record
            .get("build_number")
            .map(|number| number.as_u64().ok_or("\"build_number\" is not a number"))
            .transpose()?
            .unwrap_or(0),
        depends: strings("depends")?,
        constrains: strings("constrains")?,
        noarch,
        size: record
            .get("size")
            .and_then(|size| size.as_u64())
            .unwrap_or(0),
        sha256,
        md5,
        timestamp: record.get("timestamp").and_then(|time| time.as_i64()),
        url: format!("{base_url}{filename}"),
    })
}

/// All stored conda records of a state, in the snapshot's order, and the skipped ones.
///
/// A file listed in both `packages` and `packages.conda` cannot happen (the extensions
/// differ); the same file name in one channel subdir twice would be a broken repodata, and the
/// second occurrence is skipped.
pub fn all_records(state_dir: &Path) -> Result<(Vec<CondaRecord>, Vec<SkippedRecord>)> {
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    for target in stored(state_dir)? {
        let (mut found, mut bad) = read_records(state_dir, &target)?;
        records.append(&mut found);
        skipped.append(&mut bad);
    }
    records.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let mut unique: Vec<CondaRecord> = Vec::with_capacity(records.len());
    for record in records {
        match unique.last() {
            Some(last) if last.sort_key() == record.sort_key() => skipped.push(SkippedRecord {
                channel_subdir: format!("{}/{}", record.channel, record.subdir),
                filename: record.filename,
                reason: "listed twice".into(),
            }),
            _ => unique.push(record),
        }
    }
    Ok((unique, skipped))
}

/// Add every stored conda record to a snapshot being written; returns how many were added.
/// Called by `publish-db` after the PyPI projects.
pub fn add_to_snapshot(writer: &mut ShardedWriter<'_>, state_dir: &Path) -> Result<u64> {
    let (records, skipped) = all_records(state_dir)?;
    for skip in &skipped {
        tracing::warn!(
            "conda {}: {} skipped: {}",
            skip.channel_subdir,
            skip.filename,
            skip.reason
        );
    }
    let problems = check_specs(&records);
    if !problems.is_empty() {
        tracing::warn!(
            "conda: {} match specs do not parse (kept as published), e.g. {:?} in {}: {}",
            problems.len(),
            problems[0].spec,
            problems[0].filename,
            problems[0].error
        );
    }
    for record in &records {
        writer.add_conda_record(record)?;
    }
    if !records.is_empty() {
        tracing::info!(
            "conda: {} records added ({} skipped, {} match specs kept unparsed)",
            records.len(),
            skipped.len(),
            problems.len()
        );
    }
    Ok(records.len() as u64)
}

/// A match spec of a record that `rattler_conda_types` does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecProblem {
    pub filename: String,
    pub spec: String,
    pub error: String,
}

/// Parse every `depends` and `constrains` spec (lenient mode, as conda itself reads
/// repodata); return those that fail. Each distinct spec string is parsed once.
pub fn check_specs(records: &[CondaRecord]) -> Vec<SpecProblem> {
    let mut verdicts: BTreeMap<&str, Option<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for record in records {
        for spec in record.depends.iter().chain(&record.constrains) {
            let verdict = verdicts.entry(spec).or_insert_with(|| {
                MatchSpec::from_str(spec, ParseStrictness::Lenient)
                    .err()
                    .map(|err| err.to_string())
            });
            if let Some(error) = verdict {
                problems.push(SpecProblem {
                    filename: record.filename.clone(),
                    spec: spec.clone(),
                    error: error.clone(),
                });
            }
        }
    }
    problems
}

/// `crawl --conda`: fetch each target; one failure does not stop the others, but fails the run.
pub async fn crawl_targets(
    client: &Client,
    base_url: &Url,
    state_dir: &Path,
    targets: &[String],
    index: Index,
) -> Result<()> {
    let mut failed = Vec::new();
    for text in targets {
        let target = ChannelSubdir::from_str(text)?;
        match fetch(client, base_url, state_dir, &target, index).await {
            Ok(Fetch::Updated { url, bytes }) => {
                tracing::info!("conda {target}: stored {bytes} bytes of repodata from {url}")
            }
            Ok(Fetch::Unchanged) => tracing::info!("conda {target}: unchanged (ETag)"),
            Err(err) => {
                tracing::warn!("conda {target}: {err}");
                failed.push(format!("{target}: {err}"));
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "conda channels failed: {}",
            failed.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_subdirs_parse_and_refuse_paths() {
        let parsed = ChannelSubdir::from_str("intel/linux-64").expect("valid");
        assert_eq!(
            (parsed.channel.as_str(), parsed.subdir.as_str()),
            ("intel", "linux-64")
        );
        let labelled = ChannelSubdir::from_str("conda-forge/label/dev/noarch").expect("valid");
        assert_eq!(labelled.channel, "conda-forge/label/dev");
        for bad in [
            "intel",
            "/linux-64",
            "intel/",
            "../x/linux-64",
            "a b/noarch",
            "a//noarch",
        ] {
            assert!(ChannelSubdir::from_str(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn specs_that_do_not_parse_are_reported_not_fatal() {
        let record = CondaRecord {
            filename: "x-1-0.tar.bz2".into(),
            depends: vec!["python >=3.9,<3.10.0a0".into(), "numpy >=>=1".into()],
            constrains: vec!["mkl 2021.*".into(), "numpy >=>=1".into()],
            ..CondaRecord::default()
        };
        let problems = check_specs(&[record]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems
                .iter()
                .all(|p| p.spec == "numpy >=>=1" && !p.error.is_empty())
        );
    }

    #[test]
    fn records_are_read_leniently() {
        let target = ChannelSubdir::from_str("intel/noarch").expect("valid");
        let good = serde_json::json!({
            "name": "six", "version": "1.16.0", "build": "pyhd3eb1b0_1", "build_number": 1,
            "depends": ["python"], "noarch": true, "size": 18, "md5": "00112233445566778899aabbccddeeff",
            "timestamp": 1633096985617i64
        });
        let record = record_of(&target, "https://x/intel/noarch/", "six.tar.bz2", &good)
            .expect("good record");
        assert_eq!(record.noarch.as_deref(), Some("generic"));
        assert_eq!(record.url, "https://x/intel/noarch/six.tar.bz2");
        assert_eq!(record.md5.map(|md5| md5[15]), Some(0xff));
        for (bad, why) in [
            (
                serde_json::json!({"version": "1", "build": "0"}),
                "no \"name\"",
            ),
            (
                serde_json::json!({"name": "a", "version": "1", "build": "0", "depends": "x"}),
                "not a list",
            ),
            (
                serde_json::json!({"name": "a", "version": "1", "build": "0", "sha256": "zz"}),
                "hex",
            ),
        ] {
            let err = record_of(&target, "", "a.tar.bz2", &bad).expect_err("bad record");
            assert!(err.contains(why), "{err}");
        }
    }
}
