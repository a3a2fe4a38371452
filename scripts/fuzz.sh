#!/usr/bin/env bash
# Run every cargo-fuzz target for SECONDS each (default 600), seeded from committed fixtures:
# `CRATE/fuzz/seeds/TARGET/` when that directory exists (one seed set per target, as in
# resolver/fuzz), else `CRATE/fuzz/seeds/` (a crate with one target, as db-format/fuzz).
# Installs cargo-fuzz when missing. The machine's toolchain is stable: RUSTC_BOOTSTRAP lets
# cargo-fuzz use the sanitizer flags it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for fuzz_dir in */fuzz; do
  crate="$(dirname "$fuzz_dir")"
  for target in $(cd "$crate" && cargo fuzz list); do
    mkdir -p "$fuzz_dir/corpus/$target"
    echo "== $crate/$target for ${seconds}s"
    seeds=fuzz/seeds
    [ -d "$fuzz_dir/seeds/$target" ] && seeds="fuzz/seeds/$target"
    (cd "$crate" && cargo fuzz run "$target" "fuzz/corpus/$target" "$seeds" -- -max_total_time="$seconds")
  done
done
