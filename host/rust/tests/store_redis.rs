//! The Redis store in the fleet layout (tests/fleet/README.md) against a real `redis-server` on
//! 127.0.0.1 (support/redis.rs): 32 processes recording and exiting at once lose nothing, even
//! with Redis pausing writes under them; a running worker stops sending to a key a peer found
//! exhausted within a second; a Redis that is down costs one timeout, then calls go on from
//! memory and the first save after it returns catches up; TLS with an ACL user; corrupt state set
//! aside and a newer schema left untouched. Worker processes are this test binary run again.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use failover_host::store::{Fleet, FleetOptions, RedisStore, Saved, Store, StoreError};
use support::redis::RedisServer;
use support::workers::{cooling, now_ms, record_all, role, two_workers};
use support::{credentials, instance_at, status, CONFIG, QUOTA};

mod support;

#[test]
fn worker() -> Result<()> {
    support::workers::run_role()
}

#[test]
fn thirty_two_processes_exiting_right_after_their_saves_lose_no_record_while_redis_pauses_writes() -> Result<()> {
    if role().is_some() {
        return Ok(());
    }
    let server = RedisServer::start()?;
    let mut con = server.connection()?;
    let missing = record_all("worker", &server.url(), 32, 4, || {
        // Writes stall for 400 ms at a time (twice the save timeout) while the workers save.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(300));
            redis::cmd("CLIENT").arg("PAUSE").arg(400).arg("WRITE").exec(&mut con)?;
        }
        Ok(())
    })?;
    assert_eq!(missing, Vec::<String>::new(), "every key's cooldown reached Redis");
    Ok(())
}

#[test]
fn a_running_worker_sends_a_peers_exhausted_key_nothing_a_second_later() -> Result<()> {
    if role().is_some() {
        return Ok(());
    }
    let server = RedisServer::start()?;
    let (primary, all) = two_workers("worker", &server.url())?;
    assert!(all > 0, "worker B went on calling");
    assert_eq!(primary, 0, "worker B sent the exhausted primary requests more than 1 s after A's 429");
    Ok(())
}

#[test]
fn redis_down_costs_one_timeout_calls_go_on_and_the_first_save_after_catches_up() -> Result<()> {
    let mut server = RedisServer::start()?;
    let options = FleetOptions { retry: Duration::from_millis(500), ..FleetOptions::default() };
    let mut fleet = Fleet::new(RedisStore::new(&server.url(), "outage")?).with_options(options);
    let mut inst = instance_at(now_ms())?;
    fleet.load(&mut inst)?;
    let engine = inst.create_engine(CONFIG, None, &credentials())?;

    server.kill();
    let route = inst.select(&engine)?.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    inst.on_failure(&engine, &route, &status(429, QUOTA), None)?;
    let t = Instant::now();
    assert!(matches!(fleet.save(&mut inst, &engine), Err(StoreError::Unavailable { .. })));
    assert!(t.elapsed() < Duration::from_millis(600), "the first failure costs at most the timeout: {:?}", t.elapsed());
    let t = Instant::now();
    for _ in 0..20 {
        fleet.refresh(&mut inst, &engine)?;
        let route = inst.select(&engine)?.map_err(|e| anyhow::anyhow!("{}", e.message))?;
        assert_eq!(route.provider, "tencent-token-plan", "decisions go on from memory");
        assert_eq!(fleet.save(&mut inst, &engine)?, Saved::Owed);
    }
    assert!(t.elapsed() < Duration::from_millis(200), "paused: the store costs calls nothing: {:?}", t.elapsed());

    server.restart()?;
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(fleet.save(&mut inst, &engine)?, Saved::Appended, "the first save after the pause goes through");
    let state = Store::from(RedisStore::new(&server.url(), "outage")?).load(&mut inst)?.state.context("stored")?;
    assert_eq!(cooling(&state, now_ms())?, vec!["ali-1".to_string()], "what was learned during the outage arrived");
    Ok(())
}

