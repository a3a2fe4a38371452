//! The zip central-directory reader used for wheels (whole files and range-fetched tails):
//! locating and parsing the directory and inflating every member never panics, with bounded
//! output.
#![no_main]

use crawler::extract::Limits;
use crawler::extract::zip::{check_path, entries_of, locate_central_directory, read_member};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|archive: &[u8]| {
    let _ = locate_central_directory(archive, 1 << 20);
    let limits = Limits {
        max_member_bytes: 1 << 20,
        max_members: 1_000,
        max_total_bytes: 4 << 20,
        max_download_bytes: 4 << 20,
    };
    let Ok(entries) = entries_of(archive, &limits) else {
        return;
    };
    for entry in entries.iter().take(64) {
        let _ = check_path(&entry.name);
        let _ = read_member(archive, entry, limits.max_member_bytes);
    }
});
