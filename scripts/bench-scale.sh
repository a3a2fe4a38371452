#!/usr/bin/env bash
# publish-db at PyPI's size, on a synthetic crawl state (by hand, not in CI).
#
# usage: scripts/bench-scale.sh [--scale 0.05] [--seed 1] [--out DIR]
#
# 1. `cargo run --example synthetic_state` writes a crawl state of 927,088 × SCALE projects
#    drawn from PyPI's measured distribution (crawler/examples/synthetic_state.rs says how);
# 2. `mach-nix-crawler publish-db` publishes it: wall time and peak RSS (GNU time `%e %M`);
#    total published bytes (every file of the tree but index.json and latest), bytes per file,
#    the manifest's size when the tree has `manifests/` (the sharded format), else "n/a";
# 3. a simulated day (20,000 × SCALE new releases across 10,000 × SCALE projects) is added to
#    the state and published again: the bytes of the files the second publish added, and their
#    share of the total (what a daily upload costs and what a client that had the previous
#    snapshot fetches at most).
# PROFILE (default release) picks the cargo profile. The figures go to stdout and OUT/figures.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
scale=0.05 seed=1 out="$here/target/bench-scale"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --scale) scale=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown argument: $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
[[ -x /usr/bin/time ]] || { echo "GNU time not found: apt-get install time" >&2; exit 2; }
profile="${PROFILE:-release}"
cargo build --quiet --profile "$profile" -p crawler --bin mach-nix-crawler \
  --example synthetic_state --manifest-path "$here/Cargo.toml"
dir=$([[ "$profile" == dev ]] && echo debug || echo "$profile")
bin="$here/target/$dir/mach-nix-crawler"
gen="$here/target/$dir/examples/synthetic_state"

rm -rf "$out"
mkdir -p "$out"
state="$out/state" tree="$out/tree"

# The published tree's content files (relative paths), without the rewritten index files.
content() { (cd "$tree" && find . -type f ! -name '.*' ! -name index.json ! -name latest | sort); }
bytes_of() { (cd "$tree" && xargs -r stat -c %s | awk '{s += $1} END {print s + 0}'); }
json_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['snapshots'][-1][sys.argv[2]])" "$tree/index.json" "$1"; }

/usr/bin/time -f '%e %M' -o "$out/generate.time" "$gen" --state "$state" --scale "$scale" --seed "$seed"
read -r gen_s gen_kb < "$out/generate.time"
state_size=$(du -sh "$state" | cut -f1)
/usr/bin/time -f '%e %M' -o "$out/publish.time" "$bin" publish-db --state "$state" --out "$tree" > "$out/publish.out"
read -r pub_s pub_kb < "$out/publish.time"
content > "$out/before.txt"
total=$(bytes_of < "$out/before.txt")
files=$(json_field files) releases=$(json_field releases) projects=$(json_field projects)
pin=$(cat "$tree/latest")
manifest="n/a (single-file format)"
[[ -f "$tree/manifests/$pin" ]] && manifest="$(stat -c %s "$tree/manifests/$pin") bytes"

"$gen" --state "$state" --scale "$scale" --seed "$seed" --add-day 1 2> "$out/day.log"
/usr/bin/time -f '%e %M' -o "$out/publish-day.time" "$bin" publish-db --state "$state" --out "$tree" > "$out/publish-day.out"
read -r day_s day_kb < "$out/publish-day.time"
content > "$out/after.txt"
new_bytes=$(comm -13 "$out/before.txt" "$out/after.txt" | bytes_of)
new_files=$(comm -13 "$out/before.txt" "$out/after.txt" | wc -l)
day_files=$(( $(json_field files) - files ))

{
  echo "scale $scale (seed $seed): $projects projects, $releases releases, $files files"
  echo "state: $state_size written in ${gen_s}s (peak RSS $((gen_kb / 1024)) MiB)"
  echo "publish-db: ${pub_s}s wall, peak RSS $((pub_kb / 1024)) MiB"
  echo "published: $total bytes, $(awk -v t="$total" -v f="$files" 'BEGIN {printf "%.1f", t / f}') bytes per file"
  echo "manifest: $manifest"
  echo "day: $(tail -n 1 "$out/day.log" | cut -d' ' -f1) projects, $day_files new files"
  echo "publish-db after the day: ${day_s}s wall, peak RSS $((day_kb / 1024)) MiB"
  echo "new bytes: $new_bytes in $new_files files = $(awk -v n="$new_bytes" -v t="$total" 'BEGIN {printf "%.2f", 100 * n / t}')% of the total"
} | tee "$out/figures.txt"
