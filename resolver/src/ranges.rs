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
//! Two approximations remain. `===V` (arbitrary equality, discouraged by PEP 440) compares
//! strings; as a range it matches the versions equal to V, so `===1.0` also admits a release
//! spelled `1` (published versions are normalized, so this needs two spellings of one version).
//! And `>V` (V not a post-release) should also refuse versions that
//! combine a pre-release and a post-release segment of V's release (`>1.0a1` refusing
//! `1.0a2.post1`); there are infinitely many such gaps, so the range keeps them. Such versions
//! are vanishingly rare on PyPI; the property test leaves exactly that case out.
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

    #[test]
    fn pins_are_recognised() {
        assert_eq!(pinned_version(&ranges("==1.0")), Some(v("1.0")));
        assert_eq!(pinned_version(&ranges("===1.0")), Some(v("1.0")));
        assert_eq!(pinned_version(&ranges(">=1.0,<=1.0")), Some(v("1.0")));
        assert_eq!(pinned_version(&ranges(">=1.0")), None);
        assert_eq!(pinned_version(&ranges("==1.*")), None);
    }
}
