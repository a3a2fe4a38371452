//! The generated Nix, evaluated with the real `nix-instantiate --eval --strict` against the
//! nixpkgs stub in `tests/nix-stub/`, from resolutions of real PyPI data; and insta snapshots of
//! the generated text. Needs Nix: `scripts/install-nix.sh`.

mod nix_common;

use nix_common::*;
use serde_json::json;

fn hex(sha256: Option<[u8; 32]>) -> String {
    hex::encode(sha256.expect("fixture files have a sha256"))
}

#[test]
fn requests_closure_evaluates_to_the_resolved_versions_urls_hashes_and_graph() {
    let resolution = wheels(&["requests"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "requests.nix", &resolution);
    let summary = summarize(&file, "", &resolution);

    assert_eq!(summary.keys().collect::<Vec<_>>(), REQUESTS_CLOSURE);
    for package in &resolution.packages {
        let evaluated = &summary[&package.name];
        let file = package.file.as_ref().expect("wheel");
        assert_eq!(
            evaluated["version"],
            json!(package.version),
            "{}",
            package.name
        );
        assert_eq!(evaluated["url"], json!(file.url), "{}", package.name);
        assert_eq!(
            evaluated["sha256"],
            json!(hex(file.sha256)),
            "{}",
            package.name
        );
        assert_eq!(
            evaluated["dependencies"],
            json!(package.dependencies),
            "{}",
            package.name
        );
        assert_eq!(evaluated["provider"], json!("wheel"));
        assert_eq!(evaluated["doCheck"], json!(false));
    }
    assert_eq!(
        summary["requests"]["dependencies"],
        json!(["certifi", "charset-normalizer", "idna", "urllib3"])
    );
    // charset-normalizer is a cp311 manylinux wheel: autoPatchelf and the manylinux libraries.
    assert_eq!(
        summary["charset-normalizer"]["native"],
        json!(["auto-patchelf-hook"])
    );
    assert!(
        summary["charset-normalizer"]["buildInputs"]
            .as_array()
            .is_some_and(|libs| libs.contains(&json!("glibc")))
    );
    assert_eq!(summary["idna"]["native"], json!([]));
    assert_eq!(environment_names(&file, ""), REQUESTS_CLOSURE);
}

#[test]
fn numpy_pandas_wheels_are_manylinux_with_their_dependency_graph() {
    let resolution = wheels(&["numpy", "pandas"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "pandas.nix", &resolution);
    let summary = summarize(&file, "", &resolution);
    assert_eq!(
        summary["pandas"]["dependencies"],
        json!(["numpy", "python-dateutil", "pytz", "tzdata"])
    );
    assert_eq!(summary["python-dateutil"]["dependencies"], json!(["six"]));
    for name in ["numpy", "pandas"] {
        assert_eq!(
            summary[name]["native"],
            json!(["auto-patchelf-hook"]),
            "{name}"
        );
        let url = summary[name]["url"].as_str().expect("url");
        assert!(
            url.ends_with("-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
            "{url}"
        );
    }
    for name in ["pytz", "six", "tzdata", "python-dateutil"] {
        assert_eq!(summary[name]["native"], json!([]), "{name}");
        assert_eq!(summary[name]["buildInputs"], json!([]), "{name}");
    }
    for package in &resolution.packages {
        let file = package.file.as_ref().expect("wheel");
        assert_eq!(summary[&package.name]["sha256"], json!(hex(file.sha256)));
    }
    assert_eq!(
        environment_names(&file, ""),
        [
            "numpy",
            "pandas",
            "python-dateutil",
            "pytz",
            "six",
            "tzdata"
        ]
    );
}

#[test]
fn the_file_records_snapshot_resolver_version_and_target() {
    let resolution = wheels(&["requests"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "requests.nix", &resolution);
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.contains(&format!("sha256:{}", resolution.snapshot.sha256)));
    let mach_nix = eval_json(&format!("({}).machNix", apply(&file, "")));
    assert_eq!(
        mach_nix["resolverVersion"],
        json!(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        mach_nix["snapshot"]["sha256"],
        json!(resolution.snapshot.sha256)
    );
    assert_eq!(
        mach_nix["snapshot"]["asOf"],
        json!(resolution.snapshot.as_of)
    );
    assert_eq!(
        mach_nix["target"],
        json!({"python": "3.11", "system": "x86_64-linux"})
    );
    assert_eq!(mach_nix["requested"], json!(["requests"]));
}

#[test]
fn tests_argument_turns_checks_on() {
    let resolution = wheels(&["requests"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "requests.nix", &resolution);
    let expression = format!(
        "map (p: p.doCheck) (import {} {{ pkgs = import {} {{ }}; tests = true; }}).packages",
        nix_path(&file),
        nix_path(&stub_dir())
    );
    assert_eq!(
        eval_json(&expression),
        json!([true, true, true, true, true])
    );
}

#[test]
fn sdists_get_their_resolved_build_system() {
    // requests, certifi and six declare setuptools; idna flit-core (a real PEP 517 backend).
    let sdists = ["requests", "certifi", "idna", "six"];
    let resolution = resolution(&["requests", "six"], |name| {
        if sdists.contains(&name) {
            Source::Sdist
        } else {
            Source::Wheel
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "sdists.nix", &resolution);
    let summary = summarize(&file, "", &resolution);
    for name in sdists {
        let sdist = fixture_package(name).sdist.as_ref().expect("sdist");
        assert_eq!(summary[name]["provider"], json!("sdist"), "{name}");
        assert_eq!(summary[name]["url"], json!(sdist.url), "{name}");
        assert_eq!(summary[name]["sha256"], json!(sdist.sha256), "{name}");
    }
    assert_eq!(summary["requests"]["buildSystem"], json!(["setuptools"]));
    assert_eq!(summary["idna"]["buildSystem"], json!(["flit-core"]));
    // The build system is the resolved one (a PyPI wheel), not nixpkgs' setuptools.
    assert_eq!(summary["setuptools"]["provider"], json!("wheel"));
    assert_eq!(summary["setuptools"]["version"], json!("75.6.0"));
    // Build-only packages are not in the environment.
    assert_eq!(
        environment_names(&file, ""),
        [
            "certifi",
            "charset-normalizer",
            "idna",
            "requests",
            "six",
            "urllib3"
        ]
    );
}

#[test]
fn an_sdist_declaring_no_build_system_gets_setuptools() {
    // PEP 517: no [build-system] means setuptools' legacy backend.
    let mut resolution = resolution(&["six"], |_| Source::Sdist);
    let six = package_mut(&mut resolution, "six");
    six.build_dependencies.clear();
    six.build_backend = None;
    resolution.packages.retain(|p| p.name == "six");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "six.nix", &resolution);
    let summary = summarize(&file, "", &resolution);
    // nixpkgs' (here: the stub's) setuptools, as the resolution has none.
    assert_eq!(summary["six"]["buildSystem"], json!(["setuptools"]));
    let version = eval_json(&format!(
        "(builtins.head ({}).python.pkgs.six.build-system).version",
        apply(&file, "")
    ));
    assert_eq!(version, json!("75.1.0"));
}

fn nixpkgs_json() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nix/nixpkgs.json");
    format!("pythonPackagesJson = {};", nix_path(&path))
}

/// requests from its sdist over nixpkgs' requests, certifi from nixpkgs, the rest wheels.
fn nixpkgs_mix() -> resolver::resolution::Resolution {
    resolution(&["requests"], |name| match name {
        "requests" => Source::Sdist,
        "certifi" => Source::Nixpkgs,
        _ => Source::Wheel,
    })
}

/// `nixpkgs_mix` where certifi (nixpkgs) also needs requests (sdist over nixpkgs): a cycle.
fn nixpkgs_mix_with_a_cycle() -> resolver::resolution::Resolution {
    let mut resolution = nixpkgs_mix();
    package_mut(&mut resolution, "certifi").dependencies = vec!["requests".to_string()];
    resolution.cycles = vec![vec!["certifi".into(), "requests".into(), "certifi".into()]];
    resolution
}

#[test]
fn an_sdist_nixpkgs_has_overrides_nixpkgs_keeping_native_inputs_dropping_its_patches() {
    let resolution = nixpkgs_mix();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "mix.nix", &resolution);
    let summary = summarize(&file, &nixpkgs_json(), &resolution);
    let requests = &summary["requests"];
    let sdist = fixture_package("requests").sdist.as_ref().expect("sdist");
    // Source and version swapped for the resolved ones (nixpkgs has 2.31.0) …
    assert_eq!(requests["version"], json!("2.32.3"));
    assert_eq!(requests["url"], json!(sdist.url));
    assert_eq!(requests["sha256"], json!(sdist.sha256));
    assert_eq!(requests["provider"], json!("sdist"));
    // … nixpkgs' native inputs and C libraries kept, its patch (for its own source, 2.31.0)
    // dropped …
    assert_eq!(requests["native"], json!(["pkg-config"]));
    assert_eq!(requests["buildInputs"], json!(["openssl"]));
    assert_eq!(requests["patches"], json!([]));
    assert_eq!(requests["propagated"], json!(["libffi"]));
    // … and its Python inputs are the resolved ones.
    assert_eq!(
        requests["dependencies"],
        json!(["certifi", "charset-normalizer", "idna", "urllib3"])
    );
    assert_eq!(requests["buildSystem"], json!(["setuptools"]));
    // idna is a wheel even though nixpkgs has it: wheels are never nixpkgs overrides.
    assert_eq!(summary["idna"]["provider"], json!("wheel"));
    assert_eq!(summary["idna"]["version"], json!("3.10"));
}

#[test]
fn the_nixpkgs_provider_keeps_nixpkgs_source() {
    let resolution = nixpkgs_mix();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "mix.nix", &resolution);
    let summary = summarize(&file, &nixpkgs_json(), &resolution);
    let certifi = &summary["certifi"];
    assert_eq!(certifi["provider"], json!("nixpkgs"));
    assert_eq!(certifi["version"], json!("2024.8.30"));
    assert_eq!(
        certifi["url"],
        json!("https://nixpkgs.invalid/certifi-2024.8.30.tar.gz")
    );
    assert_eq!(certifi["doCheck"], json!(false));
    // The environment derivation instantiates (no build needed to get its .drv).
    let drv = eval_json(&format!("({}).drvPath", apply(&file, &nixpkgs_json())));
    assert!(
        drv.as_str()
            .is_some_and(|d| d.ends_with("-python3.11-env.drv")),
        "{drv}"
    );
}

#[test]
fn a_nixpkgs_package_missing_from_nixpkgs_is_a_clear_error() {
    let resolution = nixpkgs_mix();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "mix.nix", &resolution);
    // The stub without the --nixpkgs-json packages has no certifi.
    let error = eval_error(&format!("({}).drvPath", apply(&file, "")));
    assert!(
        error.contains("the resolution uses python.pkgs.certifi from nixpkgs, but this nixpkgs has no such package"),
        "{error}"
    );
}

#[test]
fn a_nixpkgs_version_other_than_the_resolved_one_warns() {
    let mut resolution = nixpkgs_mix();
    let certifi = package_mut(&mut resolution, "certifi");
    certifi.version = "2099.1.1".to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "mix.nix", &resolution);
    let output = nix_command("nix-instantiate")
        .args(["--eval", "--strict", "--expr"])
        .arg(format!(
            "({}).python.pkgs.certifi.version",
            apply(&file, &nixpkgs_json())
        ))
        .output()
        .expect("run nix-instantiate");
    let stdout = check(output.clone(), "evaluation");
    assert_eq!(stdout.trim(), "\"2024.8.30\"");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "python.pkgs.certifi is 2024.8.30 in this nixpkgs, the resolution expected 2099.1.1"
        ),
        "{stderr}"
    );
}

