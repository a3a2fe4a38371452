//! Conda mixed with wheels in one environment, and its Nix expression evaluated with the real
//! `nix-instantiate --eval --strict` against `tests/nix-stub` (run `scripts/install-nix.sh`).

mod conda_common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use conda_common::snapshot_with;
use db_format::{DependencyRecord, File, FileKind, MetadataSource, Project, Release};
use resolver::conda::mixed::{self, CondaSelection, MixedResolution};
use resolver::conda::{CondaOptions, VirtualPackages};
use resolver::input::parse_requirements_txt;
use resolver::provider::{Mode, ProviderConfig};
use resolver::resolution::SnapshotPin;
use resolver::solve::{DEFAULT_MAX_STEPS, ResolveOptions};
use resolver::target::{System, TargetEnv};

fn wheel_release(name: &str, version: &str, wheel_tag: &str, requires: &[&str]) -> Release {
    let filename = format!("{name}-{version}-{wheel_tag}.whl");
    Release {
        version: version.into(),
        dependencies: vec![DependencyRecord {
            source: MetadataSource::WheelMetadata,
            requires_dist: requires.iter().map(|r| r.to_string()).collect(),
            ..DependencyRecord::default()
        }],
        files: vec![File {
            kind: FileKind::Wheel,
            size: 1000,
            sha256: Some([7; 32]),
            url: format!("https://files.example/{filename}"),
            filename,
            dependencies: Some(0),
            ..File::default()
        }],
        ..Release::default()
    }
}

/// PyPI: numpy 1.24.3 and a newer 1.26.0 (manylinux wheels for cp39), and `tinydep`, a pure
/// wheel that needs numpy.
fn pypi_projects() -> Vec<Project> {
    let manylinux = "cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64";
    vec![
        Project {
            name: "numpy".into(),
            last_serial: 1,
            releases: vec![
                wheel_release("numpy", "1.24.3", manylinux, &[]),
                wheel_release("numpy", "1.26.0", manylinux, &[]),
            ],
        },
        Project {
            name: "tinydep".into(),
            last_serial: 1,
            releases: vec![wheel_release(
                "tinydep",
                "1.0",
                "py3-none-any",
                &["numpy>=1.20"],
            )],
        },
    ]
}

fn mixed(requirements: &str, selection: CondaSelection) -> MixedResolution {
    let snapshot = snapshot_with(&pypi_projects());
    let input = parse_requirements_txt(requirements, Path::new("requirements.txt")).expect("input");
    let options = ResolveOptions {
        target: TargetEnv::new("3.9", System::X86_64Linux).expect("target"),
        providers: ProviderConfig::default(),
        mode: Mode::Newest,
        nixpkgs: None,
        allow_prereleases: false,
        max_steps: DEFAULT_MAX_STEPS,
    };
    let conda = CondaOptions {
        channels: vec!["intel".into()],
        system: System::X86_64Linux,
        virtual_packages: VirtualPackages::for_target(System::X86_64Linux, "2.39", "10.12", None),
        allow_md5_only: true,
    };
    let pin = SnapshotPin {
        sha256: "0".repeat(64),
        created: 0,
        as_of: None,
    };
    mixed::resolve(&snapshot, pin, &input, &options, &conda, &selection).expect("resolves")
}

fn names(list: &[&str]) -> CondaSelection {
    CondaSelection::Names(
        list.iter()
            .map(|name| name.to_string())
            .collect::<BTreeSet<_>>(),
    )
}

#[test]
fn conda_numpy_and_scipy_with_a_wheel_that_needs_numpy() {
    let resolution = mixed("numpy\nscipy\ntinydep\n", names(&["numpy", "scipy"]));
    assert_eq!(resolution.conda_requested, ["numpy", "scipy"]);
    assert_eq!(resolution.pypi.requested, ["tinydep"]);
    let conda_numpy = resolution
        .conda
        .packages
        .iter()
        .find(|p| p.pypi_name == "numpy")
        .expect("numpy from conda");
    // The interpreter is the target's: no conda python, no libffi for it.
    assert!(
        resolution
            .conda
            .packages
            .iter()
            .all(|p| p.record.name != "python")
    );
    // tinydep's numpy is pinned to conda's version, not PyPI's newest.
    let pypi_numpy = resolution
        .pypi
        .packages
        .iter()
        .find(|p| p.name == "numpy")
        .expect("numpy in the PyPI part");
    assert_eq!(pypi_numpy.version, conda_numpy.record.version);
    assert_ne!(pypi_numpy.version, "1.26.0");
    let tinydep = resolution
        .pypi
        .packages
        .iter()
        .find(|p| p.name == "tinydep")
        .expect("tinydep");
    assert_eq!(tinydep.provider.name(), "wheel");
}

#[test]
fn requirements_conda_does_not_have_stay_with_pypi() {
    let resolution = mixed("numpy\ntinydep\n", CondaSelection::All);
    // tinydep is in no conda channel: the wheel supplies it.
    assert_eq!(resolution.conda_requested, ["numpy"]);
    assert_eq!(resolution.pypi.requested, ["tinydep"]);
}

