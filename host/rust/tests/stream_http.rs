//! Driven calls over real HTTP on 127.0.0.1 against a provider that streams in real time: the
//! caller reads the answer as it comes, and what goes wrong before the first content (an error
//! event, a silent provider, a stall) is fallen back from unseen; what breaks after it ends
//! with an error event, never a clean end.

use std::io::Read;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use failover_host::stream_mock::{chunk, Piece, Reply, StreamMock};
use failover_host::types::{CallOptions, Request};
use failover_host::{Begun, Host, HttpTransport, Instance, Policy, Secrets};
use serde_json::json;

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| Policy::load_default().expect("the built-in policy loads"))
}

fn config(mock: &StreamMock, primary_timeouts: serde_json::Value) -> String {
    json!({
        "providers": {
            "primary": {"base_url": mock.base_url("primary"), "credentials": [{"id": "p-1"}], "timeouts": primary_timeouts},
            "backup": {"base_url": mock.base_url("backup"), "credentials": [{"id": "b-1"}]}
        },
        "primary": {"provider": "primary", "model": "big"},
        "fallback_providers": [{"provider": "backup", "model": "other"}],
        "retry": {"route_retries": 0},
        "seed": 1
    })
    .to_string()
}

fn instance(config: &str) -> (Instance, failover_host::Engine) {
    let pairs = [("p-1", "sk-primary-key"), ("b-1", "sk-backup-key")];
    let secrets = Secrets::from_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    let credentials = secrets.credentials();
    let mut instance = policy().instantiate(Host::new(HttpTransport::new()).with_secrets(secrets)).expect("instantiate");
    let engine = instance.create_engine(config, None, &credentials).expect("config");
    (instance, engine)
}

