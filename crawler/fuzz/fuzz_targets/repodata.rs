//! A conda `repodata.json`: any body gives records and skipped records (or a JSON error), never
//! a panic; the records' match specs are then checked as `publish-db` does.
#![no_main]

use std::str::FromStr;

use crawler::conda::{ChannelSubdir, check_specs, parse_repodata};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(target) = ChannelSubdir::from_str("free/noarch") else {
        return;
    };
    if let Ok((records, _skipped)) =
        parse_repodata(&target, "https://conda.anaconda.org/free/noarch/", body)
    {
        let _ = check_specs(&records);
    }
});
