//! Copies the contract (`wit/policy.wit`) into `$OUT_DIR/wit` for `generate!`: unchanged, or with
//! the `contract-0-4` feature, as package version 0.4.0, so hosts can be shown refusing a
//! contract version they do not speak.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let source = manifest.join("../../../wit/policy.wit");
    println!("cargo:rerun-if-changed={}", source.display());
    let wit = std::fs::read_to_string(&source).unwrap_or_else(|e| panic!("cannot read {}: {e}", source.display()));
    let wit = if std::env::var_os("CARGO_FEATURE_CONTRACT_0_4").is_some() {
        let package = wit.lines().find(|l| l.starts_with("package failover:policy@")).expect("the contract names its package");
        wit.replacen(package, "package failover:policy@0.4.0;", 1)
    } else {
        wit
    };
    let dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("wit");
    std::fs::create_dir_all(&dir).expect("create $OUT_DIR/wit");
    std::fs::write(dir.join("policy.wit"), wit).expect("write $OUT_DIR/wit/policy.wit");
}