#[test]
fn dependency_cycles_evaluate_without_infinite_recursion() {
    // A run-time cycle across providers: requests (sdist over nixpkgs) -> certifi (nixpkgs)
    // -> requests. In the stub's nixpkgs, requests needs certifi and (here) certifi needs
    // requests too: nixpkgs' own definitions recurse forever, as the first check shows.
    let resolution = nixpkgs_mix_with_a_cycle();
    let stub = format!(
        "{} pythonPackagesExtra = {{ certifi = ps: {{ propagatedBuildInputs = [ ps.requests ]; }}; }};",
        nixpkgs_json()
    );
    let unresolved = eval_error(&format!(
        "(import {} {{ {stub} }}).python311.pkgs.certifi.drvPath",
        nix_path(&stub_dir())
    ));
    assert!(unresolved.contains("infinite recursion"), "{unresolved}");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "cycle.nix", &resolution);

    let mach_nix = eval_json(&format!("({}).machNix", apply(&file, &stub)));
    assert_eq!(
        mach_nix["brokenEdges"],
        json!([{"from": "certifi", "to": "requests", "build": false}])
    );
    // requests is requested anyway; certifi no longer pulls it in.
    assert_eq!(mach_nix["environment"], json!(["requests"]));
    let summary = summarize(&file, &stub, &resolution);
    assert_eq!(summary["certifi"]["dependencies"], json!([]));
    assert!(eval_json(&format!("({}).drvPath", apply(&file, &stub))).is_string());
    assert_eq!(environment_names(&file, &stub), REQUESTS_CLOSURE);
}

