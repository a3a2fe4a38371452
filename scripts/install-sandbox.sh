#!/usr/bin/env bash
# Installs bubblewrap (the sandbox the crawler's sdist metadata builds run in) from Debian when it
# is missing, and checks that it can actually create its namespaces here. Idempotent: does nothing
# when `bwrap` is already on PATH and works.
set -euo pipefail

if ! command -v bwrap >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-sandbox: bwrap is missing and apt-get is not available; install bubblewrap by hand" >&2
        exit 1
    fi
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq bubblewrap >/dev/null
fi

# A sandbox that cannot start is as useless as a missing one: say so now, not in the tests.
if ! bwrap --unshare-all --die-with-parent --ro-bind / / --proc /proc --dev /dev /bin/true; then
    echo "install-sandbox: bwrap is installed but cannot create namespaces here" \
         "(user namespaces restricted? Debian: sysctl -w kernel.unprivileged_userns_clone=1;" \
         "Ubuntu >= 23.10: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0)" >&2
    exit 1
fi
echo "install-sandbox: $(bwrap --version) works"
