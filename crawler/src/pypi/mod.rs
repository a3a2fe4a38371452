//! Talking to a Python package index (PyPI or anything with the same API).

pub mod changes;
pub mod client;
pub mod project;

pub use changes::{ChangeFeed, Changes, Feed, FeedChoice, Since};
pub use client::{Client, ClientOptions, Counters, Fetched, RequestKind};
pub use project::{CoreMetadata, IndexFile, ProjectPage};

/// The PEP 691 JSON media type.
pub const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";
