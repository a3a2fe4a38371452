//! The polite HTTP client every PyPI request goes through.
//!
//! - at most `concurrency` requests in flight (a semaphore) and at most `requests_per_second`
//!   started per second (a shared next-slot clock);
//! - retries with exponential backoff on connection errors, timeouts, truncated bodies, 429 and
//!   5xx, honouring `Retry-After` (seconds or an HTTP date);
//! - bodies are read in chunks and refused past a caller-given byte limit, so a hostile or
//!   mistaken server cannot make the crawler buffer gigabytes;
//! - every request and every body byte is counted by [`RequestKind`], for progress and the
//!   measurements in `MEASUREMENTS.md`;
//! - credentials never travel inside a URL the crawler keeps: [`Credentials`] holds them per
//!   host (from `--index-url`'s userinfo, `MACH_NIX_INDEX_USERNAME`/`_PASSWORD` or
//!   `MACH_NIX_INDEX_TOKEN`, and `~/.netrc` or `$NETRC`) and adds them to each request for
//!   that host; every URL in an error or a log line goes through [`redact_url`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;
use url::Url;

use crate::{Error, Result};

/// What a request was for; requests and bytes are counted per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// A project page (PEP 691 JSON or the JSON API).
    Page,
    /// A PEP 658 `.metadata` file.
    Metadata,
    /// A range request into a wheel.
    WheelRange,
    /// A whole wheel (when neither of the above worked).
    WheelDownload,
    /// A whole sdist.
    SdistDownload,
    /// A change feed (XML-RPC or the root index).
    Feed,
}

impl RequestKind {
    pub const ALL: [RequestKind; 6] = [
        RequestKind::Page,
        RequestKind::Metadata,
        RequestKind::WheelRange,
        RequestKind::WheelDownload,
        RequestKind::SdistDownload,
        RequestKind::Feed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Page => "page",
            RequestKind::Metadata => "pep658-metadata",
            RequestKind::WheelRange => "wheel-range",
            RequestKind::WheelDownload => "wheel-download",
            RequestKind::SdistDownload => "sdist-download",
            RequestKind::Feed => "feed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Requests and body bytes, per [`RequestKind`], plus retries.
#[derive(Debug, Default)]
pub struct Counters {
    requests: [AtomicU64; 6],
    bytes: [AtomicU64; 6],
    retries: AtomicU64,
}

impl Counters {
    pub fn requests(&self, kind: RequestKind) -> u64 {
        self.requests[kind.index()].load(Ordering::Relaxed)
    }

    pub fn bytes(&self, kind: RequestKind) -> u64 {
        self.bytes[kind.index()].load(Ordering::Relaxed)
    }

    pub fn total_requests(&self) -> u64 {
        RequestKind::ALL
            .iter()
            .map(|&kind| self.requests(kind))
            .sum()
    }

    pub fn total_bytes(&self) -> u64 {
        RequestKind::ALL.iter().map(|&kind| self.bytes(kind)).sum()
    }

    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

/// A URL for people to read: userinfo (a user, a password or a token) replaced by `****`.
pub fn redact_url(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    // Only URLs that cannot have userinfo (`data:`, `mailto:`) refuse these, and they have none.
    let _ = shown.set_password(None);
    let _ = shown.set_username("****");
    shown.to_string()
}

/// `url` without its userinfo: what the crawler keeps, joins file URLs against and stores.
pub fn without_credentials(url: &Url) -> Url {
    let mut bare = url.clone();
    let _ = bare.set_password(None);
    let _ = bare.set_username("");
    bare
}

/// Free text (a command line, an error message) with the userinfo of every URL in it masked.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(userinfo_end) => {
                out.push_str("****");
                rest = &tail[userinfo_end..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// How a request to one host proves who it is.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    Basic {
        username: String,
        password: Option<String>,
    },
    Bearer(String),
}

// Never print a secret, not even in a debug dump.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Basic { .. } => f.write_str("Basic(****)"),
            Auth::Bearer(_) => f.write_str("Bearer(****)"),
        }
    }
}