fn nix_instantiate() -> Command {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join("nix-instantiate").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`nix-instantiate` not found on PATH: run scripts/install-nix.sh (as root) first"
    );
    let stub = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/nix-stub");
    let mut command = Command::new("nix-instantiate");
    command.env("NIX_PATH", format!("nixpkgs={}", stub.display()));
    command
}

/// Write the Nix of `resolution`, import it with the stub's python311 standing for a 3.9 as `env`
/// (the file's default is python39, which the stub has not, and the file checks the interpreter's
/// version), and evaluate the attribute set `body` strictly.
fn evaluate(resolution: &MixedResolution, body: &str) -> serde_json::Value {
    let text = resolver::conda::nix::render_mixed(resolution).expect("renders");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("env.nix");
    std::fs::write(&file, &text).expect("write");
    let expression = format!(
        "let\n  pkgs = import <nixpkgs> {{ }};\n  env = import {} {{ inherit pkgs; python = pkgs.python311 // {{ pythonVersion = \"3.9\"; }}; }};\nin {body}",
        file.display()
    );
    let output = nix_instantiate()
        .args(["--eval", "--strict", "--json", "-E", &expression])
        .output()
        .expect("runs nix-instantiate");
    assert!(
        output.status.success(),
        "evaluation failed:\n{}\n--- the file ---\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON")
}

#[test]
fn the_mixed_environment_evaluates_in_nix() {
    let resolution = mixed("numpy\nscipy\ntinydep\n", names(&["numpy", "scipy"]));
    let value = evaluate(
        &resolution,
        r#"{
  drv = env.drvPath;
  environment = map (p: p.pname) env.packages;
  numpyProvider = env.python.pkgs.numpy.provider;
  numpyVersion = env.python.pkgs.numpy.version;
  numpyLibraries = map (l: l.pname) env.python.pkgs.numpy.buildInputs;
  numpySrc = env.python.pkgs.numpy.src.name or (baseNameOf env.python.pkgs.numpy.src.url);
  tinydepProvider = env.python.pkgs.tinydep.provider;
  tinydepNumpy = map (d: d.provider) env.python.pkgs.tinydep.dependencies;
  mklUnpack = env.condaLibraries.mkl.mkDerivationArguments.installPhase;
  libraries = builtins.attrNames env.condaLibraries;
  mklUsers = builtins.filter (name: builtins.elem "mkl" (map (l: l.pname) env.python.pkgs.${name}.buildInputs))
    [ "numpy-base" "mkl-service" "scipy" ];
  conda = env.machNix.conda;
}"#,
    );
    let conda_numpy = resolution
        .conda
        .packages
        .iter()
        .find(|p| p.pypi_name == "numpy")
        .expect("numpy");
    assert_eq!(value["numpyProvider"], "conda");
    assert_eq!(value["numpyVersion"], conda_numpy.record.version.as_str());
    assert_eq!(value["tinydepProvider"], "wheel");
    // The wheel's numpy dependency is the conda package (the overlay replaced the wheel).
    assert_eq!(value["tinydepNumpy"], serde_json::json!(["conda"]));
    let libraries: Vec<&str> = value["numpyLibraries"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert!(libraries.contains(&"libstdcxx-ng"), "{libraries:?}");
    // MKL is in the environment, patched into the packages that link it.
    assert!(
        value["libraries"]
            .as_array()
            .expect("list")
            .contains(&serde_json::json!("mkl")),
        "{}",
        value["libraries"]
    );
    assert!(
        !value["mklUsers"].as_array().expect("list").is_empty(),
        "{}",
        value["mklUsers"]
    );
    let environment: Vec<&str> = value["environment"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    for name in ["numpy", "scipy", "tinydep"] {
        assert!(environment.contains(&name), "{environment:?}");
    }
    let unpack = value["mklUnpack"].as_str().expect("installPhase");
    assert!(
        unpack.contains("tar -xjf") && unpack.contains("pkg-*.tar.zst"),
        "{unpack}"
    );
    assert_eq!(
        value["conda"]["requested"],
        serde_json::json!(["numpy", "scipy"])
    );
}

/// `python=3.9 numpy scipy` from the intel channel alone (the interpreter is the target's
/// python 3.9): a conda-only environment, evaluated.
#[test]
fn a_conda_only_environment_evaluates_in_nix() {
    let resolution = mixed("numpy\nscipy\n", CondaSelection::All);
    assert!(resolution.pypi.packages.is_empty());
    assert_eq!(resolution.conda_requested, ["numpy", "scipy"]);
    let scipy = resolution
        .conda
        .packages
        .iter()
        .find(|p| p.record.name == "scipy")
        .expect("scipy");
    assert!(
        scipy.record.build.starts_with("py39"),
        "{}",
        scipy.record.filename
    );
    let value = evaluate(
        &resolution,
        r#"{
  drv = env.drvPath;
  environment = map (p: p.pname) env.packages;
  scipy = env.python.pkgs.scipy.provider;
}"#,
    );
    assert_eq!(value["scipy"], "conda");
    let environment = value["environment"].as_array().expect("list");
    assert!(
        environment.contains(&serde_json::json!("numpy")),
        "{environment:?}"
    );
    assert!(
        environment.contains(&serde_json::json!("scipy")),
        "{environment:?}"
    );
}