fn request() -> Request {
    let body = json!({"model": "x", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    Request { path: "/chat/completions".into(), method: "POST".into(), headers: vec![], body: body.to_string().into_bytes() }
}

/// Reads the answer, noting when the first content arrived; returns (text, first content, ended error).
fn read_all(begun: Begun<'_>, started: Instant) -> (String, Option<Duration>, Option<String>) {
    let Begun::Answer(mut answer) = begun else { panic!("the call failed before any answer") };
    let mut text = Vec::new();
    let mut first = None;
    let mut buf = [0u8; 4096];
    loop {
        let n = answer.read(&mut buf).expect("read the answer");
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
        if first.is_none() && String::from_utf8_lossy(&text).contains("\"content\"") {
            first = Some(started.elapsed());
        }
    }
    let error = answer.ended().and_then(|e| e.error.as_ref()).map(|e| e.message.clone());
    (String::from_utf8_lossy(&text).into_owned(), first, error)
}

#[test]
fn the_first_token_reaches_the_caller_while_the_answer_still_streams() {
    let mock = StreamMock::start().unwrap();
    mock.script("primary", vec![Reply::openai_words(&["one ", "two ", "three ", "four ", "five"], Duration::from_millis(200))]);
    let (mut instance, engine) = instance(&config(&mock, json!({})));
    let started = Instant::now();
    let begun = instance.stream(&engine, &request(), &CallOptions { timeout_ms: None }).unwrap();
    let (text, first, error) = read_all(begun, started);
    let total = started.elapsed();
    assert_eq!(error, None);
    assert!(text.contains("five") && text.contains("[DONE]"), "{text}");
    let first = first.expect("content arrived");
    assert!(first + Duration::from_millis(600) < total, "first content at {first:?} of {total:?}: the answer was held back");
}

#[test]
fn an_error_event_before_the_first_token_falls_back_unseen() {
    let mock = StreamMock::start().unwrap();
    let error = r#"{"error":{"message":"Provider returned error","code":502}}"#;
    mock.script("primary", vec![Reply::stream(vec![Piece::data(&chunk(r#"{"role":"assistant"}"#, "null")), Piece::data(error)])]);
    mock.script("backup", vec![Reply::openai_words(&["from ", "backup"], Duration::from_millis(10))]);
    let (mut instance, engine) = instance(&config(&mock, json!({})));
    let (text, _, error) = read_all(instance.stream(&engine, &request(), &CallOptions { timeout_ms: None }).unwrap(), Instant::now());
    assert_eq!(error, None);
    assert!(text.contains("from ") && text.contains("backup") && !text.contains("Provider returned error"), "{text}");
    assert_eq!((mock.received("primary").len(), mock.received("backup").len()), (1, 1));
}

#[test]
fn a_silent_primary_costs_one_head_limit_then_the_fallback_answers() {
    let mock = StreamMock::start().unwrap();
    mock.script("primary", vec![Reply::silent()]);
    mock.script("backup", vec![Reply::openai_words(&["ok"], Duration::from_millis(10))]);
    let (mut instance, engine) = instance(&config(&mock, json!({"headers_ms": 400})));
    let started = Instant::now();
    let (text, _, error) = read_all(instance.stream(&engine, &request(), &CallOptions { timeout_ms: None }).unwrap(), started);
    assert_eq!(error, None);
    assert!(text.contains("ok"));
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!((mock.received("primary").len(), mock.received("backup").len()), (1, 1));
}

#[test]
fn a_stall_after_the_first_token_ends_with_an_error_event_not_a_clean_end() {
    let mock = StreamMock::start().unwrap();
    let words = vec![
        Piece::data(&chunk(r#"{"role":"assistant"}"#, "null")),
        Piece::data(&chunk(r#"{"content":"Hello "}"#, "null")),
        Piece::wait_ms(5_000),
        Piece::data(&chunk(r#"{"content":"late"}"#, "null")),
    ];
    mock.script("primary", vec![Reply::stream(words)]);
    let (mut instance, engine) = instance(&config(&mock, json!({"idle_ms": 300})));
    let started = Instant::now();
    let (text, _, error) = read_all(instance.stream(&engine, &request(), &CallOptions { timeout_ms: None }).unwrap(), started);
    assert!(started.elapsed() < Duration::from_secs(3), "the stall was waited out");
    assert!(text.contains("Hello ") && !text.contains("late") && !text.contains("[DONE]"), "{text}");
    assert!(text.contains("data: {\"error\""), "no error event: {text}");
    assert!(error.expect("a final error").contains("broke off"));
}

#[test]
fn the_caller_s_timeout_bounds_the_whole_call() {
    let mock = StreamMock::start().unwrap();
    mock.script("primary", vec![Reply::silent()]);
    mock.script("backup", vec![Reply::silent()]);
    let (mut instance, engine) = instance(&config(&mock, json!({"headers_ms": 5000})));
    let started = Instant::now();
    let begun = instance.stream(&engine, &request(), &CallOptions { timeout_ms: Some(700) }).unwrap();
    let elapsed = started.elapsed();
    let Begun::Failed { error, attempts } = begun else { panic!("an answer from silent providers") };
    assert!(elapsed < Duration::from_millis(2_500), "the call ran {elapsed:?} past a 700 ms timeout (each head limit is 5 s)");
    assert!(error.message.contains("Tried: primary/big#p-1"), "{}", error.message);
    assert!(!attempts.is_empty());
}

#[test]
fn a_key_the_provider_echoes_into_the_stream_never_reaches_the_caller() {
    let mock = StreamMock::start().unwrap();
    let split = |text: &str, at: usize| {
        vec![Piece::Bytes(text.as_bytes()[..at].to_vec()), Piece::wait_ms(20), Piece::Bytes(text.as_bytes()[at..].to_vec())]
    };
    let echo = format!("data: {}\n\n", chunk(r#"{"content":"your key is sk-primary-key, keep it"}"#, "null"));
    let at = echo.find("primary").unwrap();
    let mut pieces = vec![Piece::data(&chunk(r#"{"role":"assistant"}"#, "null"))];
    pieces.extend(split(&echo, at));
    pieces.push(Piece::data(&chunk("{}", "\"stop\"")));
    pieces.push(Piece::data("[DONE]"));
    mock.script("primary", vec![Reply::stream(pieces)]);
    let (mut instance, engine) = instance(&config(&mock, json!({})));
    let (text, _, error) = read_all(instance.stream(&engine, &request(), &CallOptions { timeout_ms: None }).unwrap(), Instant::now());
    assert_eq!(error, None);
    assert!(!text.contains("sk-primary-key") && !text.contains("primary-key"), "{text}");
    assert!(text.contains("your key is ..., keep it") && text.contains("[DONE]"), "{text}");
}
