//! `failover demo`: two real incidents, then a provider outage, replayed against a local mock
//! provider. HTTP is real (the ureq transport, 127.0.0.1); time is virtual, so an hour of
//! cooldown passes at once.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use failover_host::timefmt::offset;
use failover_host::types::{CallFailure, CallSuccess, Event, Header, HttpResponse, Outbound, Request, TransportFailure};
use failover_host::{Clock, Engine, Host, HttpTransport, Instance, Policy, Secrets, Transport, VirtualClock};
use serde_json::json;

use super::mock::{Answer, MockProvider};

const COOLDOWN_CONFIG: &str = include_str!("../../../../examples/configs/demo-init-time-cooldown.json");
const EXPIRED_KEY_CONFIG: &str = include_str!("../../../../examples/configs/demo-expired-key.json");
const OUTAGE_CONFIG: &str = include_str!("../../../../examples/configs/demo-outage.json");

/// 2026-11-24T14:06:00Z: a quota cooldown of one hour then ends at 15:06.
const START_MS: u64 = 1_795_529_160_000;
const QUOTA_BODY: &str = r#"{"error":{"message":"usage allocated quota exceeded.","type":"insufficient_quota","code":"quota_exceeded"}}"#;
const OVERLOADED_BODY: &str = r#"{"error":{"message":"The server is overloaded, please try again later.","type":"server_error"}}"#;
const AUTH_BODY: &str = r#"{"error":{"message":"Authentication Fails, Your api key: ****abcd is invalid","type":"authentication_error","param":null,"code":"invalid_request_error"}}"#;

pub fn run(policy: &Policy) -> anyhow::Result<ExitCode> {
    let mock = MockProvider::start()?;
    println!("failover demo: a mock OpenAI-compatible provider listens on http://127.0.0.1:{}", mock.port);
    println!("Requests go over real HTTP; waiting uses a virtual clock, so cooldowns pass instantly.");
    println!("Virtual clock starts at 2026-11-24T14:06:00Z; times below are +mm:ss.mmm from there.\n");
    let mut surprises = Vec::new();
    init_time_cooldown(policy, &mock, &mut surprises)?;
    expired_key(policy, &mock, &mut surprises)?;
    outage(policy, &mock, &mut surprises)?;
    super::demo_stream::run(policy, &mut surprises)?;
    if surprises.is_empty() {
        println!("\nBoth incidents, the outage and the streamed answers behaved as the policy promises.");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\nUNEXPECTED:");
        for s in &surprises {
            println!("  - {s}");
        }
        Ok(ExitCode::from(1))
    }
}

/// Prints every send and event as it happens, stamped with virtual time.
#[derive(Clone)]
struct Stamp(VirtualClock);

impl Stamp {
    fn now(&self) -> String {
        offset(self.0.now_ms().saturating_sub(START_MS))
    }
}

struct ShownHttp {
    http: HttpTransport,
    stamp: Stamp,
}

impl Transport for ShownHttp {
    fn send(&mut self, out: &Outbound, auth: Option<&Header>) -> Result<HttpResponse, TransportFailure> {
        println!("  {}  -> {} {} [{}]", self.stamp.now(), out.method, out.url, out.route.label_with_credential());
        let started = Instant::now();
        let answer = self.http.send(out, auth);
        let real = started.elapsed().as_millis();
        match &answer {
            Ok(r) => println!("  {}  <- {} ({real} ms real)", self.stamp.now(), r.status),
            Err(f) => println!("  {}  <- transport {}: {} ({real} ms real)", self.stamp.now(), f.kind.as_str(), f.message),
        }
        answer
    }
}

/// The demo's secrets are set here, in process: nothing is read from the environment.
fn demo_secrets(pairs: &[(&str, &str)]) -> Secrets {
    Secrets::from_map(pairs.iter().map(|(id, secret)| (id.to_string(), secret.to_string())).collect())
}

fn demo_instance(policy: &Policy, clock: &VirtualClock, secrets: &Secrets) -> anyhow::Result<Instance> {
    let stamp = Stamp(clock.clone());
    let events = {
        let stamp = stamp.clone();
        move |e: Event| println!("  {}  event [{}] {}", stamp.now(), e.kind.as_str(), e.message)
    };
    let host = Host::new(ShownHttp { http: HttpTransport::new(), stamp })
        .with_secrets(secrets.clone())
        .with_clock(Clock::Virtual(clock.clone()))
        .with_events(events)
        .with_seed(1);
    Ok(policy.instantiate(host)?)
}

