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
        stderr(&out).contains("invalid value 'riscv-linux' for '--system")
            && stderr(&out).contains("possible values: x86_64-linux"),
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
        "requirements.in",
    ] {
        assert!(env_dir.join(file).is_file(), "{file} missing");
    }
    let lock = std::fs::read_to_string(env_dir.join("pylock.toml")).expect("lock");
    assert!(lock.contains("name = \"urllib3\""), "{lock}");
    // requirements.txt is the hashed lock, as `gen --format requirements` writes it (it was a
    // copy of the input); the input is kept as requirements.in.
    let hashed = std::fs::read_to_string(env_dir.join("requirements.txt")).expect("hashed");
    assert!(
        hashed.contains("requests==2.32.0 \\\n    --hash=sha256:"),
        "{hashed}"
    );
    assert!(
        hashed.contains("# This file was generated by mach-nix"),
        "{hashed}"
    );
    assert_eq!(
        std::fs::read_to_string(env_dir.join("requirements.in")).expect("copy"),
        "requests\n"
    );
    // The kept input regenerates the directory in place.
    let kept = env_dir.join("requirements.in");
    let out = mach_nix(&[
        "env",
        env_dir.to_str().expect("utf-8 path"),
        "-r",
        kept.to_str().expect("utf-8 path"),
        "--db-dir",
        db_dir,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&kept).expect("kept"), "requests\n");
    let leftovers: Vec<_> = std::fs::read_dir(&env_dir)
        .expect("list")
        .map(|entry| entry.expect("entry").file_name())
        .filter(|name| name.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn env_keeps_a_pyproject_input_under_its_own_name() {
    let fixture = Fixture::new("requests\n");
    let (dir, db_dir) = (fixture.dir.path(), fixture.db_dir());
    let project = dir.join("project");
    std::fs::create_dir(&project).expect("mkdir");
    let pyproject = "[project]\nname = \"demo\"\ndependencies = [\"requests\"]\n";
    std::fs::write(project.join("pyproject.toml"), pyproject).expect("write");
    // The project directory itself is the environment directory: the input is rewritten with
    // the text just read, the other files appear beside it.
    let input = project.join("pyproject.toml");
    let out = mach_nix(&[
        "env",
        project.to_str().expect("utf-8 path"),
        "-r",
        input.to_str().expect("utf-8 path"),
        "--db-dir",
        db_dir,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&input).expect("kept"), pyproject);
    assert!(!project.join("requirements.in").exists());
    let hashed = std::fs::read_to_string(project.join("requirements.txt")).expect("hashed");
    assert!(hashed.contains("--hash=sha256:"), "{hashed}");
}

/// `mach-nix ARGS` with the file size limited to one block: writing more is killed by SIGXFSZ,
/// as a kill or a full disk would stop a write.
fn mach_nix_with_file_size_limit(args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("ulimit -f 1 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_mach-nix"))
        .args(args)
        .env_remove("MACH_NIX_DB_DIR")
        .output()
        .expect("mach-nix runs")
}

// Regression: `gen -o` and `env DIR` truncated their files in place, so a kill or a full disk
// left a partial file (and, for `env`, a mix of old and new files) instead of the old ones.
#[test]
fn an_interrupted_write_leaves_the_old_outputs() {
    let fixture = Fixture::new("requests\n");
    let (dir, db_dir) = (fixture.dir.path(), fixture.db_dir());
    let req = fixture.req();
    let out_nix = dir.join("out").join("default.nix");
    std::fs::create_dir(dir.join("out")).expect("mkdir");
    std::fs::write(&out_nix, "OLD\n").expect("write");
    let out_path = out_nix.to_str().expect("utf-8 path");
    let out =
        mach_nix_with_file_size_limit(&["gen", "-r", &req, "--db-dir", db_dir, "-o", out_path]);
    assert!(!out.status.success(), "the limit stops the write");
    assert_eq!(std::fs::read_to_string(&out_nix).expect("read"), "OLD\n");
    // Without the limit the same command replaces the file.
    let out = mach_nix(&["gen", "-r", &req, "--db-dir", db_dir, "-o", out_path]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        std::fs::read_to_string(&out_nix)
            .expect("read")
            .contains("pkgs ? import")
    );

    let env_dir = dir.join("env");
    std::fs::create_dir(&env_dir).expect("mkdir");
    let names = [
        "default.nix",
        "shell.nix",
        "pylock.toml",
        "requirements.txt",
    ];
    for name in names {
        std::fs::write(env_dir.join(name), "OLD\n").expect("write");
    }
    let env_path = env_dir.to_str().expect("utf-8 path");
    let out = mach_nix_with_file_size_limit(&["env", env_path, "-r", &req, "--db-dir", db_dir]);
    assert!(!out.status.success(), "the limit stops the write");
    for name in names {
        assert_eq!(
            std::fs::read_to_string(env_dir.join(name)).expect("read"),
            "OLD\n",
            "{name}"
        );
    }
}

