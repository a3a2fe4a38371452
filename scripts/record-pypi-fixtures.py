#!/usr/bin/env python3
"""Record real PyPI responses for the crawler's tests (crawler/tests/data/).

Run by hand, from the repository root, when the fixture set should change:

    python3 scripts/record-pypi-fixtures.py [--index https://pypi.org]

What is recorded, for a fixed set of projects chosen to cover the crawler's paths
(wheels only, sdists with each static extraction path, setup.py-only sdists, yanked
releases, pre-releases, odd names):

  simple/<name>.json   the PEP 691 JSON project page (`Accept: application/vnd.pypi.simple.v1+json`)
  json/<name>.json     the JSON API (`/pypi/<name>/json`)
  files/<filename>     the distribution file, byte for byte, when it is small
  files/<filename>.metadata          the PEP 658 metadata file, when PyPI serves one
  files/<filename>.ranges.json       for large wheels: only the byte ranges a range-request
                                     reader needs (the last 64 KiB, the central directory and
                                     the METADATA member), each a real slice of the real file
  manifest.json        what was selected and why

To keep the fixtures small, only some releases of each project are kept, and within a kept
release only some files; the JSON documents are filtered to those files (and re-serialized),
every other byte is PyPI's.
"""
import argparse
import base64
import hashlib
import io
import json
import os
import sys
import time
import urllib.error
import urllib.request
import zipfile

USER_AGENT = "mach-nix-fixture-recorder/0.1 (+https://github.com/mach-nix-rs/mach-nix)"
SMALL_FILE = 300_000  # bytes: files up to this size are recorded whole

# project -> (releases to keep, file-name filter or None, why)
SELECTION = {
    "iniconfig": (None, None, "every release: wheels + hatchling sdists (PKG-INFO >= 2.2 and static pyproject)"),
    "six": (["1.0.0", "1.9.0", "1.16.0"], None, "setup.py-only 2010 sdist (unknown), tiny wheels with PEP 658 metadata"),
    "requests": (["2.31.0", "2.32.0", "2.32.3"], None, "2.32.0 is yanked; setuptools sdists with egg-info requires.txt and extras"),
    "exceptiongroup": (["1.0.0rc1", "1.0.0rc2", "1.2.2"], None, "pre-releases; flit sdists"),
    "zope-interface": (["6.0"], ("tar.gz", "cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-win_amd64"),
                       "odd name (zope.interface); egg-info requires.txt with extras; wheels via range requests"),
    "pdfminer-six": (["20221105"], ("py3-none-any.whl",), "odd name (pdfminer.six); a 5.6 MB wheel read by range requests"),
    "tensorflow-estimator": (["2.15.0"], None, "a wheels-only project"),
}


def get(url, headers=None, tries=5):
    for attempt in range(tries):
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            if error.code in (404, 416):
                return error.code, b""
            if attempt == tries - 1:
                raise
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            if attempt == tries - 1:
                raise
        time.sleep(2 ** attempt)
    raise RuntimeError("unreachable")


