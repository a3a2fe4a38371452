#!/usr/bin/env bash
# Records the real PyPI sdists and build-requirement wheels that crawler/tests/build.rs builds in
# the sandbox into crawler/tests/data/build/, each checked against its sha256 from PyPI.
# Re-run only to re-record; the tests never touch the network.
set -euo pipefail
cd "$(dirname "$0")/../crawler/tests/data/build"
mkdir -p wheels

# project version filename: the sdists
SDISTS=(
    "sampletext 0.1.0.0.2 sampletext-0.1.0.0.2.tar.gz"        # setup.py computes install_requires from files
    "openapi-markdown 0.0.6 openapi_markdown-0.0.6.tar.gz"    # hatchling + hatch-requirements-txt (dynamic deps)
    "plug 0.1.0 plug-0.1.0.tar.gz"                            # distribute_setup.py downloads at build time
)
for row in "${SDISTS[@]}"; do
    read -r project version file <<< "$row"
    [ -f "$file" ] && continue
    read -r url sha < <(curl -sSf --retry 4 "https://pypi.org/pypi/$project/json" | python3 -c "
import json, sys, urllib.parse
data = json.load(sys.stdin)
for f in data['releases']['$version']:
    if f['filename'] == '$file':
        print(urllib.parse.urljoin('https://pypi.org/pypi/$project/json', f['url']), f['digests']['sha256'])")
    curl -sSfL --retry 4 -o "$file.part" "$url"
    echo "$sha  $file.part" | sha256sum -c --quiet
    mv "$file.part" "$file"
done

# The build requirements, as wheels (the sandbox installs from here with --no-index).
python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: -d wheels \
    setuptools==68.2.2 wheel==0.41.3 hatchling==1.18.0 hatch-requirements-txt==0.4.1
ls -l . wheels
