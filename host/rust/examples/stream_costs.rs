//! What judging a streamed answer costs, and what a driven call adds to time to first token.
//! Prints a markdown table (`scripts/bench.sh` puts it into BENCHMARKS.md):
//! - per event before commit (held back and judged) and after it (judged and passed on), with
//!   the guest's logic compiled natively and through the component;
//! - time to first token over loopback HTTP, directly (ureq) and through `Instance::stream`,
//!   measured in turns.
//!
//! `cargo run --release -p failover-host --example stream_costs [-- EVENTS ROUNDS]`

use std::io::Read;
use std::time::{Duration, Instant};

use failover_host::stream_mock::{chunk, Reply, StreamMock};
use failover_host::types as h;
use failover_host::{Begun, Host, HttpTransport, Policy, Transport};
use failover_policy::types as n;
use failover_policy::{DrivenCall, Engine, Env};

const CONFIG: &str = r#"{"providers": {"openai": {"base_url": "https://o.example/v1", "credentials": [{"id": "oa-1"}]}},
  "primary": {"provider": "openai", "model": "gpt-4o"}, "seed": 3}"#;
/// Events per driven call before commit: well under the 1 MiB held back at most.
const HELD_PER_CALL: usize = 1000;

struct StillEnv;

impl Env for StillEnv {
    fn now_ms(&mut self) -> u64 {
        1_795_528_800_000
    }
    fn sleep_ms(&mut self, _: u64) {}
    fn send(&mut self, _: &n::Outbound) -> Result<n::HttpResponse, n::TransportFailure> {
        Err(n::TransportFailure { kind: n::TransportKind::Other, message: "not used".into() })
    }
    fn emit(&mut self, _: n::Event) {}
    fn seed(&mut self) -> u64 {
        1
    }
}

struct NoTransport;

impl Transport for NoTransport {
    fn send(&mut self, _: &h::Outbound, _: Option<&h::Header>) -> Result<h::HttpResponse, h::TransportFailure> {
        Err(h::TransportFailure { kind: h::TransportKind::Other, message: "not used".into() })
    }
}

fn body() -> Vec<u8> {
    br#"{"model":"x","stream":true,"messages":[{"role":"user","content":"hi"}]}"#.to_vec()
}

