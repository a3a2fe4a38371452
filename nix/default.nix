# mach-nix as a Nix library: `mkPython { requirements = ''…''; }` and friends, resolved against a
# PyPI snapshot pinned by its hash. README.md documents the arguments, the override order and
# what was checked where.
#
#   mach-nix = import ./nix { pkgs = import <nixpkgs> { }; snapshot = { url = "…/packs/PIN.mnxpack"; sha256 = "FILE-SHA256"; }; };
#   mach-nix.mkPython { requirements = "requests\npandas"; }
{ pkgs ? import <nixpkgs> { }
  # The default interpreter of every function (each also takes `python`): an interpreter, or the
  # name of one in `pkgs` ("python311").
, python ? pkgs.python3
  # The snapshot to resolve against: `{ url; sha256; }`, one file: a pack (`packs/PIN.mnxpack`,
  # sha256 = the pack's own file hash, listed in index.json as `pack.sha256`) or a format-2
  # `PIN.mnxdb` (sha256 = PIN). Only needed when a function resolves (no `generated` given).
, snapshot ? null
  # The mach-nix resolver: a package with `bin/mach-nix`, or the absolute path of a `mach-nix`
  # executable as a string. Default: built from this repository with pkgs.rustPlatform.
, resolver ? null
}:

let
  helpers = import ./lib.nix;
  inherit (helpers) normalizeName requirementLines requirementName composeManyOverlays;

  interpreter = value:
    if builtins.isString value
    then pkgs.${value} or (throw "mach-nix: pkgs has no interpreter `${value}`")
    else value;

  # The nixpkgs attribute of an interpreter: `python311` for a CPython 3.11.
  interpreterAttribute = value:
    if builtins.isString value then value
    else "python${builtins.replaceStrings [ "." ] [ "" ] value.pythonVersion}";

  resolverExecutable =
    if resolver == null then "${pkgs.callPackage ./package.nix { }}/bin/mach-nix"
    else if builtins.isString resolver then resolver
    else "${resolver}/bin/mach-nix";

  buildSystem = pkgs.stdenv.buildPlatform.system or builtins.currentSystem;
  hostSystem = pkgs.stdenv.hostPlatform.system or builtins.currentSystem;

  # nixpkgs' Python packages as `--nixpkgs-json` lists them: every attribute of `python.pkgs` that
  # evaluates to a Python package with a pname and a version (aliases that throw and broken
  # definitions are left out).
  nixpkgsPackages = pythonInterpreter:
    let
      ps = pythonInterpreter.pkgs;
      entry = attribute:
        let
          value = ps.${attribute};
          found = builtins.tryEval (
            if builtins.isAttrs value && value ? pythonModule && value ? pname && value ? version
            then let e = { inherit attribute; inherit (value) pname version; }; in builtins.deepSeq e e
            else null);
        in
        if found.success then found.value else null;
    in
    builtins.filter (e: e != null) (map entry (builtins.attrNames ps));

  # The resolver run: `mach-nix gen` in a derivation whose output is the generated Nix file.
  # Importing it is the one import-from-derivation of this library.
  resolve = { requirements, providers, python }:
    let
      snapshotFile =
        if snapshot == null
        then throw "mach-nix: no snapshot to resolve against: import mach-nix with `snapshot = { url = …; sha256 = …; }`, or pass `generated` (the output of `mach-nix gen`)"
        else pkgs.fetchurl { inherit (snapshot) url sha256; name = "mach-nix-snapshot.mnxdb"; };
      nixpkgsJson = builtins.toFile "nixpkgs-python.json" (builtins.toJSON (nixpkgsPackages python));
      requirementsFile = builtins.toFile "requirements.txt" requirements;
    in
    derivation {
      name = "mach-nix-resolution.nix";
      system = buildSystem;
      builder = resolverExecutable;
      args = [
        "gen"
        "--requirement" requirementsFile
        "--db" snapshotFile
        "--python" python.pythonVersion
        "--system" hostSystem
        "--nixpkgs-json" nixpkgsJson
        "--output" (builtins.placeholder "out")
      ] ++ (if providers == { } then [ ] else [ "--providers" (helpers.providersSpec providers) ]);
    };

  # A mach-nix package of `packagesExtra` (from this library's buildPythonPackage/Application):
  # its requirements join the resolution and it is rebuilt with the resulting package set.
  isMachNixPackage = package: package ? machNix && package.machNix ? rebuildWith;

  # What every mk… function shares: the resolution, the composed overlay and the interpreter.
  prepare =
    { requirements ? ""
    , providers ? { }
    , packagesExtra ? [ ]
    , _ ? { }
    , overridesPre ? [ ]
    , overridesPost ? [ ]
    , tests ? false
    , python ? defaultPython
      # The output of `mach-nix gen` (or the default.nix of `mach-nix env`) to use instead of
      # running the resolver: then `requirements` and `providers` are not read.
    , generated ? null
    }:
    let
      basePython = interpreter python;
      extraMachNix = builtins.filter isMachNixPackage packagesExtra;
      extraOther = builtins.filter (p: !(isMachNixPackage p)) packagesExtra;
      nonPython = builtins.filter (p: !(p ? pythonModule)) extraOther;
      allRequirements = builtins.concatStringsSep "\n"
        ([ requirements ] ++ map (p: p.machNix.requirements) extraMachNix);
      resolverRun = resolve { requirements = allRequirements; inherit providers; python = basePython; };
      expression = if generated != null then generated else resolverRun;
      resolution = import expression { pkgs = pkgs; python = basePython; inherit tests; shell = false; };
      overrides = composeManyOverlays
        (overridesPre ++ [ resolution.overrides ] ++ overridesPost ++ [ (helpers.underscoreOverlay _) ]);
      finalPython = basePython.override { packageOverrides = overrides; self = finalPython; };
      extras = ps: map (p: p.machNix.rebuildWith ps) extraMachNix ++ extraOther;
      # The build systems of mach-nix packages in packagesExtra are resolved with the rest, but
      # are no part of the environment unless something asks for them at run time.
      runNames = map requirementName (requirementLines requirements
        ++ builtins.concatMap (p: requirementLines p.machNix.runRequirements) extraMachNix);
      buildOnly = builtins.filter (name: !(builtins.elem name runNames))
        (map requirementName (builtins.concatMap (p: p.machNix.buildRequirements) extraMachNix));
    in
    if nonPython != [ ]
    then throw "mach-nix: packagesExtra takes Python packages; `${(builtins.head nonPython).name or "?"}` is not one (put other tools into a shell's packages)"
    else {
      inherit overrides extras;
      python = finalPython;
      machNix = resolution.machNix // {
        # The Nix file the packages come from, and the resolver run that writes it (built only
        # when no `generated` was given).
        inherit expression resolverRun;
        requirements = allRequirements;
        environment = builtins.filter (name: !(builtins.elem name buildOnly)) resolution.machNix.environment;
      };
    };

  defaultPython = python;

  # A nixpkgs overlay replacing the interpreter (`python311` for a CPython 3.11) by one whose
  # package set has the resolved packages.
  mkOverlay = args: self: super:
    let attribute = interpreterAttribute (args.python or python);
    in { ${attribute} = (prepare (args // { python = super.${attribute}; })).python; };

  mkPython = args:
    let
      prepared = prepare args;
      environment = prepared.python.withPackages (ps:
        map (name: ps.${name}) prepared.machNix.environment ++ prepared.extras ps);
    in
    environment // { inherit (prepared) overrides python machNix; };

  # The build of a Python project from its source, with its dependencies resolved by mach-nix.
  # Name, version and requirements are read from `src` (pyproject.toml, requirements.txt) unless
  # given; every other argument goes to nixpkgs' builder.
  buildWith = builder: args@{ src, pname ? null, version ? null, requirements ? null, ... }:
    let
      machNixArguments = [ "requirements" "providers" "packagesExtra" "_" "overridesPre" "overridesPost" "tests" "python" "generated" ];
      metadata = helpers.sourceMetadata src;
      missing = what: throw "mach-nix.${builder}: no ${what} given and none in ${toString src}/pyproject.toml ([project] ${what})";
      name = if pname != null then pname else if metadata.name != null then metadata.name else missing "name";
      packageVersion = if version != null then version else if metadata.version != null then metadata.version else missing "version";
      runRequirements =
        if requirements != null then requirements
        else if metadata.requirements != null then metadata.requirements
        else "";
      buildRequirements = if metadata.buildRequirements == null then [ ] else metadata.buildRequirements;
      allRequirements = builtins.concatStringsSep "\n" ([ runRequirements ] ++ buildRequirements);
      prepared = prepare (builtins.intersectAttrs (builtins.listToAttrs (map (n: { name = n; value = null; }) machNixArguments)) args
        // { requirements = allRequirements; });
      passed = removeAttrs args (machNixArguments ++ [ "pname" "version" ]);
      runNames = map requirementName (requirementLines runRequirements);
      buildNames = map requirementName buildRequirements;
      tests = args.tests or false;
      build = ps:
        let
          # Requirements whose markers exclude this target are not in the resolution.
          present = builtins.filter (name: ps ? ${name});
        in
        ps.${builder} (passed // {
          pname = name;
          version = packageVersion;
          dependencies = map (n: ps.${n}) (present runNames) ++ (passed.dependencies or [ ]);
          build-system = passed.build-system or
            (if metadata.buildRequirements == null then [ ps.setuptools ] else map (n: ps.${n}) (present buildNames));
          doCheck = passed.doCheck or tests;
          passthru = (passed.passthru or { }) // {
            # Used when this package is in another function's packagesExtra.
            machNix = prepared.machNix // {
              inherit runRequirements buildRequirements;
              rebuildWith = build;
            };
          };
        } // (if passed ? format || passed ? pyproject then { } else { pyproject = true; }));
    in
    build prepared.python.pkgs;
in
{
  inherit mkPython;

  # The environment's nix-shell derivation (nixpkgs' `.env` of a Python environment).
  mkPythonShell = args:
    let environment = mkPython args;
    in environment.env // { inherit (environment) overrides python machNix; };

  # A layered Docker image whose command is the environment's python. `image` is passed on to
  # pkgs.dockerTools.buildLayeredImage (name, tag, config, …).
  mkDockerImage = args@{ image ? { }, ... }:
    let environment = mkPython (removeAttrs args [ "image" ]);
    in pkgs.dockerTools.buildLayeredImage ({
      name = "mach-nix-python";
      tag = "latest";
      contents = [ environment ];
      config.Cmd = [ "${environment}/bin/python" ];
    } // image);

  # The Python package-set overlay (pySelf: pySuper: …): overridesPre, then the resolved packages,
  # then overridesPost, then `_`.
  mkPythonOverrides = args: (prepare args).overrides;

  inherit mkOverlay;

  # `pkgs` with that overlay applied.
  mkNixpkgs = args: pkgs.appendOverlays [ (mkOverlay args) ];

  buildPythonPackage = buildWith "buildPythonPackage";
  buildPythonApplication = buildWith "buildPythonApplication";
}
