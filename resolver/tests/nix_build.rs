//! Real `nix-build` of generated Nix, end to end: the stub's `fetchurl` is a fixed-output fetch from
//! files.pythonhosted.org (hash-checked by Nix), its `buildPythonPackage` installs the fetched wheel
//! (or builds the sdist) with the host's CPython 3.11 and pip, `python.withPackages` is a virtual
//! environment; then every top-level module of the built environment is imported with its python.
//! A wrong URL, hash or dependency edge makes these fail (and the tests below check that it does).
//!
//! Test names start with `nix_build_` (select them with `cargo nextest run -E 'test(nix_build_)'`).
//! Needs Nix (`scripts/install-nix.sh`) and network access to files.pythonhosted.org.

mod nix_common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use nix_common::*;
use resolver::resolution::Resolution;

/// `nix-build` of `expression` as root without the binary cache; the raw output.
fn nix_build_output(expression: &str) -> Output {
    nix_build(&[OsStr::new("--expr"), OsStr::new(expression)])
}

/// Build the environment of `resolution` (against the stub with `stub_arguments`).
fn build_environment(resolution: &Resolution, stub_arguments: &str) -> PathBuf {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "environment.nix", resolution);
    let stdout = check(nix_build_output(&apply(&file, stub_arguments)), "nix-build");
    PathBuf::from(
        stdout
            .lines()
            .last()
            .expect("nix-build printed the output path"),
    )
}

