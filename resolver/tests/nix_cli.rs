//! `mach-nix gen` and `mach-nix env` end to end: a real snapshot written from the recorded PyPI
//! fixture, resolved by the real CLI, and its Nix output evaluated and built (`nix_build_…`) against
//! the nixpkgs stub. Needs Nix (`scripts/install-nix.sh`); the builds need files.pythonhosted.org.

mod nix_common;

use std::ffi::OsStr;
use std::path::Path;

use nix_common::*;
use serde_json::json;

/// `mach-nix <command> … -r requirements.txt --db sha256:… --db-dir … -p 3.11` in `dir`.

#[test]
fn cli_gen_output_evaluates_to_the_snapshot_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.nix");
    let snapshot = CliSnapshot::new(&dir.path().join("snapshots"));
    snapshot.generate(&out, "requests==2.32.3\npandas\n", &[]);
    let hash = &snapshot.hash;
    let mach_nix = eval_json(&format!("({}).machNix", apply(&out, "")));
    assert_eq!(mach_nix["snapshot"]["sha256"], json!(hash));
    assert_eq!(mach_nix["requested"], json!(["pandas", "requests"]));
    assert_eq!(
        environment_names(&out, ""),
        [
            "certifi",
            "charset-normalizer",
            "idna",
            "numpy",
            "pandas",
            "python-dateutil",
            "pytz",
            "requests",
            "six",
            "tzdata",
            "urllib3"
        ]
    );
    // Every package is the fixture's wheel: URL and hash as PyPI published them.
    let expression = format!(
        "map (p: {{ inherit (p) pname version provider; url = p.src.url; sha256 = p.src.outputHash; }}) ({}).packages",
        apply(&out, "")
    );
    let packages = eval_json(&expression);
    for package in packages.as_array().expect("a list") {
        let name = package["pname"].as_str().expect("pname");
        assert_fixture_wheel(name, package);
    }
}

#[test]
fn nix_build_cli_gen_requests_and_pandas_import() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.nix");
    CliSnapshot::new(&dir.path().join("snapshots")).generate(
        &out,
        "requests==2.32.3\npandas\n",
        &[],
    );
    assert_eq!(
        build_and_run_python(
            &out,
            "mach-nix gen output",
            "import requests, pandas, numpy; print(requests.__version__, pandas.__version__, numpy.__version__)",
        ),
        "2.32.3 2.2.3 2.1.3"
    );
}

#[test]
fn nix_build_cli_env_directory_enters_with_nix_shell() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = dir.path().join("env");
    CliSnapshot::new(&dir.path().join("snapshots")).run(
        &[OsStr::new("env"), env.as_os_str()],
        &dir.path().join("requirements.txt"),
        "requests\n",
        &[],
    );
    let output = building("nix-shell")
        .arg(&env)
        .args([
            "--run",
            "python -c 'import requests; print(requests.__version__)'",
        ])
        .output()
        .expect("run nix-shell");
    assert_eq!(
        check(output, "nix-shell of mach-nix env")
            .trim()
            .lines()
            .last(),
        Some("2.32.3")
    );
}

#[test]
fn cli_gen_with_the_nixpkgs_provider_evaluates_against_that_nixpkgs() {
    // nixpkgs first: certifi 2024.8.30 is nixpkgs' own; nixpkgs' requests 2.31.0 and idna 3.7 lose
    // to the newer wheels (mode `newest`).
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.nix");
    let json = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nix/nixpkgs.json");
    CliSnapshot::new(&dir.path().join("snapshots")).generate(
        &out,
        "requests\n",
        &[
            OsStr::new("--providers"),
            OsStr::new("_default=nixpkgs,wheel,sdist"),
            OsStr::new("--nixpkgs-json"),
            json.as_os_str(),
        ],
    );
    let stub = format!("pythonPackagesJson = {};", nix_path(&json));
    let expression = format!(
        "map (p: {{ inherit (p) pname version provider; url = p.src.url; }}) ({}).packages",
        apply(&out, &stub)
    );
    let packages = eval_json(&expression);
    let packages = packages.as_array().expect("a list");
    assert_eq!(packages.len(), 5);
    for package in packages {
        let name = package["pname"].as_str().expect("pname");
        if name == "certifi" {
            assert_eq!(
                package,
                &json!({"pname": "certifi", "version": "2024.8.30", "provider": "nixpkgs",
                        "url": "https://nixpkgs.invalid/certifi-2024.8.30.tar.gz"})
            );
        } else {
            assert_eq!(package["provider"], json!("wheel"), "{name}");
            assert_eq!(
                package["url"],
                json!(fixture_package(name).wheel.url),
                "{name}"
            );
        }
    }
    assert!(eval_json(&format!("({}).drvPath", apply(&out, &stub))).is_string());
}

#[test]
fn nix_build_cli_gen_sdists_build_with_their_resolved_build_systems() {
    // Every package from its sdist: six and idna are built with setuptools and flit-core, which
    // are themselves built from their sdists (both are their own PEP 517 backends).
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.nix");
    CliSnapshot::new(&dir.path().join("snapshots")).generate(
        &out,
        "six\nidna\n",
        &[OsStr::new("--providers"), OsStr::new("_default=sdist")],
    );
    assert_eq!(
        build_and_run_python(
            &out,
            "sdists",
            "import six, idna; print(six.__version__, idna.__version__)",
        ),
        "1.16.0 3.10"
    );
}
