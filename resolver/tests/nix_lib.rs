//! The Nix library in `nix/` (`mkPython` and friends) evaluated with the real `nix-instantiate`
//! against the nixpkgs stub (`tests/nix-stub/`). The resolutions are real: a snapshot written from
//! the recorded PyPI fixture, resolved by the real `mach-nix gen`/`env`, handed to the library as
//! `generated` so that evaluation builds nothing. The tests named `nix_build_…` build: an
//! environment with `nix-build`, and the resolver itself run inside a derivation (the library's
//! import-from-derivation) with the `mach-nix` binary of this build. Needs Nix
//! (`scripts/install-nix.sh`); the builds need files.pythonhosted.org.

mod nix_common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use nix_common::*;
use serde_json::{Value, json};

struct Setup {
    dir: tempfile::TempDir,
    snapshot: CliSnapshot,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let snapshot = CliSnapshot::new(&dir.path().join("snapshots"));
        Setup { dir, snapshot }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `mach-nix gen` of `requirements` into `<name>.nix`; its Nix path literal.
    fn generate(&self, name: &str, requirements: &str, extra: &[&OsStr]) -> String {
        nix_path(
            &self
                .snapshot
                .generate(&self.path(&format!("{name}.nix")), requirements, extra),
        )
    }

    /// `import ./nix { pkgs = <stub with stub_arguments>; snapshot; resolver; }`.
    fn lib(&self, stub_arguments: &str) -> String {
        self.lib_pinned(stub_arguments, &self.snapshot.hash)
    }

    /// The same with the snapshot's hash given as `sha256`.
    fn lib_pinned(&self, stub_arguments: &str, sha256: &str) -> String {
        format!(
            "(import {} {{ pkgs = import {} {{ {stub_arguments} }}; snapshot = {{ url = \"file://{}\"; sha256 = \"{}\"; }}; resolver = {}; }})",
            nix_path(&repo_root().join("nix")),
            nix_path(&stub_dir()),
            self.snapshot.path().display(),
            sha256,
            nix_path(Path::new(env!("CARGO_BIN_EXE_mach-nix"))),
        )
    }
}

fn nixpkgs_json() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nix/nixpkgs.json")
}

/// `mach-nix gen` of `requests` with certifi from the nixpkgs of nixpkgs.json, the rest wheels.
fn generate_certifi_from_nixpkgs(setup: &Setup) -> String {
    let json_path = nixpkgs_json();
    setup.generate(
        "nixpkgs",
        "requests\n",
        &[
            OsStr::new("--providers"),
            OsStr::new("_default=wheel certifi=nixpkgs"),
            OsStr::new("--nixpkgs-json"),
            json_path.as_os_str(),
        ],
    )
}

fn nixpkgs_stub() -> String {
    format!("pythonPackagesJson = {};", nix_path(&nixpkgs_json()))
}

/// Version, provider, source and doCheck of every package of an environment `env` (a Nix
/// expression), by name.
fn packages(env: &str) -> Value {
    eval_json(&format!(
        "builtins.listToAttrs (map (p: {{ name = p.pname; value = {{ inherit (p) version provider doCheck; url = p.src.url; sha256 = p.src.outputHash; }}; }}) ({env}).packages)"
    ))
}

/// `nix-instantiate --eval --strict --json` in read-write mode, so that files the expression
/// writes to the store (`builtins.toFile`) can be read back and derivations it imports built.
fn eval_writing_command(expression: &str) -> std::process::Command {
    let mut command = building("nix-instantiate");
    command.args([
        "--eval",
        "--strict",
        "--json",
        "--read-write-mode",
        "--expr",
        expression,
    ]);
    command
}

fn eval_writing(expression: &str) -> Value {
    let output = eval_writing_command(expression)
        .output()
        .expect("run nix-instantiate");
    let stdout = check(output, &format!("nix-instantiate --eval of {expression}"));
    serde_json::from_str(&stdout).expect("nix-instantiate printed JSON")
}

/// Like [`eval_writing`] for an evaluation that must fail; its stderr.
fn eval_writing_error(expression: &str) -> String {
    let output = eval_writing_command(expression)
        .output()
        .expect("run nix-instantiate");
    failed_evaluation(output, expression)
}

