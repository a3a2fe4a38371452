# A small stand-in for nixpkgs: only the functions mach-nix's generated Nix calls, with the same
# names and argument shapes as nixpkgs (24.05 or later), so that generated files evaluate and
# build here, where nixpkgs cannot be downloaded.
#
# What is real: `fetchurl` is a fixed-output fetch (Nix's builtin fetcher, verified against the
# sha256), `buildPythonPackage` installs the fetched wheel (or builds the fetched sdist) with the
# host's CPython and pip, running nixpkgs' hooks in nixpkgs' order (`preUnpack`, `postUnpack`,
# `sourceRoot`, `prePatch`, `patches` with `patchFlags`, `postPatch`, `preConfigure`,
# `postConfigure`, `preBuild`, the build in the current directory, `postFixup`, the
# `preDistPhases`) in one shell, so a `cd` in a phase moves the build; its
# build path (PYTHONPATH) is, as in nixpkgs, the run-time closure of `build-system` and of the
# package's own dependencies, or with `strictBuildPath = true` of `build-system` only.
# `python.withPackages` makes a virtual environment of the closure of `dependencies` /
# `propagatedBuildInputs`. `packaging` is real (the PyPI wheel). What is not: autoPatchelfHook,
# the manylinux libraries and the other nixpkgs packages are empty marker derivations or
# definitions with unfetchable sources of their own (the host's glibc serves the wheels), and
# tests are never run (`doCheck` is only recorded).
#
# Use it as <nixpkgs>: `nix-build out.nix -I nixpkgs=tests/nix-stub`, or import it:
# `import ./tests/nix-stub { pythonPackagesJson = ./fixture.json; }`.
{
  # The host interpreter the stub's `python311` runs (CPython 3.11 with pip).
  hostPython ?
    let fromEnv = builtins.getEnv "MACH_NIX_HOST_PYTHON";
    in if fromEnv != "" then fromEnv else "/usr/bin/python3",
  # A `--nixpkgs-json` file (`[{ attribute, pname, version }]`): the Python packages this
  # "nixpkgs" has. Each is a source package with an (unfetchable) source of its own.
  pythonPackagesJson ? null,
  # Per-attribute extra arguments of those packages, `{ foo = ps: { patches = [ … ]; }; }`,
  # merged over the stub's own (see `nixpkgsExtra` below).
  pythonPackagesExtra ? { },
  # nixpkgs overlays (`self: super: { … }`) applied to the top-level set, as nixpkgs' own
  # `overlays` argument; `appendOverlays` adds more.
  overlays ? [ ],
  # Put only the run-time closure of `build-system` on an sdist's build path, not (as nixpkgs
  # does) also the package's own dependencies: a build that works here does not rely on them.
  strictBuildPath ? false,
  ...
}@arguments:

