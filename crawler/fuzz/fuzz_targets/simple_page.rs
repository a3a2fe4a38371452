//! The PEP 691 JSON project page: any body gives a page or an error message, never a panic
//! (hashes, URLs relative to the page, upload times, yanks, `core-metadata` of any JSON type).
#![no_main]

use std::str::FromStr;

use db_format::types::PackageName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let (Ok(name), Ok(page_url)) = (
        PackageName::from_str("requests"),
        url::Url::parse("https://pypi.org/simple/requests/"),
    ) else {
        return;
    };
    let _ = crawler::pypi::project::parse_simple_page(&name, &page_url, body);
});