class RangeFile(io.RawIOBase):
    """A seekable file over HTTP range requests that remembers every range it read."""

    def __init__(self, url, size):
        self.url, self.size, self.pos, self.ranges = url, size, 0, []

    def seekable(self):
        return True

    def readable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, offset, whence=0):
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def fetch(self, start, end):
        status, body = get(self.url, {"Range": f"bytes={start}-{end - 1}"})
        if status != 206 or len(body) != end - start:
            raise RuntimeError(f"{self.url}: range {start}-{end} answered {status} with {len(body)} bytes")
        self.ranges.append((start, body))
        return body

    def readinto(self, buffer):
        end = min(self.size, self.pos + len(buffer))
        if end <= self.pos:
            return 0
        for start, body in self.ranges:
            if start <= self.pos and end <= start + len(body):
                chunk = body[self.pos - start:end - start]
                break
        else:
            chunk = self.fetch(self.pos, end)
        buffer[: len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


def record_ranges(url, size, out_path):
    reader = RangeFile(url, size)
    reader.fetch(max(0, size - 65536), size)
    with zipfile.ZipFile(reader) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(".dist-info/METADATA"))
        start = info.header_offset
        end = min(size, start + 30 + len(info.filename.encode()) + 1024 + info.compress_size)
        reader.fetch(start, end)
        cd_start = min(i.header_offset for i in archive.infolist())  # noqa: F841 (the CD itself was read above)
    merged = []
    for start, body in sorted(reader.ranges):
        if merged and start <= merged[-1][0] + len(merged[-1][1]):
            prev_start, prev = merged[-1]
            merged[-1] = (prev_start, prev[: start - prev_start] + body
                          if start + len(body) > prev_start + len(prev) else prev)
        else:
            merged.append((start, body))
    with open(out_path, "w") as handle:
        json.dump({"size": size, "ranges": [[s, base64.b64encode(b).decode()] for s, b in merged]}, handle)


def version_of_json_api(data):
    return {f["filename"]: version for version, files in data["releases"].items() for f in files}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", default="https://pypi.org")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "crawler", "tests", "data"))
    args = parser.parse_args()
    for sub in ("simple", "json", "files"):
        os.makedirs(os.path.join(args.out, sub), exist_ok=True)
    manifest = {"recorded_from": args.index, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "projects": {}}
    for name, (keep, patterns, why) in SELECTION.items():
        _, simple_raw = get(f"{args.index}/simple/{name}/", {"Accept": "application/vnd.pypi.simple.v1+json"})
        _, json_raw = get(f"{args.index}/pypi/{name}/json")
        simple, api = json.loads(simple_raw), json.loads(json_raw)
        versions = version_of_json_api(api)
        wanted = set()
        for f in simple["files"]:
            version = versions.get(f["filename"])
            if keep is not None and version not in keep:
                continue
            if patterns is not None and not any(p in f["filename"] for p in patterns):
                continue
            wanted.add(f["filename"])
        simple["files"] = [f for f in simple["files"] if f["filename"] in wanted]
        if "versions" in simple:
            simple["versions"] = [v for v in simple["versions"] if v in set(versions[f] for f in wanted)]
        api["releases"] = {v: [f for f in files if f["filename"] in wanted]
                           for v, files in api["releases"].items() if any(f["filename"] in wanted for f in files)}
        api["urls"] = [f for f in api["urls"] if f["filename"] in wanted]
        for f in simple["files"]:
            target = os.path.join(args.out, "files", f["filename"])
            status, metadata = get(f["url"] + ".metadata")
            if status == 200:
                with open(target + ".metadata", "wb") as handle:
                    handle.write(metadata)
            if f["size"] <= SMALL_FILE:
                _, body = get(f["url"])
                if hashlib.sha256(body).hexdigest() != f["hashes"]["sha256"]:
                    sys.exit(f"{f['filename']}: sha256 mismatch")
                with open(target, "wb") as handle:
                    handle.write(body)
            elif f["filename"].endswith(".whl"):
                record_ranges(f["url"], f["size"], target + ".ranges.json")
            else:
                sys.exit(f"{f['filename']}: {f['size']} bytes is too large for a fixture; pick another release")
            print(f"  {f['filename']} ({f['size']} bytes){' + .metadata' if status == 200 else ''}")
        with open(os.path.join(args.out, "simple", f"{name}.json"), "w") as handle:
            json.dump(simple, handle, indent=1, sort_keys=True)
        with open(os.path.join(args.out, "json", f"{name}.json"), "w") as handle:
            json.dump(api, handle, indent=1, sort_keys=True)
        manifest["projects"][name] = {"why": why, "files": sorted(wanted)}
        print(f"{name}: {len(wanted)} files")
    with open(os.path.join(args.out, "manifest.json"), "w") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
