//! The lines of a requirements file: logical lines, options, includes and requirements.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use db_format::types::{Requirement, RequirementError, parse_requirement};
use uv_pep508::VersionOrUrl;

use crate::{Entry, Error, MAX_ECHO, MAX_INCLUDE_DEPTH, Origin, RequirementsTxt, clip, read_text};

/// Options pip takes with a value that change where files come from, not what is installed.
const IGNORED_WITH_VALUE: [&str; 6] = [
    "-i",
    "--index-url",
    "--extra-index-url",
    "--trusted-host",
    "-f",
    "--find-links",
];
/// Flags pip takes that do not change what is resolved here.
const IGNORED_FLAGS: [&str; 3] = ["--no-index", "--prefer-binary", "--require-hashes"];

/// Read the requirements file `path` and the files it includes.
pub fn read_requirements_txt(path: &Path) -> Result<RequirementsTxt, Error> {
    parse_requirements_txt(&read_text(path)?, path)
}

/// Parse `text`, the content of `path`; includes are read relative to `path`'s directory.
pub fn parse_requirements_txt(text: &str, path: &Path) -> Result<RequirementsTxt, Error> {
    let mut input = RequirementsTxt {
        files: vec![path.to_owned()],
        ..RequirementsTxt::default()
    };
    let mut includes = Includes {
        stack: vec![path.to_owned()],
        read: HashSet::new(),
    };
    parse_into(text, path, false, &mut input, &mut includes)?;
    Ok(input)
}

/// Parse one PEP 508 requirement string from an input file; the error is a message for people
/// that repeats at most [`MAX_ECHO`] characters of `spec` (uv's own message repeats all of it).
pub fn parse_pep508(spec: &str) -> Result<Requirement, String> {
    parse_requirement(spec).map_err(|err| {
        let why = match err {
            RequirementError::TooDeep(deep) => deep.to_string(),
            RequirementError::Invalid(invalid) if invalid.input.chars().count() <= MAX_ECHO => {
                invalid.to_string()
            }
            RequirementError::Invalid(invalid) => {
                let start = invalid.input.floor_char_boundary(invalid.start);
                format!(
                    "{} (at byte {start} of a {}-byte line, from there: {:?})",
                    invalid.message,
                    invalid.input.len(),
                    clip(&invalid.input[start..])
                )
            }
        };
        format!("not a PEP 508 requirement: {why}")
    })
}

/// The include state of one parse.
struct Includes {
    /// The files being read, outermost first (a file on it including itself is a cycle).
    stack: Vec<PathBuf>,
    /// Files already read (canonical path, as constraints): read again they add nothing.
    read: HashSet<(PathBuf, bool)>,
}

/// Logical lines: continuations joined, comments removed; each with the line it starts on.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let (start, mut buffer) = current.take().unwrap_or((index + 1, String::new()));
        let line = strip_comment(raw);
        if let Some(stripped) = line.strip_suffix('\\') {
            buffer.push_str(stripped);
            current = Some((start, buffer));
            continue;
        }
        buffer.push_str(line);
        lines.push((start, buffer));
    }
    if let Some(last) = current {
        lines.push(last);
    }
    lines
        .into_iter()
        .map(|(line, text)| (line, text.trim().to_owned()))
        .filter(|(_, text)| !text.is_empty())
        .collect()
}

/// pip's rule: `#` starts a comment at the beginning of a line or after whitespace.
fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    let bytes = line.as_bytes();
    for (at, byte) in bytes.iter().enumerate() {
        if *byte == b'#' && at > 0 && bytes[at - 1].is_ascii_whitespace() {
            return line[..at].trim_end();
        }
    }
    line
}

/// Split `--opt=value` or `--opt value` forms: the option name and its value, if any.
fn option_value<'a>(
    token: &'a str,
    rest: &mut std::slice::Iter<'a, &'a str>,
) -> (&'a str, Option<&'a str>) {
    match token.split_once('=') {
        Some((name, value)) if name.starts_with("--") => (name, Some(value)),
        _ => (token, rest.next().copied()),
    }
}

