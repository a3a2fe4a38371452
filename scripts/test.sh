#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then checks
# formatting and lints and runs every test once (one build). `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# The test runner.
if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

# Archive tools (the conda unpack test), GNU time, and python3-venv (the live pip install test).
missing=()
for tool in tar bzip2 zstd zip unzip; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ -x /usr/bin/time ] || missing+=(time)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Nix (Debian's nix-bin) for the evaluation and nix-build tests.
bash scripts/install-nix.sh

# bubblewrap, the sandbox of the crawler's sdist metadata builds.
bash scripts/install-sandbox.sh

# uv, the peer the resolver is compared with (agreement tests).
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check uv
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
profile=default
if [ "${CI:-}" = "true" ]; then profile=ci; fi
cargo nextest run --workspace --locked --profile "$profile" "$@"