fn request() -> Request {
    let body = json!({"model": "placeholder", "messages": [{"role": "user", "content": "hello"}]});
    Request {
        path: "/chat/completions".to_string(),
        method: "POST".to_string(),
        headers: vec![Header { name: "content-type".to_string(), value: "application/json".to_string() }],
        body: body.to_string().into_bytes(),
    }
}

fn call(instance: &mut Instance, engine: &Engine) -> anyhow::Result<Result<CallSuccess, CallFailure>> {
    let result = instance.call(engine, &request())?;
    match &result {
        Ok(s) => println!("  result: ok via {} after {} attempt(s)", s.route.label_with_credential(), s.attempts.len()),
        Err(f) => println!("  result: gave up ({}) after {} attempt(s): {}", f.error.reason.as_str(), f.attempts.len(), f.error.message),
    }
    Ok(result)
}

fn select(instance: &mut Instance, engine: &Engine) -> anyhow::Result<Option<u32>> {
    Ok(match instance.select(engine)? {
        Ok(route) => {
            println!("  select: {} (chain position {})", route.label_with_credential(), route.position);
            Some(route.position)
        }
        Err(no) => {
            println!("  select: no route: {}", no.message);
            None
        }
    })
}

fn init_time_cooldown(policy: &Policy, mock: &MockProvider, surprises: &mut Vec<String>) -> anyhow::Result<()> {
    println!("== Incident 1: the only primary key is out of quota (init-time cooldown)");
    println!("   config examples/configs/demo-init-time-cooldown.json: alibaba-coding-plan/qwen3.6-plus with one key,");
    println!("   fallback tencent-token-plan/kimi2.5. The primary answers 429 {QUOTA_BODY}\n");
    let config = COOLDOWN_CONFIG.replace("{port}", &mock.port.to_string());
    mock.set("alibaba-coding-plan", Answer::Fail { status: 429, body: QUOTA_BODY.to_string() });
    mock.set("tencent-token-plan", Answer::Ok);
    let clock = VirtualClock::new(START_MS);
    let secrets = demo_secrets(&[("ali-1", "sk-demo-alibaba-0001"), ("ten-1", "sk-demo-tencent-0002")]);
    let credentials = secrets.credentials();

    println!("-- tick 1: a call");
    let mut first = demo_instance(policy, &clock, &secrets)?;
    let engine = first.create_engine(&config, None, &credentials).context("the demo config")?;
    match call(&mut first, &engine)? {
        Ok(s) if s.route.position == 1 && s.attempts.len() == 2 => {}
        other => surprises.push(format!("tick 1 should fall back in 2 attempts, got {}", summary(&other))),
    }
    let snapshot = first.snapshot(&engine)?;
    println!("  (state saved: a {} byte snapshot)\n", snapshot.len());

    println!("-- tick 2, one minute later: a fresh engine from the snapshot (a new cron tick)");
    clock.advance(60_000);
    let mut second = demo_instance(policy, &clock, &secrets)?;
    let engine = second.create_engine(&config, Some(&snapshot), &credentials)?;
    let before = mock.received("alibaba-coding-plan").len();
    if select(&mut second, &engine)? != Some(1) {
        surprises.push("tick 2 should start on the fallback".to_string());
    }
    if call(&mut second, &engine)?.is_err() {
        surprises.push("tick 2's call should succeed on the fallback".to_string());
    }
    let sent = mock.received("alibaba-coding-plan").len() - before;
    println!("  the primary received {sent} request(s) during tick 2");
    if sent != 0 {
        surprises.push(format!("tick 2 sent {sent} request(s) to the cooling primary"));
    }

    println!("\n-- an hour later (virtual): the quota has reset");
    clock.advance(60 * 60_000);
    mock.set("alibaba-coding-plan", Answer::Ok);
    if select(&mut second, &engine)? != Some(0) {
        surprises.push("after the cooldown, select should return to the primary".to_string());
    }
    match call(&mut second, &engine)? {
        Ok(s) if s.route.position == 0 => {}
        other => surprises.push(format!("after the cooldown the call should use the primary, got {}", summary(&other))),
    }
    if let Some(r) = mock.received("alibaba-coding-plan").last() {
        println!("  (the mock saw the primary's key as {}: the host attached it, the guest never saw it)", r.key_tail);
    }
    println!();
    Ok(())
}

