//! A fake PyPI for the tests: a real HTTP/1.1 server on 127.0.0.1 that serves the responses
//! recorded from live PyPI by `scripts/record-pypi-fixtures.py` (`tests/data/`), rewrites their
//! file URLs to point at itself, answers range requests (also from the recorded slices of large
//! wheels), honours `If-None-Match`, simulates the endpoints public PyPI has and this network
//! does not (the XML-RPC change log and the PEP 691 JSON root index, built from the recorded
//! serials), and injects faults on demand: 429 with Retry-After, 500, stalls, truncated or corrupted bodies.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mach-nix-crawler")
}

/// The normalized names of every recorded project.
pub fn recorded_projects() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir().join("simple"))
        .expect("tests/data/simple exists")
        .map(|entry| {
            entry
                .expect("readable")
                .path()
                .file_stem()
                .expect("named")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// A fault to inject into the next request whose path contains a given text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Status(u16),
    TooMany {
        retry_after: u64,
    },
    Stall(Duration),
    /// Send the headers and half the body, then close.
    Truncate,
    /// Send the whole body with some bytes flipped (same length, so HTTP cannot tell). Only
    /// files (`/files/...`) are corrupted: they carry a checksum (sha256 in the index, a stated
    /// `.metadata` hash, zip CRC-32s); an index page has none (TLS keeps it intact), so a page
    /// is truncated instead.
    Corrupt,
    /// Answer `302 Found` pointing at this URL (`{port}` becomes the server's port).
    Redirect(String),
}

/// One request the server saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub range: Option<String>,
    pub user_agent: Option<String>,
    /// When the request arrived.
    pub at: std::time::Instant,
}

#[derive(Default)]
struct Shared {
    faults: Vec<(String, VecDeque<Fault>)>,
    seen: Vec<Seen>,
    /// Synthetic projects: name -> files (filename, bytes, upload time).
    extra: BTreeMap<String, Vec<(String, Vec<u8>, String)>>,
    /// Add `core-metadata` with this sha256 (or the real one when `None`) to simple pages.
    core_metadata: Option<Option<String>>,
    xmlrpc_enabled: bool,
    /// Random faults: (state of a xorshift generator, one in N requests).
    chaos: Option<(u64, u64)>,
    /// The faults chaos picks from; empty: 500, 429, truncated body, 503.
    chaos_faults: Vec<Fault>,
    /// Every fault injected so far, scripted or random, with the request path.
    injected: Vec<(String, Fault)>,
    /// Answer 401 unless a request carries this `Authorization` header.
    authorization: Option<String>,
    /// Synthetic files whose body never ends (the page states their real size).
    endless: std::collections::BTreeSet<String>,
    /// Body bytes sent for endless files.
    endless_sent: u64,
    /// When each endless body started.
    endless_starts: Vec<std::time::Instant>,
    /// Simple pages without an ETag (as PyPI answers from some networks), so never 304.
    no_etags: bool,
}

pub struct FakePypi {
    port: u16,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
}

