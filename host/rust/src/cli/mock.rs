//! A local mock of OpenAI-compatible providers for the demo: `POST /<provider>/v1/chat/completions`
//! on 127.0.0.1, answering as scripted per provider and recording who was asked with which key.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use anyhow::{anyhow, Context};
use serde_json::{json, Value};
use tiny_http::{Header, Response, Server};

/// How a provider answers every request until told otherwise.
#[derive(Debug, Clone)]
pub enum Answer {
    Ok,
    Fail { status: u16, body: String },
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Received {
    pub provider: String,
    /// The last four characters of the key it carried, e.g. `****abcd`.
    pub key_tail: String,
}

#[derive(Default)]
struct State {
    answers: BTreeMap<String, Answer>,
    received: Vec<Received>,
}

pub struct MockProvider {
    server: Arc<Server>,
    state: Arc<Mutex<State>>,
    thread: Option<JoinHandle<()>>,
    pub port: u16,
}

impl MockProvider {
    /// Listens on a free port of 127.0.0.1.
    pub fn start() -> anyhow::Result<MockProvider> {
        let server = Server::http("127.0.0.1:0").map_err(|e| anyhow!("cannot start the mock provider: {e}"))?;
        let port = server.server_addr().to_ip().map(|a| a.port()).context("the mock provider has no IP address")?;
        let server = Arc::new(server);
        let state = Arc::new(Mutex::new(State::default()));
        let thread = {
            let (server, state) = (server.clone(), state.clone());
            std::thread::spawn(move || serve(&server, &state))
        };
        Ok(MockProvider { server, state, thread: Some(thread), port })
    }

    pub fn set(&self, provider: &str, answer: Answer) {
        self.lock().answers.insert(provider.to_string(), answer);
    }

    /// Requests received so far for `provider`.
    pub fn received(&self, provider: &str) -> Vec<Received> {
        self.lock().received.iter().filter(|r| r.provider == provider).cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(server: &Server, state: &Mutex<State>) {
    for mut request in server.incoming_requests() {
        let provider = request.url().trim_start_matches('/').split('/').next().unwrap_or("").to_string();
        let key =
            request.headers().iter().find(|h| h.field.equiv("Authorization")).map(|h| h.value.as_str().to_string()).unwrap_or_default();
        let key_tail = format!("****{}", key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect::<String>());
        let mut body = String::new();
        let _ = request.as_reader().read_to_string(&mut body);
        let model = serde_json::from_str::<Value>(&body).ok().and_then(|b| b["model"].as_str().map(str::to_string));
        let answer = {
            let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
            s.received.push(Received { provider: provider.clone(), key_tail });
            s.answers.get(&provider).cloned()
        };
        let (status, text) = match answer {
            Some(Answer::Ok) => (200, completion(model.as_deref().unwrap_or("unknown"))),
            Some(Answer::Fail { status, body }) => (status, body),
            None => (404, json!({"error": {"message": format!("no provider `{provider}` here")}}).to_string()),
        };
        let mut response = Response::from_string(text).with_status_code(status);
        if let Ok(h) = Header::from_bytes("Content-Type", "application/json") {
            response = response.with_header(h);
        }
        let _ = request.respond(response);
    }
}

fn completion(model: &str) -> String {
    json!({
        "id": "chatcmpl-demo",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the mock."}, "finish_reason": "stop"}]
    })
    .to_string()
}
