#!/usr/bin/env bash
# Issue 8 measurement: static extraction vs sandboxed builds on the seeded sample of sdist-only
# releases (tests/sdist-sample.txt, chosen by scripts/measure-builds-sample.py).
# Downloads the sdists (<= 8 in flight, sha256 checked), runs the ignored test
# crawler/tests/build_measure.rs niced, then prints the summary (scripts/measure-builds-report.py).
# Usage: scripts/measure-builds.sh [WORKDIR]   (default /tmp/measure-builds)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/measure-builds}"
SAMPLE="$PWD/tests/sdist-sample.txt"
mkdir -p "$WORK/sdists" "$WORK/cache"
scripts/install-sandbox.sh

grep -v '^#' "$SAMPLE" | while IFS=$'\t' read -r _ _ file sha url; do
    printf '%s\t%s\t%s\n' "$file" "$sha" "$url"
done | xargs -P 8 -d '\n' -n 1 bash -c '
    IFS=$'"'"'\t'"'"' read -r file sha url <<< "$0"
    dest="'"$WORK"'/sdists/$file"
    [ -f "$dest" ] && exit 0
    curl -sSfL --retry 4 --retry-delay 2 -A "mach-nix-crawler measure-builds" -o "$dest.part" "$url" || { echo "download failed: $file" >&2; exit 0; }
    if [ "$(sha256sum "$dest.part" | cut -d" " -f1)" = "$sha" ]; then mv "$dest.part" "$dest"; else echo "sha256 mismatch: $file" >&2; rm -f "$dest.part"; fi
'

MEASURE_SAMPLE="$SAMPLE" MEASURE_SDISTS="$WORK/sdists" MEASURE_OUT="$WORK/results.jsonl" \
MEASURE_CACHE="$WORK/cache" MEASURE_JOBS="${MEASURE_JOBS:-2}" \
    nice -n 10 cargo test -p crawler --test build_measure -- --ignored --nocapture
python3 scripts/measure-builds-report.py "$WORK/results.jsonl"
