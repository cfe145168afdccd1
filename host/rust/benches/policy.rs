//! What the policy costs per decision, per start and per swap: each operation natively (the
//! guest's logic compiled for the host, `failover_policy::Engine`) and through the component
//! (`failover_host`), so one run gives the wasm/native ratio. `scripts/bench.sh` runs this and
//! writes BENCHMARKS.md from criterion's samples.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use failover_host::types as h;
use failover_host::{ArtifactCache, Clock, Host, Policy, PolicyHost, Transport, VirtualClock, DEFAULT_POLICY};
use failover_policy::classify::{classify, Family};
use failover_policy::types as n;
use failover_policy::{Engine as NativeEngine, Env};
use wasmtime::component::Component;

const START_MS: u64 = 1_795_528_800_000;
/// Each iteration moves the clock on by an hour, so every cooldown, circuit and retry-budget
/// window from the previous iteration has lapsed and each iteration makes the same decision.
const HOUR_MS: u64 = 3_600_000;
/// Decisions per fresh engine in the on-failure benches: fewer than the retry budget allows
/// (10 tokens, retries above 5) so none is refused.
const FRESH_EVERY: u64 = 4;

const CHAIN: &str = r#"{
  "providers": {
    "openai": {"base_url": "https://o.example/v1", "credentials": [{"id": "oa-1"}, {"id": "oa-2"}]},
    "anthropic": {"base_url": "https://a.example/v1", "credentials": [{"id": "an-1"}]}
  },
  "primary": {"provider": "openai", "model": "gpt-4o"},
  "fallback_providers": [{"provider": "anthropic", "model": "claude-sonnet"}],
  "seed": 3
}"#;
const RATE_429: &str = r#"{"error":{"message":"Rate limit reached for requests per min","type":"requests","code":"rate_limit_exceeded"}}"#;
const OVERLOADED_503: &str = r#"{"error":{"message":"The server is overloaded, please try again later","type":"server_error"}}"#;
const QUOTA_429: &str = r#"{"error":{"message":"usage allocated quota exceeded.","type":"insufficient_quota","code":"quota_exceeded"}}"#;

fn pool_config(keys: usize) -> String {
    let creds: Vec<String> = (0..keys).map(|i| format!(r#"{{"id": "k{i}"}}"#)).collect();
    format!(
        r#"{{"providers": {{"openai": {{"base_url": "https://o.example/v1", "credentials": [{}]}}}},
            "primary": {{"provider": "openai", "model": "gpt-4o"}}, "seed": 3}}"#,
        creds.join(", ")
    )
}

fn native_creds(ids: impl IntoIterator<Item = String>) -> Vec<n::CredentialInfo> {
    ids.into_iter().map(|id| n::CredentialInfo { fingerprint: format!("fp-{id}"), id }).collect()
}

fn to_wit_creds(creds: &[n::CredentialInfo]) -> Vec<h::CredentialInfo> {
    creds.iter().map(|c| h::CredentialInfo { id: c.id.clone(), fingerprint: c.fingerprint.clone() }).collect()
}

fn chain_creds() -> Vec<n::CredentialInfo> {
    native_creds(["oa-1", "oa-2", "an-1"].map(String::from))
}

fn pool_creds(keys: usize) -> Vec<n::CredentialInfo> {
    native_creds((0..keys).map(|i| format!("k{i}")))
}

fn response(status: u16, body: &str) -> n::HttpResponse {
    let headers = vec![n::Header { name: "content-type".into(), value: "application/json".into() }];
    n::HttpResponse { status, headers, body: body.as_bytes().to_vec() }
}

fn request() -> n::Request {
    let body = br#"{"model":"x","messages":[{"role":"user","content":"hi"}]}"#.to_vec();
    n::Request { path: "/chat/completions".into(), method: "POST".into(), headers: vec![], body }
}

// ---- the native side: an Env over a virtual clock and a fake provider ----

