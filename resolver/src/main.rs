//! `mach-nix`: thin entry point; everything lives in [`resolver::cli`].

fn main() -> std::process::ExitCode {
    resolver::cli::main()
}
