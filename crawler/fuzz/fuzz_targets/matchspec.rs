//! Conda match specs: each input line is a `depends` entry and the next a `constrains` entry of
//! one record; checking them (lenient parse, as conda reads repodata) never panics.
#![no_main]

use db_format::CondaRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let mut depends = Vec::new();
    let mut constrains = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if index % 2 == 0 {
            depends.push(line.to_string());
        } else {
            constrains.push(line.to_string());
        }
    }
    let record = CondaRecord {
        name: "fuzz".into(),
        channel: "free".into(),
        subdir: "noarch".into(),
        filename: "fuzz-1.0-0.tar.bz2".into(),
        version: "1.0".into(),
        build: "0".into(),
        depends,
        constrains,
        ..CondaRecord::default()
    };
    let _ = crawler::conda::check_specs(&[record]);
});
