//! After commit a failed stream either goes on from a continuation request (the text so far as
//! the assistant's own message, for providers that accept a prefill) or ends with an error event
//! in the stream's own format, so the caller's SDK raises it instead of taking a truncated
//! answer for a complete one.

use serde_json::{json, Map, Value};

use super::judge::Format;
use crate::classify::Family;
use crate::types::{Reason, Request};

/// The request that continues an answer cut after `text`, or none when the request has no
/// `messages` to extend (a Responses API `input`, a body that is not JSON).
pub fn continuation(request: &Request, text: &str, family: Family, fields: &Map<String, Value>) -> Option<Request> {
    let mut body: Value = serde_json::from_slice(&request.body).ok()?;
    let messages = body.get_mut("messages")?.as_array_mut()?;
    // Anthropic refuses a final assistant message ending in whitespace.
    let prefill = if family == Family::Anthropic { text.trim_end() } else { text };
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert("content".into(), json!(prefill));
    message.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
    messages.push(Value::Object(message));
    let body = serde_json::to_vec(&body).ok()?;
    Some(Request { body, ..request.clone() })
}

/// An error event that SDKs of the stream's format raise as an API error.
pub fn error_event(format: Format, reason: Reason, message: &str) -> Vec<u8> {
    let event = match format {
        Format::OpenAiChat => {
            let data = json!({"error": {"message": message, "type": "failover_error", "code": reason.as_str()}});
            format!("data: {data}\n\n")
        }
        Format::Anthropic => {
            let kind = match reason {
                Reason::Overloaded => "overloaded_error",
                Reason::RateLimit | Reason::QuotaExhausted => "rate_limit_error",
                Reason::Timeout => "timeout_error",
                Reason::Auth | Reason::AuthPermanent => "authentication_error",
                _ => "api_error",
            };
            let data = json!({"type": "error", "error": {"type": kind, "message": message}});
            format!("event: error\ndata: {data}\n\n")
        }
        Format::OpenAiResponses => {
            let data = json!({"type": "error", "code": reason.as_str(), "message": message, "param": null});
            format!("event: error\ndata: {data}\n\n")
        }
        Format::Generic => {
            let data = json!({"error": {"message": message, "code": reason.as_str()}});
            format!("event: error\ndata: {data}\n\n")
        }
    };
    event.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::judge::Judge;
    use crate::stream::sse::{Framed, Framer};

    fn request(body: &str) -> Request {
        Request { path: "/chat/completions".into(), method: "POST".into(), headers: vec![], body: body.as_bytes().to_vec() }
    }

    #[test]
    fn a_continuation_prefills_the_text_so_far_with_the_configured_fields() {
        let req = request(r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#);
        let mut fields = Map::new();
        fields.insert("prefix".into(), json!(true));
        let next = continuation(&req, "Hello, wor", Family::Generic, &fields).unwrap();
        let body: Value = serde_json::from_slice(&next.body).unwrap();
        assert_eq!(body["messages"][1], json!({"role": "assistant", "content": "Hello, wor", "prefix": true}));
        assert_eq!(body["stream"], json!(true));
        let next = continuation(&req, "Hello \n", Family::Anthropic, &Map::new()).unwrap();
        let body: Value = serde_json::from_slice(&next.body).unwrap();
        assert_eq!(body["messages"][1]["content"], json!("Hello"));
        assert!(continuation(&request(r#"{"input":"hi"}"#), "x", Family::Generic, &Map::new()).is_none());
        assert!(continuation(&request("not json"), "x", Family::Generic, &Map::new()).is_none());
    }

    #[test]
    fn every_format_s_error_event_is_judged_an_error_by_the_policy_itself() {
        for format in [Format::OpenAiChat, Format::Anthropic, Format::OpenAiResponses, Format::Generic] {
            let bytes = error_event(format, Reason::Overloaded, "stream cut \"mid\" answer");
            let mut out = Vec::new();
            Framer::new(1 << 20).push(&bytes, &mut out);
            let Some(Framed::Event(ev)) = out.pop() else { panic!("{format:?}: not one event") };
            let family = if format == Format::Anthropic { Family::Anthropic } else { Family::Generic };
            assert!(Judge::new(family).judge(&ev).error, "{format:?}: {}", String::from_utf8_lossy(&bytes));
        }
    }
}
