//! Fetching what extraction needs, as few bytes as possible.
//!
//! Wheels: the PEP 658 `.metadata` file (its hash checked when the index gives one); else HTTP
//! range requests (the archive's tail, the central directory if it starts earlier, then the
//! `METADATA` member); else the whole wheel. Sdists: tar sdists in growing parts (HTTP ranges)
//! until their first members decide the record, else (zips, small files, servers without
//! ranges) the whole file (capped); read in a blocking task by [`super::sdist`].
//!
//! Failures that a later run may not see again (timeouts, 5xx after all retries) are returned
//! as errors, so the project is marked failed and retried; failures that are facts about the
//! file (404, a corrupt or hostile archive, a hash mismatch) become an "unknown" record with the
//! reason.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use db_format::{DependencyRecord, MetadataSource};
use sha2::{Digest, Sha256};
use url::Url;

use super::metadata::CoreMetadata;
use super::sdist::{Format, SdistMetadata, decide, extract_sdist, read_prefix};
use super::zip::{self, LOCAL_HEADER_LEN, ZipEntry};
use super::{ExtractError, FileOutcome, Limits, Method, unknown};
use crate::pypi::{Client, CoreMetadata as IndexMetadata, IndexFile, RequestKind};
use crate::{Error, Result};

/// Wheels up to this size are fetched whole: one request beats three.
const WHOLE_WHEEL_BELOW: u64 = 64 << 10;
/// The first range request: the archive's last bytes.
const TAIL_BYTES: u64 = 8 << 10;
/// Slack for a local header's extra field, fetched with the member's data.
const LOCAL_EXTRA_SLACK: u64 = 256;

/// Whether PEP 658 files are worth asking for when the index does not say they exist.
///
/// Some mirrors drop the `core-metadata` key and serve `.metadata` for only some wheels; after
/// [`Pep658Probe::SAMPLE`] unstated tries with fewer than one in ten found, the crawler stops
/// asking for unstated ones and goes straight to range requests. The record is the same either
/// way (a PEP 658 file is the wheel's own `METADATA`), so this changes requests, not results.
#[derive(Debug, Default)]
pub struct Pep658Probe {
    tries: AtomicU64,
    hits: AtomicU64,
}

impl Pep658Probe {
    pub const SAMPLE: u64 = 100;

    fn worth_trying(&self, stated: &IndexMetadata) -> bool {
        match stated {
            IndexMetadata::Present { .. } => true,
            IndexMetadata::Absent => false,
            IndexMetadata::NotStated => {
                let tries = self.tries.load(Ordering::Relaxed);
                tries < Self::SAMPLE || self.hits.load(Ordering::Relaxed) * 10 >= tries
            }
        }
    }

    fn record(&self, stated: &IndexMetadata, found: bool) {
        if *stated == IndexMetadata::NotStated {
            self.tries.fetch_add(1, Ordering::Relaxed);
            self.hits.fetch_add(u64::from(found), Ordering::Relaxed);
        }
    }
}

/// The PEP 658 metadata files of one project read so far, by the sha256 the index states for
/// them: the platform wheels of a release mostly share one `METADATA`, which is then fetched
/// once (a compiled project with 100 wheels per release costs one metadata read per release).
/// A hash names the bytes, so a file fetched and checked once speaks for every wheel stating it.
#[derive(Debug, Default)]
pub struct MetadataByHash {
    files: tokio::sync::Mutex<HashMap<String, Arc<MetadataCell>>>,
}

/// One metadata file: unread, or read (`None`: the index answered without it).
type MetadataCell = tokio::sync::OnceCell<Option<Vec<u8>>>;

