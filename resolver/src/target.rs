//! The target a resolution is made for: a Nix system and a CPython version. From it come the
//! PEP 508 marker environment (what `sys_platform == 'linux'` evaluates to) and the set of
//! compatible wheel tags (which `cp312-abi3-manylinux_2_28_x86_64` wheels can be installed).
//!
//! Platform baselines, per Nix system:
//! - `x86_64-linux`, `aarch64-linux`: `manylinux` wheels up to glibc **2.39** (nixpkgs 24.05 and
//!   later ship glibc ≥ 2.39, and Nix environments run against nixpkgs' glibc, never the host's).
//!   `musllinux` wheels are never compatible (nixpkgs' Python links glibc).
//!   uv equivalent: `--python-platform x86_64-manylinux_2_39` / `aarch64-manylinux_2_39`.
//! - `x86_64-darwin`: macOS **10.12** and later wheels (uv's default for `x86_64-apple-darwin`).
//! - `aarch64-darwin`: macOS **11.0** and later `arm64` (and `universal2`) wheels (uv's default
//!   for `aarch64-apple-darwin`).
//!
//! The interpreter is CPython; `-p 3.12` means Python 3.12.0 for `python_full_version` and
//! `Requires-Python` checks, as uv's `--python-version 3.12` does.

use std::fmt;
use std::str::FromStr;

use db_format::types::{MarkerEnvironment, Version, VersionSpecifiers, WheelFilename};
use uv_pep508::MarkerEnvironmentBuilder;
use uv_platform_tags::{Arch, Os, Platform, TagCompatibility, TagPriority, Tags, TagsOptions};

/// A target that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "unknown system {0:?}: expected x86_64-linux, aarch64-linux, x86_64-darwin or aarch64-darwin"
    )]
    UnknownSystem(String),
    #[error("invalid Python version {0:?}: expected a version like 3.12 or 3.12.4")]
    BadPython(String),
    #[error("cannot compute wheel tags for {system}/{python}: {reason}")]
    Tags {
        system: String,
        python: String,
        reason: String,
    },
}

/// The Nix systems mach-nix resolves for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum System {
    X86_64Linux,
    Aarch64Linux,
    X86_64Darwin,
    Aarch64Darwin,
}

/// The manylinux glibc baseline of the Linux systems (see the module doc).
pub const NIXPKGS_GLIBC: (u16, u16) = (2, 39);

impl System {
    pub const ALL: [System; 4] = [
        System::X86_64Linux,
        System::Aarch64Linux,
        System::X86_64Darwin,
        System::Aarch64Darwin,
    ];

    /// The Nix spelling, e.g. `x86_64-linux`.
    pub fn as_str(self) -> &'static str {
        match self {
            System::X86_64Linux => "x86_64-linux",
            System::Aarch64Linux => "aarch64-linux",
            System::X86_64Darwin => "x86_64-darwin",
            System::Aarch64Darwin => "aarch64-darwin",
        }
    }

    fn is_linux(self) -> bool {
        matches!(self, System::X86_64Linux | System::Aarch64Linux)
    }

    /// The platform of the default wheel-tag baseline (see the module doc).
    pub fn default_platform(self) -> Platform {
        let (major, minor) = NIXPKGS_GLIBC;
        match self {
            System::X86_64Linux => Platform::new(Os::Manylinux { major, minor }, Arch::X86_64),
            System::Aarch64Linux => Platform::new(Os::Manylinux { major, minor }, Arch::Aarch64),
            System::X86_64Darwin => Platform::new(
                Os::Macos {
                    major: 10,
                    minor: 12,
                },
                Arch::X86_64,
            ),
            System::Aarch64Darwin => Platform::new(
                Os::Macos {
                    major: 11,
                    minor: 0,
                },
                Arch::Aarch64,
            ),
        }
    }
}

impl FromStr for System {
    type Err = TargetError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        System::ALL
            .into_iter()
            .find(|system| system.as_str() == value)
            .ok_or_else(|| TargetError::UnknownSystem(value.to_owned()))
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resolved target: markers and tags ready to use.
#[derive(Debug, Clone)]
pub struct TargetEnv {
    pub system: System,
    /// As the user wrote it (`3.12`), for messages and outputs.
    pub python: String,
    /// The full interpreter version (`3.12` → `3.12.0`).
    pub python_full: Version,
    pub markers: MarkerEnvironment,
    tags: Tags,
}

impl TargetEnv {
    /// The target for `system` and CPython `python`, with the system's default tag baseline.
    pub fn new(python: &str, system: System) -> Result<Self, TargetError> {
        Self::with_platform(python, system, system.default_platform())
    }

