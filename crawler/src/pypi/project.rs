//! Project pages: the PEP 691 JSON simple page and the JSON API, both read into one
//! [`ProjectPage`] with absolute file URLs and a version attributed to every file.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use db_format::FileKind;
use db_format::types::{PackageName, SourceDistFilename, Version, WheelFilename};
use serde::Deserialize;
use serde_json::Value;
use url::Url;
use uv_distribution_filename::SourceDistExtension;

/// What the index says about a file's PEP 658 metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreMetadata {
    /// The index did not say (PyPI as seen from some networks drops the key): try it.
    NotStated,
    /// The index says there is none.
    Absent,
    /// The index says it exists, with its sha256 when given.
    Present { sha256: Option<String> },
}

/// One distribution file as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    pub filename: String,
    /// The release version as published (not yet normalized).
    pub version: String,
    pub kind: FileKind,
    /// Absolute URL.
    pub url: String,
    pub sha256: Option<[u8; 32]>,
    pub size: u64,
    pub upload_time: Option<i64>,
    pub yanked: Option<String>,
    pub requires_python: Option<String>,
    pub core_metadata: CoreMetadata,
}

/// A project's files, as one page of the index lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectPage {
    pub name: PackageName,
    pub last_serial: u64,
    pub files: Vec<IndexFile>,
    /// Files whose version could not be told from their name (kept out of `files`).
    pub unattributed: Vec<String>,
}

#[derive(Deserialize)]
struct SimplePage {
    meta: SimpleMeta,
    files: Vec<SimpleFile>,
    #[serde(default)]
    versions: Vec<String>,
}

#[derive(Deserialize)]
struct SimpleMeta {
    #[serde(rename = "_last-serial", default)]
    last_serial: Option<Value>,
}

#[derive(Deserialize)]
struct SimpleFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: serde_json::Map<String, Value>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(rename = "upload-time", default)]
    upload_time: Option<String>,
    #[serde(default)]
    yanked: Option<Value>,
    #[serde(rename = "requires-python", default)]
    requires_python: Option<String>,
    #[serde(rename = "core-metadata", default)]
    core_metadata: Option<Value>,
    #[serde(rename = "dist-info-metadata", default)]
    dist_info_metadata: Option<Value>,
}

#[derive(Deserialize)]
struct JsonApi {
    #[serde(default)]
    last_serial: Option<Value>,
    info: JsonInfo,
    #[serde(default)]
    releases: std::collections::BTreeMap<String, Vec<JsonFile>>,
}

#[derive(Deserialize)]
struct JsonInfo {
    name: String,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    digests: serde_json::Map<String, Value>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    upload_time_iso_8601: Option<String>,
    #[serde(default)]
    upload_time: Option<String>,
    #[serde(default)]
    yanked: bool,
    #[serde(default)]
    yanked_reason: Option<String>,
    #[serde(default)]
    requires_python: Option<String>,
    #[serde(rename = "core-metadata", default)]
    core_metadata: Option<Value>,
}

/// Parse a PEP 691 JSON project page fetched from `page_url`.
pub fn parse_simple_page(
    name: &PackageName,
    page_url: &Url,
    body: &[u8],
) -> Result<ProjectPage, String> {
    let page: SimplePage =
        serde_json::from_slice(body).map_err(|err| format!("not a PEP 691 JSON page: {err}"))?;
    let mut files = Vec::with_capacity(page.files.len());
    let mut unattributed = Vec::new();
    let releases = ListedReleases::new(&page.versions);
    for file in page.files {
        let Some(version) = version_of(name, &file.filename, &page.versions) else {
            unattributed.push(file.filename);
            continue;
        };
        let version = releases.spelling(version);
        let core = file.core_metadata.or(file.dist_info_metadata);
        files.push(IndexFile {
            kind: FileKind::of(&file.filename),
            url: absolute_url(page_url, &file.url)?,
            sha256: sha256_of(&file.hashes, &file.filename)?,
            size: file.size.unwrap_or(0),
            upload_time: file.upload_time.as_deref().map(parse_time).transpose()?,
            yanked: yanked_of(file.yanked.as_ref(), None),
            requires_python: non_empty(file.requires_python),
            core_metadata: core_metadata_of(core.as_ref()),
            filename: file.filename,
            version,
        });
    }
    Ok(ProjectPage {
        name: name.clone(),
        last_serial: serial_of(page.meta.last_serial.as_ref()),
        files,
        unattributed,
    })
}

