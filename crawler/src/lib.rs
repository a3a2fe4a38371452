//! The mach-nix crawler: it keeps a resumable SQLite copy of the parts of PyPI mach-nix needs
//! (files, hashes, upload times, yanks, and the dependencies each distribution declares) and
//! publishes it as a `db-format` snapshot pinned by its sha256.
//!
//! It owns everything networked and everything that reads untrusted archives:
//! - [`pypi`]: the HTTP client (bounded concurrency and rate, retries with backoff, Retry-After,
//!   ETags), the PEP 691 JSON project page and the JSON API, and the change feeds (XML-RPC
//!   `changelog_since_serial` and the PEP 691 JSON root index) behind one interface;
//! - [`extract`]: core-metadata parsing, wheel `METADATA` through PEP 658 files or HTTP range
//!   requests into the zip central directory, and static sdist metadata (PKG-INFO >= 2.2,
//!   `*.egg-info/requires.txt`, `[project]` in `pyproject.toml`, `setup.cfg`) without running code;
//! - [`state`]: the crawl state (rusqlite), committed one project per transaction so a `SIGKILL`
//!   at any moment loses nothing and duplicates nothing;
//! - [`crawl`]: the crawl itself (which projects, which files, `--with-deps`, `--as-of`, shards);
//! - [`publish`]: `publish-db`, the content-addressed snapshot, `index.json` and `latest`;
//! - [`cli`]: the command line (the binary's `main` only calls [`cli::main`]).
//!
//! It must never be a dependency of the resolver, and `db-format` must never depend on it: the
//! resolver stays free of tokio, reqwest and SQLite.
//!
//! Dependency choices: reqwest with rustls (no system OpenSSL), because it does HTTP/2, gzip,
//! timeouts and connection pooling that a crawler needs; it trusts the bundled webpki roots and
//! the system's roots (`SSL_CERT_FILE` included), so it also works behind a TLS-inspecting egress
//! proxy whose CA only the system store knows; rusqlite with the bundled SQLite, because
//! the state must be one crash-safe file with transactions and no server; `tar` + `flate2` for
//! sdists (streaming readers, nothing is ever unpacked to disk); zip archives (wheels and zip
//! sdists) are read by a small central-directory reader in [`extract::zip`] rather than the `zip`
//! crate, because the same code must work on the few byte ranges fetched by HTTP range requests
//! and on whole files; `quick-xml` for the XML-RPC change feed; `jiff` for RFC 3339 upload times.
//! Conda channels ([`conda`]): `rattler_conda_types` (the conda types pixi and
//! rattler-build use) checks match specs rather than a parser of our own; `ruzstd` (pure Rust)
//! decompresses `repodata.json.zst` without a C toolchain.

/// Sandboxed sdist metadata builds, the fallback when static extraction cannot tell.
pub mod build;
pub mod cli;
pub mod closure;
/// Conda channels: repodata fetch into the state, records into the snapshot.
pub mod conda;
pub mod crawl;
mod error;
pub mod extract;
pub mod progress;
pub mod publish;
pub mod pypi;
pub mod state;

pub use error::{Error, Result};