#[test]
fn a_broken_edge_to_an_unrequested_package_puts_it_in_the_environment() {
    // idna -> certifi -> idna, requests needs neither directly here.
    let mut resolution = wheels(&["requests"]);
    for package in &mut resolution.packages {
        match package.name.as_str() {
            "requests" => package.dependencies = vec!["certifi".into()],
            "certifi" => package.dependencies = vec!["idna".into()],
            "idna" => package.dependencies = vec!["certifi".into()],
            _ => {}
        }
    }
    resolution
        .packages
        .retain(|p| ["requests", "certifi", "idna"].contains(&p.name.as_str()));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "cycle.nix", &resolution);
    let mach_nix = eval_json(&format!("({}).machNix", apply(&file, "")));
    assert_eq!(
        mach_nix["brokenEdges"],
        json!([{"from": "idna", "to": "certifi", "build": false}])
    );
    assert_eq!(mach_nix["environment"], json!(["requests", "certifi"]));
    assert_eq!(
        environment_names(&file, ""),
        ["certifi", "idna", "requests"]
    );
}

#[test]
fn a_build_cycle_takes_the_build_dependency_from_nixpkgs() {
    // idna's build needs flit-core and (here) flit-core's build needs idna: the walk from idna
    // keeps idna -> flit-core, so flit-core is built with nixpkgs' idna.
    let mut resolution = resolution(&["idna"], |_| Source::Sdist);
    for package in &mut resolution.packages {
        if package.name == "flit-core" {
            package.build_dependencies = vec!["idna".into()];
        }
    }
    let stub = nixpkgs_json();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "build-cycle.nix", &resolution);
    let mach_nix = eval_json(&format!("({}).machNix", apply(&file, &stub)));
    assert_eq!(
        mach_nix["brokenEdges"],
        json!([{"from": "flit-core", "to": "idna", "build": true}])
    );
    let versions = |package: &str| {
        eval_json(&format!(
            "map (p: p.version) ({}).python.pkgs.{package}.build-system",
            apply(&file, &stub)
        ))
    };
    assert_eq!(versions("flit-core"), json!(["3.7"]));
    assert_eq!(versions("idna"), json!(["3.10.1"]));
    assert!(eval_json(&format!("({}).drvPath", apply(&file, &stub))).is_string());
}

