//! `pyproject.toml`: the `[project]` table's `dependencies`, the `optional-dependencies` the user
//! selects, and `requires-python`.

use std::path::Path;
use std::str::FromStr;

use db_format::types::VersionSpecifiers;

use super::{Entry, Input, InputError, Origin};

/// Parse `text`, the content of the pyproject at `path`, selecting the optional-dependency
/// groups named in `extras`.
pub fn parse_pyproject(text: &str, path: &Path, extras: &[String]) -> Result<Input, InputError> {
    // Where each line starts, so that an offset's line is a binary search (a pyproject with
    // tens of thousands of dependencies stays linear).
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(at, _)| at + 1))
        .collect();
    let origin_at = |offset: usize| Origin {
        file: path.to_owned(),
        line: line_starts.partition_point(|&start| start <= offset),
    };
    let document: toml::Table = toml::from_str(text).map_err(|err| InputError::Invalid {
        origin: origin_at(err.span().map_or(0, |span| span.start)),
        message: format!("not valid TOML: {}", err.message()),
    })?;
    let project = document
        .get("project")
        .and_then(toml::Value::as_table)
        .ok_or_else(|| InputError::Invalid {
            origin: origin_at(0),
            message: "no [project] table (mach-nix reads PEP 621 metadata)".to_owned(),
        })?;
    // Lines are found by searching the text for each string: toml's `Table` keeps no spans. The
    // strings of a list come in order, so each search starts where the last one matched.
    let cursor = std::cell::Cell::new(0);
    let line_of = |needle: &str| {
        let found = text
            .get(cursor.get()..)
            .and_then(|rest| rest.find(needle))
            .map(|at| cursor.get() + at)
            .or_else(|| text.find(needle));
        if let Some(at) = found {
            cursor.set(at);
        }
        origin_at(found.unwrap_or(0))
    };
    let mut input = Input {
        files: vec![path.to_owned()],
        ..Input::default()
    };
    let strings = |key: &str, value: &toml::Value| -> Result<Vec<String>, InputError> {
        value
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect()
            })
            .ok_or_else(|| InputError::Invalid {
                origin: line_of(key),
                message: format!(
                    "{} must be a list of strings",
                    mach_nix_requirements::clip(key)
                ),
            })
    };
    let mut add = |key: &str, specs: Vec<String>| -> Result<(), InputError> {
        for spec in specs {
            let origin = line_of(&spec);
            let requirement =
                mach_nix_requirements::parse_pep508(&spec).map_err(|why| InputError::Invalid {
                    origin: origin.clone(),
                    message: format!("{}: {why}", mach_nix_requirements::clip(key)),
                })?;
            input.requirements.push(Entry {
                requirement,
                hashes: Vec::new(),
                origin,
            });
        }
        Ok(())
    };
    if let Some(dependencies) = project.get("dependencies") {
        add("dependencies", strings("dependencies", dependencies)?)?;
    }
    let optional = project
        .get("optional-dependencies")
        .and_then(toml::Value::as_table);
    for extra in extras {
        let group = optional
            .and_then(|groups| {
                groups
                    .iter()
                    .find(|(name, _)| normalize_extra(name) == normalize_extra(extra))
            })
            .ok_or_else(|| InputError::Invalid {
                origin: origin_at(0),
                message: format!("the project has no optional-dependencies group {extra:?}"),
            })?;
        add(group.0, strings(group.0, group.1)?)?;
    }
    if let Some(value) = project.get("requires-python") {
        let origin = line_of("requires-python");
        let spec = value
            .as_str()
            .and_then(|spec| VersionSpecifiers::from_str(spec).ok())
            .ok_or_else(|| InputError::Invalid {
                origin: origin.clone(),
                message: "requires-python must be a PEP 440 specifier string".to_owned(),
            })?;
        input.requires_python = Some((spec, origin));
    }
    Ok(input)
}

fn normalize_extra(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYPROJECT: &str = r#"[build-system]
requires = ["hatchling"]

[project]
name = "demo"
requires-python = ">=3.10"
dependencies = [
  "requests>=2",
  "tomli; python_version < '3.11'",
]

[project.optional-dependencies]
Fast_IO = ["orjson"]
"#;

    #[test]
    fn dependencies_and_selected_extras_are_read() {
        let input = parse_pyproject(
            PYPROJECT,
            Path::new("pyproject.toml"),
            &["fast-io".to_owned()],
        )
        .expect("valid pyproject");
        let names: Vec<_> = input
            .requirements
            .iter()
            .map(|e| e.requirement.name.to_string())
            .collect();
        assert_eq!(names, ["requests", "tomli", "orjson"]);
        assert_eq!(input.requirements[1].origin.line, 9);
        assert_eq!(
            input.requires_python.expect("declared").0.to_string(),
            ">=3.10"
        );
    }

    #[test]
    fn long_dependency_lists_keep_their_lines() {
        // Repeated spellings too: each is found after the one before it.
        let mut text = "[project]\nname = \"big\"\ndependencies = [\n".to_owned();
        for i in 0..20_000 {
            text.push_str(&format!("  \"r{}>=1\",\n", i % 7_000));
        }
        text.push_str("]\n");
        let input = parse_pyproject(&text, Path::new("pyproject.toml"), &[]).expect("valid");
        assert_eq!(input.requirements.len(), 20_000);
        for (at, entry) in input.requirements.iter().enumerate() {
            assert_eq!(entry.origin.line, at + 4, "{}", entry.requirement);
        }
    }

    // Regression: 20,000 nested parentheses in a dependency overflowed the stack of uv's
    // marker parser, with no file or line.
    #[test]
    fn deep_nesting_is_an_error_with_file_and_line() {
        let text = format!(
            "[project]\nname = \"x\"\ndependencies = [\n  \"foo; {}python_version > '3'{}\",\n]\n",
            "(".repeat(20_000),
            ")".repeat(20_000)
        );
        let err = parse_pyproject(&text, Path::new("pyproject.toml"), &[]).expect_err("too deep");
        let message = err.to_string();
        assert!(
            message.starts_with(
                "pyproject.toml:4: dependencies: not a PEP 508 requirement: parentheses nested 65 deep"
            ),
            "{message}"
        );
        assert!(message.len() < 500, "{} bytes", message.len());
    }

    #[test]
    fn mistakes_name_the_line() {
        let err = parse_pyproject(PYPROJECT, Path::new("pyproject.toml"), &["gpu".to_owned()])
            .expect_err("no such extra");
        assert!(
            err.to_string()
                .contains("no optional-dependencies group \"gpu\""),
            "{err}"
        );
        let bad = PYPROJECT.replace("requests>=2", "requests>=>2");
        let err = parse_pyproject(&bad, Path::new("pyproject.toml"), &[]).expect_err("bad spec");
        assert!(
            err.to_string()
                .starts_with("pyproject.toml:8: dependencies:"),
            "{err}"
        );
        let err = parse_pyproject("[tool.x]\n", Path::new("pyproject.toml"), &[])
            .expect_err("no project");
        assert!(err.to_string().contains("no [project] table"), "{err}");
    }
}
