//! End to end over real HTTP on 127.0.0.1: the component decides, the ureq transport sends,
//! a server started here answers. Waiting uses the virtual clock; timeouts are real but small.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use failover_host::types::{Header, Outbound, Request, Route, TransportKind};
use failover_host::{Clock, Host, HttpTransport, Policy, Secrets, Transport, VirtualClock};
use serde_json::json;

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| Policy::load_default().expect("the built-in policy loads"))
}

/// What the test server answers for one provider (the first path segment).
#[derive(Clone)]
enum Reply {
    Status(u16, &'static str),
    Slow(Duration),
    Huge(usize),
}

struct Server {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    port: u16,
    /// (provider, authorization header) per request received.
    seen: Arc<Mutex<Vec<(String, String)>>>,
    /// The client's port per request received: which connection carried it.
    ports: Arc<Mutex<Vec<u16>>>,
}

impl Server {
    fn start(replies: BTreeMap<&'static str, Reply>) -> Server {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let port = server.server_addr().to_ip().expect("ip address").port();
        let (seen, ports) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
        let thread = {
            let (server, seen, ports) = (server.clone(), seen.clone(), ports.clone());
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let provider = request.url().split('/').nth(1).unwrap_or("").to_string();
                    let auth =
                        request.headers().iter().find(|h| h.field.equiv("Authorization")).map(|h| h.value.to_string()).unwrap_or_default();
                    seen.lock().unwrap().push((provider.clone(), auth));
                    ports.lock().unwrap().push(request.remote_addr().map_or(0, |a| a.port()));
                    let reply = replies.get(provider.as_str()).cloned().unwrap_or(Reply::Status(200, OK));
                    // Answer on another thread so a slow reply never holds up the next request.
                    std::thread::spawn(move || {
                        let response = match reply {
                            Reply::Status(status, body) => tiny_http::Response::from_string(body).with_status_code(status),
                            Reply::Slow(delay) => {
                                std::thread::sleep(delay);
                                tiny_http::Response::from_string(OK)
                            }
                            Reply::Huge(len) => tiny_http::Response::from_string("x".repeat(len)),
                        };
                        let _ = request.respond(response);
                    });
                }
            })
        };
        Server { server, thread: Some(thread), port, seen, ports }
    }

    fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }

    fn ports(&self) -> Vec<u16> {
        self.ports.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const OK: &str =
    r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}"#;
const QUOTA: &str = r#"{"error":{"message":"usage allocated quota exceeded.","type":"insufficient_quota","code":"quota_exceeded"}}"#;
const AUTH: &str = r#"{"error":{"message":"Authentication Fails, Your api key: ****abcd is invalid","type":"authentication_error","param":null,"code":"invalid_request_error"}}"#;
const SERVER_ERROR: &str = r#"{"error":{"message":"Internal server error","type":"server_error"}}"#;

/// A primary `provider` (its family picks the rules; one key, `key-1`) at `port`, optionally a
/// fallback on `fallback_port`.
fn config(provider: &str, port: u16, fallback_port: Option<u16>) -> String {
    let mut providers = json!({});
    providers[provider] = json!({"base_url": format!("http://127.0.0.1:{port}/{provider}/v1"), "credentials": [{"id": "key-1"}],
        "timeouts": {"connect_ms": 1000, "read_ms": 300}});
    let mut config = json!({"primary": {"provider": provider, "model": "m-large"}, "seed": 1});
    if let Some(fb) = fallback_port {
        providers["tencent-token-plan"] =
            json!({"base_url": format!("http://127.0.0.1:{fb}/tencent-token-plan/v1"), "credentials": [{"id": "ten-1"}]});
        config["fallback_providers"] = json!([{"provider": "tencent-token-plan", "model": "kimi2.5"}]);
    }
    config["providers"] = providers;
    config.to_string()
}

struct Outcome {
    ok: bool,
    /// `provider outcome` per attempt.
    attempts: Vec<String>,
    reasons: Vec<Option<String>>,
    final_reason: Option<String>,
    message: String,
}

fn call(config: &str) -> Outcome {
    let secrets: BTreeMap<String, String> =
        [("key-1", "sk-e2e-primary"), ("ten-1", "sk-e2e-tencent")].map(|(a, b)| (a.to_string(), b.to_string())).into();
    let secrets = Secrets::from_map(secrets);
    let credentials = secrets.credentials();
    let host =
        Host::new(HttpTransport::new()).with_secrets(secrets).with_clock(Clock::Virtual(VirtualClock::new(1_795_528_800_000))).with_seed(1);
    let mut instance = policy().instantiate(host).expect("instantiate");
    let engine = instance.create_engine(config, None, &credentials).expect("config accepted");
    let request = Request {
        path: "/chat/completions".into(),
        method: "POST".into(),
        headers: vec![Header { name: "content-type".into(), value: "application/json".into() }],
        body: br#"{"model":"placeholder","messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
    };
    let result = instance.call(&engine, &request).expect("the guest does not trap");
    let (attempts, ok, final_reason, message) = match result {
        Ok(s) => (s.attempts, true, None, String::new()),
        Err(f) => (f.attempts, false, Some(f.error.reason.as_str().to_string()), f.error.message),
    };
    Outcome {
        ok,
        attempts: attempts.iter().map(|a| format!("{} {}", a.route.provider, a.outcome)).collect(),
        reasons: attempts.iter().map(|a| a.classified.as_ref().map(|c| c.reason.as_str().to_string())).collect(),
        final_reason,
        message,
    }
}

