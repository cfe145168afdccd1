//! What loading a policy costs, printed, not asserted: compiling the `.wasm`, loading the
//! compiled artifact from the cache, a new instance from the pre-instantiated component, and a
//! few decisions through the component (so a change to how the guest is built shows its cost
//! per call next to what it saves at load).
//!
//! `cargo run --release -p failover-host --example load_times [-- a.wasm b.wasm ...]`
//!
//! With `.wasm` paths, each is measured in turns (round-robin, so a busy machine slows all of
//! them alike) and the table has one column per policy; without, the built-in policy.

use std::time::{Duration, Instant};

use common::{completion, credentials, primary, rate_limit_429, NoNetwork, CONFIG, HOUR_MS, START_MS};
use failover_host::{ArtifactCache, Clock, Host, Policy, PolicyHost, VirtualClock, DEFAULT_POLICY};

mod common;

/// The median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// CPU time of the whole process so far (all threads, Linux only; 10 ms ticks), or None.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The median time of one call of `f`, from `batches` batches of `per_batch` calls.
fn per_call(batches: usize, per_batch: u32, mut f: impl FnMut()) -> Duration {
    median(batches, || (0..per_batch).for_each(|_| f())) / per_batch
}

const ROWS: [&str; 15] = [
    "compile from .wasm (Component::new + link)",
    "  CPU time of that, all threads (mean)",
    "compile and store in the cache (serialize)",
    "load from the cache (deserialize + link)",
    "  of which sha256 of the .wasm",
    "  of which Component::deserialize (artifact in memory)",
    "  of which Component::deserialize_file (mmap)",
    "  of which link (instantiate_pre)",
    "new instance (InstancePre::instantiate + Store)",
    "swap to first decision from a new .wasm",
    "swap from the cache (load, restore, check)",
    "decision through PolicyHost (select + snapshot)",
    "on-failure 429 rotate (Instance)",
    "classify 429 (Instance)",
    "succeeded, a 1 KiB answer (Instance)",
];

/// One round of every row for one policy.
fn measure(bytes: &[u8], cache: &ArtifactCache, round: usize) -> anyhow::Result<[Duration; ROWS.len()]> {
    let dir = cache.dir().to_path_buf();
    let cpu_before = cpu_time();
    let compile = median(3, || drop(Policy::from_bytes(bytes, "measured").expect("compile")));
    let compile_cpu = match (cpu_before, cpu_time()) {
        (Some(before), Some(after)) => (after - before) / 3,
        _ => Duration::ZERO,
    };
    let cold = median(3, || {
        let _ = std::fs::remove_dir_all(&dir);
        drop(Policy::from_bytes_cached(bytes, "measured", cache).expect("compile and store"));
    });
    let warm = median(21, || drop(Policy::from_bytes_cached(bytes, "measured", cache).expect("deserialize")));
    let policy = Policy::from_bytes_cached(bytes, "measured", cache)?;
    let sha = median(21, || drop(failover_host::sha256_hex(bytes)));
    let engine = engine();
    let artifact = wasmtime::component::Component::new(&engine, bytes)?.serialize()?;
    // SAFETY: serialized just above by an engine of the same config.
    let deserialize = median(21, || drop(unsafe { wasmtime::component::Component::deserialize(&engine, &artifact) }.expect("deserialize")));
    let file = dir.join("artifact.cwasm");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(&file, &artifact)?;
    // SAFETY: as above; the file is this process's own and is not changed while mapped.
    let deserialize_file =
        median(21, || drop(unsafe { wasmtime::component::Component::deserialize_file(&engine, &file) }.expect("deserialize_file")));
    // SAFETY: as above.
    let component = unsafe { wasmtime::component::Component::deserialize(&engine, &artifact) }?;
    // The host builds its Linker once per process; what each load pays is `instantiate_pre`.
    let mut linker = wasmtime::component::Linker::<Wasi>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    linker.define_unknown_imports_as_traps(&component)?;
    let link = median(21, || drop(linker.instantiate_pre(&component).expect("instantiate_pre")));
    let instantiate = median(201, || drop(policy.instantiate(Host::new(NoNetwork)).expect("instantiate")));

    let credentials = credentials();
    let first_decision = median(3, || {
        let policy = Policy::from_bytes(bytes, "measured").expect("compile");
        let mut inst = policy.instantiate(Host::new(NoNetwork)).expect("instantiate");
        let e = inst.create_engine(CONFIG, None, &credentials).expect("config");
        inst.select(&e).expect("select").expect("route");
    });

    let running = PolicyHost::start(policy, CONFIG, None, credentials.clone(), || Host::new(NoNetwork))?;
    let swap = median(21, || {
        let next = Policy::from_bytes_cached(bytes, "measured", cache).expect("deserialize");
        running.swap(next).expect("swap");
    });
    let decision = per_call(21, 100, || drop(running.select().expect("select")));

    let clock = VirtualClock::new(START_MS + round as u64 * 1000 * HOUR_MS);
    let policy = Policy::from_bytes_cached(bytes, "measured", cache)?;
    let mut inst = policy.instantiate(Host::new(NoNetwork).with_clock(Clock::Virtual(clock.clone())).with_seed(1))?;
    let engine = inst.create_engine(CONFIG, None, &credentials)?;
    let (primary, failure) = (primary(), rate_limit_429());
    let on_failure = per_call(21, 100, || {
        clock.advance(HOUR_MS);
        drop(inst.on_failure(&engine, &primary, &failure, None).expect("on-failure"));
    });
    let classify = per_call(21, 100, || drop(inst.classify("openai", &failure).expect("classify")));
    let answer = completion();
    let succeeded = per_call(21, 100, || assert!(inst.succeeded(&answer).expect("succeeded"), "a plain answer"));
    Ok([
        compile,
        compile_cpu,
        cold,
        warm,
        sha,
        deserialize,
        deserialize_file,
        link,
        instantiate,
        first_decision,
        swap,
        decision,
        on_failure,
        classify,
        succeeded,
    ])
}

