//! Conda mixed with the PyPI providers (wheel, sdist, nixpkgs) in one environment.
//!
//! Two passes, conda first:
//! 1. The requirements whose package is to come from conda (see [`CondaSelection`]) and that the
//!    channels have (under their PyPI name or a conda name of [`super::names`]) become conda
//!    match specs (`numpy>=1.20` → `numpy >=1.20`) and are solved against the channels, with the
//!    interpreter provided by the target (`python` is a virtual package at the target version:
//!    the environment's interpreter is nixpkgs', conda packages are built for its ABI).
//!    A requirement with extras or markers stays with the PyPI providers (conda has neither).
//! 2. The other requirements are resolved by [`crate::solve::resolve`], with `-c` constraints
//!    `name==version` pinning every Python package conda supplies, so that a wheel that depends
//!    on numpy agrees with conda's numpy. Such a package then also appears in the PyPI
//!    resolution (its PyPI release of that version); the Nix output replaces it with the conda
//!    package ([`super::nix`]). The PyPI snapshot must therefore know that release: if it does
//!    not, the PyPI pass says so.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::str::FromStr;

use db_format::Snapshot;
use db_format::types::{Requirement, Version as Pep440Version};

use super::{CondaError, CondaOptions, CondaResolution, names, parse_spec};
use crate::input::{Entry, Input, Origin};
use crate::report::ResolveError;
use crate::resolution::{Resolution, SnapshotPin, Target};
use crate::solve::ResolveOptions;

/// Which requested packages conda supplies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CondaSelection {
    /// Every requested package the channels have (`_default=conda/…`).
    All,
    /// These normalized PyPI names (`numpy=conda/intel`).
    Names(BTreeSet<String>),
}

impl CondaSelection {
    fn selects(&self, name: &str) -> bool {
        match self {
            CondaSelection::All => true,
            CondaSelection::Names(names) => names.contains(name),
        }
    }
}

/// The conda entries of a `--providers` text: channels (in order) and which packages they supply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CondaProviders {
    pub channels: Vec<String>,
    pub selection: CondaSelection,
}

/// Take the `conda`/`conda/CHANNEL` items out of an inline `--providers` text
/// (`_default=conda/intel,wheel numpy=conda/intel`): returns the text for the PyPI providers
/// (`None` when nothing is left) and the conda part (`None` when there is none).
///
/// Conda must come first where it is named: a package is taken from conda when the channels have
/// it, and falls back to the providers after conda otherwise; conda as a later fallback (after
/// `wheel`) is refused, as the two passes cannot express it.
pub fn split_providers(spec: &str) -> Result<(Option<String>, Option<CondaProviders>), CondaError> {
    let mut channels: Vec<String> = Vec::new();
    let mut all = false;
    let mut names = BTreeSet::new();
    let mut rest = Vec::new();
    for entry in spec.split_whitespace() {
        let Some((name, list)) = entry.split_once('=') else {
            rest.push(entry.to_string());
            continue;
        };
        let mut others = Vec::new();
        for (position, item) in list.split(',').enumerate() {
            match super::parse_provider(item) {
                Some(parsed) => {
                    if position != 0 {
                        return Err(CondaError::BadProvider(format!(
                            "{entry}: conda must be the first provider of {name}"
                        )));
                    }
                    for channel in parsed? {
                        if !channels.contains(&channel) {
                            channels.push(channel);
                        }
                    }
                    if name == "_default" {
                        all = true;
                    } else {
                        names.insert(db_format::types::normalize_name(name).map_or_else(
                            |_| name.to_ascii_lowercase(),
                            |normalized| normalized.to_string(),
                        ));
                    }
                }
                None => others.push(item),
            }
        }
        if !others.is_empty() {
            rest.push(format!("{name}={}", others.join(",")));
        }
    }
    let selection = if all {
        CondaSelection::All
    } else {
        CondaSelection::Names(names)
    };
    let conda = if channels.is_empty() {
        None
    } else {
        Some(CondaProviders {
            channels,
            selection,
        })
    };
    let rest = (!rest.is_empty()).then(|| rest.join(" "));
    Ok((rest, conda))
}

/// Conda's part and PyPI's part of one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MixedResolution {
    /// The PyPI providers' resolution (it also holds, pinned to conda's versions, the Python
    /// packages conda supplies that PyPI packages depend on).
    pub pypi: Resolution,
    pub conda: CondaResolution,
    /// Normalized PyPI names of the requested packages conda supplies, sorted.
    pub conda_requested: Vec<String>,
    /// The conda specs solved (for messages and the Nix header).
    pub conda_specs: Vec<String>,
}

