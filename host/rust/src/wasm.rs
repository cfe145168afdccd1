//! The process's wasmtime Engines: the optimising one (Cranelift), into which every policy is
//! finally compiled, so a compiled artifact from the cache fits any of them, and a baseline one
//! (Winch), which compiles a never-seen policy about seven times faster into code about 1.6x
//! slower, so a swap can serve its first decision while Cranelift works in the background. One
//! ticker thread advances both engines' epochs: that is how a call's time limit is enforced, on
//! either tier.

use std::sync::OnceLock;
use std::time::Duration;

use crate::error::Error;

/// How often the epoch advances: the granularity of the per-call time limit.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// The variable that turns on a profiler's view of the compiled policy.
const PROFILE_VAR: &str = "FAILOVER_PROFILE";

static ENGINE: OnceLock<Result<wasmtime::Engine, String>> = OnceLock::new();
static BASELINE: OnceLock<Result<wasmtime::Engine, String>> = OnceLock::new();

/// The optimising engine (Cranelift).
pub(crate) fn engine() -> Result<wasmtime::Engine, Error> {
    ENGINE.get_or_init(start).clone().map_err(Error::Runtime)
}

/// The baseline engine (Winch): same settings, fast compilation, slower code. Never cached on
/// disk: what it compiles is replaced by the optimising engine's build.
pub(crate) fn baseline_engine() -> Result<wasmtime::Engine, Error> {
    // The ticker lives with the optimising engine and ticks this one once it exists.
    engine()?;
    BASELINE.get_or_init(|| new_engine(wasmtime::Strategy::Winch)).clone().map_err(Error::Runtime)
}

fn new_engine(strategy: wasmtime::Strategy) -> Result<wasmtime::Engine, String> {
    let mut config = wasmtime::Config::new();
    config.strategy(strategy);
    // Epochs rather than fuel: the compiled code only loads and compares a counter at function
    // entries and loop headers (fuel updates one at every block), and what a stuck call breaks
    // is a wall-clock promise, which an epoch measures directly.
    config.epoch_interruption(true);
    config.profiler(profiler()?);
    wasmtime::Engine::new(&config).map_err(|e| Error::one_line(&e))
}

/// `FAILOVER_PROFILE=perfmap` has wasmtime write `/tmp/perf-<pid>.map`, so `perf report` names
/// the policy's own functions instead of showing anonymous JIT addresses.
fn profiler() -> Result<wasmtime::ProfilingStrategy, String> {
    let Some(value) = std::env::var_os(PROFILE_VAR) else { return Ok(wasmtime::ProfilingStrategy::None) };
    match value.to_str() {
        Some("") => Ok(wasmtime::ProfilingStrategy::None),
        Some("perfmap") => Ok(wasmtime::ProfilingStrategy::PerfMap),
        _ => Err(format!("{PROFILE_VAR}={value:?} is not a profiler this host supports (perfmap, or unset for none)")),
    }
}

fn start() -> Result<wasmtime::Engine, String> {
    let engine = new_engine(wasmtime::Strategy::Cranelift)?;
    let ticking = engine.clone();
    std::thread::Builder::new()
        .name("failover-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(TICK);
            ticking.increment_epoch();
            if let Some(Ok(baseline)) = BASELINE.get() {
                baseline.increment_epoch();
            }
        })
        .map_err(|e| format!("cannot start the epoch ticker thread: {e}"))?;
    Ok(engine)
}
