#!/usr/bin/env bash
# The main job, end to end, from a fresh clone: crawl what a requirements file needs from PyPI
# as it was on a fixed date, publish that snapshot (named by its sha256), resolve the file
# against the snapshot's hash, and write the Nix expression, a PEP 751 pylock.toml and a hashed
# requirements.txt.
#
# usage: scripts/demo.sh [REQUIREMENTS] [AS_OF]
#   REQUIREMENTS  default examples/requirements.txt
#   AS_OF         default 2025-06-01 (PyPI as it was at 00:00 UTC that day)
# Work files go to .mach-nix-work/ (the crawl state is kept, so a second run is incremental).
# Set PYTHON_VERSION (default 3.12) and SYSTEM (default x86_64-linux) to change the target,
# MAX_RELEASES (default 10, 0 = all) to change how many releases per project are crawled.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
requirements="$(realpath "${1:-$root/examples/requirements.txt}")"
as_of="${2:-2025-06-01}"
python="${PYTHON_VERSION:-3.12}"
system="${SYSTEM:-x86_64-linux}"
work="$root/.mach-nix-work"
out="$work/out"
mkdir -p "$out"

echo "== building mach-nix and mach-nix-crawler"
cargo build --quiet --bins --manifest-path "$root/Cargo.toml"
bin="$root/target/debug"

echo "== crawling the closure of $requirements from PyPI as of $as_of"
# To keep the demo to a few minutes: the newest MAX_RELEASES (default 10) releases of each
# project before the date, and one wheel's metadata per release (a pure-Python one when there is
# one); every file of those releases is still listed with its hash, URL and tags. MAX_RELEASES=0
# crawls every release (the closure over all releases reaches far older dependencies: slower).
max_releases="${MAX_RELEASES:-10}"
limit=()
if [ "$max_releases" != 0 ]; then limit=(--max-releases "$max_releases"); fi
"$bin/mach-nix-crawler" crawl --state "$work/state" --requirements "$requirements" \
  --with-deps --as-of "$as_of" --wheels one-per-release "${limit[@]}" --progress-every 15

echo "== publishing the snapshot"
"$bin/mach-nix-crawler" publish-db --state "$work/state" --out "$work/snapshots"
sha="$(cat "$work/snapshots/latest")"

echo "== resolving against sha256:$sha for $system / CPython $python"
common=(-r "$requirements" --db "sha256:$sha" --db-dir "$work/snapshots" -p "$python" --system "$system")
"$bin/mach-nix" gen "${common[@]}" --format nix -o "$out/default.nix"
"$bin/mach-nix" gen "${common[@]}" --format pylock -o "$out/pylock.toml"
"$bin/mach-nix" gen "${common[@]}" --format requirements -o "$out/requirements.lock.txt"

if command -v nix-instantiate >/dev/null 2>&1; then
  nix-instantiate --parse "$out/default.nix" >/dev/null && echo "== the Nix expression parses (nix-instantiate --parse)"
fi

count="$(grep -c '^\[\[packages\]\]' "$out/pylock.toml")"
echo
echo "snapshot:          sha256:$sha in the published tree $work/snapshots"
echo "Nix expression:    $out/default.nix   ($count packages; nix-build it with nixpkgs on NIX_PATH)"
echo "PEP 751 lock:      $out/pylock.toml"
echo "hashed lock:       $out/requirements.lock.txt   (pip install --require-hashes --no-deps -r …)"