const DAY_MS: u64 = 24 * 3600 * 1000;

/// One 429 quota on the primary's key, with a `retry-after` of `cooling_days` when given, saved
/// and then folded through a fleet on `name` forgetting after `forget_after_ms`.
fn save_and_fold(server: &RedisServer, name: &str, forget_after_ms: u64, cooling_days: Option<u64>) -> Result<RedisStore> {
    let store = RedisStore::new(&server.url(), name)?;
    let mut fleet = Fleet::new(store.clone()).with_options(FleetOptions { forget_after_ms, ..FleetOptions::default() });
    let mut inst = instance_at(now_ms())?;
    fleet.load(&mut inst)?;
    let engine = inst.create_engine(CONFIG, None, &credentials())?;
    let route = inst.select(&engine)?.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let mut failure = status(429, QUOTA);
    if let (Some(days), Some(r)) = (cooling_days, failure.response.as_mut()) {
        r.headers.push(failover_host::types::Header { name: "retry-after".into(), value: (days * DAY_MS / 1000).to_string() });
    }
    inst.on_failure(&engine, &route, &failure, None)?;
    assert_eq!(fleet.save(&mut inst, &engine)?, Saved::Appended);
    Ok(store)
}

/// The PTTL of `key` (-1: no TTL, -2: no key).
fn pttl(con: &mut redis::Connection, key: &str) -> Result<i64> {
    Ok(redis::cmd("PTTL").arg(key).query(con)?)
}

#[test]
fn keys_live_until_the_latest_cooldown_ends_at_least_forget_after_and_for_ever_when_nothing_is_forgotten() -> Result<()> {
    let server = RedisServer::start()?;
    let mut con = server.connection()?;
    let near = |ttl: i64, want: u64| ttl > 0 && (ttl as u64) <= want && (ttl as u64) > want - 60_000;
    // (name, forget_after_ms, cooling days, the TTL every key should have: none for ever)
    let cases = [
        ("ttl-long", DAY_MS, Some(30), Some(30 * DAY_MS)),
        ("ttl-short", 2 * DAY_MS, None, Some(2 * DAY_MS)),
        ("ttl-none", 0, Some(30), None),
    ];
    for (name, forget_after_ms, cooling_days, want) in cases {
        let store = save_and_fold(&server, name, forget_after_ms, cooling_days)?;
        let log = format!("{}:log", store.key());
        let mut fleet = Fleet::new(store.clone()).with_options(FleetOptions { forget_after_ms, ..FleetOptions::default() });
        let mut inst = instance_at(now_ms())?;
        let appended = pttl(&mut con, &log)?;
        fleet.fold(&mut inst)?.context("nobody else folds")?;
        let (base, mark) = (pttl(&mut con, store.key())?, pttl(&mut con, &format!("{}:folded", store.key()))?);
        for (what, ttl) in [("the log after an append", appended), ("the base after a fold", base), ("the mark after a fold", mark)] {
            match want {
                Some(want) => assert!(near(ttl, want), "{name}: {what} lives {want} ms, not {ttl}"),
                None => assert_eq!(ttl, -1, "{name}: {what} never expires"),
            }
        }
    }
    Ok(())
}