/// Credentials per host (`host` or `host:port`), added to every request to that host; a URL
/// that carries its own userinfo (a file URL on a private index's page) keeps it.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    hosts: HashMap<String, Auth>,
}

/// The environment variables that give the index's credentials instead of the URL.
pub const USERNAME_VAR: &str = "MACH_NIX_INDEX_USERNAME";
pub const PASSWORD_VAR: &str = "MACH_NIX_INDEX_PASSWORD";
pub const TOKEN_VAR: &str = "MACH_NIX_INDEX_TOKEN";

fn host_key(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

impl Credentials {
    /// The credentials of `index`'s host, first found of: the userinfo of `index` itself,
    /// `env(TOKEN_VAR)` (a bearer token), `env(USERNAME_VAR)` with `env(PASSWORD_VAR)`; plus
    /// every host of `netrc` (a later source never overrides an earlier one).
    pub fn new(
        index: &Url,
        env: impl Fn(&str) -> Option<String>,
        netrc: Option<&netrc::Netrc>,
    ) -> Credentials {
        let mut hosts = HashMap::new();
        let from_url = (!index.username().is_empty()).then(|| Auth::Basic {
            username: percent_decoded(index.username()),
            password: index.password().map(percent_decoded),
        });
        let from_env = env(TOKEN_VAR).map(Auth::Bearer).or_else(|| {
            env(USERNAME_VAR).map(|username| Auth::Basic {
                username,
                password: env(PASSWORD_VAR),
            })
        });
        if let (Some(auth), Some(host)) = (from_url.or(from_env), host_key(index)) {
            hosts.insert(host, auth);
        }
        for (host, entry) in netrc.map(|netrc| &netrc.hosts).into_iter().flatten() {
            if host != "default" {
                hosts.entry(host.clone()).or_insert_with(|| Auth::Basic {
                    username: entry.login.clone(),
                    password: Some(entry.password.clone()),
                });
            }
        }
        Credentials { hosts }
    }

    /// The credentials for `url`: by `host:port`, then by host.
    fn for_url(&self, url: &Url) -> Option<&Auth> {
        if !url.username().is_empty() {
            return None;
        }
        host_key(url)
            .and_then(|key| self.hosts.get(&key))
            .or_else(|| url.host_str().and_then(|host| self.hosts.get(host)))
    }
}

fn percent_decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Maximum requests in flight.
    pub concurrency: usize,
    /// Maximum requests started per second (`None`: unlimited).
    pub requests_per_second: Option<f64>,
    /// Timeout of one attempt (connect + whole body).
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    /// The first backoff; doubled on each retry, capped at 60 s.
    pub backoff: Duration,
    pub user_agent: String,
    pub credentials: Credentials,
    /// Allow plain `http://` to hosts other than loopback ones (`--allow-insecure-http`).
    pub allow_insecure_http: bool,
    /// Bytes all whole-file downloads in flight may hold together: each reserves its limit
    /// (the declared size plus slack, at most this) before it starts and keeps it while its
    /// body lives, so endless or oversized bodies cannot add up past it.
    pub download_budget: u64,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            concurrency: 16,
            requests_per_second: Some(20.0),
            timeout: Duration::from_secs(60),
            retries: 5,
            backoff: Duration::from_millis(500),
            user_agent: concat!(
                "mach-nix-crawler/",
                env!("CARGO_PKG_VERSION"),
                " (+https://github.com/mach-nix-rs/mach-nix)"
            )
            .to_string(),
            credentials: Credentials::default(),
            allow_insecure_http: false,
            download_budget: 256 << 20,
        }
    }
}

/// The longest wait a `Retry-After` may ask for; longer ones are cut to this (and logged).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Waits at least this long are logged, so a stalled crawl says why.
const LOGGED_WAIT: Duration = Duration::from_secs(3);

/// Why a plain-HTTP URL is refused.
pub const INSECURE: &str = "plain HTTP refused (anyone on the way could change what the \
                            crawler records); use https, or pass --allow-insecure-http";

