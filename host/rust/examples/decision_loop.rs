//! One decision repeated on one instance, for a sampling profiler: with
//! `FAILOVER_PROFILE=perfmap`, `perf` names the policy's functions next to wasmtime's.
//!
//! `FAILOVER_PROFILE=perfmap perf record -e cpu-clock -g target/release/examples/decision_loop [on-failure|select|classify|succeeded] [N] [policy.wasm]`
//!
//! Prints the time per call; the compile happens before the timed loop, but a profile samples it
//! too (wasmtime's own `regalloc2` and `cranelift` frames), so read the guest and runtime shares
//! without those.

use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use common::{completion, credentials, primary, rate_limit_429, NoNetwork, CONFIG, HOUR_MS, START_MS};
use failover_host::{Clock, Host, Policy, VirtualClock};

mod common;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let operation = args.next().unwrap_or_else(|| "on-failure".into());
    let calls: u32 = args.next().map(|n| n.parse().with_context(|| format!("calls: {n:?}"))).transpose()?.unwrap_or(300_000);
    let policy = match args.next() {
        Some(path) => Policy::from_bytes(&std::fs::read(&path).with_context(|| path.clone())?, &path)?,
        None => Policy::load_default()?,
    };
    let clock = VirtualClock::new(START_MS);
    let mut inst = policy.instantiate(Host::new(NoNetwork).with_clock(Clock::Virtual(clock.clone())).with_seed(1))?;
    let engine = inst.create_engine(CONFIG, None, &credentials())?;
    let (primary, failure, answer) = (primary(), rate_limit_429(), completion());
    let mut step: Box<dyn FnMut() -> Result<()>> = match operation.as_str() {
        "on-failure" => Box::new(|| {
            clock.advance(HOUR_MS);
            inst.on_failure(&engine, &primary, &failure, None)?;
            Ok(())
        }),
        "select" => Box::new(|| inst.select(&engine)?.map(drop).map_err(|e| anyhow!("no route: {}", e.message))),
        "classify" => Box::new(|| inst.classify("openai", &failure).map(drop).map_err(Into::into)),
        "succeeded" => Box::new(|| inst.succeeded(&answer).map(drop).map_err(Into::into)),
        other => bail!("unknown operation {other:?}: on-failure, select, classify or succeeded"),
    };
    let began = Instant::now();
    for _ in 0..calls {
        step()?;
    }
    println!("{operation}: {:?} per call over {calls} calls", began.elapsed() / calls.max(1));
    Ok(())
}
