//! The scenario file format of `tests/scenarios/README.md`, parsed strictly so a typo in a
//! scenario is an error rather than an expectation silently not checked.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::types::CredentialInfo;

/// 2026-11-24T14:00:00Z, the virtual start the scenario files are written against. (The
/// README's `1795000000000` is 2026-11-18T11:06:40Z, matching neither its own date nor them.)
const DEFAULT_START_MS: u64 = 1_795_528_800_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScenarioFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_start_ms")]
    pub start_ms: u64,
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub config: Value,
    #[serde(default)]
    pub credentials: Option<Vec<Credential>>,
    #[serde(default)]
    pub state: Option<Value>,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderScript>,
    pub steps: Vec<StepFile>,
}

fn default_start_ms() -> u64 {
    DEFAULT_START_MS
}

fn default_seed() -> u64 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Credential {
    pub id: String,
    pub fingerprint: String,
}

impl From<Credential> for CredentialInfo {
    fn from(c: Credential) -> Self {
        CredentialInfo { id: c.id, fingerprint: c.fingerprint }
    }
}

/// One scripted provider (`P`) or provider credential (`P#C`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderScript {
    #[serde(default)]
    pub script: Vec<Response>,
    #[serde(default)]
    pub default: Option<Response>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Response {
    Http(HttpAnswer),
    Transport(TransportAnswer),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpAnswer {
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub delay_ms: u64,
    /// A body that comes in pieces, each after its own delay (a scripted stream); when the
    /// list ends before the format's end signal, the stream was cut.
    #[serde(default)]
    pub stream: Option<Vec<Piece>>,
    /// The provider accepts the request and never answers it.
    #[serde(default)]
    pub silent: bool,
}

/// One piece of a scripted stream: an event (`data`, with `event`), raw bytes, a stall, a reset.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Piece {
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub data: Option<Value>,
    #[serde(default)]
    pub raw: Option<String>,
    #[serde(default)]
    pub delay_ms: u64,
    /// Nothing more comes, and the connection stays open.
    #[serde(default)]
    pub stall: bool,
    /// The connection is reset here.
    #[serde(default)]
    pub reset: bool,
    /// The piece comes this many times (an endless keep-alive, a 10 MB event).
    #[serde(default)]
    pub repeat: Option<u64>,
}

impl Piece {
    /// The bytes on the wire: `raw` as is, else an SSE event of `event` and `data` (a JSON
    /// value is written compactly).
    pub fn bytes(&self) -> Vec<u8> {
        if let Some(raw) = &self.raw {
            return raw.clone().into_bytes();
        }
        let mut out = String::new();
        if let Some(name) = &self.event {
            out.push_str(&format!("event: {name}\n"));
        }
        match &self.data {
            Some(Value::String(s)) => out.push_str(&format!("data: {s}\n\n")),
            Some(v) => out.push_str(&format!("data: {v}\n\n")),
            None if self.event.is_some() => out.push('\n'),
            None => {}
        }
        out.into_bytes()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransportAnswer {
    pub transport: String,
    #[serde(default)]
    pub message: Option<String>,
}

/// A step as written: exactly one of the action fields, plus checks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepFile {
    pub advance_ms: Option<u64>,
    pub select: Option<Value>,
    pub call: Option<CallStep>,
    /// A driven call, carried out step by step (streamed or not).
    pub stream: Option<StreamStep>,
    pub restart: Option<Value>,
    pub set_credentials: Option<Vec<Credential>>,
    pub script: Option<BTreeMap<String, ProviderScript>>,
    #[serde(default)]
    pub expect: Expect,
    #[serde(default)]
    pub events: Vec<EventMatch>,
    #[serde(default)]
    pub no_events: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallStep {
    #[serde(default)]
    pub request: Option<RequestFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamStep {
    #[serde(default)]
    pub request: Option<RequestFile>,
    /// The caller's own timeout (the call's deadline when shorter than the config's).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestFile {
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<Value>,
}

fn default_path() -> String {
    "/chat/completions".to_string()
}

fn default_method() -> String {
    "POST".to_string()
}

/// Every expectation any step may carry; which apply depends on the step's action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Expect {
    pub route: Option<RouteMatch>,
    pub no_route: Option<bool>,
    #[serde(default)]
    pub contains: Vec<String>,
    pub ok: Option<bool>,
    pub attempts: Option<usize>,
    pub reason: Option<String>,
    pub sends: Option<Vec<SendMatch>>,
    #[serde(default)]
    pub not_sent: Vec<String>,
    pub elapsed_ms: Option<u64>,
    pub elapsed_ms_max: Option<u64>,
    /// `stream` steps: whether the caller got an answer's head (the guest committed).
    pub committed: Option<bool>,
    /// `stream` steps: text the caller read must (not) contain.
    #[serde(default)]
    pub delivered_contains: Vec<String>,
    #[serde(default)]
    pub delivered_excludes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteMatch {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub credential: Option<String>,
    pub position: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendMatch {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub credential: Option<String>,
    /// `"429"` or `429`, or a transport kind.
    pub outcome: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventMatch {
    pub kind: Option<String>,
    pub contains: Option<String>,
}
