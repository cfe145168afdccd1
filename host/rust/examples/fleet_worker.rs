//! One worker of the fleet test (`tests/fleet/README.md`, "Fleet workers"): loads the fleet's
//! state through `PolicyHost::start_shared`, records a 429 quota for each of its keys through
//! `on_failure` (each saved as the host saves every change), and in `watch` mode makes a
//! call-start decision every 10 ms until every peer's record is cooling here. Prints one JSON
//! report line; exits 1 with a message on any error. It never closes explicitly: dropping the
//! host at the end of `main` flushes what is owed, as any Rust program's exit does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use failover_host::store::{Fleet, Store};
use failover_host::types::{Failure, HttpResponse, Route};
use failover_host::{Host, HttpTransport, Policy, PolicyHost, Secrets};
use serde_json::{json, Value};

const QUOTA_BODY: &str = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","code":"insufficient_quota"}}"#;

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Mode {
    Record,
    Watch,
}

#[derive(Parser)]
struct Args {
    /// `redis://…`, `rediss://…` or `file:/abs/path`.
    #[arg(long)]
    store: String,
    #[arg(long)]
    name: String,
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    worker: usize,
    #[arg(long)]
    keys: usize,
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long, default_value_t = 1)]
    peers: usize,
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Unix ms to wait for after loading (watch mode), so every worker loads before any writes.
    #[arg(long)]
    start_at: Option<u64>,
}

fn main() {
    match run(Args::parse()) {
        Ok(report) => println!("{report}"),
        Err(e) => {
            eprintln!("fleet_worker: {e:#}");
            std::process::exit(1);
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn run(args: Args) -> Result<Value> {
    let config = std::fs::read_to_string(&args.config).with_context(|| format!("read the config {}", args.config.display()))?;
    let parsed: Value = serde_json::from_str(&config).context("the config is not JSON")?;
    let ids: Vec<String> = parsed["providers"]["fleet"]["credentials"]
        .as_array()
        .context("the config has no providers.fleet.credentials")?
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_string))
        .collect();
    let secrets = Secrets::from_map(ids.iter().map(|id| (id.clone(), format!("sk-fleet-{id}"))).collect());
    let credentials = secrets.credentials();
    let store = Store::open(&args.store, &args.name, args.ca_file.as_deref())?;
    let make_host = move || Host::new(HttpTransport::new()).with_secrets(secrets.clone());
    let host = PolicyHost::start_shared(Policy::load_default()?, &config, Fleet::new(store), credentials, make_host)?;
    // As in a real process: a store that failed at start costs one timeout, decisions go on from
    // memory, and what is owed is appended once the store answers (at the latest on drop).
    if let Some(error) = host.fleet_stats().and_then(|s| s.last_error) {
        eprintln!("fleet_worker {}: the fleet's state did not load, going on from memory: {error}", args.worker);
    }
    if let Some(start_at) = args.start_at.filter(|_| args.mode == Mode::Watch) {
        std::thread::sleep(Duration::from_millis(start_at.saturating_sub(now_ms())));
    }

    let mut decisions = 0u64;
    let quota = Failure::http(HttpResponse { status: 429, headers: Vec::new(), body: QUOTA_BODY.as_bytes().to_vec() });
    for j in 0..args.keys {
        let credential = format!("w{}-k{j}", args.worker);
        let route = Route { provider: "fleet".into(), model: "m".into(), credential, position: 0 };
        host.on_failure(&route, &quota, None)?;
        decisions += 1;
    }

    let mut seen_ms = BTreeMap::new();
    if args.mode == Mode::Watch {
        let mut waiting: BTreeSet<String> =
            (0..args.peers).filter(|p| *p != args.worker).flat_map(|p| (0..args.keys).map(move |j| format!("w{p}-k{j}"))).collect();
        let deadline = Instant::now() + Duration::from_millis(args.timeout_ms);
        let mut checked = None;
        while !waiting.is_empty() && Instant::now() < deadline {
            host.select()?;
            decisions += 1;
            // Only a refresh brings peers' records: reading the snapshot after every select would
            // make dozens of workers on a few cores time their own CPU, not the store.
            let refreshes = host.fleet_stats().map(|s| s.refreshes);
            if refreshes == checked {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            checked = refreshes;
            let now = now_ms();
            let state: Value = serde_json::from_str(&host.snapshot()).context("the policy's snapshot is not JSON")?;
            waiting.retain(|id| {
                let record = &state["credentials"][id.as_str()];
                let cooling = record["cooldown_until_ms"].as_u64().is_some_and(|until| until > now);
                if cooling {
                    let since = record["last_error_ms"].as_u64().unwrap_or(now);
                    seen_ms.insert(id.clone(), now.saturating_sub(since));
                }
                !cooling
            });
            std::thread::sleep(Duration::from_millis(10));
        }
        host.close()?;
    }

    let stats = host.fleet_stats().unwrap_or_default();
    Ok(json!({
        "host": "rust",
        "worker": args.worker,
        "saves": stats.saves,
        "save_ms": stats.save_ms,
        "refreshes": stats.refreshes,
        "failures": stats.failures,
        "decisions": decisions,
        "seen_ms": seen_ms,
    }))
}
