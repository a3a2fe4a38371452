//! The polite HTTP client every PyPI request goes through.
//!
//! - at most `concurrency` requests in flight (a semaphore) and at most `requests_per_second`
//!   started per second (a shared next-slot clock);
//! - retries with exponential backoff on connection errors, timeouts, truncated bodies, 429 and
//!   5xx, honouring `Retry-After` (seconds or an HTTP date);
//! - bodies are read in chunks and refused past a caller-given byte limit, so a hostile or
//!   mistaken server cannot make the crawler buffer gigabytes;
//! - every request and every body byte is counted by [`RequestKind`], for progress and the
//!   measurements in `MEASUREMENTS.md`.

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
}

impl Fetched {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// This response if it is a 200, else the error that `url` answered with another status.
    pub fn expect_ok(self, url: &impl std::fmt::Display) -> crate::Result<Self> {
        if self.status != 200 {
            return Err(crate::Error::Status {
                url: url.to_string(),
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
        let http = reqwest::Client::builder()
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
            options,
        })
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
        let mut header_map = HeaderMap::new();
        for (name, value) in headers {
            let value = HeaderValue::from_str(value).map_err(|err| Error::Url {
                url: url.to_string(),
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
                                url: url.to_string(),
                                status,
                                attempts,
                            },
                            RetryReason::Transport(source) => Error::Http {
                                url: url.to_string(),
                                source,
                            },
                        });
                    }
                    let backoff = self
                        .options
                        .backoff
                        .saturating_mul(1 << attempt.min(16))
                        .min(Duration::from_secs(60));
                    let wait = wait
                        .map(|wait| wait.min(Duration::from_secs(300)))
                        .unwrap_or(backoff);
                    tracing::debug!(%url, attempt, ?wait, "retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
        // `attempts >= 1`, and the last attempt always returns above.
        Err(Error::Status {
            url: url.to_string(),
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
        // The semaphore is never closed, so acquiring only fails if it were.
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| Error::Internal("request semaphore closed".into()))?;
        self.counters.requests[kind.index()].fetch_add(1, Ordering::Relaxed);
        let request = match body {
            Some(body) => self.http.post(url.clone()).body(body.clone()),
            None => self.http.get(url.clone()),
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
                url: url.to_string(),
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
                            url: url.to_string(),
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
        }))
    }
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
}
