//! The resolver side of mach-nix: reads a pinned snapshot, resolves requirements with pubgrub
//! offline, and writes lock files and Nix expressions.
//!
//! Slim on purpose: no async runtime, no HTTP client (never tokio/reqwest), and never the
//! crawler; it depends on `db-format` for every PyPI value.

pub mod output;
pub mod resolution;
