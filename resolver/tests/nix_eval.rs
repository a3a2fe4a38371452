//! The generated Nix, evaluated with the real `nix-instantiate --eval --strict` against the
//! nixpkgs stub in `tests/nix-stub/`, from resolutions of real PyPI data; and insta snapshots of
//! the generated text. Needs Nix: `scripts/install-nix.sh`.

mod nix_common;

use nix_common::*;
use resolver::resolution::Provider;
use serde_json::json;

fn hex(sha256: Option<[u8; 32]>) -> String {
    hex::encode(sha256.expect("fixture files have a sha256"))
}

#[test]
fn requests_closure_evaluates_to_the_resolved_versions_urls_hashes_and_graph() {
    let resolution = wheels(&["requests"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), "requests.nix", &resolution);
    let summary = summarize(&file, "", &resolution);

    assert_eq!(
        summary.keys().collect::<Vec<_>>(),
        ["certifi", "charset-normalizer", "idna", "requests", "urllib3"]
    );
    for package in &resolution.packages {
        let evaluated = &summary[&package.name];
        let file = package.file.as_ref().expect("wheel");
        assert_eq!(evaluated["version"], json!(package.version), "{}", package.name);
        assert_eq!(evaluated["url"], json!(file.url), "{}", package.name);
        assert_eq!(evaluated["sha256"], json!(hex(file.sha256)), "{}", package.name);
        assert_eq!(evaluated["dependencies"], json!(package.dependencies), "{}", package.name);
        assert_eq!(evaluated["provider"], json!("wheel"));
        assert_eq!(evaluated["doCheck"], json!(false));
    }
    assert_eq!(
        summary["requests"]["dependencies"],
        json!(["certifi", "charset-normalizer", "idna", "urllib3"])
    );
    // charset-normalizer is a cp311 manylinux wheel: autoPatchelf and the manylinux libraries.
    assert_eq!(summary["charset-normalizer"]["native"], json!(["auto-patchelf-hook"]));
    assert!(summary["charset-normalizer"]["buildInputs"]
        .as_array()
        .is_some_and(|libs| libs.contains(&json!("glibc"))));
    assert_eq!(summary["idna"]["native"], json!([]));
    assert_eq!(
        environment_names(&file, ""),
        ["certifi", "charset-normalizer", "idna", "requests", "urllib3"]
    );
}

