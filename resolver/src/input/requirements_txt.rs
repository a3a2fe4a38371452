//! `requirements.txt` as pip reads it: `#` comments, `\` continuations, `-r`/`-c` includes
//! (relative to the including file), PEP 508 lines with extras, markers and `name @ url`, and
//! per-requirement `--hash` options. Index options (`-i`, `--extra-index-url`, …) are accepted
//! and ignored: the snapshot is the index. `--pre` allows pre-releases. What pip accepts but we
//! cannot honour (`-e`, VCS and local paths, `--no-binary`, …) is an error naming file and line.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use db_format::types::Requirement;
use uv_pep508::{VerbatimUrl, VersionOrUrl};

use super::{Entry, Input, InputError, Origin, read_file};

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

/// How deep `-r`/`-c` includes may nest (each level is a stack frame of the parser).
const MAX_INCLUDE_DEPTH: usize = 64;

/// Parse `text`, the content of `path`; includes are read relative to `path`'s directory.
pub fn parse_requirements_txt(text: &str, path: &Path) -> Result<Input, InputError> {
    let mut input = Input::default();
    let mut stack = vec![path.to_owned()];
    parse_into(text, path, false, &mut input, &mut stack)?;
    Ok(input)
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
    input: &mut Input,
    stack: &mut Vec<PathBuf>,
) -> Result<(), InputError> {
    for (line, content) in logical_lines(text) {
        let origin = Origin {
            file: path.to_owned(),
            line,
        };
        if content.starts_with('-') {
            parse_option_line(&content, path, &origin, input, stack)?;
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
    input: &mut Input,
    stack: &mut Vec<PathBuf>,
) -> Result<(), InputError> {
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
            return Err(InputError::Invalid {
                origin: origin.clone(),
                message: format!("{name} needs a file name"),
            });
        };
        let included = path.parent().unwrap_or(Path::new(".")).join(file);
        // Compared as canonical paths: `-r ./a.txt` in a.txt is the same file.
        let same = |a: &Path, b: &Path| match (fs_err::canonicalize(a), fs_err::canonicalize(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        };
        if stack.iter().any(|seen| same(seen, &included)) {
            let chain: Vec<String> = stack.iter().map(|p| p.display().to_string()).collect();
            return Err(InputError::IncludeCycle {
                origin: origin.clone(),
                file: included,
                chain: chain.join(" → "),
            });
        }
        let text = read_file(&included).map_err(|err| match err {
            InputError::Io { path, source } => InputError::Invalid {
                origin: origin.clone(),
                message: format!("cannot read included file {}: {source}", path.display()),
            },
            other => other,
        })?;
        if stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(InputError::Invalid {
                origin: origin.clone(),
                message: format!(
                    "includes nest more than {MAX_INCLUDE_DEPTH} files deep (through {})",
                    included.display()
                ),
            });
        }
        stack.push(included.clone());
        parse_into(&text, &included, as_constraints, input, stack)?;
        stack.pop();
        return Ok(());
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
            Err(InputError::Invalid {
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
    Err(InputError::Unsupported {
        origin: origin.clone(),
        what: format!("the option {name}"),
        hint,
    })
}

fn parse_requirement_line(content: &str, origin: &Origin) -> Result<Entry, InputError> {
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
            return Err(InputError::Unsupported {
                origin: origin.clone(),
                what: format!("the per-requirement option {name}"),
                hint: "only --hash is understood after a requirement",
            });
        }
        hashes.push(parse_hash(value.unwrap_or(""), origin)?);
    }
    if spec.contains("://") && !spec.contains('@') || spec.starts_with('.') || spec.starts_with('/')
    {
        return Err(InputError::Unsupported {
            origin: origin.clone(),
            what: format!("the bare URL or path {spec:?}"),
            hint: "write `name @ URL` with a file that the snapshot has, or the name and version",
        });
    }
    let requirement =
        Requirement::<VerbatimUrl>::from_str(spec).map_err(|err| InputError::Invalid {
            origin: origin.clone(),
            message: format!("not a PEP 508 requirement: {err}"),
        })?;
    if let Some(VersionOrUrl::Url(url)) = &requirement.version_or_url {
        let scheme = url.scheme();
        if scheme != "https" && scheme != "http" {
            return Err(InputError::Unsupported {
                origin: origin.clone(),
                what: format!("the {scheme} URL of {}", requirement.name),
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

fn parse_hash(value: &str, origin: &Origin) -> Result<[u8; 32], InputError> {
    let invalid = |message: String| InputError::Invalid {
        origin: origin.clone(),
        message,
    };
    let Some(hex_digest) = value.strip_prefix("sha256:") else {
        return Err(invalid(format!(
            "--hash {value:?}: expected sha256:<64 hex digits> (the snapshot records sha256 only)"
        )));
    };
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut digest)
        .map_err(|err| invalid(format!("--hash {value:?}: {err}")))?;
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Input, InputError> {
        parse_requirements_txt(text, Path::new("req.txt"))
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

    #[test]
    fn includes_and_constraints_are_read_relative_to_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("base.txt"), "six\n").expect("write");
        std::fs::write(dir.path().join("c.txt"), "six<2\n").expect("write");
        let main = dir.path().join("main.txt");
        let input = parse_requirements_txt("-r base.txt\n--constraint=c.txt\nattrs\n", &main)
            .expect("valid");
        let names: Vec<_> = input
            .requirements
            .iter()
            .map(|e| e.requirement.name.to_string())
            .collect();
        assert_eq!(names, ["six", "attrs"]);
        assert_eq!(input.constraints.len(), 1);
        assert_eq!(input.constraints[0].origin.file, dir.path().join("c.txt"));
    }

    #[test]
    fn include_cycles_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = dir.path().join("a.txt");
        std::fs::write(&a, "-r a.txt\n").expect("write");
        let err = parse_requirements_txt("-r a.txt\n", &a).expect_err("cycle");
        assert!(matches!(err, InputError::IncludeCycle { .. }), "{err}");
        // Another spelling of the same file is the same file (it once recursed until the path
        // was too long).
        std::fs::write(&a, "-r ./a.txt\n").expect("write");
        let err = parse_requirements_txt("-r ./a.txt\n", &a).expect_err("cycle");
        assert!(matches!(err, InputError::IncludeCycle { .. }), "{err}");
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
}