/// Answers every other request with a 429, the rest with a 200: a guest-driven call rotates once.
struct BenchEnv {
    now: u64,
    next_is_429: bool,
}

impl BenchEnv {
    fn new() -> Self {
        BenchEnv { now: START_MS, next_is_429: true }
    }
}

impl Env for BenchEnv {
    fn now_ms(&mut self) -> u64 {
        self.now
    }
    fn sleep_ms(&mut self, ms: u64) {
        self.now += ms;
    }
    fn send(&mut self, _request: &n::Outbound) -> Result<n::HttpResponse, n::TransportFailure> {
        self.next_is_429 = !self.next_is_429;
        Ok(if self.next_is_429 { response(200, r#"{"choices":[]}"#) } else { response(429, RATE_429) })
    }
    fn emit(&mut self, _event: n::Event) {}
    fn seed(&mut self) -> u64 {
        1
    }
}

// ---- the component side: the same fake provider as a host Transport ----

struct FakeProvider {
    next_is_429: bool,
}

impl Transport for FakeProvider {
    fn send(&mut self, _request: &h::Outbound, _auth: Option<&h::Header>) -> Result<h::HttpResponse, h::TransportFailure> {
        self.next_is_429 = !self.next_is_429;
        let r = if self.next_is_429 { response(429, RATE_429) } else { response(200, r#"{"choices":[]}"#) };
        Ok(to_wit_response(r))
    }
}

fn to_wit_response(r: n::HttpResponse) -> h::HttpResponse {
    let headers = r.headers.into_iter().map(|x| h::Header { name: x.name, value: x.value }).collect();
    h::HttpResponse { status: r.status, headers, body: r.body }
}

fn to_wit_failure(f: &n::Failure) -> h::Failure {
    match f {
        n::Failure::Http(r) => h::Failure { kind: h::FailureKind::Http, response: Some(to_wit_response(r.clone())), transport: None },
        n::Failure::Transport(t) => {
            let kind = h::TransportKind::ALL.into_iter().find(|k| k.as_str() == t.kind.as_str()).expect("same kinds");
            h::Failure {
                kind: h::FailureKind::Transport,
                response: None,
                transport: Some(h::TransportFailure { kind, message: t.message.clone() }),
            }
        }
    }
}

fn to_wit_route(r: &n::Route) -> h::Route {
    h::Route { provider: r.provider.clone(), model: r.model.clone(), credential: r.credential.clone(), position: r.position }
}

fn to_wit_request(r: &n::Request) -> h::Request {
    h::Request { path: r.path.clone(), method: r.method.clone(), headers: vec![], body: r.body.clone() }
}

/// An instance on a virtual clock (returned so iterations can move it) and the fake provider.
fn component_instance(policy: &Policy) -> (failover_host::Instance, VirtualClock) {
    let clock = VirtualClock::new(START_MS);
    let host = Host::new(FakeProvider { next_is_429: false }).with_clock(Clock::Virtual(clock.clone())).with_seed(1);
    (policy.instantiate(host).expect("instantiate"), clock)
}

// ---- the corpus ----

/// Every case of tests/corpus/*.jsonl as (provider, failure): the classify mix.
fn corpus() -> Vec<(String, n::Failure)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/corpus")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for file in files {
        for line in std::fs::read_to_string(&file).expect("corpus file").lines().filter(|l| !l.trim().is_empty()) {
            let case: serde_json::Value = serde_json::from_str(line).expect("corpus line");
            let provider = case["provider"].as_str().expect("provider").to_string();
            cases.push((provider, corpus_failure(&case)));
        }
    }
    cases
}

fn corpus_failure(case: &serde_json::Value) -> n::Failure {
    use serde_json::Value;
    if let Some(kind) = case["transport"].as_str() {
        let kind = n::TransportKind::parse(kind).expect("transport kind");
        let message = case["message"].as_str().unwrap_or_default().to_string();
        return n::Failure::Transport(n::TransportFailure { kind, message });
    }
    let headers = case["headers"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| n::Header { name: k.clone(), value: v.as_str().unwrap_or_default().into() }).collect())
        .unwrap_or_default();
    let body = match (&case["body"], &case["body_base64"]) {
        (_, Value::String(b64)) => base64::engine::general_purpose::STANDARD.decode(b64).expect("base64 body"),
        (Value::String(s), _) => s.clone().into_bytes(),
        (Value::Null, _) => Vec::new(),
        (v, _) => v.to_string().into_bytes(),
    };
    n::Failure::Http(n::HttpResponse { status: case["status"].as_u64().expect("status") as u16, headers, body })
}

// ---- per-call benchmarks ----

fn bench_classify(c: &mut Criterion, policy: &Policy) {
    let cases = corpus();
    let wit: Vec<(String, h::Failure)> = cases.iter().map(|(p, f)| (p.clone(), to_wit_failure(f))).collect();
    let mut g = c.benchmark_group("classify");
    let mut i = 0;
    g.bench_function("native", |b| {
        b.iter(|| {
            i = (i + 1) % cases.len();
            let (provider, failure) = &cases[i];
            // The component infers the family on every call too.
            black_box(classify(Family::infer(provider), failure))
        })
    });
    let (mut inst, _) = component_instance(policy);
    g.bench_function("wasm", |b| {
        b.iter(|| {
            i = (i + 1) % wit.len();
            let (provider, failure) = &wit[i];
            black_box(inst.classify(provider, failure).expect("classify"))
        })
    });
    g.finish();
}

fn bench_decisions(c: &mut Criterion, policy: &Policy) {
    let creds = chain_creds();
    let primary = n::Route { provider: "openai".into(), model: "gpt-4o".into(), credential: "oa-1".into(), position: 0 };
    let rate = n::Failure::Http(response(429, RATE_429));
    let overloaded = n::Failure::Http(response(503, OVERLOADED_503));

    let mut env = BenchEnv::new();
    let mut engine = NativeEngine::create(CHAIN, None, &creds, &mut env).expect("config");

    let (mut inst, clock) = component_instance(policy);
    let mut wengine = inst.create_engine(CHAIN, None, &to_wit_creds(&creds)).expect("config");
    let (wprimary, wrate, woverloaded) = (to_wit_route(&primary), to_wit_failure(&rate), to_wit_failure(&overloaded));

    let mut g = c.benchmark_group("select");
    g.bench_function("native", |b| b.iter(|| black_box(engine.select(&mut env).expect("route"))));
    g.bench_function("wasm", |b| b.iter(|| black_box(inst.select(&wengine).expect("select").expect("route"))));
    g.finish();

    // A fresh engine every few decisions, made outside the timed part: 503s spend the retry
    // budget (only successes refill it), and each timed decision must be the one named.
    let cases = [
        ("on-failure-429-rotate", &rate, &wrate, n::ActionKind::Rotate, h::ActionKind::Rotate),
        ("on-failure-503-backoff", &overloaded, &woverloaded, n::ActionKind::Retry, h::ActionKind::Retry),
    ];
    for (name, failure, wfailure, kind, wkind) in cases {
        let mut g = c.benchmark_group(name);
        g.bench_function("native", |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for i in 0..iters {
                    if i % FRESH_EVERY == 0 {
                        engine = NativeEngine::create(CHAIN, None, &creds, &mut env).expect("config");
                    }
                    env.now += HOUR_MS;
                    let t = Instant::now();
                    let action = black_box(engine.on_failure(&primary, failure, None, &mut env));
                    spent += t.elapsed();
                    assert_eq!(action.kind, kind, "{}", action.why);
                }
                spent
            })
        });
        g.bench_function("wasm", |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for i in 0..iters {
                    if i % FRESH_EVERY == 0 {
                        let fresh = inst.create_engine(CHAIN, None, &to_wit_creds(&creds)).expect("config");
                        inst.drop_engine(std::mem::replace(&mut wengine, fresh)).expect("drop");
                    }
                    clock.advance(HOUR_MS);
                    let t = Instant::now();
                    let action = black_box(inst.on_failure(&wengine, &wprimary, wfailure, None).expect("on-failure"));
                    spent += t.elapsed();
                    assert_eq!(action.kind, wkind, "{}", action.why);
                }
                spent
            })
        });
        g.finish();
    }

    let req = request();
    let wreq = to_wit_request(&req);
    let mut g = c.benchmark_group("call-429-then-200");
    g.bench_function("native", |b| {
        b.iter(|| {
            env.now += HOUR_MS;
            let ok = engine.call(&req, &mut env).expect("the second key answers");
            assert_eq!(ok.attempts.len(), 2);
            black_box(ok)
        })
    });
    g.bench_function("wasm", |b| {
        b.iter(|| {
            clock.advance(HOUR_MS);
            let ok = inst.call(&wengine, &wreq).expect("call").expect("the second key answers");
            assert_eq!(ok.attempts.len(), 2);
            black_box(ok)
        })
    });
    g.finish();

    // What an application calls: `PolicyHost` adds the lock and the last-good snapshot that a
    // restart after a fault restores.
    let hclock = VirtualClock::new(START_MS);
    let make_host = {
        let hclock = hclock.clone();
        move || Host::new(FakeProvider { next_is_429: false }).with_clock(Clock::Virtual(hclock.clone())).with_seed(1)
    };
    let running = PolicyHost::start(Policy::load_default().expect("policy"), CHAIN, None, to_wit_creds(&creds), make_host).expect("start");
    let mut g = c.benchmark_group("policy-host");
    g.bench_function("select", |b| b.iter(|| black_box(running.select().expect("select").value.expect("route"))));
    g.bench_function("on-failure-429-rotate", |b| {
        b.iter(|| {
            hclock.advance(HOUR_MS);
            black_box(running.on_failure(&wprimary, &wrate, None).expect("on-failure"))
        })
    });
    g.finish();
}

