//! The static formats an sdist may state its dependencies in: `*.egg-info/requires.txt`,
//! `[project]` and `[build-system]` in `pyproject.toml`, and `setup.cfg`.

use std::collections::BTreeMap;

/// Dependencies read from one static source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticDependencies {
    pub requires_dist: Vec<String>,
    pub provides_extra: Vec<String>,
    pub requires_python: Option<String>,
}

/// Add an extra and/or a marker to a requirement, keeping its own marker.
pub fn with_condition(requirement: &str, extra: Option<&str>, marker: Option<&str>) -> String {
    let (spec, own) = match requirement.split_once(';') {
        Some((spec, own)) if !own.trim().is_empty() => (spec.trim(), Some(own.trim())),
        Some((spec, _)) => (spec.trim(), None),
        None => (requirement.trim(), None),
    };
    let markers: Vec<&str> = [own, marker].into_iter().flatten().collect();
    let several = markers.len() + usize::from(extra.is_some()) > 1;
    let mut conditions: Vec<String> = markers
        .into_iter()
        .map(|condition| {
            if several {
                format!("({condition})")
            } else {
                condition.to_string()
            }
        })
        .collect();
    if let Some(extra) = extra {
        conditions.push(format!("extra == \"{extra}\""));
    }
    if conditions.is_empty() {
        spec.to_string()
    } else {
        format!("{spec}; {}", conditions.join(" and "))
    }
}

/// Parse setuptools' `requires.txt`: plain lines, then `[extra]`, `[:marker]` or
/// `[extra:marker]` sections.
pub fn parse_requires_txt(text: &str) -> StaticDependencies {
    let mut deps = StaticDependencies::default();
    let mut extra: Option<String> = None;
    let mut marker: Option<String> = None;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        if let Some(section) = line
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            let (name, condition) = section.split_once(':').unwrap_or((section, ""));
            extra = Some(name.trim().to_string()).filter(|name| !name.is_empty());
            marker = Some(condition.trim().to_string()).filter(|marker| !marker.is_empty());
            if let Some(name) = &extra
                && !deps.provides_extra.contains(name)
            {
                deps.provides_extra.push(name.clone());
            }
            continue;
        }
        deps.requires_dist
            .push(with_condition(line, extra.as_deref(), marker.as_deref()));
    }
    deps
}

/// The `[project]` and `[build-system]` tables of a `pyproject.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pyproject {
    /// `Some` when `[project]` states its dependencies statically (not in `dynamic`).
    pub dependencies: Option<StaticDependencies>,
    /// Whether a `[project]` table exists at all.
    pub has_project: bool,
    pub build_requires: Option<Vec<String>>,
    pub build_backend: Option<String>,
}

/// Parse `pyproject.toml`.
pub fn parse_pyproject(text: &str) -> Result<Pyproject, String> {
    let doc: toml::Table = text
        .parse()
        .map_err(|err| format!("pyproject.toml: {err}"))?;
    let strings = |value: Option<&toml::Value>| -> Option<Vec<String>> {
        value?.as_array().map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_string))
                .collect()
        })
    };
    let mut result = Pyproject::default();
    if let Some(build) = doc.get("build-system").and_then(toml::Value::as_table) {
        result.build_requires = strings(build.get("requires"));
        result.build_backend = build
            .get("build-backend")
            .and_then(toml::Value::as_str)
            .map(str::to_string);
    }
    if let Some(project) = doc.get("project").and_then(toml::Value::as_table) {
        result.has_project = true;
        let dynamic = strings(project.get("dynamic")).unwrap_or_default();
        let is_dynamic = |field: &str| dynamic.iter().any(|entry| entry == field);
        if !is_dynamic("dependencies") && !is_dynamic("optional-dependencies") {
            let mut deps = StaticDependencies {
                requires_dist: strings(project.get("dependencies")).unwrap_or_default(),
                requires_python: project
                    .get("requires-python")
                    .and_then(toml::Value::as_str)
                    .map(str::to_string),
                ..StaticDependencies::default()
            };
            if let Some(optional) = project
                .get("optional-dependencies")
                .and_then(toml::Value::as_table)
            {
                for (extra, requirements) in optional {
                    deps.provides_extra.push(extra.clone());
                    for requirement in strings(Some(requirements)).unwrap_or_default() {
                        deps.requires_dist
                            .push(with_condition(&requirement, Some(extra), None));
                    }
                }
            }
            result.dependencies = Some(deps);
        }
    }
    Ok(result)
}

/// What `setup.cfg` states.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetupCfg {
    /// `Some` when `install_requires` or `extras_require` is given statically.
    pub dependencies: Option<StaticDependencies>,
    pub setup_requires: Vec<String>,
}

/// Parse the parts of `setup.cfg` setuptools reads for dependencies.
pub fn parse_setup_cfg(text: &str) -> SetupCfg {
    let sections = parse_ini(text);
    let options = sections.get("options");
    let get = |key: &str| options.and_then(|options| options.get(key));
    let is_directive = |value: &str| {
        value.trim_start().starts_with("file:") || value.trim_start().starts_with("attr:")
    };
    let mut result = SetupCfg {
        setup_requires: get("setup_requires")
            .filter(|value| !is_directive(value))
            .map(|value| list_semi(value))
            .unwrap_or_default(),
        ..SetupCfg::default()
    };
    let install = get("install_requires");
    let extras = sections.get("options.extras_require");
    if install.is_none() && extras.is_none() {
        return result;
    }
    if install.is_some_and(|value| is_directive(value))
        || extras.is_some_and(|extras| extras.values().any(|value| is_directive(value)))
    {
        return result;
    }
    let mut deps = StaticDependencies {
        requires_dist: install.map(|value| list_semi(value)).unwrap_or_default(),
        requires_python: get("python_requires").map(|value| value.trim().to_string()),
        ..StaticDependencies::default()
    };
    for (extra, value) in extras.into_iter().flatten() {
        let (extra, marker) = match extra.split_once(':') {
            Some((extra, marker)) => (extra.trim(), Some(marker.trim())),
            None => (extra.as_str(), None),
        };
        if !deps.provides_extra.iter().any(|known| known == extra) {
            deps.provides_extra.push(extra.to_string());
        }
        for requirement in list_semi(value) {
            deps.requires_dist
                .push(with_condition(&requirement, Some(extra), marker));
        }
    }
    result.dependencies = Some(deps);
    result
}

