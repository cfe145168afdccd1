//! Builds the policy component (`guest/`) for wasm32-wasip2 and leaves it in `$OUT_DIR` for
//! `include_bytes!`. The guest is its own cargo workspace, built in its own target directory
//! under `$OUT_DIR`, so this nested cargo never waits on the outer build's lock.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const WASM_NAME: &str = "failover_policy.wasm";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.join("../..");
    let guest = root.join("guest");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = out_dir.join("guest-target");

    // A path that does not exist would make cargo rerun this script on every build.
    for path in [guest.join("src"), guest.join("Cargo.toml"), guest.join("Cargo.lock"), root.join("wit")] {
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(guest.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    // The lockfile is committed; until it exists the first build writes it.
    if guest.join("Cargo.lock").exists() {
        cmd.arg("--locked");
    }
    // The outer build's flags and target settings are for the host, not the wasm guest.
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET"] {
        cmd.env_remove(var);
    }

    let output = match cmd.output() {
        Ok(output) => output,
        Err(e) => fail(&format!("could not run cargo to build the guest: {e}")),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("wasm32-wasip2")
            && (stderr.contains("may not be installed")
                || stderr.contains("can't find crate for `core`")
                || stderr.contains("can't find crate for `std`"))
        {
            fail("the wasm32-wasip2 target is missing: run `rustup target add wasm32-wasip2`");
        }
        fail(&format!("building the guest component failed:\n{stderr}"));
    }

    let built = target_dir.join("wasm32-wasip2/release").join(WASM_NAME);
    let dest = out_dir.join(WASM_NAME);
    if let Err(e) = std::fs::copy(&built, &dest) {
        fail(&format!("the guest build left no {}: {e}", built.display()));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}
