//! Any text given as `--providers` (the inline spec and the TOML file form) returns a
//! configuration or an error, never a panic; a configuration answers every lookup.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use resolver::provider::ProviderConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for config in [
        ProviderConfig::parse(text),
        ProviderConfig::from_toml(text, Path::new("providers.toml")),
    ]
    .into_iter()
    .flatten()
    {
        for name in text.split(|c: char| c.is_whitespace() || c == '=').take(16) {
            let _ = config.for_package(name);
        }
    }
});
