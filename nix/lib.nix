# Pure helpers of the mach-nix Nix library (no nixpkgs needed): names, requirement lines, provider
# settings, overlay composition, the `_` edits and the metadata of a Python source tree.
# `default.nix` is the public API; see README.md.
let
  inherit (builtins)
    attrNames concatStringsSep elemAt filter foldl' isAttrs isFunction isList isString length match
    pathExists readFile replaceStrings split;

  upper = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  lower = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
in
rec {
  # PEP 503: lower case, runs of `-`, `_`, `.` become one `-` (the attribute names of the generated
  # overlay).
  normalizeName = name:
    concatStringsSep "-" (filter isString (split "[-_.]+" (replaceStrings upper lower name)));

  # The requirement lines of a requirements.txt text: comments, blank lines and pip options
  # (`-r`, `--index-url`, …) left out.
  requirementLines = text:
    let
      withoutComment = line: elemAt (split "(^|[[:space:]])#" line) 0;
      trimmed = line: let m = match "[[:space:]]*(.*[^[:space:]])[[:space:]]*" line; in if m == null then "" else elemAt m 0;
      lines = map (line: trimmed (withoutComment line)) (filter isString (split "\n" text));
    in
    filter (line: line != "" && match "-.*" line == null) lines;

  # The normalized project name a PEP 508 requirement line starts with.
  requirementName = line:
    let m = match "([A-Za-z0-9][A-Za-z0-9._-]*).*" line;
    in if m == null
    then throw "mach-nix: cannot read a project name from the requirement `${line}`"
    else normalizeName (elemAt m 0);

  # The resolver's `--providers` syntax from the original's attribute set:
  # `{ _default = "wheel,sdist,nixpkgs"; numpy = [ "nixpkgs" ]; }` → `_default=wheel,sdist,nixpkgs numpy=nixpkgs`.
  providersSpec = providers:
    let
      list = name: value:
        if isList value then concatStringsSep "," value
        else if isString value then replaceStrings [ " " ] [ "" ] value
        else throw "mach-nix: providers.${name} must be a string like \"wheel,sdist\" or a list of provider names";
    in
    if !(isAttrs providers)
    then throw "mach-nix: providers must be an attribute set like { _default = \"wheel,sdist,nixpkgs\"; numpy = \"nixpkgs\"; }"
    else concatStringsSep " " (map (name: "${name}=${list name providers.${name}}") (attrNames providers));

  # Two package-set overlays in sequence: `second` sees what `first` defined as its `super`.
  composeOverlays = first: second: self: super:
    let firstResult = first self super;
    in firstResult // second self (super // firstResult);

  composeManyOverlays = foldl' composeOverlays (self: super: { });

  # The `_` argument as an overlay: `_.<package>.<attribute> = value` replaces the attribute,
  # `{ add = [ … ]; }` appends to it, `{ mod = pySelf: oldAttrs: oldValue: newValue; }` computes it.
  underscoreOverlay = edits: pySelf: pySuper:
    let
      isEdit = value: isAttrs value && !(value ? type) && length (attrNames value) == 1
        && (value ? add || value ? mod);
      apply = old: attribute: edit:
        if isEdit edit then
          (if edit ? add then (old.${attribute} or [ ]) ++ edit.add
           else if isFunction edit.mod then edit.mod pySelf old (old.${attribute} or null)
           else throw "mach-nix: _.…${attribute}.mod must be a function pySelf: oldAttrs: oldValue: newValue")
        else edit;
      editPackage = name: attributes:
        let
          attribute = normalizeName name;
          package = pySuper.${attribute} or (throw "mach-nix: `_` edits `${name}`, which is not in the Python package set");
        in
        {
          name = attribute;
          value = package.overridePythonAttrs (old:
            builtins.mapAttrs (apply old) attributes);
        };
    in
    builtins.listToAttrs (map (name: editPackage name edits.${name}) (attrNames edits));

  # Name, version, run-time and build requirements of a Python source tree, from its
  # pyproject.toml (`[project]`, `[build-system]`) and, for the requirements, else its
  # requirements.txt. Unknown parts are null. `src` must be an unpacked directory (a path, or a
  # derivation whose output is one: reading it then builds it, import-from-derivation).
  sourceMetadata = src:
    let
      # A path is read where it is (not copied to the store first); anything else through its
      # store path.
      file = name: if builtins.isPath src then src + "/${name}" else "${src}/${name}";
      pyproject =
        if pathExists (file "pyproject.toml") then builtins.fromTOML (readFile (file "pyproject.toml")) else { };
      project = pyproject.project or { };
      requirementsTxt =
        if pathExists (file "requirements.txt") then readFile (file "requirements.txt") else null;
    in
    {
      name = project.name or null;
      version = project.version or null;
      requirements =
        if project ? dependencies then concatStringsSep "\n" project.dependencies else requirementsTxt;
      buildRequirements = pyproject.build-system.requires or null;
    };
}
