//! Resolver features one by one, through the library entry point: extras, constraints, yanked
//! pins, markers, cycles, provider order and nixpkgs, `--hash` and `name @ url`, pre-releases.

mod common;

use std::path::Path;

use resolver::input::parse_requirements_txt;
use resolver::provider::{Mode, NixpkgsIndex, ProviderConfig};
use resolver::report::ResolveError;
use resolver::resolution::{Provider, Resolution};
use resolver::solve::{ResolveOptions, resolve};
use resolver::target::{System, TargetEnv};

fn options() -> ResolveOptions {
    common::options("_default=wheel,sdist")
}

fn run(
    universe: &common::Universe,
    requirements: &str,
    options: &ResolveOptions,
) -> Result<Resolution, ResolveError> {
    let snapshot = common::snapshot(universe);
    let input =
        parse_requirements_txt(requirements, Path::new("requirements.txt")).expect("valid input");
    resolve(&snapshot, common::pin(), &input, options)
}

fn pins(resolution: &Resolution) -> Vec<String> {
    resolution
        .packages
        .iter()
        .map(|p| format!("{}=={}", p.name, p.version))
        .collect()
}

#[test]
fn extras_pull_their_requirements_at_the_same_version() {
    let mut universe = common::universe(&[
        ("app", "1.0", &["base"]),
        ("app", "2.0", &["base"]),
        ("base", "1.0", &[]),
        ("fast", "1.0", &[]),
    ]);
    for spec in universe.get_mut("app").expect("present").values_mut() {
        spec.extras
            .insert("speed".to_owned(), vec!["fast".to_owned()]);
    }
    let resolution = run(&universe, "app[speed]<2\n", &options()).expect("resolves");
    assert_eq!(pins(&resolution), ["app==1.0", "base==1.0", "fast==1.0"]);
    let app = &resolution.packages[0];
    assert_eq!(app.extras, ["speed"]);
    assert_eq!(app.dependencies, ["base", "fast"]);
    assert_eq!(resolution.requested, ["app"]);
}

