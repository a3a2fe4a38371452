//! Change discovery for `crawl --since`: which projects changed after a serial or a time.
//!
//! Two real sources implement [`ChangeFeed`]:
//! - [`XmlRpcFeed`]: PyPI's XML-RPC `changelog_since_serial(serial)` / `changelog(time, true)`,
//!   an event log of `[name, version, time, action, serial]`;
//! - [`RootIndexFeed`]: the PEP 691 JSON root index (`GET /simple/` as JSON), where every
//!   project carries its `_last-serial`; a project changed if that serial is above the one the
//!   state stored for it (and above the `since` serial).
//!
//! [`Feed`] chooses one by flag, or tries XML-RPC first and falls back to the root index when
//! XML-RPC is not offered (`auto`).

use std::collections::BTreeMap;
use std::future::Future;
use std::str::FromStr;

use db_format::types::PackageName;
use quick_xml::events::Event;
use url::Url;

use super::client::{Client, RequestKind};
use super::project::serial_of;
use crate::{Error, Result};

/// Where to start looking for changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Events with a serial above this one.
    Serial(u64),
    /// Events after this unix time.
    Time(i64),
}

/// The projects that changed, each with the highest serial seen for it, and the feed's
/// highest serial overall (the new watermark).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub projects: BTreeMap<PackageName, u64>,
    pub serial: u64,
}

/// One interface over the change sources.
pub trait ChangeFeed {
    /// The projects changed since `since`. `known` gives the serial the state stored for a
    /// project, so sources that only know current serials can compare.
    fn changes(
        &self,
        since: Since,
        known: &(dyn Fn(&PackageName) -> Option<u64> + Sync),
    ) -> impl Future<Output = Result<Changes>>;
}

/// The largest response a feed may return (the public root index is ~40 MB as HTML).
const FEED_LIMIT: u64 = 512 << 20;

/// PyPI's XML-RPC change log.
#[derive(Debug, Clone)]
pub struct XmlRpcFeed {
    pub client: Client,
    /// The XML-RPC endpoint (`<index>/pypi`).
    pub url: Url,
}

impl ChangeFeed for XmlRpcFeed {
    async fn changes(
        &self,
        since: Since,
        _known: &(dyn Fn(&PackageName) -> Option<u64> + Sync),
    ) -> Result<Changes> {
        let call = match since {
            Since::Serial(serial) => format!(
                "<?xml version='1.0'?><methodCall><methodName>changelog_since_serial</methodName>\
                 <params><param><value><int>{serial}</int></value></param></params></methodCall>"
            ),
            Since::Time(time) => format!(
                "<?xml version='1.0'?><methodCall><methodName>changelog</methodName><params>\
                 <param><value><int>{time}</int></value></param>\
                 <param><value><boolean>1</boolean></value></param></params></methodCall>"
            ),
        };
        let response = self
            .client
            .post(
                RequestKind::Feed,
                &self.url,
                &[("content-type", "text/xml".to_string())],
                call.into_bytes(),
                FEED_LIMIT,
            )
            .await?
            .expect_ok(&self.url)?;
        let value = parse_xmlrpc(&response.body).map_err(Error::ChangeFeed)?;
        let mut changes = Changes::default();
        let XmlValue::Array(events) = value else {
            return Err(Error::ChangeFeed(
                "XML-RPC changelog did not return an array".into(),
            ));
        };
        for event in events {
            let XmlValue::Array(fields) = event else {
                return Err(Error::ChangeFeed("changelog event is not an array".into()));
            };
            let (Some(XmlValue::Text(name)), Some(XmlValue::Int(serial))) =
                (fields.first(), fields.get(4))
            else {
                return Err(Error::ChangeFeed(format!(
                    "changelog event {fields:?} is not [name, version, time, action, serial]"
                )));
            };
            let serial = u64::try_from(*serial).unwrap_or(0);
            changes.serial = changes.serial.max(serial);
            // Names PyPI once accepted but PEP 503 refuses cannot be crawled; skip them.
            if let Ok(name) = PackageName::from_str(name) {
                let entry = changes.projects.entry(name).or_insert(0);
                *entry = (*entry).max(serial);
            }
        }
        Ok(changes)
    }
}

/// The PEP 691 JSON root index.
#[derive(Debug, Clone)]
pub struct RootIndexFeed {
    pub client: Client,
    /// The root index (`<index>/simple/`).
    pub url: Url,
}

