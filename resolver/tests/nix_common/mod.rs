//! Shared by the Nix output tests (`nix_eval.rs`, `nix_build.rs`): resolutions built from the real
//! PyPI data recorded in `tests/data/nix/pypi.json` (by `scripts/record-nix-fixtures.py`), and the
//! real Nix tools run against the nixpkgs stub in `tests/nix-stub/`.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use db_format::{
    DependencyRecord, File, FileKind, MetadataSource, Project, Release, SnapshotMeta, Writer,
};
use resolver::resolution::{Provider, Resolution, ResolvedPackage, SnapshotPin, Target};
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Deserialize)]
pub struct Fixture {
    pub target: FixtureTarget,
    pub packages: Vec<FixturePackage>,
}

#[derive(Debug, Deserialize)]
pub struct FixtureTarget {
    pub python: String,
    pub system: String,
}

#[derive(Debug, Deserialize, Clone)]
pub struct FixturePackage {
    pub name: String,
    pub version: String,
    pub requires_python: Option<String>,
    pub requires_dist: Vec<String>,
    pub dependencies: Vec<String>,
    pub wheel: FixtureFile,
    pub sdist: Option<FixtureFile>,
    #[serde(default)]
    pub build_requires: Vec<String>,
    #[serde(default)]
    pub build_dependencies: Vec<String>,
    pub build_backend: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct FixtureFile {
    pub filename: String,
    pub url: String,
    pub sha256: String,
    pub size: u64,
    pub requires_python: Option<String>,
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn stub_dir() -> PathBuf {
    repo_root().join("tests/nix-stub")
}

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nix/pypi.json")
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let path = fixture_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
}

pub fn fixture_package(name: &str) -> &'static FixturePackage {
    fixture()
        .packages
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| {
            panic!("`{name}` is not in the fixture; add it to scripts/record-nix-fixtures.py")
        })
}

fn file(record: &FixtureFile) -> File {
    let digest = hex::decode(&record.sha256).expect("fixture sha256 is hex");
    File {
        filename: record.filename.clone(),
        kind: FileKind::of(&record.filename),
        size: record.size,
        sha256: Some(digest.try_into().expect("fixture sha256 is 32 bytes")),
        upload_time: None,
        yanked: None,
        requires_python: record.requires_python.clone(),
        url: record.url.clone(),
        dependencies: None,
    }
}

/// How a package of the fixture enters a resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Wheel,
    Sdist,
    /// nixpkgs' own package, under the same attribute name.
    Nixpkgs,
}

/// The resolution of `requested` over the fixture: the closure of run-time dependencies, plus
/// the build dependencies of packages taken as sdists. `source` picks each package's provider.
pub fn resolution(requested: &[&str], source: impl Fn(&str) -> Source) -> Resolution {
    let mut names = BTreeSet::new();
    let mut todo: Vec<String> = requested.iter().map(|r| r.to_string()).collect();
    while let Some(name) = todo.pop() {
        if !names.insert(name.clone()) {
            continue;
        }
        let package = fixture_package(&name);
        todo.extend(package.dependencies.iter().cloned());
        if source(&name) == Source::Sdist {
            todo.extend(package.build_dependencies.iter().cloned());
        }
    }
    let packages = names
        .iter()
        .map(|name| {
            let package = fixture_package(name);
            let chosen = source(name);
            let (provider, file) = match chosen {
                Source::Wheel => (Provider::Wheel, Some(file(&package.wheel))),
                Source::Sdist => (
                    Provider::Sdist,
                    Some(file(package.sdist.as_ref().unwrap_or_else(|| {
                        panic!("the fixture has no sdist of {name}")
                    }))),
                ),
                Source::Nixpkgs => (
                    Provider::Nixpkgs {
                        attribute: name.clone(),
                    },
                    None,
                ),
            };
            ResolvedPackage {
                name: name.clone(),
                version: package.version.clone(),
                file,
                extras: vec![],
                dependencies: package.dependencies.clone(),
                build_dependencies: if chosen == Source::Sdist {
                    package.build_dependencies.clone()
                } else {
                    vec![]
                },
                build_backend: if chosen == Source::Sdist {
                    package.build_backend.clone()
                } else {
                    None
                },
                provider,
            }
        })
        .collect();
    let mut requested: Vec<String> = requested.iter().map(|r| r.to_string()).collect();
    requested.sort();
    let fixture_bytes = std::fs::read(fixture_path()).expect("fixture readable");
    Resolution {
        target: Target {
            python: fixture().target.python.clone(),
            system: fixture().target.system.clone(),
        },
        // The "snapshot" these resolutions come from is the recorded fixture itself.
        snapshot: SnapshotPin {
            sha256: hex::encode(Sha256::digest(&fixture_bytes)),
            created: 1_732_492_800,
            as_of: Some(1_732_406_400),
        },
        requested,
        packages,
        cycles: vec![],
    }
}

