//! sdist archives held in memory (.tar.gz, .tar, .zip, .tar.bz2, .tar.xz, chosen by the first
//! byte; from 128 on, only the archive's first half is read, as a streamed download stops
//! early): reading the members and deciding the metadata never panics, and small limits keep
//! each run bounded.
#![no_main]

use crawler::extract::Limits;
use crawler::extract::sdist::{extract_sdist, read_prefix};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, archive)) = data.split_first() else {
        return;
    };
    let filename = match selector % 5 {
        0 => "fuzz-1.0.tar.gz",
        1 => "fuzz-1.0.tar",
        2 => "fuzz-1.0.zip",
        3 => "fuzz-1.0.tar.bz2",
        _ => "fuzz-1.0.tar.xz",
    };
    let limits = Limits {
        max_member_bytes: 1 << 20,
        max_members: 1_000,
        max_total_bytes: 4 << 20,
        max_download_bytes: 4 << 20,
    };
    if selector >= 128 {
        let _ = read_prefix(filename, &archive[..archive.len() / 2], false, &limits);
    } else {
        let _ = extract_sdist(filename, archive, &limits);
    }
});
