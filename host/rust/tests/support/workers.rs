//! Worker processes on one store, for the store tests: this test binary run again with
//! `FLEET_CHILD` set to a role (`record`: one 429 quota per key, then exit without a close;
//! `caller`: real calls over loopback HTTP for a while), through the paths a user runs
//! (`PolicyHost::start_shared`, `Fleet` with an `Instance`).

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use failover_host::store::{Fleet, FleetOptions, Store};
use failover_host::types::{Failure, Header, HttpResponse, Request, Route};
use failover_host::{Host, HttpTransport, Instance, Policy, PolicyHost, Secrets};
use serde_json::{json, Value};

pub const QUOTA_BODY: &str = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","code":"insufficient_quota"}}"#;

/// One provider `fleet` with the keys `w<i>-k<j>` of every worker.
pub fn record_config(workers: usize, keys: usize) -> String {
    let credentials: Vec<Value> = (0..workers).flat_map(|i| (0..keys).map(move |j| json!({"id": format!("w{i}-k{j}")}))).collect();
    json!({"providers": {"fleet": {"family": "openai", "base_url": "http://127.0.0.1:9/v1", "credentials": credentials}},
           "primary": {"provider": "fleet", "model": "m"}})
    .to_string()
}

/// Every credential of `config`, with the secret `sk-fleet-<id>`.
pub fn secrets(config: &str) -> Result<Secrets> {
    let parsed: Value = serde_json::from_str(config)?;
    let mut map = BTreeMap::new();
    for provider in parsed["providers"].as_object().context("providers")?.values() {
        for c in provider["credentials"].as_array().context("credentials")? {
            let id = c["id"].as_str().context("id")?;
            map.insert(id.to_string(), format!("sk-fleet-{id}"));
        }
    }
    Ok(Secrets::from_map(map))
}

/// Starts this test binary's `test` as a worker process with `role` and `env`.
pub fn spawn(test: &str, role: &str, env: &[(&str, String)]) -> Result<Child> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"]).env("FLEET_CHILD", role);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Ok(cmd.spawn()?)
}

/// The body of a store test binary's `worker` test: what this process was spawned as, if
/// anything (`record` or `caller`); a plain test run does nothing.
pub fn run_role() -> Result<()> {
    match role().as_deref() {
        Some("record") => record(),
        Some("caller") => caller(),
        _ => Ok(()),
    }
}

pub fn role() -> Option<String> {
    std::env::var("FLEET_CHILD").ok()
}

