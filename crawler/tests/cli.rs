//! The command line as a user meets it: log files without escape codes, `-q`/`-v`, the exit
//! code and message for projects the index does not have, the summary of a second crawl,
//! completions and the man page, and the progress display on a terminal.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::{FakePypi, Fault, fast_flags};

/// `crawl --state STATE` against `server` with `extra` flags, stderr into `log` (a file, as a
/// CI log or `2> crawl.log` is), no `RUST_LOG`, `NO_COLOR` nor `CLICOLOR_FORCE`.
fn crawl_logged(server: &FakePypi, state: &Path, log: &Path, extra: &[&str]) -> (Output, String) {
    let file = std::fs::File::create(log).expect("log file");
    let output = Command::new(support::bin())
        .args(["crawl", "--state", state.to_str().expect("utf-8")])
        .args(fast_flags(server))
        .args(extra)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .stderr(Stdio::from(file))
        .output()
        .expect("runs");
    let text = std::fs::read_to_string(log).expect("log");
    (output, text)
}

#[test]
fn log_files_carry_no_escape_codes_and_q_v_set_the_level() {
    let server = FakePypi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("crawl.log");
    let (output, text) = crawl_logged(
        &server,
        &dir.path().join("state"),
        &log,
        &["--packages", "six", "-v"],
    );
    assert!(output.status.success(), "{text}");
    assert!(
        !text.contains("\x1b["),
        "escape codes in a log file: {text:?}"
    );
    assert!(text.contains("DEBUG"), "-v shows debug lines: {text}");
    assert!(text.contains("crawled 1 projects"), "{text}");
    // The one summary line, once.
    assert_eq!(text.matches("crawled 1 projects").count(), 1, "{text}");
    let (output, text) = crawl_logged(
        &server,
        &dir.path().join("state"),
        &log,
        &["--packages", "six", "-q"],
    );
    assert!(output.status.success(), "{text}");
    assert!(text.is_empty(), "-q shows warnings only: {text}");
}

// Without a terminal a progress line comes every `--progress-every` seconds (1 s here) even while one
// project holds the crawl (lines came only when a project finished).
#[test]
fn without_a_terminal_progress_lines_keep_coming_while_one_project_runs() {
    let server = FakePypi::start();
    server.fault("/simple/six/", vec![Fault::Stall(Duration::from_secs(3))]);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("crawl.log");
    let (output, text) = crawl_logged(
        &server,
        &dir.path().join("state"),
        &log,
        &["--packages", "six"],
    );
    assert!(output.status.success(), "{text}");
    let beats = text
        .lines()
        .filter(|line| line.contains("0/1 projects, ") && line.ends_with("now: six"))
        .count();
    assert!(beats >= 2, "a line a second while six runs: {text}");
    assert!(
        !text.contains("ETA"),
        "no ETA before a project is done: {text}"
    );
}

#[test]
fn requested_projects_the_index_lacks_exit_3_listed_with_did_you_mean() {
    let server = FakePypi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let log = dir.path().join("crawl.log");
    let (output, text) = crawl_logged(&server, &state, &log, &["--packages", "six,requests"]);
    assert!(output.status.success(), "{text}");
    let (output, text) = crawl_logged(
        &server,
        &state,
        &log,
        &["--packages", "reqeusts,htpx,six,sx", "-q"],
    );
    assert_eq!(output.status.code(), Some(3), "{text}");
    insta::assert_snapshot!(text, @r"
    error: 3 requested projects are not on the index:
      htpx
      reqeusts (did you mean requests?)
      sx (did you mean six?)
    fix the spelling, or point --index-url at the index that has them; the other projects were crawled
    ");
    // A dependency the index lacks is no error of the command (it is in the summary).
    let requirements = dir.path().join("requirements.txt");
    std::fs::write(&requirements, "zope.interface\n").expect("writes");
    let (output, text) = crawl_logged(
        &server,
        &dir.path().join("deps"),
        &log,
        &["-r", requirements.to_str().expect("utf-8"), "--with-deps"],
    );
    assert!(output.status.success(), "{text}");
    assert!(!text.contains(" 0 missing"), "{text}");
}

#[test]
fn a_second_crawl_says_unchanged_or_that_the_index_sends_no_etag() {
    let server = FakePypi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("crawl.log");
    let packages = ["--packages", "six,iniconfig"];
    let state = dir.path().join("with-etags");
    crawl_logged(&server, &state, &log, &packages);
    let (output, text) = crawl_logged(&server, &state, &log, &packages);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("crawled 0 projects, 2 unchanged, "), "{text}");
    assert!(!text.contains("re-read"), "{text}");

    server.send_etags(false);
    let state = dir.path().join("without-etags");
    crawl_logged(&server, &state, &log, &packages);
    let (output, text) = crawl_logged(&server, &state, &log, &packages);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("crawled 2 projects, 0 unchanged (2 re-read: the index sends no ETag/304), "),
        "{text}"
    );
}

#[test]
fn completions_and_man_page_come_from_the_clap_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let output = support::run(&["completions", shell]);
        let text = String::from_utf8_lossy(&output.stdout);
        for word in ["publish-db", "merge-state", "packages-file", "with-deps"] {
            assert!(text.contains(word), "{shell} completion lacks {word}");
        }
    }
    let output = support::run(&["man"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with(".ie") || text.contains(".TH"), "{text}");
    assert!(text.contains("mach\\-nix\\-crawler"), "{text}");
    assert!(text.contains("crawl"), "{text}");
}

