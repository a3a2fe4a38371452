//! PEP 440 specifiers as pubgrub version sets.
//!
//! pubgrub works on [`Ranges<Version>`] (unions of intervals); PEP 440 specifiers have rules that
//! are not plain intervals: `==1.0` also matches local versions `1.0+abc`, `<1.0` must not match
//! pre-releases of `1.0`, `>1.0` must not match post-releases of `1.0`, `==1.*` is a prefix match.
//! Each rule becomes an interval whose bounds are either the internal sentinels of [`Version`]
//! (`1.0min0` sorts before every other `1.0` version, `1.0max0` after every `1.0.postN`) or the
//! least real version above every local label of `V` (`1.0.post0.dev0` for `1.0`), so that for
//! every real version `v`,
//! `ranges(spec).contains(v) == spec.contains(v)`. The property tests below check exactly that
//! against uv's own [`VersionSpecifier::contains`].
//!
//! Two rules are no intervals, so they are made exact on the versions a project actually has
//! ([`specifiers_to_ranges_among`], which the solver calls with the project's releases): `===V`
//! (arbitrary equality) compares spellings, not values (uv: `V.to_string() ==
//! version.to_string()`), so `===1.0` refuses a release `1.0.0` although the two are equal as
//! versions; and `>V` (V not a post-release) refuses every post-release of V's release, also
//! those that combine a pre-release and a post-release segment (`>1.0a1` refuses `1.0a2.post1`).
//! A range cannot tell two spellings of one value apart, and the second rule has infinitely many
//! gaps (one per pre-release), so both are cut only where the project has such a release. Without
//! known releases ([`specifiers_to_ranges`]) the ranges keep them; the property tests check
//! both against uv's [`VersionSpecifier::contains`], the exact one on every version.
//!
//! Pre-release *preference* (PEP 440's "pre-releases only when asked for") is not a property of
//! the set: it is applied when a version is chosen (see `solve`).

use std::ops::Bound;

use db_format::types::{Operator, Version, VersionSpecifier, VersionSpecifiers};
use pubgrub::Ranges;
use uv_pep440::{BumpCommand, Prerelease};

/// The versions matched by every specifier of the set (an empty set matches all versions).
pub fn specifiers_to_ranges(specifiers: &VersionSpecifiers) -> Ranges<Version> {
    specifiers.iter().fold(Ranges::full(), |acc, spec| {
        acc.intersection(&specifier_to_ranges(spec))
    })
}

/// The versions matched by every specifier of the set, exact (as uv's `contains`) on every
/// version of `known` (a project's releases): see the module doc for the two rules this adds.
pub fn specifiers_to_ranges_among(
    specifiers: &VersionSpecifiers,
    known: &[Version],
) -> Ranges<Version> {
    specifiers.iter().fold(Ranges::full(), |acc, spec| {
        acc.intersection(&specifier_to_ranges_among(spec, known))
    })
}

/// Whether the specifier needs the project's releases to be exact.
pub fn needs_known_versions(specifier: &VersionSpecifier) -> bool {
    match specifier.operator() {
        Operator::ExactEqual => true,
        Operator::GreaterThan => !specifier.version().is_post(),
        _ => false,
    }
}

/// One specifier, exact on every version of `known`.
pub fn specifier_to_ranges_among(
    specifier: &VersionSpecifier,
    known: &[Version],
) -> Ranges<Version> {
    let ranges = specifier_to_ranges(specifier);
    if !needs_known_versions(specifier) {
        return ranges;
    }
    let version = specifier.version();
    if *specifier.operator() == Operator::ExactEqual {
        // `===` compares spellings: a release equal in value but spelled otherwise (`1.0.0` for
        // `===1.0`) does not match, and the range (values) cannot hold one without the other.
        let spelled = version.to_string();
        let respelled = known
            .iter()
            .any(|k| k == version && k.to_string() != spelled);
        // (A project has one release per value: PyPI refuses `1.0.0` beside `1.0`.)
        let exact = known.iter().any(|k| k.to_string() == spelled);
        return if respelled && !exact {
            Ranges::empty()
        } else {
            ranges
        };
    }
    // `>V`: the post-releases of the pre-releases of V's release (`1.0a2.post1` for `>1.0a1`),
    // each pre-release's posts cut as one interval, `1.0a2.post0.dev0 ..= 1.0a2.post∞`.
    known
        .iter()
        .filter(|k| {
            k.is_pre()
                && k.is_post()
                && k.epoch() == version.epoch()
                && same_release(&k.release(), &version.release())
        })
        .filter_map(|k| {
            let pre = k.pre()?;
            let mut base = k.clone().without_local();
            // Setting the pre-release clears the post and dev segments.
            base.bump(BumpCommand::BumpPrerelease {
                kind: pre.kind,
                value: Some(pre.number),
            });
            Some(Ranges::between(
                above_locals(base.clone()),
                base.with_max(Some(0)),
            ))
        })
        .fold(ranges, |acc, posts| acc.intersection(&posts.complement()))
}

