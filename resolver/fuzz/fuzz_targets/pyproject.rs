//! Any text given to the pyproject.toml reader returns an input or an error, never a panic. The
//! first line names the optional-dependency groups to select (comma-separated), the rest is the
//! file, so the extras path is explored too.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (first, rest) = text.split_once('\n').unwrap_or(("", text));
    let extras: Vec<String> = first
        .split(',')
        .filter(|extra| !extra.is_empty())
        .map(str::to_owned)
        .collect();
    let path = Path::new("pyproject.toml");
    let _ = resolver::input::parse_pyproject(rest, path, &extras);
    let _ = resolver::input::parse_pyproject(text, path, &[]);
});
