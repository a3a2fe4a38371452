//! What users read when things go wrong, pinned with insta: a version conflict, a missing
//! package, no compatible file, a requires-python dead end, yanked-only releases, bad input lines.

mod common;

use std::path::Path;

use resolver::input::parse_requirements_txt;
use resolver::solve::{ResolveOptions, resolve};

fn options(providers: &str) -> ResolveOptions {
    common::options(providers)
}

fn error(universe: &common::Universe, requirements: &str, providers: &str) -> String {
    let snapshot = common::snapshot(universe);
    let input =
        parse_requirements_txt(requirements, Path::new("requirements.txt")).expect("valid input");
    match resolve(&snapshot, common::pin(), &input, &options(providers)) {
        Ok(resolution) => panic!("expected a failure, resolved {:?}", resolution.packages),
        Err(err) => err.to_string(),
    }
}

#[test]
fn version_conflict() {
    let universe = common::universe(&[
        ("app", "1.0", &["lib>=2"]),
        ("app", "2.0", &["lib>=3"]),
        ("tool", "1.0", &["lib<2"]),
        ("lib", "1.5", &[]),
        ("lib", "2.1", &[]),
        ("lib", "3.0", &[]),
    ]);
    insta::assert_snapshot!(error(&universe, "app\ntool\n", "_default=wheel,sdist"));
}

#[test]
fn missing_package() {
    let universe = common::universe(&[("app", "1.0", &[])]);
    insta::assert_snapshot!(
        "missing_root",
        error(&universe, "app\nnumpyy>=1\n", "_default=wheel,sdist")
    );
    let universe = common::universe(&[("app", "1.0", &["ghost>=1"])]);
    insta::assert_snapshot!(
        "missing_transitive",
        error(&universe, "app\n", "_default=wheel,sdist")
    );
}

#[test]
fn no_compatible_file() {
    let mut universe = common::universe(&[("fastlib", "1.0", &[]), ("fastlib", "2.0", &[])]);
    for spec in universe.get_mut("fastlib").expect("present").values_mut() {
        spec.sdist = Some(false);
        spec.wheel_tags = Some(vec![
            "cp311-cp311-manylinux_2_17_x86_64".to_owned(),
            "cp312-cp312-macosx_11_0_arm64".to_owned(),
        ]);
    }
    insta::assert_snapshot!(error(&universe, "fastlib\n", "_default=wheel,sdist"));
    // Also when the package without a usable file is a dependency.
    universe.extend(common::universe(&[("app", "1.0", &["fastlib>=2"])]));
    insta::assert_snapshot!(
        "no_compatible_file_transitive",
        error(&universe, "app\n", "_default=wheel,sdist")
    );
}

#[test]
fn requires_python_and_yanked() {
    let mut universe = common::universe(&[("new", "1.0", &[]), ("old", "1.0", &[])]);
    if let Some(spec) = universe.get_mut("new").and_then(|v| v.get_mut("1.0")) {
        spec.requires_python = Some(">=3.13".to_owned());
    }
    if let Some(spec) = universe.get_mut("old").and_then(|v| v.get_mut("1.0")) {
        spec.yanked = true;
    }
    insta::assert_snapshot!(
        "requires_python",
        error(&universe, "new\n", "_default=wheel,sdist")
    );
    insta::assert_snapshot!(
        "yanked",
        error(&universe, "old>=1\n", "_default=wheel,sdist")
    );
}

#[test]
fn bad_input_lines() {
    let messages: Vec<String> = [
        "requests>=>2\n",
        "six\n-e git+https://github.com/x/y\n",
        "pkg @ git+https://github.com/x/y\n",
        "six --hash=sha256:abc\n",
        "-r missing.txt\n",
    ]
    .iter()
    .map(
        |text| match parse_requirements_txt(text, Path::new("requirements.txt")) {
            Ok(_) => panic!("{text:?} should be refused"),
            Err(err) => err.to_string(),
        },
    )
    .collect();
    insta::assert_snapshot!(messages.join("\n"));
}

#[test]
fn every_missing_name_at_once_with_did_you_mean() {
    let universe = common::universe(&[
        ("httpx", "1.0", &[]),
        ("numpy", "1.0", &[]),
        ("requests", "1.0", &[]),
    ]);
    insta::assert_snapshot!(
        "missing_many",
        error(
            &universe,
            "htpx\nnumpy\nnumpyy>=1\nreqeusts\nzzzzzz-unknown\n",
            "_default=wheel,sdist"
        )
    );
    insta::assert_snapshot!(
        "missing_one_did_you_mean",
        error(&universe, "htpx\n", "_default=wheel,sdist")
    );
}