/// Build a resolution that must not build; returns nix-build's stderr.
fn build_failure(resolution: &Resolution) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "environment.nix", resolution);
    let output = nix_build_output(&apply(&file, ""));
    assert!(
        !output.status.success(),
        "nix-build succeeded but must fail: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// Imports every top-level module the environment's site-packages holds, from there, and prints
/// their names.
const IMPORT_ALL: &str = r#"
import importlib, os, sys, sysconfig
site = sysconfig.get_paths()["purelib"]
assert sys.prefix != sys.base_prefix, "not a virtual environment"
names = []
for entry in sorted(os.listdir(site)):
    path = os.path.join(site, entry)
    if os.path.isdir(path) and os.path.exists(os.path.join(path, "__init__.py")):
        names.append(entry)
    elif entry.endswith(".py"):
        names.append(entry[:-3])
for name in names:
    module = importlib.import_module(name)
    assert module.__file__.startswith(site), f"{name} imported from {module.__file__}"
print(" ".join(names))
"#;

/// Run `code` with the environment's python; the raw output.
fn run_python(environment: &Path, code: &str) -> Output {
    std::process::Command::new(environment.join("bin/python"))
        .args(["-c", code])
        .env_clear()
        .output()
        .expect("run the environment's python")
}

/// The top-level modules of the requests closure.
const REQUESTS_MODULES: [&str; 5] = [
    "certifi",
    "charset_normalizer",
    "idna",
    "requests",
    "urllib3",
];

fn import_all(environment: &Path) -> Vec<String> {
    let stdout = check(
        run_python(environment, IMPORT_ALL),
        "importing every module",
    );
    stdout.split_whitespace().map(str::to_string).collect()
}

#[test]
fn nix_build_requests_closure_imports() {
    let environment = build_environment(&wheels(&["requests"]), "");
    assert_eq!(import_all(&environment), REQUESTS_MODULES);
    // The manylinux extension of charset-normalizer loads.
    let stdout = check(
        run_python(
            &environment,
            "import requests, charset_normalizer.md as md; print(requests.__version__, md.__file__.endswith('.so'))",
        ),
        "requests",
    );
    assert_eq!(stdout.trim(), "2.32.3 True");
}

#[test]
fn nix_build_numpy_pandas_imports() {
    let environment = build_environment(&wheels(&["numpy", "pandas"]), "");
    assert_eq!(
        import_all(&environment),
        ["dateutil", "numpy", "pandas", "pytz", "six", "tzdata"]
    );
    let stdout = check(
        run_python(
            &environment,
            "import numpy, pandas; frame = pandas.DataFrame({'a': numpy.arange(4)}); print(numpy.__version__, pandas.__version__, int(frame.a.sum()))",
        ),
        "numpy and pandas",
    );
    assert_eq!(stdout.trim(), "2.1.3 2.2.3 6");
}

#[test]
fn nix_build_corrupted_hash_fails() {
    let mut resolution = wheels(&["idna"]);
    let file = resolution.packages[0].file.as_mut().expect("wheel");
    let sha256 = file.sha256.as_mut().expect("sha256");
    sha256[31] ^= 1;
    let stderr = build_failure(&resolution);
    assert!(stderr.contains("hash mismatch"), "{stderr}");
}

#[test]
fn nix_build_wrong_url_fails() {
    let mut resolution = wheels(&["certifi"]);
    let file = resolution.packages[0].file.as_mut().expect("wheel");
    file.url = file.url.replace("certifi-2024.8.30", "certifi-2024.8.29");
    let stderr = build_failure(&resolution);
    assert!(
        stderr.contains("unable to download") && stderr.contains("certifi-2024.8.29"),
        "{stderr}"
    );
}

#[test]
fn nix_build_missing_dependency_edge_fails_the_build_naming_the_requirement() {
    // requests without its idna edge (idna stays in the package set): nixpkgs runs no
    // run-time dependency check for wheels, the generated build-time check does.
    let mut resolution = wheels(&["requests"]);
    package_mut(&mut resolution, "requests")
        .dependencies
        .retain(|dependency| dependency != "idna");
    let stderr = build_failure(&resolution);
    assert!(
        stderr.contains(
            "mach-nix check of requests: unsatisfied requirements:\n  requests 2.32.3 requires idna <4,>=2.5, but idna is not among its dependencies"
        ),
        "{stderr}"
    );
}

/// `six` whose module cannot be imported at build time (as one needing a display), with
/// `machNixImportsCheck` set to `imports_check`: nix-build's output.
fn build_six_failing_import(imports_check: bool) -> Output {
    let resolution = wheels(&["six"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "six.nix", &resolution);
    let expression = format!(
        r#"
        let
          pkgs = import {stub} {{ }};
          generated = import {file} {{ inherit pkgs; }};
          compose = f: g: self: super: let fs = f self super; in fs // g self (super // fs);
          noDisplay = self: super: {{
            six = super.six.overridePythonAttrs (old: {{
              postFixup = "echo 'raise RuntimeError(\"no display\")' >>$out/${{pkgs.python311.sitePackages}}/six.py";
              machNixImportsCheck = {imports_check};
            }});
          }};
          python = pkgs.python311.override {{ packageOverrides = compose generated.overrides noDisplay; }};
        in
          python.pkgs.six
        "#,
        stub = nix_path(&stub_dir()),
        file = nix_path(&file),
    );
    nix_build_output(&expression)
}

#[test]
fn nix_build_import_check_fails_the_build_unless_turned_off() {
    let failed = build_six_failing_import(true);
    assert!(!failed.status.success(), "six built with a failing import");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("mach-nix check of six: `import six` failed: RuntimeError: no display")
            && stderr.contains("_.six.machNixImportsCheck = false"),
        "{stderr}"
    );
    check(
        build_six_failing_import(false),
        "six without the import check",
    );
}

#[test]
fn nix_build_dependency_cycle_builds_and_imports() {
    // urllib3 -> requests -> urllib3: the broken edge's package is still in the environment.
    let mut resolution = wheels(&["urllib3"]);
    let requests = wheels(&["requests"]);
    resolution.packages = requests.packages;
    for package in &mut resolution.packages {
        if package.name == "urllib3" {
            package.dependencies = vec!["requests".to_string()];
        }
    }
    let environment = build_environment(&resolution, "");
    assert_eq!(import_all(&environment), REQUESTS_MODULES);
}

#[test]
fn nix_build_sdists_with_their_build_systems() {
    // idna's sdist builds with flit-core (a PEP 517 backend), six's with setuptools (legacy
    // setup.py), both taken from PyPI wheels of the resolution.
    let resolution = resolution(&["idna", "six"], |name| match name {
        "idna" | "six" => Source::Sdist,
        _ => Source::Wheel,
    });
    let environment = build_environment(&resolution, "");
    // flit-core and setuptools were build inputs only.
    assert_eq!(import_all(&environment), ["idna", "six"]);
}

/// nixpkgs.json with the stub's C-extension package and requests, whose nixpkgs definitions carry
/// patches and phases that fit only nixpkgs' own source (`tests/nix-stub/default.nix`).
fn nixpkgs_with_source_specific_definitions() -> String {
    r#"pythonPackagesJson = builtins.toFile "nixpkgs.json" (builtins.toJSON [
      { attribute = "charset-normalizer"; pname = "charset-normalizer"; version = "3.3.2"; }
      { attribute = "requests"; pname = "requests"; version = "2.31.0"; }
    ]);"#
        .to_string()
}

