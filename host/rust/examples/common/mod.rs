//! What the measuring examples share: a host with no network, a two-key chain with a fallback,
//! the rate-limit 429 that rotates between its keys, and a plain answer.

use failover_host::types::{CredentialInfo, Failure, FailureKind, Header, HttpResponse, Outbound, Route, TransportFailure, TransportKind};
use failover_host::Transport;

pub struct NoNetwork;

impl Transport for NoNetwork {
    fn send(&mut self, _: &Outbound, _: Option<&Header>) -> Result<HttpResponse, TransportFailure> {
        Err(TransportFailure { kind: TransportKind::Other, message: "no network".into() })
    }
}

/// Two keys on the primary, so a 429 rotates to the other key; one fallback.
pub const CONFIG: &str = r#"{
    "providers": {"openai": {"base_url": "https://o.example/v1", "credentials": [{"id": "oa-1"}, {"id": "oa-2"}]},
                  "anthropic": {"base_url": "https://a.example/v1", "credentials": [{"id": "an-1"}]}},
    "primary": {"provider": "openai", "model": "gpt-4o"},
    "fallback_providers": [{"provider": "anthropic", "model": "claude-sonnet"}], "seed": 3
}"#;
const RATE_429: &str = r#"{"error":{"message":"Rate limit reached for requests per min","type":"requests","code":"rate_limit_exceeded"}}"#;
/// A virtual hour: long enough for every cooldown a 429 sets to lapse before the next decision.
pub const HOUR_MS: u64 = 3_600_000;
pub const START_MS: u64 = 1_795_528_800_000;

pub fn credentials() -> Vec<CredentialInfo> {
    ["oa-1", "oa-2", "an-1"].iter().map(|id| CredentialInfo { id: id.to_string(), fingerprint: "f".into() }).collect()
}

pub fn primary() -> Route {
    Route { provider: "openai".into(), model: "gpt-4o".into(), credential: "oa-1".into(), position: 0 }
}

pub fn rate_limit_429() -> Failure {
    let response = HttpResponse {
        status: 429,
        headers: vec![Header { name: "content-type".into(), value: "application/json".into() }],
        body: RATE_429.as_bytes().to_vec(),
    };
    Failure { kind: FailureKind::Http, response: Some(response), transport: None }
}

/// A chat completion of about 1 KiB, the size of a short answer.
pub fn completion() -> HttpResponse {
    let content = "All good. ".repeat(100);
    let body = format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion","choices":[{{"index":0,"message":{{"role":"assistant","content":"{content}"}},"finish_reason":"stop"}}]}}"#
    );
    HttpResponse {
        status: 200,
        headers: vec![Header { name: "content-type".into(), value: "application/json".into() }],
        body: body.into_bytes(),
    }
}