let
  lib = {
    fix = f: let x = f x; in x;
    extends = overlay: base: self: let super = base self; in super // overlay self super;
    warnIf = cond: message: value: if cond then builtins.trace "warning: ${message}" value else value;
    inNixShell = builtins.getEnv "IN_NIX_SHELL" != "";
    genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
    # Source filtering is recorded, not done: nothing here copies a source tree to build it.
    cleanSource = src: { inherit src; filter = null; };
    cleanSourceWith = { src, filter }: { inherit src filter; };
    licenses.mit = { spdxId = "MIT"; };
  };

  # An empty derivation standing for a nixpkgs package the stub does not really provide.
  marker = name: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "/bin/mkdir $out" ];
  };

  # What nix-shell sources from `$stdenv/setup`: puts the inputs' bin/ on PATH and runs hooks,
  # like nixpkgs' stdenv does.
  stdenv = derivation {
    name = "stdenv-stub";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" ''
      /bin/mkdir $out
      /bin/cat >$out/setup <<'SETUP'
      for input in $nativeBuildInputs $buildInputs; do
          if [ -d "$input/bin" ]; then PATH="$input/bin:$PATH"; fi
      done
      export PATH
      runHook() { eval "''${!1:-}"; }
      SETUP
    '' ];
  };

  # How the stub's nixpkgs writes some packages (written for the tests, in nixpkgs' style, not
  # copied from it): native inputs, C libraries among the propagated inputs, patches (which add a
  # module, so a build shows them applied) and phases that fit only nixpkgs' own source of them.
  nixpkgsExtra = {
    requests = ps: {
      nativeBuildInputs = [ (marker "pkg-config") ];
      buildInputs = [ (marker "openssl") ];
      propagatedBuildInputs = [ ps.certifi ps.idna (marker "libffi") ];
      patches = [ ./patches/requests-nixpkgs.patch ];
    };
    # A package with an optional C extension, from a GitHub checkout (unpacked as `source`).
    charset-normalizer = ps: {
      nativeBuildInputs = [ (marker "mypy-native") ];
      buildInputs = [ (marker "libcharset") ];
      propagatedBuildInputs = [ (marker "libiconv") ];
      patches = [ ./patches/charset-normalizer-nixpkgs.patch ];
      patchFlags = [ "-p1" "--forward" ];
      preUnpack = "test -d /nixpkgs-checkout";
      # Recorded, not run by the stub's builder (which unpacks with tar itself).
      unpackPhase = "cp -r $src source";
      setSourceRoot = "sourceRoot=source";
      postUnpack = "test -d source/.git";
      sourceRoot = "source";
      prePatch = "test -f pyproject.toml";
      postPatch = "echo 'nixpkgs checkout' >NIXPKGS";
      preConfigure = "export CHARSET_NORMALIZER_USE_MYPYC=0";
      postConfigure = "pushd src";
      preBuild = "cd src/charset_normalizer/..";
    };
  };

  # An unfetchable source standing for nixpkgs' own source of a package (a GitHub checkout, a
  # file of another version).
  nixpkgsSource = name: fetchurl {
    url = "https://nixpkgs.invalid/${name}.tar.gz";
    sha256 = builtins.hashString "sha256" name;
  };

  fetchurl = { url, sha256, name ? baseNameOf url }:
    import <nix/fetchurl.nix> { inherit url sha256 name; };

  mkPython = { attribute, pythonVersion }:
    let
      sitePackages = "lib/python${pythonVersion}/site-packages";

      # Everything a package needs at run time: its Python dependencies, transitively.
      closure = packages: map (entry: entry.package) (builtins.genericClosure {
        startSet = map (package: { key = package.outPath; inherit package; }) packages;
        operator = entry:
          map (package: { key = package.outPath; inherit package; })
            (builtins.filter (input: input ? pythonModule)
              (entry.package.dependencies ++ entry.package.propagatedBuildInputs));
      });

      buildPythonPackage = args@{
        pname, version, src,
        format ? null, pyproject ? null,
        dependencies ? [ ], propagatedBuildInputs ? [ ], build-system ? [ ],
        nativeBuildInputs ? [ ], buildInputs ? [ ], patches ? [ ],
        doCheck ? true, disabled ? false, passthru ? { }, ...
      }:
        assert pyproject != null -> format == null;
        if disabled then throw "${pname}-${version} not supported for interpreter ${attribute}" else
        let
          kind = if format == "wheel" then "wheel" else "source";
          # As in nixpkgs, every other argument (phases, flags, `postFixup`, …) is an
          # environment variable of the build.
          drv = derivation (removeAttrs args [ "passthru" "meta" "dependencies" ] // {
            name = "python${pythonVersion}-${pname}-${version}";
            system = builtins.currentSystem;
            builder = "/bin/sh";
            args = [ ./build-python-package.sh ];
            inherit src kind hostPython sitePackages patches nativeBuildInputs buildInputs;
            # As in nixpkgs, the dependencies are inputs of the derivation: a dependency cycle
            # is an infinite recursion, a changed dependency a different derivation.
            propagatedBuildInputs = dependencies ++ propagatedBuildInputs;
            build-system = build-system;
            # Importable during an sdist build: the build system and its run-time closure, and
            # (as nixpkgs puts propagated inputs on the build path) the package's own
            # dependencies, unless `strictBuildPath`.
            buildPythonPath = builtins.concatStringsSep ":"
              (map (package: "${package}/${sitePackages}") (closure (build-system
                ++ (if strictBuildPath then [ ]
                    else builtins.filter (input: input ? pythonModule) (dependencies ++ propagatedBuildInputs)))));
            doCheck = if doCheck then "1" else "";
          });
        in
        drv // passthru // {
          inherit pname version src format pyproject dependencies propagatedBuildInputs
            build-system nativeBuildInputs buildInputs patches doCheck disabled passthru;
          pythonModule = attribute;
          overridePythonAttrs = f:
            buildPythonPackage (args // (if builtins.isFunction f then f args else f));
        };

      # The package set nixpkgs would have: buildPythonPackage, setuptools (the default build
      # system) and the packages of `pythonPackagesJson`.
      # nixpkgs' buildPythonApplication is buildPythonPackage for programs; here it is the same
      # build, marked so that a test can tell which one was called.
      buildPythonApplication = args:
        buildPythonPackage (args // { passthru = (args.passthru or { }) // { application = true; }; });

      basePackages = self:
        let
          entries = if pythonPackagesJson == null then [ ]
            else builtins.fromJSON (builtins.readFile pythonPackagesJson);
          nixpkgsPackage = entry:
            let
              own = nixpkgsExtra.${entry.attribute} or (ps: { });
              given = pythonPackagesExtra.${entry.attribute} or (ps: { });
              extra = ps: own ps // given ps;
            in self.buildPythonPackage ({
              inherit (entry) pname version;
              src = nixpkgsSource "${entry.pname}-${entry.version}";
              pyproject = true;
            } // extra self);
        in
        {
          inherit buildPythonPackage buildPythonApplication;
          # nixpkgs' build backends, each bootstrapped from its own source with what fits only
          # that source: setuptools from GitHub with a patch of its setup.cfg there, flit-core
          # from the flit repository (the backend is its subdirectory), hatchling from the hatch
          # repository (the backend is `backend/`).
          setuptools = self.buildPythonPackage {
            pname = "setuptools";
            version = "75.1.0";
            src = nixpkgsSource "setuptools-github";
            pyproject = true;
            patches = [ ./patches/setuptools-tag-date.patch ];
          };
          flit-core = self.buildPythonPackage {
            pname = "flit-core";
            version = "3.9.0";
            src = nixpkgsSource "flit-github";
            pyproject = true;
            postPatch = "cd flit_core";
          };
          hatchling = self.buildPythonPackage {
            pname = "hatchling";
            version = "1.25.0";
            src = nixpkgsSource "hatch-github";
            pyproject = true;
            build-system = [ ];
            dependencies = [ self.packaging ];
            preBuild = "cd backend";
          };
          # Real: the PyPI wheel, as the build-time checks of mach-nix's output read
          # requirements with nixpkgs' packaging.
          packaging = self.buildPythonPackage {
            pname = "packaging";
            version = "24.2";
            format = "wheel";
            src = fetchurl {
              url = "https://files.pythonhosted.org/packages/88/ef/eb23f262cca3c0c4eb7ab1933c3b1f03d021f2c48f54763065b6f0e321be/packaging-24.2-py3-none-any.whl";
              sha256 = "09abb1bccd265c01f4a3aa3f7a7db064b36514d2cba19a2f694fe6150451a759";
            };
            doCheck = false;
          };
        } // builtins.listToAttrs (map (entry: {
          name = entry.attribute;
          value = nixpkgsPackage entry;
        }) entries);

      makePython = { packageOverrides ? (self: super: { }), self ? null }:
        let
          pkgs = lib.fix (lib.extends packageOverrides basePackages);
          interpreter = {
            inherit pythonVersion sitePackages pkgs hostPython;
            # nixpkgs: the interpreter's executable, an absolute path.
            interpreter = hostPython;
            executable = "python${pythonVersion}";
            override = arguments: makePython ({ inherit packageOverrides; } // arguments);
            withPackages = select:
              let
                packages = closure (select pkgs);
                environment = derivation {
                  name = "python${pythonVersion}-env";
                  system = builtins.currentSystem;
                  builder = "/bin/sh";
                  args = [ ./python-env.sh ];
                  inherit hostPython sitePackages packages;
                };
              in
              environment // {
                inherit packages;
                # For nix-shell (as nixpkgs' `.env`): the environment's python first on PATH.
                env = derivation {
                  name = "interactive-python${pythonVersion}-environment";
                  system = builtins.currentSystem;
                  builder = "/bin/sh";
                  args = [ "-c" "echo 'this derivation is for nix-shell only' >&2; exit 1" ];
                  inherit stdenv;
                  nativeBuildInputs = [ environment ];
                };
              };
          };
        in
        interpreter;
    in
    makePython { };

  python311 = mkPython { attribute = "python311"; pythonVersion = "3.11"; };

  # The top-level set, a fixpoint as in nixpkgs so that overlays reach what refers to them
  # (`python3` is the final `python311`).
  topLevel = self: {
    inherit lib fetchurl stdenv python311;
    appendOverlays = more: import ./. (arguments // { overlays = overlays ++ more; });
    # nixpkgs' callPackage: the function's arguments from this set, then `overrides`.
    callPackage = fn: overrides:
      let f = if builtins.isFunction fn then fn else import fn;
      in f (builtins.intersectAttrs (builtins.functionArgs f) self // overrides);
    # Not a Rust build: a derivation that fails when built, carrying the arguments it was given
    # (`rustArguments`), so that package definitions can be evaluated and checked.
    rustPlatform.buildRustPackage = args@{ pname, version, ... }:
      derivation {
        name = "${pname}-${version}";
        system = builtins.currentSystem;
        builder = "/bin/sh";
        args = [ "-c" "echo 'the nixpkgs stub cannot build Rust packages' >&2; exit 1" ];
      } // { inherit pname version; rustArguments = args; };
  }
  # The stub builds with the host's CPython 3.11 only: other interpreters say so.
  // builtins.listToAttrs (map (attribute: {
    name = attribute;
    value = throw "the nixpkgs stub (tests/nix-stub) has only python311, the host's CPython 3.11; generate for it with `mach-nix gen -p 3.11`";
  }) [ "python39" "python310" "python312" "python313" "python314" ])
  // {
    # The shell nix-shell runs (it asks <nixpkgs> for it): the host's bash.
    bashInteractive = derivation {
      name = "bash-interactive-host";
      system = builtins.currentSystem;
      builder = "/bin/sh";
      args = [ "-c" "/bin/mkdir -p $out/bin && /bin/ln -s /bin/bash $out/bin/bash" ];
    };
    python3 = self.python311;
    autoPatchelfHook = marker "auto-patchelf-hook";
    # For conda packages: nixpkgs' `stdenv.mkDerivation`, evaluated but not built (the
    # stub has no toolchain and no patchelf): a derivation that fails when built, carrying the
    # arguments it was given (`mkDerivationArguments`); the unpacking tools are markers.
    stdenv = stdenv // {
      mkDerivation = args@{ pname, version, ... }:
        derivation {
          name = "${pname}-${version}";
          system = builtins.currentSystem;
          builder = "/bin/sh";
          args = [ "-c" "echo 'the nixpkgs stub cannot build stdenv.mkDerivation packages' >&2; exit 1" ];
        } // { inherit pname version; mkDerivationArguments = args; };
    };
    unzip = marker "unzip";
    zstd = marker "zstd";
    bzip2 = marker "bzip2";
    pythonManylinuxPackages =
      let
        manylinux1 = map marker [ "glibc" "libX11" "libXext" "libXrender" "libICE" "libSM" "libGL" "glib" "ncurses" ];
      in {
        inherit manylinux1;
        manylinux2010 = manylinux1;
        manylinux2014 = manylinux1 ++ [ (marker "expat") (marker "libxcrypt-legacy") ];
      };
    # Not an image: a JSON file of what nixpkgs' buildLayeredImage would put into one (name, tag,
    # the store paths of `contents`, `config`), with those arguments as attributes.
    dockerTools.buildLayeredImage = args@{ name, tag ? "latest", contents ? [ ], config ? { }, ... }:
      derivation {
        name = "docker-image-${name}.json";
        system = builtins.currentSystem;
        builder = "/bin/sh";
        args = [ "-c" "echo \"$image\" >$out" ];
        image = builtins.toJSON { inherit name tag config; contents = map toString contents; };
      } // { imageArguments = args; };
  };
in
lib.fix (builtins.foldl' (base: overlay: lib.extends overlay base) topLevel overlays)
