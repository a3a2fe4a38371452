# Builder of the stub's buildPythonPackage (run by /bin/sh with an empty environment PATH).
# Installs a wheel, or builds an sdist with the build path on PYTHONPATH, into $out/$sitePackages
# with the host's pip (no network: --no-index). As nixpkgs' stdenv, it runs the phases' hooks in
# one shell, in nixpkgs' order: preUnpack, postUnpack, sourceRoot (else the one unpacked
# directory), prePatch, patches (with patchFlags, default -p1), postPatch, preConfigure,
# postConfigure, preBuild, the build of the current directory, postFixup, then the phases named
# in preDistPhases (each the script in the variable of that name). A `cd` in one of them moves
# what is built. unpackPhase and setSourceRoot are not run (tar unpacks).
set -eu
PATH=/usr/bin:/bin
export HOME="$TMPDIR" PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore

# The store path is named <hash>-<file name>; pip needs the real file name.
file=$(basename "$src")
file=${file#*-}
work="$TMPDIR/work"
mkdir -p "$work"
cp "$src" "$work/$file"

case "$kind" in
wheel)
    if [ -n "$patches" ]; then
        echo "stub buildPythonPackage: patches given for the wheel $file" >&2
        exit 1
    fi
    "$hostPython" -m pip install --no-deps --no-index --target "$out/$sitePackages" "$work/$file"
    ;;
source)
    eval "${preUnpack:-}"
    mkdir "$work/unpacked"
    tar -xf "$work/$file" -C "$work/unpacked"
    cd "$work/unpacked"
    eval "${postUnpack:-}"
    if [ -n "${sourceRoot:-}" ]; then
        cd "$sourceRoot"
    else
        set -- "$work"/unpacked/*
        if [ "$#" -ne 1 ] || [ ! -d "$1" ]; then
            echo "stub buildPythonPackage: $file does not unpack to one directory" >&2
            exit 1
        fi
        cd "$1"
    fi
    eval "${prePatch:-}"
    for patch_file in $patches; do
        echo "applying $patch_file"
        # shellcheck disable=SC2086 # patchFlags is a list of flags
        patch ${patchFlags:--p1} <"$patch_file"
    done
    eval "${postPatch:-}"
    eval "${preConfigure:-}"
    eval "${postConfigure:-}"
    eval "${preBuild:-}"
    PYTHONPATH="$buildPythonPath" "$hostPython" -m pip install --no-deps --no-index \
        --no-build-isolation --target "$out/$sitePackages" .
    ;;
*)
    echo "stub buildPythonPackage: unknown kind $kind" >&2
    exit 1
    ;;
esac
eval "${postFixup:-}"
for phase in ${preDistPhases:-}; do
    eval "script=\${$phase:-}"
    eval "$script"
done
