//! Loading the policy component: compile once (into the process's wasmtime `Engine`, or from the
//! compiled-artifact cache), link and pre-instantiate, then `instantiate` as many cheap,
//! independent instances as needed.

use std::path::Path;
use std::sync::OnceLock;

use wasmtime::component::{Component, Linker};

use crate::bindings::{self, Pre};
use crate::cache::{sha256_hex, ArtifactCache};
use crate::contract::Contract;
use crate::error::Error;
use crate::host::{Host, StoreData};
use crate::instance::Instance;
use crate::limits::Limits;

/// The policy built from `guest/` with this host, embedded at compile time.
pub const DEFAULT_POLICY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/failover_policy.wasm"));

/// A compiled, linked policy component, of any contract version this host speaks. Holds nothing
/// per call: each `Instance` has its own Store, so instances never share guest state.
pub struct Policy {
    engine: wasmtime::Engine,
    pre: Pre,
    limits: Limits,
    origin: String,
    sha256: String,
    tier: Tier,
}

/// Which compiler built a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Winch: compiles fast, runs about 1.6x slower. What `PolicyHost::swap_tiered` serves
    /// first from a never-seen `.wasm`, until the optimised build is ready.
    Baseline,
    /// Cranelift: every other way of loading a policy, and the only build the cache holds.
    Optimised,
}

impl Policy {
    /// The embedded policy (`DEFAULT_POLICY`).
    pub fn load_default() -> Result<Policy, Error> {
        Policy::from_bytes(DEFAULT_POLICY, "the built-in policy")
    }

    /// A policy `.wasm` component from disk.
    pub fn load_file(path: impl AsRef<Path>) -> Result<Policy, Error> {
        let (bytes, origin) = read(path.as_ref())?;
        Policy::from_bytes(&bytes, &origin)
    }

    /// A policy `.wasm` component from disk, compiled through `cache`.
    pub fn load_file_cached(path: impl AsRef<Path>, cache: &ArtifactCache) -> Result<Policy, Error> {
        let (bytes, origin) = read(path.as_ref())?;
        Policy::from_bytes_cached(&bytes, &origin, cache)
    }

    /// A policy component from bytes; `origin` names it in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Policy, Error> {
        let engine = crate::wasm::engine()?;
        let component = Component::new(&engine, bytes)
            .map_err(|e| Error::InvalidPolicy { origin: origin.to_string(), message: Error::one_line(&e) })?;
        Policy::link(engine, &component, sha256_hex(bytes), origin, Tier::Optimised)
    }

    /// A policy compiled by the baseline compiler (Winch): several times faster to compile than
    /// `from_bytes`, slower to run, and never cached. For serving a never-seen `.wasm` at once
    /// while the optimised build is made (see `PolicyHost::swap_tiered`).
    pub fn from_bytes_baseline(bytes: &[u8], origin: &str) -> Result<Policy, Error> {
        Policy::baseline(bytes, sha256_hex(bytes), origin)
    }

    pub(crate) fn baseline(bytes: &[u8], sha256: String, origin: &str) -> Result<Policy, Error> {
        let engine = crate::wasm::baseline_engine()?;
        let component = Component::new(&engine, bytes)
            .map_err(|e| Error::InvalidPolicy { origin: origin.to_string(), message: Error::one_line(&e) })?;
        Policy::link(engine, &component, sha256, origin, Tier::Baseline)
    }

    /// The optimised build of the `.wasm` whose sha256 is `sha256`, if `cache` holds it.
    pub(crate) fn from_cache_only(sha256: &str, origin: &str, cache: &ArtifactCache) -> Result<Option<Policy>, Error> {
        let engine = crate::wasm::engine()?;
        match cache.cached(&engine, sha256) {
            Some(component) => Policy::link(engine, &component, sha256.to_string(), origin, Tier::Optimised).map(Some),
            None => Ok(None),
        }
    }

    /// `from_bytes_cached` with the sha256 of `bytes` already at hand.
    pub(crate) fn cached_with_sha256(bytes: &[u8], sha256: String, origin: &str, cache: &ArtifactCache) -> Result<Policy, Error> {
        let engine = crate::wasm::engine()?;
        let component = cache.component(&engine, bytes, &sha256, origin)?;
        Policy::link(engine, &component, sha256, origin, Tier::Optimised)
    }

    /// Like `from_bytes`, but the compiled artifact comes from (or goes to) `cache`.
    pub fn from_bytes_cached(bytes: &[u8], origin: &str, cache: &ArtifactCache) -> Result<Policy, Error> {
        let engine = crate::wasm::engine()?;
        // Hashed once: the hash names the cache file and is the policy's identity.
        let sha256 = sha256_hex(bytes);
        let component = cache.component(&engine, bytes, &sha256, origin)?;
        Policy::link(engine, &component, sha256, origin, Tier::Optimised)
    }

    fn link(engine: wasmtime::Engine, component: &Component, sha256: String, origin: &str, tier: Tier) -> Result<Policy, Error> {
        let invalid = |e: wasmtime::Error| Error::InvalidPolicy { origin: origin.to_string(), message: Error::one_line(&e) };
        // The version first, so a component of another version is refused naming both, not
        // with the first import or export the linker misses.
        let contract = Contract::of(component, &engine, origin)?;
        // Checking imports and exports here makes a wrong component fail at load, not first use.
        let pre = linker(&engine, tier)?.instantiate_pre(component).map_err(invalid)?;
        let pre = Pre::new(contract, pre).map_err(invalid)?;
        Ok(Policy { engine, pre, limits: Limits::default(), origin: origin.to_string(), sha256, tier })
    }

    /// The limits every instance made from now on runs under.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Where it came from (a path, or `the built-in policy`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The sha256 of its `.wasm`, lowercase hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Which compiler built it.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The contract version it speaks.
    pub fn contract(&self) -> Contract {
        self.pre.contract()
    }

    /// A fresh instance (its own Store and guest memory, under this policy's limits) serving `host`.
    pub fn instantiate(&self, host: Host) -> Result<Instance, Error> {
        let mut store = wasmtime::Store::new(&self.engine, StoreData::new(host, self.limits.memory_bytes));
        store.limiter(|data| &mut data.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.limits.ticks());
        let exports = self.pre.instantiate(&mut store).map_err(Error::guest)?;
        Ok(Instance::new(store, exports, self.limits))
    }
}

/// The process's Linker (WASI and the host interface of every contract version) for the engine
/// of `tier` (one per engine, as a Linker belongs to one): built once, as it costs about 0.1 ms,
/// a sizeable share of loading a policy from the cache.
fn linker(engine: &wasmtime::Engine, tier: Tier) -> Result<&'static Linker<StoreData>, Error> {
    static OPTIMISED: OnceLock<Result<Linker<StoreData>, String>> = OnceLock::new();
    static BASELINE: OnceLock<Result<Linker<StoreData>, String>> = OnceLock::new();
    let build = || {
        let mut linker = Linker::<StoreData>::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| Error::one_line(&e))?;
        bindings::add_to_linker(&mut linker).map_err(|e| Error::one_line(&e))?;
        Ok(linker)
    };
    let linker = match tier {
        Tier::Optimised => &OPTIMISED,
        Tier::Baseline => &BASELINE,
    };
    linker.get_or_init(build).as_ref().map_err(|e| Error::Runtime(e.clone()))
}

fn read(path: &Path) -> Result<(Vec<u8>, String), Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::ReadPolicy { path: path.to_path_buf(), source })?;
    Ok((bytes, path.display().to_string()))
}