impl MetadataByHash {
    /// The checked metadata file stating `sha256`, fetched from `url` by the first wheel that
    /// asks. A file whose bytes are not the stated ones is not kept: the caller reads its wheel
    /// instead, and the next wheel asks again.
    async fn get(&self, client: &Client, url: &Url, sha256: &str, limit: u64) -> Result<Stated> {
        let cell = self
            .files
            .lock()
            .await
            .entry(sha256.to_ascii_lowercase())
            .or_default()
            .clone();
        let fetched = cell
            .get_or_try_init(|| async {
                let response = client
                    .get(RequestKind::Metadata, url, &[], limit)
                    .await
                    .map_err(NotKept::Failed)?;
                if response.status != 200 {
                    return Ok(None);
                }
                let actual = hex::encode(Sha256::digest(&response.body));
                if !actual.eq_ignore_ascii_case(sha256) {
                    return Err(NotKept::Mismatch(actual));
                }
                Ok(Some(response.body))
            })
            .await;
        match fetched {
            Ok(Some(bytes)) => Ok(Stated::Found(bytes.clone())),
            Ok(None) => Ok(Stated::Missing),
            Err(NotKept::Mismatch(actual)) => {
                tracing::warn!(
                    %url,
                    "PEP 658 metadata hash mismatch (index {sha256}, got {actual}); reading the wheel"
                );
                Ok(Stated::Missing)
            }
            Err(NotKept::Failed(err)) => Err(err),
        }
    }
}

/// What a PEP 658 file with a stated hash gave.
enum Stated {
    /// Its bytes, whose sha256 is the stated one.
    Found(Vec<u8>),
    /// None to use (the index answered without it, or sent other bytes): read the wheel.
    Missing,
}

/// Why a fetched metadata file is not kept.
enum NotKept {
    Mismatch(String),
    Failed(Error),
}

/// Whether an error says something about the file (record it) rather than the network (retry).
fn is_permanent(error: &Error) -> bool {
    matches!(error, Error::InvalidResponse { .. } | Error::Url { .. })
}

fn parse_url(url: &str) -> Result<Url> {
    Url::parse(url).map_err(|err| Error::Url {
        url: url.to_string(),
        reason: err.to_string(),
    })
}

fn failed(reason: String) -> FileOutcome {
    FileOutcome {
        record: unknown(reason),
        method: Method::Failed,
    }
}

/// A wheel's dependency record. `metadata` holds the PEP 658 files of the wheel's project read
/// so far, by their stated hash.
pub async fn wheel_outcome(
    client: &Client,
    file: &IndexFile,
    limits: &Limits,
    probe: &Pep658Probe,
    metadata: &MetadataByHash,
) -> Result<FileOutcome> {
    match wheel_outcome_inner(client, file, limits, probe, metadata).await {
        Err(err) if is_permanent(&err) => Ok(failed(format!("{}: {err}", file.filename))),
        other => other,
    }
}

async fn wheel_outcome_inner(
    client: &Client,
    file: &IndexFile,
    limits: &Limits,
    probe: &Pep658Probe,
    metadata: &MetadataByHash,
) -> Result<FileOutcome> {
    let url = parse_url(&file.url)?;
    if let IndexMetadata::Present {
        sha256: Some(sha256),
    } = &file.core_metadata
    {
        let metadata_url = parse_url(&format!("{}.metadata", file.url))?;
        let stated = metadata
            .get(client, &metadata_url, sha256, limits.max_member_bytes)
            .await?;
        if let Stated::Found(bytes) = stated {
            return Ok(wheel_record(&bytes, Method::Pep658));
        }
    } else if probe.worth_trying(&file.core_metadata) {
        let metadata_url = parse_url(&format!("{}.metadata", file.url))?;
        let response = client
            .get(
                RequestKind::Metadata,
                &metadata_url,
                &[],
                limits.max_member_bytes,
            )
            .await?;
        probe.record(&file.core_metadata, response.status == 200);
        // No hash stated: the file is the wheel's METADATA as the index serves it.
        if response.status == 200 {
            return Ok(wheel_record(&response.body, Method::Pep658));
        }
    }
    if file.size > WHOLE_WHEEL_BELOW {
        // Issue 9: what the ranges held may have been corrupted on the way (a CRC or a
        // structure that does not add up): read them again, then download the whole file,
        // whose sha256 tells.
        for attempt in 1..=DOWNLOAD_ATTEMPTS {
            match ranged_metadata(client, &url, file, limits).await? {
                Ranged::Metadata(bytes) => return Ok(wheel_record(&bytes, Method::Range)),
                Ranged::Whole(bytes) if hash_mismatch(file, &bytes).is_none() => {
                    return Ok(whole_wheel(file, &bytes, limits, Method::Range));
                }
                Ranged::Unsupported | Ranged::Whole(_) => break,
                Ranged::Broken(err) => tracing::warn!(
                    file = %file.filename,
                    "range read {attempt} of {DOWNLOAD_ATTEMPTS} failed ({err})"
                ),
            }
        }
    }
    let response = match verified_download(client, RequestKind::WheelDownload, file, limits).await?
    {
        Ok(response) => response,
        Err(outcome) => return Ok(outcome),
    };
    Ok(whole_wheel(
        file,
        &response.body,
        limits,
        Method::WheelDownload,
    ))
}

