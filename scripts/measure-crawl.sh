#!/usr/bin/env bash
# By-hand live measurement of the crawler against real PyPI (not run in CI).
#
#   scripts/measure-crawl.sh [PROJECTS_FILE] [OUT_DIR]
#
# PROJECTS_FILE defaults to scripts/measure-crawl.projects.txt: the 1,100 most downloaded PyPI
# projects (rank order), taken from a package list of the workplace. Environment knobs:
#   MAX_RELEASES (default 5)   newest releases kept per project
#   WHEELS (one-per-release)   or `all`: every wheel's METADATA
#   RATE (30) CONCURRENCY (16) requests per second / in flight
#   PROFILE (release)          cargo profile used to build the binary
# Writes OUT_DIR/report.json (requests and bytes by kind), OUT_DIR/stats.json, the snapshot in
# OUT_DIR/snapshots/, and the figures in OUT_DIR/figures.md.
set -euo pipefail
cd "$(dirname "$0")/.."
projects="${1:-scripts/measure-crawl.projects.txt}"
out="${2:-target/measure-crawl}"
profile="${PROFILE:-release}"
mkdir -p "$out"
cargo build --profile "$profile" -p crawler --bin mach-nix-crawler
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
bin="target/$dir/mach-nix-crawler"
start=$(date +%s)
"$bin" crawl --state "$out/state" --packages-file "$projects" \
  --max-releases "${MAX_RELEASES:-5}" --wheels "${WHEELS:-one-per-release}" \
  --rate "${RATE:-30}" --concurrency "${CONCURRENCY:-16}" --projects-in-flight 16 \
  --progress-every 30 --report "$out/report.json"
end=$(date +%s)
"$bin" publish-db --state "$out/state" --out "$out/snapshots" > "$out/published.txt"
"$bin" stats --state "$out/state" > "$out/stats.json"
python3 scripts/measure-crawl.figures.py "$out" "$((end - start))"
