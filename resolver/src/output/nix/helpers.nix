      # A wheel from PyPI, installed as it is. Manylinux wheels get autoPatchelf and the
      # manylinux libraries so their shared objects find libc, libstdc++, zlib, ….
      mkWheel = { pname, version, src, dependencies, extras ? [ ], cycleBroken ? [ ], manylinux ? null }:
        pySelf.buildPythonPackage ({
          inherit pname version src dependencies;
          format = "wheel";
          nativeBuildInputs = if manylinux == null then [ ] else [ pkgs.autoPatchelfHook ];
          buildInputs = if manylinux == null then [ ] else pkgs.pythonManylinuxPackages.${manylinux};
          doCheck = tests;
          passthru.provider = "wheel";
        } // withChecks { name = pname; inherit extras dependencies cycleBroken; });

      # nixpkgs' own definition of a package, if this nixpkgs has one (removed packages are
      # aliases that throw: those count as absent).
      fromNixpkgs = attribute:
        let found = builtins.tryEval (pySuper.${attribute} or null);
        in if found.success && found.value != null && found.value ? overridePythonAttrs then found.value else null;

      # The Python dependencies of a package are exactly the resolved ones: nixpkgs' own Python
      # inputs are replaced, its other propagated inputs (C libraries, tools) kept.
      nonPython = inputs: builtins.filter (input: !(input ? pythonModule)) inputs;

      # `buildBackends` (above, written with the generator's list): nixpkgs' build backends and
      # what they bootstrap from. nixpkgs builds them in its own way (its own sources, patches,
      # bootstrap builders); an sdist of one of them is built from that sdist alone, never as an
      # override of nixpkgs' definition. They are pure Python: nothing native is lost.

      # What in a nixpkgs definition belongs to nixpkgs' own source: patches and the phases that
      # edit or enter its tree. When the resolved sdist is another source (another version, or
      # the same version from another file), these are dropped; native and C inputs stay.
      sourceSpecific = [ "patches" "patchFlags" "prePatch" "postPatch" "sourceRoot" "setSourceRoot" "preUnpack" "unpackPhase" "postUnpack" ];
      # Phases that are dropped only when they change directory (`cd`, `pushd`) into the tree.
      directoryPhases = [ "preConfigure" "postConfigure" "preBuild" ];
      changesDirectory = script:
        builtins.isString script && builtins.any
          (line: builtins.isString line && builtins.match "(.*[;&|(][[:space:]]*)?[[:space:]]*(cd|pushd)([[:space:]].*)?" line != null)
          (builtins.split "\n" script);
      sameSource = old: version: src:
        let same = builtins.tryEval ((old.version or null) == version && (old.src.outPath or null) == src.outPath);
        in same.success && same.value;
      withoutSourceSpecific = old:
        builtins.listToAttrs (map (name: { inherit name; value = if name == "patches" then [ ] else null; })
          (builtins.filter (name: old ? ${name}) sourceSpecific
            ++ builtins.filter (name: changesDirectory (old.${name} or null)) directoryPhases));

      # An sdist from PyPI, built with its resolved build system. When nixpkgs has the package
      # (and it is no build backend), its definition is overridden with this version and source:
      # nixpkgs' native inputs, hooks and phases are kept, its source-specific attributes only
      # when version and source are nixpkgs' own. Otherwise it is built from scratch.
      mkSdist = { pname, version, src, dependencies, buildSystem, extras ? [ ], cycleBroken ? [ ] }:
        let
          nixpkgsDefinition = if builtins.elem pname buildBackends then null else fromNixpkgs pname;
          attrs = {
            inherit version src dependencies;
            build-system = buildSystem;
            pyproject = true;
            doCheck = tests;
          };
        in
        if nixpkgsDefinition == null then
          pySelf.buildPythonPackage (attrs // withChecks { name = pname; inherit extras dependencies cycleBroken; } // {
            inherit pname;
            passthru.provider = "sdist";
          })
        else
          nixpkgsDefinition.overridePythonAttrs (old: attrs
            // (if sameSource old version src then { } else withoutSourceSpecific old)
            // withChecks { name = pname; inherit extras dependencies cycleBroken; preDistPhases = old.preDistPhases or [ ]; }
            // {
              format = null;
              disabled = false;
              propagatedBuildInputs = nonPython (old.propagatedBuildInputs or [ ]);
              passthru = (old.passthru or { }) // { provider = "sdist"; };
            });

      # nixpkgs' package with nixpkgs' own source, its Python dependencies set to the resolved ones.
      mkNixpkgs = { attribute, pname, version, dependencies, extras ? [ ], cycleBroken ? [ ] }:
        let
          definition = fromNixpkgs attribute;
          checked =
            if definition == null then
              throw "mach-nix: the resolution uses python.pkgs.${attribute} from nixpkgs, but this nixpkgs has no such package; regenerate with this nixpkgs' --nixpkgs-json"
            else
              lib.warnIf (definition.version != version)
                "mach-nix: python.pkgs.${attribute} is ${definition.version} in this nixpkgs, the resolution expected ${version}"
                definition;
        in
        checked.overridePythonAttrs (old: {
          inherit dependencies;
          propagatedBuildInputs = nonPython (old.propagatedBuildInputs or [ ]);
          doCheck = tests;
          passthru = (old.passthru or { }) // { provider = "nixpkgs"; };
        } // withChecks { name = pname; inherit extras dependencies cycleBroken; preDistPhases = old.preDistPhases or [ ]; });

      # Build-system packages that must come from nixpkgs because taking the resolved one would
      # close a dependency cycle (see machNix.brokenEdges).
      bootstrap = names: map (name: pySuper.${name}) (builtins.filter (name: pySuper ? ${name}) names);

      # The check every package runs when it is built, a phase after nixpkgs' fixup (so after
      # autoPatchelf) that runs whatever doCheck says, as nixpkgs' own imports check (see
      # nix/README.md, "Checks at build time"): its Requires-Dist satisfied by its run-time closure, and its
      # top-level modules importable (`machNixImportsCheck = false` turns that part off). It reads
      # requirements with nixpkgs' own `packaging` (of the interpreter this file is called with,
      # which the resolved packages do not change). The dependencies `cycleBroken` (edges left out
      # to break a cycle, see machNix.brokenEdges) are not in the closure: their requirements are
      # not checked, and neither are the imports, which would need them.
      sitePackagesOf = package: "${package}/${python.sitePackages}";
      runtimeClosure = dependencies: map (entry: entry.package) (builtins.genericClosure {
        startSet = map (package: { key = package.outPath; inherit package; }) dependencies;
        operator = entry: map (package: { key = package.outPath; inherit package; })
          (builtins.filter (input: input ? pythonModule)
            ((entry.package.dependencies or [ ]) ++ (entry.package.propagatedBuildInputs or [ ])));
      });
      withChecks = { name, extras, dependencies, cycleBroken, preDistPhases ? [ ] }: {
        machNixCheck = checkScript;
        machNixName = name;
        machNixExtras = builtins.concatStringsSep " " extras;
        machNixDependencyPaths = builtins.concatStringsSep ":" (map sitePackagesOf (runtimeClosure dependencies));
        machNixCycleBroken = builtins.concatStringsSep " " cycleBroken;
        machNixImportsCheck = cycleBroken == [ ];
        preDistPhases = preDistPhases ++ [ "machNixCheckPhase" ];
        machNixCheckPhase = ''
          ${python.interpreter} -I -S -B -c "$machNixCheck" "$out/${python.sitePackages}" "${sitePackagesOf python.pkgs.packaging}"
        '';
      };
