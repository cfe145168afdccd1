//! The file store across processes: concurrent writers lose nothing, a corrupt file is set
//! aside, and the first incident carries over from one process to the next. Child processes
//! are this test binary run again with `FAILOVER_STORE_CHILD` set.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use failover_host::store::{FileStore, StoreError};
use failover_host::types::{ActionKind, Failure, FailureKind, HttpResponse};
use failover_host::{Clock, Host, Instance, Policy, VirtualClock};
use serde_json::Value;
use support::fleet::{merged, update, write_all, UPDATES, WRITERS};
use support::{credentials, NoNetwork, CONFIG, QUOTA};

mod support;

fn instance(now_ms: u64) -> Result<Instance> {
    let host = Host::new(NoNetwork).with_clock(Clock::Virtual(VirtualClock::new(now_ms))).with_seed(1);
    Ok(Policy::load_default()?.instantiate(host)?)
}

fn scratch(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("failover-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join("policy.json"))
}

/// Runs `child` of this binary as another process with `role`.
fn spawn(child: &str, role: &str, state: &Path) -> Result<std::process::Child> {
    Ok(Command::new(std::env::current_exe()?)
        .args([child, "--exact", "--nocapture", "--test-threads=1"])
        .env("FAILOVER_STORE_CHILD", role)
        .env("FAILOVER_STORE_PATH", state)
        .spawn()?)
}

fn child_role() -> Option<(String, PathBuf)> {
    Some((std::env::var("FAILOVER_STORE_CHILD").ok()?, PathBuf::from(std::env::var_os("FAILOVER_STORE_PATH")?)))
}

#[test]
fn writer_child() -> Result<()> {
    let Some((role, path)) = child_role().filter(|(r, _)| r.starts_with("writer-")) else { return Ok(()) };
    let w: u64 = role.trim_start_matches("writer-").parse()?;
    let mut inst = instance(0)?;
    let store = FileStore::new(path).with_lock_timeout(Duration::from_millis(20));
    write_all(&mut inst, w, |inst, state| match store.save(inst, state) {
        Ok(_) => Ok(true),
        Err(StoreError::LockTimeout { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    })?;
    Ok(())
}

#[test]
fn eight_processes_on_one_file_lose_no_cooldown_and_no_dead_key() -> Result<()> {
    if child_role().is_some() {
        return Ok(());
    }
    let path = scratch("writers")?;
    let children: Vec<_> = (0..WRITERS).map(|w| spawn("writer_child", &format!("writer-{w}"), &path)).collect::<Result<_>>()?;
    for mut c in children {
        if !c.wait()?.success() {
            bail!("a writer process failed");
        }
    }
    let mut inst = instance(0)?;
    let mut expected = update(0, 0);
    for w in 0..WRITERS {
        for u in 0..UPDATES {
            expected = merged(&mut inst, &expected, &update(w, u))?;
        }
    }
    let stored = FileStore::new(&path).load(&mut inst)?.state.context("the store is empty")?;
    assert_eq!(serde_json::from_str::<Value>(&stored)?, serde_json::from_str::<Value>(&expected)?);
    Ok(())
}

#[test]
fn a_corrupt_file_is_set_aside_and_the_policy_starts_from_what_is_left() -> Result<()> {
    let path = scratch("corrupt")?;
    let truncated = r#"{"schema": 2, "credentials": {"ali-1": {"cooldown_until"#;
    std::fs::write(&path, truncated)?;
    let mut inst = instance(0)?;
    let store = FileStore::new(&path);
    let loaded = store.load(&mut inst)?;
    let aside = loaded.set_aside.context("the corrupt file is reported")?;
    assert_eq!(loaded.state, None);
    assert!(aside.why.contains("not valid JSON"), "{}", aside.why);
    assert_eq!(std::fs::read_to_string(&aside.aside)?, truncated, "kept aside, byte for byte");
    std::fs::write(&path, "\0\0\0")?;
    let ours = update(1, 1);
    let saved = store.save(&mut inst, &ours)?;
    assert!(saved.set_aside.is_some());
    assert_eq!(saved.state.as_deref(), Some(ours.as_str()), "the other side of the merge survives");
    assert_eq!(std::fs::read_to_string(&path)?, ours);
    Ok(())
}

#[test]
fn a_newer_schema_is_left_untouched_and_a_held_lock_bounds_the_wait() -> Result<()> {
    let path = scratch("newer")?;
    std::fs::write(&path, r#"{"schema": 3}"#)?;
    let mut inst = instance(0)?;
    let store = FileStore::new(&path).with_lock_timeout(Duration::from_millis(50));
    assert!(matches!(store.save(&mut inst, &update(0, 0)), Err(StoreError::Refused { .. })));
    assert_eq!(std::fs::read_to_string(&path)?, r#"{"schema": 3}"#);
    let held = std::fs::File::open(path.with_file_name("policy.json.lock"))?;
    held.lock()?;
    let start = std::time::Instant::now();
    assert!(matches!(store.save(&mut inst, &update(0, 0)), Err(StoreError::LockTimeout { .. })));
    assert!(start.elapsed() < Duration::from_secs(2));
    Ok(())
}

const START_MS: u64 = 1_795_528_800_000;

/// One process of the incident: load the store, start a call, (A) report the 429 quota, save.
/// Prints the chain position it started on.
#[test]
fn incident_child() -> Result<()> {
    let Some((role, path)) = child_role().filter(|(r, _)| r.starts_with("incident-")) else { return Ok(()) };
    let (name, offset) = role.trim_start_matches("incident-").split_once('+').context("role name+offset")?;
    let mut inst = instance(START_MS + offset.parse::<u64>()?)?;
    let store = FileStore::new(path);
    let state = store.load(&mut inst)?.state;
    let engine = inst.create_engine(CONFIG, state.as_deref(), &credentials())?;
    let start = inst.start_call(&engine)?.map_err(|e| anyhow!("no route: {}", e.message))?;
    println!("STARTED {name} {}", start.route.position);
    if name == "a" {
        let failure = Failure {
            kind: FailureKind::Http,
            response: Some(HttpResponse { status: 429, headers: vec![], body: QUOTA.as_bytes().to_vec() }),
            transport: None,
        };
        let action = inst.on_failure(&engine, &start.route, &failure, Some(&start.progress))?;
        assert_eq!(action.kind, ActionKind::FallBack);
    } else {
        inst.on_success(&engine, &start.route)?;
    }
    let snapshot = inst.snapshot(&engine)?;
    store.save(&mut inst, &snapshot)?;
    Ok(())
}

fn run_incident(role: &str, path: &Path) -> Result<u32> {
    let out = Command::new(std::env::current_exe()?)
        .args(["incident_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("FAILOVER_STORE_CHILD", role)
        .env("FAILOVER_STORE_PATH", path)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("{role} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    }
    // libtest may print `test incident_child ... ` on the same line first.
    let line = stdout.lines().find_map(|l| l.split_once("STARTED ").map(|(_, rest)| rest)).context("no STARTED line")?;
    Ok(line.rsplit(' ').next().context("position")?.parse()?)
}

#[test]
fn the_first_incident_carries_over_to_the_next_processes() -> Result<()> {
    if child_role().is_some() {
        return Ok(());
    }
    let path = scratch("incident")?;
    assert_eq!(run_incident("incident-a+0", &path)?, 0, "A starts on the primary and gets the 429 quota");
    assert_eq!(run_incident("incident-b+60000", &path)?, 1, "B starts on the fallback without touching the primary");
    let state: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let until = state["credentials"]["ali-1"]["cooldown_until_ms"].as_u64().context("ali-1 cools down")?;
    let after = until - START_MS + 1;
    assert_eq!(run_incident(&format!("incident-c+{after}"), &path)?, 0, "C, after the cooldown, is back on the primary");
    Ok(())
}
