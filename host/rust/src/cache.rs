//! Compiled policies on disk: `Component::serialize` output keyed by the sha256 of the `.wasm`
//! and the engine's compatibility hash (which covers the wasmtime version and its settings),
//! so loading a known policy skips compilation (hundreds of ms) for a deserialize (under 1 ms).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use crate::error::Error;

/// A directory of compiled policies that only this host writes.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
}

impl ArtifactCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ArtifactCache { dir: dir.into() }
    }

    /// `$XDG_CACHE_HOME/failover-policy`, else `~/.cache/failover-policy`, else one under the
    /// system temp directory.
    pub fn default_dir() -> PathBuf {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|home| Path::new(&home).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("failover-policy")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the artifact for `bytes` compiled by `engine` lives.
    pub fn path_for(&self, engine: &wasmtime::Engine, bytes: &[u8]) -> PathBuf {
        self.path_for_sha256(engine, &sha256_hex(bytes))
    }

    /// `path_for`, from the sha256 of the `.wasm` (lowercase hex) already at hand.
    fn path_for_sha256(&self, engine: &wasmtime::Engine, sha256: &str) -> PathBuf {
        let mut compat = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut compat);
        self.dir.join(format!("{sha256}-{:016x}.cwasm", compat.finish()))
    }

    /// The compiled component for the `.wasm` whose sha256 is `sha256`, if the cache holds a
    /// loadable one.
    pub(crate) fn cached(&self, engine: &wasmtime::Engine, sha256: &str) -> Option<Component> {
        load(engine, &self.path_for_sha256(engine, sha256))
    }

    /// The compiled component for `bytes` (whose sha256 is `sha256`): from the cache when present
    /// and loadable, else compiled and stored. A cache that cannot be written only costs the next
    /// load a compile.
    pub(crate) fn component(&self, engine: &wasmtime::Engine, bytes: &[u8], sha256: &str, origin: &str) -> Result<Component, Error> {
        let path = self.path_for_sha256(engine, sha256);
        if let Some(component) = load(engine, &path) {
            return Ok(component);
        }
        let component =
            Component::new(engine, bytes).map_err(|e| Error::InvalidPolicy { origin: origin.to_string(), message: Error::one_line(&e) })?;
        if let Ok(compiled) = component.serialize() {
            // Written aside and renamed, so a concurrent reader never sees half a file.
            let partial = path.with_extension(format!("partial-{}", std::process::id()));
            let stored = std::fs::create_dir_all(&self.dir)
                .and_then(|()| std::fs::write(&partial, compiled))
                .and_then(|()| std::fs::rename(&partial, &path));
            if stored.is_err() {
                let _ = std::fs::remove_file(&partial);
            }
        }
        Ok(component)
    }
}

/// The compiled component in the cache file `path`, if it is there and loads.
///
/// Mapped from a private copy, not read into memory: reading means a page fault per page of a
/// fresh allocation (about 1.2 ms for this policy), while copying the file in the kernel and
/// mapping the copy costs well under that, and instances then initialise their memory from the
/// copy's pages. Not the cache file itself: a file changed under a mapping (truncated, say, by
/// someone editing the cache) would crash the process with SIGBUS. The copy is unlinked once
/// mapped, so nothing else can reach it.
fn load(engine: &wasmtime::Engine, path: &Path) -> Option<Component> {
    static LOADS: AtomicU64 = AtomicU64::new(0);
    let private = path.with_extension(format!("loading-{}-{}", std::process::id(), LOADS.fetch_add(1, Ordering::Relaxed)));
    // SAFETY (both deserializes): they run native code from the file. Only files this host wrote
    // into its own cache directory are read, named by the content hash of the `.wasm` they came
    // from and by the engine's compatibility hash (wasmtime version and settings); the mapped one
    // is a copy made just now, reachable by this process alone once unlinked.
    if std::fs::copy(path, &private).is_err() {
        let _ = std::fs::remove_file(&private);
        // A cache directory this process may read but not write, or a full disk: read it.
        let compiled = std::fs::read(path).ok()?;
        return unsafe { Component::deserialize(engine, &compiled) }.ok();
    }
    let loaded = unsafe { Component::deserialize_file(engine, &private) };
    let _ = std::fs::remove_file(&private);
    loaded.ok()
}

/// The lowercase hex sha256 of `bytes`: a policy's identity.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