#[test]
fn constraints_narrow_but_do_not_add() {
    let universe = common::universe(&[
        ("app", "1.0", &["lib"]),
        ("lib", "1.0", &[]),
        ("lib", "2.0", &[]),
        ("other", "1.0", &[]),
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("c.txt"), "lib<2\nother==1.0\n").expect("write");
    let main = dir.path().join("requirements.txt");
    let input = parse_requirements_txt("-c c.txt\napp\n", &main).expect("valid");
    let resolution = resolve(
        &common::snapshot(&universe),
        common::pin(),
        &input,
        &options(),
    )
    .expect("resolves");
    assert_eq!(pins(&resolution), ["app==1.0", "lib==1.0"]);
}

#[test]
fn markers_are_evaluated_for_the_target() {
    let universe = common::universe(&[
        (
            "app",
            "1.0",
            &[
                "linuxonly ; sys_platform == 'linux'",
                "maconly ; sys_platform == 'darwin'",
                "old ; python_version < '3.10'",
            ],
        ),
        ("linuxonly", "1.0", &[]),
        ("maconly", "1.0", &[]),
        ("old", "1.0", &[]),
    ]);
    let linux = run(&universe, "app\n", &options()).expect("resolves");
    assert_eq!(pins(&linux), ["app==1.0", "linuxonly==1.0"]);
    let mac = ResolveOptions {
        target: TargetEnv::new("3.9", System::Aarch64Darwin).expect("target"),
        ..options()
    };
    let mac = run(&universe, "app\n", &mac).expect("resolves");
    assert_eq!(pins(&mac), ["app==1.0", "maconly==1.0", "old==1.0"]);
    assert_eq!(mac.target.system, "aarch64-darwin");
}

#[test]
fn yanked_releases_need_an_exact_pin() {
    let mut universe = common::universe(&[("lib", "1.0", &[]), ("lib", "2.0", &[])]);
    if let Some(spec) = universe.get_mut("lib").and_then(|v| v.get_mut("2.0")) {
        spec.yanked = true;
    }
    assert_eq!(
        pins(&run(&universe, "lib\n", &options()).expect("resolves")),
        ["lib==1.0"]
    );
    assert_eq!(
        pins(&run(&universe, "lib==2.0\n", &options()).expect("resolves")),
        ["lib==2.0"]
    );
    assert!(run(&universe, "lib>=2\n", &options()).is_err());
}

#[test]
fn cycles_are_allowed_and_reported() {
    let universe = common::universe(&[
        ("a", "1.0", &["b"]),
        ("b", "1.0", &["c"]),
        ("c", "1.0", &["a"]),
        ("d", "1.0", &[]),
    ]);
    let resolution = run(&universe, "a\nd\n", &options()).expect("resolves");
    assert_eq!(resolution.cycles, [["a", "b", "c"]]);
}

#[test]
fn pre_releases_only_when_needed_or_asked() {
    let universe = common::universe(&[
        ("lib", "1.0", &[]),
        ("lib", "2.0b1", &[]),
        ("beta", "0.1a1", &[]),
    ]);
    assert_eq!(
        pins(&run(&universe, "lib\nbeta\n", &options()).expect("resolves")),
        ["beta==0.1a1", "lib==1.0"]
    );
    assert_eq!(
        pins(&run(&universe, "lib\n--pre\n", &options()).expect("resolves")),
        ["lib==2.0b1"]
    );
    assert_eq!(
        pins(&run(&universe, "lib>1.0\n", &options()).expect("resolves")),
        ["lib==2.0b1"]
    );
}

#[test]
fn provider_order_and_nixpkgs() {
    let mut universe = common::universe(&[
        ("lib", "1.0", &[]),
        ("lib", "2.0", &[]),
        ("lib", "3.0", &[]),
    ]);
    if let Some(spec) = universe.get_mut("lib").and_then(|v| v.get_mut("3.0")) {
        spec.wheel = Some(false);
    }
    let newest = run(&universe, "lib\n", &options()).expect("resolves");
    assert_eq!(
        (
            newest.packages[0].version.as_str(),
            &newest.packages[0].provider
        ),
        ("3.0", &Provider::Sdist)
    );
    let ordered = ResolveOptions {
        mode: Mode::ProviderOrder,
        ..options()
    };
    let ordered = run(&universe, "lib\n", &ordered).expect("resolves");
    assert_eq!(
        (
            ordered.packages[0].version.as_str(),
            &ordered.packages[0].provider
        ),
        ("2.0", &Provider::Wheel)
    );
    let nixpkgs = NixpkgsIndex::from_json(
        r#"[{"attribute": "lib_legacy", "pname": "lib", "version": "1.0"}]"#,
        Path::new("n.json"),
    )
    .expect("valid");
    let nix_first = ResolveOptions {
        mode: Mode::ProviderOrder,
        providers: ProviderConfig::parse("_default=nixpkgs,wheel,sdist").expect("providers"),
        nixpkgs: Some(nixpkgs),
        ..options()
    };
    let nix = run(&universe, "lib\n", &nix_first).expect("resolves");
    assert_eq!(
        nix.packages[0].provider,
        Provider::Nixpkgs {
            attribute: "lib_legacy".to_owned()
        }
    );
    assert_eq!(nix.packages[0].file, None);
}

#[test]
fn hashes_and_direct_urls_select_files() {
    let universe = common::universe(&[("lib", "1.0", &[]), ("lib", "2.0", &[])]);
    // The test snapshot gives each release's first file (the sdist) the digest [0; 32].
    let zero = "0".repeat(64);
    let hashed = run(
        &universe,
        &format!("lib --hash=sha256:{zero}\n"),
        &options(),
    )
    .expect("resolves");
    assert_eq!(
        hashed.packages[0].file.as_ref().map(|f| f.sha256),
        Some(Some([0; 32]))
    );
    let wrong = run(
        &universe,
        &format!("lib --hash=sha256:{}\n", "f".repeat(64)),
        &options(),
    );
    assert!(wrong.is_err());
    let url = run(
        &universe,
        "lib @ https://files.example.org/lib-1.0.tar.gz\n",
        &options(),
    )
    .expect("resolves");
    assert_eq!(pins(&url), ["lib==1.0"]);
    assert_eq!(url.packages[0].provider, Provider::Sdist);
    let missing = run(
        &universe,
        "lib @ https://elsewhere.example/lib-9.whl\n",
        &options(),
    );
    assert!(
        matches!(missing, Err(ResolveError::UrlNotInSnapshot { .. })),
        "{missing:?}"
    );
}

#[test]
fn the_project_requires_python_is_checked() {
    let universe = common::universe(&[("lib", "1.0", &[])]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pyproject.toml");
    std::fs::write(
        &path,
        "[project]\nname = \"x\"\nrequires-python = \">=3.13\"\ndependencies = [\"lib\"]\n",
    )
    .expect("write");
    let (input, _) = resolver::input::read_input(&path, &[]).expect("valid");
    let err = resolve(
        &common::snapshot(&universe),
        common::pin(),
        &input,
        &options(),
    )
    .expect_err("3.12 < 3.13");
    assert!(
        err.to_string()
            .contains("requires Python >=3.13, but the target is Python 3.12"),
        "{err}"
    );
}

/// `name version` taken from its sdist only, with these build requirements.
fn sdist_only(
    universe: &mut common::Universe,
    name: &str,
    version: &str,
    requires: &[&str],
    build_requires: &[&str],
) {
    universe.entry(name.to_owned()).or_default().insert(
        version.to_owned(),
        common::VersionSpec {
            requires: requires.iter().map(|r| (*r).to_owned()).collect(),
            wheel: Some(false),
            build_requires: Some(build_requires.iter().map(|r| (*r).to_owned()).collect()),
            build_backend: Some("flit_core.buildapi".to_owned()),
            ..common::VersionSpec::default()
        },
    );
}

fn package<'r>(
    resolution: &'r Resolution,
    name: &str,
) -> &'r resolver::resolution::ResolvedPackage {
    resolution
        .packages
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("{name} is resolved"))
}