/// Attempts at a download whose sha256 is not the index's (or at range reads of a wheel that do
/// not add up) before that is taken as a fact.
const DOWNLOAD_ATTEMPTS: u32 = 4;

/// Download a file and check its sha256 against the index, downloading again when it differs
/// (a body corrupted on the way must not become the file's record). The inner `Err`
/// is the file's `failed` outcome: a status other than 200, or a mismatch every time.
async fn verified_download(
    client: &Client,
    kind: RequestKind,
    file: &IndexFile,
    limits: &Limits,
) -> Result<std::result::Result<crate::pypi::Fetched, FileOutcome>> {
    let url = parse_url(&file.url)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let response = match client.get(kind, &url, &[], limits.max_download_bytes).await {
            Err(err) if is_permanent(&err) => {
                return Ok(Err(failed(format!("{}: {err}", file.filename))));
            }
            other => other?,
        };
        if response.status != 200 {
            return Ok(Err(failed(format!(
                "{}: download answered HTTP {}",
                file.filename, response.status
            ))));
        }
        match hash_mismatch(file, &response.body) {
            None => return Ok(Ok(response)),
            Some(reason) if attempt >= DOWNLOAD_ATTEMPTS => return Ok(Err(failed(reason))),
            Some(reason) => tracing::warn!("{reason}; downloading again"),
        }
    }
}

fn wheel_record(metadata: &[u8], method: Method) -> FileOutcome {
    FileOutcome {
        record: CoreMetadata::parse(metadata).into_record(MetadataSource::WheelMetadata, None),
        method,
    }
}

/// Read a whole wheel whose sha256 the caller has checked.
fn whole_wheel(file: &IndexFile, bytes: &[u8], limits: &Limits, method: Method) -> FileOutcome {
    let read = || -> Result<Vec<u8>, ExtractError> {
        let entries = zip::entries_of(bytes, limits)?;
        let entry = metadata_entry(&entries)?;
        zip::read_member(bytes, entry, limits.max_member_bytes)
    };
    match read() {
        Ok(metadata) => wheel_record(&metadata, method),
        Err(err) => failed(format!("{}: {err}", file.filename)),
    }
}

fn hash_mismatch(file: &IndexFile, bytes: &[u8]) -> Option<String> {
    let expected = file.sha256?;
    let actual: [u8; 32] = Sha256::digest(bytes).into();
    (actual != expected).then(|| {
        format!(
            "{}: sha256 of the download is {}, the index says {}",
            file.filename,
            hex::encode(actual),
            hex::encode(expected)
        )
    })
}

/// The `METADATA` of the wheel's top-level `*.dist-info` directory.
fn metadata_entry(entries: &[ZipEntry]) -> Result<&ZipEntry, ExtractError> {
    entries
        .iter()
        .find(|entry| {
            let mut parts = entry.name.split('/');
            matches!(
                (parts.next(), parts.next(), parts.next()),
                (Some(dir), Some("METADATA"), None) if dir.ends_with(".dist-info")
            )
        })
        .ok_or(ExtractError::NoMetadata)
}