/// Release segments equal with trailing zeros ignored (`1.0` and `1.0.0`), as PEP 440 compares.
fn same_release(a: &[u64], b: &[u64]) -> bool {
    let len = a.len().max(b.len());
    (0..len).all(|i| a.get(i).unwrap_or(&0) == b.get(i).unwrap_or(&0))
}

/// The versions matched by one specifier.
pub fn specifier_to_ranges(specifier: &VersionSpecifier) -> Ranges<Version> {
    let version = specifier.version().clone();
    match specifier.operator() {
        Operator::Equal => equal(version),
        Operator::ExactEqual => Ranges::singleton(version),
        Operator::NotEqual => equal(version).complement(),
        Operator::TildeEqual => {
            // `~=V.N` is `>=V.N, ==V.*`. It needs at least two release segments; uv's parser
            // rejects `~=1`, so the fallback (a plain `>=`) is never taken for a parsed one.
            let segments = version.release().len();
            if segments < 2 {
                return Ranges::higher_than(version);
            }
            let mut upper = version.clone().without_local();
            // Bumping a release segment keeps the epoch and clears pre/post/dev.
            upper.bump(BumpCommand::BumpRelease {
                index: segments - 2,
                value: None,
            });
            Ranges::from_range_bounds(version..with_dev(upper, 0))
        }
        Operator::LessThan => {
            if version.any_prerelease() {
                Ranges::strictly_lower_than(version)
            } else if version.is_post() {
                Ranges::strictly_lower_than(with_dev(version, 0))
            } else {
                Ranges::strictly_lower_than(version.with_min(Some(0)))
            }
        }
        Operator::LessThanEqual => Ranges::strictly_lower_than(above_locals(version)),
        Operator::GreaterThan => {
            // `>V` excludes `V+local` (labels are ignored, so it equals `V`), and unless V is
            // itself a post-release, every post-release of V's release (`>1.0` refuses
            // `1.0.post1`; `>1.0.dev0` refuses `1.0.post0` too, as uv's `contains` does).
            let above = Ranges::higher_than(above_locals(version.clone()));
            if version.is_post() {
                above
            } else {
                let mut release = version.without_local();
                release.bump(BumpCommand::MakeStable);
                let first_post = above_locals(release.clone());
                let posts = Ranges::between(first_post, release.with_max(Some(0)));
                above.intersection(&posts.complement())
            }
        }
        Operator::GreaterThanEqual => Ranges::higher_than(version),
        Operator::EqualStar => prefix(version),
        Operator::NotEqualStar => prefix(version).complement(),
    }
}

/// `==V` without a local label also matches `V+anything`; with a label it is exact.
fn equal(version: Version) -> Ranges<Version> {
    if version.local().is_empty() {
        let high = above_locals(version.clone());
        Ranges::between(version, high)
    } else {
        Ranges::singleton(version)
    }
}

/// `==V.*`: every version whose release starts with V's segments (dev, pre, post, local of any).
fn prefix(version: Version) -> Ranges<Version> {
    let low = with_dev(version.without_local(), 0);
    let high = if let Some(post) = low.post() {
        low.clone().with_post(Some(post + 1))
    } else if let Some(pre) = low.pre() {
        low.clone().with_pre(Some(Prerelease {
            kind: pre.kind,
            number: pre.number + 1,
        }))
    } else {
        let mut release = low.release().to_vec();
        if let Some(last) = release.last_mut() {
            *last += 1;
        }
        low.clone().with_release(release)
    };
    Ranges::from_range_bounds(low..high)
}

/// `version` with its dev segment set (its local label, if any, is kept).
fn with_dev(mut version: Version, dev: u64) -> Version {
    version.bump(BumpCommand::BumpDev { value: Some(dev) });
    version
}

/// The least real version above every `version+local` (`version` has no local label):
/// `1.0` → `1.0.post0.dev0`, `1.0.post1` → `1.0.post2.dev0`, `1.0.dev1` → `1.0.dev2`.
fn above_locals(version: Version) -> Version {
    let mut next = version.without_local();
    if let Some(dev) = next.dev() {
        return with_dev(next, dev + 1);
    }
    let post = next.post().map_or(0, |post| post + 1);
    next.bump(BumpCommand::BumpPost { value: Some(post) });
    with_dev(next, 0)
}

