//! Inputs designed to blow up the resolver: thousands of requirements, dependency
//! chains 10,000 levels deep (resolved, rendered and failing), and conflicts too wide to search.
//! Each must finish or stop with a clear message, never overflow the stack. Bounds on work are
//! asserted (steps, message sizes), never times: `scripts/bench-resolve.sh --limits` times them
//! (figures in `resolver/README.md`, "Limits").

mod common;

use std::path::Path;

use resolver::input::parse_requirements_txt;
use resolver::report::ResolveError;
use resolver::resolution::Resolution;
use resolver::solve::{DEFAULT_MAX_STEPS, ResolveOptions, resolve};

fn options(max_steps: u64) -> ResolveOptions {
    ResolveOptions {
        max_steps,
        ..common::options("_default=wheel,sdist")
    }
}

fn run(
    universe: &common::Universe,
    requirements: &str,
    max_steps: u64,
) -> Result<Resolution, ResolveError> {
    let snapshot = common::snapshot(universe);
    let input =
        parse_requirements_txt(requirements, Path::new("requirements.txt")).expect("valid input");
    resolve(&snapshot, common::pin(), &input, &options(max_steps))
}

#[test]
fn a_chain_10000_deep_resolves_and_renders() {
    let mut universe = common::chain(10_000, &["p00000"]);
    universe.extend(common::universe(&[("leaf", "1.0", &[])]));
    let resolution = run(&universe, "p00000\n", DEFAULT_MAX_STEPS).expect("resolves");
    assert_eq!(resolution.packages.len(), 10_000);
    // The chain closes into one cycle of 10,000 packages: found without recursion.
    assert_eq!(resolution.cycles.len(), 1);
    assert_eq!(resolution.cycles[0].len(), 10_000);
    let nix = resolver::output::nix::render(&resolution).expect("renders");
    assert!(
        nix.contains("Cycle broken: p09999 does not get p00000"),
        "one edge broken"
    );
    assert_eq!(
        resolver::output::requirements::render(&resolution)
            .matches("==1.0")
            .count(),
        10_000
    );
    assert!(resolver::output::pylock::render(&resolution).contains("name = \"p09999\""));
}

#[test]
fn a_conflict_at_the_end_of_a_chain_10000_deep_is_summarised() {
    let mut universe = common::chain(10_000, &["leaf>=2"]);
    universe.extend(common::universe(&[("leaf", "1.0", &[])]));
    let err = run(&universe, "p00000\n", DEFAULT_MAX_STEPS).expect_err("leaf>=2 does not exist");
    let text = err.to_string();
    assert!(matches!(err, ResolveError::Conflict { .. }), "{text}");
    assert!(
        text.contains("too many to explain step by step")
            && text.contains("you require p00000")
            && text.contains("p09999 depends on leaf>=2")
            && text.contains("no version of leaf matches >=2"),
        "{text}"
    );
    assert!(text.len() < 5_000, "bounded: {} bytes", text.len());
    // A missing project at the end: still the missing project's own message.
    let universe = common::chain(10_000, &["missing"]);
    let text = run(&universe, "p00000\n", DEFAULT_MAX_STEPS)
        .expect_err("missing")
        .to_string();
    assert!(text.contains("missing is not in this snapshot"), "{text}");
}

#[test]
fn a_conflict_at_the_end_of_a_chain_480_deep_is_explained_in_full() {
    let mut universe = common::chain(480, &["leaf>=2"]);
    universe.extend(common::universe(&[("leaf", "1.0", &[])]));
    let text = run(&universe, "p00000\n", DEFAULT_MAX_STEPS)
        .expect_err("leaf>=2 does not exist")
        .to_string();
    assert!(
        text.contains("Because") && text.contains("p00479 depends on leaf>=2"),
        "{text}"
    );
    assert!(!text.contains("too many to explain"), "{text}");
}

#[test]
fn five_thousand_requirements_with_backtracking_resolve() {
    let (universe, requirements) = common::many_requirements(5_000);
    let resolution = run(&universe, &requirements, DEFAULT_MAX_STEPS).expect("resolves");
    assert_eq!(resolution.packages.len(), 5_001);
    assert!(
        resolution.packages.iter().all(|p| p.version == "2.0"),
        "every r_i at 2.0, shared at 2.0"
    );
}

#[test]
fn a_conflict_too_wide_to_search_stops_at_the_step_bound() {
    let (universe, requirements) = common::pigeonhole(3);
    // Small enough to prove within the bound: a plain conflict.
    let err = run(&universe, &requirements, DEFAULT_MAX_STEPS).expect_err("4 pigeons, 3 holes");
    assert!(matches!(err, ResolveError::Conflict { .. }), "{err}");
    let (universe, requirements) = common::pigeonhole(9);
    let err = run(&universe, &requirements, 2_000).expect_err("stopped");
    assert!(
        matches!(err, ResolveError::TooComplex { steps: 2_000, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("the solver gave up after 2000 steps")
            && err.to_string().contains("--max-steps"),
        "{err}"
    );
}

// Regression: a snapshot record whose requirement nests 20,000 parentheses overflowed the
// stack of uv's marker parser (the snapshot's strings were parsed unbounded).
#[test]
fn a_stored_requirement_nested_too_deep_refuses_only_that_release() {
    let deep = format!(
        "leaf; {}python_version > '3'{}",
        "(".repeat(20_000),
        ")".repeat(20_000)
    );
    let universe = common::universe(&[
        ("app", "2.0", &[deep.as_str()]),
        ("app", "1.0", &["leaf"]),
        ("leaf", "1.0", &[]),
    ]);
    let resolution = run(&universe, "app\n", DEFAULT_MAX_STEPS).expect("app 1.0 is usable");
    let app = resolution
        .packages
        .iter()
        .find(|package| package.name == "app")
        .expect("app resolved");
    assert_eq!(app.version, "1.0");
    let text = run(&universe, "app==2.0\n", DEFAULT_MAX_STEPS)
        .expect_err("app 2.0 is refused")
        .to_string();
    assert!(
        text.contains("its metadata is invalid") && text.contains("parentheses nested 65 deep"),
        "{text}"
    );
    assert!(text.len() < 5_000, "bounded: {} bytes", text.len());
}