impl Drop for FakePypi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl FakePypi {
    pub fn start() -> FakePypi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("address").port();
        let shared = Arc::new(Mutex::new(Shared {
            xmlrpc_enabled: true,
            ..Shared::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_shared, thread_stop) = (shared.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = thread_shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, port, &shared);
                });
            }
        });
        FakePypi { port, shared, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn fault(&self, path_contains: &str, faults: Vec<Fault>) {
        self.shared
            .lock()
            .expect("lock")
            .faults
            .push((path_contains.to_string(), faults.into()));
    }

    pub fn chaos(&self, seed: u64, one_in: u64) {
        self.shared.lock().expect("lock").chaos = Some((seed | 1, one_in));
    }

    /// Chaos picking from the given faults (the fault run: timeouts, corrupted bodies).
    pub fn chaos_with(&self, seed: u64, one_in: u64, faults: Vec<Fault>) {
        let mut shared = self.shared.lock().expect("lock");
        shared.chaos = Some((seed | 1, one_in));
        shared.chaos_faults = faults;
    }

    /// Every fault injected so far, with the request path.
    pub fn injected(&self) -> Vec<(String, Fault)> {
        self.shared.lock().expect("lock").injected.clone()
    }

    pub fn set_xmlrpc(&self, enabled: bool) {
        self.shared.lock().expect("lock").xmlrpc_enabled = enabled;
    }

    /// Make simple pages state `core-metadata` (with the real hash, or the given one).
    pub fn state_core_metadata(&self, sha256: Option<String>) {
        self.shared.lock().expect("lock").core_metadata = Some(sha256);
    }

    /// Serve a synthetic project (for hostile archives).
    pub fn add_project(&self, name: &str, files: Vec<(String, Vec<u8>)>) {
        self.shared.lock().expect("lock").extra.insert(
            name.to_string(),
            files
                .into_iter()
                .map(|(filename, bytes)| (filename, bytes, "2024-01-01T00:00:00Z".to_string()))
                .collect(),
        );
    }

    /// Require this `Authorization` header of every request (401 without it).
    pub fn require_authorization(&self, header: &str) {
        self.shared.lock().expect("lock").authorization = Some(header.to_string());
    }

    /// Send no ETag with simple pages (and so never 304), or send them again.
    pub fn send_etags(&self, send: bool) {
        self.shared.lock().expect("lock").no_etags = !send;
    }

    /// Serve the synthetic file `filename` as a body that never ends.
    pub fn endless(&self, filename: &str) {
        self.shared
            .lock()
            .expect("lock")
            .endless
            .insert(filename.to_string());
    }

    /// When each endless body since the last call started, in order.
    pub fn take_endless_starts(&self) -> Vec<std::time::Instant> {
        let mut starts = std::mem::take(&mut self.shared.lock().expect("lock").endless_starts);
        starts.sort();
        starts
    }

    /// Body bytes sent for endless files so far.
    pub fn endless_sent(&self) -> u64 {
        self.shared.lock().expect("lock").endless_sent
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().expect("lock").seen.clone()
    }

    pub fn clear_seen(&self) {
        self.shared.lock().expect("lock").seen.clear();
    }
}

struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Request {
        method,
        path,
        headers,
        body,
    })
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn response(status: u16, content_type: &str, body: Vec<u8>) -> Response {
    Response {
        status,
        headers: vec![("Content-Type".into(), content_type.into())],
        body,
    }
}

fn not_found() -> Response {
    response(404, "text/plain", b"404 Not Found".to_vec())
}