fn parse_into(
    text: &str,
    path: &Path,
    as_constraints: bool,
    input: &mut RequirementsTxt,
    includes: &mut Includes,
) -> Result<(), Error> {
    for (line, content) in logical_lines(text) {
        let origin = Origin {
            file: path.to_owned(),
            line,
        };
        if content.starts_with('-') {
            parse_option_line(&content, path, &origin, input, includes)?;
            continue;
        }
        let entry = parse_requirement_line(&content, &origin)?;
        if as_constraints {
            input.constraints.push(entry);
        } else {
            input.requirements.push(entry);
        }
    }
    Ok(())
}

fn parse_option_line(
    content: &str,
    path: &Path,
    origin: &Origin,
    input: &mut RequirementsTxt,
    includes: &mut Includes,
) -> Result<(), Error> {
    let tokens: Vec<&str> = content.split_whitespace().collect();
    let mut rest = tokens.iter();
    let Some(first) = rest.next() else {
        return Ok(());
    };
    // `-rfile` and `-cfile` are pip spellings too.
    let (name, value) = match *first {
        short if (short.starts_with("-r") || short.starts_with("-c")) && short.len() > 2 => {
            (&short[..2], Some(&short[2..]))
        }
        token => option_value(token, &mut rest),
    };
    let include = match name {
        "-r" | "--requirement" => Some(false),
        "-c" | "--constraint" => Some(true),
        _ => None,
    };
    if let Some(as_constraints) = include {
        let Some(file) = value else {
            return Err(Error::Invalid {
                origin: origin.clone(),
                message: format!("{name} needs a file name"),
            });
        };
        return include_file(file, path, as_constraints, origin, input, includes);
    }
    if name == "--pre" {
        input.allow_prereleases = true;
        return Ok(());
    }
    if IGNORED_FLAGS.contains(&name) {
        return Ok(());
    }
    if IGNORED_WITH_VALUE.contains(&name) {
        return if value.is_some() {
            Ok(())
        } else {
            Err(Error::Invalid {
                origin: origin.clone(),
                message: format!("{name} needs a value"),
            })
        };
    }
    let hint = match name {
        "-e" | "--editable" => "editable installs need a local checkout; list the package by name",
        "--no-binary" | "--only-binary" => "choose wheels or sdists with --providers",
        _ => "remove the option (mach-nix resolves from its snapshot only)",
    };
    Err(Error::Unsupported {
        origin: origin.clone(),
        what: format!("the option {}", clip(name)),
        hint,
    })
}

/// Read and parse the `-r`/`-c` include `file`, written in `path`.
fn include_file(
    file: &str,
    path: &Path,
    as_constraints: bool,
    origin: &Origin,
    input: &mut RequirementsTxt,
    includes: &mut Includes,
) -> Result<(), Error> {
    let included = path.parent().unwrap_or(Path::new(".")).join(file);
    // Compared as canonical paths: `-r ./a.txt` in a.txt is the same file.
    let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    let stack = &mut includes.stack;
    if let Some(first) = stack.iter().position(|seen| same(seen, &included)) {
        let chain: Vec<String> = stack[first..]
            .iter()
            .chain([&included])
            .map(|p| clip(&p.display().to_string()))
            .collect();
        return Err(Error::IncludeCycle {
            origin: origin.clone(),
            file: included,
            chain: chain.join(" → "),
        });
    }
    if stack.len() >= MAX_INCLUDE_DEPTH {
        return Err(Error::Invalid {
            origin: origin.clone(),
            message: format!(
                "includes nest more than {MAX_INCLUDE_DEPTH} files deep (through {})",
                clip(&included.display().to_string())
            ),
        });
    }
    // A file included twice the same way is read once: its lines would add nothing, and a chain
    // of files each including the next twice would double the work at every level.
    let key = std::fs::canonicalize(&included).unwrap_or_else(|_| included.clone());
    if !includes.read.insert((key, as_constraints)) {
        return Ok(());
    }
    let text = read_text(&included).map_err(|err| Error::Invalid {
        origin: origin.clone(),
        message: match err {
            Error::Io { path, source } => {
                format!(
                    "cannot read included file {}: {source}",
                    clip(&path.display().to_string())
                )
            }
            other => format!("included file {other}"),
        },
    })?;
    input.files.push(included.clone());
    includes.stack.push(included.clone());
    parse_into(&text, &included, as_constraints, input, includes)?;
    includes.stack.pop();
    Ok(())
}

