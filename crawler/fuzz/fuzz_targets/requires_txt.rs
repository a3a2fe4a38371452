//! egg-info `requires.txt`: any text (sections, markers, junk) parses to static dependencies
//! without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = crawler::extract::static_metadata::parse_requires_txt(text);
});
