# Runs INSIDE the sandbox (no network, read-only system, writable $MACH_NIX_BUILD only).
# Layout: $MACH_NIX_BUILD/src = the unpacked sdist, /env = installed build requirements
# (read-only), /out = where the backend writes. The outcome goes to $MACH_NIX_BUILD/result.json:
#   {"status": "ok", "metadata": "<path of METADATA>", "hook": "..."}
#   {"status": "requires", "requires": [...]}   (the backend asked for more build requirements)
# Any failure leaves a traceback on stderr and a non-zero exit.
import importlib, importlib.metadata, json, os, re, site, sys, zipfile

BUILD = os.environ["MACH_NIX_BUILD"]
site.addsitedir(os.path.join(BUILD, "env"))
SRC, OUT = os.path.join(BUILD, "src"), os.path.join(BUILD, "out")
os.chdir(SRC)

backend_spec, backend_path = "setuptools.build_meta:__legacy__", []
if os.path.exists("pyproject.toml"):
    import tomllib
    with open("pyproject.toml", "rb") as f:
        system = tomllib.load(f).get("build-system", {})
    if system.get("build-backend"):
        backend_spec = system["build-backend"]
        backend_path = system.get("backend-path", [])
    elif "requires" in system:
        backend_spec = "setuptools.build_meta:__legacy__"
for entry in reversed(backend_path):
    sys.path.insert(0, os.path.join(SRC, entry))
if backend_spec == "setuptools.build_meta:__legacy__":
    # setup.py imports its own helpers from its directory, as `python setup.py` would allow.
    sys.path.insert(0, SRC)

module, _, attrs = backend_spec.partition(":")
backend = importlib.import_module(module.strip())
for attr in filter(None, attrs.strip().split(".")):
    backend = getattr(backend, attr)


def result(**fields):
    with open(os.path.join(BUILD, "result.json"), "w") as f:
        json.dump(fields, f)


get_requires = getattr(backend, "get_requires_for_build_wheel", None)
requires = list(get_requires({})) if get_requires else []
missing = []
for requirement in requires:
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not name:
        continue
    try:
        importlib.metadata.distribution(name.group(1))
    except importlib.metadata.PackageNotFoundError:
        missing.append(requirement)
if missing and os.environ.get("MACH_NIX_BUILD_ROUND") == "1":
    result(status="requires", requires=requires)
    sys.exit(0)

os.makedirs(OUT, exist_ok=True)
prepare = getattr(backend, "prepare_metadata_for_build_wheel", None)
if prepare is not None:
    name = prepare(OUT, {})
    result(status="ok", metadata=os.path.join(OUT, name, "METADATA"), hook="prepare_metadata_for_build_wheel")
else:
    wheel = backend.build_wheel(OUT, {})
    with zipfile.ZipFile(os.path.join(OUT, wheel)) as archive:
        member = next(n for n in archive.namelist()
                      if n.count("/") == 1 and n.split("/")[0].endswith(".dist-info") and n.endswith("/METADATA"))
        target = os.path.join(OUT, "METADATA")
        with open(target, "wb") as f:
            f.write(archive.read(member))
    result(status="ok", metadata=target, hook="build_wheel")
