//! The `mach-nix` command line.

/// Run the command line; the exit code says how it went.
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