fn parse_requirement_line(content: &str, origin: &Origin) -> Result<Entry, Error> {
    // Per-requirement options follow the requirement: `name==1 --hash=sha256:… --hash …`.
    let (spec, options) = match content.find(" --").or_else(|| content.find("\t--")) {
        Some(at) => (content[..at].trim(), content[at..].trim()),
        None => (content, ""),
    };
    let mut hashes = Vec::new();
    let tokens: Vec<&str> = options.split_whitespace().collect();
    let mut rest = tokens.iter();
    while let Some(token) = rest.next() {
        let (name, value) = option_value(token, &mut rest);
        if name != "--hash" {
            return Err(Error::Unsupported {
                origin: origin.clone(),
                what: format!("the per-requirement option {}", clip(name)),
                hint: "only --hash is understood after a requirement",
            });
        }
        hashes.push(parse_hash(value.unwrap_or(""), origin)?);
    }
    if spec.contains("://") && !spec.contains('@') || spec.starts_with('.') || spec.starts_with('/')
    {
        return Err(Error::Unsupported {
            origin: origin.clone(),
            what: format!("the bare URL or path {:?}", clip(spec)),
            hint: "write `name @ URL` with a file that the snapshot has, or the name and version",
        });
    }
    let requirement = parse_pep508(spec).map_err(|message| Error::Invalid {
        origin: origin.clone(),
        message,
    })?;
    if let Some(VersionOrUrl::Url(url)) = &requirement.version_or_url {
        let scheme = url.scheme();
        if scheme != "https" && scheme != "http" {
            return Err(Error::Unsupported {
                origin: origin.clone(),
                what: format!("the {} URL of {}", clip(scheme), requirement.name),
                hint: "VCS and local requirements cannot be resolved offline; require a released version",
            });
        }
    }
    Ok(Entry {
        requirement,
        hashes,
        origin: origin.clone(),
    })
}