#[test]
fn mach_nix_env_writes_a_directory_nix_shell_can_use() {
    let resolution = wheels(&["requests"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let env = dir.path().join("env");
    resolver::output::nix::write_env(
        &env,
        &resolution,
        "requests==2.32.3\n",
        "lock-version = \"1.0\"\n",
    )
    .expect("write_env");
    let mut files: Vec<String> = std::fs::read_dir(&env)
        .expect("env dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .to_string()
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "default.nix",
            "pylock.toml",
            "requirements.txt",
            "shell.nix"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(env.join("requirements.txt")).expect("read"),
        "requests==2.32.3\n"
    );
    // default.nix takes <nixpkgs> (the stub, through NIX_PATH); shell.nix is its `.env`.
    let names = eval_json(&format!(
        "map (p: p.pname) (import {} {{ }}).packages",
        nix_path(&env.join("default.nix"))
    ));
    assert_eq!(names.as_array().map(Vec::len), Some(5));
    // shell.nix, and default.nix under nix-shell, are the environment's shell: python on PATH.
    let shell_inputs = |file: &str| {
        eval_json(&format!(
            "map (d: d.name) (import {} {{ }}).nativeBuildInputs",
            nix_path(&env.join(file))
        ))
    };
    assert_eq!(shell_inputs("shell.nix"), json!(["python3.11-env"]));
    let in_shell = nix_command("nix-instantiate")
        .env("IN_NIX_SHELL", "impure")
        .args(["--eval", "--strict", "--json", "--expr"])
        .arg(format!(
            "(import {} {{ }}).name",
            nix_path(&env.join("default.nix"))
        ))
        .output()
        .expect("run nix-instantiate");
    assert_eq!(
        check(in_shell, "default.nix under nix-shell").trim(),
        "\"interactive-python3.11-environment\""
    );
}

#[test]
fn render_refuses_a_wheel_without_sha256() {
    let mut resolution = wheels(&["idna"]);
    resolution.packages[0].file.as_mut().expect("file").sha256 = None;
    let error = resolver::output::nix::render(&resolution).expect_err("no hash");
    assert_eq!(
        error.to_string(),
        "package `idna`: file `idna-3.10-py3-none-any.whl` has no sha256, so Nix cannot fetch it reproducibly"
    );
}

#[test]
fn snapshot_requests_wheels() {
    let text = resolver::output::nix::render(&wheels(&["requests"])).expect("render");
    insta::assert_snapshot!(text);
}

#[test]
fn snapshot_numpy_pandas_wheels() {
    let text = resolver::output::nix::render(&wheels(&["pandas"])).expect("render");
    insta::assert_snapshot!(text);
}

#[test]
fn snapshot_sdist_and_nixpkgs_with_a_cycle() {
    let resolution = nixpkgs_mix_with_a_cycle();
    let text = resolver::output::nix::render(&resolution).expect("render");
    insta::assert_snapshot!(text);
}

#[test]
fn generated_nix_parses() {
    // Every snapshot above is valid Nix syntax, independent of the stub.
    for resolution in [wheels(&["requests"]), wheels(&["pandas"]), nixpkgs_mix()] {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write_nix(dir.path(), "out.nix", &resolution);
        let output = nix_command("nix-instantiate")
            .arg("--parse")
            .arg(&file)
            .output()
            .expect("run");
        check(output, "nix-instantiate --parse");
    }
}

#[test]
fn overrides_compose_with_later_overlays_through_the_fixpoint() {
    // What mkPython (nix/) does: apply the generated `overrides`, then the user's overlay. The
    // generated packages refer to each other through `pySelf`, so a later change of idna is the
    // idna requests gets.
    let resolution = wheels(&["requests"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "requests.nix", &resolution);
    let expression = format!(
        r#"
        let
          pkgs = import {stub} {{ }};
          generated = import {file} {{ inherit pkgs; }};
          compose = f: g: self: super: let fs = f self super; in fs // g self (super // fs);
          post = self: super: {{
            idna = super.idna.overridePythonAttrs (old: {{ version = "${{old.version}}-patched"; }});
          }};
          python = pkgs.python311.override {{ packageOverrides = compose generated.overrides post; }};
        in
          map (p: p.version) (builtins.filter (p: p.pname == "idna") python.pkgs.requests.dependencies)
        "#,
        stub = nix_path(&stub_dir()),
        file = nix_path(&file),
    );
    assert_eq!(eval_json(&expression), json!(["3.10-patched"]));
}

#[test]
fn the_python_argument_defaults_to_the_target_interpreter() {
    let mut resolution = wheels(&["idna"]);
    resolution.target.python = "3.12".to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "idna.nix", &resolution);
    // The stub has no python312: its error shows the default went there.
    let error = eval_error(&format!("({}).drvPath", apply(&file, "")));
    assert!(error.contains("has only python311"), "{error}");
    // An explicit interpreter wins.
    let version = eval_json(&format!(
        "(import {} {{ pkgs = import {stub} {{ }}; python = (import {stub} {{ }}).python311; }}).python.pythonVersion",
        nix_path(&file),
        stub = nix_path(&stub_dir())
    ));
    assert_eq!(version, json!("3.11"));
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).expect("JSON prints")
}

/// The attributes of a package that the override rule decides on, as evaluated: nixpkgs'
/// source-specific ones (null or `[ ]` when dropped), the phases, and the native inputs.
const OVERRIDE_SUMMARY: &str = r#"p: {
  inherit (p) version;
  patches = map baseNameOf (p.patches or [ ]);
  native = map (d: d.name) (p.nativeBuildInputs or [ ]);
  buildInputs = map (d: d.name) (p.buildInputs or [ ]);
  propagatedNonPython = map (d: d.name) (builtins.filter (d: !(d ? pythonModule)) (p.propagatedBuildInputs or [ ]));
  buildSystem = map (d: d.pname) (p.build-system or [ ]);
} // builtins.listToAttrs (map (name: { inherit name; value = p.${name} or null; })
  [ "patchFlags" "preUnpack" "unpackPhase" "postUnpack" "setSourceRoot" "sourceRoot" "prePatch" "postPatch"
    "preConfigure" "postConfigure" "preBuild" ])"#;