#[test]
fn tls_with_an_acl_user_and_a_ca_file() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("failover-redis-tls-{}", std::process::id()));
    let (server, tls) = match RedisServer::start_tls(&dir)? {
        Ok(started) => started,
        Err(why) => {
            eprintln!("SKIPPED tls_with_an_acl_user_and_a_ca_file: {why}");
            return Ok(());
        }
    };
    let url = format!("rediss://{}:{}@127.0.0.1:{}/0", tls.user, tls.password, server.port);
    let mut fleet = Fleet::new(RedisStore::with_ca_file(&url, "tls", &tls.ca_file)?);
    let mut inst = instance_at(now_ms())?;
    fleet.load(&mut inst)?;
    let engine = inst.create_engine(CONFIG, None, &credentials())?;
    let route = inst.select(&engine)?.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    inst.on_failure(&engine, &route, &status(429, QUOTA), None)?;
    assert_eq!(fleet.save(&mut inst, &engine)?, Saved::Appended);
    let state = Store::from(RedisStore::with_ca_file(&url, "tls", &tls.ca_file)?).load(&mut inst)?.state.context("stored")?;
    assert_eq!(cooling(&state, now_ms())?, vec!["ali-1".to_string()]);

    let wrong = format!("rediss://{}:wrong@127.0.0.1:{}/0", tls.user, server.port);
    let refused = Store::from(RedisStore::with_ca_file(&wrong, "tls", &tls.ca_file)?).load(&mut inst);
    let said = format!("{:?}", refused.as_ref().err());
    assert!(refused.is_err() && !said.contains("wrong@"), "a wrong password is refused, and not shown: {said}");
    let untrusted = Store::from(RedisStore::new(&url, "tls")?).load(&mut inst);
    assert!(untrusted.is_err(), "the system's roots do not trust the test CA");
    let plain = Store::from(RedisStore::new(&format!("redis://127.0.0.1:{}/0", server.port), "tls")?).load(&mut inst);
    assert!(plain.is_err(), "no plain TCP on a TLS port");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn corrupt_base_and_log_entries_are_set_aside_and_a_newer_base_is_refused_untouched() -> Result<()> {
    let server = RedisServer::start()?;
    let mut con = server.connection()?;
    let store = RedisStore::new(&server.url(), "corrupt")?;
    let truncated = r#"{"schema": 2, "credentials": {"ali-1": {"cooldown_until"#;
    redis::cmd("SET").arg(store.key()).arg(truncated).exec(&mut con)?;
    redis::cmd("XADD").arg(format!("{}:log", store.key())).arg("*").arg("state").arg("not json").exec(&mut con)?;
    let mut inst = instance_at(now_ms())?;
    let mut fleet = Fleet::new(store.clone());
    let loaded = fleet.load(&mut inst)?;
    let aside = loaded.set_aside.context("the corrupt base is reported")?;
    let kept: String = redis::cmd("GET").arg(aside.aside.to_string_lossy().as_ref()).query(&mut con)?;
    assert_eq!(kept, truncated, "kept aside, byte for byte");

    let engine = inst.create_engine(CONFIG, None, &credentials())?;
    let route = inst.select(&engine)?.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    inst.on_failure(&engine, &route, &status(429, QUOTA), None)?;
    fleet.save(&mut inst, &engine)?;
    let (_, set_aside) = fleet.fold(&mut inst)?.context("nobody else folds")?;
    let aside = set_aside.context("the unreadable entry is set aside")?;
    let kept: String = redis::cmd("GET").arg(aside.aside.to_string_lossy().as_ref()).query(&mut con)?;
    assert_eq!(kept, "not json");
    let base: String = redis::cmd("GET").arg(store.key()).query(&mut con)?;
    assert_eq!(cooling(&base, now_ms())?, vec!["ali-1".to_string()], "what was readable is folded");
    let left: usize = redis::cmd("XLEN").arg(format!("{}:log", store.key())).query(&mut con)?;
    assert_eq!(left, 0, "the folded entries are trimmed");

    let newer = r#"{"schema": 99}"#;
    redis::cmd("SET").arg(store.key()).arg(newer).exec(&mut con)?;
    let refused = Fleet::new(store.clone()).load(&mut inst);
    assert!(matches!(&refused, Err(StoreError::Refused { message, .. }) if message.contains("newer")), "{refused:?}");
    redis::cmd("XADD").arg(format!("{}:log", store.key())).arg("*").arg("state").arg(r#"{"schema": 2}"#).exec(&mut con)?;
    assert!(fleet.fold(&mut inst).is_err(), "a fold refuses a newer base");
    let left: String = redis::cmd("GET").arg(store.key()).query(&mut con)?;
    assert_eq!(left, newer, "left untouched");
    Ok(())
}
