//! What `mach-nix` writes besides its outputs: `-q`/`-v` logging on stderr, colours only where
//! they are wanted, and the shell completions and manual page generated from the clap
//! definitions.

mod common;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

/// A snapshot file and a requirements file in `dir`.
fn fixture(dir: &Path) {
    let universe = common::universe(&[("app", "1.0", &["lib>=1"]), ("lib", "1.0", &[])]);
    std::fs::write(dir.join("db.mnxdb"), common::snapshot_bytes(&universe)).expect("snapshot");
    std::fs::write(dir.join("requirements.txt"), "app\n").expect("requirements");
}

/// `mach-nix gen` in `dir` with `args` before the subcommand's and `env` set, stderr written
/// to a file (as a log file or CI log is): the exit status and what stderr holds.
fn gen_logged(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let log = dir.join("stderr.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_mach-nix"));
    command
        .current_dir(dir)
        .args(args)
        .args([
            "gen",
            "-r",
            "requirements.txt",
            "--db",
            "db.mnxdb",
            "--format",
            "requirements",
        ])
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("MACH_NIX_DB_DIR")
        .stdout(Stdio::null())
        .stderr(File::create(&log).expect("log file"));
    for (key, value) in env {
        command.env(key, value);
    }
    let status = command.status().expect("mach-nix runs");
    (
        status.success(),
        std::fs::read_to_string(&log).expect("log"),
    )
}

fn mach_nix_stdout(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_mach-nix"))
        .args(args)
        .output()
        .expect("mach-nix runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("utf-8")
}

const SUBCOMMANDS: [&str; 5] = ["gen", "env", "show", "completions", "man"];

#[test]
fn verbose_says_what_was_opened_and_what_the_solver_did() {
    let dir = tempfile::tempdir().expect("temp dir");
    fixture(dir.path());
    let (ok, log) = gen_logged(dir.path(), &[], &[]);
    assert!(ok, "{log}");
    assert_eq!(log, "", "nothing on stderr by default");
    let (ok, log) = gen_logged(dir.path(), &["-v"], &[]);
    assert!(ok, "{log}");
    assert!(log.contains("snapshot sha256:"), "{log}");
    assert!(log.contains("the file db.mnxdb): 2 projects"), "{log}");
    assert!(log.contains("solver: "), "{log}");
    assert!(log.contains("projects read from the snapshot"), "{log}");
    assert!(!log.contains("decision:"), "{log}");
    let (ok, log) = gen_logged(dir.path(), &["-vv"], &[]);
    assert!(ok, "{log}");
    assert!(log.contains("decision: lib 1.0"), "{log}");
    let (ok, log) = gen_logged(dir.path(), &["-q"], &[]);
    assert!(ok, "{log}");
    assert_eq!(log, "");
}

#[test]
fn no_escape_codes_in_log_files_unless_forced() {
    let dir = tempfile::tempdir().expect("temp dir");
    fixture(dir.path());
    let (_, log) = gen_logged(dir.path(), &["-vv"], &[]);
    assert!(log.contains("decision:"), "{log}");
    assert!(!log.contains("\x1b["), "{log:?}");
    // CLICOLOR_FORCE asks for colours even in a file; NO_COLOR wins over it.
    let (_, log) = gen_logged(dir.path(), &["-vv"], &[("CLICOLOR_FORCE", "1")]);
    assert!(log.contains("\x1b["), "{log:?}");
    let (_, log) = gen_logged(
        dir.path(),
        &["-vv"],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
    );
    assert!(!log.contains("\x1b["), "{log:?}");
}

#[test]
fn completions_parse_and_name_every_subcommand() {
    let bash = mach_nix_stdout(&["completions", "bash"]);
    let check = Command::new("bash")
        .args(["-n", "-c", &bash])
        .status()
        .expect("bash runs");
    assert!(check.success(), "bash completion script does not parse");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = mach_nix_stdout(&["completions", shell]);
        for subcommand in SUBCOMMANDS {
            assert!(script.contains(subcommand), "{shell}: {subcommand}");
        }
    }
    for shell in ["bash", "zsh", "fish"] {
        let script = mach_nix_stdout(&["completions", shell]);
        assert!(script.contains("x86_64-linux"), "{shell}: --system values");
    }
}

#[test]
fn man_page_names_every_subcommand() {
    let man = mach_nix_stdout(&["man"]);
    assert!(man.starts_with(".ie"), "roff: {man}");
    assert!(man.contains(".TH mach-nix 1"), "{man}");
    for subcommand in SUBCOMMANDS {
        let reference = format!("mach\\-nix\\-{subcommand}(1)");
        assert!(man.contains(&reference), "{reference} in {man}");
    }
}

#[test]
fn a_long_derivation_shows_its_ends_and_verbose_shows_it_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let universe = common::chain(12, &["ghost>=1"]);
    std::fs::write(
        dir.path().join("db.mnxdb"),
        common::snapshot_bytes(&universe),
    )
    .expect("snapshot");
    std::fs::write(dir.path().join("requirements.txt"), "p00000\n").expect("requirements");
    let (ok, log) = gen_logged(dir.path(), &[], &[]);
    assert!(!ok);
    assert!(log.contains("-v shows the whole derivation"), "{log}");
    assert!(!log.contains("p00005 depends on p00006"), "{log}");
    let (ok, log) = gen_logged(dir.path(), &["-v"], &[]);
    assert!(!ok);
    assert!(log.contains("the whole derivation:"), "{log}");
    assert!(log.contains("p00005 depends on p00006"), "{log}");
}
