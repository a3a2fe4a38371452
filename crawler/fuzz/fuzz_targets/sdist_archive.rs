//! sdist archives held in memory (.tar.gz, .tar, .zip, chosen by the first byte): reading the
//! members and deciding the metadata never panics, and small limits keep each run bounded.
#![no_main]

use crawler::extract::Limits;
use crawler::extract::sdist::extract_sdist;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, archive)) = data.split_first() else {
        return;
    };
    let filename = match selector % 3 {
        0 => "fuzz-1.0.tar.gz",
        1 => "fuzz-1.0.tar",
        _ => "fuzz-1.0.zip",
    };
    let limits = Limits {
        max_member_bytes: 1 << 20,
        max_members: 1_000,
        max_total_bytes: 4 << 20,
        max_download_bytes: 4 << 20,
    };
    let _ = extract_sdist(filename, archive, &limits);
});