/// Whether `url` may be fetched: `https`, or `http` to a loopback host (a local test index or
/// mirror), or any `http` with `allow_insecure_http`.
pub fn secure_enough(url: &Url, allow_insecure_http: bool) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => {
            allow_insecure_http
                || match url.host() {
                    Some(url::Host::Domain(domain)) => domain == "localhost",
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    None => false,
                }
        }
        _ => false,
    }
}

/// Hosts a redirect may lead to besides the requested one: the index's own host and the hosts
/// its pages put files on (shared with the redirect policy, which runs inside reqwest).
#[derive(Debug, Default)]
struct TrustedHosts(std::sync::RwLock<std::collections::HashSet<String>>);

impl TrustedHosts {
    fn contains(&self, host: &str) -> bool {
        self.0.read().is_ok_and(|hosts| hosts.contains(host))
    }

    fn insert(&self, host: &str) {
        if !self.contains(host)
            && let Ok(mut hosts) = self.0.write()
        {
            hosts.insert(host.to_string());
        }
    }
}

/// A response the caller has to look at: 2xx, 304, and the 4xx that are answers rather than
/// faults (404, 403, 410, 416, …). Retried statuses never reach the caller.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub body: Vec<u8>,
    pub headers: HeaderMap,
    /// A download's share of [`ClientOptions::download_budget`], returned when this is dropped.
    _budget: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Fetched {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// This response if it is a 200, else the error that `url` answered with another status.
    pub fn expect_ok(self, url: &impl std::fmt::Display) -> crate::Result<Self> {
        if self.status != 200 {
            return Err(crate::Error::Status {
                url: redact_text(&url.to_string()),
                status: self.status,
                attempts: 1,
            });
        }
        Ok(self)
    }
}

/// The shared client; cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    options: ClientOptions,
    in_flight: Arc<Semaphore>,
    next_slot: Arc<Mutex<Instant>>,
    counters: Arc<Counters>,
    trusted: Arc<TrustedHosts>,
    /// [`ClientOptions::download_budget`] in KiB.
    download_budget: Arc<Semaphore>,
}

/// Why one attempt failed, and whether it is worth another.
enum Attempt {
    Done(Fetched),
    Retry {
        reason: RetryReason,
        wait: Option<Duration>,
    },
}

enum RetryReason {
    Status(u16),
    Transport(reqwest::Error),
}

