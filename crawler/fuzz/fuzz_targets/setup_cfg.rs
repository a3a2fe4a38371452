//! `setup.cfg`: any text (INI sections, continuation lines, `;` lists) parses without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = crawler::extract::static_metadata::parse_setup_cfg(text);
});