fn serve(mut stream: TcpStream, port: u16, shared: &Mutex<Shared>) -> std::io::Result<()> {
    let request = read_request(&stream)?;
    let at = std::time::Instant::now();
    let fault = {
        let mut shared = shared.lock().expect("lock");
        let scripted = shared
            .faults
            .iter_mut()
            .find(|(needle, queue)| request.path.contains(needle.as_str()) && !queue.is_empty())
            .and_then(|(_, queue)| queue.pop_front());
        let fault = scripted.or_else(|| {
            let (state, one_in) = shared.chaos.as_mut()?;
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            let (hit, pick) = (*state % *one_in == 0, *state >> 8);
            if !hit {
                return None;
            }
            if !shared.chaos_faults.is_empty() {
                let at = (pick % shared.chaos_faults.len() as u64) as usize;
                return Some(shared.chaos_faults[at].clone());
            }
            Some(match pick % 4 {
                0 => Fault::Status(500),
                1 => Fault::TooMany { retry_after: 0 },
                2 => Fault::Truncate,
                _ => Fault::Status(503),
            })
        });
        if let Some(fault) = &fault {
            shared.injected.push((request.path.clone(), fault.clone()));
        }
        fault
    };
    let (authorization, endless) = {
        let shared = shared.lock().expect("lock");
        let endless = request
            .path
            .strip_prefix("/files/synthetic/")
            .is_some_and(|name| shared.endless.contains(name));
        (shared.authorization.clone(), endless)
    };
    if authorization.is_some() && request.headers.get("authorization") != authorization.as_ref() {
        stream.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nWWW-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n",
        )?;
        return stream.flush();
    }
    if endless {
        stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/octet-stream\r\n\r\n")?;
        let chunk = vec![0x42u8; 64 << 10];
        shared
            .lock()
            .expect("lock")
            .endless_starts
            .push(std::time::Instant::now());
        loop {
            stream.write_all(&chunk)?;
            shared.lock().expect("lock").endless_sent += chunk.len() as u64;
            // 32 MiB/s at most: a download of a few hundred KiB takes measurable time.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let mut answer = match &fault {
        Some(Fault::Status(status)) => response(*status, "text/plain", b"injected".to_vec()),
        Some(Fault::TooMany { retry_after }) => {
            let mut answer = response(429, "text/plain", b"slow down".to_vec());
            answer
                .headers
                .push(("Retry-After".into(), retry_after.to_string()));
            answer
        }
        Some(Fault::Stall(duration)) => {
            std::thread::sleep(*duration);
            route(&request, port, shared)
        }
        Some(Fault::Redirect(location)) => {
            let mut answer = response(302, "text/plain", Vec::new());
            answer.headers.push((
                "Location".into(),
                location.replace("{port}", &port.to_string()),
            ));
            answer
        }
        _ => route(&request, port, shared),
    };
    shared.lock().expect("lock").seen.push(Seen {
        method: request.method.clone(),
        path: request.path.clone(),
        status: answer.status,
        range: request.headers.get("range").cloned(),
        user_agent: request.headers.get("user-agent").cloned(),
        at,
    });
    let checksummed = request.path.starts_with("/files/");
    let truncate = (fault == Some(Fault::Truncate)
        || (fault == Some(Fault::Corrupt) && !checksummed))
        && answer.body.len() > 1;
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", answer.status);
    answer
        .headers
        .push(("Content-Length".into(), answer.body.len().to_string()));
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if truncate {
        stream.write_all(&answer.body[..answer.body.len() / 2])?;
    } else if fault == Some(Fault::Corrupt) {
        let mut body = answer.body;
        let len = body.len();
        for at in [len / 3, len / 2, len * 2 / 3] {
            if let Some(byte) = body.get_mut(at) {
                *byte ^= 0x5a;
            }
        }
        stream.write_all(&body)?;
    } else {
        stream.write_all(&answer.body)?;
    }
    stream.flush()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The simple page of a project, recorded or synthetic, with file URLs pointing here.
fn simple_page(name: &str, port: u16, shared: &Mutex<Shared>) -> Option<Vec<u8>> {
    let base = format!("http://127.0.0.1:{port}/files/");
    let (extra, core_metadata) = {
        let shared = shared.lock().expect("lock");
        (
            shared.extra.get(name).cloned(),
            shared.core_metadata.clone(),
        )
    };
    if let Some(files) = extra {
        // `NAME.metadata` entries are the PEP 658 files of wheel NAME, stated when asked to.
        let metadata_of = |filename: &str| {
            files
                .iter()
                .find(|(name, _, _)| *name == format!("{filename}.metadata"))
                .map(|(_, bytes, _)| sha256_hex(bytes))
        };
        let files: Vec<serde_json::Value> = files
            .iter()
            .filter(|(filename, _, _)| !filename.ends_with(".metadata"))
            .map(|(filename, bytes, time)| {
                let mut file = serde_json::json!({
                    "filename": filename,
                    "url": format!("{base}synthetic/{filename}"),
                    "hashes": {"sha256": sha256_hex(bytes)},
                    "size": bytes.len(),
                    "upload-time": time,
                    "yanked": false,
                });
                if let (Some(_), Some(hash)) = (&core_metadata, metadata_of(filename)) {
                    file["core-metadata"] = serde_json::json!({ "sha256": hash });
                }
                file
            })
            .collect();
        let page = serde_json::json!({"meta": {"api-version": "1.1", "_last-serial": 1}, "name": name, "files": files});
        return Some(page.to_string().into_bytes());
    }
    let text =
        std::fs::read_to_string(data_dir().join("simple").join(format!("{name}.json"))).ok()?;
    let text = text.replace("https://files.pythonhosted.org/", &base);
    let Some(stated) = core_metadata else {
        return Some(text.into_bytes());
    };
    let mut page: serde_json::Value = serde_json::from_str(&text).ok()?;
    for file in page["files"].as_array_mut()? {
        let filename = file["filename"].as_str()?.to_string();
        let metadata = std::fs::read(
            data_dir()
                .join("files")
                .join(format!("{filename}.metadata")),
        );
        if let Ok(metadata) = metadata {
            let hash = stated.clone().unwrap_or_else(|| sha256_hex(&metadata));
            file["core-metadata"] = serde_json::json!({ "sha256": hash });
        } else if filename.ends_with(".whl") {
            file["core-metadata"] = serde_json::Value::Bool(false);
        }
    }
    Some(page.to_string().into_bytes())
}

fn serials() -> BTreeMap<String, u64> {
    recorded_projects()
        .into_iter()
        .map(|name| {
            let page: serde_json::Value = serde_json::from_slice(
                &std::fs::read(data_dir().join("simple").join(format!("{name}.json")))
                    .expect("recorded page"),
            )
            .expect("json");
            let serial = match &page["meta"]["_last-serial"] {
                serde_json::Value::String(text) => text.parse().expect("serial"),
                value => value.as_u64().expect("serial"),
            };
            (name, serial)
        })
        .collect()
}

fn route(request: &Request, port: u16, shared: &Mutex<Shared>) -> Response {
    let path = request.path.split('?').next().unwrap_or_default();
    if request.method == "POST" && path == "/pypi" {
        return xmlrpc(request, shared);
    }
    if path == "/simple/" {
        let accept = request.headers.get("accept").cloned().unwrap_or_default();
        let serials = serials();
        if accept.contains("application/vnd.pypi.simple.v1+json") {
            let projects: Vec<serde_json::Value> = serials
                .iter()
                .map(|(name, serial)| serde_json::json!({"name": name, "_last-serial": serial}))
                .collect();
            let top = serials.values().max().copied().unwrap_or(0);
            let body = serde_json::json!({"meta": {"api-version": "1.1", "_last-serial": top}, "projects": projects});
            return response(
                200,
                "application/vnd.pypi.simple.v1+json",
                body.to_string().into_bytes(),
            );
        }
        let mut html = String::from("<!DOCTYPE html><html><body>\n");
        for name in serials.keys() {
            html.push_str(&format!("<a href=\"/simple/{name}/\">{name}</a>\n"));
        }
        html.push_str("</body></html>\n");
        return response(200, "text/html", html.into_bytes());
    }
    if let Some(name) = path
        .strip_prefix("/simple/")
        .and_then(|rest| rest.strip_suffix('/'))
    {
        let Some(body) = simple_page(name, port, shared) else {
            return not_found();
        };
        if shared.lock().expect("lock").no_etags {
            return response(200, "application/vnd.pypi.simple.v1+json", body);
        }
        let etag = format!("\"{}\"", &sha256_hex(&body)[..16]);
        if request.headers.get("if-none-match") == Some(&etag) {
            let mut answer = response(304, "application/vnd.pypi.simple.v1+json", Vec::new());
            answer.headers.push(("ETag".into(), etag));
            return answer;
        }
        let mut answer = response(200, "application/vnd.pypi.simple.v1+json", body);
        answer.headers.push(("ETag".into(), etag));
        return answer;
    }
    if let Some(name) = path
        .strip_prefix("/pypi/")
        .and_then(|rest| rest.strip_suffix("/json"))
    {
        // Recorded JSON API documents mix relative URLs (`../../packages/...`, served below)
        // and absolute ones.
        return match std::fs::read_to_string(data_dir().join("json").join(format!("{name}.json"))) {
            Ok(text) => response(
                200,
                "application/json",
                text.replace(
                    "https://files.pythonhosted.org/",
                    &format!("http://127.0.0.1:{port}/files/"),
                )
                .into_bytes(),
            ),
            Err(_) => not_found(),
        };
    }
    if path.starts_with("/files/") || path.starts_with("/packages/") {
        let filename = path.rsplit('/').next().unwrap_or_default();
        return file(request, filename, path.contains("/synthetic/"), shared);
    }
    not_found()
}

fn file(request: &Request, filename: &str, synthetic: bool, shared: &Mutex<Shared>) -> Response {
    let range = request.headers.get("range").and_then(|value| {
        let (start, end) = value.strip_prefix("bytes=")?.split_once('-')?;
        Some((start.parse::<u64>().ok()?, end.parse::<u64>().ok()?))
    });
    let whole = if synthetic {
        shared
            .lock()
            .expect("lock")
            .extra
            .values()
            .flatten()
            .find(|(name, _, _)| name == filename)
            .map(|(_, bytes, _)| bytes.clone())
    } else {
        std::fs::read(data_dir().join("files").join(filename)).ok()
    };
    if let Some(bytes) = whole {
        return match range {
            Some((start, end)) if start < bytes.len() as u64 => {
                let end = end.min(bytes.len() as u64 - 1);
                let mut answer = response(
                    206,
                    "application/octet-stream",
                    bytes[start as usize..=end as usize].to_vec(),
                );
                answer.headers.push((
                    "Content-Range".into(),
                    format!("bytes {start}-{end}/{}", bytes.len()),
                ));
                answer
            }
            Some(_) => response(416, "text/plain", Vec::new()),
            None => response(200, "application/octet-stream", bytes),
        };
    }
    // Large wheels are recorded as the slices a range reader needs.
    let Ok(text) = std::fs::read_to_string(
        data_dir()
            .join("files")
            .join(format!("{filename}.ranges.json")),
    ) else {
        return not_found();
    };
    let recorded: serde_json::Value = serde_json::from_str(&text).expect("ranges json");
    let size = recorded["size"].as_u64().expect("size");
    let Some((start, end)) = range else {
        // The whole file was not recorded: say so as an unrecorded fixture would.
        return response(
            404,
            "text/plain",
            b"only ranges of this file were recorded".to_vec(),
        );
    };
    let end = end.min(size - 1);
    for slice in recorded["ranges"].as_array().expect("ranges") {
        let offset = slice[0].as_u64().expect("offset");
        let bytes = base64_decode(slice[1].as_str().expect("base64"));
        if offset <= start && end < offset + bytes.len() as u64 {
            let mut answer = response(
                206,
                "application/octet-stream",
                bytes[(start - offset) as usize..=(end - offset) as usize].to_vec(),
            );
            answer.headers.push((
                "Content-Range".into(),
                format!("bytes {start}-{end}/{size}"),
            ));
            return answer;
        }
    }
    response(416, "text/plain", b"range not recorded".to_vec())
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.bytes().filter(|&byte| byte != b'=') {
        let value = ALPHABET.iter().position(|&c| c == byte).expect("base64") as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

fn xmlrpc(request: &Request, shared: &Mutex<Shared>) -> Response {
    if !shared.lock().expect("lock").xmlrpc_enabled {
        return response(405, "text/plain", b"Method Not Allowed".to_vec());
    }
    let body = String::from_utf8_lossy(&request.body);
    // `changelog(time, true)`: every recorded event happened at 1700000000.
    let by_time = body.contains("<methodName>changelog</methodName>");
    let since: u64 = body
        .split("<int>")
        .nth(1)
        .and_then(|rest| rest.split("</int>").next())
        .and_then(|number| number.parse().ok())
        .unwrap_or(0);
    let mut events = String::new();
    for (name, serial) in serials() {
        if (by_time && 1_700_000_000 > since) || (!by_time && serial > since) {
            events.push_str(&format!(
                "<value><array><data><value><string>{name}</string></value><value><string>1</string></value>\
                 <value><int>1700000000</int></value><value><string>new release</string></value>\
                 <value><int>{serial}</int></value></data></array></value>"
            ));
        }
    }
    let xml = format!(
        "<?xml version='1.0'?><methodResponse><params><param><value><array><data>{events}</data></array></value></param></params></methodResponse>"
    );
    response(200, "text/xml", xml.into_bytes())
}

/// Run the crawler binary; panics with its output when it fails.
pub fn run(args: &[&str]) -> std::process::Output {
    let output = std::process::Command::new(bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("crawler runs");
    assert!(
        output.status.success(),
        "mach-nix-crawler {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `crawl` into `state` against the fake index with `extra` flags (a 5 s request timeout unless
/// `extra` sets one); panics with its output when it fails.
pub fn crawl(server: &FakePypi, state: &Path, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = vec![
        "crawl".into(),
        "--state".into(),
        state.display().to_string(),
    ];
    args.extend(fast_flags(server));
    args.extend(extra.iter().map(|s| s.to_string()));
    if !extra.contains(&"--timeout") {
        args.extend(["--timeout".to_string(), "5".to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args)
}

/// The snapshot `hash` published in the tree `out`, read from the tree's blobs.
#[allow(dead_code)] // not every test binary opens snapshots
pub fn open_published(out: &Path, hash: &str) -> db_format::Snapshot {
    let pin = db_format::blob::BlobHash::from_hex(hash.trim()).expect("a pin");
    db_format::Snapshot::from_source(&pin, Box::new(db_format::blob::DirSource::new(out)))
        .expect("the published snapshot opens")
}

/// `publish-db` and return the published hash.
pub fn publish(state: &Path, out: &Path) -> String {
    let output = run(&[
        "publish-db",
        "--state",
        state.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A quiet `crawl --with-deps` of every recorded project with few projects in flight (so kills
/// land between many small commits), plus `extra` flags: the command the crash and fault
/// tests kill and run again.
pub fn kill_test_crawl(server: &FakePypi, state: &Path, extra: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(bin());
    command
        .args(["crawl", "--state", state.to_str().expect("utf-8")])
        .args(fast_flags(server))
        .args([
            "--packages",
            &recorded_projects().join(","),
            "--with-deps",
            "--projects-in-flight",
            "2",
        ])
        .args(extra)
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

/// Common crawl flags for the fake server: fast backoff, short timeouts, no rate limit.
pub fn fast_flags(server: &FakePypi) -> Vec<String> {
    [
        "--index-url",
        &server.url(),
        "--rate",
        "0",
        "--backoff-ms",
        "20",
        "--progress-every",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A `.tar.gz` sdist without its `*.egg-info` members, recompressed. The recorded sampletext
/// sdist ships its egg-info below `sampletext/src/`, where static reading finds it; without it
/// only a build can tell its dependencies (its setup.py computes `install_requires`).
pub fn without_egg_info(tar_gz: &[u8]) -> Vec<u8> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tar_gz));
    let mut out = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for entry in archive.entries().expect("tar") {
        let mut entry = entry.expect("member");
        let path = entry.path().expect("path").into_owned();
        if path.to_string_lossy().contains(".egg-info") {
            continue;
        }
        let mut header = entry.header().clone();
        out.append_data(&mut header, &path, &mut entry)
            .expect("in memory");
    }
    out.into_inner().expect("tar").finish().expect("gzip")
}

/// A recorded file of `tests/data/build/` (sdists and the wheels their builds need): its name and
/// bytes.
fn recorded_build_file(path: &str) -> (String, Vec<u8>) {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/build")
        .join(path);
    let bytes = fs_err::read(&full)
        .unwrap_or_else(|err| panic!("{err}: record it with scripts/record-build-sdists.sh"));
    let name = full
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    (name, bytes)
}

/// A fake index serving the recorded `sampletext` sdist without its egg-info (so only a build
/// can tell its dependencies: its setup.py computes them) and the setuptools and wheel wheels
/// that build fetches from the same index.
pub fn sampletext_index() -> FakePypi {
    let server = FakePypi::start();
    let (name, bytes) = recorded_build_file("sampletext-0.1.0.0.2.tar.gz");
    server.add_project("sampletext", vec![(name, without_egg_info(&bytes))]);
    server.add_project(
        "setuptools",
        vec![recorded_build_file(
            "wheels/setuptools-68.2.2-py3-none-any.whl",
        )],
    );
    server.add_project(
        "wheel",
        vec![recorded_build_file("wheels/wheel-0.41.3-py3-none-any.whl")],
    );
    server
}

/// `crawl --packages sampletext` into `state` against `server`, with `extra` flags. `tmp` is the
/// crawler's `TMPDIR`: build environments are cached there, not in the machine's temporary
/// directory (the fake index's port, part of their key, changes every run). Fails when the
/// sandbox (`bwrap`) is missing, saying so.
pub fn crawl_sampletext(server: &FakePypi, state: &Path, tmp: &Path, extra: &[&str]) {
    let output = std::process::Command::new(bin())
        .args(["crawl", "--state", state.to_str().expect("utf-8")])
        .args(["--packages", "sampletext"])
        .args(fast_flags(server))
        .args(extra)
        .env("RUST_LOG", "warn")
        .env("TMPDIR", tmp)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("install-sandbox.sh"),
        "the sandbox is missing: {stderr}"
    );
    assert!(output.status.success(), "{stderr}");
}