/// Parse a JSON API document (`/pypi/NAME/json`) fetched from `page_url`.
pub fn parse_json_api(
    name: &PackageName,
    page_url: &Url,
    body: &[u8],
) -> Result<ProjectPage, String> {
    let doc: JsonApi =
        serde_json::from_slice(body).map_err(|err| format!("not a JSON API document: {err}"))?;
    if PackageName::from_str(&doc.info.name).ok().as_ref() != Some(name) {
        return Err(format!("document is for {:?}, not {name}", doc.info.name));
    }
    let mut files = Vec::new();
    for (version, release_files) in doc.releases {
        for file in release_files {
            let time = file
                .upload_time_iso_8601
                .as_deref()
                .or(file.upload_time.as_deref());
            files.push(IndexFile {
                kind: FileKind::of(&file.filename),
                url: absolute_url(page_url, &file.url)?,
                sha256: sha256_of(&file.digests, &file.filename)?,
                size: file.size.unwrap_or(0),
                upload_time: time.map(parse_time).transpose()?,
                yanked: yanked_of(Some(&Value::Bool(file.yanked)), file.yanked_reason),
                requires_python: non_empty(file.requires_python),
                core_metadata: core_metadata_of(file.core_metadata.as_ref()),
                filename: file.filename,
                version: version.clone(),
            });
        }
    }
    Ok(ProjectPage {
        name: name.clone(),
        last_serial: serial_of(doc.last_serial.as_ref()),
        files,
        unattributed: Vec::new(),
    })
}

/// Resolve a file URL (PyPI's JSON API may give `../../packages/...`) against the page URL.
pub fn absolute_url(page_url: &Url, url: &str) -> Result<String, String> {
    page_url
        .join(url)
        .map(String::from)
        .map_err(|err| format!("file URL {url:?}: {err}"))
}

/// Serials come as numbers or (seen in the wild) as strings.
pub(crate) fn serial_of(value: Option<&Value>) -> u64 {
    match value {
        Some(Value::Number(number)) => number.as_u64().unwrap_or(0),
        Some(Value::String(text)) => text.parse().unwrap_or(0),
        _ => 0,
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

fn sha256_of(
    hashes: &serde_json::Map<String, Value>,
    filename: &str,
) -> Result<Option<[u8; 32]>, String> {
    let Some(hex_digest) = hashes.get("sha256").and_then(Value::as_str) else {
        return Ok(None);
    };
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut digest)
        .map_err(|err| format!("{filename}: sha256 {hex_digest:?}: {err}"))?;
    Ok(Some(digest))
}

fn yanked_of(value: Option<&Value>, reason: Option<String>) -> Option<String> {
    match value {
        Some(Value::Bool(true)) => Some(reason.unwrap_or_default()),
        Some(Value::String(reason)) => Some(reason.clone()),
        _ => None,
    }
}

fn core_metadata_of(value: Option<&Value>) -> CoreMetadata {
    match value {
        None | Some(Value::Null) => CoreMetadata::NotStated,
        Some(Value::Bool(false)) => CoreMetadata::Absent,
        Some(Value::Object(hashes)) => CoreMetadata::Present {
            sha256: hashes
                .get("sha256")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
        Some(_) => CoreMetadata::Present { sha256: None },
    }
}

/// Parse an RFC 3339 upload time (with or without offset) into unix seconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(timestamp) = jiff::Timestamp::from_str(text) {
        return Ok(timestamp.as_second());
    }
    jiff::civil::DateTime::from_str(text)
        .and_then(|civil| civil.to_zoned(jiff::tz::TimeZone::UTC))
        .map(|zoned| zoned.timestamp().as_second())
        .map_err(|err| format!("upload time {text:?}: {err}"))
}

/// The releases a page lists (PEP 700 `versions`: PyPI's own release field), by PEP 440 value.
struct ListedReleases<'a>(HashMap<Version, &'a str>);

impl<'a> ListedReleases<'a> {
    fn new(versions: &'a [String]) -> Self {
        ListedReleases(
            versions
                .iter()
                .filter_map(|text| Some((Version::from_str(text).ok()?, text.as_str())))
                .collect(),
        )
    }

    /// The listed release a file's version equals under PEP 440, spelled as the index spells
    /// it (`setuptools-69.3.tar.gz` belongs to release `69.3.0`); else the file's own spelling.
    fn spelling(&self, version: String) -> String {
        Version::from_str(&version)
            .ok()
            .and_then(|parsed| self.0.get(&parsed))
            .map_or(version, |listed| (*listed).to_string())
    }
}

/// Group files into releases, one per PEP 440 version: `69.3` and `69.3.0` are one release.
/// The spelling kept is the longest (ties: the first in string order), which is PyPI's own
/// release field where the two differ only by trailing zeros (a newer sdist name drops them:
/// `setuptools-69.3.tar.gz` in release `69.3.0`). Versions that are not PEP 440 group by their
/// text. Releases come in string order of their spelling.
pub fn group_releases<T>(files: Vec<T>, version: impl Fn(&T) -> &str) -> BTreeMap<String, Vec<T>> {
    #[derive(PartialEq, Eq, Hash)]
    enum Key {
        Pep440(Version),
        Legacy(String),
    }
    let mut groups: HashMap<Key, (String, Vec<T>)> = HashMap::new();
    for file in files {
        let text = version(&file);
        let key =
            Version::from_str(text).map_or_else(|_| Key::Legacy(text.to_string()), Key::Pep440);
        let text = text.to_string();
        let (spelling, members) = groups
            .entry(key)
            .or_insert_with(|| (text.clone(), Vec::new()));
        if (text.len(), std::cmp::Reverse(&text)) > (spelling.len(), std::cmp::Reverse(&*spelling))
        {
            *spelling = text;
        }
        members.push(file);
    }
    groups.into_values().collect()
}

