//! Requested projects the snapshot does not have: all of them at once, each with the snapshot's
//! nearest names ("did you mean"), and one hint on how to get a project into a snapshot.

use std::fmt;

use db_format::Snapshot;

use crate::input::Origin;

/// Suggestions are looked up for at most this many missing names (each lookup reads every name
/// of the snapshot); the others are still listed.
const MAX_SUGGESTED: usize = 20;
/// A name "means" a snapshot name within this many edits, and at most a third of its length.
const MAX_EDITS: usize = 2;
/// A `--packages` list in the hint names at most this many projects; more go in a file.
const MAX_HINT_NAMES: usize = 5;

/// One project the snapshot does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The normalized project name.
    pub name: String,
    /// Where it was required, when the user required it.
    pub origin: Option<Origin>,
    /// The snapshot's names nearest to it, nearest first.
    pub suggestions: Vec<String>,
}

/// Every requested project the snapshot does not have, as one error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingProjects {
    pub missing: Vec<Missing>,
    /// The snapshot's date (`YYYY-MM-DD`).
    pub date: String,
}

impl MissingProjects {
    /// `names` (normalized, with where they were required) with suggestions from `snapshot`.
    pub fn new(
        snapshot: &Snapshot,
        names: Vec<(String, Option<Origin>)>,
        date: String,
    ) -> Result<Self, db_format::Error> {
        let mut missing: Vec<Missing> = names
            .into_iter()
            .map(|(name, origin)| Missing {
                name,
                origin,
                suggestions: Vec::new(),
            })
            .collect();
        let mut best: Vec<(usize, Vec<String>)> = vec![(usize::MAX, Vec::new()); missing.len()];
        let suggested = missing.len().min(MAX_SUGGESTED);
        let counts: Vec<Counts> = missing[..suggested]
            .iter()
            .map(|entry| Counts::of(&entry.name))
            .collect();
        for known in snapshot.project_names() {
            let known = known?;
            let known = known.as_str();
            let known_counts = Counts::of(known);
            for ((entry, counts), best) in missing[..suggested].iter().zip(&counts).zip(&mut best) {
                let Some(edits) = near(&entry.name, counts, known, &known_counts) else {
                    continue;
                };
                if edits < best.0 {
                    *best = (edits, vec![known.to_owned()]);
                } else if edits == best.0 && best.1.len() < 3 {
                    best.1.push(known.to_owned());
                }
            }
        }
        for (entry, (_, names)) in missing.iter_mut().zip(best) {
            entry.suggestions = names;
        }
        Ok(Self { missing, date })
    }

    /// The projects that belong in the snapshot, as the crawler takes them.
    fn crawl_hint(&self) -> String {
        let names: Vec<&str> = self.missing.iter().map(|m| m.name.as_str()).collect();
        if names.len() <= MAX_HINT_NAMES {
            format!("--packages {}", names.join(","))
        } else {
            "--packages-file FILE (these names, one per line)".to_owned()
        }
    }
}

/// How often each byte occurs in a name (folded into 32 slots; names are `[a-z0-9._-]`). An
/// edit changes at most two counts by one, so names `k` edits apart differ by at most `2k` in
/// total: a filter far cheaper than the edit distance, run on every name of the snapshot.
struct Counts([u8; 32]);

impl Counts {
    fn of(name: &str) -> Self {
        let mut counts = [0u8; 32];
        for byte in name.bytes() {
            let slot = &mut counts[usize::from(byte % 32)];
            *slot = slot.saturating_add(1);
        }
        Counts(counts)
    }

    fn difference(&self, other: &Counts) -> usize {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| usize::from(a.abs_diff(*b)))
            .sum()
    }
}

/// The edit distance between `name` and `known` (with their [`Counts`]) when `known` is a
/// plausible meaning of `name`.
fn near(name: &str, counts: &Counts, known: &str, known_counts: &Counts) -> Option<usize> {
    let limit = MAX_EDITS.min(name.len() / 3).max(1);
    if name.len().abs_diff(known.len()) > limit
        || name == known
        || counts.difference(known_counts) > 2 * limit
    {
        return None;
    }
    let edits = strsim::damerau_levenshtein(name, known);
    (edits <= limit).then_some(edits)
}

impl Missing {
    /// `origin: name`, or the name alone.
    fn located(&self) -> String {
        match &self.origin {
            Some(origin) => format!("{origin}: {}", self.name),
            None => self.name.clone(),
        }
    }

    /// `did you mean X?`, when the snapshot has a near name.
    fn did_you_mean(&self) -> Option<String> {
        match self.suggestions.as_slice() {
            [] => None,
            [one] => Some(format!("did you mean {one}?")),
            many => Some(format!("did you mean one of {}?", many.join(", "))),
        }
    }
}

impl fmt::Display for MissingProjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.missing.as_slice() {
            [one] => {
                write!(
                    f,
                    "{} is not in this snapshot (snapshot date {})",
                    one.located(),
                    self.date
                )?;
                if let Some(meant) = one.did_you_mean() {
                    write!(f, "; {meant}")?;
                }
            }
            many => {
                write!(
                    f,
                    "{} requested projects are not in this snapshot (snapshot date {}):",
                    many.len(),
                    self.date
                )?;
                for missing in many {
                    write!(f, "\n  {}", missing.located())?;
                    if let Some(meant) = missing.did_you_mean() {
                        write!(f, " ({meant})")?;
                    }
                }
            }
        }
        write!(
            f,
            "\nhint: correct a misspelt name; a project PyPI has gets into a snapshot by crawling \
             it into the state the snapshot is published from (`mach-nix-crawler crawl --state \
             STATE {}`, then `mach-nix-crawler publish-db --state STATE --out DIR`), or use a \
             newer snapshot that has it (--db, --db-dir)",
            self.crawl_hint()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Counts;

    fn near(name: &str, known: &str) -> Option<usize> {
        super::near(name, &Counts::of(name), known, &Counts::of(known))
    }

    #[test]
    fn near_names_are_a_few_edits_apart() {
        assert_eq!(near("htpx", "httpx"), Some(1));
        assert_eq!(near("numpyy", "numpy"), Some(1));
        assert_eq!(near("reqeusts", "requests"), Some(1));
        assert_eq!(near("numpy", "numpy"), None);
        // Short names: one edit at most, or every two-letter name would match.
        assert_eq!(near("ab", "xy"), None);
        assert_eq!(near("django", "flask"), None);
        // Two edits in a long name pass the count filter.
        assert_eq!(near("pydantik-kore", "pydantic-core"), Some(2));
    }
}
