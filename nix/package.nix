# The binaries of this workspace as a nixpkgs package: `pkgs.callPackage ./nix/package.nix { }` is
# the resolver (`bin/mach-nix`, what the library runs), `{ binary = "mach-nix-crawler"; }` the
# crawler. Not built here (no nixpkgs on the development machines): see README.md.
{ lib, rustPlatform, binary ? "mach-nix" }:

let
  # Which workspace crate each binary is in.
  crates = { mach-nix = "resolver"; mach-nix-crawler = "crawler"; };
  crate = crates.${binary} or (throw "mach-nix package.nix: binary must be one of ${toString (builtins.attrNames crates)}");
  workspace = builtins.fromTOML (builtins.readFile ../Cargo.toml);
in
rustPlatform.buildRustPackage {
  pname = binary;
  inherit (workspace.workspace.package) version;
  # The workspace without build output and test fixtures' caches.
  src = lib.cleanSourceWith {
    src = lib.cleanSource ../.;
    filter = path: type: !(type == "directory" && builtins.elem (baseNameOf path) [ "target" ".mach-nix-work" ]);
  };
  cargoLock.lockFile = ../Cargo.lock;
  cargoBuildFlags = [ "--package" crate "--bin" binary ];
  # The test suites need Nix, a host CPython and the network (see scripts/test.sh); CI runs them.
  doCheck = false;
  meta = {
    description = "Reproducible Python environments for Nix, resolved offline from a pinned PyPI snapshot";
    license = lib.licenses.mit;
    mainProgram = binary;
  };
}
