//! The scripted provider: answers each send from the scenario's `providers` script, in
//! virtual time, and records it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{json, Value};

use super::file::{HttpAnswer, Piece, ProviderScript, Response};
use super::journal::Journal;
use crate::clock::VirtualClock;
use crate::host::Transport;
use crate::types::{Header, HttpResponse, Outbound, ResponseHead, TransportFailure, TransportKind};
use crate::upstream::{Chunk, Opened, Upstream};

/// Scripts by `P` and `P#C`; clones share them, so a `script` step can replace entries.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scripts(Arc<Mutex<BTreeMap<String, ProviderScript>>>);

impl Scripts {
    pub fn new(scripts: BTreeMap<String, ProviderScript>) -> Self {
        Scripts(Arc::new(Mutex::new(scripts)))
    }

    pub fn replace(&self, scripts: BTreeMap<String, ProviderScript>) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend(scripts);
    }

    /// The README's order: `P#C` script, `P` script, `P#C` default, `P` default, the OK answer.
    fn next(&self, provider: &str, credential: &str) -> Response {
        let mut scripts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let keys = [format!("{provider}#{credential}"), provider.to_string()];
        for key in &keys {
            if let Some(s) = scripts.get_mut(key) {
                if !s.script.is_empty() {
                    return s.script.remove(0);
                }
            }
        }
        keys.iter().find_map(|key| scripts.get(key).and_then(|s| s.default.clone())).unwrap_or_else(ok_response)
    }
}

fn ok_response() -> Response {
    let ok = json!({
        "status": 200,
        "headers": {"content-type": "application/json"},
        "body": {"id": "sim", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ]}
    });
    serde_json::from_value(ok).unwrap_or_else(|e| unreachable!("the built-in OK response parses: {e}"))
}

pub(crate) struct ScriptedProvider {
    pub scripts: Scripts,
    pub clock: VirtualClock,
    pub journal: Journal,
}

fn whole_body(a: &HttpAnswer) -> Vec<u8> {
    match (&a.stream, &a.body) {
        (Some(pieces), _) => pieces.iter().flat_map(|p| p.bytes().repeat(p.repeat.unwrap_or(1) as usize)).collect(),
        (None, None) => Vec::new(),
        (None, Some(Value::String(s))) => s.clone().into_bytes(),
        (None, Some(other)) => other.to_string().into_bytes(),
    }
}

/// A scripted body in virtual time: each piece after its delay, unless the read's time runs
/// out first.
struct ScriptedBody {
    head: ResponseHead,
    pieces: VecDeque<Piece>,
    clock: VirtualClock,
}

impl Upstream for ScriptedBody {
    fn head(&self) -> &ResponseHead {
        &self.head
    }

    fn read(&mut self, within_ms: u64) -> Chunk {
        let Some(mut piece) = self.pieces.pop_front() else {
            return Chunk::End;
        };
        if piece.stall || piece.delay_ms > within_ms {
            self.clock.advance(within_ms);
            piece.delay_ms = piece.delay_ms.saturating_sub(within_ms);
            self.pieces.push_front(piece);
            return Chunk::TimedOut;
        }
        self.clock.advance(piece.delay_ms);
        if piece.reset {
            return Chunk::Failed(TransportFailure { kind: TransportKind::Reset, message: "scripted reset mid-body".into() });
        }
        let bytes = piece.bytes();
        if let Some(n) = piece.repeat.filter(|n| *n > 1) {
            self.pieces.push_front(Piece { repeat: Some(n - 1), ..piece });
        }
        Chunk::Data(bytes)
    }
}

impl Transport for ScriptedProvider {
    /// A driven call's send: the head after its delay (or a timeout, when it comes later than
    /// the step allows or never), then the body piece by piece.
    fn open(&mut self, out: &Outbound, _auth: Option<&Header>, within_ms: u64) -> Opened {
        let t = self.journal.t();
        let (opened, outcome) = match self.scripts.next(&out.route.provider, &out.route.credential) {
            Response::Http(a) if a.silent || a.delay_ms >= within_ms => {
                self.clock.advance(within_ms);
                (Opened::TimedOut, "timeout".to_string())
            }
            Response::Http(a) => {
                self.clock.advance(a.delay_ms);
                let headers = a.headers.iter().map(|(name, value)| Header { name: name.clone(), value: value.clone() }).collect();
                let head = ResponseHead { status: a.status, headers };
                let pieces = match &a.stream {
                    Some(p) => p.iter().cloned().collect(),
                    None => {
                        VecDeque::from([Piece { raw: Some(String::from_utf8_lossy(&whole_body(&a)).into_owned()), ..Piece::default() }])
                    }
                };
                (Opened::Head(Box::new(ScriptedBody { head, pieces, clock: self.clock.clone() })), a.status.to_string())
            }
            Response::Transport(a) => {
                let kind = TransportKind::parse(&a.transport).unwrap_or(TransportKind::Other);
                let message = a.message.unwrap_or_else(|| format!("scripted {}", a.transport));
                (Opened::Failed(TransportFailure { kind, message }), kind.as_str().to_string())
            }
        };
        self.journal.record_send(&out.route, &outcome, t);
        opened
    }

    fn send(&mut self, out: &Outbound, _auth: Option<&Header>) -> Result<HttpResponse, TransportFailure> {
        let t = self.journal.t();
        let answer = match self.scripts.next(&out.route.provider, &out.route.credential) {
            Response::Http(a) if a.delay_ms >= out.read_timeout_ms => {
                self.clock.advance(out.read_timeout_ms);
                Err(TransportFailure {
                    kind: TransportKind::Timeout,
                    message: format!("no response within the read timeout of {} ms", out.read_timeout_ms),
                })
            }
            Response::Http(a) => {
                self.clock.advance(a.delay_ms);
                let body = whole_body(&a);
                let headers = a.headers.into_iter().map(|(name, value)| Header { name, value }).collect();
                Ok(HttpResponse { status: a.status, headers, body })
            }
            Response::Transport(a) => {
                let kind = TransportKind::parse(&a.transport).unwrap_or(TransportKind::Other);
                let message = a.message.unwrap_or_else(|| format!("scripted {}", a.transport));
                Err(TransportFailure { kind, message })
            }
        };
        let outcome = match &answer {
            Ok(r) => r.status.to_string(),
            Err(f) => f.kind.as_str().to_string(),
        };
        self.journal.record_send(&out.route, &outcome, t);
        answer
    }
}