/// Snapshot and restore with every key of an N-key pool in quota cooldown, so the state is as
/// large as N makes it.
fn bench_snapshots(c: &mut Criterion, policy: &Policy) {
    let quota = n::Failure::Http(response(429, QUOTA_429));
    for keys in [1usize, 10, 1000] {
        let config = pool_config(keys);
        let creds = pool_creds(keys);
        let wcreds = to_wit_creds(&creds);
        let routes: Vec<n::Route> = creds
            .iter()
            .map(|c| n::Route { provider: "openai".into(), model: "gpt-4o".into(), credential: c.id.clone(), position: 0 })
            .collect();

        let mut env = BenchEnv::new();
        let mut engine = NativeEngine::create(&config, None, &creds, &mut env).expect("config");
        let (mut inst, _) = component_instance(policy);
        let wengine = inst.create_engine(&config, None, &wcreds).expect("config");
        let wquota = to_wit_failure(&quota);
        for route in &routes {
            engine.on_failure(route, &quota, None, &mut env);
            inst.on_failure(&wengine, &to_wit_route(route), &wquota, None).expect("on-failure");
        }
        let snapshot = engine.snapshot(&mut env).to_json();
        let wsnapshot = inst.snapshot(&wengine).expect("snapshot");

        let mut g = c.benchmark_group(format!("snapshot-{keys}-keys"));
        g.bench_function("native", |b| b.iter(|| black_box(engine.snapshot(&mut env).to_json())));
        g.bench_function("wasm", |b| b.iter(|| black_box(inst.snapshot(&wengine).expect("snapshot"))));
        g.finish();

        let mut g = c.benchmark_group(format!("restore-{keys}-keys"));
        g.bench_function("native", |b| {
            b.iter(|| black_box(NativeEngine::create(&config, Some(&snapshot), &creds, &mut env).expect("restore")))
        });
        g.bench_function("wasm", |b| {
            b.iter(|| {
                let e = inst.create_engine(&config, Some(&wsnapshot), &wcreds).expect("restore");
                inst.drop_engine(e).expect("drop")
            })
        });
        g.finish();
    }
}