/// The screen a terminal would show for `bytes`: carriage returns and cursor moves applied
/// roughly (each `\r` or "erase line" starts the line over), escape codes dropped.
fn screen(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = vec![String::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                let mut code = String::new();
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        code.push(c);
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                // Erase the line, or move up a line (indicatif redraws its bar so).
                if code.ends_with('K') || code.ends_with('A') {
                    if code.ends_with('A') && lines.len() > 1 {
                        lines.pop();
                    }
                    if let Some(last) = lines.last_mut() {
                        last.clear();
                    }
                }
            }
            '\r' => {
                if chars.peek() != Some(&'\n')
                    && let Some(last) = lines.last_mut()
                {
                    last.clear();
                }
            }
            '\n' => lines.push(String::new()),
            c => {
                if let Some(last) = lines.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    lines
}

/// Run `crawl --state STATE` with `extra` flags under a pseudo-terminal (`script`) of 250
/// columns; its stdout is the screen's byte stream.
fn under_a_terminal(server: &FakePypi, state: &Path, extra: &[&str]) -> Output {
    if Command::new("script").arg("--version").output().is_err() {
        panic!("`script` (util-linux) is needed to run the crawler under a pseudo-terminal");
    }
    let mut args = vec![
        support::bin().to_string(),
        "crawl".into(),
        "--state".into(),
        state.display().to_string(),
    ];
    args.extend(extra.iter().map(|arg| arg.to_string()));
    args.extend(fast_flags(server));
    // A wide terminal, so the bar's message is not cut to fit.
    let command = std::iter::once("stty rows 50 cols 250;".to_string())
        .chain(args.iter().map(|arg| format!("'{arg}'")))
        .collect::<Vec<_>>()
        .join(" ");
    Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("script runs")
}

#[test]
fn on_a_terminal_q_draws_no_bar() {
    let server = FakePypi::start();
    // Long enough for a bar to be drawn if there were one.
    server.fault("/simple/six/", vec![Fault::Stall(Duration::from_secs(1))]);
    let dir = tempfile::tempdir().expect("tempdir");
    let output = under_a_terminal(
        &server,
        &dir.path().join("state"),
        &["--packages", "six", "--with-deps", "-q"],
    );
    let raw = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{raw}");
    assert!(!raw.contains("discovering"), "{raw:?}");
    assert!(!raw.contains("crawled "), "{raw:?}");
}

#[test]
fn on_a_terminal_a_known_total_is_a_bar_with_an_eta() {
    let server = FakePypi::start();
    server.fault("/simple/six/", vec![Fault::Stall(Duration::from_secs(2))]);
    let dir = tempfile::tempdir().expect("tempdir");
    let output = under_a_terminal(
        &server,
        &dir.path().join("state"),
        &["--packages", "six,iniconfig", "--projects-in-flight", "1"],
    );
    let raw = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{raw}");
    assert!(raw.contains("/2 projects, ETA "), "{raw:?}");
    assert!(!raw.contains("discovering"), "{raw:?}");
}

#[test]
fn on_a_terminal_the_bar_discovers_beats_and_logs_above_itself() {
    let server = FakePypi::start();
    // One project holds the crawl for 3 s: the heartbeat names it meanwhile; another fails
    // (a warning printed while the bar is drawn).
    server.fault("/simple/six/", vec![Fault::Stall(Duration::from_secs(3))]);
    server.fault(
        "/simple/iniconfig/",
        vec![Fault::Status(500), Fault::Status(500), Fault::Status(500)],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let output = under_a_terminal(
        &server,
        &dir.path().join("state"),
        &[
            "--packages",
            "six,iniconfig,exceptiongroup",
            "--with-deps",
            "--retries",
            "2",
        ],
    );
    let raw = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{raw}");
    let screen = screen(&output.stdout);
    let shown = screen.join("\n");
    // While running: the total still being discovered, no ETA, the project in flight.
    assert!(raw.contains("known, discovering"), "{raw:?}");
    assert!(
        !raw.contains("ETA"),
        "no ETA while the total grows: {raw:?}"
    );
    assert!(
        raw.contains("now: six"),
        "the heartbeat names the slow project: {raw:?}"
    );
    // Colours on a terminal.
    assert!(raw.contains("\x1b["), "{raw:?}");
    // The warning is a line of its own, above the bar, not inside it.
    let warning = screen
        .iter()
        .find(|line| line.contains("failed: "))
        .unwrap_or_else(|| panic!("a warning line: {shown}"));
    assert!(!warning.contains("discovering"), "{shown}");
    assert!(warning.contains("WARN"), "{shown}");
    // The bar is gone at the end; the summary is printed once.
    let summaries = screen
        .iter()
        .filter(|line| line.contains("crawled "))
        .count();
    assert_eq!(summaries, 1, "{shown}");
    assert!(
        !screen
            .last()
            .is_some_and(|line| line.contains("discovering"))
            && !screen
                .iter()
                .rev()
                .find(|line| !line.trim().is_empty())
                .is_some_and(|line| line.contains("discovering")),
        "the bar is cleared: {shown}"
    );
}
