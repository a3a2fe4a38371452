# Builder of the stub's python.withPackages: a virtual environment of the host interpreter
# (no system site-packages) whose site-packages links every package of the closure.
set -eu
PATH=/usr/bin:/bin

mkdir -p "$out/bin" "$out/$sitePackages"
for package in $packages; do
    if [ -d "$package/$sitePackages" ]; then
        cp -rsf "$package/$sitePackages/." "$out/$sitePackages/"
    fi
done

version=$("$hostPython" -c 'import platform; print(platform.python_version())')
case "$sitePackages" in
*"/python${version%.*}/"*) ;;
*)
    echo "stub python.withPackages: host python $hostPython is $version, not the one of $sitePackages" >&2
    exit 1
    ;;
esac
cat >"$out/pyvenv.cfg" <<CFG
home = $(dirname "$hostPython")
include-system-site-packages = false
version = $version
CFG
ln -s "$hostPython" "$out/bin/python3"
ln -s python3 "$out/bin/python"
