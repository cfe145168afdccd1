//! A provider that echoes the key it was sent (in its error body, in a header, in a stream's
//! error event, in an answer), over real HTTP on 127.0.0.1 through `Instance::call`: the key
//! reaches no error, event, snapshot or stored state (file and Redis), and the messages still
//! say what went wrong. The keys have no documented prefix, so the guest's own masking cannot
//! hide them: only the host's scrubbing does.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use failover_host::store::{FileStore, Fleet, RedisStore, Store};
use failover_host::types::{Failure, Header, HttpResponse, Request};
use failover_host::{Clock, EventLog, Host, HttpTransport, Policy, Secrets, VirtualClock};
use serde_json::json;

const OPENAI_KEY: &str = "proxy-7Hq2Wm9x-Lr4tZc8v-0001";
const ANTHROPIC_KEY: &str = "relay-Kp3Vd8Ns-Qy6Gh1Bw-0002";

/// Echoes the key it gets (from `Authorization` or `x-api-key`): a 401 for `/openai`, a 200
/// event stream with an error event for `/anthropic`, an answer for `/ok`; and the whole header
/// value in `x-echo-key`.
struct Echo {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    port: u16,
}

impl Echo {
    fn start() -> Echo {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let port = server.server_addr().to_ip().expect("ip address").port();
        let thread = {
            let server = server.clone();
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let header = request
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("Authorization") || h.field.equiv("x-api-key"))
                        .map(|h| h.value.to_string())
                        .unwrap_or_default();
                    // The bare key: the guest cannot tell it from text.
                    let sent = header.trim_start_matches("Bearer ").to_string();
                    let (status, kind, body) = match request.url().split('/').nth(1).unwrap_or("") {
                        "openai" => (
                            401,
                            "application/json",
                            json!({"error": {"message": format!("Incorrect API key provided: {sent}."),
                                "type": "invalid_request_error", "code": "invalid_api_key"}})
                            .to_string(),
                        ),
                        "anthropic" => (
                            200,
                            "text/event-stream",
                            format!(
                                "event: message_start\ndata: {{\"type\":\"message_start\"}}\n\nevent: error\ndata: {}\n\n",
                                json!({"type": "error", "error": {"type": "overloaded_error",
                                    "message": format!("Overloaded; retry later with {sent}")}})
                            ),
                        ),
                        _ => (
                            200,
                            "application/json",
                            json!({"choices": [{"message": {"content": format!("you sent {sent}")}}]}).to_string(),
                        ),
                    };
                    let header_of = |name: &str, value: &str| tiny_http::Header::from_bytes(name, value).expect("header");
                    let response = tiny_http::Response::from_string(body)
                        .with_status_code(status)
                        .with_header(header_of("content-type", kind))
                        .with_header(header_of("x-echo-key", &header));
                    let _ = request.respond(response);
                }
            })
        };
        Echo { server, thread: Some(thread), port }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A throwaway redis-server on a free port, killed when dropped.
struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    fn start() -> Result<RedisServer> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start redis-server: install it (scripts/setup.sh does, from Debian's redis-server)")?;
        let server = RedisServer { port, child };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(5) {
                bail!("redis-server did not listen on 127.0.0.1:{port} within 5 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(server)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(port: u16, primary: &str, fallback: Option<&str>) -> String {
    let provider = |name: &str, id: &str| json!({"base_url": format!("http://127.0.0.1:{port}/{name}/v1"), "credentials": [{"id": id}]});
    let mut config = json!({
        "providers": {"openai": provider("openai", "oa-1"), "anthropic": provider("anthropic", "an-1"), "ok": provider("ok", "ok-1")},
        "primary": {"provider": primary, "model": "m"},
        "seed": 1,
    });
    if let Some(fallback) = fallback {
        config["fallback_providers"] = json!([{"provider": fallback, "model": "m"}]);
    }
    config.to_string()
}

fn secrets() -> Secrets {
    Secrets::from_map(BTreeMap::from(
        [("oa-1", OPENAI_KEY), ("an-1", ANTHROPIC_KEY), ("ok-1", OPENAI_KEY)].map(|(id, key)| (id.to_string(), key.to_string())),
    ))
}

fn request() -> Request {
    Request {
        path: "/chat/completions".into(),
        method: "POST".into(),
        headers: vec![Header { name: "content-type".into(), value: "application/json".into() }],
        body: br#"{"model":"x","messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
    }
}

fn assert_no_key(what: &str, text: &str) {
    for key in [OPENAI_KEY, ANTHROPIC_KEY] {
        assert!(!text.contains(key), "{what} holds the key {key}: {text}");
    }
}

#[test]
fn an_echoed_key_reaches_no_error_event_snapshot_or_store() -> Result<()> {
    let echo = Echo::start();
    let redis = RedisServer::start()?;
    let events = EventLog::new();
    let secrets = secrets();
    let credentials = secrets.credentials();
    let host = Host::new(HttpTransport::new())
        .with_secrets(secrets)
        .with_events(events.clone())
        .with_clock(Clock::Virtual(VirtualClock::new(1_795_528_800_000)))
        .with_seed(1);
    let mut inst = Policy::load_default()?.instantiate(host)?;
    let engine = inst.create_engine(&config(echo.port, "openai", Some("anthropic")), None, &credentials)?;

    let Err(failed) = inst.call(&engine, &request())? else { bail!("both providers fail") };
    let outcomes: Vec<String> = failed.attempts.iter().map(|a| format!("{} {}", a.route.provider, a.outcome)).collect();
    assert_eq!(outcomes[..2], ["openai 401", "anthropic 200"], "{outcomes:?}");

    assert_no_key("the final error", &failed.error.message);
    let mut said = vec![failed.error.message.clone()];
    for c in failed.attempts.iter().filter_map(|a| a.classified.as_ref()) {
        assert_no_key("an attempt", &c.message);
        said.push(c.message.clone());
    }
    for e in &events.take() {
        assert_no_key("an event", &e.message);
        said.push(e.message.clone());
    }
    let snapshot = inst.snapshot(&engine)?;
    assert_no_key("the snapshot", &snapshot);

    let dir = std::env::temp_dir().join(format!("echoed-key-{}", std::process::id()));
    let file = FileStore::new(dir.join("state.json"));
    Fleet::new(file.clone()).save(&mut inst, &engine)?;
    assert_no_key("the state file's log", &std::fs::read_to_string(file.log_path())?);
    let _ = std::fs::remove_dir_all(&dir);
    let store = RedisStore::new(&format!("redis://127.0.0.1:{}/", redis.port), "echoed-key")?;
    Fleet::new(store.clone()).save(&mut inst, &engine)?;
    let stored = Store::from(store).load(&mut inst)?.state.context("Redis holds the state")?;
    assert_no_key("the Redis state", &stored);

    // Still says what went wrong, and which key by its tail.
    let said = said.join("\n");
    for what in ["401 Incorrect API key provided: ...0001", "stream error: Overloaded; retry later with ...0002"] {
        assert!(said.contains(what), "no {what:?} in:\n{said}");
    }
    Ok(())
}

#[test]
fn an_answer_that_echoes_the_key_reaches_the_caller_without_it() -> Result<()> {
    let echo = Echo::start();
    let secrets = secrets();
    let credentials = secrets.credentials();
    let mut inst = Policy::load_default()?.instantiate(Host::new(HttpTransport::new()).with_secrets(secrets))?;
    let engine = inst.create_engine(&config(echo.port, "ok", None), None, &credentials)?;
    let Ok(answer) = inst.call(&engine, &request())? else { bail!("the answer is a success") };
    let body = String::from_utf8_lossy(&answer.response.body);
    assert_no_key("the answer", &body);
    assert!(body.contains("you sent ...0001"), "{body}");
    for h in &answer.response.headers {
        assert_no_key("a header", &h.value);
    }
    Ok(())
}

#[test]
fn a_failure_a_host_driven_loop_hands_in_is_scrubbed_with_the_routes_key() -> Result<()> {
    let events = EventLog::new();
    let secrets = secrets();
    let credentials = secrets.credentials();
    let host = Host::new(HttpTransport::new()).with_secrets(secrets).with_events(events.clone());
    let mut inst = Policy::load_default()?.instantiate(host)?;
    let engine = inst.create_engine(&config(1, "openai", Some("anthropic")), None, &credentials)?;
    let route = inst.select(&engine)?.map_err(|e| anyhow::anyhow!("no route: {}", e.message))?;
    let body = format!(r#"{{"error":{{"message":"Incorrect API key provided: {OPENAI_KEY}.","code":"invalid_api_key"}}}}"#);
    let failure = Failure::http(HttpResponse { status: 401, headers: vec![], body: body.into_bytes() });
    let action = inst.on_failure(&engine, &route, &failure, None)?;
    assert_no_key("the action", &format!("{action:?}"));
    assert_no_key("the snapshot", &inst.snapshot(&engine)?);
    for e in &events.take() {
        assert_no_key("an event", &e.message);
    }
    assert!(format!("{action:?}").contains("Incorrect API key provided: ...0001"), "{action:?}");
    Ok(())
}
