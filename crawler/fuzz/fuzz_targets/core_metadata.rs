//! METADATA / PKG-INFO: any bytes parse to some `CoreMetadata` (never a panic), and turning it
//! into a dependency record (which parses every `Requires-Dist`) never panics either.
#![no_main]

use crawler::extract::metadata::CoreMetadata;
use db_format::MetadataSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let metadata = CoreMetadata::parse(data);
    let _ = metadata.version_at_least(2, 2);
    let _ = metadata.is_dynamic("Requires-Dist");
    let _ = metadata.into_record(MetadataSource::WheelMetadata, None);
});