/// The version a file belongs to: from a wheel or sdist name, else the longest listed version
/// that the name starts with.
pub fn version_of(name: &PackageName, filename: &str, versions: &[String]) -> Option<String> {
    if filename.ends_with(".whl") {
        return WheelFilename::from_str(filename)
            .ok()
            .map(|wheel| wheel.version.to_string());
    }
    if let Ok(extension) = SourceDistExtension::from_path(filename)
        && let Ok(sdist) = SourceDistFilename::parse(filename, extension, name)
    {
        return Some(sdist.version.to_string());
    }
    let spelled = filename.to_ascii_lowercase().replace(['_', '.'], "-");
    let prefix = format!("{name}-");
    let rest = spelled.strip_prefix(&prefix)?;
    versions
        .iter()
        .filter(|version| {
            let version = version.to_ascii_lowercase().replace(['_', '.'], "-");
            rest.strip_prefix(version.as_str())
                .is_some_and(|after| after.starts_with(['-', '.']) || after.is_empty())
        })
        .max_by_key(|version| version.len())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> PackageName {
        PackageName::from_str(text).expect("valid name")
    }

    #[test]
    fn relative_urls_are_resolved_against_the_page() {
        let page = Url::parse("https://pypi.org/pypi/iniconfig/json").expect("url");
        assert_eq!(
            absolute_url(
                &page,
                "../../packages/packages/d7/4b/x/iniconfig-2.0.0.tar.gz"
            )
            .expect("joins"),
            "https://pypi.org/packages/packages/d7/4b/x/iniconfig-2.0.0.tar.gz"
        );
        assert_eq!(
            absolute_url(&page, "https://files.example/a.whl").expect("joins"),
            "https://files.example/a.whl"
        );
    }

    #[test]
    fn versions_come_from_file_names() {
        let versions = ["1.0".to_string(), "1.0.1".to_string()];
        let zope = name("zope.interface");
        assert_eq!(
            version_of(&zope, "zope.interface-6.0-cp311-cp311-win_amd64.whl", &[]).as_deref(),
            Some("6.0")
        );
        assert_eq!(
            version_of(&zope, "zope.interface-6.0.tar.gz", &[]).as_deref(),
            Some("6.0")
        );
        assert_eq!(
            version_of(&name("foo"), "foo-1.0.1.win32.exe", &versions).as_deref(),
            Some("1.0.1")
        );
        assert_eq!(
            version_of(&name("foo"), "foo-1.0-py2.7.egg", &versions).as_deref(),
            Some("1.0")
        );
        assert_eq!(version_of(&name("foo"), "bar-1.0.exe", &versions), None);
    }

    /// setuptools published `setuptools-69.3.tar.gz` in release `69.3.0`: its files became two
    /// releases and `setuptools==69.3.0` picked the sdist where pip and uv take the wheel.
    #[test]
    fn regression_files_take_the_listed_release_spelling() {
        let listed = ["69.3.0".to_string(), "69.3.1".to_string()];
        let releases = ListedReleases::new(&listed);
        assert_eq!(releases.spelling("69.3".into()), "69.3.0");
        assert_eq!(releases.spelling("69.3.1".into()), "69.3.1");
        assert_eq!(releases.spelling("70".into()), "70");
        assert_eq!(releases.spelling("not-pep-440".into()), "not-pep-440");
    }

    #[test]
    fn regression_equal_versions_are_one_release() {
        let files = vec![
            "69.3", "69.3.0", "69.3.1", "1.0.0", "1.0", "1", "legacy-x", "legacy-x",
        ];
        let grouped = group_releases(files, |file| file);
        let summary: Vec<(&str, usize)> = grouped
            .iter()
            .map(|(version, files)| (version.as_str(), files.len()))
            .collect();
        assert_eq!(
            summary,
            [("1.0.0", 3), ("69.3.0", 2), ("69.3.1", 1), ("legacy-x", 2)]
        );
    }

    #[test]
    fn upload_times_parse_with_and_without_offset() {
        assert_eq!(parse_time("2023-01-07T11:08:11.254770Z"), Ok(1_673_089_691));
        assert_eq!(parse_time("2023-01-07T11:08:11"), Ok(1_673_089_691));
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn core_metadata_flags_are_read() {
        assert_eq!(core_metadata_of(None), CoreMetadata::NotStated);
        assert_eq!(
            core_metadata_of(Some(&Value::Bool(false))),
            CoreMetadata::Absent
        );
        assert_eq!(
            core_metadata_of(Some(&serde_json::json!({"sha256": "ab"}))),
            CoreMetadata::Present {
                sha256: Some("ab".into())
            }
        );
        assert_eq!(
            core_metadata_of(Some(&Value::Bool(true))),
            CoreMetadata::Present { sha256: None }
        );
    }
}
