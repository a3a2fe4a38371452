//! Any byte sequence given to the snapshot reader returns an error or a value, never a panic,
//! an abort or an out-of-bounds read. The first bytes steer which lookups are tried.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(snapshot) = db_format::Snapshot::from_bytes(data.to_vec()) else {
        return;
    };
    let _ = snapshot.verify();
    for name in snapshot.project_names().take(64).flatten() {
        let _ = snapshot.project(&name);
    }
    for project in snapshot.projects().take(64) {
        let _ = project;
    }
    let _ = snapshot.project("requests");
});