/// A version set is a single exact version (`==1.0`, `===1.0`, `==1.0+local`, or an
/// intersection that leaves one version), as yanked-release pins require: the version, if so.
pub fn pinned_version(ranges: &Ranges<Version>) -> Option<Version> {
    let mut segments = ranges.iter();
    let (lower, upper) = segments.next()?;
    if segments.next().is_some() {
        return None;
    }
    match (lower, upper) {
        (Bound::Included(low), Bound::Included(high)) if low == high => Some(low.clone()),
        (Bound::Included(low), Bound::Excluded(high))
            if low.local().is_empty() && *high == above_locals(low.clone()) =>
        {
            Some(low.clone())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use proptest::prelude::*;

    use super::*;

    fn version_strategy() -> impl Strategy<Value = String> {
        (
            prop::option::of(0u64..2),
            prop::collection::vec(0u64..3, 1..4),
            prop::option::of((prop::sample::select(vec!["a", "b", "rc"]), 0u64..3)),
            prop::option::of(0u64..3),
            prop::option::of(0u64..3),
            prop::option::of(prop::sample::select(vec!["abc", "1", "x.2"])),
        )
            .prop_map(|(epoch, release, pre, post, dev, local)| {
                let mut out = String::new();
                if let Some(epoch) = epoch.filter(|e| *e > 0) {
                    out.push_str(&format!("{epoch}!"));
                }
                let release: Vec<String> = release.iter().map(u64::to_string).collect();
                out.push_str(&release.join("."));
                if let Some((kind, n)) = pre {
                    out.push_str(&format!("{kind}{n}"));
                }
                if let Some(post) = post {
                    out.push_str(&format!(".post{post}"));
                }
                if let Some(dev) = dev {
                    out.push_str(&format!(".dev{dev}"));
                }
                if let Some(local) = local {
                    out.push_str(&format!("+{local}"));
                }
                out
            })
    }

    fn specifier_strategy() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec![
                "==", "!=", "<", "<=", ">", ">=", "~=", "===", "==*", "!=*",
            ]),
            version_strategy(),
        )
            .prop_map(|(op, version)| match op {
                "==*" => format!(
                    "=={}.*",
                    version
                        .split(['a', 'b', 'r', '.', '+'])
                        .next()
                        .unwrap_or("1")
                ),
                "!=*" => format!(
                    "!={}.*",
                    version
                        .split(['a', 'b', 'r', '.', '+'])
                        .next()
                        .unwrap_or("1")
                ),
                _ => format!("{op}{version}"),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        /// For every version, the range agrees with uv's own `contains`.
        #[test]
        fn ranges_agree_with_contains(spec in specifier_strategy(), versions in prop::collection::vec(version_strategy(), 1..8)) {
            // Some generated strings are not valid specifiers (e.g. `~=1`, `<1.0+abc`): skip those.
            if let Ok(specifier) = VersionSpecifier::from_str(&spec) {
                let ranges = specifier_to_ranges(&specifier);
                for version in versions {
                    let version = Version::from_str(&version).expect("generated versions parse");
                    // Exact on the known versions: every rule, `===` and `>V` included.
                    prop_assert_eq!(
                        specifier_to_ranges_among(&specifier, std::slice::from_ref(&version))
                            .contains(&version),
                        specifier.contains(&version),
                        "{} among [{}]", spec, version
                    );
                    let documented_gap = (*specifier.operator() == Operator::GreaterThan
                        && version.is_pre()
                        && version.is_post())
                        || *specifier.operator() == Operator::ExactEqual;
                    if documented_gap {
                        continue;
                    }
                    prop_assert_eq!(
                        ranges.contains(&version),
                        specifier.contains(&version),
                        "{} on {}", spec, version
                    );
                }
            }
        }

        /// With a whole project's releases known, every one of them is classified as uv does.
        #[test]
        fn ranges_among_known_versions_agree_with_contains(spec in specifier_strategy(), versions in prop::collection::vec(version_strategy(), 1..12)) {
            if let Ok(specifiers) = VersionSpecifiers::from_str(&spec) {
                // A project has one release per version value (PyPI refuses `1.0.0` beside `1.0`).
                let mut known: Vec<Version> = Vec::new();
                for version in &versions {
                    let version = Version::from_str(version).expect("generated versions parse");
                    if !known.contains(&version) {
                        known.push(version);
                    }
                }
                let ranges = specifiers_to_ranges_among(&specifiers, &known);
                for version in &known {
                    prop_assert_eq!(ranges.contains(version), specifiers.contains(version), "{} on {}", spec, version);
                }
            }
        }

        #[test]
        fn specifier_sets_intersect(a in specifier_strategy(), b in specifier_strategy(), version in version_strategy()) {
            if let Ok(set) = VersionSpecifiers::from_str(&format!("{a},{b}")) {
                // The documented approximations (see the module doc) are checked above, not here.
                if a.starts_with("===") || b.starts_with("===") {
                    return Ok(());
                }
                let version = Version::from_str(&version).expect("generated versions parse");
                if version.is_pre() && version.is_post() {
                    return Ok(());
                }
                prop_assert_eq!(specifiers_to_ranges(&set).contains(&version), set.contains(&version));
            }
        }
    }

    fn ranges(spec: &str) -> Ranges<Version> {
        specifiers_to_ranges(&VersionSpecifiers::from_str(spec).expect("valid specifier"))
    }

    fn v(version: &str) -> Version {
        Version::from_str(version).expect("valid version")
    }

    #[test]
    fn pep440_edge_cases() {
        assert!(ranges("==1.0").contains(&v("1.0+local")));
        assert!(!ranges("==1.0+a").contains(&v("1.0+b")));
        assert!(!ranges("<1.0").contains(&v("1.0rc1")));
        assert!(ranges("<1.0rc2").contains(&v("1.0rc1")));
        assert!(!ranges(">1.0").contains(&v("1.0.post1")));
        assert!(ranges(">1.0.post1").contains(&v("1.0.post2")));
        assert!(ranges("==1.*").contains(&v("1.9.post3")));
        assert!(!ranges("==1.*").contains(&v("2.0.dev0")));
        assert!(ranges("~=1.4.5").contains(&v("1.4.9")));
        assert!(!ranges("~=1.4.5").contains(&v("1.5")));
        assert!(!ranges("!=1.5").contains(&v("1.5+local")));
        assert!(ranges("===1.0").contains(&v("1.0")));
    }

    fn among(spec: &str, known: &[&str]) -> Vec<String> {
        let known: Vec<Version> = known.iter().map(|k| v(k)).collect();
        let set = VersionSpecifiers::from_str(spec).expect("valid specifier");
        let ranges = specifiers_to_ranges_among(&set, &known);
        let matched: Vec<String> = known
            .iter()
            .filter(|k| ranges.contains(k))
            .map(ToString::to_string)
            .collect();
        let expected: Vec<String> = known
            .iter()
            .filter(|k| set.contains(k))
            .map(ToString::to_string)
            .collect();
        assert_eq!(matched, expected, "{spec} disagrees with uv's contains");
        matched
    }

    #[test]
    fn arbitrary_equality_compares_spellings() {
        assert_eq!(among("===1.0", &["1.0.0", "2.0"]), Vec::<String>::new());
        assert_eq!(among("===1.0.0", &["1.0.0", "2.0"]), ["1.0.0"]);
        assert_eq!(among("===1.0", &["0.9", "1.0", "1.0+local"]), ["1.0"]);
        assert_eq!(among("===1.0+local", &["1.0", "1.0+local"]), ["1.0+local"]);
        // Without known releases, the value range is all there is.
        assert!(ranges("===1.0").contains(&v("1.0.0")));
    }

    #[test]
    fn greater_than_refuses_post_releases_of_pre_releases_of_its_release() {
        let known = [
            "1.0a1",
            "1.0a1.post1",
            "1.0a2",
            "1.0a2.post1",
            "1.0a2.post1.dev1",
            "1.0.0rc1.post3+local",
            "1.0",
            "1.0.post1",
            "1.1a1.post1",
        ];
        assert_eq!(among(">1.0a1", &known), ["1.0a2", "1.0", "1.1a1.post1"]);
        assert_eq!(
            among(">1.0a1.post0", &known),
            among(">=1.0a1.post1", &known)
        );
        assert_eq!(among(">1.0", &known), ["1.1a1.post1"]);
        assert_eq!(among(">0.9", &known).len(), known.len());
    }

    #[test]
    fn pins_are_recognised() {
        assert_eq!(pinned_version(&ranges("==1.0")), Some(v("1.0")));
        assert_eq!(pinned_version(&ranges("===1.0")), Some(v("1.0")));
        assert_eq!(pinned_version(&ranges(">=1.0,<=1.0")), Some(v("1.0")));
        assert_eq!(pinned_version(&ranges(">=1.0")), None);
        assert_eq!(pinned_version(&ranges("==1.*")), None);
    }
}
