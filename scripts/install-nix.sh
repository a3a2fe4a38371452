#!/bin/sh
# Install Nix from Debian (package nix-bin) and prepare it so that `nix-build` works as root
# without a daemon, as the Nix tests of mach-nix need (see ../shared/NIX-HERE.md); also the host
# CPython with pip that the tests' nixpkgs stub builds with.
# Idempotent: running it again changes nothing. CI calls it before the test suite.
set -eu

if [ "$(id -u)" -ne 0 ]; then
    echo "install-nix.sh: must run as root (it installs a Debian package and creates /nix)" >&2
    exit 1
fi

if ! command -v nix-instantiate >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends nix-bin
fi

# The store and state directories a single-user (root, no daemon) Nix writes to.
mkdir -p /nix/store /nix/var/nix/db /nix/var/nix/gcroots /nix/var/nix/profiles /nix/var/nix/temproots \
    /nix/var/nix/userpool /nix/var/log/nix/drvs

# The sandbox does not work with Debian's package; builds run as the calling user when the
# tests pass `--option build-users-group ""`. Keep an existing nix.conf, only add what is missing.
mkdir -p /etc/nix
touch /etc/nix/nix.conf
grep -q '^sandbox' /etc/nix/nix.conf || echo 'sandbox = false' >>/etc/nix/nix.conf
# Debian's package creates no `nixbld` build users; without them Nix refuses to build
# ("the group 'nixbld' ... does not exist"), so build as the calling user (root).
if ! getent group nixbld >/dev/null 2>&1; then
    grep -q '^build-users-group' /etc/nix/nix.conf || echo 'build-users-group =' >>/etc/nix/nix.conf
fi

# The nixpkgs stub of the tests (tests/nix-stub) builds Python packages with the host's CPython
# and pip; Debian's python3 is CPython 3.11 and needs python3-pip for that.
if ! /usr/bin/python3 -m pip --version >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends python3 python3-pip
fi

# A smoke test: evaluation works offline.
result=$(nix-instantiate --eval --expr '1 + 1')
if [ "$result" != "2" ]; then
    echo "install-nix.sh: nix-instantiate does not evaluate (got '$result')" >&2
    exit 1
fi
echo "install-nix.sh: $(nix-instantiate --version) ready"