impl ChangeFeed for RootIndexFeed {
    async fn changes(
        &self,
        since: Since,
        known: &(dyn Fn(&PackageName) -> Option<u64> + Sync),
    ) -> Result<Changes> {
        let Since::Serial(since) = since else {
            return Err(Error::ChangeFeed(
                "the JSON root index has serials, not dates: pass --since SERIAL, or crawl once \
                 so the state has a watermark"
                    .into(),
            ));
        };
        let response = self
            .client
            .get(
                RequestKind::Feed,
                &self.url,
                &[("accept", super::SIMPLE_JSON.to_string())],
                FEED_LIMIT,
            )
            .await?
            .expect_ok(&self.url)?;
        let content_type = response.header("content-type").unwrap_or_default();
        if !content_type.contains("json") {
            return Err(Error::ChangeFeed(format!(
                "{} answered {content_type:?}, not PEP 691 JSON: this index has no serials per \
                 project",
                self.url
            )));
        }
        let doc: serde_json::Value =
            serde_json::from_slice(&response.body).map_err(|err| Error::InvalidResponse {
                url: self.url.to_string(),
                reason: err.to_string(),
            })?;
        let mut changes = Changes {
            serial: serial_of(doc.pointer("/meta/_last-serial")),
            ..Changes::default()
        };
        for project in doc["projects"].as_array().into_iter().flatten() {
            let (Some(name), serial) = (
                project["name"].as_str(),
                serial_of(project.get("_last-serial")),
            ) else {
                continue;
            };
            let Ok(name) = PackageName::from_str(name) else {
                continue;
            };
            changes.serial = changes.serial.max(serial);
            if serial > since && known(&name).is_none_or(|stored| serial > stored) {
                changes.projects.insert(name, serial);
            }
        }
        Ok(changes)
    }
}

/// Which change source `--since` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FeedChoice {
    /// XML-RPC if the index offers it, else the JSON root index.
    Auto,
    XmlRpc,
    RootIndex,
}

/// The change source chosen for a crawl.
#[derive(Debug, Clone)]
pub struct Feed {
    pub choice: FeedChoice,
    pub xmlrpc: XmlRpcFeed,
    pub root_index: RootIndexFeed,
}

impl Feed {
    pub fn new(client: &Client, index_url: &Url, choice: FeedChoice) -> Result<Self> {
        let join = |path: &str| {
            index_url.join(path).map_err(|err| Error::Url {
                url: index_url.to_string(),
                reason: err.to_string(),
            })
        };
        Ok(Feed {
            choice,
            xmlrpc: XmlRpcFeed {
                client: client.clone(),
                url: join("pypi")?,
            },
            root_index: RootIndexFeed {
                client: client.clone(),
                url: join("simple/")?,
            },
        })
    }

    /// Ask the chosen source; with `auto`, fall back to the root index when XML-RPC is refused.
    /// `watermark` is the highest serial of the state's last finished change-feed run: a
    /// `--since DATE` becomes "since the watermark" when there is one, which is exact (serials
    /// have no clock skew) and leaves no gap when a daily run was missed.
    pub async fn changes(
        &self,
        since: Since,
        watermark: Option<u64>,
        known: &(dyn Fn(&PackageName) -> Option<u64> + Sync),
    ) -> Result<Changes> {
        let since = match (since, watermark) {
            (Since::Time(_), Some(watermark)) => Since::Serial(watermark),
            _ => since,
        };
        let root_since = since;
        match self.choice {
            FeedChoice::XmlRpc => self.xmlrpc.changes(since, known).await,
            FeedChoice::RootIndex => self.root_index.changes(root_since, known).await,
            FeedChoice::Auto => match self.xmlrpc.changes(since, known).await {
                Ok(changes) => Ok(changes),
                Err(err) => {
                    tracing::info!(
                        "XML-RPC change log unavailable ({err}); using the JSON root index"
                    );
                    self.root_index.changes(root_since, known).await
                }
            },
        }
    }
}

/// An XML-RPC value, as far as the change log needs.
#[derive(Debug, Clone, PartialEq)]
enum XmlValue {
    Text(String),
    Int(i64),
    Array(Vec<XmlValue>),
}