/// What can go wrong mixing.
#[derive(Debug, thiserror::Error)]
pub enum MixedError {
    #[error(transparent)]
    Conda(#[from] CondaError),
    #[error(transparent)]
    Pypi(#[from] ResolveError),
}

/// The conda name of a PyPI project in the channels, if they have it.
fn conda_name_in_channels(
    snapshot: &Snapshot,
    pypi: &str,
    options: &CondaOptions,
) -> Result<Option<String>, CondaError> {
    for name in names::conda_names(pypi) {
        let records = snapshot.conda_records(&name)?;
        if records
            .iter()
            .any(|record| options.channels.contains(&record.channel))
        {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Resolve `input` with conda supplying the `selection`, the PyPI providers the rest.
pub fn resolve(
    snapshot: &Snapshot,
    pin: SnapshotPin,
    input: &Input,
    options: &ResolveOptions,
    conda: &CondaOptions,
    selection: &CondaSelection,
) -> Result<MixedResolution, MixedError> {
    let mut conda_specs = Vec::new();
    let mut conda_requested = Vec::new();
    let mut pypi_input = Input {
        requirements: Vec::new(),
        ..input.clone()
    };
    for entry in &input.requirements {
        let requirement = &entry.requirement;
        let name = requirement.name.to_string();
        let plain = requirement.extras.is_empty() && requirement.marker.is_true();
        let conda_name = if plain && selection.selects(&name) {
            conda_name_in_channels(snapshot, &name, conda)?
        } else {
            None
        };
        let specifiers = match &requirement.version_or_url {
            None => Some(String::new()),
            Some(uv_pep508::VersionOrUrl::VersionSpecifier(specifiers)) => {
                Some(specifiers.to_string().replace(' ', ""))
            }
            Some(uv_pep508::VersionOrUrl::Url(_)) => None,
        };
        match (conda_name, specifiers) {
            (Some(conda_name), Some(specifiers)) => {
                let spec = format!("{conda_name} {specifiers}").trim().to_string();
                parse_spec(&spec)?;
                conda_specs.push(spec);
                conda_requested.push(name);
            }
            _ => pypi_input.requirements.push(entry.clone()),
        }
    }
    let conda_options = CondaOptions {
        virtual_packages: conda
            .virtual_packages
            .clone()
            .with_python(&options.target.python),
        ..conda.clone()
    };
    let conda_resolution = super::resolve(snapshot, &conda_specs, &conda_options)?;
    for package in &conda_resolution.packages {
        if !package.is_python() || Pep440Version::from_str(&package.record.version).is_err() {
            continue;
        }
        let pin_text = format!("{}=={}", package.pypi_name, package.record.version);
        if let Ok(requirement) = Requirement::from_str(&pin_text) {
            pypi_input.constraints.push(Entry {
                requirement,
                hashes: Vec::new(),
                origin: Origin {
                    file: PathBuf::from(format!(
                        "conda:{}/{}",
                        package.record.channel, package.record.filename
                    )),
                    line: 0,
                },
            });
        }
    }
    let pypi = if pypi_input.requirements.is_empty() {
        Resolution {
            target: Target {
                python: options.target.python.clone(),
                system: options.target.system.as_str().to_string(),
            },
            snapshot: pin,
            requested: Vec::new(),
            packages: Vec::new(),
            cycles: Vec::new(),
        }
    } else {
        crate::solve::resolve(snapshot, pin, &pypi_input, options)?
    };
    conda_requested.sort();
    conda_requested.dedup();
    Ok(MixedResolution {
        pypi,
        conda: conda_resolution,
        conda_requested,
        conda_specs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conda_items_are_split_from_the_providers_text() {
        let (rest, conda) =
            split_providers("_default=wheel,sdist NumPy=conda/intel,wheel scipy=conda/intel")
                .expect("valid");
        assert_eq!(rest.as_deref(), Some("_default=wheel,sdist NumPy=wheel"));
        let conda = conda.expect("conda part");
        assert_eq!(conda.channels, ["intel"]);
        assert_eq!(
            conda.selection,
            CondaSelection::Names(["numpy", "scipy"].map(str::to_owned).into())
        );
        let (rest, conda) = split_providers("_default=conda,wheel").expect("valid");
        assert_eq!(rest.as_deref(), Some("_default=wheel"));
        let conda = conda.expect("conda part");
        assert_eq!(
            (conda.channels.as_slice(), &conda.selection),
            (
                &["main".to_string(), "r".to_string()][..],
                &CondaSelection::All
            )
        );
        assert_eq!(
            split_providers("_default=wheel").expect("valid"),
            (Some("_default=wheel".into()), None)
        );
        assert!(split_providers("numpy=wheel,conda/intel").is_err());
        assert!(split_providers("numpy=conda/").is_err());
    }
}
