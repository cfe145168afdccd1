//! `failover watch --policy PATH --config FILE [--state FILE]`: run the policy at PATH and swap
//! in whatever is written there next, printing each swap or refusal. Polls the file's size and
//! mtime, then its sha256, so an unchanged rewrite is no swap. A `.wasm` never compiled before
//! is swapped in at once as a baseline build, and tiered up to the optimised build (compiled in
//! the background into the cache) when that is ready, printing `tiered up: ...`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use failover_host::{sha256_hex, ArtifactCache, Error, Host, HttpTransport, Policy, PolicyHost, Secrets, Swapped, Tier, TierUp};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy config (JSON).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// A snapshot to start from; rewritten with the current state after every swap.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// How often to look at the policy file.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    interval_ms: u64,
    /// Where compiled policies are cached (default: the user's cache directory).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Exit after this many swap attempts (default: watch until killed).
    #[arg(long, value_name = "N")]
    swaps: Option<u32>,
}

/// What identifies one version of the file cheaply, before hashing it.
type Stamp = (u64, Option<SystemTime>);

pub fn run(path: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let path = path.context("watch needs --policy PATH: the .wasm file to watch")?;
    // A state file that does not exist yet is written after the first swap.
    let (config, state) = super::read_config_and_state(&args.config, args.state.as_deref().filter(|file| file.exists()))?;
    let cache = ArtifactCache::new(args.cache_dir.clone().unwrap_or_else(ArtifactCache::default_dir));
    let secrets = Secrets::from_env(&config);
    let credentials = secrets.credentials();

    let (mut stamp, bytes) = read(path)?;
    let mut hash = sha256_hex(&bytes);
    let policy = Policy::from_bytes_cached(&bytes, &path.display().to_string(), &cache)?;
    let make_host = move || Host::new(HttpTransport::new()).with_secrets(secrets.clone());
    let host = PolicyHost::start(policy, &config, state.as_deref(), credentials, make_host)?;
    let version = host.version();
    say(&format!("watching {}: policy {} (schema {}), sha256 {}", path.display(), version.policy, version.schema, &hash[..12]));

    let mut attempts = 0;
    let mut tiering: Option<(TierUp, String)> = None;
    while args.swaps.is_none_or(|n| attempts < n) {
        std::thread::sleep(Duration::from_millis(args.interval_ms));
        if let Some(outcome) = tiering.as_ref().and_then(|(tier_up, _)| tier_up.try_outcome()) {
            let (_, short) = tiering.take().expect("a tier-up under way");
            report_tier_up(outcome, &short, &host, args.state.as_deref())?;
        }
        // A file being replaced may be missing or half-written for a moment: look again later.
        let Ok((new_stamp, bytes)) = read(path) else { continue };
        if new_stamp == stamp {
            continue;
        }
        stamp = new_stamp;
        let new_hash = sha256_hex(&bytes);
        if new_hash == hash {
            continue;
        }
        hash = new_hash;
        attempts += 1;
        match host.swap_tiered(&bytes, &path.display().to_string(), &cache) {
            Ok(tiered) => {
                let s = tiered.swapped;
                let build = match tiered.tier {
                    Tier::Optimised => "optimised build",
                    Tier::Baseline => "baseline build, optimising in the background",
                };
                say(&format!(
                    "swapped: policy {} (schema {}) -> {} (schema {}), sha256 {}, generation {} ({build})",
                    s.from.policy,
                    s.from.schema,
                    s.to.policy,
                    s.to.schema,
                    &hash[..12],
                    s.generation
                ));
                tiering = tiered.tier_up.map(|tier_up| (tier_up, hash[..12].to_string()));
                if let Some(file) = &args.state {
                    std::fs::write(file, host.snapshot()).with_context(|| format!("cannot write state {}", file.display()))?;
                }
            }
            Err(e) => say(&format!("refused: sha256 {}: {e}; still running policy {}", &hash[..12], host.version().policy)),
        }
    }
    // The last swap's tier-up is part of that swap: say how it ended before exiting.
    if let Some((tier_up, short)) = tiering {
        match tier_up.wait(TIER_UP_PATIENCE) {
            Some(outcome) => report_tier_up(outcome, &short, &host, args.state.as_deref())?,
            None => say(&format!(
                "tier-up of sha256 {short} still under way after {} s; exiting with the baseline build",
                TIER_UP_PATIENCE.as_secs()
            )),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How long `--swaps N` waits for the last swap's tier-up before exiting: far over an optimising
/// compile of a policy (under a second), so only a stuck compile hits it.
const TIER_UP_PATIENCE: Duration = Duration::from_secs(120);

/// Prints how a tier-up ended, and writes the state file after one that swapped.
fn report_tier_up(outcome: Result<Swapped, Error>, short: &str, host: &PolicyHost, state: Option<&Path>) -> anyhow::Result<()> {
    match outcome {
        Ok(s) => {
            say(&format!(
                "tiered up: policy {} (schema {}), sha256 {short}, optimised build, generation {}",
                s.to.policy, s.to.schema, s.generation
            ));
            if let Some(file) = state {
                std::fs::write(file, host.snapshot()).with_context(|| format!("cannot write state {}", file.display()))?;
            }
        }
        // Overtaken by a newer swap: nothing to say.
        Err(_) if host.tier() == Tier::Optimised => {}
        Err(e) => say(&format!("tier-up failed: sha256 {short}: {e}; the baseline build keeps serving")),
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<(Stamp, Vec<u8>)> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read policy {}", path.display()))?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read policy {}", path.display()))?;
    Ok(((meta.len(), meta.modified().ok()), bytes))
}

/// One line, flushed at once: a script or a person follows along live.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