/// The package `name` of `resolution`, to edit.
pub fn package_mut<'a>(resolution: &'a mut Resolution, name: &str) -> &'a mut ResolvedPackage {
    resolution
        .packages
        .iter_mut()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("`{name}` is not in the resolution"))
}

pub fn wheels(requested: &[&str]) -> Resolution {
    resolution(requested, |_| Source::Wheel)
}

/// The fixture as a real snapshot file `<sha256>.mnxdb` in `dir` (one release per package: its
/// wheel with the wheel's METADATA, its sdist with the sdist's build system); returns the hash.
pub fn write_fixture_snapshot(dir: &Path) -> String {
    let mut writer = Writer::new(
        std::io::Cursor::new(Vec::new()),
        SnapshotMeta {
            created: 1_732_492_800,
            ..SnapshotMeta::default()
        },
    )
    .expect("writer starts");
    let mut packages: Vec<&FixturePackage> = fixture().packages.iter().collect();
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    for package in packages {
        let metadata = DependencyRecord {
            source: MetadataSource::WheelMetadata,
            requires_python: package.requires_python.clone(),
            requires_dist: package.requires_dist.clone(),
            ..DependencyRecord::default()
        };
        let mut dependencies = vec![metadata.clone()];
        let mut files = vec![File {
            dependencies: Some(0),
            ..file(&package.wheel)
        }];
        if let Some(sdist) = &package.sdist {
            dependencies.push(DependencyRecord {
                source: MetadataSource::SdistPkgInfo,
                build_requires: package.build_requires.clone(),
                build_backend: package.build_backend.clone(),
                ..metadata
            });
            files.push(File {
                dependencies: Some(1),
                ..file(sdist)
            });
        }
        let project = Project {
            name: package.name.clone(),
            last_serial: 1,
            releases: vec![Release {
                version: package.version.clone(),
                yanked: None,
                requires_python: package.requires_python.clone(),
                upload_time: None,
                dependencies,
                files,
            }],
        };
        writer
            .add_project(&project)
            .expect("fixture project is valid");
    }
    let (bytes, _) = writer.finish().expect("snapshot written");
    let bytes = bytes.into_inner();
    let hash = hex::encode(Sha256::digest(&bytes));
    std::fs::write(dir.join(format!("{hash}.mnxdb")), &bytes).expect("write snapshot");
    hash
}

/// Run the `mach-nix` binary with `args`; its stdout.
pub fn mach_nix(args: &[&std::ffi::OsStr]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_mach-nix"))
        .args(args)
        .output()
        .expect("run mach-nix");
    check(output, &format!("mach-nix {args:?}"))
}

/// The packages `requests` resolves to in the fixture.
pub const REQUESTS_CLOSURE: [&str; 5] = [
    "certifi",
    "charset-normalizer",
    "idna",
    "requests",
    "urllib3",
];

/// `package` (a generated package as JSON: `version`, `provider`, `url`, `sha256`) is the
/// recorded wheel of `name`.
pub fn assert_fixture_wheel(name: &str, package: &serde_json::Value) {
    let recorded = fixture_package(name);
    assert_eq!(
        package["version"],
        serde_json::json!(recorded.version),
        "{name}"
    );
    assert_eq!(package["provider"], serde_json::json!("wheel"), "{name}");
    assert_eq!(
        package["url"],
        serde_json::json!(recorded.wheel.url),
        "{name}"
    );
    assert_eq!(
        package["sha256"],
        serde_json::json!(recorded.wheel.sha256),
        "{name}"
    );
}