enum Ranged {
    Metadata(Vec<u8>),
    /// The server ignored `Range` and sent everything.
    Whole(Vec<u8>),
    /// The server refused ranges: download instead.
    Unsupported,
    Broken(ExtractError),
}

async fn fetch_range(
    client: &Client,
    kind: RequestKind,
    url: &Url,
    start: u64,
    end: u64,
) -> Result<Option<Fetched206>> {
    let response = client
        .get(
            kind,
            url,
            &[("range", format!("bytes={start}-{}", end - 1))],
            end - start + 1,
        )
        .await;
    let response = match response {
        // A server that ignores Range sends the whole file, over this request's limit.
        Err(Error::InvalidResponse { .. }) => return Ok(None),
        other => other?,
    };
    Ok(match response.status {
        206 if response.body.len() as u64 == end - start => Some(Fetched206::Part(response.body)),
        200 => Some(Fetched206::Whole(response.body)),
        _ => None,
    })
}

enum Fetched206 {
    Part(Vec<u8>),
    Whole(Vec<u8>),
}

async fn ranged_metadata(
    client: &Client,
    url: &Url,
    file: &IndexFile,
    limits: &Limits,
) -> Result<Ranged> {
    let size = file.size;
    let mut tail_start = size.saturating_sub(TAIL_BYTES);
    let mut tail = match fetch_range(client, RequestKind::WheelRange, url, tail_start, size).await?
    {
        Some(Fetched206::Part(bytes)) => bytes,
        Some(Fetched206::Whole(bytes)) => return Ok(Ranged::Whole(bytes)),
        None => return Ok(Ranged::Unsupported),
    };
    let mut located = zip::locate_central_directory(&tail, tail_start);
    // Data after the end record (which zip tools ignore) can push it out of the first tail:
    // look as far back as Python's zipfile does.
    let wider = size.min(zip::MAX_END_RECORD_DISTANCE);
    if located.is_err() && (tail.len() as u64) < wider {
        let start = size - wider;
        match fetch_range(client, RequestKind::WheelRange, url, start, tail_start).await? {
            Some(Fetched206::Part(mut head)) => {
                head.extend_from_slice(&tail);
                tail = head;
                tail_start = start;
                located = zip::locate_central_directory(&tail, tail_start);
            }
            Some(Fetched206::Whole(bytes)) => return Ok(Ranged::Whole(bytes)),
            None => return Ok(Ranged::Unsupported),
        }
    }
    let directory = match located {
        Ok(directory) => directory,
        Err(err) => return Ok(Ranged::Broken(err)),
    };
    let directory_end = directory.offset.saturating_add(directory.size);
    if directory_end > size || directory.size > limits.max_member_bytes.max(64 << 20) {
        return Ok(Ranged::Broken(ExtractError::Corrupt(
            "central directory lies outside the archive".into(),
        )));
    }
    if directory.offset < tail_start {
        let Some(Fetched206::Part(mut head)) = fetch_range(
            client,
            RequestKind::WheelRange,
            url,
            directory.offset,
            tail_start,
        )
        .await?
        else {
            return Ok(Ranged::Unsupported);
        };
        head.extend_from_slice(&tail);
        tail = head;
        tail_start = directory.offset;
    }
    let from = usize::try_from(directory.offset - tail_start).unwrap_or(usize::MAX);
    let to = usize::try_from(directory_end - tail_start).unwrap_or(usize::MAX);
    let Some(directory_bytes) = tail.get(from..to) else {
        return Ok(Ranged::Broken(ExtractError::Corrupt(
            "central directory is truncated".into(),
        )));
    };
    let entries = match zip::parse_central_directory(directory_bytes, directory.shift, limits) {
        Ok(entries) => entries,
        Err(err) => return Ok(Ranged::Broken(err)),
    };
    let entry = match metadata_entry(&entries) {
        Ok(entry) => entry.clone(),
        Err(err) => return Ok(Ranged::Broken(err)),
    };
    if entry.uncompressed_size > limits.max_member_bytes {
        return Ok(Ranged::Broken(ExtractError::MemberTooLarge {
            path: entry.name,
            size: entry.uncompressed_size,
            limit: limits.max_member_bytes,
        }));
    }
    let start = entry.local_header_offset;
    let guess =
        LOCAL_HEADER_LEN + entry.name.len() as u64 + LOCAL_EXTRA_SLACK + entry.compressed_size;
    let end = start.saturating_add(guess).min(size);
    // `METADATA` is written near the end of a wheel: often the tail already holds it.
    let mut member = if start >= tail_start {
        let from = usize::try_from(start - tail_start).unwrap_or(usize::MAX);
        tail.get(from..).unwrap_or_default().to_vec()
    } else {
        let Some(Fetched206::Part(member)) =
            fetch_range(client, RequestKind::WheelRange, url, start, end).await?
        else {
            return Ok(Ranged::Unsupported);
        };
        member
    };
    let end = start + member.len() as u64;
    let data_offset = match zip::local_data_offset(&member) {
        Ok(offset) => offset,
        Err(err) => return Ok(Ranged::Broken(err)),
    };
    let needed = data_offset + entry.compressed_size;
    if needed > member.len() as u64 {
        let more_end = start.saturating_add(needed).min(size);
        let Some(Fetched206::Part(more)) =
            fetch_range(client, RequestKind::WheelRange, url, end, more_end).await?
        else {
            return Ok(Ranged::Unsupported);
        };
        member.extend_from_slice(&more);
    }
    let data = member
        .get(usize::try_from(data_offset).unwrap_or(usize::MAX)..)
        .unwrap_or_default();
    Ok(match zip::inflate(&entry, data, limits.max_member_bytes) {
        Ok(bytes) => Ranged::Metadata(bytes),
        Err(err) => Ranged::Broken(err),
    })
}

