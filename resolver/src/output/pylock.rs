//! `pylock.toml` (PEP 751, lock-version 1.0) for one target: every package with its chosen file
//! (URL, sha256, size, upload time). The lock covers exactly the resolution's system and Python,
//! stated in `environments` and `requires-python`, so installers refuse it elsewhere. Packages
//! that nixpkgs provides carry no file; they are listed with `[packages.tool.mach-nix]`
//! (`provider = "nixpkgs"`, `attribute`) and only Nix can install them.

use std::fmt::Write as _;

use db_format::{File, FileKind};

use crate::resolution::{Provider, Resolution, ResolvedPackage};

/// Whether installers take a lock file named `name`: PEP 751 allows `pylock.toml` and names
/// matching `^pylock\.([^.]+)\.toml$`, and uv refuses every other name.
pub fn is_lock_file_name(name: &str) -> bool {
    name == "pylock.toml"
        || name
            .strip_prefix("pylock.")
            .and_then(|rest| rest.strip_suffix(".toml"))
            .is_some_and(|middle| !middle.is_empty() && !middle.contains('.'))
}

/// The PEP 751 name nearest to `name`: `lock.toml` → `pylock.lock.toml`.
pub fn lock_file_name_for(name: &str) -> String {
    let stem = name.strip_suffix(".toml").unwrap_or(name);
    let stem = stem.strip_prefix("pylock").unwrap_or(stem);
    let middle: String = stem
        .chars()
        .map(|c| if c == '.' { '-' } else { c })
        .collect::<String>()
        .trim_matches('-')
        .to_owned();
    if middle.is_empty() {
        "pylock.toml".to_owned()
    } else {
        format!("pylock.{middle}.toml")
    }
}