// ---- cold start and swap ----

fn bench_cold(c: &mut Criterion) {
    // The host's engine config: its features, plus epoch interruption for the per-call limit.
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    let engine = wasmtime::Engine::new(&config).expect("engine");
    let artifact = Component::new(&engine, DEFAULT_POLICY).expect("component").serialize().expect("serialize");
    let policy = Policy::load_default().expect("policy");

    let mut g = c.benchmark_group("cold");
    g.sample_size(10);
    g.bench_function("compile-wasm", |b| b.iter(|| black_box(Component::new(&engine, DEFAULT_POLICY).expect("compile"))));
    // SAFETY: the artifact was serialized just above by this engine config.
    g.bench_function("load-artifact", |b| {
        b.iter(|| black_box(unsafe { Component::deserialize(&engine, &artifact) }.expect("deserialize")))
    });
    // The same artifact as a file, memory-mapped: what loading a precompiled artifact from disk costs.
    let artifact_file = std::env::temp_dir().join(format!("failover-bench-{}.cwasm", std::process::id()));
    std::fs::write(&artifact_file, &artifact).expect("write the artifact");
    // SAFETY: written just above from this engine config, and not changed while mapped.
    g.bench_function("load-artifact-file", |b| {
        b.iter(|| black_box(unsafe { Component::deserialize_file(&engine, &artifact_file) }.expect("deserialize_file")))
    });
    g.bench_function("instantiate-pre", |b| {
        b.iter(|| black_box(policy.instantiate(Host::new(FakeProvider { next_is_429: false })).expect("instantiate")))
    });
    g.finish();
    let _ = std::fs::remove_file(&artifact_file);

    let creds = to_wit_creds(&chain_creds());
    let first_decision = |policy: Policy| {
        let mut inst = policy.instantiate(Host::new(FakeProvider { next_is_429: false })).expect("instantiate");
        let e = inst.create_engine(CHAIN, None, &creds).expect("config");
        inst.select(&e).expect("select").expect("route")
    };
    let cache = ArtifactCache::new(std::env::temp_dir().join(format!("failover-bench-cache-{}", std::process::id())));
    Policy::from_bytes_cached(DEFAULT_POLICY, "bench", &cache).expect("fills the cache");
    let mut g = c.benchmark_group("swap-to-first-decision");
    g.sample_size(10);
    // Policy::from_bytes compiles with cranelift every time: a never-seen .wasm.
    g.bench_function("new-wasm", |b| b.iter(|| black_box(first_decision(Policy::from_bytes(DEFAULT_POLICY, "bench").expect("policy")))));
    // Policy::from_bytes_baseline compiles with Winch every time: what PolicyHost::swap_tiered
    // serves a never-seen .wasm from while cranelift compiles it in the background.
    g.bench_function("new-wasm-baseline", |b| {
        b.iter(|| black_box(first_decision(Policy::from_bytes_baseline(DEFAULT_POLICY, "bench").expect("policy"))))
    });
    // The host's artifact cache: sha256, read the artifact, deserialize, link, InstancePre.
    g.bench_function("cached-artifact", |b| {
        b.iter(|| black_box(first_decision(Policy::from_bytes_cached(DEFAULT_POLICY, "bench", &cache).expect("policy"))))
    });
    g.finish();
    let _ = std::fs::remove_dir_all(cache.dir());
}

fn benches(c: &mut Criterion) {
    let policy = Policy::load_default().expect("the built-in policy");
    bench_classify(c, &policy);
    bench_decisions(c, &policy);
    bench_snapshots(c, &policy);
    bench_cold(c);
}

criterion_group! {
    name = policy;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(policy);
