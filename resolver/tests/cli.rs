//! The `mach-nix` binary end to end on a snapshot file written by `db_format::Writer`:
//! `gen` in each format, `show`, snapshot lookup by hash, exit codes and error messages.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

fn mach_nix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mach-nix"))
        .args(args)
        .env_remove("MACH_NIX_DB_DIR")
        .output()
        .expect("mach-nix runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A published snapshot directory (`HEX.mnxdb` + `latest`) with a requirements file in it.
struct Fixture {
    dir: tempfile::TempDir,
    hash: String,
}

impl Fixture {
    fn new(requirements: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let hash = setup(dir.path(), requirements);
        Fixture { dir, hash }
    }

    fn db_dir(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 path")
    }

    fn req(&self) -> String {
        self.dir
            .path()
            .join("requirements.txt")
            .to_str()
            .expect("utf-8 path")
            .to_owned()
    }
}

fn setup(dir: &Path, requirements: &str) -> String {
    let mut universe = common::universe(&[
        (
            "requests",
            "2.31.0",
            &["idna>=2.5", "certifi", "pysocks!=1.5.7 ; extra == 'socks'"],
        ),
        ("requests", "2.32.0", &["idna>=2.5", "certifi", "urllib3<3"]),
        ("idna", "3.6", &[]),
        ("certifi", "2024.2.2", &[]),
        ("urllib3", "2.2.0", &[]),
        ("pysocks", "1.7.1", &[]),
    ]);
    if let Some(spec) = universe
        .get_mut("requests")
        .and_then(|v| v.get_mut("2.31.0"))
    {
        spec.extras
            .insert("socks".to_owned(), vec!["pysocks!=1.5.7".to_owned()]);
        spec.requires.retain(|r| !r.contains("extra"));
    }
    let bytes = common::snapshot_bytes(&universe);
    let hash = hex::encode(Sha256::digest(&bytes));
    std::fs::write(dir.join(format!("{hash}.mnxdb")), bytes).expect("write snapshot");
    std::fs::write(dir.join("latest"), format!("{hash}\n")).expect("write latest");
    std::fs::write(dir.join("requirements.txt"), requirements).expect("write requirements");
    hash
}

#[test]
fn gen_writes_pylock_and_hashed_requirements() {
    let fixture = Fixture::new("requests[socks]<2.32\n");
    let hash = &fixture.hash;
    let (dir, db_dir) = (fixture.dir.path(), fixture.db_dir());
    let req = fixture.req();
    let req = req.as_str();
    let db = format!("sha256:{hash}");

    let out = mach_nix(&[
        "gen", "-r", req, "--db", &db, "--db-dir", db_dir, "--format", "pylock",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lock: toml::Table = toml::from_str(&stdout(&out)).expect("pylock.toml is TOML");
    assert_eq!(lock["lock-version"].as_str(), Some("1.0"));
    let packages = lock["packages"].as_array().expect("packages");
    let names: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["certifi", "idna", "pysocks", "requests"]);
    let requests = &packages[3];
    assert_eq!(requests["version"].as_str(), Some("2.31.0"));
    let wheel = &requests["wheels"].as_array().expect("wheels")[0];
    assert_eq!(
        wheel["name"].as_str(),
        Some("requests-2.31.0-py3-none-any.whl")
    );
    assert!(
        wheel["hashes"]["sha256"]
            .as_str()
            .is_some_and(|h| h.len() == 64)
    );
    assert!(wheel.get("upload-time").is_some() && wheel.get("size").is_some());
    assert_eq!(
        lock["tool"]["mach-nix"]["snapshot"].as_str(),
        Some(db.as_str())
    );

    let lockfile = dir.join("out.txt");
    let out = mach_nix(&[
        "gen",
        "-r",
        req,
        "--db-dir",
        db_dir,
        "--format",
        "requirements",
        "-o",
        lockfile.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&lockfile).expect("written");
    // The hashed file reads back as requirements with one hash each.
    let input =
        resolver::input::parse_requirements_txt(&text, &lockfile).expect("valid requirements");
    assert_eq!(input.requirements.len(), 4);
    assert!(
        input
            .requirements
            .iter()
            .all(|entry| entry.hashes.len() == 1)
    );
    assert!(text.contains("requests[socks]==2.31.0"), "{text}");
}

#[test]
fn show_tells_what_the_snapshot_knows() {
    let fixture = Fixture::new("requests\n");
    let db_dir = fixture.db_dir();
    let out = mach_nix(&["show", "Requests", "--db-dir", db_dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("requests (2 releases; snapshot sha256:"),
        "{text}"
    );
    assert!(
        text.contains("dependencies #0 from wheel-metadata"),
        "{text}"
    );
    assert!(text.contains("requests-2.32.0-py3-none-any.whl"), "{text}");
    let out = mach_nix(&["show", "requests", "--db-dir", db_dir, "--json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(json["releases"][1]["files"][0]["tags"], "py3-none-any");
    assert_eq!(
        json["releases"][1]["dependencies"][0]["requires_dist"][2],
        "urllib3<3"
    );
    let out = mach_nix(&["show", "nope", "--db-dir", db_dir]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nope is not in this snapshot (snapshot date 2024-01-02)"));
}

#[test]
fn failures_have_distinct_messages_and_exit_codes() {
    let fixture = Fixture::new("requests>=3\n");
    let (dir, db_dir) = (fixture.dir.path(), fixture.db_dir());
    let req = fixture.req();
    let req = req.as_str();
    let out = mach_nix(&["gen", "-r", req, "--db-dir", db_dir, "--format", "pylock"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no version of requests matches >=3"),
        "{}",
        stderr(&out)
    );

    std::fs::write(dir.join("requirements.txt"), "requests\n-e .\n").expect("write");
    let out = mach_nix(&["gen", "-r", req, "--db-dir", db_dir]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("requirements.txt:2: the option -e is not supported"),
        "{}",
        stderr(&out)
    );

    std::fs::write(dir.join("requirements.txt"), "requests\n").expect("write");
    let out = mach_nix(&[
        "gen",
        "-r",
        req,
        "--db",
        &format!("sha256:{}", "0".repeat(64)),
        "--db-dir",
        db_dir,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not in"), "{}", stderr(&out));

    let out = mach_nix(&[
        "gen",
        "-r",
        req,
        "--db-dir",
        db_dir,
        "--system",
        "riscv-linux",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown system \"riscv-linux\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn nix_is_the_default_format_and_env_writes_a_directory() {
    let fixture = Fixture::new("requests\n");
    let (dir, db_dir) = (fixture.dir.path(), fixture.db_dir());
    let req = fixture.req();
    let req = req.as_str();
    let out = mach_nix(&["gen", "-r", req, "--db-dir", db_dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let nix = stdout(&out);
    assert!(nix.contains("pkgs ? import <nixpkgs>"), "{nix}");
    assert!(nix.contains("requests-2.32.0-py3-none-any.whl"), "{nix}");
    let env_dir = dir.join("env");
    let out = mach_nix(&[
        "env",
        env_dir.to_str().expect("utf-8 path"),
        "-r",
        req,
        "--db-dir",
        db_dir,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    for file in [
        "default.nix",
        "shell.nix",
        "pylock.toml",
        "requirements.txt",
    ] {
        assert!(env_dir.join(file).is_file(), "{file} missing");
    }
    let lock = std::fs::read_to_string(env_dir.join("pylock.toml")).expect("lock");
    assert!(lock.contains("name = \"urllib3\""), "{lock}");
    assert_eq!(
        std::fs::read_to_string(env_dir.join("requirements.txt")).expect("copy"),
        "requests\n"
    );
}
