//! The Nix expression of a [`MixedResolution`]: the PyPI part is the file
//! [`crate::output::nix::render`] writes, called as a function; the conda part is an overlay
//! composed after its `overrides`, so a conda package replaces the PyPI package of the same
//! name (the one the PyPI pass pinned to conda's version, see [`super::mixed`]).
//!
//! Each conda package is its archive fetched (`fetchurl` with the record's sha256; a record with
//! only an md5, which the resolution contains only when md5-only records were allowed, through
//! Nix's own `<nix/fetchurl.nix>`, which still checks md5, where nixpkgs' `fetchurl` refuses it)
//! and unpacked as a prefix:
//! `.tar.bz2` is a tarball, `.conda` a zip holding `pkg-*.tar.zst`. Conda's `info/` is dropped;
//! a `noarch: python` package's `site-packages/` moves under the interpreter's
//! `lib/pythonX.Y/site-packages`. ELF files are patched by `autoPatchelfHook` against the
//! package's non-Python conda dependencies (`buildInputs`), which are also propagated, so
//! libraries such as MKL are in the environment's closure.
//! - Python conda packages (a `python` dependency or `noarch: python`) are
//!   `buildPythonPackage { format = "other"; }` in the overlay, named by their PyPI name, with
//!   their Python conda dependencies as `dependencies`.
//! - Other conda packages (`mkl`, `libffi`, …) are `stdenv.mkDerivation`s in `condaLibraries`,
//!   named by their conda name; so is a second conda package of an already taken PyPI name (a
//!   metapackage such as `typing-extensions` beside `typing_extensions`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::CondaPackage;
use super::mixed::MixedResolution;
use crate::output::nix::{NixError, hex, nix_attr, nix_string, nix_string_list, render};

/// What the conda helpers need from the installation.
const CONDA_HELPERS: &str = r#"  # Unpack a conda archive as a prefix into $out: .tar.bz2 is a tarball, .conda a zip holding
  # pkg-*.tar.zst (and info-*.tar.zst, which is metadata). A noarch: python package's
  # site-packages/ goes under the interpreter's site-packages.
  unpackConda = ''
    runHook preInstall
    mkdir -p $out
    case "$src" in
      *.conda)
        unzip -q "$src" -d conda-archive
        for tarball in conda-archive/pkg-*.tar.zst; do zstd -dc "$tarball" | tar -x -C $out; done
        ;;
      *) tar -xjf "$src" -C $out ;;
    esac
    rm -rf $out/info
    if [ -d $out/site-packages ]; then
      mkdir -p $out/${python.sitePackages}
      cp -r $out/site-packages/. $out/${python.sitePackages}/
      rm -rf $out/site-packages
    fi
    runHook postInstall
  '';
  unpackTools = [ pkgs.autoPatchelfHook pkgs.unzip pkgs.zstd pkgs.bzip2 ];

  # What every conda package is: its archive unpacked, ELF files patched against `libraries`
  # (non-Python conda packages), which are also propagated into the environment.
  condaAttrs = { pname, version, src, libraries }: {
    inherit pname version src;
    dontUnpack = true;
    dontConfigure = true;
    dontBuild = true;
    nativeBuildInputs = unpackTools;
    buildInputs = libraries;
    propagatedBuildInputs = libraries;
    installPhase = unpackConda;
    passthru.provider = "conda";
  };

  # A conda package that is not a Python package (a C library, a runtime).
  mkCondaLibrary = attrs: pkgs.stdenv.mkDerivation (condaAttrs attrs);

  # A conda package of a Python project, installed as it was built (no pip, no build).
  mkConda = pySelf: { dependencies, ... }@attrs:
    pySelf.buildPythonPackage (condaAttrs (builtins.removeAttrs attrs [ "dependencies" ]) // {
      inherit dependencies;
      format = "other";
      doCheck = false;
    });
"#;

fn src(out: &mut String, package: &CondaPackage, indent: &str) -> Result<(), NixError> {
    let url = nix_string(&package.record.url);
    match (&package.record.sha256, &package.record.md5) {
        (Some(sha256), _) => {
            let _ = writeln!(
                out,
                "{indent}src = pkgs.fetchurl {{ url = {url}; sha256 = {}; }};",
                nix_string(&hex(sha256))
            );
        }
        // Only when md5-only records were allowed: Nix's own fetcher still checks an md5.
        (None, Some(md5)) => {
            let md5: String = md5.iter().map(|byte| format!("{byte:02x}")).collect();
            let _ = writeln!(
                out,
                "{indent}src = import <nix/fetchurl.nix> {{ url = {url}; md5 = {}; }};",
                nix_string(&md5)
            );
        }
        (None, None) => {
            return Err(NixError::MissingHash {
                package: package.record.name.clone(),
                filename: package.record.filename.clone(),
            });
        }
    }
    Ok(())
}

