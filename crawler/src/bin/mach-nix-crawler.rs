//! `mach-nix-crawler`: see the `crawler` library.

fn main() -> std::process::ExitCode {
    crawler::cli::main()
}
