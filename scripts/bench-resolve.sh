#!/usr/bin/env bash
# Time `mach-nix gen` (whole process, warm snapshot) against `uv pip compile --offline` (warm
# cache) on the same requirement files, in the same run, and print medians and peak RSS ratios.
#
# usage: scripts/bench-resolve.sh --db-dir DIR [--db sha256:HEX] [--python 3.12] \
#          [--exclude-newer 2025-06-01T00:00:00Z] [--runs 11] REQUIREMENTS.txt...
#
# The snapshot must cover the requirement closures (crawl them with
# `mach-nix-crawler crawl --requirements FILE --with-deps --as-of DATE`, then `publish-db`).
# uv's cache is warmed once online with the same flags, then every timed uv run is --offline.
# Both target x86_64-linux / manylinux_2_39 (mach-nix's default baseline).
#
# usage: scripts/bench-resolve.sh --limits [--runs 3]
#
# Times `mach-nix gen` on the universes designed to blow up a resolver (tests/limits.rs, written
# by `cargo run --example limit_universes`): 10,000-deep chains, 5,000 requirements, pigeonhole
# conflicts that only the step bound stops; checks each exit code and prints median time and
# peak RSS (figures in resolver/README.md, "Limits").
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)

if [[ "${1:-}" == "--limits" ]]; then
  runs=3
  [[ "${2:-}" == "--runs" ]] && runs=$3
  [[ -x /usr/bin/time ]] || { echo "GNU time not found: apt-get install time" >&2; exit 2; }
  cargo build --quiet --release -p resolver --bin mach-nix --example limit_universes \
    --manifest-path "$here/Cargo.toml"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "$here/target/release/examples/limit_universes" "$work" >/dev/null
  printf '%-24s %5s %10s %9s\n' case exit 'median s' 'RSS MiB'
  for case_dir in "$work"/*/; do
    name=$(basename "$case_dir") expect=$(cat "$case_dir/expect")
    times=() rss=0
    for _ in $(seq "$runs"); do
      set +e
      /usr/bin/time -f '%e %M' -o "$work/time" "$here/target/release/mach-nix" gen --format pylock \
        --db "$case_dir/snapshot.mnxdb" -r "$case_dir/requirements.txt" -o /dev/null 2>"$work/err"
      code=$?
      set -e
      [[ "$code" == "$expect" ]] || { echo "$name: exit $code, expected $expect" >&2; cat "$work/err" >&2; exit 1; }
      read -r t m < <(tail -n 1 "$work/time")
      times+=("$t")
      ((m > rss)) && rss=$m
    done
    median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf '%-24s %5s %10s %9.1f\n' "$name" "$code" "$median" "$(echo "$rss / 1024" | bc -l)"
  done
  exit 0
fi

db_dir="" db="" python="3.12" exclude_newer="" runs=11
files=()
while (($#)); do
  case "$1" in
    --db-dir) db_dir=$2; shift 2 ;;
    --db) db=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --exclude-newer) exclude_newer=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) files+=("$1"); shift ;;
  esac
done
[[ -n "$db_dir" && ${#files[@]} -gt 0 ]] || { sed -n '2,11p' "$0" >&2; exit 2; }
command -v uv >/dev/null || { echo "uv not found: pip install uv" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "GNU time not found: apt-get install time" >&2; exit 2; }

cargo build --quiet --release -p resolver --bin mach-nix --manifest-path "$here/Cargo.toml"
export MACH_NIX="$here/target/release/mach-nix" DB_DIR="$db_dir" DB="$db" PY="$python" \
  EXCLUDE_NEWER="$exclude_newer" RUNS="$runs"

exec python3 - "${files[@]}" <<'PYTHON'
import os, statistics, subprocess, sys, time

env = os.environ
ours_common = ["--format", "pylock", "-p", env["PY"], "--db-dir", env["DB_DIR"]]
if env["DB"]:
    ours_common += ["--db", env["DB"]]
uv_common = ["--python-version", env["PY"], "--python-platform", "x86_64-manylinux_2_39",
             "--no-header", "--quiet"]
if env["EXCLUDE_NEWER"]:
    uv_common += ["--exclude-newer", env["EXCLUDE_NEWER"]]
runs = int(env["RUNS"])


def measure(cmd):
    """Wall time (s) and peak RSS (KiB) of one whole command. RSS comes from GNU time: the
    rusage of a child forked from this Python would count Python's own pages before exec."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr}")
    return elapsed, int(proc.stderr.strip().splitlines()[-1])


print(f"{'requirements':28} {'mach-nix ms':>11} {'uv ms':>8} {'speedup':>8} "
      f"{'RSS MiB':>8} {'uv MiB':>7} {'RSS ratio':>9}")
speedups, rss_ratios = [], []
for req in sys.argv[1:]:
    ours = [env["MACH_NIX"], "gen", "-r", req, *ours_common]
    theirs = ["uv", "pip", "compile", req, *uv_common]
    subprocess.run(ours, check=True, stdout=subprocess.DEVNULL)    # warm the page cache
    subprocess.run(theirs, check=True, stdout=subprocess.DEVNULL)  # warm uv's cache (online)
    a = [measure(ours) for _ in range(runs)]
    b = [measure([*theirs, "--offline"]) for _ in range(runs)]
    ta, tb = statistics.median(t for t, _ in a), statistics.median(t for t, _ in b)
    ra, rb = max(r for _, r in a), max(r for _, r in b)
    speedups.append(tb / ta)
    rss_ratios.append(ra / rb)
    print(f"{os.path.basename(req):28} {ta*1000:11.1f} {tb*1000:8.1f} {tb/ta:7.1f}x "
          f"{ra/1024:8.1f} {rb/1024:7.1f} {ra/rb:9.2f}")
print(f"median speedup {statistics.median(speedups):.1f}x, "
      f"median peak-RSS ratio {statistics.median(rss_ratios):.2f} (mach-nix / uv)")
PYTHON