fn object(value: &Value) -> &serde_json::Map<String, Value> {
    value.as_object().expect("an attribute set")
}

/// The keys of an attribute set (sorted, as Nix and serde_json keep them).
fn names(value: &Value) -> Vec<&str> {
    object(value).keys().map(String::as_str).collect()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(|item| item.as_str().expect("a string"))
        .collect()
}

/// Every package of `packages` is the fixture's wheel of it.
fn assert_fixture_wheels(packages: &Value, except: &[&str]) {
    for (name, package) in object(packages) {
        if except.contains(&name.as_str()) {
            continue;
        }
        assert_fixture_wheel(name, package);
    }
}

#[test]
fn mk_python_has_the_resolved_wheels_and_the_pin() {
    let setup = Setup::new();
    let generated = setup.generate("requests", "requests\n", &[]);
    let env = format!(
        "{}.mkPython {{ requirements = \"requests\"; generated = {generated}; }}",
        setup.lib("")
    );
    let found = packages(&env);
    assert_eq!(names(&found), REQUESTS_CLOSURE);
    assert_fixture_wheels(&found, &[]);
    assert!(
        object(&found)
            .values()
            .all(|p| p["doCheck"] == json!(false))
    );
    let pin = eval_json(&format!("({env}).machNix.snapshot.sha256"));
    assert_eq!(pin, json!(setup.snapshot.hash));
    // The interpreter and the overlay that come with it.
    assert_eq!(
        eval_json(&format!("({env}).python.pkgs.idna.version")),
        json!("3.10")
    );
    assert_eq!(
        eval_json(&format!(
            "builtins.attrNames (({env}).overrides {{ }} {{ }})"
        )),
        json!(REQUESTS_CLOSURE)
    );
}

#[test]
fn tests_true_turns_on_every_check() {
    let setup = Setup::new();
    let generated = setup.generate("requests", "requests\n", &[]);
    let found = packages(&format!(
        "{}.mkPython {{ requirements = \"requests\"; generated = {generated}; tests = true; }}",
        setup.lib("")
    ));
    assert_eq!(names(&found).len(), 5);
    for (name, package) in object(&found) {
        assert_eq!(package["doCheck"], json!(true), "{name}");
    }
}

#[test]
fn providers_reach_the_resolver_and_its_nixpkgs_choice_evaluates() {
    let setup = Setup::new();
    let generated = generate_certifi_from_nixpkgs(&setup);
    let lib = setup.lib(&nixpkgs_stub());
    let call = format!(
        "{lib}.mkPython {{ requirements = \"requests\"; providers = {{ _default = \"wheel\"; certifi = [ \"nixpkgs\" ]; }}; generated = {generated}; }}"
    );
    let found = packages(&call);
    assert_eq!(names(&found), REQUESTS_CLOSURE);
    assert_eq!(found["certifi"]["provider"], json!("nixpkgs"));
    assert_eq!(
        found["certifi"]["url"],
        json!("https://nixpkgs.invalid/certifi-2024.8.30.tar.gz")
    );
    assert_fixture_wheels(&found, &["certifi"]);

    // What the resolver run of the same call would be given (not built: `generated` was).
    let run = eval_writing(&format!(
        "let r = ({call}).machNix.resolverRun; a = r.args; in {{ inherit (r) builder; args = builtins.tail a; requirements = builtins.readFile (builtins.elemAt a 2); nixpkgs = builtins.fromJSON (builtins.readFile (builtins.elemAt a 10)); }}"
    ));
    assert_eq!(run["builder"], json!(env!("CARGO_BIN_EXE_mach-nix")));
    let args = strings(&run["args"]);
    assert_eq!(args[0], "--requirement");
    assert_eq!(args[2], "--db");
    assert!(args[3].ends_with("-mach-nix-snapshot.mnxdb"), "{args:?}");
    assert_eq!(
        &args[4..8],
        ["--python", "3.11", "--system", "x86_64-linux"]
    );
    assert_eq!(args[8], "--nixpkgs-json");
    assert_eq!(args[10], "--output");
    assert_eq!(
        &args[12..],
        ["--providers", "_default=wheel certifi=nixpkgs"]
    );
    assert_eq!(run["requirements"], json!("requests"));
    // The nixpkgs package list is computed from the given pkgs' python.pkgs: the stub's
    // packages of nixpkgs.json and its own build backends and packaging (not functions like
    // buildPythonPackage).
    assert_eq!(
        run["nixpkgs"],
        json!([
            {"attribute": "certifi", "pname": "certifi", "version": "2024.8.30"},
            {"attribute": "flit-core", "pname": "flit-core", "version": "3.9.0"},
            {"attribute": "hatchling", "pname": "hatchling", "version": "1.25.0"},
            {"attribute": "idna", "pname": "idna", "version": "3.7"},
            {"attribute": "packaging", "pname": "packaging", "version": "24.2"},
            {"attribute": "requests", "pname": "requests", "version": "2.31.0"},
            {"attribute": "setuptools", "pname": "setuptools", "version": "75.1.0"},
        ])
    );
}