fn var(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

/// `record`: load through `PolicyHost::start_shared`, one 429 quota per key of worker
/// `FLEET_WORKER`, each saved after the change; exit with no close (the drop flushes).
pub fn record() -> Result<()> {
    let config = record_config(var("FLEET_WORKERS")?.parse()?, var("FLEET_KEYS")?.parse()?);
    let (worker, keys): (usize, usize) = (var("FLEET_WORKER")?.parse()?, var("FLEET_KEYS")?.parse()?);
    let secrets = secrets(&config)?;
    let credentials = secrets.credentials();
    let store = Store::open(&var("FLEET_STORE")?, "fleet", None)?;
    let make_host = move || Host::new(HttpTransport::new()).with_secrets(secrets.clone());
    let host = PolicyHost::start_shared(Policy::load_default()?, &config, Fleet::new(store), credentials, make_host)?;
    let quota = Failure::http(HttpResponse { status: 429, headers: Vec::new(), body: QUOTA_BODY.as_bytes().to_vec() });
    for j in 0..keys {
        let route = Route { provider: "fleet".into(), model: "m".into(), credential: format!("w{worker}-k{j}"), position: 0 };
        host.on_failure(&route, &quota, None)?;
    }
    Ok(())
}

/// The records of `state` cooling at `now_ms`.
pub fn cooling(state: &str, now_ms: u64) -> Result<Vec<String>> {
    let state: Value = serde_json::from_str(state)?;
    let records = state["credentials"].as_object().cloned().unwrap_or_default();
    Ok(records.into_iter().filter(|(_, r)| r["cooldown_until_ms"].as_u64().is_some_and(|u| u > now_ms)).map(|(id, _)| id).collect())
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Runs `workers` record processes at once on `store`, and says which keys did not arrive.
pub fn record_all(test: &str, store: &str, workers: usize, keys: usize, meanwhile: impl FnOnce() -> Result<()>) -> Result<Vec<String>> {
    let env = |w: usize| {
        vec![
            ("FLEET_STORE", store.to_string()),
            ("FLEET_WORKERS", workers.to_string()),
            ("FLEET_KEYS", keys.to_string()),
            ("FLEET_WORKER", w.to_string()),
        ]
    };
    let children: Vec<Child> = (0..workers).map(|w| spawn(test, "record", &env(w))).collect::<Result<_>>()?;
    meanwhile()?;
    for mut c in children {
        if !c.wait()?.success() {
            bail!("a record process failed");
        }
    }
    let mut inst = Policy::load_default()?.instantiate(Host::new(HttpTransport::new()))?;
    let state = Store::open(store, "fleet", None)?.load(&mut inst)?.state.context("the store is empty")?;
    let cooling = cooling(&state, now_ms())?;
    Ok((0..workers).flat_map(|i| (0..keys).map(move |j| format!("w{i}-k{j}"))).filter(|id| !cooling.contains(id)).collect())
}

/// `caller`: an already running process making a call every 20 ms for `FLEET_FOR_MS` through an
/// `Instance` and a `Fleet` (refresh at call start, save after), against `FLEET_CONFIG`.
pub fn caller() -> Result<()> {
    let config = var("FLEET_CONFIG")?;
    let secrets = secrets(&config)?;
    let credentials = secrets.credentials();
    let store = Store::open(&var("FLEET_STORE")?, "fleet", None)?;
    let mut fleet = Fleet::new(store).with_options(FleetOptions { refresh: Duration::from_millis(250), ..FleetOptions::default() });
    let mut inst: Instance = Policy::load_default()?.instantiate(Host::new(HttpTransport::new()).with_secrets(secrets))?;
    let state = fleet.load(&mut inst)?.state;
    let engine = inst.create_engine(&config, state.as_deref(), &credentials)?;
    let request = Request {
        path: "/chat/completions".into(),
        method: "POST".into(),
        headers: vec![Header { name: "x-fleet-worker".into(), value: var("FLEET_NAME")? }],
        body: br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
    };
    let until = Instant::now() + Duration::from_millis(var("FLEET_FOR_MS")?.parse()?);
    while Instant::now() < until {
        fleet.refresh(&mut inst, &engine)?;
        inst.call(&engine, &request)?.map_err(|e| anyhow!("the call failed: {}", e.error.message))?;
        fleet.save(&mut inst, &engine)?;
        std::thread::sleep(Duration::from_millis(20));
    }
    fleet.close()?;
    Ok(())
}

/// A provider pair on 127.0.0.1 (`/primary/...`, `/backup/...`) answering every call, except
/// that the primary answers worker A (`x-fleet-worker: a`) a 429 quota; it keeps every
/// request's time, path and status.
pub struct Mock {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<(u64, String, u16)>>>,
}

impl Mock {
    pub fn start() -> Result<Mock> {
        let server = tiny_http::Server::http("127.0.0.1:0").map_err(|e| anyhow!("mock: {e}"))?;
        let port = server.server_addr().to_ip().context("an IP listener")?.port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let path = request.url().to_string();
                let a = request.headers().iter().any(|h| h.field.equiv("x-fleet-worker") && h.value.as_str() == "a");
                let quota = path.starts_with("/primary/") && a;
                let (status, body) = if quota {
                    (429, QUOTA_BODY.to_string())
                } else {
                    (200, r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}"#.to_string())
                };
                log.lock().map(|mut l| l.push((now_ms(), path, status))).ok();
                let header = tiny_http::Header::from_bytes("content-type", "application/json").ok();
                let response = tiny_http::Response::from_string(body).with_status_code(status);
                let _ = request.respond(match header {
                    Some(h) => response.with_header(h),
                    None => response,
                });
            }
        });
        Ok(Mock { port, seen })
    }

    pub fn config(&self) -> String {
        json!({"providers": {
            "primary": {"family": "openai", "base_url": format!("http://127.0.0.1:{}/primary/v1", self.port), "credentials": [{"id": "p-1"}]},
            "backup": {"family": "openai", "base_url": format!("http://127.0.0.1:{}/backup/v1", self.port), "credentials": [{"id": "b-1"}]}},
            "primary": {"provider": "primary", "model": "m"},
            "fallback_providers": [{"provider": "backup", "model": "m"}]})
        .to_string()
    }

    pub fn requests(&self) -> Vec<(u64, String, u16)> {
        self.seen.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// The two-worker check on `store`: B is already calling when A meets the primary's 429; from
/// 1 s after it, B sends the primary nothing. Returns (B's primary requests past that second,
/// all requests past it).
pub fn two_workers(test: &str, store: &str) -> Result<(usize, usize)> {
    let mock = Mock::start()?;
    let env = |name: &str, for_ms: u64| {
        vec![
            ("FLEET_STORE", store.to_string()),
            ("FLEET_CONFIG", mock.config()),
            ("FLEET_FOR_MS", for_ms.to_string()),
            ("FLEET_NAME", name.to_string()),
        ]
    };
    let mut b = spawn(test, "caller", &env("b", 4000))?;
    // B is running once it has answered a few calls from the primary.
    let start = Instant::now();
    while mock.requests().iter().filter(|(_, p, _)| p.starts_with("/primary/")).count() < 3 {
        if start.elapsed() > Duration::from_secs(20) {
            bail!("worker B made no calls");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // A: one call (the primary's 429, then the backup), saved, and gone.
    let a = spawn(test, "caller", &env("a", 1))?.wait()?;
    if !(a.success() && b.wait()?.success()) {
        bail!("a worker failed");
    }
    let requests = mock.requests();
    let at = requests.iter().find(|(_, _, status)| *status == 429).map(|(at, _, _)| *at).context("the primary never answered 429")?;
    let late: Vec<_> = requests.iter().filter(|(t, _, _)| *t > at + 1000).collect();
    Ok((late.iter().filter(|(_, p, _)| p.starts_with("/primary/")).count(), late.len()))
}
