//! Error framings a plain JSON parse of the body does not see, as they arrive in the body of a
//! 2xx (or any) response: server-sent events (OpenAI chat `data:` chunks carrying `error`, the
//! Responses API's `response.failed` and `error` events, Anthropic's `event: error`, DashScope's
//! `event:error` with its `:HTTP_STATUS/429` comment), newline-delimited JSON (Ollama's streams)
//! and AWS event-stream exception messages (Bedrock's ConverseStream and
//! InvokeModelWithResponseStream).

use std::borrow::Cow;

use super::evidence::{error_object, parse};
use super::json::Json;

/// An error found in a framing.
pub struct Framed<'a> {
    /// The error document: the event's data, the failed response, or the exception's payload.
    pub doc: Json<'a>,
    /// The status the framing states (DashScope's `:HTTP_STATUS/429` comment line).
    pub status: Option<u16>,
    /// The error type named outside the document (AWS `:exception-type`).
    pub code: Option<Cow<'a, str>>,
}

impl Framed<'_> {
    /// A copy that owns its strings, for a framing read from text that does not outlive it.
    pub fn into_owned(self) -> Framed<'static> {
        let code = self.code.map(|c| Cow::Owned(c.into_owned()));
        Framed { doc: self.doc.into_owned(), status: self.status, code }
    }
}

/// The first error framed in `body` (raw bytes) or `text` (the same bytes as text).
pub fn error_event<'a>(body: &'a [u8], text: &'a str) -> Option<Framed<'a>> {
    aws_exception(body).or_else(|| server_sent(text))
}

/// The first line of newline-delimited JSON that is an error (`{"error": "..."}` after some
/// chunks, as Ollama streams it). Only for text that is not one JSON document.
pub fn ndjson_error(text: &str) -> Option<Json<'_>> {
    let t = text.trim_start();
    if !t.starts_with('{') || memchr::memmem::find(t.as_bytes(), b"}\n{").is_none() {
        return None;
    }
    t.lines().filter_map(|l| parse(l.trim())).find(|v| error_object(v).is_some())
}

/// The first error event of a server-sent event stream.
fn server_sent(text: &str) -> Option<Framed<'_>> {
    let t = text.trim_start();
    if !["event:", "data:", ":", "id:", "retry:"].iter().any(|p| t.starts_with(p)) {
        return None;
    }
    let (mut event, mut status) = ("", None);
    for line in t.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(name) = line.strip_prefix("event:") {
            event = name.trim();
        } else if let Some(code) = line.strip_prefix(":HTTP_STATUS/") {
            status = code.trim().parse().ok();
        } else if let Some(data) = line.strip_prefix("data:") {
            let Some(v) = parse(data.trim()) else {
                continue;
            };
            // The Responses API's failed response carries the error in `response.error`.
            let failed = event == "response.failed" || v.get("type").and_then(Json::as_str) == Some("response.failed");
            if failed {
                if let Some(response) = v.take("response") {
                    return Some(Framed { doc: response, status, code: None });
                }
            } else if event == "error" || error_object(&v).is_some() {
                return Some(Framed { doc: v, status, code: None });
            }
        } else if line.is_empty() {
            (event, status) = ("", None);
        }
    }
    None
}

/// The first exception message of an AWS event stream: each message is a prelude (total and
/// headers length, CRC), typed headers, a payload and a CRC; an exception names itself in its
/// `:exception-type` header and says why in a JSON payload (`{"message": "..."}`).
fn aws_exception(body: &[u8]) -> Option<Framed<'_>> {
    memchr::memmem::find(body, b":exception-type")?;
    let mut rest = body;
    while rest.len() >= 16 {
        let total = be_u32(rest)?;
        let headers_len = be_u32(rest.get(4..)?)?;
        let end = total.checked_sub(4)?;
        let headers = rest.get(12..12usize.checked_add(headers_len)?)?;
        let payload = rest.get(12 + headers_len..end)?;
        if let Some(name) = header(headers, b":exception-type") {
            let doc = std::str::from_utf8(payload).ok().and_then(parse).unwrap_or(Json::Null);
            return Some(Framed { doc, status: None, code: Some(Cow::Borrowed(name)) });
        }
        rest = rest.get(total..)?;
    }
    None
}

fn be_u32(b: &[u8]) -> Option<usize> {
    let bytes: [u8; 4] = b.get(..4)?.try_into().ok()?;
    usize::try_from(u32::from_be_bytes(bytes)).ok()
}

/// The string value of header `want` in an event-stream header block.
fn header<'a>(mut block: &'a [u8], want: &[u8]) -> Option<&'a str> {
    while let [len, rest @ ..] = block {
        let (name, rest) = rest.split_at_checked(usize::from(*len))?;
        let (&kind, rest) = rest.split_first()?;
        // Value sizes by type: bool (0, 1), byte, short, int, long, bytes and string (2-byte
        // length first), timestamp, uuid.
        let (value, rest) = match kind {
            0 | 1 => rest.split_at(0),
            2 => rest.split_at_checked(1)?,
            3 => rest.split_at_checked(2)?,
            4 => rest.split_at_checked(4)?,
            5 | 8 => rest.split_at_checked(8)?,
            9 => rest.split_at_checked(16)?,
            6 | 7 => {
                let (n, rest) = rest.split_at_checked(2)?;
                rest.split_at_checked(usize::from(u16::from_be_bytes([n[0], n[1]])))?
            }
            _ => return None,
        };
        if name == want && kind == 7 {
            return std::str::from_utf8(value).ok();
        }
        block = rest;
    }
    None
}
