#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then checks
# formatting and lints and runs every test once (one build). `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d ../shared/data ]; then
  echo "error: ../shared/data is missing: the tests read the shared resolver scenarios and conda data from there" >&2
  exit 1
fi

# Nix (Debian's nix-bin) for the evaluation and nix-build tests.
bash scripts/install-nix.sh

# uv, the peer the resolver is compared with (agreement tests).
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check uv
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
profile=default
if [ "${CI:-}" = "true" ]; then profile=ci; fi
cargo nextest run --workspace --locked --profile "$profile" "$@"
