//! The file store in the fleet layout (tests/fleet/README.md): 32 processes recording and exiting
//! at once lose nothing, a running worker stops sending to a key a peer found exhausted within a
//! second, a fold forgets what was not seen for `forget_after` but never a running cooldown,
//! corrupt state is set aside and a newer schema left untouched. Worker processes are this test
//! binary run again (support/workers.rs).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use failover_host::store::{FileStore, Fleet, FleetOptions, Saved, StoreError};
use failover_host::Instance;
use support::workers::{cooling, now_ms, record_all, role, two_workers};
use support::{credentials, instance_at, status, CONFIG, QUOTA};

mod support;

fn scratch(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("failover-store-file-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join("policy.json"))
}

#[test]
fn worker() -> Result<()> {
    support::workers::run_role()
}

#[test]
fn thirty_two_processes_exiting_right_after_their_saves_lose_no_record() -> Result<()> {
    if role().is_some() {
        return Ok(());
    }
    let path = scratch("writers")?;
    let missing = record_all("worker", &format!("file:{}", path.display()), 32, 4, || Ok(()))?;
    assert_eq!(missing, Vec::<String>::new(), "every key's cooldown reached the file");
    Ok(())
}

#[test]
fn a_running_worker_sends_a_peers_exhausted_key_nothing_a_second_later() -> Result<()> {
    if role().is_some() {
        return Ok(());
    }
    let path = scratch("two")?;
    let (primary, all) = two_workers("worker", &format!("file:{}", path.display()))?;
    assert!(all > 0, "worker B went on calling");
    assert_eq!(primary, 0, "worker B sent the exhausted primary requests more than 1 s after A's 429");
    Ok(())
}

const DAY_MS: u64 = 24 * 3600 * 1000;

/// One 429 quota on the primary's key at `at_ms`, saved through `fleet`.
fn record_quota(fleet: &mut Fleet, at_ms: u64) -> Result<()> {
    let mut inst = instance_at(at_ms)?;
    let engine = inst.create_engine(CONFIG, None, &credentials())?;
    let route = inst.select(&engine)?.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    inst.on_failure(&engine, &route, &status(429, QUOTA), None)?;
    fleet.save(&mut inst, &engine)?;
    Ok(())
}

#[test]
fn a_fold_forgets_records_not_seen_for_forget_after_but_never_a_running_cooldown() -> Result<()> {
    let path = scratch("expiry")?;
    let options = FleetOptions { forget_after_ms: 7 * DAY_MS, ..FleetOptions::default() };
    let mut fleet = Fleet::new(FileStore::new(&path)).with_options(options);
    let mut inst = instance_at(now_ms())?;
    fleet.load(&mut inst)?;
    // Ten days ago: a 1 h quota cooldown, long over, and nothing since.
    record_quota(&mut fleet, now_ms() - 10 * DAY_MS)?;
    let stored = FileStore::new(&path);
    let before = failover_host::store::Store::from(stored.clone()).load(&mut inst)?.state.context("stored")?;
    assert!(before.contains("ali-1"), "{before}");
    fleet.fold(&mut inst)?.context("nobody else folds")?;
    let after = std::fs::read_to_string(&path)?;
    assert!(!after.contains("ali-1"), "the old record is forgotten: {after}");
    assert_eq!(std::fs::read_to_string(stored.log_path())?, "", "the log was folded");

    // A cooldown still running is kept however old its error: a year-long quota reset.
    let mut inst = instance_at(now_ms() - 10 * DAY_MS)?;
    let engine = inst.create_engine(CONFIG, None, &credentials())?;
    let route = inst.select(&engine)?.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let far = now_ms() + 300 * DAY_MS;
    let body = format!(r#"{{"error":{{"message":"usage allocated quota exceeded, resets at {far}","type":"insufficient_quota"}}}}"#);
    let mut failure = status(429, &body);
    if let Some(r) = failure.response.as_mut() {
        r.headers.push(failover_host::types::Header { name: "retry-after".into(), value: (310 * DAY_MS / 1000).to_string() });
    }
    inst.on_failure(&engine, &route, &failure, None)?;
    fleet.save(&mut inst, &engine)?;
    fleet.fold(&mut inst)?.context("nobody else folds")?;
    let kept = std::fs::read_to_string(&path)?;
    assert_eq!(cooling(&kept, now_ms())?, vec!["ali-1".to_string()], "a running cooldown survives the fold: {kept}");
    Ok(())
}

#[test]
fn corrupt_base_and_log_lines_are_set_aside_and_a_newer_base_is_refused_untouched() -> Result<()> {
    let path = scratch("corrupt")?;
    let store = FileStore::new(&path);
    let truncated = r#"{"schema": 2, "credentials": {"ali-1": {"cooldown_until"#;
    std::fs::write(&path, truncated)?;
    std::fs::write(store.log_path(), "not json at all\n")?;
    let mut inst = instance_at(now_ms())?;
    let mut fleet = Fleet::new(store.clone());
    let loaded = fleet.load(&mut inst)?;
    let aside = loaded.set_aside.context("the corrupt base is reported")?;
    assert!(aside.why.contains("JSON"), "{}", aside.why);
    assert_eq!(std::fs::read_to_string(&aside.aside)?, truncated, "kept aside, byte for byte");
    assert_eq!(loaded.state, None);

    record_quota(&mut fleet, now_ms())?;
    fleet.fold(&mut inst)?.context("nobody else folds")?;
    let dir = path.parent().context("a dir")?;
    let log_aside = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().contains(".log.corrupt-"))
        .context("the unreadable log line is set aside")?;
    assert_eq!(std::fs::read_to_string(log_aside)?, "not json at all\n");
    assert_eq!(cooling(&std::fs::read_to_string(&path)?, now_ms())?, vec!["ali-1".to_string()], "what was readable is folded");

    let newer = r#"{"schema": 99}"#;
    std::fs::write(&path, newer)?;
    let refused = Fleet::new(store.clone()).load(&mut inst);
    assert!(matches!(&refused, Err(StoreError::Refused { message, .. }) if message.contains("newer")), "{refused:?}");
    let mut fleet = Fleet::new(store.clone());
    record_quota(&mut fleet, now_ms())?;
    assert!(fleet.fold(&mut inst).is_err(), "a fold refuses a newer base");
    assert_eq!(std::fs::read_to_string(&path)?, newer, "left untouched");
    Ok(())
}

#[test]
fn a_held_fold_lock_bounds_an_append_and_the_delta_stays_owed_until_close() -> Result<()> {
    let path = scratch("locked")?;
    let store = FileStore::new(&path).with_lock_timeout(Duration::from_millis(50));
    let mut fleet = Fleet::new(store.clone()).with_options(FleetOptions { retry: Duration::ZERO, ..FleetOptions::default() });
    let held = std::fs::File::create(path.with_file_name("policy.json.lock"))?;
    held.lock()?;
    // Only the save is timed: making an instance takes seconds when the other tests' worker
    // processes share the cores, and is no part of the bound.
    let mut inst = instance_at(now_ms())?;
    let engine = inst.create_engine(CONFIG, None, &credentials())?;
    let route = inst.select(&engine)?.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    inst.on_failure(&engine, &route, &status(429, QUOTA), None)?;
    let start = std::time::Instant::now();
    let saved = fleet.save(&mut inst, &engine);
    assert!(start.elapsed() < Duration::from_secs(1), "bounded: {:?}", start.elapsed());
    assert!(matches!(&saved, Err(StoreError::LockTimeout { .. })), "{saved:?}");
    assert!(fleet.owes());
    held.unlock()?;
    fleet.close()?;
    let mut inst = instance_at(now_ms())?;
    let state = failover_host::store::Store::from(store).load(&mut inst)?.state.context("stored")?;
    assert_eq!(cooling(&state, now_ms())?, vec!["ali-1".to_string()], "the close appended what was owed");
    Ok(())
}

#[test]
fn after_a_failure_saves_pause_and_stay_owed_and_a_close_appends_them_whatever_the_pause() -> Result<()> {
    let path = scratch("paused")?;
    let store = FileStore::new(&path).with_lock_timeout(Duration::from_millis(50));
    let options = FleetOptions { retry: Duration::from_secs(600), ..FleetOptions::default() };
    let mut fleet = Fleet::new(store.clone()).with_options(options);
    let mut inst = instance_at(now_ms())?;
    fleet.load(&mut inst)?;
    let engine = inst.create_engine(CONFIG, None, &credentials())?;
    let quota_on_the_selected_route = |inst: &mut Instance| -> Result<()> {
        let route = inst.select(&engine)?.map_err(|e| anyhow::anyhow!("{}", e.message))?;
        inst.on_failure(&engine, &route, &status(429, QUOTA), None)?;
        Ok(())
    };

    let held = std::fs::File::create(path.with_file_name("policy.json.lock"))?;
    held.lock()?;
    quota_on_the_selected_route(&mut inst)?;
    let saved = fleet.save(&mut inst, &engine);
    assert!(matches!(&saved, Err(StoreError::LockTimeout { .. })), "{saved:?}");
    held.unlock()?;
    quota_on_the_selected_route(&mut inst)?;
    assert_eq!(fleet.save(&mut inst, &engine)?, Saved::Owed, "paused: the free store is not even tried");
    assert_eq!(std::fs::read_to_string(store.log_path()).ok(), None, "nothing appended during the pause");
    assert!(fleet.owes());

    fleet.close()?;
    let state = failover_host::store::Store::from(store).load(&mut inst)?.state.context("stored")?;
    let mut cooling = cooling(&state, now_ms())?;
    cooling.sort();
    assert_eq!(cooling, ["ali-1", "ten-1"], "the close appended both changes, paused or not");
    Ok(())
}

#[test]
fn a_save_owed_from_a_pause_goes_out_at_the_first_refresh_after_it() -> Result<()> {
    let path = scratch("owed-refresh")?;
    let store = FileStore::new(&path).with_lock_timeout(Duration::from_millis(50));
    let options = FleetOptions { retry: Duration::from_millis(100), refresh: Duration::ZERO, ..FleetOptions::default() };
    let mut fleet = Fleet::new(store.clone()).with_options(options);
    let mut inst = instance_at(now_ms())?;
    fleet.load(&mut inst)?;
    let engine = inst.create_engine(CONFIG, None, &credentials())?;
    let route = inst.select(&engine)?.map_err(|e| anyhow::anyhow!("{}", e.message))?;

    let held = std::fs::File::create(path.with_file_name("policy.json.lock"))?;
    held.lock()?;
    inst.on_failure(&engine, &route, &status(429, QUOTA), None)?;
    assert!(matches!(fleet.save(&mut inst, &engine), Err(StoreError::LockTimeout { .. })));
    held.unlock()?;
    std::thread::sleep(Duration::from_millis(150));
    fleet.refresh(&mut inst, &engine)?;
    assert!(!fleet.owes(), "the refresh after the pause appended what was owed");
    let state = failover_host::store::Store::from(store).load(&mut inst)?.state.context("stored")?;
    assert_eq!(cooling(&state, now_ms())?, ["ali-1"], "in the store with no further state change and no close");
    Ok(())
}

/// Two state changes (a quota on each key, the second on the fallback), each saved through `fleet`.
fn two_saves(fleet: &mut Fleet) -> Result<()> {
    let mut inst = instance_at(now_ms())?;
    let engine = inst.create_engine(CONFIG, None, &credentials())?;
    for _ in 0..2 {
        let route = inst.select(&engine)?.map_err(|e| anyhow::anyhow!("{}", e.message))?;
        inst.on_failure(&engine, &route, &status(429, QUOTA), None)?;
        assert_eq!(fleet.save(&mut inst, &engine)?, Saved::Appended);
    }
    Ok(())
}

#[test]
fn a_process_folds_past_fold_after_counting_its_own_appends_and_what_it_reads() -> Result<()> {
    let few = FleetOptions { fold_after: 1, refresh: Duration::ZERO, ..FleetOptions::default() };
    let many = FleetOptions { fold_after: 1000, ..few };

    // A process that only writes: its own two appends pass the bound.
    let path = scratch("fold-own")?;
    let mut writer = Fleet::new(FileStore::new(&path)).with_options(few);
    writer.load(&mut instance_at(now_ms())?)?;
    two_saves(&mut writer)?;
    assert_eq!(writer.stats().folds, 1, "{:?}", writer.stats());
    assert_eq!(std::fs::read_to_string(FileStore::new(&path).log_path())?, "", "the log was folded");
    assert_eq!(cooling(&std::fs::read_to_string(&path)?, now_ms())?.len(), 2, "into the base");

    // A process that only reads: two entries read at a refresh pass the bound.
    let path = scratch("fold-read")?;
    // An empty log already there, so the reader's refresh reads on from it (none: it loads anew).
    std::fs::write(FileStore::new(&path).log_path(), "")?;
    let mut reader = Fleet::new(FileStore::new(&path)).with_options(few);
    let mut inst = instance_at(now_ms())?;
    reader.load(&mut inst)?;
    let engine = inst.create_engine(CONFIG, None, &credentials())?;
    let mut writer = Fleet::new(FileStore::new(&path)).with_options(many);
    writer.load(&mut instance_at(now_ms())?)?;
    two_saves(&mut writer)?;
    assert_eq!(writer.stats().folds, 0, "the writer's bound is not reached");
    assert!(matches!(reader.refresh(&mut inst, &engine)?, failover_host::store::Refreshed::Read { entries: 2 }));
    assert_eq!(reader.stats().folds, 1, "{:?}", reader.stats());
    assert_eq!(std::fs::read_to_string(FileStore::new(&path).log_path())?, "", "the log was folded");
    assert_eq!(cooling(&std::fs::read_to_string(&path)?, now_ms())?.len(), 2, "into the base");
    Ok(())
}