#[test]
fn providers_must_be_an_attribute_set_of_lists_or_strings() {
    let setup = Setup::new();
    let error = eval_error(&format!(
        "({}.mkPython {{ requirements = \"requests\"; providers = \"wheel\"; }}).machNix.resolverRun.args",
        setup.lib("")
    ));
    assert!(
        error.contains("providers must be an attribute set"),
        "{error}"
    );
}

/// The order overlays apply in: each records itself in `passthru.order` of certifi (nixpkgs'
/// package, which the generated overlay overrides and so keeps) and of requests (a wheel, which
/// the generated overlay defines anew, dropping what came before).
#[test]
fn overrides_apply_pre_then_generated_then_post_then_underscore() {
    let setup = Setup::new();
    let generated = generate_certifi_from_nixpkgs(&setup);
    let tag = |name: &str, package: &str| {
        format!(
            "{package} = pySuper.{package}.overridePythonAttrs (old: {{ passthru = (old.passthru or {{ }}) // {{ order = (old.passthru.order or [ ]) ++ [ \"{name}\" ]; }}; }});"
        )
    };
    let expression = format!(
        "let env = {lib}.mkPython {{
           requirements = \"requests\";
           generated = {generated};
           overridesPre = [ (pySelf: pySuper: {{ {pre_certifi} {pre_requests} }}) ];
           overridesPost = [ (pySelf: pySuper: {{ {post_certifi} }}) (pySelf: pySuper: {{ {post2_certifi} {post_requests} }}) ];
           _.certifi.passthru.mod = pySelf: old: passthru: passthru // {{ order = passthru.order ++ [ \"_\" ]; }};
           _.requests.passthru.mod = pySelf: old: passthru: passthru // {{ order = passthru.order ++ [ \"_\" ]; }};
         }};
         in {{ certifi = {{ inherit (env.python.pkgs.certifi) order provider; }}; requests = {{ inherit (env.python.pkgs.requests) order provider; }}; }}",
        lib = setup.lib(&nixpkgs_stub()),
        pre_certifi = tag("pre", "certifi"),
        pre_requests = tag("pre", "requests"),
        post_certifi = tag("post", "certifi"),
        post2_certifi = tag("post2", "certifi"),
        post_requests = tag("post", "requests"),
    );
    assert_eq!(
        eval_json(&expression),
        json!({
            "certifi": {"order": ["pre", "post", "post2", "_"], "provider": "nixpkgs"},
            "requests": {"order": ["post", "_"], "provider": "wheel"},
        })
    );
}