/// A Nix command that may build, with the options this machine needs (shared/NIX-HERE.md):
/// as root, without the binary cache.
pub fn building(program: &str) -> Command {
    let mut command = nix_command(program);
    command.args([
        "--option",
        "substituters",
        "",
        "--option",
        "build-users-group",
        "",
    ]);
    command
}

/// `nix-build --no-out-link` as root without the binary cache, with `args` (a file, or
/// `--expr …`); the raw output.
pub fn nix_build(args: &[&std::ffi::OsStr]) -> Output {
    building("nix-build")
        .arg("--no-out-link")
        .args(args)
        .output()
        .expect("run nix-build")
}

const INSTALL_HINT: &str = "Nix is not installed: run scripts/install-nix.sh (as root) first";

/// A Nix command, failing the test with the install hint when Nix is missing.
pub fn nix_command(program: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(found, "`{program}` not found on PATH. {INSTALL_HINT}");
    let mut command = Command::new(program);
    command.env("NIX_PATH", format!("nixpkgs={}", stub_dir().display()));
    command.env("MACH_NIX_HOST_PYTHON", host_python());
    command
}

/// The host CPython 3.11 the stub builds with: `/usr/bin/python3`, else `python3` on PATH,
/// resolved to the real interpreter (not a shim).
pub fn host_python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        for candidate in ["/usr/bin/python3", "python3"] {
            let Ok(output) = Command::new(candidate)
                .args([
                    "-c",
                    "import sys, pip; print(sys.executable); print('%d.%d' % sys.version_info[:2])",
                ])
                .output()
            else {
                continue;
            };
            let text = String::from_utf8_lossy(&output.stdout).to_string();
            let mut lines = text.lines();
            if let (true, Some(executable), Some("3.11")) =
                (output.status.success(), lines.next(), lines.next())
            {
                return std::fs::canonicalize(executable)
                    .expect("python executable exists")
                    .display()
                    .to_string();
            }
        }
        panic!(
            "the Nix tests need a CPython 3.11 with pip at /usr/bin/python3 or as python3 on PATH"
        )
    })
}

pub fn check(output: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `nix-instantiate --eval --strict --json` of `expression`.
pub fn eval_json(expression: &str) -> serde_json::Value {
    let output = nix_command("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--expr", expression])
        .output()
        .expect("run nix-instantiate");
    let stdout = check(output, &format!("nix-instantiate --eval of {expression}"));
    serde_json::from_str(&stdout).expect("nix-instantiate printed JSON")
}

/// Evaluation that must fail; returns its stderr.
pub fn eval_error(expression: &str) -> String {
    let output = nix_command("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--expr", expression])
        .output()
        .expect("run nix-instantiate");
    failed_evaluation(output, expression)
}

