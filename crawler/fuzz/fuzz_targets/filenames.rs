//! Wheel and sdist file names: telling a file's kind and the version it belongs to (wheel
//! name, sdist name, else the longest listed version it starts with) never panics. The first
//! line is the file name, the rest are the listed versions.
#![no_main]

use std::str::FromStr;

use db_format::FileKind;
use db_format::types::PackageName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let mut lines = text.lines();
    let Some(filename) = lines.next() else {
        return;
    };
    let versions: Vec<String> = lines.map(str::to_string).collect();
    let _ = FileKind::of(filename);
    for project in ["requests", "zope-interface", "a"] {
        if let Ok(name) = PackageName::from_str(project) {
            let _ = crawler::pypi::project::version_of(&name, filename, &versions);
        }
    }
});