/// charset-normalizer 3.4.0 from its sdist, over the stub's nixpkgs definition (a C-extension
/// package with patches and phases for its own source) at `nixpkgs_version`, whose source is the
/// very sdist when `same_source`: the evaluated attributes of the override.
fn charset_normalizer_over_nixpkgs(nixpkgs_version: &str, same_source: bool) -> serde_json::Value {
    let resolution = resolution(&["charset-normalizer"], |name| match name {
        "charset-normalizer" => Source::Sdist,
        _ => Source::Wheel,
    });
    let sdist = fixture_package("charset-normalizer")
        .sdist
        .as_ref()
        .expect("sdist");
    let source = if same_source {
        format!(
            r#"pythonPackagesExtra.charset-normalizer = ps: {{
                 src = (import {stub} {{ }}).fetchurl {{ url = "{url}"; sha256 = "{sha256}"; }};
               }};"#,
            stub = nix_path(&stub_dir()),
            url = sdist.url,
            sha256 = sdist.sha256,
        )
    } else {
        String::new()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("nixpkgs.json");
    let entries = json!([{"attribute": "charset-normalizer", "pname": "charset-normalizer", "version": nixpkgs_version}]);
    std::fs::write(&json, entries.to_string()).expect("write nixpkgs.json");
    let stub_arguments = format!("pythonPackagesJson = {}; {source}", nix_path(&json));
    let file = write_nix(dir.path(), "charset.nix", &resolution);
    eval_json(&format!(
        "({OVERRIDE_SUMMARY}) ({}).python.pkgs.charset-normalizer",
        apply(&file, &stub_arguments)
    ))
}

