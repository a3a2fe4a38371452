//! How few requests a wheel's `METADATA` costs when there is no PEP 658 file: synthetic wheels
//! served by the fake PyPI, the requests counted.

mod support;

use crawler::state::State;
use support::FakePypi;

/// A zip of stored members, in the given order.
fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let offset = out.len() as u32;
        let crc = crc32(data);
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 8]);
        central.extend_from_slice(&(0o100_644u32 << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let central_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn metadata_costs_one_range_request_when_it_lies_in_the_tail_and_two_otherwise() {
    let payload: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let metadata = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: six>=1.0\n";
    // setuptools/wheel write *.dist-info last: METADATA is in the last few KiB.
    let late = zip(&[
        ("demo/data.bin", &payload),
        ("demo-1.0.dist-info/METADATA", metadata),
    ]);
    // A wheel whose METADATA comes first, far from the end.
    let early = zip(&[
        ("demo-2.0.dist-info/METADATA", metadata),
        ("demo/data.bin", &payload),
    ]);
    let server = FakePypi::start();
    server.add_project(
        "demo",
        vec![
            ("demo-1.0-py3-none-any.whl".into(), late),
            ("demo-2.0-py3-none-any.whl".into(), early),
        ],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let state_dir = dir.path().join("state");
    support::crawl(&server, &state_dir, &["--packages", "demo"]);
    let ranges = |wheel: &str| {
        server
            .seen()
            .iter()
            .filter(|seen| seen.path.ends_with(wheel) && seen.range.is_some())
            .count()
    };
    assert_eq!(ranges("demo-1.0-py3-none-any.whl"), 1);
    assert_eq!(ranges("demo-2.0-py3-none-any.whl"), 2);
    assert!(
        server
            .seen()
            .iter()
            .all(|seen| seen.range.is_some() || !seen.path.ends_with(".whl")),
        "never the whole wheel"
    );
    let state = State::open(&state_dir).expect("state");
    for file in state.files("demo").expect("files") {
        let extracted = file.dependencies.expect("examined");
        assert_eq!(extracted.method, "range");
        assert_eq!(extracted.record.requires_dist, ["six>=1.0"]);
    }
}