/// The stderr of the evaluation of `expression`, which must have failed.
pub fn failed_evaluation(output: Output, expression: &str) -> String {
    assert!(
        !output.status.success(),
        "evaluation of {expression} succeeded but must fail: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// `nix-build` of the environment `file` (`what` names it in failures), then `python -c code`
/// with its interpreter: the printed text, trimmed.
pub fn build_and_run_python(file: &Path, what: &str, code: &str) -> String {
    let stdout = check(
        nix_build(&[file.as_os_str()]),
        &format!("nix-build of {what}"),
    );
    let environment = PathBuf::from(stdout.lines().last().expect("output path"));
    let run = Command::new(environment.join("bin/python"))
        .args(["-c", code])
        .output()
        .expect("run python");
    check(run, "imports").trim().to_owned()
}

/// A Nix string literal of a path (the paths here have no `"`, `\` or `${`).
pub fn nix_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// `import FILE { pkgs = <the stub with these arguments>; }`.
pub fn apply(file: &Path, stub_arguments: &str) -> String {
    format!(
        "import {} {{ pkgs = import {} {{ {stub_arguments} }}; }}",
        nix_path(file),
        nix_path(&stub_dir())
    )
}

/// Write the generated Nix of `resolution` into `dir/name`.
pub fn write_nix(dir: &Path, name: &str, resolution: &Resolution) -> PathBuf {
    let path = dir.join(name);
    let text = resolver::output::nix::render(resolution).expect("render");
    std::fs::write(&path, text).expect("write generated nix");
    path
}

/// What the evaluated package set says about each resolved package: version, source, inputs.
pub const SUMMARY: &str = r#"result: names:
  let
    ps = result.python.pkgs;
    pname = p: p.pname;
  in
  builtins.listToAttrs (map (name: let p = ps.${name}; in {
    inherit name;
    value = {
      inherit (p) version provider doCheck;
      url = p.src.url;
      sha256 = p.src.outputHash;
      dependencies = map pname p.dependencies;
      propagated = map (d: d.name) p.propagatedBuildInputs;
      buildSystem = map pname p.build-system;
      native = map (d: d.name) p.nativeBuildInputs;
      buildInputs = map (d: d.name) p.buildInputs;
      patches = map baseNameOf p.patches;
    };
  }) names)"#;

/// Evaluate `summary` for every package of `resolution` in the generated `file`.
pub fn summarize(
    file: &Path,
    stub_arguments: &str,
    resolution: &Resolution,
) -> BTreeMap<String, serde_json::Value> {
    let names: Vec<String> = resolution
        .packages
        .iter()
        .map(|p| format!("{:?}", p.name))
        .collect();
    let expression = format!(
        "({SUMMARY}) ({}) [ {} ]",
        apply(file, stub_arguments),
        names.join(" ")
    );
    serde_json::from_value(eval_json(&expression)).expect("summary is an attribute set")
}

/// The names of the packages the environment holds (the closure the stub's withPackages computes).
pub fn environment_names(file: &Path, stub_arguments: &str) -> Vec<String> {
    let expression = format!(
        "map (p: p.pname) ({}).packages",
        apply(file, stub_arguments)
    );
    let mut names: Vec<String> =
        serde_json::from_value(eval_json(&expression)).expect("a list of names");
    names.sort();
    names
}

/// The fixture as a real snapshot in a directory of its own, and `mach-nix gen` / `env` runs of
/// the real CLI against it (the resolutions that `nix/` imports in `nix_lib.rs`).
pub struct CliSnapshot {
    pub dir: PathBuf,
    pub hash: String,
}

impl CliSnapshot {
    /// Write the fixture snapshot into `dir` (created if missing).
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("mkdir snapshot dir");
        let hash = write_fixture_snapshot(dir);
        CliSnapshot {
            dir: dir.to_owned(),
            hash,
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.mnxdb", self.hash))
    }

    /// `mach-nix <command…> -r <requirements> --db sha256:… --db-dir … -p 3.11 <extra…>`, the
    /// requirements written to `requirements_file` first.
    pub fn run(
        &self,
        command: &[&std::ffi::OsStr],
        requirements_file: &Path,
        requirements: &str,
        extra: &[&std::ffi::OsStr],
    ) -> String {
        use std::ffi::OsStr;
        std::fs::write(requirements_file, requirements).expect("write requirements");
        let db = format!("sha256:{}", self.hash);
        let mut args: Vec<&OsStr> = command.to_vec();
        args.extend([
            OsStr::new("-r"),
            requirements_file.as_os_str(),
            OsStr::new("--db"),
            OsStr::new(&db),
            OsStr::new("--db-dir"),
            self.dir.as_os_str(),
            OsStr::new("-p"),
            OsStr::new("3.11"),
        ]);
        args.extend(extra);
        mach_nix(&args)
    }

    /// `mach-nix gen` of `requirements` into `out` (the requirements beside it, `out` + `.txt`).
    pub fn generate(&self, out: &Path, requirements: &str, extra: &[&std::ffi::OsStr]) -> PathBuf {
        use std::ffi::OsStr;
        let requirements_file = out.with_extension("txt");
        self.run(
            &[OsStr::new("gen"), OsStr::new("-o"), out.as_os_str()],
            &requirements_file,
            requirements,
            extra,
        );
        out.to_owned()
    }
}