/// The whole file for a mixed (or conda-only) resolution.
pub fn render_mixed(mixed: &MixedResolution) -> Result<String, NixError> {
    let pypi = render(&mixed.pypi)?;
    let python_attribute = format!("python{}", mixed.pypi.target.python.replace('.', ""));
    let by_conda_name: BTreeMap<&str, &CondaPackage> = mixed
        .conda
        .packages
        .iter()
        .map(|package| (package.record.name.as_str(), package))
        .collect();
    // One overlay attribute per PyPI name. Two conda packages may stand for one PyPI project
    // (`typing-extensions`, a metapackage, depends on `typing_extensions`, which has the files):
    // the one the others depend on takes the name; the others are installed as libraries.
    let mut overlay: BTreeMap<&str, &CondaPackage> = BTreeMap::new();
    for package in mixed.conda.packages.iter().filter(|p| p.is_python()) {
        match overlay.get(package.pypi_name.as_str()) {
            Some(taken) if !taken.dependencies.contains(&package.record.name) => {}
            _ => {
                overlay.insert(package.pypi_name.as_str(), package);
            }
        }
    }
    let in_overlay = |package: &CondaPackage| {
        overlay
            .get(package.pypi_name.as_str())
            .is_some_and(|chosen| chosen.record.name == package.record.name)
    };
    let libraries_of = |package: &CondaPackage| -> Vec<String> {
        package
            .dependencies
            .iter()
            .filter_map(|name| by_conda_name.get(name.as_str()))
            .filter(|dependency| !in_overlay(dependency))
            .map(|dependency| format!("condaLibraries.{}", nix_attr(&dependency.record.name)))
            .collect()
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Generated by mach-nix: conda ({}) with PyPI, snapshot sha256:{}.\n# Conda specs: {}",
        mixed
            .conda
            .packages
            .iter()
            .map(|package| package.record.channel.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(", "),
        mixed.pypi.snapshot.sha256,
        mixed.conda_specs.join(", ")
    );
    let _ = write!(
        out,
        "{{ pkgs ? import <nixpkgs> {{ }}\n, python ? pkgs.{python_attribute}\n, tests ? false\n}}:\n\nlet\n  pypi = (\n{pypi}  ) {{ inherit pkgs python tests; }};\n\n{CONDA_HELPERS}\n  condaLibraries = {{\n"
    );
    for package in &mixed.conda.packages {
        if in_overlay(package) {
            continue;
        }
        let _ = writeln!(
            out,
            "    {} = mkCondaLibrary {{",
            nix_attr(&package.record.name)
        );
        let _ = writeln!(out, "      pname = {};", nix_string(&package.record.name));
        let _ = writeln!(
            out,
            "      version = {};",
            nix_string(&package.record.version)
        );
        src(&mut out, package, "      ")?;
        let _ = writeln!(
            out,
            "      libraries = [ {} ];",
            libraries_of(package).join(" ")
        );
        out.push_str("    };\n");
    }
    out.push_str("  };\n\n  condaOverlay = pySelf: pySuper: {\n");
    for package in overlay.values() {
        let dependencies: Vec<String> = package
            .dependencies
            .iter()
            .filter_map(|name| by_conda_name.get(name.as_str()))
            .filter(|dependency| in_overlay(dependency))
            .map(|dependency| format!("pySelf.{}", nix_attr(&dependency.pypi_name)))
            .collect();
        let _ = writeln!(
            out,
            "    {} = mkConda pySelf {{",
            nix_attr(&package.pypi_name)
        );
        let _ = writeln!(out, "      pname = {};", nix_string(&package.pypi_name));
        let _ = writeln!(
            out,
            "      version = {};",
            nix_string(&package.record.version)
        );
        src(&mut out, package, "      ")?;
        let _ = writeln!(out, "      dependencies = [ {} ];", dependencies.join(" "));
        let _ = writeln!(
            out,
            "      libraries = [ {} ];",
            libraries_of(package).join(" ")
        );
        out.push_str("    };\n");
    }
    let mut environment: Vec<&str> = mixed
        .pypi
        .requested
        .iter()
        .chain(&mixed.conda_requested)
        .map(String::as_str)
        .collect();
    environment.sort_unstable();
    environment.dedup();
    let conda_files: Vec<&str> = mixed
        .conda
        .packages
        .iter()
        .map(|package| package.record.filename.as_str())
        .collect();
    let _ = write!(
        out,
        "  }};\n\n  overrides = pySelf: pySuper:\n    let fromPypi = pypi.overrides pySelf pySuper;\n    in fromPypi // condaOverlay pySelf (pySuper // fromPypi);\n  pythonWithOverrides = python.override {{ packageOverrides = overrides; self = pythonWithOverrides; }};\n  environment = pythonWithOverrides.withPackages (ps: map (name: ps.${{name}}) {});\nin\nenvironment // {{\n  inherit overrides condaLibraries;\n  python = pythonWithOverrides;\n  machNix = pypi.machNix // {{ conda = {{ specs = {}; files = {}; requested = {}; }}; }};\n}}\n",
        nix_string_list(&environment),
        nix_string_list(&mixed.conda_specs),
        nix_string_list(&conda_files),
        nix_string_list(&mixed.conda_requested),
    );
    Ok(out)
}
