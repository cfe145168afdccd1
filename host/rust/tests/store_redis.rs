//! The Redis store against a real `redis-server` on a free 127.0.0.1 port (started here, killed
//! on drop): concurrent writers lose nothing, the first incident carries over, and an outage
//! fails saves fast while decisions go on, then the next save catches up.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use failover_host::store::{save_engine, RedisStore, StoreError};
use failover_host::types::{ActionKind, Failure, FailureKind, HttpResponse};
use failover_host::{Clock, Host, Instance, Policy, VirtualClock};
use serde_json::Value;
use support::fleet::{merged, update, write_all, UPDATES, WRITERS};
use support::{credentials, NoNetwork, CONFIG, QUOTA};

mod support;

/// A throwaway redis-server, killed when dropped (also when a test fails).
struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    fn start() -> Result<RedisServer> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut server = RedisServer { port, child: None };
        server.restart()?;
        Ok(server)
    }

    fn restart(&mut self) -> Result<()> {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start redis-server: install it (scripts/setup.sh does, from Debian's redis-server)")?;
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if start.elapsed() > Duration::from_secs(5) {
                bail!("redis-server did not listen on 127.0.0.1:{port} within 5 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn store(&self, policy: &str) -> Result<RedisStore> {
        Ok(RedisStore::new(&format!("redis://127.0.0.1:{}/", self.port), policy)?)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn instance(policy: &Policy, now_ms: u64) -> Result<Instance> {
    let host = Host::new(NoNetwork).with_clock(Clock::Virtual(VirtualClock::new(now_ms))).with_seed(1);
    Ok(policy.instantiate(host)?)
}

/// A contended write is carried by the next one.
fn writer(policy: &Policy, store: &RedisStore, w: u64) -> Result<()> {
    let mut inst = instance(policy, 0)?;
    write_all(&mut inst, w, |inst, state| match store.save(inst, state) {
        Ok(_) => Ok(true),
        Err(StoreError::Contended { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    })
}

#[test]
fn eight_concurrent_writers_on_one_key_lose_no_cooldown_and_no_dead_key() -> Result<()> {
    let server = RedisServer::start()?;
    let policy = Policy::load_default()?;
    let store = server.store("writers")?;
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                s.spawn({
                    let (policy, store) = (&policy, &store);
                    move || writer(policy, store, w)
                })
            })
            .collect();
        writers.into_iter().try_for_each(|h| h.join().map_err(|_| anyhow!("a writer panicked"))?)
    })?;
    let mut inst = instance(&policy, 0)?;
    let mut expected = update(0, 0);
    for w in 0..WRITERS {
        for u in 0..UPDATES {
            expected = merged(&mut inst, &expected, &update(w, u))?;
        }
    }
    let stored = store.load(&mut inst)?.state.context("the key is empty")?;
    assert_eq!(serde_json::from_str::<Value>(&stored)?, serde_json::from_str::<Value>(&expected)?);
    Ok(())
}

const START_MS: u64 = 1_795_528_800_000;

fn quota() -> Failure {
    Failure {
        kind: FailureKind::Http,
        response: Some(HttpResponse { status: 429, headers: vec![], body: QUOTA.as_bytes().to_vec() }),
        transport: None,
    }
}

/// A fresh process of the incident: load, start a call, (A) report the 429 quota, save.
/// Returns the chain position it started on.
fn incident(policy: &Policy, store: &RedisStore, name: &str, offset_ms: u64) -> Result<u32> {
    let mut inst = instance(policy, START_MS + offset_ms)?;
    let state = store.load(&mut inst)?.state;
    let engine = inst.create_engine(CONFIG, state.as_deref(), &credentials())?;
    let start = inst.start_call(&engine)?.map_err(|e| anyhow!("no route: {}", e.message))?;
    if name == "a" {
        let action = inst.on_failure(&engine, &start.route, &quota(), Some(&start.progress))?;
        assert_eq!(action.kind, ActionKind::FallBack);
    } else {
        inst.on_success(&engine, &start.route)?;
    }
    let snapshot = inst.snapshot(&engine)?;
    store.save(&mut inst, &snapshot)?;
    Ok(start.route.position)
}

#[test]
fn the_first_incident_carries_over_to_the_next_processes() -> Result<()> {
    let server = RedisServer::start()?;
    let policy = Policy::load_default()?;
    let store = server.store("incident")?;
    assert_eq!(incident(&policy, &store, "a", 0)?, 0, "A starts on the primary and gets the 429 quota");
    assert_eq!(incident(&policy, &store, "b", 60_000)?, 1, "B starts on the fallback without touching the primary");
    let mut inst = instance(&policy, START_MS)?;
    let state: Value = serde_json::from_str(&store.load(&mut inst)?.state.context("stored")?)?;
    let until = state["credentials"]["ali-1"]["cooldown_until_ms"].as_u64().context("ali-1 cools down")?;
    assert_eq!(incident(&policy, &store, "c", until - START_MS + 1)?, 0, "C, after the cooldown, is back on the primary");
    Ok(())
}

#[test]
fn redis_down_fails_saves_fast_decisions_go_on_and_the_next_save_catches_up() -> Result<()> {
    let mut server = RedisServer::start()?;
    let policy = Policy::load_default()?;
    let store = server.store("outage")?;
    let mut inst = instance(&policy, START_MS)?;
    let engine = inst.create_engine(CONFIG, None, &credentials())?;
    let first = inst.snapshot(&engine)?;
    store.save(&mut inst, &first)?;

    server.kill();
    let start = inst.start_call(&engine)?.map_err(|e| anyhow!("no route: {}", e.message))?;
    inst.on_failure(&engine, &start.route, &quota(), Some(&start.progress))?;
    let during = inst.snapshot(&engine)?;
    let t = Instant::now();
    let failed = store.save(&mut inst, &during);
    assert!(matches!(failed, Err(StoreError::Unavailable { .. })), "{failed:?}");
    assert!(matches!(store.load(&mut inst), Err(StoreError::Unavailable { .. })));
    assert!(t.elapsed() < Duration::from_secs(1), "a save and a load took {:?}", t.elapsed());
    let route = inst.select(&engine)?.map_err(|e| anyhow!("no route: {}", e.message))?;
    assert_eq!(route.position, 1, "decisions go on from the in-memory state");

    server.restart()?;
    save_engine(&store, &mut inst, &engine)?;
    let stored: Value = serde_json::from_str(&store.load(&mut inst)?.state.context("stored")?)?;
    assert!(stored["credentials"]["ali-1"]["cooldown_until_ms"].as_u64() > Some(START_MS), "{stored}");
    Ok(())
}

#[test]
fn a_corrupt_value_is_set_aside_and_a_newer_schema_left_untouched() -> Result<()> {
    let server = RedisServer::start()?;
    let policy = Policy::load_default()?;
    let store = server.store("corrupt")?;
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{}/", server.port))?.get_connection()?;
    let truncated = r#"{"schema": 2, "credentials": {"ali-1": {"cooldown_until"#;
    redis::cmd("SET").arg(store.key()).arg(truncated).exec(&mut con)?;
    let mut inst = instance(&policy, 0)?;
    let ours = update(1, 1);
    let saved = store.save(&mut inst, &ours)?;
    let aside = saved.set_aside.context("the corrupt value is reported")?;
    assert_eq!(saved.state.as_deref(), Some(ours.as_str()));
    let kept: String = redis::cmd("GET").arg(aside.aside.to_string_lossy().as_ref()).query(&mut con)?;
    assert_eq!(kept, truncated, "kept aside, byte for byte");

    redis::cmd("SET").arg(store.key()).arg(r#"{"schema": 3}"#).exec(&mut con)?;
    assert!(matches!(store.save(&mut inst, &ours), Err(StoreError::Refused { .. })));
    let left: String = redis::cmd("GET").arg(store.key()).query(&mut con)?;
    assert_eq!(left, r#"{"schema": 3}"#);
    Ok(())
}