/// Sdists up to this size are downloaded whole at once: one request beats several.
const WHOLE_SDIST_BELOW: u64 = 128 << 10;
/// The first part of a larger sdist read; each further part makes what has been read four
/// times as long (few requests for sdists read to their end, at most 4× the bytes needed).
const FIRST_SDIST_PART: u64 = 64 << 10;

/// What reading an sdist part by part gave.
enum Streamed {
    /// Its first bytes decided the record; a second read of them gave the same bytes.
    Decided(SdistMetadata),
    /// It was read to its end and its sha256 is the index's.
    Whole(Vec<u8>),
    /// Read it whole instead (ranges refused, bytes that did not agree, an unreadable archive).
    Download,
}

/// A whole sdist read in parts, if its sha256 is the index's.
fn checked(file: &IndexFile, bytes: Vec<u8>) -> Streamed {
    match hash_mismatch(file, &bytes) {
        None => Streamed::Whole(bytes),
        Some(reason) => {
            tracing::warn!("{reason}; downloading again");
            Streamed::Download
        }
    }
}

/// Read a tar sdist in growing parts (HTTP ranges: 64 KiB, then ×4) until its members decide
/// the record ([`super::sdist::read_prefix`]), instead of downloading it whole. The index's
/// sha256 covers only whole files, so bytes that decided early are read a second time (one
/// range request) and must be the same: a body corrupted on the way never becomes the record.
/// Where that second read would cost more than the rest of the file, the rest is read and the
/// whole file checked instead, so a streamed sdist never costs more bytes than a download.
async fn streamed_sdist(client: &Client, file: &IndexFile, limits: &Limits) -> Result<Streamed> {
    let streams = Format::of(&file.filename).is_ok_and(Format::streams);
    if !streams || file.size <= WHOLE_SDIST_BELOW || file.size > limits.max_download_bytes {
        return Ok(Streamed::Download);
    }
    let url = parse_url(&file.url)?;
    let kind = RequestKind::SdistDownload;
    let mut prefix: Vec<u8> = Vec::new();
    loop {
        let have = prefix.len() as u64;
        let want = (have * 4).max(FIRST_SDIST_PART).min(file.size);
        match fetch_range(client, kind, &url, have, want).await? {
            Some(Fetched206::Part(part)) => prefix.extend_from_slice(&part),
            Some(Fetched206::Whole(body)) => return Ok(checked(file, body)),
            _ => return Ok(Streamed::Download),
        }
        let complete = want == file.size;
        let (filename, limits_copy) = (file.filename.clone(), *limits);
        let read = std::sync::Arc::new(prefix);
        let shared = read.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            read_prefix(&filename, &shared, complete, &limits_copy)
        })
        .await
        .map_err(|err| Error::Internal(format!("sdist reader task failed: {err}")))?;
        prefix = std::sync::Arc::try_unwrap(read).unwrap_or_else(|shared| shared.to_vec());
        if complete {
            // Read to its end: the index's sha256 tells whether these are the file's bytes (a
            // broken archive is then a fact about the file, recorded by the caller).
            return Ok(checked(file, prefix));
        }
        match outcome {
            Ok(None) => continue,
            // Decided past the middle: reading the rest (and checking the whole file's sha256)
            // costs less than reading the decided bytes again.
            Ok(Some(_)) if file.size - want <= want => {
                match fetch_range(client, kind, &url, want, file.size).await? {
                    Some(Fetched206::Part(rest)) => prefix.extend_from_slice(&rest),
                    _ => return Ok(Streamed::Download),
                }
                return Ok(checked(file, prefix));
            }
            Ok(Some(members)) => {
                let again = match fetch_range(client, kind, &url, 0, want).await? {
                    Some(Fetched206::Part(again)) => again,
                    _ => return Ok(Streamed::Download),
                };
                if again != prefix {
                    tracing::warn!(
                        file = %file.filename,
                        "two reads of the first {want} bytes differ; downloading whole"
                    );
                    return Ok(Streamed::Download);
                }
                return Ok(Streamed::Decided(decide(&members)));
            }
            // A broken archive is told by a hash-checked download, not by a part of one.
            Err(_) => return Ok(Streamed::Download),
        }
    }
}

