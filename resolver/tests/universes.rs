//! Random package universes (with extras, markers and cycles): the resolver's answer is cross-checked with an independent
//! brute-force search over every assignment of versions (satisfiable or not), and every
//! resolution is checked against every constraint with uv's own `VersionSpecifiers::contains`
//! and marker evaluation (not the resolver's range conversion).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;

use db_format::types::{ExtraName, MarkerEnvironment, Requirement, Version};
use proptest::prelude::*;
use resolver::input::parse_requirements_txt;
use resolver::provider::{Mode, ProviderConfig};
use resolver::solve::{DEFAULT_MAX_STEPS, ResolveOptions, resolve};
use resolver::target::{System, TargetEnv};
use uv_pep508::{VerbatimUrl, VersionOrUrl};

const NAMES: [&str; 4] = ["a", "b", "c", "d"];
const VERSIONS: [&str; 4] = ["1.0", "1.5", "2.0", "3.0"];

fn requirement_strategy(exclude: Option<usize>) -> impl Strategy<Value = String> {
    (
        (0..NAMES.len()).prop_filter("no self-dependency", move |i| Some(*i) != exclude),
        prop::sample::select(vec!["", ">=", "<", "==", "!=", "~="]),
        prop::sample::select(VERSIONS.to_vec()),
        prop::sample::select(vec![
            "",
            " ; sys_platform == 'linux'",
            " ; sys_platform == 'win32'",
            " ; extra == 'x'",
        ]),
        prop::sample::select(vec!["", "[x]"]),
    )
        .prop_map(|(name, op, version, marker, extras)| {
            let spec = if op.is_empty() {
                String::new()
            } else {
                format!("{op}{version}")
            };
            format!("{}{extras}{spec}{marker}", NAMES[name])
        })
}

fn universe_strategy() -> impl Strategy<Value = BTreeMap<usize, BTreeMap<usize, Vec<String>>>> {
    let package = |index: usize| {
        prop::collection::btree_map(
            0..VERSIONS.len(),
            prop::collection::vec(requirement_strategy(Some(index)), 0..3),
            0..4,
        )
    };
    (package(0), package(1), package(2), package(3)).prop_map(|(a, b, c, d)| {
        [a, b, c, d]
            .into_iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .collect()
    })
}

type Parsed = Requirement<VerbatimUrl>;

fn parse(spec: &str) -> Parsed {
    Parsed::from_str(spec).expect("generated requirements parse")
}

/// Whether a requirement applies to a package whose activated extras are `extras`.
fn active(requirement: &Parsed, env: &MarkerEnvironment, extras: &BTreeSet<ExtraName>) -> bool {
    requirement.marker.evaluate(env, &[])
        || extras.iter().any(|extra| {
            requirement
                .marker
                .evaluate(env, std::slice::from_ref(extra))
        })
}

fn satisfied(requirement: &Parsed, chosen: &BTreeMap<String, Version>) -> bool {
    let Some(version) = chosen.get(requirement.name.as_str()) else {
        return false;
    };
    match &requirement.version_or_url {
        Some(VersionOrUrl::VersionSpecifier(spec)) => spec.contains(version),
        _ => true,
    }
}

/// The requirements of `name` at `version` in the universe.
fn requirements_of<'u>(
    universe: &'u BTreeMap<usize, BTreeMap<usize, Vec<String>>>,
    name: &str,
    version: &Version,
) -> Option<&'u Vec<String>> {
    let package = NAMES
        .iter()
        .position(|n| *n == name)
        .and_then(|i| universe.get(&i))?;
    package
        .iter()
        .find(|(v, _)| Version::from_str(VERSIONS[**v]).ok().as_ref() == Some(version))
        .map(|(_, requires)| requires)
}