#[test]
fn sdist_build_systems_are_resolved_for_the_target() {
    let mut universe = common::universe(&[
        ("flit-core", "3.9.0", &[]),
        ("flit-core", "4.0.0", &[]),
        ("tomli", "2.0.1", &[]),
        ("py2only", "1.0", &[]),
    ]);
    sdist_only(
        &mut universe,
        "idna",
        "3.7",
        &[],
        &[
            "flit_core >=3.2,<4",
            "tomli[all] ; python_version >= '3.8'",
            "py2only ; python_version < '3'",
        ],
    );
    universe
        .get_mut("tomli")
        .and_then(|versions| versions.get_mut("2.0.1"))
        .expect("present")
        .extras
        .insert("all".to_owned(), vec![]);
    let resolution = run(&universe, "idna\n", &options()).expect("resolves");
    assert_eq!(
        pins(&resolution),
        ["flit-core==3.9.0", "idna==3.7", "tomli==2.0.1"]
    );
    let idna = package(&resolution, "idna");
    assert_eq!(idna.provider, Provider::Sdist);
    assert_eq!(idna.build_dependencies, ["flit-core", "tomli"]);
    assert!(idna.dependencies.is_empty(), "{:?}", idna.dependencies);
    assert_eq!(idna.build_backend.as_deref(), Some("flit_core.buildapi"));
    assert_eq!(resolution.requested, ["idna"]);
    // Installers build sdists themselves: the lock outputs list what is installed, not flit-core.
    let hashed = resolver::output::requirements::render(&resolution);
    assert!(
        hashed.contains("idna==3.7") && !hashed.contains("flit-core"),
        "{hashed}"
    );
    let lock = resolver::output::pylock::render(&resolution);
    assert!(!lock.contains("flit-core"), "{lock}");
    // From a wheel nothing is built: no build system joins the resolution.
    universe
        .get_mut("idna")
        .and_then(|versions| versions.get_mut("3.7"))
        .expect("present")
        .wheel = Some(true);
    let resolution = run(&universe, "idna\n", &options()).expect("resolves");
    assert_eq!(pins(&resolution), ["idna==3.7"]);
    assert!(package(&resolution, "idna").build_dependencies.is_empty());
}