#[test]
fn override_rule_drops_source_specific_attributes_of_another_version() {
    // nixpkgs has 3.3.2 from a GitHub checkout: its patch, patch flags, unpack and patch phases,
    // source root and the postConfigure and preBuild that enter its tree are dropped; its native
    // and C inputs and the preConfigure that only sets a variable are kept.
    insta::assert_snapshot!(pretty(&charset_normalizer_over_nixpkgs("3.3.2", false)));
}

#[test]
fn override_rule_drops_source_specific_attributes_of_another_source_of_the_same_version() {
    // nixpkgs has 3.4.0 too, but from its own source (not the sdist): dropped as well.
    insta::assert_snapshot!(pretty(&charset_normalizer_over_nixpkgs("3.4.0", false)));
}

#[test]
fn override_rule_keeps_everything_for_the_same_version_and_source() {
    insta::assert_snapshot!(pretty(&charset_normalizer_over_nixpkgs("3.4.0", true)));
}

#[test]
fn build_backends_are_built_from_their_sdists_not_over_nixpkgs_definitions() {
    // Every package from its sdist: the stub's nixpkgs setuptools (a patch), flit-core (a
    // postPatch entering its repository's subdirectory) and hatchling (a preBuild doing the same)
    // are not overridden; hatchling, which builds itself, and the other backends get their own
    // run-time dependencies as build system.
    let resolution = resolution(&["requests"], |_| Source::Sdist);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "sdists.nix", &resolution);
    let backends = eval_json(&format!(
        "let ps = ({}).python.pkgs; summary = {OVERRIDE_SUMMARY}; in builtins.mapAttrs (name: _: summary ps.${{name}}) {{ setuptools = 0; flit-core = 0; hatchling = 0; setuptools-scm = 0; hatch-vcs = 0; urllib3 = 0; }}",
        apply(&file, "")
    ));
    insta::assert_snapshot!(pretty(&backends));
}

