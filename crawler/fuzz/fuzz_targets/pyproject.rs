//! A static `pyproject.toml`: any text gives a `Pyproject` or an error message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = crawler::extract::static_metadata::parse_pyproject(text);
});