#[test]
fn records_without_any_hash_cannot_be_written() {
    let mut resolution = mixed("numpy\n", names(&["numpy"]));
    for package in &mut resolution.conda.packages {
        package.record.sha256 = None;
        package.record.md5 = None;
    }
    let err = resolver::conda::nix::render_mixed(&resolution).expect_err("no hash");
    assert!(err.to_string().contains("has no sha256"), "{err}");
}

/// `mach-nix gen` with `conda/intel` providers, end to end through the binary.
#[test]
fn gen_takes_conda_providers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("snapshot.mnxdb");
    std::fs::write(&db, snapshot_with(&pypi_projects()).as_bytes()).expect("write snapshot");
    let requirements = dir.path().join("requirements.txt");
    std::fs::write(&requirements, "numpy\nscipy\ntinydep\n").expect("write requirements");
    let generate = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mach-nix"))
            .arg("gen")
            .arg("-r")
            .arg(&requirements)
            .arg("--db")
            .arg(&db)
            .args([
                "-p",
                "3.9",
                "--providers",
                "_default=wheel,sdist numpy=conda/intel scipy=conda/intel",
            ])
            .args(extra)
            .output()
            .expect("mach-nix runs")
    };
    let output = generate(&["--conda-allow-md5"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("numpy = mkConda pySelf"), "{text}");
    assert!(text.contains("tinydep = mkWheel"), "{text}");
    assert!(
        text.contains("import <nix/fetchurl.nix>"),
        "md5-only records fetched by Nix's fetcher"
    );

    // Without md5-only records the intel channel cannot supply MKL's runtime: unresolvable.
    let strict = generate(&[]);
    assert_eq!(
        strict.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&strict.stderr)
    );
    assert!(String::from_utf8_lossy(&strict.stderr).contains("sha256"));

    let pylock = generate(&["--conda-allow-md5", "--format", "pylock"]);
    assert_eq!(pylock.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&pylock.stderr).contains("only the Nix output"));
}

/// Run `script` with bash as a Nix builder would (`$src`, `$out`, `runHook`), in `dir`.
fn run_install_phase(script: &str, src: &Path, out: &Path, dir: &Path) {
    let output = Command::new("bash")
        .current_dir(dir)
        .env("src", src)
        .env("out", out)
        .args(["-c", &format!("set -eu\nrunHook() {{ :; }}\n{script}")])
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "installPhase failed on {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn sh(dir: &Path, command: &str) {
    let output = Command::new("bash")
        .current_dir(dir)
        .args(["-c", &format!("set -eu\n{command}")])
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "{command}: {} (needs tar, bzip2, zstd and zip on PATH)",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The generated unpacking script on real archives of both formats: a `.tar.bz2` and a `.conda`
/// (a zip of `pkg-*.tar.zst` and `info-*.tar.zst`), built here with the host's tools, each
/// holding a library, conda's `info/` and a noarch `site-packages/`.
#[test]
fn the_unpack_phase_installs_tar_bz2_and_conda_archives() {
    let resolution = mixed("numpy\n", names(&["numpy"]));
    let value = evaluate(
        &resolution,
        r#"{ phase = env.condaLibraries.mkl.mkDerivationArguments.installPhase; }"#,
    );
    let phase = value["phase"].as_str().expect("installPhase");
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    sh(
        root,
        "mkdir -p pkg/lib pkg/info pkg/site-packages/demo
         echo 'ELF?' > pkg/lib/libdemo.so
         echo '{}' > pkg/info/index.json
         echo 'x = 1' > pkg/site-packages/demo/__init__.py
         tar -cjf demo-1.0-0.tar.bz2 -C pkg .
         tar -cf - -C pkg lib site-packages | zstd -q -o pkg-demo-1.0-0.tar.zst
         tar -cf - -C pkg info | zstd -q -o info-demo-1.0-0.tar.zst
         zip -q demo-1.0-0.conda pkg-demo-1.0-0.tar.zst info-demo-1.0-0.tar.zst",
    );
    for archive in ["demo-1.0-0.tar.bz2", "demo-1.0-0.conda"] {
        let out = root.join(format!("out-{archive}"));
        let work = root.join(format!("work-{archive}"));
        std::fs::create_dir(&work).expect("work dir");
        run_install_phase(phase, &root.join(archive), &out, &work);
        assert!(out.join("lib/libdemo.so").is_file(), "{archive}: library");
        assert!(
            !out.join("info").exists(),
            "{archive}: conda metadata dropped"
        );
        assert!(
            !out.join("site-packages").exists(),
            "{archive}: noarch moved"
        );
        assert!(
            out.join("lib/python3.11/site-packages/demo/__init__.py")
                .is_file(),
            "{archive}: noarch python under the interpreter's site-packages"
        );
    }
}
