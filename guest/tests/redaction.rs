//! Keys a provider or proxy echoes back (ones the host did not attach, so the host could not
//! scrub them) are masked in everything the policy keeps or emits: events, the final error and
//! the snapshot. The messages still say what went wrong.

use failover_policy::types::*;
use failover_policy::{Engine, Env};

/// Keys nobody attached: a proxy's own keys, and one in a base URL's query string.
const PROXY_KEY: &str = "sk-proj-Q1w2E3r4T5y6U7i8O9p0AsDfGhJk";
const ANTHROPIC_KEY: &str = "sk-ant-api03-Zx9Cv8Bn7Mm6Ll5Kk4Jj3Hh2Gg1Ff0";
const QUERY_KEY: &str = "AIzaSyD4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ012";

const CONFIG: &str = r#"{
  "providers": {
    "openai": {"base_url": "https://proxy.example/v1", "credentials": [{"id": "oa-1"}]},
    "anthropic": {"base_url": "https://a.example/v1", "credentials": [{"id": "an-1"}]},
    "gemini": {"base_url": "https://g.example/v1?key=AIzaSyD4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ012", "credentials": [{"id": "ge-1"}]}
  },
  "primary": {"provider": "openai", "model": "gpt-4o"},
  "fallback_providers": [{"provider": "anthropic", "model": "claude"}, {"provider": "gemini", "model": "gemini-2.5"}],
  "retry": {"max_wait_ms": 600000},
  "seed": 3
}"#;

/// Each provider fails its own way, echoing a key.
struct Echoing {
    now: u64,
    events: Vec<Event>,
}

impl Env for Echoing {
    fn now_ms(&mut self) -> u64 {
        self.now
    }
    fn sleep_ms(&mut self, ms: u64) {
        self.now += ms;
    }
    fn send(&mut self, request: &Outbound) -> Result<HttpResponse, TransportFailure> {
        let (status, body) = match request.route.provider.as_str() {
            "openai" => (
                401,
                format!(r#"{{"error":{{"message":"Incorrect API key provided: {PROXY_KEY}.","type":"invalid_request_error","code":"invalid_api_key"}}}}"#),
            ),
            "anthropic" => (
                200,
                format!("event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"overloaded_error\",\"message\":\"Overloaded (x-api-key {ANTHROPIC_KEY})\"}}}}\n\n"),
            ),
            _ => {
                return Err(TransportFailure {
                    kind: TransportKind::ConnectionRefused,
                    message: format!("connect to {} refused", request.url),
                })
            }
        };
        Ok(HttpResponse { status, headers: vec![], body: body.into_bytes() })
    }
    fn emit(&mut self, event: Event) {
        self.events.push(event);
    }
    fn seed(&mut self) -> u64 {
        1
    }
}

#[test]
fn echoed_keys_reach_no_event_error_or_snapshot() {
    let creds: Vec<CredentialInfo> =
        ["oa-1", "an-1", "ge-1"].iter().map(|id| CredentialInfo { id: id.to_string(), fingerprint: format!("fp-{id}") }).collect();
    let mut env = Echoing { now: 1_795_528_800_000, events: vec![] };
    let mut engine = Engine::create(CONFIG, None, &creds, &mut env).expect("config");
    let request = Request { path: "/chat/completions".into(), method: "POST".into(), headers: vec![], body: br#"{"model":"x"}"#.to_vec() };
    let failed = engine.call(&request, &mut env).expect_err("every provider fails");
    let snapshot = engine.snapshot(&mut env).to_json();

    let mut texts: Vec<(String, String)> = env.events.iter().map(|e| (format!("event {}", e.rule), e.message.clone())).collect();
    texts.push(("final error".into(), failed.error.message.clone()));
    for c in failed.attempts.iter().filter_map(|a| a.classified.as_ref()) {
        texts.push((format!("attempt {}", c.rule), c.message.clone()));
    }
    texts.push(("snapshot".into(), snapshot.clone()));
    for (what, text) in &texts {
        for key in [PROXY_KEY, ANTHROPIC_KEY, QUERY_KEY] {
            // All but the last 4 characters, which the mask keeps to recognise the key by.
            assert!(!text.contains(&key[..key.len() - 4]), "{what} holds a key: {text}");
        }
    }
    // What went wrong is still said, with the key recognisable by its kind and tail.
    let all: String = texts.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join("\n");
    for said in ["Incorrect API key provided: sk-proj-...GhJk", "Overloaded (x-api-key sk-ant-...", "key=AIza..."] {
        assert!(all.contains(said), "no {said:?} in:\n{all}");
    }
}

#[test]
fn a_key_in_a_state_saved_before_masking_is_masked_on_load() {
    let old = format!(
        r#"{{"schema": 2, "credentials": {{"oa-1": {{"last_error": "401 Incorrect API key provided: {PROXY_KEY}.",
            "last_reason": "auth", "last_error_ms": 1}}}}}}"#
    );
    let creds = vec![CredentialInfo { id: "oa-1".into(), fingerprint: "fp".into() }];
    let mut env = Echoing { now: 1_795_528_800_000, events: vec![] };
    let engine = Engine::create(CONFIG, Some(&old), &creds, &mut env).expect("the old state loads");
    let snapshot = engine.snapshot(&mut env).to_json();
    assert!(!snapshot.contains(&PROXY_KEY[..PROXY_KEY.len() - 4]), "{snapshot}");
    assert!(snapshot.contains("401 Incorrect API key provided: sk-proj-...GhJk."), "{snapshot}");
}