#[test]
fn a_python_other_than_the_resolved_one_stops_evaluation() {
    let resolution = wheels(&["idna"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "idna.nix", &resolution);
    let error = eval_error(&format!(
        "(import {} {{ pkgs = import {stub} {{ }}; python = (import {stub} {{ }}).python311 // {{ pythonVersion = \"3.12\"; }}; }}).drvPath",
        nix_path(&file),
        stub = nix_path(&stub_dir())
    ));
    assert!(
        error.contains(
            "mach-nix: this file was resolved for CPython 3.11, but it is called with python 3.12 (python.pythonVersion): pass python = pkgs.python311, or regenerate it with `mach-nix gen -p 3.12`"
        ),
        "{error}"
    );
}

#[test]
fn a_build_backend_is_built_from_its_sdist_even_where_nixpkgs_has_the_same_source() {
    // nixpkgs' setuptools at the resolved version, from the very sdist, with a patch and a
    // preBuild of its own: an ordinary package would keep them (same version and source), a
    // build backend is built from the sdist alone.
    let resolution = resolution(&["setuptools"], |_| Source::Sdist);
    let sdist = fixture_package("setuptools").sdist.as_ref().expect("sdist");
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("nixpkgs.json");
    let entries = json!([{"attribute": "setuptools", "pname": "setuptools", "version": "75.6.0"}]);
    std::fs::write(&json, entries.to_string()).expect("write nixpkgs.json");
    let stub_arguments = format!(
        r#"pythonPackagesJson = {json};
           pythonPackagesExtra.setuptools = ps: {{
             src = (import {stub} {{ }}).fetchurl {{ url = "{url}"; sha256 = "{sha256}"; }};
             patches = [ {patch} ];
             preBuild = "export SETUPTOOLS_INSTALL_WINDOWS_SPECIFIC_FILES=0";
           }};"#,
        json = nix_path(&json),
        stub = nix_path(&stub_dir()),
        url = sdist.url,
        sha256 = sdist.sha256,
        patch = nix_path(&stub_dir().join("patches/setuptools-tag-date.patch")),
    );
    let file = write_nix(dir.path(), "setuptools.nix", &resolution);
    let setuptools = eval_json(&format!(
        "({OVERRIDE_SUMMARY}) ({}).python.pkgs.setuptools",
        apply(&file, &stub_arguments)
    ));
    assert_eq!(setuptools["version"], json!("75.6.0"));
    assert_eq!(setuptools["patches"], json!([]));
    assert_eq!(setuptools["preBuild"], json!(null));
}