/// A TOML basic string (quoted and escaped).
fn quote(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

/// The PEP 508 marker of a Nix system, for `environments`.
pub fn system_marker(system: &str) -> String {
    let (sys_platform, machine) = match system {
        "aarch64-linux" => ("linux", "aarch64"),
        "x86_64-darwin" => ("darwin", "x86_64"),
        "aarch64-darwin" => ("darwin", "arm64"),
        _ => ("linux", "x86_64"),
    };
    format!("sys_platform == '{sys_platform}' and platform_machine == '{machine}'")
}

/// `==3.12.*` for `3.12`, `==3.12.4` for `3.12.4`.
fn python_specifier(python: &str) -> String {
    if python.matches('.').count() >= 2 {
        format!("=={python}")
    } else {
        format!("=={python}.*")
    }
}

fn file_table(file: &File) -> String {
    let mut fields = vec![
        format!("name = {}", quote(&file.filename)),
        format!("url = {}", quote(&file.url)),
    ];
    if let Some(time) = file.upload_time {
        fields.push(format!("upload-time = {}", super::utc_datetime(time)));
    }
    fields.push(format!("size = {}", file.size));
    if let Some(sha256) = file.sha256 {
        fields.push(format!(
            "hashes = {{ sha256 = {} }}",
            quote(&hex::encode(sha256))
        ));
    }
    format!("{{ {} }}", fields.join(", "))
}

fn write_package(out: &mut String, package: &ResolvedPackage) {
    out.push_str("\n[[packages]]\n");
    let _ = writeln!(out, "name = {}", quote(&package.name));
    let _ = writeln!(out, "version = {}", quote(&package.version));
    if !package.dependencies.is_empty() {
        let deps: Vec<String> = package
            .dependencies
            .iter()
            .map(|name| format!("{{ name = {} }}", quote(name)))
            .collect();
        let _ = writeln!(out, "dependencies = [{}]", deps.join(", "));
    }
    // `[packages.tool.mach-nix]` must be one table, written after the package's own keys.
    let mut tool = Vec::new();
    match (&package.provider, &package.file) {
        (Provider::Nixpkgs { attribute }, _) => {
            tool.push("provider = \"nixpkgs\"".to_owned());
            tool.push(format!("attribute = {}", quote(attribute)));
        }
        (_, Some(file)) => {
            if file.url.starts_with("https://files.pythonhosted.org/") {
                out.push_str("index = \"https://pypi.org/simple\"\n");
            }
            if file.kind == FileKind::Wheel {
                let _ = writeln!(out, "wheels = [{}]", file_table(file));
            } else {
                let _ = writeln!(out, "sdist = {}", file_table(file));
            }
        }
        (_, None) => {}
    }
    if !package.extras.is_empty() {
        let extras: Vec<String> = package.extras.iter().map(|e| quote(e)).collect();
        tool.push(format!("extras = [{}]", extras.join(", ")));
    }
    if !tool.is_empty() {
        let _ = writeln!(out, "\n[packages.tool.mach-nix]\n{}", tool.join("\n"));
    }
}

/// The whole `pylock.toml`.
pub fn render(resolution: &Resolution) -> String {
    let mut out = String::new();
    out.push_str("lock-version = \"1.0\"\n");
    let _ = writeln!(
        out,
        "environments = [{}]",
        quote(&system_marker(&resolution.target.system))
    );
    let _ = writeln!(
        out,
        "requires-python = {}",
        quote(&python_specifier(&resolution.target.python))
    );
    out.push_str("created-by = \"mach-nix\"\n");
    for package in resolution.installed() {
        write_package(&mut out, package);
    }
    out.push_str("\n[tool.mach-nix]\n");
    let _ = writeln!(
        out,
        "snapshot = {}",
        quote(&format!("sha256:{}", resolution.snapshot.sha256))
    );
    let _ = writeln!(
        out,
        "snapshot-created = {}",
        super::utc_datetime(resolution.snapshot.created)
    );
    if let Some(as_of) = resolution.snapshot.as_of {
        let _ = writeln!(out, "snapshot-as-of = {}", super::utc_datetime(as_of));
    }
    let _ = writeln!(out, "system = {}", quote(&resolution.target.system));
    let _ = writeln!(out, "python = {}", quote(&resolution.target.python));
    let requested: Vec<String> = resolution.requested.iter().map(|r| quote(r)).collect();
    let _ = writeln!(out, "requested = [{}]", requested.join(", "));
    if !resolution.cycles.is_empty() {
        let cycles: Vec<String> = resolution
            .cycles
            .iter()
            .map(|cycle| {
                format!(
                    "[{}]",
                    cycle
                        .iter()
                        .map(|n| quote(n))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect();
        let _ = writeln!(out, "cycles = [{}]", cycles.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolution::{SnapshotPin, Target};

    fn package(
        name: &str,
        provider: Provider,
        file: Option<File>,
        extras: &[&str],
    ) -> ResolvedPackage {
        ResolvedPackage {
            name: name.to_owned(),
            version: "1.0".to_owned(),
            provider,
            file,
            extras: extras.iter().map(|e| (*e).to_owned()).collect(),
            dependencies: Vec::new(),
            build_dependencies: Vec::new(),
            build_backend: None,
        }
    }

    // Regression: `-o lock.toml` was written, then refused by uv ("not a valid PEP 751
    // filename").
    #[test]
    fn lock_file_names_follow_pep_751() {
        for good in ["pylock.toml", "pylock.dev.toml", "pylock.x86_64-linux.toml"] {
            assert!(is_lock_file_name(good), "{good}");
        }
        for bad in [
            "lock.toml",
            "pylock.a.b.toml",
            "pylock..toml",
            "pylock.toml.bak",
            "Pylock.toml",
        ] {
            assert!(!is_lock_file_name(bad), "{bad}");
        }
        for (name, nearest) in [
            ("lock.toml", "pylock.lock.toml"),
            ("pylock.a.b.toml", "pylock.a-b.toml"),
            ("pylock..toml", "pylock.toml"),
            ("env.lock", "pylock.env-lock.toml"),
        ] {
            assert_eq!(lock_file_name_for(name), nearest);
            assert!(is_lock_file_name(&lock_file_name_for(name)));
        }
    }

    #[test]
    fn every_package_kind_is_valid_toml() {
        let wheel = File {
            filename: "a-1.0-py3-none-any.whl".to_owned(),
            kind: FileKind::Wheel,
            size: 12,
            sha256: Some([0xab; 32]),
            upload_time: Some(1_700_000_000),
            url: "https://files.pythonhosted.org/packages/a-1.0-py3-none-any.whl".to_owned(),
            ..File::default()
        };
        let sdist = File {
            filename: "b-1.0.tar.gz".to_owned(),
            kind: FileKind::Sdist,
            url: "https://example.org/b-1.0.tar.gz".to_owned(),
            ..File::default()
        };
        let resolution = Resolution {
            target: Target {
                python: "3.12".to_owned(),
                system: "aarch64-darwin".to_owned(),
            },
            snapshot: SnapshotPin {
                sha256: "ff".repeat(32),
                created: 0,
                as_of: Some(86_400),
            },
            requested: vec!["a".to_owned(), "n".to_owned()],
            packages: vec![
                ResolvedPackage {
                    dependencies: vec!["b".to_owned()],
                    ..package("a", Provider::Wheel, Some(wheel.clone()), &["x"])
                },
                ResolvedPackage {
                    dependencies: vec!["a".to_owned()],
                    build_dependencies: vec!["builder".to_owned()],
                    ..package("b", Provider::Sdist, Some(sdist), &[])
                },
                // Only b's build needs it: installers build sdists themselves, it is not listed.
                package("builder", Provider::Wheel, Some(wheel), &[]),
                package(
                    "n",
                    Provider::Nixpkgs {
                        attribute: "n_1".to_owned(),
                    },
                    None,
                    &["y", "z"],
                ),
            ],
            cycles: vec![vec!["a".to_owned(), "b".to_owned()]],
        };
        let text = render(&resolution);
        let lock: toml::Table = toml::from_str(&text).unwrap_or_else(|err| panic!("{err}\n{text}"));
        assert_eq!(lock["requires-python"].as_str(), Some("==3.12.*"));
        assert_eq!(
            lock["environments"][0].as_str(),
            Some("sys_platform == 'darwin' and platform_machine == 'arm64'")
        );
        let packages = lock["packages"].as_array().expect("packages");
        let names: Vec<_> = packages.iter().map(|p| p["name"].as_str()).collect();
        assert_eq!(names, [Some("a"), Some("b"), Some("n")]);
        let wheel = &packages[0]["wheels"][0];
        assert_eq!(
            wheel["hashes"]["sha256"].as_str(),
            Some("ab".repeat(32).as_str())
        );
        assert!(wheel["upload-time"].is_datetime());
        assert_eq!(
            packages[0]["index"].as_str(),
            Some("https://pypi.org/simple")
        );
        assert_eq!(
            packages[1]["sdist"]["url"].as_str(),
            Some("https://example.org/b-1.0.tar.gz")
        );
        let tool = &packages[2]["tool"]["mach-nix"];
        assert_eq!(tool["attribute"].as_str(), Some("n_1"));
        assert_eq!(tool["extras"].as_array().map(Vec::len), Some(2));
        assert_eq!(lock["tool"]["mach-nix"]["cycles"][0][1].as_str(), Some("b"));
    }
}
