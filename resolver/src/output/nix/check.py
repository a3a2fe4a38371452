# The build-time check of every package mach-nix generates, run after its fixup (machNixCheckPhase):
#  1. every Requires-Dist of the installed dist-info that applies on this interpreter (markers
#     evaluated, with the extras the resolution activated) is satisfied by the package itself or
#     its run-time dependencies (their closure, nothing else: not the build system);
#  2. unless turned off (machNixImportsCheck = false), every top-level module it installed
#     imports, with only itself and that closure on sys.path.
# Run as `python -I -S -B -c "$machNixCheck" SITE_PACKAGES PACKAGING_SITE_PACKAGES`; the rest
# comes from the derivation's environment: machNixName (the resolved package's normalized name),
# machNixExtras (space-separated),
# machNixDependencyPaths (colon-separated site-packages of the closure), machNixCycleBroken
# (dependencies left out to break a cycle: not checked), machNixImportsCheck.
import importlib
import importlib.metadata
import os
import site
import sys

site_dir, packaging_dir = sys.argv[1], sys.argv[2]
package = os.environ["machNixName"]
extras = os.environ.get("machNixExtras", "").split()
closure = [p for p in os.environ.get("machNixDependencyPaths", "").split(":") if p]
cycle_broken = os.environ.get("machNixCycleBroken", "").split()


def fail(message):
    print(f"mach-nix check of {package}: {message}", file=sys.stderr)
    sys.exit(1)


# `packaging` (nixpkgs' own, not a resolved package) reads requirements and markers; it is
# removed from the interpreter again before anything is imported from the closure.
sys.path.insert(0, packaging_dir)
from packaging.requirements import Requirement  # noqa: E402
from packaging.utils import canonicalize_name  # noqa: E402


def name_of(distribution):
    return canonicalize_name(distribution.metadata["Name"] or "")


own = [d for d in importlib.metadata.distributions(path=[site_dir]) if name_of(d) == canonicalize_name(package)]
if not own:
    fail(f"no {package}-*.dist-info in {site_dir}")
distribution = own[0]
version = distribution.version

installed = {}
for other in importlib.metadata.distributions(path=[site_dir] + closure):
    installed.setdefault(name_of(other), other.version)

problems = []
for line in distribution.requires or []:
    requirement = Requirement(line)
    if requirement.marker is not None and not any(
        requirement.marker.evaluate({"extra": extra}) for extra in [""] + extras
    ):
        continue
    if canonicalize_name(requirement.name) in cycle_broken:
        continue
    found = installed.get(canonicalize_name(requirement.name))
    if found is None:
        problems.append(f"{package} {version} requires {line}, but {requirement.name} is not among its dependencies")
    elif not requirement.specifier.contains(found, prereleases=True):
        problems.append(f"{package} {version} requires {line}, but its dependencies have {requirement.name} {found}")
if problems:
    fail("\n  ".join(["unsatisfied requirements:"] + problems))
checked = len(distribution.requires or [])

for module in [m for m in sys.modules if m == "packaging" or m.startswith("packaging.")]:
    del sys.modules[module]
sys.path.remove(packaging_dir)

if os.environ.get("machNixImportsCheck", "") != "1":
    print(f"mach-nix check of {package}: {checked} Requires-Dist read, all applicable ones satisfied; imports not checked")
    sys.exit(0)


def top_level_modules():
    text = distribution.read_text("top_level.txt")
    if text is not None:
        names = text.split()
    else:
        names = []
        for path in distribution.files or []:
            first = path.parts[0]
            if first.endswith((".dist-info", ".data")) or first in ("..", "__pycache__"):
                continue
            if len(path.parts) > 1:
                names.append(first)
            elif first.endswith(".py"):
                names.append(first[:-3])
            elif first.endswith((".so", ".pyd")):
                names.append(first.split(".")[0])
    present = []
    for name in sorted(set(names)):
        if not name.isidentifier():
            continue
        if os.path.isdir(os.path.join(site_dir, name)) or any(
            entry == name + ".py" or (entry.startswith(name + ".") and entry.endswith((".so", ".pyd")))
            for entry in os.listdir(site_dir)
        ):
            present.append(name)
    return present


for directory in [site_dir] + closure:
    site.addsitedir(directory)
modules = top_level_modules()
for module in modules:
    try:
        importlib.import_module(module)
    except BaseException as error:  # noqa: BLE001 - any failure of an import is reported
        fail(
            f"`import {module}` failed: {type(error).__name__}: {error}\n"
            f"  (a module that needs a display or hardware: turn this off with "
            f"_.{package}.machNixImportsCheck = false)"
        )
print(f"mach-nix check of {package}: {checked} Requires-Dist read, all applicable ones satisfied; imported {' '.join(modules) or 'no module'}")