fn expired_key(policy: &Policy, mock: &MockProvider, surprises: &mut Vec<String>) -> anyhow::Result<()> {
    println!("== Incident 2: the only DeepSeek key has expired");
    println!("   config examples/configs/demo-expired-key.json: deepseek with one key, no fallback.");
    println!("   DeepSeek answers 401 {AUTH_BODY}\n");
    let config = EXPIRED_KEY_CONFIG.replace("{port}", &mock.port.to_string());
    mock.set("deepseek", Answer::Fail { status: 401, body: AUTH_BODY.to_string() });
    let clock = VirtualClock::new(START_MS);
    let secrets = demo_secrets(&[("ds-1", "sk-demo-deepseek-abcd")]);
    let credentials = secrets.credentials();
    let mut instance = demo_instance(policy, &clock, &secrets)?;
    let engine = instance.create_engine(&config, None, &credentials).context("the demo config")?;
    let started = Instant::now();
    let result = call(&mut instance, &engine)?;
    let real = started.elapsed().as_millis();
    let waited = clock.now_ms() - START_MS;
    let attempts = match &result {
        Ok(s) => s.attempts.len(),
        Err(f) => f.attempts.len(),
    };
    println!("  {attempts} attempts, {waited} ms of (virtual) waiting, {real} ms real time");
    if result.is_ok() || attempts != 2 || waited != 0 {
        surprises.push(format!("the expired key should give up after 2 attempts and no waiting, got {}", summary(&result)));
    }
    Ok(())
}

fn outage(policy: &Policy, mock: &MockProvider, surprises: &mut Vec<String>) -> anyhow::Result<()> {
    println!("\n== A provider outage: the route's circuit opens, probes once per break, and closes");
    println!("   config examples/configs/demo-outage.json: primary-gateway/big-model with two keys, fallback backup-gateway.");
    println!("   The primary answers 503 {OVERLOADED_BODY}\n");
    let config = OUTAGE_CONFIG.replace("{port}", &mock.port.to_string());
    mock.set("primary-gateway", Answer::Fail { status: 503, body: OVERLOADED_BODY.to_string() });
    mock.set("backup-gateway", Answer::Ok);
    let clock = VirtualClock::new(START_MS);
    let secrets = demo_secrets(&[("pg-1", "sk-demo-primary-0003"), ("pg-2", "sk-demo-primary-0004"), ("bg-1", "sk-demo-backup-0005")]);
    let mut instance = demo_instance(policy, &clock, &secrets)?;
    let engine = instance.create_engine(&config, None, &secrets.credentials()).context("the demo config")?;
    let steps: [(&str, u64, Option<Answer>, usize, u32); 4] = [
        ("a call: backoff retries on the same key (never another key), then the circuit opens", 0, None, 3, 1),
        ("10 s later: the circuit is open, so the call goes straight to the fallback", 10_000, None, 0, 1),
        ("the 15 s break is over: one probe; it fails, so the circuit reopens for 22.5 s (breaks grow 1.5x)", 10_000, None, 1, 1),
        ("the primary has recovered; after the 22.5 s break the probe succeeds and closes the circuit", 25_000, Some(Answer::Ok), 1, 0),
    ];
    for (what, wait, answer, primary_sends, position) in steps {
        println!("-- {what}");
        clock.advance(wait);
        if let Some(a) = answer {
            mock.set("primary-gateway", a);
        }
        let before = mock.received("primary-gateway").len();
        let result = call(&mut instance, &engine)?;
        let sent = mock.received("primary-gateway").len() - before;
        match &result {
            Ok(s) if s.route.position == position && sent == primary_sends => {}
            other => surprises.push(format!("outage step `{what}`: expected {primary_sends} primary request(s) and an answer from position {position}, got {sent} and {}", summary(other))),
        }
        println!();
    }
    let keys: Vec<String> = mock.received("primary-gateway").iter().map(|r| r.key_tail.clone()).collect();
    println!("  keys the primary saw: {} (the second key was never burned on the provider's outage)", keys.join(", "));
    if keys.iter().any(|k| k.ends_with("0004")) {
        surprises.push("the outage rotated to the primary's second key".to_string());
    }
    Ok(())
}

fn summary(result: &Result<CallSuccess, CallFailure>) -> String {
    match result {
        Ok(s) => format!("ok via {} in {} attempt(s)", s.route.label_with_credential(), s.attempts.len()),
        Err(f) => format!("failure ({}) in {} attempt(s)", f.error.reason.as_str(), f.attempts.len()),
    }
}