fn parse_hash(value: &str, origin: &Origin) -> Result<[u8; 32], Error> {
    let invalid = |message: String| Error::Invalid {
        origin: origin.clone(),
        message,
    };
    let Some(hex_digest) = value.strip_prefix("sha256:") else {
        return Err(invalid(format!(
            "--hash {:?}: expected sha256:<64 hex digits> (the snapshot records sha256 only)",
            clip(value)
        )));
    };
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut digest)
        .map_err(|err| invalid(format!("--hash {:?}: {err}", clip(value))))?;
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RequirementsTxt, Error> {
        parse_requirements_txt(text, Path::new("req.txt"))
    }

    fn names(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| e.requirement.name.to_string())
            .collect()
    }

    #[test]
    fn pip_syntax_is_understood() {
        let input = parse(
            "# a comment\n\
             requests[socks]>=2.0 ; python_version >= '3.8'  # trailing comment\n\
             numpy==1.26.4 \\\n    --hash=sha256:0000000000000000000000000000000000000000000000000000000000000001\n\
             --index-url https://example.org/simple\n\
             --pre\n\
             foo#not-a-comment==1\n",
        );
        let err = input.expect_err("foo#... is not PEP 508");
        assert!(err.to_string().starts_with("req.txt:7:"), "{err}");
        let input = parse(
            "requests[socks]>=2.0 ; python_version >= '3.8'  # trailing\n\
             numpy==1.26.4 \\\n  --hash=sha256:0000000000000000000000000000000000000000000000000000000000000001\n\
             --pre\n",
        )
        .expect("valid file");
        assert!(input.allow_prereleases);
        assert_eq!(input.requirements.len(), 2);
        assert_eq!(input.requirements[0].requirement.extras.len(), 1);
        assert_eq!(input.requirements[1].origin.line, 2);
        assert_eq!(input.requirements[1].hashes[0][31], 1);
    }

    // Regression: the crawler's reader only knew `-r F` and `--requirement F`, so projects of
    // `-rF` and `--requirement=F` includes were never crawled.
    #[test]
    fn every_include_spelling_is_read_relative_to_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (file, text) in [
            ("a.txt", "six\n"),
            ("b.txt", "attrs\n"),
            ("c.txt", "idna\n"),
            ("d.txt", "toml\n"),
            ("con.txt", "six<2\n"),
            ("con2.txt", "attrs<30\n"),
        ] {
            std::fs::write(dir.path().join(file), text).expect("write");
        }
        let main = dir.path().join("main.txt");
        let input = parse_requirements_txt(
            "-r a.txt\n-rb.txt\n--requirement c.txt\n--requirement=d.txt\n\
             -c con.txt\n--constraint=con2.txt\nflask\n",
            &main,
        )
        .expect("valid");
        assert_eq!(
            names(&input.requirements),
            ["six", "attrs", "idna", "toml", "flask"]
        );
        assert_eq!(names(&input.constraints), ["six", "attrs"]);
        assert_eq!(input.constraints[0].origin.file, dir.path().join("con.txt"));
        assert_eq!(input.files.len(), 7);
        assert_eq!(input.files[0], main);
    }

    // Regression: the crawler's reader followed an include cycle until the stack overflowed.
    #[test]
    fn include_cycles_are_refused_with_their_chain() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = dir.path().join("a.txt");
        std::fs::write(&a, "-r a.txt\n").expect("write");
        let err = parse_requirements_txt("-r a.txt\n", &a).expect_err("cycle");
        assert!(matches!(err, Error::IncludeCycle { .. }), "{err}");
        // Another spelling of the same file is the same file.
        std::fs::write(&a, "-r ./a.txt\n").expect("write");
        let err = parse_requirements_txt("-r ./a.txt\n", &a).expect_err("cycle");
        assert!(matches!(err, Error::IncludeCycle { .. }), "{err}");
        // A longer cycle names every file on it, starting where it closes.
        std::fs::write(&a, "-r b.txt\n").expect("write");
        std::fs::write(dir.path().join("b.txt"), "-r a.txt\n").expect("write");
        let main = dir.path().join("main.txt");
        let err = read_requirements_txt(&main).expect_err("missing main");
        assert!(matches!(err, Error::Io { .. }), "{err}");
        std::fs::write(&main, "-r a.txt\n").expect("write");
        let err = read_requirements_txt(&main).expect_err("cycle");
        let (a, b) = (a.display(), dir.path().join("b.txt"));
        let b = b.display();
        assert_eq!(
            err.to_string(),
            format!("{b}:1: {a} includes itself (through {a} → {b} → {a})")
        );
    }

    // Regression: files each including the next one three times were read 3^depth times (a
    // hang at 40 levels); 10 levels keep the failure quick.
    #[test]
    fn a_file_included_twice_is_read_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        for i in 0..10 {
            std::fs::write(
                dir.path().join(format!("{i}.txt")),
                format!(
                    "-r {next}.txt\n-r ./{next}.txt\n-c {next}.txt\n",
                    next = i + 1
                ),
            )
            .expect("write");
        }
        std::fs::write(dir.path().join("10.txt"), "six\n").expect("write");
        let input = parse_requirements_txt("-r 0.txt\nsix<2\n", &dir.path().join("main.txt"))
            .expect("valid");
        // main.txt, 0..=10 as requirements, 1..=10 as constraints.
        assert_eq!(input.files.len(), 1 + 11 + 10);
        assert_eq!(names(&input.requirements), ["six", "six"]);
        assert_eq!(names(&input.constraints), ["six"]);
    }

    #[test]
    fn includes_nest_at_most_64_deep() {
        let dir = tempfile::tempdir().expect("temp dir");
        for i in 0..100 {
            std::fs::write(
                dir.path().join(format!("{i}.txt")),
                format!("-r {}.txt\n", i + 1),
            )
            .expect("write");
        }
        std::fs::write(dir.path().join("100.txt"), "six\n").expect("write");
        let err = parse_requirements_txt("-r 0.txt\n", &dir.path().join("main.txt"))
            .expect_err("too deep");
        assert!(
            err.to_string()
                .contains("includes nest more than 64 files deep"),
            "{err}"
        );
    }

    #[test]
    fn unsupported_lines_name_file_and_line() {
        for (text, needle) in [
            (
                "six\n-e ./local\n",
                "req.txt:2: the option -e is not supported",
            ),
            (
                "six\n--editable=./local\n",
                "req.txt:2: the option --editable is not supported",
            ),
            (
                "--unknown-option\n",
                "req.txt:1: the option --unknown-option",
            ),
            (
                "pkg @ git+https://github.com/a/b\n",
                "req.txt:1: the git+https URL",
            ),
            ("./local/path\n", "req.txt:1: the bare URL or path"),
            (
                "six --install-option=x\n",
                "per-requirement option --install-option",
            ),
            ("six --hash=md5:abc\n", "expected sha256"),
            ("-r\n", "-r needs a file name"),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.to_string().contains(needle), "{text:?} gave {err}");
        }
    }

    // Regression: 20,000 nested parentheses overflowed the stack of uv's marker parser.
    #[test]
    fn deep_nesting_is_an_error_with_file_and_line() {
        let deep = format!(
            "six\nfoo; {}python_version > '3'{}\n",
            "(".repeat(20_000),
            ")".repeat(20_000)
        );
        let err = parse(&deep).expect_err("too deep");
        let message = err.to_string();
        assert!(
            message.starts_with("req.txt:2: not a PEP 508 requirement: parentheses nested 65 deep"),
            "{message}"
        );
    }

    // Regression: a 1 MB bad line was repeated in full (3 MB of stderr with uv's underline).
    #[test]
    fn errors_repeat_little_of_a_long_line() {
        let long = format!("requests>=>2{}\n", "x".repeat(1_000_000));
        let message = parse(&long).expect_err("invalid").to_string();
        assert!(message.len() < 500, "{} bytes", message.len());
        assert!(
            message.starts_with("req.txt:1: not a PEP 508 requirement:"),
            "{message}"
        );
        assert!(message.contains("bytes in all"), "{message}");
        let hash = format!("six --hash=sha256:{}\n", "g".repeat(1_000_000));
        let message = parse(&hash).expect_err("invalid").to_string();
        assert!(message.len() < 500, "{} bytes", message.len());
        let option = format!("--{}\n", "o".repeat(1_000_000));
        let message = parse(&option).expect_err("invalid").to_string();
        assert!(message.len() < 500, "{} bytes", message.len());
    }

    // Regression: a BOM gave "invalid character" on the first line.
    #[test]
    fn a_file_with_a_byte_order_mark_is_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let main = dir.path().join("req.txt");
        std::fs::write(&main, "\u{feff}six\n-r inc.txt\n").expect("write");
        std::fs::write(dir.path().join("inc.txt"), "\u{feff}attrs\n").expect("write");
        let input = read_requirements_txt(&main).expect("valid");
        assert_eq!(names(&input.requirements), ["six", "attrs"]);
    }

    #[cfg(unix)]
    #[test]
    fn an_included_device_is_refused_with_the_including_line() {
        let err = parse("six\n-r /dev/zero\n").expect_err("a device");
        assert!(
            err.to_string()
                .starts_with("req.txt:2: included file /dev/zero: a character device"),
            "{err}"
        );
    }
}