/// Store data for the link row: WASI only (the host's own imports are stubbed there).
struct Wasi {
    ctx: wasmtime_wasi::WasiCtx,
    table: wasmtime::component::ResourceTable,
}

impl wasmtime_wasi::WasiView for Wasi {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView { ctx: &mut self.ctx, table: &mut self.table }
    }
}

/// An engine configured as the host's (crate::wasm), for the rows that call wasmtime directly.
fn engine() -> wasmtime::Engine {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    wasmtime::Engine::new(&config).expect("engine")
}

fn main() -> anyhow::Result<()> {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let policies: Vec<(String, Vec<u8>)> = if paths.is_empty() {
        vec![("built-in".to_string(), DEFAULT_POLICY.to_vec())]
    } else {
        let mut read = Vec::new();
        for path in paths {
            let bytes = std::fs::read(&path).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
            read.push((path, bytes));
        }
        read
    };
    let rounds = if policies.len() > 1 { 3 } else { 1 };
    Policy::load_default()?; // starts the process's engine, so no row pays for that

    let mut results: Vec<Vec<[Duration; ROWS.len()]>> = vec![Vec::new(); policies.len()];
    for round in 0..rounds {
        for (i, (_, bytes)) in policies.iter().enumerate() {
            let dir = std::env::temp_dir().join(format!("failover-load-times-{}-{i}", std::process::id()));
            let cache = ArtifactCache::new(&dir);
            let measured = measure(bytes, &cache, round);
            let _ = std::fs::remove_dir_all(&dir);
            results[i].push(measured?);
        }
    }

    for (name, bytes) in &policies {
        println!("{name}: {} KB", bytes.len() / 1024);
    }
    for (row, label) in ROWS.iter().enumerate() {
        let cells: Vec<String> = results
            .iter()
            .map(|rounds| {
                // The median of the rounds' figures.
                let mut figures: Vec<Duration> = rounds.iter().map(|r| r[row]).collect();
                figures.sort();
                format!("{:>10.2?}", figures[figures.len() / 2])
            })
            .collect();
        println!("{label:<48} {}", cells.join(" "));
    }
    Ok(())
}