#[test]
fn show_of_a_missing_name_says_what_to_do_once() {
    let universe = common::universe(&[("httpx", "1.0", &[])]);
    let snapshot = common::snapshot(&universe);
    let err = resolver::show::lookup(&snapshot, &common::pin(), "HTPX").expect_err("missing");
    let text = err.to_string();
    assert_eq!(text.matches("not in this snapshot").count(), 1, "{text}");
    insta::assert_snapshot!("show_missing", text);
}

#[test]
fn step_bound_without_conflicts_says_so() {
    let universe = common::chain(40, &[]);
    let snapshot = common::snapshot(&universe);
    let input =
        parse_requirements_txt("p00000\n", Path::new("requirements.txt")).expect("valid input");
    let options = ResolveOptions {
        max_steps: 10,
        ..options("_default=wheel,sdist")
    };
    let err = resolve(&snapshot, common::pin(), &input, &options).expect_err("stopped");
    let text = err.to_string();
    assert!(!text.contains("conflict between"), "{text}");
    insta::assert_snapshot!("step_bound_no_conflict", text);
}

/// `pydantic` 2.0…2.(n-1) each pinning the same `pydantic-core`, whose releases have cp312
/// wheels only and an sdist built with maturin, which the snapshot lacks.
fn no_wheel_and_no_build_backend(n: usize) -> common::Universe {
    let mut universe = common::Universe::new();
    for minor in 0..n {
        let version = format!("2.{minor}");
        let core = format!("pydantic-core=={version}");
        universe.extend(common::universe(&[
            ("app", "1.0", &["pydantic>=2"]),
            ("pydantic", &version, &[core.as_str()]),
        ]));
        let spec = common::VersionSpec {
            wheel_tags: Some(vec!["cp312-cp312-manylinux_2_17_x86_64".to_owned()]),
            build_requires: Some(vec!["maturin>=1,<2".to_owned()]),
            build_backend: Some("maturin".to_owned()),
            ..common::VersionSpec::default()
        };
        universe
            .entry("pydantic-core".to_owned())
            .or_default()
            .insert(version, spec);
    }
    universe
}

fn error_for_python(universe: &common::Universe, requirements: &str, python: &str) -> String {
    let snapshot = common::snapshot(universe);
    let input =
        parse_requirements_txt(requirements, Path::new("requirements.txt")).expect("valid input");
    let options = ResolveOptions {
        target: resolver::target::TargetEnv::new(python, resolver::target::System::X86_64Linux)
            .expect("target"),
        ..options("_default=wheel,sdist")
    };
    match resolve(&snapshot, common::pin(), &input, &options) {
        Ok(resolution) => panic!("expected a failure, resolved {:?}", resolution.packages),
        Err(err) => err.to_string(),
    }
}

#[test]
fn no_wheel_for_this_python_and_an_sdist_that_cannot_be_built_here() {
    let universe = no_wheel_and_no_build_backend(1);
    insta::assert_snapshot!(
        "no_wheel_no_backend_direct",
        error_for_python(&universe, "pydantic-core\n", "3.14")
    );
    // Reached through a long chain (p00000 → … → p00009 → app → pydantic → pydantic-core):
    // the cause first, then the chain's ends; the whole chain stays with the error for -v.
    let mut universe = no_wheel_and_no_build_backend(20);
    universe.extend(common::chain(10, &["app"]));
    let snapshot = common::snapshot(&universe);
    let input =
        parse_requirements_txt("p00000\n", Path::new("requirements.txt")).expect("valid input");
    let options = ResolveOptions {
        target: resolver::target::TargetEnv::new("3.14", resolver::target::System::X86_64Linux)
            .expect("target"),
        ..options("_default=wheel,sdist")
    };
    let err = resolve(&snapshot, common::pin(), &input, &options).expect_err("no wheel");
    let text = err.to_string();
    assert!(
        text.starts_with("pydantic-core has no wheel for x86_64-linux/cp314"),
        "{text}"
    );
    let full = err.full_explanation().expect("a long chain is shortened");
    assert!(full.contains("p00004 depends on p00005"), "{full}");
    assert!(!text.contains("p00004 depends on p00005"), "{text}");
    insta::assert_snapshot!("no_wheel_no_backend_chain", text);
}
