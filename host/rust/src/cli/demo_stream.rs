//! `failover demo`, streamed part: real time over real HTTP against a provider that streams
//! (`failover_host::stream_mock`). The caller reads each answer as it arrives; what goes wrong
//! before the first token is fallen back from unseen, a cut mid-answer is resumed where the
//! provider allows it and otherwise ends with an error event the SDK raises.

use std::io::Read;
use std::time::{Duration, Instant};

use anyhow::Context;
use failover_host::stream_mock::{chunk, Piece, Reply, StreamMock};
use failover_host::types::{CallOptions, Event, Header, Request};
use failover_host::{Begun, Engine, Host, HttpTransport, Instance, Policy, Secrets};
use serde_json::{json, Value};

const STREAMING_CONFIG: &str = include_str!("../../../../examples/configs/demo-streaming.json");

pub fn run(policy: &Policy, surprises: &mut Vec<String>) -> anyhow::Result<()> {
    println!("\n== Streamed answers, in real time: judged before the caller sees them");
    println!("   config examples/configs/demo-streaming.json: openrouter/anthropic/claude-sonnet-4, fallback deepseek-chat");
    println!("   (deepseek has `resume`: it continues a partial answer from an assistant prefill)\n");
    let mock = StreamMock::start().context("starting the streaming mock")?;
    let config = STREAMING_CONFIG.replace("{port}", &mock.port.to_string());
    let secrets = Secrets::from_map(
        [("or-1", "sk-or-demo-0006"), ("ds-2", "sk-demo-deepseek-0007")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    );
    let started = Instant::now();
    let events = move |e: Event| println!("  {:>6} ms  event [{}] {}", started.elapsed().as_millis(), e.kind.as_str(), e.message);
    let host = Host::new(HttpTransport::new()).with_secrets(secrets.clone()).with_events(events);
    let mut instance = policy.instantiate(host)?;
    let engine = instance.create_engine(&config, None, &secrets.credentials()).context("the streaming demo config")?;
    let gap = Duration::from_millis(120);

    println!("-- 1. openrouter answers 200, then an error event before the first token");
    let error = r#"{"error":{"message":"Provider returned error","code":502,"metadata":{"provider_name":"Upstream"}}}"#;
    mock.script(
        "openrouter",
        vec![Reply::stream(vec![Piece::data(&chunk(r#"{"role":"assistant"}"#, "null")), Piece::wait_ms(100), Piece::data(error)])],
    );
    mock.script("deepseek", vec![Reply::openai_words(&["Paris ", "is ", "the ", "capital ", "of ", "France."], gap)]);
    let (text, ended_ok) = stream(&mut instance, &engine, started)?;
    if !ended_ok || text.contains("Provider returned error") || !text.contains("France.") {
        surprises.push(format!("streamed part 1: the error event should be fallen back from unseen, the caller read {text:?}"));
    }

    println!("\n-- 2. openrouter is down (503); deepseek's stream is cut after three words, then resumed");
    mock.script("openrouter", vec![Reply::status(503, r#"{"error":{"message":"no healthy upstream"}}"#)]);
    let cut = vec![
        Piece::data(&chunk(r#"{"role":"assistant"}"#, "null")),
        Piece::wait_ms(120),
        Piece::data(&chunk(r#"{"content":"The "}"#, "null")),
        Piece::wait_ms(120),
        Piece::data(&chunk(r#"{"content":"answer "}"#, "null")),
        Piece::wait_ms(120),
        Piece::data(&chunk(r#"{"content":"is "}"#, "null")),
    ];
    mock.script("deepseek", vec![Reply::stream(cut), Reply::openai_words(&["forty-", "two."], gap)]);
    let before = mock.received("deepseek").len();
    let (text, ended_ok) = stream(&mut instance, &engine, started)?;
    let continuation = mock.received("deepseek").get(before + 1).map(|r| String::from_utf8_lossy(&r.body).into_owned()).unwrap_or_default();
    println!("  deepseek's second request continued from: {}", prefill(&continuation));
    if !ended_ok || !text.contains("The ") || !text.contains("two.") || !continuation.contains("\"prefix\":true") {
        surprises.push(format!("streamed part 2: the cut answer should be resumed into one answer, the caller read {text:?}"));
    }

    println!("\n-- 3. openrouter is back, streams two words and stalls (no `resume` for openrouter)");
    let stall = vec![
        Piece::data(&chunk(r#"{"role":"assistant"}"#, "null")),
        Piece::data(&chunk(r#"{"content":"Once "}"#, "null")),
        Piece::wait_ms(120),
        Piece::data(&chunk(r#"{"content":"upon "}"#, "null")),
        Piece::wait_ms(3_000),
    ];
    mock.script("openrouter", vec![Reply::stream(stall)]);
    let (text, ended_ok) = stream(&mut instance, &engine, started)?;
    if ended_ok || !text.contains("\"error\"") || text.contains("[DONE]") {
        surprises.push(format!("streamed part 3: a stalled answer should end with an error event, the caller read {text:?}"));
    }
    Ok(())
}

fn request() -> Request {
    let body = json!({"model": "placeholder", "stream": true, "messages": [{"role": "user", "content": "hello"}]});
    Request {
        path: "/chat/completions".to_string(),
        method: "POST".to_string(),
        headers: vec![Header { name: "content-type".to_string(), value: "application/json".to_string() }],
        body: body.to_string().into_bytes(),
    }
}

/// One streamed call, printed as the caller reads it (ms since the part began, as the events);
/// says whether it ended complete.
fn stream(instance: &mut Instance, engine: &Engine, started: Instant) -> anyhow::Result<(String, bool)> {
    let begun = instance.stream(engine, &request(), &CallOptions { timeout_ms: Some(30_000) })?;
    let mut answer = match begun {
        Begun::Answer(a) => a,
        Begun::Failed { error, attempts } => {
            println!("  result: gave up before any answer after {} attempt(s): {}", attempts.len(), error.message);
            return Ok((String::new(), false));
        }
    };
    println!("  {:>6} ms  the caller gets the head: {}", started.elapsed().as_millis(), answer.head().status);
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = answer.read(&mut buf)?;
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
        for line in String::from_utf8_lossy(&buf[..n]).lines().filter_map(|l| l.strip_prefix("data: ")) {
            println!("  {:>6} ms  caller reads: {}", started.elapsed().as_millis(), shown(line));
        }
    }
    let ended = answer.ended().cloned().context("the answer did not end")?;
    let text = String::from_utf8_lossy(&all).into_owned();
    match &ended.error {
        None => println!(
            "  result: complete via {} after {} attempt(s)",
            ended.route.map(|r| r.label_with_credential()).unwrap_or_default(),
            ended.attempts.len()
        ),
        Some(e) => println!("  result: the caller's stream ended with an error event: {}", e.message),
    }
    Ok((text, ended.error.is_none()))
}

/// A chunk's text for the timeline: its content, `[DONE]`, or the error message.
fn shown(data: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(data) else { return data.to_string() };
    if let Some(m) = v.pointer("/error/message").and_then(Value::as_str) {
        return format!("error event: {m}");
    }
    match v.pointer("/choices/0/delta/content").and_then(Value::as_str) {
        Some(t) => format!("{t:?}"),
        None => match v.pointer("/choices/0/finish_reason").and_then(Value::as_str) {
            Some(f) => format!("(finish_reason {f})"),
            None => "(role)".to_string(),
        },
    }
}

/// The prefilled assistant message of a continuation request.
fn prefill(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("messages").and_then(Value::as_array).and_then(|m| m.last().cloned()))
        .map(|m| m.to_string())
        .unwrap_or_else(|| "(no continuation request)".to_string())
}