// Regression: `-o` naming the snapshot itself destroyed it with exit 0; inputs could be
// overwritten the same way.
#[test]
fn outputs_never_replace_an_input_or_the_snapshot() {
    let fixture = Fixture::new("requests\n");
    let (dir, db_dir) = (fixture.dir.path(), fixture.db_dir());
    let req = fixture.req();
    let snapshot = dir.join(format!("{}.mnxdb", fixture.hash));
    let snapshot_bytes = std::fs::read(&snapshot).expect("snapshot");
    let snapshot_path = snapshot.to_str().expect("utf-8 path");
    // Another spelling of the same path is the same file.
    let dotted = dir.join(".").join(format!("{}.mnxdb", fixture.hash));
    let dotted = dotted.to_str().expect("utf-8 path");
    let latest = dir.join("latest");
    let latest = latest.to_str().expect("utf-8 path");
    let base = dir.join("base.txt");
    std::fs::write(&base, "idna\n").expect("write");
    std::fs::write(dir.join("requirements.txt"), "requests\n-r base.txt\n").expect("write");
    for (args, needle) in [
        (
            vec!["gen", "-r", &req, "--db-dir", db_dir, "-o", snapshot_path],
            "it is the snapshot",
        ),
        (
            vec!["gen", "-r", &req, "--db-dir", db_dir, "-o", latest],
            "it is the snapshot directory's pointer",
        ),
        (
            vec!["gen", "-r", &req, "--db", snapshot_path, "-o", dotted],
            "it is the snapshot",
        ),
        (
            vec!["gen", "-r", &req, "--db-dir", db_dir, "-o", &req],
            "it is the input file",
        ),
        (
            vec![
                "gen",
                "-r",
                &req,
                "--db-dir",
                db_dir,
                "-o",
                base.to_str().expect("utf-8 path"),
            ],
            "it is the input file",
        ),
    ] {
        let out = mach_nix(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    // A device is written to, never replaced by a regular file.
    let out = mach_nix(&["gen", "-r", &req, "--db-dir", db_dir, "-o", "/dev/null"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = mach_nix(&["gen", "-r", &req, "--db-dir", db_dir, "-o", "/dev/full"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/dev/full: No space left"),
        "{}",
        stderr(&out)
    );
    assert!(
        Path::new("/dev/null")
            .metadata()
            .is_ok_and(|meta| !meta.is_file())
    );
    assert_eq!(std::fs::read(&snapshot).expect("snapshot"), snapshot_bytes);
    assert_eq!(
        std::fs::read_to_string(&req).expect("input"),
        "requests\n-r base.txt\n"
    );
    assert_eq!(std::fs::read_to_string(&base).expect("include"), "idna\n");
    assert!(
        std::fs::read_to_string(latest)
            .expect("latest")
            .starts_with(&fixture.hash)
    );
    // `env` into the directory of its input: requirements.txt there is the input.
    let out = mach_nix(&["env", db_dir, "-r", &req, "--db-dir", db_dir]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("it is the input file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&req).expect("input"),
        "requests\n-r base.txt\n"
    );
}

// Regression: `--format pylock -o lock.toml` was written, then refused by uv as "not a valid
// PEP 751 filename"; the lock did not say which command made it.
#[test]
fn pylock_outputs_have_pep_751_names_and_say_how_they_were_made() {
    let fixture = Fixture::new("requests\n");
    let (dir, db_dir) = (fixture.dir.path(), fixture.db_dir());
    let req = fixture.req();
    let wrong = dir.join("lock.toml");
    let wrong = wrong.to_str().expect("utf-8 path");
    let args = [
        "gen", "-r", &req, "--db-dir", db_dir, "--format", "pylock", "-o",
    ];
    let out = mach_nix(&[&args[..], &[wrong]].concat());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("use -o ") && stderr(&out).contains("pylock.lock.toml"),
        "{}",
        stderr(&out)
    );
    assert!(!Path::new(wrong).exists());
    // A device is no lock file: the naming rule does not apply.
    let out = mach_nix(&[&args[..], &["/dev/null"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    for name in ["pylock.toml", "pylock.dev.toml"] {
        let path = dir.join(name);
        let out = mach_nix(&[&args[..], &[path.to_str().expect("utf-8 path")]].concat());
        assert!(out.status.success(), "{}", stderr(&out));
        let text = std::fs::read_to_string(&path).expect("written");
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("# This file was generated by mach-nix via the following command:")
        );
        let command = lines.next().expect("the command");
        assert!(
            command.starts_with("#    mach-nix gen -r ") && command.ends_with(name),
            "{command}"
        );
        let lock: toml::Table = toml::from_str(&text).expect("still TOML");
        assert_eq!(lock["lock-version"].as_str(), Some("1.0"));
    }
    // The hashed requirements carry the same header; standard output is not renamed.
    let out = mach_nix(&[
        "gen",
        "-r",
        &req,
        "--db-dir",
        db_dir,
        "--format",
        "requirements",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("# This file was generated by mach-nix via the following command:\n#    mach-nix gen -r "),
        "{}",
        stdout(&out)
    );
}

/// `uv ARGS` (uv is installed by `scripts/test.sh`, as for the agreement tests).
fn uv(args: &[&std::ffi::OsStr]) -> Output {
    Command::new("uv")
        .args(args)
        .env("UV_OFFLINE", "1")
        .env("UV_NO_CACHE", "1")
        .output()
        .expect("uv runs (scripts/test.sh installs it)")
}

// Regression: uv refused `gen`'s pylock when it was named `lock.toml`; the names `gen` accepts
// are the ones uv reads, header comment included (offline: a dry run downloads nothing).
#[test]
fn uv_installs_from_the_pylock_files_gen_writes() {
    let fixture = Fixture::new("requests\n");
    let (dir, db_dir) = (fixture.dir.path(), fixture.db_dir());
    let req = fixture.req();
    let venv = dir.join("venv");
    let out = uv(&["venv".as_ref(), "--quiet".as_ref(), venv.as_os_str()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let python = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')",
        ])
        .output()
        .expect("venv python runs");
    let version = stdout(&python).trim().to_owned();
    let install = |lock: &Path| {
        let mut args: Vec<&std::ffi::OsStr> = vec!["pip".as_ref(), "install".as_ref()];
        args.extend(["--dry-run".as_ref(), "--python".as_ref(), venv.as_os_str()]);
        args.extend(["-r".as_ref(), lock.as_os_str()]);
        uv(&args)
    };
    for name in ["pylock.toml", "pylock.web.toml"] {
        let lock = dir.join(name);
        let out = mach_nix(&[
            "gen",
            "-r",
            &req,
            "--db-dir",
            db_dir,
            "-p",
            &version,
            "--format",
            "pylock",
            "-o",
            lock.to_str().expect("utf-8 path"),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = install(&lock);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("+ requests==2.32.0"),
            "{name}: {}",
            stderr(&out)
        );
        // The same file under a name `gen` refuses: uv refuses it too.
        let renamed = dir.join("lock.toml");
        std::fs::copy(&lock, &renamed).expect("copy");
        let out = install(&renamed);
        assert!(
            stderr(&out).contains("not a valid PEP 751 filename"),
            "{}",
            stderr(&out)
        );
    }
}

// Regression: `-r /dev/zero` read until memory ran out; a FIFO hung.
#[test]
fn input_files_must_be_regular_and_bounded() {
    let fixture = Fixture::new("requests\n");
    let (dir, db_dir) = (fixture.dir.path(), fixture.db_dir());
    let req = fixture.req();
    let started = std::time::Instant::now();
    for (args, needle) in [
        (
            vec!["gen", "-r", "/dev/zero", "--db-dir", db_dir],
            "/dev/zero: a character device, not a regular file",
        ),
        (
            vec!["gen", "-r", db_dir, "--db-dir", db_dir],
            "a directory, not a regular file",
        ),
        (
            vec![
                "gen",
                "-r",
                &req,
                "--db-dir",
                db_dir,
                "--nixpkgs-json",
                "/dev/zero",
            ],
            "/dev/zero: a character device, not a regular file",
        ),
    ] {
        let out = mach_nix(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    let big = dir.join("big.txt");
    std::fs::File::create(&big)
        .and_then(|file| file.set_len(1 << 30))
        .expect("sparse file");
    let out = mach_nix(&[
        "gen",
        "-r",
        big.to_str().expect("utf-8 path"),
        "--db-dir",
        db_dir,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("more than the 16777216 bytes"),
        "{}",
        stderr(&out)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}
