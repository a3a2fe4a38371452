//! Write the universes of `tests/limits.rs` as snapshot files, so that whole `mach-nix gen` runs
//! on them can be timed (`scripts/bench-resolve.sh --limits DIR`): for each case,
//! `DIR/<case>/snapshot.mnxdb`, `DIR/<case>/requirements.txt` and `DIR/<case>/expect` (the exit
//! code `mach-nix gen` must give: 0 resolved, 1 unresolvable or stopped).
//!
//! usage: cargo run --release -p resolver --example limit_universes -- DIR

#[path = "../tests/common/mod.rs"]
mod common;

use std::error::Error;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: limit_universes DIR")?,
    );
    let mut cases: Vec<(&str, common::Universe, String, u8)> = Vec::new();
    let mut chain = common::chain(10_000, &["p00000"]);
    cases.push(("chain-10000-cycle", chain.clone(), "p00000\n".into(), 0));
    chain = common::chain(10_000, &["leaf>=2"]);
    chain.extend(common::universe(&[("leaf", "1.0", &[])]));
    cases.push(("chain-10000-conflict", chain, "p00000\n".into(), 1));
    let (universe, requirements) = common::many_requirements(5_000);
    cases.push(("requirements-5000", universe, requirements, 0));
    for holes in [5, 6, 9] {
        let (universe, requirements) = common::pigeonhole(holes);
        let name = match holes {
            5 => "pigeonhole-5",
            6 => "pigeonhole-6",
            _ => "pigeonhole-9",
        };
        cases.push((name, universe, requirements, 1));
    }
    for (name, universe, requirements, expect) in cases {
        let case = dir.join(name);
        std::fs::create_dir_all(&case)?;
        std::fs::write(
            case.join("snapshot.mnxdb"),
            common::snapshot_bytes(&universe),
        )?;
        std::fs::write(case.join("requirements.txt"), requirements)?;
        std::fs::write(case.join("expect"), format!("{expect}\n"))?;
        println!("{}", case.display());
    }
    Ok(())
}