#[test]
fn underscore_sets_adds_and_modifies_attributes() {
    let setup = Setup::new();
    let generated = setup.generate("requests", "requests\n", &[]);
    let patch = stub_dir().join("patches/requests-nixpkgs.patch");
    let expression = format!(
        "let
           pkgs = import {stub} {{ }};
           env = {lib}.mkPython {{
             requirements = \"requests\";
             generated = {generated};
             _.requests.patches = [ {patch} ];
             _.Charset_Normalizer.buildInputs.add = [ pkgs.autoPatchelfHook ];
             _.idna.doCheck.mod = pySelf: old: doCheck: !doCheck;
             _.urllib3.buildInputs.add = [ pkgs.autoPatchelfHook ];
             _.urllib3.version = \"2.2.3-edited\";
             _.certifi.machNixImportsCheck = false;
           }};
           ps = env.python.pkgs;
         in {{
           patches = map baseNameOf ps.requests.patches;
           charset = map (d: d.name) ps.charset-normalizer.buildInputs;
           charsetBefore = map (d: d.name) ({lib}.mkPython {{ requirements = \"requests\"; generated = {generated}; }}).python.pkgs.charset-normalizer.buildInputs;
           idna = ps.idna.doCheck;
           # The build-time import check, off for certifi only.
           importsCheck = {{ certifi = ps.certifi.machNixImportsCheck; idna = ps.idna.machNixImportsCheck; }};
           urllib3 = {{ inherit (ps.urllib3) version; buildInputs = map (d: d.name) ps.urllib3.buildInputs; }};
           # The environment holds the edited packages.
           inEnv = map (p: p.version) (builtins.filter (p: p.pname == \"urllib3\") env.packages);
         }}",
        stub = nix_path(&stub_dir()),
        lib = setup.lib(""),
        patch = nix_path(&patch),
    );
    let found = eval_json(&expression);
    let patches = strings(&found["patches"]);
    assert!(
        patches.len() == 1 && patches[0].ends_with("requests-nixpkgs.patch"),
        "{patches:?}"
    );
    // A manylinux wheel: its manylinux libraries, then what `_` added.
    let mut charset = found["charsetBefore"].as_array().expect("a list").clone();
    assert!(!charset.is_empty());
    charset.push(json!("auto-patchelf-hook"));
    assert_eq!(found["charset"], Value::Array(charset));
    assert_eq!(found["idna"], json!(true));
    assert_eq!(
        found["importsCheck"],
        json!({"certifi": false, "idna": true})
    );
    assert_eq!(
        found["urllib3"],
        json!({"version": "2.2.3-edited", "buildInputs": ["auto-patchelf-hook"]})
    );
    assert_eq!(found["inEnv"], json!(["2.2.3-edited"]));

    let error = eval_error(&format!(
        "({}.mkPython {{ requirements = \"requests\"; generated = {generated}; _.flask.patches = [ ]; }}).python.pkgs.flask.version",
        setup.lib("")
    ));
    assert!(
        error.contains("`_` edits `flask`, which is not in the Python package set"),
        "{error}"
    );
}

/// A Python project in `dir`: pyproject.toml with `[project]` and `[build-system]`.
fn write_project(dir: &Path, name: &str, dependencies: &str) {
    std::fs::create_dir_all(dir.join("src")).expect("mkdir");
    std::fs::write(
        dir.join("pyproject.toml"),
        format!(
            "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"{name}\"\nversion = \"0.3.1\"\ndependencies = [{dependencies}]\n"
        ),
    )
    .expect("write pyproject");
}

#[test]
fn build_python_package_reads_name_version_and_requirements_from_the_source() {
    let setup = Setup::new();
    let project = setup.path("demo");
    write_project(
        &project,
        "Demo_App",
        "\"six>=1.10\", \"idna ; python_version < '3'\"",
    );
    // What the package asks the resolver: its requirements and its build system.
    let generated = setup.generate("demo", "six>=1.10\nsetuptools>=61\n", &[]);
    let expression = format!(
        "let p = {lib}.buildPythonPackage {{ src = {src}; generated = {generated}; }};
         in {{ inherit (p) pname version pyproject; deps = map (d: d.pname) p.dependencies; build = map (d: d.pname + \"-\" + d.version) p.build-system; requirements = p.machNix.requirements; src = toString p.src; }}",
        lib = setup.lib(""),
        src = nix_path(&project),
    );
    let found = eval_json(&expression);
    assert_eq!(
        found,
        json!({
            "pname": "Demo_App",
            "version": "0.3.1",
            "pyproject": true,
            // idna's marker excludes it: it is not in the resolution, so not a dependency.
            "deps": ["six"],
            "build": ["setuptools-75.6.0"],
            "requirements": "six>=1.10\nidna ; python_version < '3'\nsetuptools>=61",
            "src": project.display().to_string(),
        })
    );
}

#[test]
fn build_python_application_takes_explicit_metadata_and_passes_other_arguments() {
    let setup = Setup::new();
    let project = setup.path("tool");
    std::fs::create_dir_all(&project).expect("mkdir");
    let generated = setup.generate("tool", "requests\n", &[]);
    let expression = format!(
        "let p = {lib}.buildPythonApplication {{ src = {src}; pname = \"tool\"; version = \"1.0\"; requirements = \"requests # http\"; generated = {generated}; patches = [ ]; tests = true; }};
         in {{ inherit (p) pname version application doCheck; deps = map (d: d.pname) p.dependencies; build = map (d: d.pname) p.build-system; }}",
        lib = setup.lib(""),
        src = nix_path(&project),
    );
    assert_eq!(
        eval_json(&expression),
        // No pyproject.toml: setuptools (nixpkgs', here the stub's) is the build system.
        json!({"pname": "tool", "version": "1.0", "application": true, "doCheck": true,
               "deps": ["requests"], "build": ["setuptools"]})
    );
    let error = eval_error(&format!(
        "({}.buildPythonPackage {{ src = {}; generated = {generated}; }}).pname",
        setup.lib(""),
        nix_path(&project)
    ));
    assert!(error.contains("no name given and none in"), "{error}");
}

#[test]
fn packages_extra_joins_the_resolution_and_the_environment() {
    let setup = Setup::new();
    let project = setup.path("demo");
    write_project(&project, "demo", "\"six\"");
    // The environment's resolution covers both: requests and the extra package's requirements.
    let generated = setup.generate("both", "requests\nsix\nsetuptools>=61\n", &[]);
    let expression = format!(
        "let
           lib = {lib};
           demo = lib.buildPythonPackage {{ src = {src}; generated = {generated}; }};
           env = lib.mkPython {{ requirements = \"requests\"; packagesExtra = [ demo ]; generated = {generated}; }};
           built = builtins.head (builtins.filter (p: p.pname == \"demo\") env.packages);
         in {{
           names = map (p: p.pname) env.packages;
           requirements = env.machNix.requirements;
           sameSix = (builtins.head built.dependencies).outPath == env.python.pkgs.six.outPath;
         }}",
        lib = setup.lib(""),
        src = nix_path(&project),
    );
    let found = eval_json(&expression);
    let mut names = strings(&found["names"]);
    names.sort();
    assert_eq!(
        names,
        [
            "certifi",
            "charset-normalizer",
            "demo",
            "idna",
            "requests",
            "six",
            "urllib3"
        ]
    );
    assert_eq!(
        found["requirements"],
        json!("requests\nsix\nsetuptools>=61")
    );
    assert_eq!(found["sameSix"], json!(true));

    let error = eval_error(&format!(
        "({}.mkPython {{ requirements = \"requests\"; packagesExtra = [ (import {} {{ }}).autoPatchelfHook ]; generated = {generated}; }}).drvPath",
        setup.lib(""),
        nix_path(&stub_dir())
    ));
    assert!(error.contains("`auto-patchelf-hook` is not one"), "{error}");
}

#[test]
fn shell_image_overlay_nixpkgs_and_overrides_carry_the_same_packages() {
    let setup = Setup::new();
    let generated = setup.generate("requests", "requests==2.32.3\n", &[]);
    let args = format!("{{ requirements = \"requests==2.32.3\"; generated = {generated}; }}");
    let expression = format!(
        "let
           lib = {lib};
           pkgs = import {stub} {{ }};
           env = lib.mkPython {args};
           shell = lib.mkPythonShell {args};
           image = lib.mkDockerImage ({args} // {{ image.tag = \"v1\"; }});
           nixpkgs = lib.mkNixpkgs {args};
           overlaid = import {stub} {{ overlays = [ (lib.mkOverlay {args}) ]; }};
           overrides = lib.mkPythonOverrides {args};
           applied = pkgs.python311.override {{ packageOverrides = overrides; }};
         in {{
           shell = {{ inherit (shell) name; inputs = map (d: d.outPath) shell.nativeBuildInputs; env = env.outPath; requested = shell.machNix.requested; }};
           image = {{ inherit (image.imageArguments) name tag config; contents = map (d: d.outPath) image.imageArguments.contents; }};
           nixpkgs = [ nixpkgs.python3.pkgs.requests.version nixpkgs.python311.pkgs.urllib3.src.url ];
           overlaid = overlaid.python3.pkgs.requests.version;
           applied = applied.pkgs.requests.src.url;
           env = env.outPath;
         }}",
        lib = setup.lib(""),
        stub = nix_path(&stub_dir()),
    );
    let found = eval_json(&expression);
    let env = found["env"].as_str().expect("env path");
    assert_eq!(
        found["shell"],
        json!({"name": "interactive-python3.11-environment", "inputs": [env], "env": env, "requested": ["requests"]})
    );
    assert_eq!(
        found["image"],
        json!({"name": "mach-nix-python", "tag": "v1", "config": {"Cmd": [format!("{env}/bin/python")]}, "contents": [env]})
    );
    assert_eq!(
        found["nixpkgs"],
        json!(["2.32.3", fixture_package("urllib3").wheel.url])
    );
    assert_eq!(found["overlaid"], json!("2.32.3"));
    assert_eq!(
        found["applied"],
        json!(fixture_package("requests").wheel.url)
    );
}

#[test]
fn mach_nix_env_output_is_used_the_same_way() {
    let setup = Setup::new();
    let env_dir = setup.path("env");
    setup.snapshot.run(
        &[OsStr::new("env"), env_dir.as_os_str()],
        &setup.path("env-requirements.txt"),
        "requests\n",
        &[],
    );
    let found = packages(&format!(
        "{}.mkPython {{ requirements = \"requests\"; generated = {}; }}",
        setup.lib(""),
        nix_path(&env_dir.join("default.nix"))
    ));
    assert_eq!(names(&found), REQUESTS_CLOSURE);
    assert_fixture_wheels(&found, &[]);
}

#[test]
fn without_a_snapshot_or_generated_expression_it_says_what_to_pass() {
    let error = eval_error(&format!(
        "(import {} {{ pkgs = import {} {{ }}; resolver = \"/nonexistent\"; }}).mkPython {{ requirements = \"requests\"; }}",
        nix_path(&repo_root().join("nix")),
        nix_path(&stub_dir())
    ));
    assert!(error.contains("no snapshot to resolve against"), "{error}");
}

#[test]
fn requirement_lines_names_and_providers_are_read_like_pip() {
    let helpers = nix_path(&repo_root().join("nix/lib.nix"));
    let found = eval_json(&format!(
        "let h = import {helpers}; in {{
           lines = h.requirementLines \"# top\\nrequests[socks] >= 2 # comment\\n\\n  -r other.txt\\nZope.Interface==6\\n--index-url x\\nfoo@ https://x/y#egg=foo\\n\";
           names = map h.requirementName (h.requirementLines \"requests[socks] >= 2\\nZope.Interface==6\\nCharset__Normalizer\\n\");
           providers = h.providersSpec {{ _default = \"wheel, sdist\"; numpy = [ \"nixpkgs\" \"wheel\" ]; }};
         }}"
    ));
    assert_eq!(
        found,
        json!({
            "lines": ["requests[socks] >= 2", "Zope.Interface==6", "foo@ https://x/y#egg=foo"],
            "names": ["requests", "zope-interface", "charset-normalizer"],
            "providers": "_default=wheel,sdist numpy=nixpkgs,wheel",
        })
    );
}

#[test]
fn nix_build_mk_python_wheel_environment_imports() {
    let setup = Setup::new();
    let generated = setup.generate("requests", "requests==2.32.3\n", &[]);
    let file = setup.path("env.nix");
    std::fs::write(
        &file,
        format!(
            "{}.mkPython {{ requirements = \"requests==2.32.3\"; generated = {generated}; }}",
            setup.lib("")
        ),
    )
    .expect("write env.nix");
    assert_eq!(
        build_and_run_python(
            &file,
            "mkPython",
            "import requests, urllib3, idna, certifi, charset_normalizer; print(requests.__version__, urllib3.__version__, idna.__version__)",
        ),
        "2.32.3 2.2.3 3.10"
    );
}

#[test]
fn nix_build_resolver_runs_inside_a_derivation() {
    // No `generated`: the library fetches the snapshot (file:// URL, checked against its hash),
    // runs this build's mach-nix in a derivation and imports what it writes.
    let setup = Setup::new();
    let expression = format!(
        "let env = {}.mkPython {{ requirements = \"requests==2.32.3\\npandas\"; providers = {{ _default = \"wheel\"; }}; }};
         in {{ inherit (env.machNix) requested snapshot; packages = map (p: p.pname + \"-\" + p.version) env.packages; }}",
        setup.lib("")
    );
    let found = eval_writing(&expression);
    assert_eq!(found["requested"], json!(["pandas", "requests"]));
    assert_eq!(found["snapshot"]["sha256"], json!(setup.snapshot.hash));
    let mut packages = strings(&found["packages"]);
    packages.sort();
    assert_eq!(
        packages,
        [
            "certifi-2024.8.30",
            "charset-normalizer-3.4.0",
            "idna-3.10",
            "numpy-2.1.3",
            "pandas-2.2.3",
            "python-dateutil-2.9.0.post0",
            "pytz-2024.2",
            "requests-2.32.3",
            "six-1.16.0",
            "tzdata-2024.2",
            "urllib3-2.2.3"
        ]
    );
}

#[test]
fn the_library_exports_the_original_functions() {
    let found = eval_json(&format!(
        "builtins.attrNames (import {} {{ pkgs = import {} {{ }}; }})",
        nix_path(&repo_root().join("nix")),
        nix_path(&stub_dir())
    ));
    assert_eq!(
        found,
        json!([
            "buildPythonApplication",
            "buildPythonPackage",
            "mkDockerImage",
            "mkNixpkgs",
            "mkOverlay",
            "mkPython",
            "mkPythonOverrides",
            "mkPythonShell"
        ])
    );
}

#[test]
fn the_default_resolver_is_this_workspace_built_with_rust_platform() {
    let setup = Setup::new();
    let found = eval_json(&format!(
        "let
           pkgs = import {stub} {{ }};
           lib = import {nix} {{ inherit pkgs; snapshot = {{ url = \"file:///x.mnxdb\"; sha256 = \"{hash}\"; }}; }};
           run = (lib.mkPython {{ requirements = \"requests\"; generated = {generated}; }}).machNix.resolverRun;
           package = pkgs.callPackage {package} {{ }};
         in {{
           builder = run.builder == \"${{package}}/bin/mach-nix\";
           inherit (package) name;
           inherit (package.rustArguments) cargoBuildFlags doCheck;
           lock = toString package.rustArguments.cargoLock.lockFile;
         }}",
        stub = nix_path(&stub_dir()),
        nix = nix_path(&repo_root().join("nix")),
        hash = setup.snapshot.hash,
        generated = setup.generate("requests", "requests\n", &[]),
        package = nix_path(&repo_root().join("nix/package.nix")),
    ));
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        found,
        json!({
            "builder": true,
            "name": format!("mach-nix-{version}"),
            "cargoBuildFlags": ["--package", "resolver", "--bin", "mach-nix"],
            "doCheck": false,
            "lock": std::fs::canonicalize(repo_root().join("Cargo.lock")).expect("Cargo.lock").display().to_string(),
        })
    );
}

/// flake.nix's outputs, called with the stub as its `nixpkgs` input (what `nix flake` would pass,
/// minus the lock: flakes themselves need a newer Nix than Debian's 2.8).
#[test]
fn the_flake_exposes_the_library_and_both_binaries() {
    let setup = Setup::new();
    let generated = setup.generate("requests", "requests\n", &[]);
    let found = eval_json(&format!(
        "let
           stub = import {stub} {{ }};
           nixpkgs = {{
             lib = stub.lib;
             legacyPackages = stub.lib.genAttrs [ \"x86_64-linux\" \"aarch64-linux\" \"x86_64-darwin\" \"aarch64-darwin\" ] (system: stub);
           }};
           flake = (import {flake}).outputs {{ inherit self nixpkgs; }};
           self = flake;
           lib = flake.lib.x86_64-linux;
           packages = flake.packages.x86_64-linux;
           pinned = lib.withSnapshot {{ url = \"file:///x.mnxdb\"; sha256 = \"{hash}\"; }};
           env = pinned.mkPython {{ requirements = \"requests\"; generated = {generated}; }};
         in {{
           packages = builtins.mapAttrs (name: p: p.name) packages;
           lib = builtins.attrNames lib;
           resolver = env.machNix.resolverRun.builder == \"${{packages.mach-nix}}/bin/mach-nix\";
           env = builtins.sort builtins.lessThan (map (p: p.pname) env.packages);
         }}",
        stub = nix_path(&stub_dir()),
        flake = nix_path(&repo_root().join("flake.nix")),
        hash = setup.snapshot.hash,
    ));
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        found,
        json!({
            "packages": {
                "default": format!("mach-nix-{version}"),
                "mach-nix": format!("mach-nix-{version}"),
                "mach-nix-crawler": format!("mach-nix-crawler-{version}"),
            },
            "lib": ["buildPythonApplication", "buildPythonPackage", "mkDockerImage", "mkNixpkgs",
                    "mkOverlay", "mkPython", "mkPythonOverrides", "mkPythonShell", "withSnapshot"],
            "resolver": true,
            "env": REQUESTS_CLOSURE,
        })
    );
}

#[test]
fn nix_build_the_resolver_s_error_stops_the_evaluation() {
    let setup = Setup::new();
    let error = eval_writing_error(&format!(
        "({}.mkPython {{ requirements = \"requests==9.9\"; }}).machNix.requested",
        setup.lib("")
    ));
    assert!(
        error.contains("mach-nix-resolution.nix.drv' failed"),
        "{error}"
    );
    assert!(
        error.contains("no version of requests matches ==9.9"),
        "{error}"
    );
}

#[test]
fn nix_build_a_snapshot_that_does_not_match_its_hash_is_refused() {
    let setup = Setup::new();
    let wrong = "0".repeat(64);
    let lib = setup.lib_pinned("", &wrong);
    let error = eval_writing_error(&format!(
        "({lib}.mkPython {{ requirements = \"requests\"; }}).machNix.requested"
    ));
    assert!(error.contains("hash mismatch"), "{error}");
}

#[test]
fn python_may_be_named_and_unknown_arguments_are_errors() {
    let setup = Setup::new();
    let generated = setup.generate("requests", "requests\n", &[]);
    let lib = setup.lib("");
    let found = eval_json(&format!(
        "({lib}.mkPython {{ requirements = \"requests\"; generated = {generated}; python = \"python311\"; }}).python.pkgs.requests.version"
    ));
    assert_eq!(found, json!("2.32.3"));
    let error = eval_error(&format!(
        "({lib}.mkPython {{ requirements = \"requests\"; generated = {generated}; python = \"python312\"; }}).drvPath"
    ));
    assert!(error.contains("has only python311"), "{error}");
    let error = eval_error(&format!(
        "({lib}.mkPython {{ requirement = \"requests\"; generated = {generated}; }}).drvPath"
    ));
    assert!(
        error.contains("unexpected argument 'requirement'"),
        "{error}"
    );
}

#[test]
fn a_generated_file_for_another_python_stops_the_library_with_both_versions() {
    // `generated` was resolved for 3.11; the library's interpreter says 3.12.
    let setup = Setup::new();
    let generated = setup.generate("requests", "requests\n", &[]);
    let error = eval_error(&format!(
        "let pkgs = import {stub} {{ }}; in ({lib}.mkPython {{ generated = {generated}; python = pkgs.python311 // {{ pythonVersion = \"3.12\"; }}; }}).drvPath",
        stub = nix_path(&stub_dir()),
        lib = setup.lib(""),
    ));
    assert!(
        error.contains(
            "mach-nix: this file was resolved for CPython 3.11, but it is called with python 3.12 (python.pythonVersion)"
        ),
        "{error}"
    );
}