/// setuptools' `list-semi`: one per line when the value spans lines, else `;`-separated.
fn list_semi(value: &str) -> Vec<String> {
    let items: Vec<&str> = if value.contains('\n') {
        value.lines().collect()
    } else {
        value.split(';').collect()
    };
    items
        .into_iter()
        .map(|item| item.split(" #").next().unwrap_or_default().trim())
        .filter(|item| !item.is_empty() && !item.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// A small INI reader: `[section]`, `key = value` / `key: value`, indented continuation lines,
/// `#`/`;` comment lines. Keys are lowercased with `-` read as `_`.
fn parse_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section = String::new();
    let mut key: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t']) && !trimmed.is_empty() {
            if let Some(key) = &key
                && let Some(value) = sections.get_mut(&section).and_then(|s| s.get_mut(key))
            {
                value.push('\n');
                value.push_str(trimmed);
            }
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        if let Some(name) = trimmed
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            section = name.trim().to_string();
            key = None;
            continue;
        }
        let split = trimmed.find(['=', ':']);
        if let Some(at) = split {
            let name = trimmed[..at].trim().to_ascii_lowercase().replace('-', "_");
            let value = trimmed[at + 1..].trim().to_string();
            sections
                .entry(section.clone())
                .or_default()
                .insert(name.clone(), value);
            key = Some(name);
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_combine_with_existing_markers() {
        assert_eq!(with_condition("a>=1", None, None), "a>=1");
        assert_eq!(
            with_condition("a>=1", Some("x"), None),
            "a>=1; extra == \"x\""
        );
        assert_eq!(
            with_condition("a>=1", None, Some("python_version < \"3\"")),
            "a>=1; python_version < \"3\""
        );
        assert_eq!(
            with_condition(
                "a; os_name == 'nt'",
                Some("x"),
                Some("python_version < \"3\"")
            ),
            "a; (os_name == 'nt') and (python_version < \"3\") and extra == \"x\""
        );
        assert_eq!(
            with_condition("a", None, Some("os_name == 'nt' or os_name == 'posix'")),
            "a; os_name == 'nt' or os_name == 'posix'"
        );
    }

    #[test]
    fn requires_txt_sections_become_extras_and_markers() {
        let deps = parse_requires_txt(
            "setuptools\n\n[:python_version < \"3.8\"]\nimportlib-metadata\n\n[docs]\nsphinx # comment\n\n[test:sys_platform == \"win32\"]\npywin32\n",
        );
        assert_eq!(
            deps.requires_dist,
            [
                "setuptools",
                "importlib-metadata; python_version < \"3.8\"",
                "sphinx; extra == \"docs\"",
                "pywin32; (sys_platform == \"win32\") and extra == \"test\"",
            ]
        );
        assert_eq!(deps.provides_extra, ["docs", "test"]);
    }

    #[test]
    fn pyproject_static_and_dynamic_projects() {
        let parsed = parse_pyproject(
            "[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n\
             [project]\nname = \"x\"\nrequires-python = \">=3.8\"\ndependencies = [\"a\"]\n\
             [project.optional-dependencies]\ntest = [\"pytest\"]\n",
        )
        .expect("parses");
        let deps = parsed.dependencies.expect("static");
        assert_eq!(deps.requires_dist, ["a", "pytest; extra == \"test\""]);
        assert_eq!(deps.requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(parsed.build_requires, Some(vec!["hatchling".to_string()]));
        assert_eq!(parsed.build_backend.as_deref(), Some("hatchling.build"));
        let dynamic = parse_pyproject("[project]\nname = \"x\"\ndynamic = [\"dependencies\"]\n")
            .expect("parses");
        assert!(dynamic.has_project && dynamic.dependencies.is_none());
        assert!(parse_pyproject("[project\n").is_err());
    }

    #[test]
    fn setup_cfg_lists_and_directives() {
        let cfg = parse_setup_cfg(
            "[metadata]\nname = x\n\n[options]\npython_requires = >=3.6\ninstall-requires =\n    requests>=2\n    six; python_version<'3'\nsetup_requires = setuptools_scm\n\n\
             [options.extras_require]\ntest =\n    pytest\n",
        );
        let deps = cfg.dependencies.expect("static");
        assert_eq!(
            deps.requires_dist,
            [
                "requests>=2",
                "six; python_version<'3'",
                "pytest; extra == \"test\""
            ]
        );
        assert_eq!(deps.requires_python.as_deref(), Some(">=3.6"));
        assert_eq!(cfg.setup_requires, ["setuptools_scm"]);
        assert!(
            parse_setup_cfg("[options]\ninstall_requires = file: requirements.txt\n")
                .dependencies
                .is_none()
        );
        assert!(
            parse_setup_cfg("[metadata]\nname = x\n")
                .dependencies
                .is_none()
        );
        assert_eq!(
            parse_setup_cfg("[options]\ninstall_requires = a; b\n")
                .dependencies
                .expect("static")
                .requires_dist,
            ["a", "b"]
        );
    }
}