#[test]
fn build_system_cycles_and_self_hosting_backends_resolve() {
    let mut universe = common::Universe::new();
    // setuptools and wheel build with each other; flit-core builds with itself.
    sdist_only(&mut universe, "setuptools", "70.0", &[], &["wheel"]);
    sdist_only(&mut universe, "wheel", "0.43", &[], &["setuptools>=40"]);
    sdist_only(&mut universe, "flit-core", "3.9.0", &[], &["flit_core"]);
    sdist_only(
        &mut universe,
        "six",
        "1.16.0",
        &["wheel"],
        &["setuptools", "flit-core"],
    );
    let sdists = ResolveOptions {
        providers: ProviderConfig::parse("_default=sdist").expect("providers"),
        ..options()
    };
    let resolution = run(&universe, "six\n", &sdists).expect("resolves");
    assert_eq!(
        pins(&resolution),
        [
            "flit-core==3.9.0",
            "setuptools==70.0",
            "six==1.16.0",
            "wheel==0.43"
        ]
    );
    assert_eq!(
        package(&resolution, "six").build_dependencies,
        ["flit-core", "setuptools"]
    );
    assert_eq!(package(&resolution, "six").dependencies, ["wheel"]);
    assert_eq!(
        package(&resolution, "setuptools").build_dependencies,
        ["wheel"]
    );
    assert_eq!(
        package(&resolution, "wheel").build_dependencies,
        ["setuptools"]
    );
    assert!(
        package(&resolution, "flit-core")
            .build_dependencies
            .is_empty()
    );
    // Run-time cycles only: builds do not make `cycles` (pylock installs no builds).
    assert!(resolution.cycles.is_empty(), "{:?}", resolution.cycles);
}

#[test]
fn an_unbuildable_sdist_falls_back_or_says_which_build_requirement_failed() {
    let mut universe =
        common::universe(&[("setuptools", "59.0", &[]), ("setuptools", "70.0", &[])]);
    sdist_only(&mut universe, "app", "1.0", &[], &["setuptools"]);
    sdist_only(&mut universe, "app", "2.0", &[], &["hatchling>=1"]);
    // app 2.0's build system is not in the snapshot: app 1.0 is taken instead.
    let resolution = run(&universe, "app\n", &options()).expect("resolves");
    assert_eq!(pins(&resolution), ["app==1.0", "setuptools==70.0"]);
    // Pinned to 2.0, the failure names the build requirement that cannot be met.
    let err = run(&universe, "app==2.0\n", &options()).expect_err("unbuildable");
    let text = err.to_string();
    assert!(
        text.contains("building app==2.0 from its sdist needs hatchling>=1")
            && text.contains("hatchling is not in this snapshot"),
        "{text}"
    );
    // A build pin that contradicts a run-time requirement: one package set, so a conflict.
    sdist_only(&mut universe, "old", "1.0", &[], &["setuptools<60"]);
    let err = run(&universe, "old\nsetuptools>=70\n", &options()).expect_err("conflict");
    let text = err.to_string();
    assert!(
        matches!(err, ResolveError::Conflict { .. })
            && text.contains("building old from its sdist needs setuptools<60")
            && text.contains("old is taken from its sdist, which must be built")
            && text.contains("you require setuptools>=70"),
        "{text}"
    );
}

#[test]
fn arbitrary_equality_and_greater_than_are_exact_on_the_releases() {
    let universe = common::universe(&[
        ("lib", "0.9", &[]),
        ("lib", "1.0.0", &[]),
        ("pre", "1.0a1", &[]),
        ("pre", "1.0a2", &[]),
        ("pre", "1.0a2.post1", &[]),
        ("app", "1.0", &["lib===1.0"]),
    ]);
    // `===` compares spellings: the release is spelled `1.0.0`.
    let resolution = run(&universe, "lib===1.0.0\n", &options()).expect("resolves");
    assert_eq!(pins(&resolution), ["lib==1.0.0"]);
    let err = run(&universe, "lib===1.0\n", &options()).expect_err("no such spelling");
    assert!(
        err.to_string()
            .contains("you require lib with specifiers no release satisfies"),
        "{err}"
    );
    // The same from a dependency's metadata.
    let err = run(&universe, "app\n", &options()).expect_err("no such spelling");
    assert!(
        err.to_string()
            .contains("app depends on lib with specifiers no release satisfies"),
        "{err}"
    );
    assert_eq!(
        pins(&run(&universe, "lib==1.0\n", &options()).expect("resolves")),
        ["lib==1.0.0"]
    );
    // `>1.0a1` refuses `1.0a2.post1`, a post-release of a pre-release of 1.0.
    let resolution = run(&universe, "pre>1.0a1\n", &options()).expect("resolves");
    assert_eq!(pins(&resolution), ["pre==1.0a2"]);
    let resolution = run(&universe, "pre>=1.0a1\n", &options()).expect("resolves");
    assert_eq!(pins(&resolution), ["pre==1.0a2.post1"]);
}
