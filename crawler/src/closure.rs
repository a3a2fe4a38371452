//! Which projects `--with-deps` follows: the exact closure of the requested projects and extras.
//!
//! Every requirement is followed whatever its environment markers say (all platforms, all
//! Python versions), but a requirement guarded by `extra == "x"` only when extra `x` of that
//! project was asked for by a root requirement or by a requirement already followed
//! (`flask[async]` → `asgiref`). Following every extra instead pulls in each project's test and
//! documentation tool chains: from `requests` and `flask` alone that grows to thousands of
//! projects, none of which any resolution of those roots can use.
//!
//! Build requirements are followed too (`[build-system] requires`, `setup_requires`, and what a
//! sandboxed build asked for: all of them are a record's `build_requires`), whatever their
//! markers: a resolution that builds an sdist needs its build backend (maturin, hatchling,
//! flit-core) in the snapshot.
//!
//! The crawl's run queue holds *keys*: a project name (`flask`) or a project with one requested
//! extra (`flask[async]`). The state stores the extras per run, so a resumed crawl follows the
//! same ones, and an extra first requested after its project was crawled queues it again.

use std::collections::BTreeSet;

use db_format::types::{ExtraName, PackageName, Requirement, parse_requirement};
use uv_pep508::MarkerOperator;

use crate::state::StoredFile;

/// A project asked for, with the extras asked of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Wanted {
    pub name: PackageName,
    pub extras: Vec<ExtraName>,
}

impl Wanted {
    /// A project with no extras.
    pub fn project(name: PackageName) -> Self {
        Wanted {
            name,
            extras: Vec::new(),
        }
    }

    /// Its queue keys: the name, then `name[extra]` for each extra.
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(self.name.to_string()).chain(
            self.extras
                .iter()
                .map(|extra| format!("{}[{extra}]", self.name)),
        )
    }
}

/// Split a queue key into the project name and the extra, if any.
pub fn split_key(key: &str) -> (&str, Option<&str>) {
    match key.strip_suffix(']').and_then(|rest| rest.split_once('[')) {
        Some((name, extra)) => (name, Some(extra)),
        None => (key, None),
    }
}

/// Whether `requirement` applies when `extras` of its project are requested: it names no extra
/// in its marker, or it names one of `extras`.
fn applies(requirement: &Requirement, extras: &[String]) -> bool {
    let mut named = Vec::new();
    requirement.marker.visit_extras(|operator, extra| {
        if operator == MarkerOperator::Equal {
            named.push(extra.to_string());
        }
    });
    named.is_empty() || named.iter().any(|extra| extras.contains(extra))
}

/// The queue keys the requirements of `files` lead to, given the extras requested of their
/// project: run-time requirements that apply to those extras, and every build requirement.
/// Records hold only requirements the extractors read (an unreadable one makes the record
/// `unknown`), so one that does not parse here is not in a record.
pub fn dependency_keys(files: &[StoredFile], extras: &[String]) -> Vec<String> {
    let mut keys = BTreeSet::new();
    for extracted in files.iter().filter_map(|file| file.dependencies.as_ref()) {
        let record = &extracted.record;
        let run = record.requires_dist.iter().map(|text| (text, true));
        let build = record.build_requires.iter().map(|text| (text, false));
        for (text, guarded_by_extras) in run.chain(build) {
            let Ok(requirement) = parse_requirement(text) else {
                continue;
            };
            if !guarded_by_extras || applies(&requirement, extras) {
                let wanted = Wanted {
                    name: requirement.name,
                    extras: requirement.extras.to_vec(),
                };
                keys.extend(wanted.keys());
            }
        }
    }
    keys.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn files(requires_dist: &[&str]) -> Vec<StoredFile> {
        vec![crate::state::test_file(
            "a-1.0-py3-none-any.whl",
            requires_dist,
        )]
    }

    #[test]
    fn extras_are_followed_only_when_requested_and_markers_never_filter() {
        let files = files(&[
            "idna>=2",
            "colorama; sys_platform == 'win32'",
            "PySocks!=1.5.7; extra == 'socks'",
            "pytest[testing]; extra == 'test' and python_version >= '3'",
            "urllib3[brotli,zstd]<3",
            "not a requirement !!",
        ]);
        assert_eq!(
            dependency_keys(&files, &[]),
            [
                "colorama",
                "idna",
                "urllib3",
                "urllib3[brotli]",
                "urllib3[zstd]"
            ]
        );
        assert_eq!(
            dependency_keys(&files, &["socks".into()]),
            [
                "colorama",
                "idna",
                "pysocks",
                "urllib3",
                "urllib3[brotli]",
                "urllib3[zstd]"
            ]
        );
        let with_test = dependency_keys(&files, &["test".into()]);
        assert!(
            with_test.contains(&"pytest[testing]".to_owned()),
            "{with_test:?}"
        );
        assert!(!with_test.contains(&"pysocks".to_owned()), "{with_test:?}");
    }

    /// A closure of `httpx rich pydantic click attrs` lacked maturin, hatchling and flit-core,
    /// so every resolution that builds one of their sdists failed.
    #[test]
    fn regression_build_requirements_are_followed() {
        let mut files = files(&["idna"]);
        if let Some(extracted) = files[0].dependencies.as_mut() {
            extracted.record.build_requires = vec![
                "hatchling>=1.5".into(),
                "maturin>=1,<2; python_version >= '3.8'".into(),
                "hatch-vcs[x]; extra == 'never'".into(),
            ];
        }
        assert_eq!(
            dependency_keys(&files, &[]),
            ["hatch-vcs", "hatch-vcs[x]", "hatchling", "idna", "maturin"]
        );
    }

    #[test]
    fn keys_split_back_into_name_and_extra() {
        assert_eq!(split_key("flask"), ("flask", None));
        assert_eq!(split_key("flask[async]"), ("flask", Some("async")));
        let wanted = Wanted {
            name: PackageName::from_str("Flask").expect("valid"),
            extras: vec![ExtraName::from_str("async").expect("valid")],
        };
        assert_eq!(wanted.keys().collect::<Vec<_>>(), ["flask", "flask[async]"]);
    }
}