impl Client {
    pub fn new(options: ClientOptions) -> Result<Self> {
        let trusted = Arc::new(TrustedHosts::default());
        let policy_trusted = trusted.clone();
        let allow_insecure_http = options.allow_insecure_http;
        // Redirects stay on the requested host or go to a trusted one, never down to plain
        // HTTP; anything else is an error naming where it pointed.
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            let from = attempt.previous().first().and_then(Url::host_str);
            let to = attempt.url().host_str();
            let host_ok = to.is_some_and(|to| Some(to) == from || policy_trusted.contains(to));
            if attempt.previous().len() > 10 {
                attempt.error("more than 10 redirects")
            } else if !host_ok {
                let to = redact_url(attempt.url());
                attempt.error(format!("redirect to another host refused: {to}"))
            } else if !secure_enough(attempt.url(), allow_insecure_http) {
                let to = redact_url(attempt.url());
                attempt.error(format!("redirect to plain HTTP refused: {to}"))
            } else {
                attempt.follow()
            }
        });
        let http = reqwest::Client::builder()
            .redirect(redirects)
            .user_agent(options.user_agent.clone())
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(20)))
            .pool_max_idle_per_host(options.concurrency)
            .build()
            .map_err(|source| Error::Http {
                url: String::new(),
                source,
            })?;
        Ok(Client {
            http,
            in_flight: Arc::new(Semaphore::new(options.concurrency.max(1))),
            next_slot: Arc::new(Mutex::new(Instant::now())),
            counters: Arc::new(Counters::default()),
            trusted,
            download_budget: Arc::new(Semaphore::new(kib(options.download_budget))),
            options,
        })
    }

    /// Let redirects lead to `url`'s host (the index's, or one its pages put files on).
    pub fn trust_host_of(&self, url: &Url) {
        if let Some(host) = url.host_str() {
            self.trusted.insert(host);
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// GET `url` with extra `headers`, refusing bodies longer than `limit` bytes.
    pub async fn get(
        &self,
        kind: RequestKind,
        url: &Url,
        headers: &[(&'static str, String)],
        limit: u64,
    ) -> Result<Fetched> {
        self.send(kind, url, headers, None, limit).await
    }

    /// POST `body` to `url` (used by the XML-RPC change feed).
    pub async fn post(
        &self,
        kind: RequestKind,
        url: &Url,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
        limit: u64,
    ) -> Result<Fetched> {
        self.send(kind, url, headers, Some(body), limit).await
    }

    async fn send(
        &self,
        kind: RequestKind,
        url: &Url,
        headers: &[(&'static str, String)],
        body: Option<Vec<u8>>,
        limit: u64,
    ) -> Result<Fetched> {
        // Refused like any answer that cannot be used: for a file URL it is a fact about the
        // page, so the file's record says it.
        if !secure_enough(url, self.options.allow_insecure_http) {
            return Err(Error::InvalidResponse {
                url: redact_url(url),
                reason: INSECURE.into(),
            });
        }
        let mut header_map = HeaderMap::new();
        for (name, value) in headers {
            let value = HeaderValue::from_str(value).map_err(|err| Error::Url {
                url: redact_url(url),
                reason: format!("header {name}: {err}"),
            })?;
            header_map.insert(HeaderName::from_static(name), value);
        }
        let attempts = self.options.retries + 1;
        for attempt in 0..attempts {
            if attempt > 0 {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
            }
            match self
                .attempt(kind, url, &header_map, body.as_ref(), limit)
                .await?
            {
                Attempt::Done(fetched) => return Ok(fetched),
                Attempt::Retry { reason, wait } => {
                    if attempt + 1 == attempts {
                        return Err(match reason {
                            RetryReason::Status(status) => Error::Status {
                                url: redact_url(url),
                                status,
                                attempts,
                            },
                            RetryReason::Transport(source) => Error::Http {
                                url: redact_url(url),
                                source: source.without_url(),
                            },
                        });
                    }
                    let backoff = self
                        .options
                        .backoff
                        .saturating_mul(1 << attempt.min(16))
                        .min(Duration::from_secs(60));
                    let (wait, cut) = retry_wait(wait, backoff);
                    if let Some(asked) = cut {
                        tracing::warn!(
                            "{}: Retry-After asks for {}s, waiting {}s (the most this crawler waits)",
                            redact_url(url),
                            asked.as_secs(),
                            wait.as_secs()
                        );
                    }
                    if wait >= LOGGED_WAIT {
                        tracing::warn!(
                            "{}: {}; waiting {:.1}s before attempt {} of {attempts}",
                            redact_url(url),
                            match &reason {
                                RetryReason::Status(status) => format!("HTTP {status}"),
                                RetryReason::Transport(err) => redact_text(&err.to_string()),
                            },
                            wait.as_secs_f64(),
                            attempt + 2
                        );
                    } else {
                        tracing::debug!(url = redact_url(url), attempt, ?wait, "retrying");
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
        // `attempts >= 1`, and the last attempt always returns above.
        Err(Error::Status {
            url: redact_url(url),
            status: 0,
            attempts,
        })
    }

    async fn wait_for_slot(&self) {
        let Some(rate) = self.options.requests_per_second.filter(|rate| *rate > 0.0) else {
            return;
        };
        let interval = Duration::from_secs_f64(1.0 / rate);
        let start = {
            let mut next = self.next_slot.lock().await;
            let now = Instant::now();
            let start = (*next).max(now);
            *next = start + interval;
            start
        };
        tokio::time::sleep_until(start).await;
    }

    async fn attempt(
        &self,
        kind: RequestKind,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&Vec<u8>>,
        limit: u64,
    ) -> Result<Attempt> {
        self.wait_for_slot().await;
        // Whole files reserve their limit first (before a request slot, so waiting for memory
        // holds no connection); one reservation per request, so reservations cannot deadlock.
        let budget = match kind {
            RequestKind::WheelDownload | RequestKind::SdistDownload => {
                let share = u32::try_from(kib(limit.min(self.options.download_budget)))
                    .unwrap_or(u32::MAX)
                    .max(1);
                Some(
                    self.download_budget
                        .clone()
                        .acquire_many_owned(share)
                        .await
                        .map_err(|_| Error::Internal("download budget closed".into()))?,
                )
            }
            _ => None,
        };
        // The semaphore is never closed, so acquiring only fails if it were.
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| Error::Internal("request semaphore closed".into()))?;
        self.counters.requests[kind.index()].fetch_add(1, Ordering::Relaxed);
        let mut request = match body {
            Some(body) => self.http.post(url.clone()).body(body.clone()),
            None => self.http.get(url.clone()),
        };
        request = match self.options.credentials.for_url(url) {
            Some(Auth::Basic { username, password }) => {
                request.basic_auth(username, password.as_ref())
            }
            Some(Auth::Bearer(token)) => request.bearer_auth(token),
            None => request,
        };
        let mut response = match request.headers(headers.clone()).send().await {
            Ok(response) => response,
            Err(err) => {
                return Ok(Attempt::Retry {
                    reason: RetryReason::Transport(err),
                    wait: None,
                });
            }
        };
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let wait = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(parse_retry_after);
            return Ok(Attempt::Retry {
                reason: RetryReason::Status(status.as_u16()),
                wait,
            });
        }
        if let Some(length) = response.content_length()
            && length > limit
        {
            return Err(Error::InvalidResponse {
                url: redact_url(url),
                reason: format!("body of {length} bytes is over the limit of {limit}"),
            });
        }
        let headers = response.headers().clone();
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    self.counters.bytes[kind.index()]
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    if bytes.len() as u64 + chunk.len() as u64 > limit {
                        return Err(Error::InvalidResponse {
                            url: redact_url(url),
                            reason: format!("body is over the limit of {limit} bytes"),
                        });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                // A body cut short (or a stalled one hitting the timeout) is worth another try.
                Err(err) => {
                    return Ok(Attempt::Retry {
                        reason: RetryReason::Transport(err),
                        wait: None,
                    });
                }
            }
        }
        Ok(Attempt::Done(Fetched {
            status: status.as_u16(),
            body: bytes,
            headers,
            _budget: budget,
        }))
    }
}

/// How long to wait before the next attempt: what `Retry-After` asked for, cut to
/// [`MAX_RETRY_AFTER`] (then the asked time is returned too, for the log), else the backoff.
fn retry_wait(asked: Option<Duration>, backoff: Duration) -> (Duration, Option<Duration>) {
    match asked {
        Some(asked) if asked > MAX_RETRY_AFTER => (MAX_RETRY_AFTER, Some(asked)),
        Some(asked) => (asked, None),
        None => (backoff, None),
    }
}

/// Bytes in KiB, rounded up, within a semaphore's permit count.
fn kib(bytes: u64) -> usize {
    usize::try_from(bytes.div_ceil(1024))
        .unwrap_or(usize::MAX)
        .min(Semaphore::MAX_PERMITS)
}

/// `Retry-After` is either delta-seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    let seconds = when.as_second() - now.as_second();
    Some(Duration::from_secs(seconds.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    // `Retry-After: 99999999` stalled every request 5 × 300 s without a log line.
    #[test]
    fn retry_after_is_cut_to_a_minute() {
        let backoff = Duration::from_millis(500);
        let asked = parse_retry_after("99999999");
        assert_eq!(
            retry_wait(asked, backoff),
            (
                Duration::from_secs(60),
                Some(Duration::from_secs(99_999_999))
            )
        );
        assert_eq!(
            retry_wait(Some(Duration::from_secs(7)), backoff),
            (Duration::from_secs(7), None)
        );
        assert_eq!(retry_wait(None, backoff), (backoff, None));
    }

    // `--index-url https://user:secret@host` put the secret into logs, the lock file, the
    // state and the snapshot.
    #[test]
    fn userinfo_is_masked_in_text_and_dropped_from_kept_urls() {
        let url = Url::parse("https://alice:s3cr3t@pypi.example/simple/").expect("url");
        assert_eq!(redact_url(&url), "https://****@pypi.example/simple/");
        assert_eq!(
            without_credentials(&url).to_string(),
            "https://pypi.example/simple/"
        );
        assert_eq!(
            without_credentials(&url)
                .join("../files/a.whl")
                .expect("joins")
                .as_str(),
            "https://pypi.example/files/a.whl"
        );
        assert_eq!(
            redact_text("crawl --index-url=https://__token__:pypi-AgE@h:8080/x?y a@b https://h/p"),
            "crawl --index-url=https://****@h:8080/x?y a@b https://h/p"
        );
        assert_eq!(redact_text("no url"), "no url");
    }

    // Plain HTTP was accepted for the index and for file URLs on any host.
    #[test]
    fn plain_http_is_only_for_loopback_unless_allowed() {
        let secure = |url: &str, allowed| secure_enough(&Url::parse(url).expect("url"), allowed);
        assert!(secure("https://pypi.org/simple/", false));
        assert!(secure("http://127.0.0.1:8080/simple/", false));
        assert!(secure("http://127.9.9.9/", false));
        assert!(secure("http://localhost/", false));
        assert!(secure("http://[::1]:3141/", false));
        assert!(!secure("http://pypi.org/simple/", false));
        assert!(!secure("http://10.0.0.1/", false));
        assert!(!secure("ftp://127.0.0.1/", false));
        assert!(secure("http://pypi.org/simple/", true));
    }

    #[test]
    fn a_plain_http_file_url_is_refused_without_a_request() {
        let client = Client::new(ClientOptions::default()).expect("client");
        let url = Url::parse("http://bob:pw@files.invalid/a.whl").expect("url");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let err = runtime
            .block_on(client.get(RequestKind::WheelDownload, &url, &[], 1 << 20))
            .expect_err("refused");
        assert_eq!(
            err.to_string(),
            format!("http://****@files.invalid/a.whl: invalid response: {INSECURE}")
        );
        assert_eq!(client.counters().total_requests(), 0);
    }

    #[test]
    fn credentials_come_from_the_url_the_environment_or_netrc() {
        let netrc: netrc::Netrc = "machine files.example login bob password pw\n\
                                   machine pypi.example login carol password other"
            .parse()
            .expect("netrc");
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value.to_string())
            }
        };
        let index = Url::parse("https://al%40ice:s%2Fcret@pypi.example/").expect("url");
        let credentials = Credentials::new(&index, env(&[(TOKEN_VAR, "tok")]), Some(&netrc));
        let file = Url::parse("https://files.example/a.whl").expect("url");
        let bare = without_credentials(&index);
        assert_eq!(
            credentials.for_url(&bare),
            Some(&Auth::Basic {
                username: "al@ice".into(),
                password: Some("s/cret".into())
            })
        );
        assert_eq!(
            credentials.for_url(&file),
            Some(&Auth::Basic {
                username: "bob".into(),
                password: Some("pw".into())
            })
        );
        let credentials = Credentials::new(&bare, env(&[(TOKEN_VAR, "tok")]), None);
        assert_eq!(
            credentials.for_url(&bare),
            Some(&Auth::Bearer("tok".into()))
        );
        assert_eq!(credentials.for_url(&file), None);
        let credentials = Credentials::new(
            &bare,
            env(&[(USERNAME_VAR, "u"), (PASSWORD_VAR, "p")]),
            Some(&netrc),
        );
        assert_eq!(
            credentials.for_url(&bare),
            Some(&Auth::Basic {
                username: "u".into(),
                password: Some("p".into())
            })
        );
        assert_eq!(format!("{credentials:?}").matches("****").count(), 2);
        assert!(!format!("{credentials:?}").contains("pw"));
    }
}
