//! Any text given to the requirements.txt parser returns an input or an error, never a panic.
//! The file lives in a directory that does not exist, so relative `-r`/`-c` includes fail to
//! read (an error, as for a user); includes of device files are skipped so that a generated
//! `-r /dev/zero` cannot hang the run.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if ["/dev", "/proc", "/sys"]
        .iter()
        .any(|dir| text.contains(dir))
    {
        return;
    }
    let path = Path::new("/nonexistent-mach-nix-fuzz/requirements.txt");
    let _ = resolver::input::parse_requirements_txt(text, path);
});