    /// The target with an explicit wheel-tag platform (e.g. an older manylinux baseline).
    pub fn with_platform(
        python: &str,
        system: System,
        platform: Platform,
    ) -> Result<Self, TargetError> {
        let bad = || TargetError::BadPython(python.to_owned());
        let parsed = Version::from_str(python).map_err(|_| bad())?;
        let release = parsed.release();
        if release.len() < 2 || release.len() > 3 || release[0] != 3 || !parsed.is_stable() {
            return Err(bad());
        }
        let minor = u8::try_from(release[1]).map_err(|_| bad())?;
        let patch = release.get(2).copied().unwrap_or(0);
        let python_version = format!("3.{minor}");
        let python_full = format!("3.{minor}.{patch}");
        let (sys_platform, platform_system, machine) = match system {
            System::X86_64Linux => ("linux", "Linux", "x86_64"),
            System::Aarch64Linux => ("linux", "Linux", "aarch64"),
            System::X86_64Darwin => ("darwin", "Darwin", "x86_64"),
            System::Aarch64Darwin => ("darwin", "Darwin", "arm64"),
        };
        let markers = MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: &python_full,
            os_name: "posix",
            platform_machine: machine,
            platform_python_implementation: "CPython",
            platform_release: "",
            platform_system,
            platform_version: "",
            python_full_version: &python_full,
            python_version: &python_version,
            sys_platform,
        })
        .map_err(|_| bad())?;
        let tags = Tags::from_env(
            platform,
            (3, minor),
            "cpython",
            (3, minor),
            TagsOptions {
                manylinux_compatible: system.is_linux(),
                is_cross: true,
                ..TagsOptions::default()
            },
        )
        .map_err(|err| TargetError::Tags {
            system: system.to_string(),
            python: python.to_owned(),
            reason: err.to_string(),
        })?;
        Ok(TargetEnv {
            system,
            python: python.to_owned(),
            python_full: Version::from_str(&python_full).map_err(|_| bad())?,
            markers,
            tags,
        })
    }

    /// `cp312`: the interpreter tag, for messages.
    pub fn python_tag(&self) -> String {
        let (major, minor) = self.tags.python_version();
        format!("cp{major}{minor}")
    }

    /// The wheel's priority on this target (higher is better), or `None` if it cannot be
    /// installed here.
    pub fn wheel_priority(&self, wheel: &WheelFilename) -> Option<TagPriority> {
        match wheel.compatibility(&self.tags) {
            TagCompatibility::Compatible(priority) => Some(priority),
            TagCompatibility::Incompatible(_) => None,
        }
    }

    /// Whether a `Requires-Python` specifier set admits this interpreter.
    pub fn python_satisfies(&self, requires_python: &VersionSpecifiers) -> bool {
        requires_python.contains(&self.python_full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fits(target: &TargetEnv, wheel: &str) -> bool {
        let wheel = WheelFilename::from_str(wheel).expect("valid wheel name");
        target.wheel_priority(&wheel).is_some()
    }

    #[test]
    fn linux_takes_manylinux_up_to_the_nixpkgs_glibc() {
        let target = TargetEnv::new("3.12", System::X86_64Linux).expect("valid target");
        assert!(fits(
            &target,
            "a-1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
        ));
        assert!(fits(&target, "a-1-cp312-cp312-manylinux_2_39_x86_64.whl"));
        assert!(!fits(&target, "a-1-cp312-cp312-manylinux_2_40_x86_64.whl"));
        assert!(fits(&target, "a-1-cp39-abi3-manylinux_2_28_x86_64.whl"));
        assert!(fits(&target, "a-1-py3-none-any.whl"));
        assert!(!fits(&target, "a-1-cp312-cp312-musllinux_1_2_x86_64.whl"));
        assert!(!fits(&target, "a-1-cp311-cp311-manylinux_2_17_x86_64.whl"));
        assert!(!fits(&target, "a-1-cp312-cp312-manylinux_2_17_aarch64.whl"));
        assert!(!fits(&target, "a-1-cp312-cp312-macosx_11_0_arm64.whl"));
    }

    #[test]
    fn darwin_takes_its_macos_baseline_and_universal2() {
        let arm = TargetEnv::new("3.12", System::Aarch64Darwin).expect("valid target");
        assert!(fits(&arm, "a-1-cp312-cp312-macosx_11_0_arm64.whl"));
        assert!(fits(&arm, "a-1-cp312-cp312-macosx_10_9_universal2.whl"));
        assert!(!fits(&arm, "a-1-cp312-cp312-macosx_14_0_arm64.whl"));
        assert!(!fits(&arm, "a-1-cp312-cp312-macosx_10_9_x86_64.whl"));
        let intel = TargetEnv::new("3.11", System::X86_64Darwin).expect("valid target");
        assert!(fits(&intel, "a-1-cp311-cp311-macosx_10_9_x86_64.whl"));
        assert!(!fits(&intel, "a-1-cp311-cp311-macosx_11_0_arm64.whl"));
    }

    #[test]
    fn markers_follow_the_system() {
        let target = TargetEnv::new("3.12.4", System::Aarch64Darwin).expect("valid target");
        assert_eq!(target.markers.sys_platform(), "darwin");
        assert_eq!(target.markers.platform_machine(), "arm64");
        assert_eq!(target.python_full.to_string(), "3.12.4");
        let target = TargetEnv::new("3.12", System::X86_64Linux).expect("valid target");
        assert_eq!(target.python_full.to_string(), "3.12.0");
        assert_eq!(target.python_tag(), "cp312");
    }

    #[test]
    fn bad_targets_are_refused() {
        assert!(matches!(
            "x86_64-windows".parse::<System>(),
            Err(TargetError::UnknownSystem(_))
        ));
        assert!(matches!(
            TargetEnv::new("2", System::X86_64Linux),
            Err(TargetError::BadPython(_))
        ));
        assert!(matches!(
            TargetEnv::new("three", System::X86_64Linux),
            Err(TargetError::BadPython(_))
        ));
    }
}