#[test]
fn quota_on_the_only_key_falls_back() {
    let server = Server::start([("alibaba-coding-plan", Reply::Status(429, QUOTA))].into());
    let out = call(&config("alibaba-coding-plan", server.port, Some(server.port)));
    assert!(out.ok, "{}", out.message);
    assert_eq!(out.attempts, ["alibaba-coding-plan 429", "tencent-token-plan 200"]);
    assert_eq!(out.reasons[0].as_deref(), Some("quota-exhausted"));
    // The host attached each route's own secret; the guest never had it.
    let seen = server.seen();
    assert_eq!(seen[0], ("alibaba-coding-plan".to_string(), "Bearer sk-e2e-primary".to_string()));
    assert_eq!(seen[1], ("tencent-token-plan".to_string(), "Bearer sk-e2e-tencent".to_string()));
}

#[test]
fn a_rejected_lone_key_gets_one_fresh_retry_then_gives_up() {
    let server = Server::start([("deepseek", Reply::Status(401, AUTH))].into());
    let out = call(&config("deepseek", server.port, None));
    assert!(!out.ok);
    assert_eq!(out.attempts, ["deepseek 401", "deepseek 401"]);
    assert_eq!(out.final_reason.as_deref(), Some("auth-permanent"));
    assert!(out.message.contains("key-1") && out.message.contains("key appears invalid or expired"), "{}", out.message);
    let ports = server.ports();
    assert_ne!(ports[0], ports[1], "the retry after a 401 opens a new connection");
}

#[test]
fn server_errors_are_retried_with_backoff_then_fall_back_or_give_up() {
    let server = Server::start([("deepseek", Reply::Status(500, SERVER_ERROR))].into());
    // route_retries defaults to 2: three attempts on the route.
    let out = call(&config("deepseek", server.port, Some(server.port)));
    assert!(out.ok, "{}", out.message);
    assert_eq!(out.attempts, ["deepseek 500", "deepseek 500", "deepseek 500", "tencent-token-plan 200"]);
    let out = call(&config("deepseek", server.port, None));
    assert!(!out.ok);
    assert_eq!(out.attempts, ["deepseek 500", "deepseek 500", "deepseek 500"]);
    assert_eq!(out.final_reason.as_deref(), Some("server-error"));
    let ports = server.ports();
    assert!(ports[4..].iter().all(|p| *p == ports[4]), "retries after a 500 reuse the pooled connection: ports {ports:?}");
}

#[test]
fn a_response_slower_than_the_read_timeout_is_a_timeout() {
    let server = Server::start([("deepseek", Reply::Slow(Duration::from_millis(1500)))].into());
    let out = call(&config("deepseek", server.port, Some(server.port)));
    assert_eq!(out.attempts.first().map(String::as_str), Some("deepseek timeout"), "{:?}", out.attempts);
    assert_eq!(out.reasons[0].as_deref(), Some("timeout"));
    assert!(out.ok, "falls back after the timeouts: {}", out.message);
}

#[test]
fn a_refused_connection_is_a_connection_failure() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let out = call(&config("deepseek", port, None));
    assert!(!out.ok);
    assert_eq!(out.attempts.first().map(String::as_str), Some("deepseek connection-refused"), "{:?}", out.attempts);
    assert_eq!(out.reasons[0].as_deref(), Some("connection"));
    assert_eq!(out.final_reason.as_deref(), Some("connection"));
}

#[test]
fn a_success_body_past_the_limit_is_refused_clearly() {
    let server = Server::start([("big", Reply::Huge(failover_host::SUCCESS_BODY_LIMIT as usize + 1))].into());
    let route = Route { provider: "big".into(), model: "m".into(), credential: "k".into(), position: 0 };
    let out = Outbound {
        route,
        url: format!("http://127.0.0.1:{}/big/v1/chat/completions", server.port),
        method: "POST".into(),
        headers: Vec::new(),
        body: b"{}".to_vec(),
        secret_header: "Authorization".into(),
        secret_prefix: "Bearer ".into(),
        connect_timeout_ms: 1000,
        read_timeout_ms: 10_000,
        fresh_connection: true,
    };
    let failure = HttpTransport::new().send(&out, None).expect_err("too large");
    assert_eq!(failure.kind, TransportKind::Other);
    assert!(failure.message.contains("16 MiB"), "{}", failure.message);
}