/// An sdist's dependency record.
/// With a `builder` (`--build-sdists`), an sdist that only a build could tell about is built in
/// the sandbox ([`crate::build`]).
pub async fn sdist_outcome(
    client: &Client,
    file: &IndexFile,
    limits: &Limits,
    builder: Option<&crate::build::Builder>,
) -> Result<FileOutcome> {
    let body = match streamed_sdist(client, file, limits).await? {
        Streamed::Decided(metadata) => {
            return Ok(FileOutcome {
                record: metadata.into_record(),
                method: Method::Sdist,
            });
        }
        Streamed::Whole(body) => body,
        Streamed::Download => {
            match verified_download(client, RequestKind::SdistDownload, file, limits).await? {
                Ok(response) => response.body,
                Err(outcome) => return Ok(outcome),
            }
        }
    };
    let filename = file.filename.clone();
    let limits = *limits;
    let body = std::sync::Arc::new(body);
    let read = body.clone();
    let outcome = tokio::task::spawn_blocking(move || extract_sdist(&filename, &read, &limits))
        .await
        .map_err(|err| Error::Internal(format!("sdist reader task failed: {err}")))?;
    Ok(match outcome {
        // the seam where the sandboxed build takes over.
        Ok(SdistMetadata::NeedsBuild(hint)) => match builder {
            Some(builder) => {
                let record = builder.build(file.filename.clone(), body, hint).await;
                let method = if record.source == MetadataSource::Build {
                    Method::Build
                } else {
                    Method::BuildFailed
                };
                FileOutcome { record, method }
            }
            None => FileOutcome {
                record: hint,
                method: Method::SdistNeedsBuild,
            },
        },
        Ok(metadata) => FileOutcome {
            record: metadata.into_record(),
            method: Method::Sdist,
        },
        Err(err) => FileOutcome {
            record: DependencyRecord {
                ..unknown(format!("{}: {err}", file.filename))
            },
            method: Method::Sdist,
        },
    })
}
