//! The sdist streaming measurement, run by hand (ignored in the suite: it needs PyPI and
//! minutes). For the first `MEASURE_COUNT` (default 40) sdists of `MEASURE_SAMPLE` (default
//! `tests/sdist-sample.txt`; lines `project version filename sha256 url`, tab-separated):
//! each is downloaded whole (its sha256 checked) and read as before, then read again the way a
//! crawl reads it now ([`crawler::extract::remote::sdist_outcome`]: growing HTTP ranges until
//! the members decide), counting the bytes and requests that took and comparing the two records.
//! One TSV line per sdist on stdout, then the totals:
//! `cargo test -p crawler --test fidelity_measure -- --ignored --nocapture`

use std::path::PathBuf;
use std::time::Duration;

use crawler::extract::Limits;
use crawler::extract::remote::sdist_outcome;
use crawler::extract::sdist::extract_sdist;
use crawler::pypi::{Client, ClientOptions, CoreMetadata, IndexFile, RequestKind};
use db_format::{FileKind, MetadataSource};
use sha2::{Digest, Sha256};

#[test]
#[ignore = "PyPI and minutes: run by hand"]
fn measure_streamed_sdists() {
    let count: usize = std::env::var("MEASURE_COUNT")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(40);
    let sample = std::env::var_os("MEASURE_SAMPLE").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/sdist-sample.txt"),
        PathBuf::from,
    );
    let text = fs_err::read_to_string(&sample).expect("sample");
    let options = ClientOptions {
        concurrency: 4,
        requests_per_second: Some(8.0),
        timeout: Duration::from_secs(120),
        ..ClientOptions::default()
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let limits = Limits::default();
    let (mut whole_bytes, mut streamed_bytes, mut streamed_requests) = (0u64, 0u64, 0u64);
    let (mut read, mut same, mut known_before, mut known_now, mut early) = (0, 0, 0, 0, 0);
    println!("filename\tsize\tstreamed_bytes\trequests\tsame_record\tsource\tdetail");
    for line in text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .take(count)
    {
        let fields: Vec<&str> = line.split('\t').collect();
        let [_, version, filename, sha256, url] = fields[..] else {
            panic!("sample line {line:?}")
        };
        let whole_client = Client::new(options.clone()).expect("client");
        let fetched = runtime
            .block_on(whole_client.get(
                RequestKind::SdistDownload,
                &url::Url::parse(url).expect("url"),
                &[],
                limits.max_download_bytes,
            ))
            .expect("download");
        let body = fetched.body;
        assert_eq!(hex::encode(Sha256::digest(&body)), sha256, "{filename}");
        let before = extract_sdist(filename, &body, &limits).map(|metadata| metadata.into_record());
        let mut digest = [0u8; 32];
        hex::decode_to_slice(sha256, &mut digest).expect("hex");
        let file = IndexFile {
            filename: filename.to_string(),
            version: version.to_string(),
            kind: FileKind::of(filename),
            url: url.to_string(),
            sha256: Some(digest),
            size: body.len() as u64,
            upload_time: None,
            yanked: None,
            requires_python: None,
            core_metadata: CoreMetadata::NotStated,
        };
        let client = Client::new(options.clone()).expect("client");
        let outcome = runtime
            .block_on(sdist_outcome(&client, &file, &limits, None))
            .expect("streamed read");
        let bytes = client.counters().bytes(RequestKind::SdistDownload);
        let requests = client.counters().requests(RequestKind::SdistDownload);
        let record = outcome.record;
        let agrees = match &before {
            Ok(before) => *before == record,
            Err(err) => record
                .detail
                .as_deref()
                .is_some_and(|d| d.contains(&err.to_string())),
        };
        read += 1;
        same += usize::from(agrees);
        early += usize::from(bytes < body.len() as u64);
        known_before += usize::from(
            before
                .as_ref()
                .is_ok_and(|record| record.source != MetadataSource::Unknown),
        );
        known_now += usize::from(record.source != MetadataSource::Unknown);
        whole_bytes += body.len() as u64;
        streamed_bytes += bytes;
        streamed_requests += requests;
        println!(
            "{filename}\t{}\t{bytes}\t{requests}\t{agrees}\t{:?}\t{}",
            body.len(),
            record.source,
            record
                .detail
                .unwrap_or_default()
                .chars()
                .take(80)
                .collect::<String>()
        );
    }
    println!(
        "sdists {read}; whole bytes {whole_bytes}; streamed bytes {streamed_bytes} \
         ({:.2}x fewer); streamed requests {streamed_requests}; stopped early {early}; \
         same record {same}; known (whole read) {known_before}; known (streamed) {known_now}",
        whole_bytes as f64 / streamed_bytes.max(1) as f64
    );
}
