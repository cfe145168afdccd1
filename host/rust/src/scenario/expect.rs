//! Checking a step's expectations. Each check returns what differed, one message each; the
//! runner prefixes the scenario and step.

use serde_json::Value;

use super::file::{EventMatch, Expect, RouteMatch, SendMatch};
use super::journal::Send;
use crate::types::{Attempt, CallFailure, CallSuccess, Event, NoRoute, Route};

pub(crate) fn route(want: &RouteMatch, got: &Route, what: &str) -> Vec<String> {
    let checks = [
        ("provider", want.provider.clone(), got.provider.clone()),
        ("model", want.model.clone(), got.model.clone()),
        ("credential", want.credential.clone(), got.credential.clone()),
        ("position", want.position.map(|p| p.to_string()), got.position.to_string()),
    ];
    checks
        .into_iter()
        .filter_map(|(name, want, actual)| {
            let want = want?;
            (want != actual).then(|| format!("{what} {name}: expected `{want}`, got `{actual}` (route {})", got.label_with_credential()))
        })
        .collect()
}

pub(crate) fn select(expect: &Expect, got: &Result<Route, NoRoute>) -> Vec<String> {
    let mut diffs = Vec::new();
    match got {
        Ok(r) => {
            if expect.no_route == Some(true) {
                diffs.push(format!("expected no route, got {}", r.label_with_credential()));
            }
            if let Some(want) = &expect.route {
                diffs.extend(route(want, r, "selected route"));
            }
        }
        Err(no) => {
            if expect.no_route == Some(false) || expect.route.is_some() {
                diffs.push(format!("expected a route, got none: {}", no.message));
            }
            diffs.extend(contains(&expect.contains, &no.message, "no-route message"));
        }
    }
    diffs
}

pub(crate) fn call(expect: &Expect, got: &Result<CallSuccess, CallFailure>, sends: &[Send], elapsed_ms: u64) -> Vec<String> {
    let mut diffs = Vec::new();
    let attempts: &[Attempt] = match got {
        Ok(s) => &s.attempts,
        Err(f) => &f.attempts,
    };
    if let Some(want) = expect.ok {
        if want != got.is_ok() {
            let detail = match got {
                Ok(s) => format!("it succeeded on {}", s.route.label_with_credential()),
                Err(f) => format!("it failed ({}): {}", f.error.reason.as_str(), f.error.message),
            };
            diffs.push(format!("expected ok {want}, but {detail}"));
        }
    }
    match got {
        Ok(s) => {
            if let Some(want) = &expect.route {
                diffs.extend(route(want, &s.route, "answering route"));
            }
        }
        Err(f) => {
            if let Some(want) = &expect.reason {
                if want != f.error.reason.as_str() {
                    diffs.push(format!("final reason: expected `{want}`, got `{}`", f.error.reason.as_str()));
                }
            }
            diffs.extend(contains(&expect.contains, &f.error.message, "final error message"));
        }
    }
    if let Some(want) = expect.attempts {
        if want != attempts.len() {
            diffs.push(format!("attempts: expected {want}, got {} ({})", attempts.len(), outcomes(sends)));
        }
    }
    if let Some(want) = &expect.sends {
        diffs.extend(send_list(want, sends));
    }
    for target in &expect.not_sent {
        if let Some(s) = sends.iter().find(|s| sent_to(s, target)) {
            diffs.push(format!("expected nothing sent to {target}, but sent to {} ({})", s.route.label_with_credential(), s.outcome));
        }
    }
    diffs.extend(elapsed(expect, elapsed_ms));
    diffs
}

/// What the caller of a `stream` step saw: an answer's head or not, and the text it read.
pub(crate) fn streamed(expect: &Expect, committed: bool, delivered: &[u8]) -> Vec<String> {
    let mut diffs = Vec::new();
    if let Some(want) = expect.committed {
        if want != committed {
            diffs.push(format!("committed: expected {want}, got {committed}"));
        }
    }
    let text = String::from_utf8_lossy(delivered);
    diffs.extend(contains(&expect.delivered_contains, &text, "delivered text"));
    for unwanted in &expect.delivered_excludes {
        if text.contains(unwanted.as_str()) {
            diffs.push(format!("delivered text holds `{unwanted}`: {text}"));
        }
    }
    diffs
}