/// Parse an XML-RPC `methodResponse` into its single return value.
fn parse_xmlrpc(body: &[u8]) -> Result<XmlValue, String> {
    let mut reader = quick_xml::Reader::from_reader(body);
    // Open arrays, and the type and text of the value being read.
    let mut stack: Vec<Vec<XmlValue>> = vec![Vec::new()];
    let mut kind: Option<String> = None;
    let mut text = String::new();
    let mut in_value = false;
    let mut buf = Vec::new();
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|err| {
            format!(
                "XML-RPC response at byte {}: {err}",
                reader.buffer_position()
            )
        })?;
        match event {
            Event::Start(tag) => match tag.name().as_ref() {
                b"fault" => return Err("XML-RPC fault".into()),
                b"array" => stack.push(Vec::new()),
                b"value" => {
                    in_value = true;
                    kind = None;
                    text.clear();
                }
                other => kind = Some(String::from_utf8_lossy(other).into_owned()),
            },
            Event::Text(content) if in_value => {
                let decoded = content
                    .decode()
                    .map_err(|err| format!("XML-RPC text: {err}"))?;
                let unescaped = quick_xml::escape::unescape(&decoded)
                    .map_err(|err| format!("XML-RPC text: {err}"))?;
                text.push_str(&unescaped);
            }
            Event::GeneralRef(reference) if in_value => {
                let name = reference
                    .decode()
                    .map_err(|err| format!("XML-RPC entity: {err}"))?;
                if let Some(ch) = reference
                    .resolve_char_ref()
                    .map_err(|err| format!("XML-RPC entity: {err}"))?
                {
                    text.push(ch);
                } else if let Some(value) = quick_xml::escape::resolve_predefined_entity(&name) {
                    text.push_str(value);
                } else {
                    return Err(format!("XML-RPC response uses an unknown entity &{name};"));
                }
            }
            Event::End(tag) => match tag.name().as_ref() {
                b"array" => {
                    let array = stack.pop().ok_or("unbalanced </array>")?;
                    stack
                        .last_mut()
                        .ok_or("unbalanced </array>")?
                        .push(XmlValue::Array(array));
                    in_value = false;
                }
                b"value" if in_value => {
                    let value = match kind.as_deref() {
                        Some("int" | "i4" | "i8") => XmlValue::Int(
                            text.trim()
                                .parse()
                                .map_err(|err| format!("XML-RPC int {text:?}: {err}"))?,
                        ),
                        _ => XmlValue::Text(text.clone()),
                    };
                    stack.last_mut().ok_or("unbalanced </value>")?.push(value);
                    in_value = false;
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let mut top = stack.pop().ok_or("empty XML-RPC response")?;
    if !stack.is_empty() || top.len() != 1 {
        return Err("XML-RPC response does not hold exactly one value".into());
    }
    top.pop().ok_or_else(|| "empty XML-RPC response".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xmlrpc_changelog_parses() {
        let body = br#"<?xml version='1.0'?>
<methodResponse><params><param><value><array><data>
<value><array><data><value><string>Zope.Interface</string></value><value><string>6.0</string></value>
<value><int>1700000000</int></value><value><string>new release</string></value><value><int>42</int></value></data></array></value>
<value><array><data><value>six</value><value><nil/></value><value><int>1700000001</int></value><value><string>remove &amp; go</string></value><value><i4>43</i4></value></data></array></value>
</data></array></value></param></params></methodResponse>"#;
        let value = parse_xmlrpc(body).expect("parses");
        let XmlValue::Array(events) = value else {
            panic!("not an array: {value:?}")
        };
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0],
            XmlValue::Array(vec![
                XmlValue::Text("Zope.Interface".into()),
                XmlValue::Text("6.0".into()),
                XmlValue::Int(1_700_000_000),
                XmlValue::Text("new release".into()),
                XmlValue::Int(42),
            ])
        );
        let XmlValue::Array(second) = &events[1] else {
            panic!("not an array")
        };
        assert_eq!(second[0], XmlValue::Text("six".into()));
        assert_eq!(second[3], XmlValue::Text("remove & go".into()));
    }

    #[test]
    fn xmlrpc_faults_are_errors() {
        let body =
            b"<methodResponse><fault><value><struct></struct></value></fault></methodResponse>";
        assert!(parse_xmlrpc(body).is_err());
    }
}
