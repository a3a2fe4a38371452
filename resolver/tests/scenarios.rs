//! uv's resolver scenarios (packse, `tests/data/resolver-scenarios`, MIT), every one run through
//! the same library entry point as `mach-nix gen`: the universe becomes a real snapshot, the
//! root requirements a requirements file, the environment a target; the result is compared with
//! `[expected]`. Prints `N passed, M failed, K skipped` with a reason for every skip, and fails
//! when a scenario outside [`KNOWN_FAILURES`] fails, or when one inside it passes (so the list
//! stays exact and progress cannot silently regress).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use db_format::types::Version;
use db_format::types::uv_platform_tags::{Arch, Os, Platform};
use resolver::input::parse_requirements_txt;
use resolver::provider::{Mode, ProviderConfig, ProviderKind};
use resolver::solve::{DEFAULT_MAX_STEPS, ResolveOptions, resolve};
use resolver::target::{System, TargetEnv};

/// Scenarios that fail today, each with the reason.
const KNOWN_FAILURES: &[(&str, &str)] = &[(
    "python-less-than-current",
    "uv ignores upper bounds of Requires-Python; mach-nix installs into one known interpreter \
     and honours them, as pip does (a package declaring <=3.8 is not installed on 3.9)",
)];

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Scenario {
    name: String,
    root: Root,
    expected: Expected,
    environment: Environment,
    resolver_options: Options,
    packages: BTreeMap<String, Package>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Root {
    requires: Vec<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Expected {
    satisfiable: bool,
    packages: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Environment {
    python: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Options {
    universal: bool,
    python: Option<String>,
    python_platform: Option<String>,
    prereleases: bool,
    no_build: Vec<String>,
    no_binary: Vec<String>,
    resolution: Option<String>,
    required_environments: Vec<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Package {
    versions: BTreeMap<String, common::VersionSpec>,
}

enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

fn skip_reason(scenario: &Scenario) -> Option<String> {
    let options = &scenario.resolver_options;
    if options.universal || !options.required_environments.is_empty() {
        return Some(
            "universal (all-platform) resolution: mach-nix resolves for one target system"
                .to_owned(),
        );
    }
    if let Some(mode) = &options.resolution {
        return Some(format!(
            "resolution = {mode:?}: mach-nix has no lowest-version modes"
        ));
    }
    None
}

fn target_of(scenario: &Scenario) -> Result<TargetEnv, String> {
    let python = scenario
        .resolver_options
        .python
        .clone()
        .or_else(|| scenario.environment.python.clone())
        .unwrap_or_else(|| "3.12".to_owned());
    match scenario.resolver_options.python_platform.as_deref() {
        None => TargetEnv::new(&python, System::X86_64Linux),
        Some("x86_64-manylinux2014") => TargetEnv::with_platform(
            &python,
            System::X86_64Linux,
            Platform::new(
                Os::Manylinux {
                    major: 2,
                    minor: 17,
                },
                Arch::X86_64,
            ),
        ),
        Some(other) => return Err(format!("python_platform {other:?} has no mapping")),
    }
    .map_err(|err| err.to_string())
}

fn run(scenario: &Scenario, path: &Path) -> Outcome {
    if let Some(reason) = skip_reason(scenario) {
        return Outcome::Skip(reason);
    }
    let universe: common::Universe = scenario
        .packages
        .iter()
        .map(|(name, package)| (name.clone(), package.versions.clone()))
        .collect();
    let snapshot = common::snapshot(&universe);
    let target = match target_of(scenario) {
        Ok(target) => target,
        Err(err) => return Outcome::Fail(err),
    };
    let mut providers = ProviderConfig::parse("_default=wheel,sdist").expect("valid providers");
    for name in &scenario.resolver_options.no_build {
        providers.set(name, vec![ProviderKind::Wheel]);
    }
    for name in &scenario.resolver_options.no_binary {
        providers.set(name, vec![ProviderKind::Sdist]);
    }
    let text: String = scenario
        .root
        .requires
        .iter()
        .map(|r| format!("{r}\n"))
        .collect();
    let input = match parse_requirements_txt(&text, path) {
        Ok(input) => input,
        Err(err) => return Outcome::Fail(format!("root requirements: {err}")),
    };
    let options = ResolveOptions {
        target,
        providers,
        mode: Mode::Newest,
        nixpkgs: None,
        allow_prereleases: scenario.resolver_options.prereleases,
        max_steps: DEFAULT_MAX_STEPS,
    };
    let result = resolve(&snapshot, common::pin(), &input, &options);
    match (scenario.expected.satisfiable, result) {
        (false, Err(_)) => Outcome::Pass,
        (false, Ok(resolution)) => {
            let got: Vec<String> = resolution
                .packages
                .iter()
                .map(|p| format!("{}=={}", p.name, p.version))
                .collect();
            Outcome::Fail(format!("expected no solution, got {}", got.join(" ")))
        }
        (true, Err(err)) => Outcome::Fail(format!("expected a solution, got: {err}")),
        (true, Ok(resolution)) => {
            let Some(expected) = &scenario.expected.packages else {
                return Outcome::Pass;
            };
            let got: BTreeMap<String, Version> = resolution
                .packages
                .iter()
                .map(|p| {
                    (
                        p.name.clone(),
                        Version::from_str(&p.version).expect("resolved versions parse"),
                    )
                })
                .collect();
            let want: BTreeMap<String, Version> = expected
                .iter()
                .map(|(name, version)| {
                    let name = db_format::types::normalize_name(name)
                        .expect("valid")
                        .to_string();
                    (
                        name,
                        Version::from_str(version).expect("expected versions parse"),
                    )
                })
                .collect();
            if got == want {
                Outcome::Pass
            } else {
                Outcome::Fail(format!("expected {want:?}, got {got:?}"))
            }
        }
    }
}

fn scenario_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("scenario directory reads") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "toml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn resolver_scenarios() {
    let dir = common::test_data_dir().join("resolver-scenarios");
    let files = scenario_files(&dir);
    assert_eq!(
        files.len(),
        189,
        "the scenario set changed: update this test"
    );
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut unexpected = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("scenario reads");
        let scenario: Scenario =
            toml::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let known = KNOWN_FAILURES
            .iter()
            .find(|(name, _)| *name == scenario.name);
        match run(&scenario, path) {
            Outcome::Pass => {
                passed += 1;
                if let Some((name, _)) = known {
                    unexpected.push(format!("{name} passes now: remove it from KNOWN_FAILURES"));
                }
            }
            Outcome::Skip(reason) => {
                skipped += 1;
                println!("skip {}: {reason}", scenario.name);
            }
            Outcome::Fail(why) => {
                failed += 1;
                match known {
                    Some((_, reason)) => {
                        println!("known failure {}: {reason} ({why})", scenario.name)
                    }
                    None => {
                        println!("FAIL {}: {why}", scenario.name);
                        unexpected.push(format!("{} fails: {why}", scenario.name));
                    }
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    assert!(
        unexpected.is_empty(),
        "unexpected results:\n{}",
        unexpected.join("\n")
    );
}