/// `elapsed_ms` / `elapsed_ms_max`, for any step.
pub(crate) fn elapsed(expect: &Expect, elapsed_ms: u64) -> Vec<String> {
    let mut diffs = Vec::new();
    if let Some(want) = expect.elapsed_ms {
        if want != elapsed_ms {
            diffs.push(format!("elapsed: expected {want} ms, got {elapsed_ms} ms"));
        }
    }
    if let Some(max) = expect.elapsed_ms_max {
        if elapsed_ms > max {
            diffs.push(format!("elapsed: expected at most {max} ms, got {elapsed_ms} ms"));
        }
    }
    diffs
}

pub(crate) fn events(want: &[EventMatch], none_of: &[String], got: &[Event]) -> Vec<String> {
    let mut diffs = Vec::new();
    for w in want {
        let found = got
            .iter()
            .any(|e| w.kind.as_deref().is_none_or(|k| k == e.kind.as_str()) && w.contains.as_deref().is_none_or(|c| e.message.contains(c)));
        if !found {
            diffs.push(format!(
                "expected an event{}{}; got {}",
                w.kind.as_deref().map(|k| format!(" of kind `{k}`")).unwrap_or_default(),
                w.contains.as_deref().map(|c| format!(" containing `{c}`")).unwrap_or_default(),
                list_events(got)
            ));
        }
    }
    for kind in none_of {
        if let Some(e) = got.iter().find(|e| e.kind.as_str() == kind) {
            diffs.push(format!("expected no `{kind}` event, got one: {}", e.message));
        }
    }
    diffs
}

fn list_events(events: &[Event]) -> String {
    if events.is_empty() {
        return "no events".to_string();
    }
    events.iter().map(|e| format!("[{}] {}", e.kind.as_str(), e.message)).collect::<Vec<_>>().join("; ")
}

fn contains(want: &[String], text: &str, what: &str) -> Vec<String> {
    want.iter().filter(|w| !text.contains(w.as_str())).map(|w| format!("{what} does not contain `{w}`: {text}")).collect()
}

fn outcomes(sends: &[Send]) -> String {
    if sends.is_empty() {
        return "no sends".to_string();
    }
    sends.iter().map(|s| format!("{} {}", s.route.label_with_credential(), s.outcome)).collect::<Vec<_>>().join(", ")
}

fn send_list(want: &[SendMatch], got: &[Send]) -> Vec<String> {
    let mut diffs = Vec::new();
    if want.len() != got.len() {
        diffs.push(format!("sends: expected {}, got {} ({})", want.len(), got.len(), outcomes(got)));
    }
    for (i, (w, s)) in want.iter().zip(got).enumerate() {
        let outcome = w.outcome.as_ref().map(|o| match o {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let checks = [
            ("provider", w.provider.clone(), s.route.provider.clone()),
            ("model", w.model.clone(), s.route.model.clone()),
            ("credential", w.credential.clone(), s.route.credential.clone()),
            ("outcome", outcome, s.outcome.clone()),
        ];
        for (name, want, got) in checks {
            if let Some(want) = want {
                if want != got {
                    diffs.push(format!(
                        "send {i} {name}: expected `{want}`, got `{got}` ({} {})",
                        s.route.label_with_credential(),
                        s.outcome
                    ));
                }
            }
        }
    }
    diffs
}

/// `provider` or `provider#credential`.
fn sent_to(send: &Send, target: &str) -> bool {
    match target.split_once('#') {
        Some((provider, credential)) => send.route.provider == provider && send.route.credential == credential,
        None => send.route.provider == target,
    }
}
