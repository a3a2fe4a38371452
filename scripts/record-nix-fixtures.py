#!/usr/bin/env python3
"""Record the real PyPI data the Nix output tests build their resolutions from.

Writes resolver/tests/data/nix/pypi.json: for each pinned (name, version) below, the wheel a
CPython 3.11 / manylinux x86_64 target installs and (where asked) the sdist, each with the URL,
sha256, size and upload time PyPI's simple JSON API (PEP 691) reports, plus the dependency names
that apply on that target (from the wheel's METADATA; markers evaluated with pip's vendored
`packaging`, no extras) and, for sdists, the `[build-system]` table of the sdist's pyproject.toml.

Run once, by hand, when the fixture must change: `python3 scripts/record-nix-fixtures.py`.
Needs network access to pypi.org and files.pythonhosted.org, and a Python 3.11+ with pip.
"""

import email.parser
import io
import json
import pathlib
import sys
import tarfile
import time
import tomllib
import urllib.error
import urllib.request
import zipfile

from pip._vendor.packaging import tags
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name, parse_wheel_filename

# (name, version, record the sdist too). The requests closure, a numpy/pandas closure with
# manylinux wheels, and the build backends (setuptools, flit-core, hatchling) with their own
# closures, so a resolution taking every package from its sdist builds with a real build system.
PINS = [
    ("requests", "2.32.3", True),
    ("certifi", "2024.8.30", True),
    ("charset-normalizer", "3.4.0", True),
    ("idna", "3.10", True),
    ("urllib3", "2.2.3", True),
    ("numpy", "2.1.3", False),
    ("pandas", "2.2.3", False),
    ("python-dateutil", "2.9.0.post0", True),
    ("pytz", "2024.2", True),
    ("six", "1.16.0", True),
    ("tzdata", "2024.2", True),
    ("setuptools", "75.6.0", True),
    ("flit-core", "3.10.1", True),
    ("hatchling", "1.26.3", True),
    ("hatch-vcs", "0.4.0", True),
    ("packaging", "24.2", True),
    ("pathspec", "0.12.1", True),
    ("pluggy", "1.5.0", True),
    ("trove-classifiers", "2024.10.21.16", True),
    ("setuptools-scm", "8.1.0", True),
    ("calver", "2022.6.26", True),
]

TARGET_ENV = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.0",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": "3.11.0",
    "python_version": "3.11",
    "sys_platform": "linux",
    "extra": "",
}

MANYLINUX = [f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)] + [
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
    "linux_x86_64",
]
# Most preferred first.
TARGET_TAGS = list(tags.cpython_tags((3, 11), ["cp311"], MANYLINUX)) + list(
    tags.compatible_tags((3, 11), "cp311", MANYLINUX)
)
OUT = pathlib.Path(__file__).resolve().parent.parent / "resolver/tests/data/nix/pypi.json"


def get(url, accept=None):
    """GET with retries and backoff; returns bytes, or None on 404."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    for attempt in range(5):
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            failure = error
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            failure = error
        time.sleep(2**attempt)
    raise RuntimeError(f"GET {url} failed: {failure}")


def file_record(entry):
    return {
        "filename": entry["filename"],
        "url": entry["url"],
        "sha256": entry["hashes"]["sha256"],
        "size": entry["size"],
        "upload_time": entry.get("upload-time"),
        "requires_python": entry.get("requires-python"),
    }


def best_wheel(files):
    ranked = []
    for entry in files:
        if not entry["filename"].endswith(".whl") or entry.get("yanked"):
            continue
        _, _, _, wheel_tags = parse_wheel_filename(entry["filename"])
        ranks = [TARGET_TAGS.index(tag) for tag in wheel_tags if tag in TARGET_TAGS]
        if ranks:
            ranked.append((min(ranks), entry))
    if not ranked:
        return None
    return min(ranked, key=lambda pair: pair[0])[1]


def wheel_metadata(entry):
    text = get(entry["url"] + ".metadata")
    if text is None:
        archive = zipfile.ZipFile(io.BytesIO(get(entry["url"])))
        member = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(member)
    return email.parser.BytesParser().parsebytes(text)


def applicable(requirements):
    names = set()
    for line in requirements:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(TARGET_ENV):
            names.add(str(canonicalize_name(requirement.name)))
    return sorted(names)


def sdist_build_system(entry):
    archive = tarfile.open(fileobj=io.BytesIO(get(entry["url"])), mode="r:gz")
    top = entry["filename"][: -len(".tar.gz")]
    try:
        member = archive.extractfile(f"{top}/pyproject.toml")
    except KeyError:
        member = None
    if member is None:
        # No pyproject.toml: PEP 517's default, setuptools' legacy backend.
        return {"requires": ["setuptools>=40.8.0"], "build-backend": None}
    table = tomllib.load(member).get("build-system", {})
    return {
        "requires": table.get("requires", ["setuptools>=40.8.0"]),
        "build-backend": table.get("build-backend"),
    }


def record(name, version, with_sdist):
    index = json.loads(get(f"https://pypi.org/simple/{name}/", "application/vnd.pypi.simple.v1+json"))
    files = [f for f in index["files"] if version_of(name, f["filename"]) == version]
    wheel = best_wheel(files)
    if wheel is None:
        raise RuntimeError(f"{name} {version}: no wheel for cp311 manylinux x86_64")
    metadata = wheel_metadata(wheel)
    requires_dist = metadata.get_all("Requires-Dist") or []
    package = {
        "name": name,
        "version": version,
        "requires_python": metadata.get("Requires-Python"),
        "requires_dist": requires_dist,
        "dependencies": applicable(requires_dist),
        "wheel": file_record(wheel),
    }
    if with_sdist:
        sdist = next(f for f in files if f["filename"].endswith(".tar.gz"))
        build_system = sdist_build_system(sdist)
        package["sdist"] = file_record(sdist)
        package["build_requires"] = build_system["requires"]
        package["build_backend"] = build_system["build-backend"]
        package["build_dependencies"] = applicable(build_system["requires"])
    return package


def version_of(name, filename):
    if filename.endswith(".whl"):
        return str(parse_wheel_filename(filename)[1])
    stem = filename[: -len(".tar.gz")] if filename.endswith(".tar.gz") else None
    if stem is None:
        return None
    project, _, version = stem.rpartition("-")
    return version if canonicalize_name(project) == canonicalize_name(name) else None


def main():
    packages = []
    for name, version, with_sdist in PINS:
        print(f"recording {name} {version}", file=sys.stderr)
        packages.append(record(name, version, with_sdist))
    document = {
        "recorded_by": "scripts/record-nix-fixtures.py",
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "target": {"python": "3.11", "system": "x86_64-linux"},
        "packages": packages,
    }
    OUT.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