#[test]
fn nix_build_every_package_from_its_sdist_with_setuptools_flit_core_and_hatchling() {
    // `_default=sdist,wheel` over the requests closure: every package and every build system
    // (setuptools, flit-core, hatchling with hatch-vcs and setuptools-scm, and what they need)
    // from its sdist, against a nixpkgs whose definitions of the backends, charset-normalizer and
    // requests carry patches and phases for their own sources, with only the declared build
    // inputs on the build path. Each package's build-time check imports its modules.
    let resolution = resolution(&["requests"], |_| Source::Sdist);
    let names: Vec<&str> = resolution
        .packages
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    for backend in ["setuptools", "flit-core", "hatchling"] {
        assert!(names.contains(&backend), "{backend} not in {names:?}");
    }
    let environment = build_environment(
        &resolution,
        &format!(
            "strictBuildPath = true; {}",
            nixpkgs_with_source_specific_definitions()
        ),
    );
    assert_eq!(import_all(&environment), REQUESTS_MODULES);
}

#[test]
fn nix_build_nixpkgs_override_of_the_same_source_keeps_nixpkgs_patch() {
    // The stub's nixpkgs has requests 2.32.3 from the very sdist the resolution takes, with a
    // patch adding `requests.nixpkgs_patch_applied`: same version, same source, so the patch is
    // nixpkgs' patch of this source and is applied.
    let resolution = resolution(&["requests"], |name| match name {
        "requests" => Source::Sdist,
        _ => Source::Wheel,
    });
    let sdist = fixture_package("requests").sdist.as_ref().expect("sdist");
    let environment = build_environment(
        &resolution,
        &format!(
            r#"pythonPackagesJson = builtins.toFile "nixpkgs.json" (builtins.toJSON [
                 {{ attribute = "requests"; pname = "requests"; version = "2.32.3"; }} ]);
               pythonPackagesExtra.requests = ps: {{
                 src = (import {stub} {{ }}).fetchurl {{ url = "{url}"; sha256 = "{sha256}"; }};
               }};"#,
            stub = nix_path(&stub_dir()),
            url = sdist.url,
            sha256 = sdist.sha256,
        ),
    );
    let stdout = check(
        run_python(
            &environment,
            "import requests, requests.nixpkgs_patch_applied as p; print(requests.__version__, p.APPLIED)",
        ),
        "patched requests",
    );
    assert_eq!(
        stdout.trim(),
        "2.32.3 by the nixpkgs stub's patch of requests"
    );
}

#[test]
fn nix_build_env_dir_activates_with_nix_shell() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = dir.path().join("env");
    resolver::output::nix::write_env(&env, &wheels(&["requests"]), "requests\n", "")
        .expect("write_env");
    let output = building("nix-shell")
        .arg(&env)
        .args([
            "--run",
            "python -c 'import sys, requests; print(sys.prefix != sys.base_prefix, requests.__version__)'",
        ])
        .output()
        .expect("run nix-shell");
    assert_eq!(
        check(output, "nix-shell DIR").trim().lines().last(),
        Some("True 2.32.3")
    );
}
