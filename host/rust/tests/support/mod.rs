//! What the swap and sandbox tests share: the misbehaving policies from
//! `tests/policies/broken` (built once per feature, cached), a config, and a host that sends
//! nothing on a virtual clock.

#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod redis;
pub mod workers;

use failover_host::types::{CredentialInfo, Failure, Header, HttpResponse, Outbound, TransportFailure, TransportKind};
use failover_host::{Clock, Host, Transport, VirtualClock};

pub struct NoNetwork;

impl Transport for NoNetwork {
    fn send(&mut self, _: &Outbound, _: Option<&Header>) -> Result<HttpResponse, TransportFailure> {
        Err(TransportFailure { kind: TransportKind::Other, message: "this test sends nothing".into() })
    }
}

pub const CONFIG: &str = r#"{
    "providers": {
        "alibaba-coding-plan": {"base_url": "https://coding.example/v1", "credentials": [{"id": "ali-1"}]},
        "tencent-token-plan": {"base_url": "https://tokens.example/v1/", "credentials": [{"id": "ten-1"}]}
    },
    "primary": {"provider": "alibaba-coding-plan", "model": "qwen3.6-plus"},
    "fallback_providers": [{"provider": "tencent-token-plan", "model": "kimi2.5"}]
}"#;

pub const QUOTA: &str = r#"{"error":{"message":"usage allocated quota exceeded.","type":"insufficient_quota","code":"quota_exceeded"}}"#;

pub fn credentials() -> Vec<CredentialInfo> {
    ["ali-1", "ten-1"].map(|id| CredentialInfo { id: id.into(), fingerprint: format!("fp-{id}") }).to_vec()
}

/// A host on a virtual clock that stands still, so snapshots compare equal across instances.
/// An instance of the default policy on a virtual clock at `now_ms`, sending nothing.
pub fn instance_at(now_ms: u64) -> anyhow::Result<failover_host::Instance> {
    let host = Host::new(NoNetwork).with_clock(Clock::Virtual(VirtualClock::new(now_ms))).with_seed(1);
    Ok(failover_host::Policy::load_default()?.instantiate(host)?)
}

pub fn host() -> Host {
    Host::new(NoNetwork).with_clock(Clock::Virtual(VirtualClock::new(1_795_528_800_000))).with_seed(1)
}

pub fn status(code: u16, body: &str) -> Failure {
    Failure::http(HttpResponse { status: code, headers: Vec::new(), body: body.as_bytes().to_vec() })
}

/// The broken policy built with `feature` (`trap`, `loop`, `alloc`, `schema`, `contract-0-3`),
/// as `.wasm` bytes.
/// Builds in its own target directory under cargo's test scratch space, outside the lock of the
/// build running these tests; a file lock keeps two test binaries from mixing up features.
pub fn broken(feature: &str) -> Vec<u8> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/policies/broken");
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("broken-policies");
    std::fs::create_dir_all(&target).expect("scratch dir");
    let out = target.join(format!("broken-{feature}.wasm"));
    let lock = std::fs::File::create(target.join("build.lock")).expect("lock file");
    lock.lock().expect("lock the broken-policy build");
    let sources =
        [crate_dir.join("src/lib.rs"), crate_dir.join("build.rs"), crate_dir.join("Cargo.toml"), crate_dir.join("../../../wit/policy.wit")];
    if !fresh(&out, &sources) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--release", "--locked", "--target", "wasm32-wasip2", "--features", feature, "--manifest-path"])
            .arg(crate_dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target);
        for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET"] {
            cmd.env_remove(var);
        }
        let output = cmd.output().expect("run cargo");
        assert!(output.status.success(), "building the broken policy ({feature}) failed:\n{}", String::from_utf8_lossy(&output.stderr));
        std::fs::copy(target.join("wasm32-wasip2/release/broken_policy.wasm"), &out).expect("copy the broken policy");
    }
    std::fs::read(&out).expect("read the broken policy")
}

/// Whether `out` exists and is newer than every source.
fn fresh(out: &Path, sources: &[PathBuf]) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = modified(out) else { return false };
    sources.iter().all(|s| modified(s).is_some_and(|m| m <= built))
}