/// Every constraint holds: the roots, and the dependencies of every chosen version under the
/// extras that the roots and the chosen packages activate (computed to a fixpoint).
fn consistent(
    roots: &[Parsed],
    universe: &BTreeMap<usize, BTreeMap<usize, Vec<String>>>,
    env: &MarkerEnvironment,
    chosen: &BTreeMap<String, Version>,
) -> bool {
    let none = BTreeSet::new();
    let mut extras: BTreeMap<String, BTreeSet<ExtraName>> = BTreeMap::new();
    for root in roots.iter().filter(|r| active(r, env, &none)) {
        extras
            .entry(root.name.to_string())
            .or_default()
            .extend(root.extras.iter().cloned());
    }
    loop {
        let mut changed = false;
        for (name, version) in chosen {
            let Some(requires) = requirements_of(universe, name, version) else {
                return false;
            };
            let own = extras.get(name).cloned().unwrap_or_default();
            for requirement in requires.iter().map(|spec| parse(spec)) {
                if active(&requirement, env, &own) {
                    let entry = extras.entry(requirement.name.to_string()).or_default();
                    for extra in requirement.extras.iter() {
                        changed |= entry.insert(extra.clone());
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    roots
        .iter()
        .filter(|r| active(r, env, &none))
        .all(|r| satisfied(r, chosen))
        && chosen.iter().all(|(name, version)| {
            let own = extras.get(name).cloned().unwrap_or_default();
            requirements_of(universe, name, version).is_some_and(|requires| {
                requires
                    .iter()
                    .map(|spec| parse(spec))
                    .filter(|r| active(r, env, &own))
                    .all(|r| satisfied(&r, chosen))
            })
        })
}

/// Brute force: does any assignment (each package absent or at one of its versions) satisfy
/// every constraint?
fn brute_force_satisfiable(
    roots: &[Parsed],
    universe: &BTreeMap<usize, BTreeMap<usize, Vec<String>>>,
    env: &MarkerEnvironment,
) -> bool {
    let packages: Vec<(usize, Vec<usize>)> = universe
        .iter()
        .map(|(i, v)| (*i, v.keys().copied().collect()))
        .collect();
    let mut choice = vec![0usize; packages.len()];
    loop {
        let chosen: BTreeMap<String, Version> = packages
            .iter()
            .zip(&choice)
            .filter(|(_, c)| **c > 0)
            .map(|((i, versions), c)| {
                (
                    NAMES[*i].to_owned(),
                    Version::from_str(VERSIONS[versions[*c - 1]]).expect("valid"),
                )
            })
            .collect();
        if consistent(roots, universe, env, &chosen) {
            return true;
        }
        // Next assignment (odometer).
        let mut position = 0;
        loop {
            if position == packages.len() {
                return false;
            }
            choice[position] += 1;
            if choice[position] <= packages[position].1.len() {
                break;
            }
            choice[position] = 0;
            position += 1;
        }
    }
}

fn to_universe(universe: &BTreeMap<usize, BTreeMap<usize, Vec<String>>>) -> common::Universe {
    universe
        .iter()
        .map(|(i, versions)| {
            let versions = versions
                .iter()
                .map(|(v, requires)| {
                    (
                        VERSIONS[*v].to_owned(),
                        common::VersionSpec {
                            requires: requires.clone(),
                            ..Default::default()
                        },
                    )
                })
                .collect();
            (NAMES[*i].to_owned(), versions)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn resolver_agrees_with_brute_force(
        universe in universe_strategy(),
        roots in prop::collection::vec(requirement_strategy(None), 1..4),
    ) {
        let target = TargetEnv::new("3.12", System::X86_64Linux).expect("target");
        let snapshot = common::snapshot(&to_universe(&universe));
        // Roots on packages absent from the universe are refused before solving; the brute
        // force agrees (an absent package can never be chosen).
        let text: String = roots.iter().map(|r| format!("{r}\n")).collect();
        let input = parse_requirements_txt(&text, Path::new("requirements.txt")).expect("valid input");
        let options = ResolveOptions {
            target: target.clone(),
            providers: ProviderConfig::parse("_default=wheel,sdist").expect("providers"),
            mode: Mode::Newest,
            nixpkgs: None,
            allow_prereleases: false,
            max_steps: DEFAULT_MAX_STEPS,
        };
        let parsed: Vec<Parsed> = roots.iter().map(|r| parse(r)).collect();
        let expected = brute_force_satisfiable(&parsed, &universe, &target.markers);
        match resolve(&snapshot, common::pin(), &input, &options) {
            Ok(resolution) => {
                prop_assert!(expected, "resolved {:?} but brute force finds no solution", resolution.packages);
                let chosen: BTreeMap<String, Version> = resolution
                    .packages
                    .iter()
                    .map(|p| (p.name.clone(), Version::from_str(&p.version).expect("valid")))
                    .collect();
                prop_assert!(consistent(&parsed, &universe, &target.markers, &chosen), "inconsistent: {chosen:?}");
                // Cycles reported are real: each member depends on another member.
                for cycle in &resolution.cycles {
                    for name in cycle {
                        let package = resolution.packages.iter().find(|p| &p.name == name).expect("member resolved");
                        prop_assert!(package.dependencies.iter().any(|d| cycle.contains(d)));
                    }
                }
            }
            Err(err) => prop_assert!(!expected, "brute force finds a solution, resolver says: {err}"),
        }
    }
}
