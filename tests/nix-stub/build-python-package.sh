# Builder of the stub's buildPythonPackage (run by /bin/sh with an empty environment PATH).
# Installs a wheel, or builds an sdist (after applying `patches`) with the build system on
# PYTHONPATH, into $out/$sitePackages with the host's pip. No network: --no-index.
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
    mkdir "$work/unpacked"
    tar -xf "$work/$file" -C "$work/unpacked"
    set -- "$work"/unpacked/*
    if [ "$#" -ne 1 ] || [ ! -d "$1" ]; then
        echo "stub buildPythonPackage: $file does not unpack to one directory" >&2
        exit 1
    fi
    source_dir="$1"
    for patch_file in $patches; do
        echo "applying $patch_file"
        patch -d "$source_dir" -p1 <"$patch_file"
    done
    PYTHONPATH="$buildPythonPath" "$hostPython" -m pip install --no-deps --no-index \
        --no-build-isolation --target "$out/$sitePackages" "$source_dir"
    ;;
*)
    echo "stub buildPythonPackage: unknown kind $kind" >&2
    exit 1
    ;;
esac
