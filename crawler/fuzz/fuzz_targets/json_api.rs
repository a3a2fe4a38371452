//! The JSON API document (`/pypi/NAME/json`): any body gives a page or an error message,
//! never a panic.
#![no_main]

use std::str::FromStr;

use db_format::types::PackageName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let (Ok(name), Ok(page_url)) = (
        PackageName::from_str("requests"),
        url::Url::parse("https://pypi.org/pypi/requests/json"),
    ) else {
        return;
    };
    let _ = crawler::pypi::project::parse_json_api(&name, &page_url, body);
});
