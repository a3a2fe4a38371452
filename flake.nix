# mach-nix as a flake: `lib.<system>` is the Nix library of nix/ (mkPython and friends) with this
# flake's resolver, `packages.<system>.{mach-nix,mach-nix-crawler}` the two binaries.
#
# Not evaluated on the development machines (nixpkgs cannot be fetched there); nix/README.md says
# what was checked. Usage:
#   mach-nix.lib.${system}.mkPython { requirements = "requests"; }
# after giving a snapshot: `(mach-nix.lib.${system}.withSnapshot { url = …; sha256 = …; }).mkPython …`.
{
  description = "mach-nix: reproducible Python environments for Nix from a pinned PyPI snapshot";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
      library = system: pkgs: snapshot: import ./nix {
        inherit pkgs snapshot;
        resolver = self.packages.${system}.mach-nix;
      };
    in
    {
      packages = forAllSystems (system: pkgs: rec {
        mach-nix = pkgs.callPackage ./nix/package.nix { };
        mach-nix-crawler = pkgs.callPackage ./nix/package.nix { binary = "mach-nix-crawler"; };
        default = mach-nix;
      });

      # The library without a snapshot (enough for `generated` expressions), and `withSnapshot`
      # to pin one.
      lib = forAllSystems (system: pkgs: library system pkgs null // {
        withSnapshot = snapshot: library system pkgs snapshot;
      });
    };
}