fn role_event() -> Vec<u8> {
    format!("data: {}\n\n", chunk(r#"{"role":"assistant"}"#, "null")).into_bytes()
}

fn content_event() -> Vec<u8> {
    format!("data: {}\n\n", chunk(r#"{"content":"token "}"#, "null")).into_bytes()
}

fn sse_headers() -> Vec<(String, String)> {
    vec![("content-type".into(), "text/event-stream".into())]
}

/// Nanoseconds per event natively: (before commit, after commit).
fn native(events: usize) -> (f64, f64) {
    let env = &mut StillEnv;
    let creds = [n::CredentialInfo { id: "oa-1".into(), fingerprint: "fp".into() }];
    let mut engine = Engine::create(CONFIG, None, &creds, env).expect("config");
    let request = n::Request { path: "/chat/completions".into(), method: "POST".into(), headers: vec![], body: body() };
    let head = n::ResponseHead { status: 200, headers: sse_headers().into_iter().map(|(name, value)| n::Header { name, value }).collect() };
    let open = |engine: &mut Engine, env: &mut StillEnv| {
        let mut call = DrivenCall::new(engine, request.clone(), None, env);
        call.next(engine, n::CallInput::of(n::InputKind::Start), env);
        call.next(engine, n::CallInput { head: Some(head.clone()), ..n::CallInput::of(n::InputKind::Head) }, env);
        call
    };
    let data = |bytes: Vec<u8>| n::CallInput { data: bytes, ..n::CallInput::of(n::InputKind::Data) };
    let role = role_event();
    let started = Instant::now();
    let mut done = 0;
    while done < events {
        let mut call = open(&mut engine, env);
        for _ in 0..HELD_PER_CALL.min(events - done) {
            std::hint::black_box(call.next(&mut engine, data(role.clone()), env));
            done += 1;
        }
    }
    let before = started.elapsed().as_nanos() as f64 / events as f64;
    let mut call = open(&mut engine, env);
    call.next(&mut engine, data(content_event()), env);
    let content = content_event();
    let started = Instant::now();
    for _ in 0..events {
        std::hint::black_box(call.next(&mut engine, data(content.clone()), env));
    }
    (before, started.elapsed().as_nanos() as f64 / events as f64)
}

/// Nanoseconds per event through the component: (before commit, after commit).
fn component(policy: &Policy, events: usize) -> (f64, f64) {
    let mut instance = policy.instantiate(Host::new(NoTransport)).expect("instantiate");
    let creds = [h::CredentialInfo { id: "oa-1".into(), fingerprint: "fp".into() }];
    let engine = instance.create_engine(CONFIG, None, &creds).expect("config");
    let request = h::Request { path: "/chat/completions".into(), method: "POST".into(), headers: vec![], body: body() };
    let head = h::ResponseHead { status: 200, headers: sse_headers().into_iter().map(|(name, value)| h::Header { name, value }).collect() };
    let input = |kind, head: Option<h::ResponseHead>, data: Vec<u8>| h::CallInput { kind, head, data, failure: None };
    let open = |instance: &mut failover_host::Instance| {
        let call = instance.begin(&engine, &request, &h::CallOptions { timeout_ms: None }).expect("begin");
        instance.next(&call, &input(h::InputKind::Start, None, vec![])).expect("start");
        instance.next(&call, &input(h::InputKind::Head, Some(head.clone()), vec![])).expect("head");
        call
    };
    let role = role_event();
    let started = Instant::now();
    let mut done = 0;
    while done < events {
        let call = open(&mut instance);
        for _ in 0..HELD_PER_CALL.min(events - done) {
            std::hint::black_box(instance.next(&call, &input(h::InputKind::Data, None, role.clone())).expect("next"));
            done += 1;
        }
        instance.drop_call(call).expect("drop");
    }
    let before = started.elapsed().as_nanos() as f64 / events as f64;
    let call = open(&mut instance);
    instance.next(&call, &input(h::InputKind::Data, None, content_event())).expect("commit");
    let content = content_event();
    let started = Instant::now();
    for _ in 0..events {
        std::hint::black_box(instance.next(&call, &input(h::InputKind::Data, None, content.clone())).expect("next"));
    }
    (before, started.elapsed().as_nanos() as f64 / events as f64)
}

/// Time to the first content directly with ureq.
fn ttft_direct(url: &str) -> Duration {
    let started = Instant::now();
    let mut response = ureq::post(url).header("content-type", "application/json").send(body()).expect("direct request");
    let mut reader = response.body_mut().as_reader();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let got = reader.read(&mut buf).expect("read");
        seen.extend_from_slice(&buf[..got]);
        if got == 0 || String::from_utf8_lossy(&seen).contains("\"content\"") {
            return started.elapsed();
        }
    }
}

/// Time to the first content through the policy's driven call.
fn ttft_policy(policy: &Policy, mock: &StreamMock) -> Duration {
    let config = format!(
        r#"{{"providers": {{"openai": {{"base_url": "{}", "credentials": [{{"id": "oa-1"}}]}}}}, "primary": {{"provider": "openai", "model": "gpt-4o"}}}}"#,
        mock.base_url("openai")
    );
    let secrets = failover_host::Secrets::from_map([("oa-1".to_string(), "sk-bench".to_string())].into());
    let creds = secrets.credentials();
    let mut instance = policy.instantiate(Host::new(HttpTransport::new()).with_secrets(secrets)).expect("instantiate");
    let engine = instance.create_engine(&config, None, &creds).expect("config");
    let request = h::Request { path: "/chat/completions".into(), method: "POST".into(), headers: vec![], body: body() };
    let started = Instant::now();
    let Begun::Answer(mut answer) = instance.stream(&engine, &request, &h::CallOptions { timeout_ms: None }).expect("stream") else {
        panic!("no answer from the mock");
    };
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let got = answer.read(&mut buf).expect("read");
        seen.extend_from_slice(&buf[..got]);
        if got == 0 || String::from_utf8_lossy(&seen).contains("\"content\"") {
            let ttft = started.elapsed();
            std::io::copy(&mut answer, &mut std::io::sink()).expect("drain");
            return ttft;
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let policy = Policy::load_default().expect("the built-in policy");
    let (nb, na) = native(events);
    let (wb, wa) = component(&policy, events);
    println!("| per event ({events} events, ~140 B each) | native | through the component | ratio |");
    println!("|---|---|---|---|");
    println!("| before commit (held back, judged) | {:.2} µs | {:.2} µs | {:.1}x |", nb / 1e3, wb / 1e3, wb / nb);
    println!("| after commit (judged, passed on) | {:.2} µs | {:.2} µs | {:.1}x |", na / 1e3, wa / 1e3, wa / na);

    let mock = StreamMock::start().expect("mock");
    mock.script(
        "openai",
        vec![Reply::openai_words(&["a ", "b ", "c ", "d ", "e ", "f ", "g ", "h ", "i ", "j"], Duration::from_millis(20))],
    );
    let url = format!("{}/chat/completions", mock.base_url("openai"));
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        direct.push(ttft_direct(&url));
        through.push(ttft_policy(&policy, &mock));
    }
    let (d, t) = (median(direct), median(through));
    println!();
    println!("| time to first token over loopback ({rounds} rounds in turns, first token 20 ms after the head) | median |");
    println!("|---|---|");
    println!("| directly (ureq) | {:.1} ms |", d.as_secs_f64() * 1e3);
    println!("| through `Instance::stream` (new instance and engine each round) | {:.1} ms |", t.as_secs_f64() * 1e3);
    println!("| added by the policy | {:.2} ms |", (t.as_secs_f64() - d.as_secs_f64()) * 1e3);
}
