//! What a failed response says, read once: the body prefix as lowercase text, the error
//! document (JSON, or the `error` event of an event stream), the provider's own message and its
//! error codes. Every rule reads this instead of the raw bytes.

use std::borrow::Cow;

use super::framing::{self, Framed};
use super::json::Json;
use super::phrases::{self, Mask};
use super::BODY_PREFIX;
use crate::types::{Decimal, HttpResponse};

/// The longest message kept, in characters: enough for any provider's sentence.
const MESSAGE_MAX: usize = 200;

pub struct Evidence<'a> {
    pub response: &'a HttpResponse,
    /// The status the failure stands for: the HTTP status, or for an error inside a 2xx body or
    /// event stream, the status that error type normally comes with.
    pub status: u16,
    /// The body prefix, lossily decoded and lowercased: what phrase signals search.
    pub text: String,
    /// The rules' phrases that occur in `text`.
    found: Mask,
    /// The error document: the body's JSON (first element of an array), or a stream's error event.
    pub doc: Option<Json<'a>>,
    /// Error codes, types, statuses and reasons, lowercased (`insufficient_quota`,
    /// `resource_exhausted`, `throttlingexception`, `api_key_invalid`, ...).
    pub codes: Vec<Cow<'a, str>>,
    /// The provider's own message (original case, whitespace collapsed), if one was found.
    pub message: Option<Cow<'a, str>>,
    /// The body is an HTML page (a proxy or CDN answered, not the API).
    pub html: bool,
    /// The error arrived inside a 2xx response (event stream or JSON body).
    pub in_band: bool,
}

impl<'a> Evidence<'a> {
    pub fn read(response: &'a HttpResponse) -> Evidence<'a> {
        let end = response.body.len().min(BODY_PREFIX);
        let prefix = &response.body[..end];
        // `from_utf8` checks valid text much faster than the lossy decoder, which only invalid text needs.
        let raw = std::str::from_utf8(prefix).map_or_else(|_| String::from_utf8_lossy(prefix), Cow::Borrowed);
        // The same text for ASCII bodies (the usual case), without the Unicode case tables.
        let text = if raw.is_ascii() { raw.to_ascii_lowercase() } else { raw.to_lowercase() };
        let found = phrases::scan(text.as_bytes());
        let html = is_html(&text);
        let framed = match &raw {
            _ if html => None,
            Cow::Borrowed(text) => framing::error_event(prefix, text),
            // Invalid UTF-8, decoded into a local copy: the document must own its strings.
            Cow::Owned(text) => framing::error_event(prefix, text).map(Framed::into_owned),
        };
        let (hint, named) = framed.as_ref().map_or((None, None), |f| (f.status, f.code.clone()));
        let doc = match (framed, &raw) {
            (Some(f), _) => Some(f.doc),
            (None, _) if html => None,
            (None, Cow::Borrowed(text)) => document(text),
            (None, Cow::Owned(text)) => document(text).map(Json::into_owned),
        };
        let mut codes = doc.as_ref().map(codes_of).unwrap_or_default();
        codes.extend(named.as_deref().map(|c| Cow::Owned(aws_code(c).into_owned())));
        // Providers that name the error type in a header: AWS (`x-amzn-ErrorType:
        // ThrottlingException:...`), Azure (`x-ms-error-code: QuotaExceeded`).
        for name in ["x-amzn-errortype", "x-ms-error-code"] {
            codes.extend(response.header(name).map(aws_code));
        }
        let message = match &doc {
            Some(d) => message_of(d).or_else(|| first_line(&raw).map(Cow::Owned)),
            None if html => html_title(&raw).map(Cow::Owned),
            None => first_line(&raw).map(Cow::Owned),
        };
        // A framing's error is one whatever its document looks like.
        let is_error = named.is_some() || hint.is_some() || doc.as_ref().is_some_and(|d| error_object(d).is_some());
        let in_band = response.status < 400 && is_error;
        let status = match in_band {
            true => hint.unwrap_or_else(|| status_of_error(doc.as_ref().unwrap_or(&Json::Null), &codes)),
            false => response.status,
        };
        Evidence { response, status, text, found, doc, codes, message, html, in_band }
    }

    /// Any of these phrases (a registered list, `phrases!(LIST)`) occurs in the body.
    pub fn has(&self, phrases: Mask) -> bool {
        self.found.intersects(&phrases)
    }

    /// Any of these codes (lowercase) is among the error's codes.
    pub fn code(&self, names: &[&str]) -> bool {
        self.codes.iter().any(|c| names.contains(&c.as_ref()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.response.header(name)
    }

    /// `429 usage allocated quota exceeded.`: the status and the provider's words, bounded.
    pub fn summary(&self) -> String {
        let digits = Decimal::of(self.response.status.into());
        let status = digits.as_ref();
        let words = match &self.message {
            Some(m) if m.starts_with(status) => m.to_string(),
            Some(m) if self.in_band => [status, " stream error: ", m].concat(),
            Some(m) => [status, " ", m].concat(),
            None if self.response.body.is_empty() => [status, " (empty body)"].concat(),
            None => [status, " (unreadable body)"].concat(),
        };
        if tidy(&words) {
            words
        } else {
            bounded(&words)
        }
    }
}

/// Whether `response` is an answer: a 2xx that carries no error in its body, neither an error
/// event in an event stream nor an error document (what `Evidence::in_band` finds). Nearly
/// every such document holds the bytes `error` (the `error` key, `event: error`, `"type":
/// "error"`, `error_code`); MiniMax's `base_resp` and AWS's `:exception-type` do not. So a plain
/// answer costs a search for these bytes and is never parsed.
pub fn succeeded(response: &HttpResponse) -> bool {
    const MARKS: [&[u8]; 3] = [b"error", b"base_resp", b":exception-type"];
    let prefix = &response.body[..response.body.len().min(BODY_PREFIX)];
    (200..300).contains(&response.status)
        && (!MARKS.iter().any(|m| memchr::memmem::find(prefix, m).is_some()) || !Evidence::read(response).in_band)
}

/// Whitespace collapsed, cut to `MESSAGE_MAX` characters on a character boundary.
pub fn bounded(s: &str) -> String {
    if tidy(s) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len().min(4 * MESSAGE_MAX));
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() > 4 * MESSAGE_MAX {
            break; // already too long in any encoding: the rest would be cut off
        }
    }
    // At most one byte per character below this length, so no count is needed.
    if out.len() <= MESSAGE_MAX || out.chars().count() <= MESSAGE_MAX {
        return out;
    }
    let cut = out.char_indices().nth(MESSAGE_MAX - 1).map_or(out.len(), |(i, _)| i);
    out.truncate(out[..cut].trim_end().len());
    out.push('…');
    out
}

/// `s` is already what `bounded` makes of it: short ASCII, single spaces only between words.
fn tidy(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() > MESSAGE_MAX {
        return false;
    }
    let mut after_space = true; // so a leading space fails
    for &c in b {
        if !c.is_ascii() || matches!(c, b'\t'..=b'\r') || (c == b' ' && after_space) {
            return false;
        }
        after_space = c == b' ';
    }
    !after_space || b.is_empty()
}

/// serde_json's recursion limit (128) turns hostile nesting into an error, never a stack
/// overflow; a truncated prefix is simply not JSON and falls back to the text signals.
pub(super) fn parse(raw: &str) -> Option<Json<'_>> {
    let trimmed = raw.trim_start();
    if !trimmed.starts_with('{') && !trimmed.starts_with('[') {
        return None;
    }
    Json::parse(trimmed)
}

/// The error document: the body's JSON (first element of an array), or the error line of
/// newline-delimited JSON.
fn document(raw: &str) -> Option<Json<'_>> {
    match parse(raw) {
        Some(Json::Array(mut items)) if !items.is_empty() => Some(items.swap_remove(0)),
        Some(doc) => Some(doc),
        None => framing::ndjson_error(raw),
    }
}

fn is_html(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with('<') && (t.contains("<html") || t.contains("<!doctype html") || t.contains("<body"))
}

/// The object describing the error: `error` when it is an object, else the document itself
/// when it looks like an error (Bedrock and DashScope put `message`/`code` at the top level;
/// MiniMax answers `base_resp` with a non-zero `status_code`, Baidu `error_code`).
pub(super) fn error_object<'d, 'a>(doc: &'d Json<'a>) -> Option<&'d Json<'a>> {
    let failed_base = doc.at(&["base_resp", "status_code"]).and_then(Json::as_u64).is_some_and(|c| c != 0);
    match doc.get("error") {
        Some(e @ Json::Object(_)) => Some(e),
        Some(Json::String(_)) => Some(doc),
        _ if doc.get("type").and_then(Json::as_str) == Some("error") => Some(doc),
        _ if doc.get("object").and_then(Json::as_str) == Some("error") => Some(doc),
        _ if failed_base || doc.get("error_code").is_some_and(|c| !c.is_null()) => Some(doc),
        _ => None,
    }
}

fn codes_of<'a>(doc: &Json<'a>) -> Vec<Cow<'a, str>> {
    let mut out = Vec::new();
    let mut push = |v: Option<&Json<'a>>| match v {
        // ASCII lowercasing commutes with `aws_code`'s cuts; other text is lowercased whole first.
        Some(Json::String(Cow::Borrowed(s))) if s.is_ascii() && !s.is_empty() => out.push(aws_code(s)),
        Some(Json::String(s)) if s.is_ascii() && !s.is_empty() => out.push(Cow::Owned(aws_code(s).into_owned())),
        Some(Json::String(s)) if !s.is_empty() => out.push(Cow::Owned(aws_code(&s.to_lowercase()).into_owned())),
        Some(Json::Number(n)) => out.push(Cow::Owned(aws_code(&n.to_string()).into_owned())),
        _ => {}
    };
    let e = doc.get("error").filter(|e| e.is_object());
    for key in ["code", "type", "status", "__type"] {
        push(e.and_then(|e| e.get(key)));
        push(doc.get(key));
    }
    push(e.and_then(|e| e.at(&["innererror", "code"])));
    push(doc.at(&["base_resp", "status_code"]));
    push(doc.get("error_code"));
    // Gemini: ErrorInfo reasons; 200 responses: why generation stopped.
    if let Some(Json::Array(details)) = e.and_then(|e| e.get("details")) {
        details.iter().for_each(|d| push(d.get("reason")));
    }
    push(doc.at(&["promptFeedback", "blockReason"]));
    push(doc.at(&["candidates", "0", "finishReason"]));
    push(doc.at(&["choices", "0", "finish_reason"]));
    out
}

/// `ThrottlingException:http://internal.amazon.com/...` or `com.amazon.coral#ThrottlingException`
/// → `throttlingexception`.
fn aws_code(raw: &str) -> Cow<'_, str> {
    // Most codes are plain lowercase ASCII names already: one pass says so.
    let plain = |b: u8| b.is_ascii_graphic() && !b.is_ascii_uppercase() && b != b':' && b != b'#';
    if raw.bytes().all(plain) {
        return Cow::Borrowed(raw);
    }
    // Byte searches: `:` and `#` are ASCII, so they never match inside a multibyte character.
    let name = &raw[..raw.bytes().position(|b| b == b':').unwrap_or(raw.len())];
    let name = name[name.bytes().rposition(|b| b == b'#').map_or(0, |i| i + 1)..].trim();
    // Most codes are already lowercase ASCII: borrowed as they are, no copy.
    match name.is_ascii() {
        true if !name.bytes().any(|b| b.is_ascii_uppercase()) => Cow::Borrowed(name),
        true => Cow::Owned(name.to_ascii_lowercase()),
        false => Cow::Owned(name.to_lowercase()),
    }
}

/// The provider's sentence: `error.message`, `error` (a string), `message`, `Message`, `detail`,
/// `base_resp.status_msg` (MiniMax), `error_msg` (Baidu);
/// OpenRouter's "Provider returned error" gets the upstream's words appended.
fn message_of<'a>(doc: &Json<'a>) -> Option<Cow<'a, str>> {
    let e = doc.get("error");
    let found = [
        e.and_then(|e| e.get("message")),
        e.filter(|e| e.is_string()),
        doc.get("message"),
        doc.get("Message"),
        doc.get("detail"),
        doc.at(&["base_resp", "status_msg"]),
        doc.get("error_msg"),
    ]
    .into_iter()
    .flatten()
    .find_map(Json::as_cow)?;
    let upstream = e.and_then(|e| e.at(&["metadata", "raw"])).and_then(Json::as_str);
    let text = match (upstream, found) {
        (Some(raw), _) => {
            let inner = parse(raw).and_then(|v| message_of(&v).map(Cow::into_owned)).unwrap_or_else(|| raw.to_string());
            Cow::Owned(bounded(&format!("{found}: {inner}")))
        }
        // Text lent by the body and already tidy is the message as it is: no copy.
        (None, Cow::Borrowed(s)) if tidy(s) => Cow::Borrowed(*s),
        (None, _) => Cow::Owned(bounded(found)),
    };
    Some(text).filter(|m| !m.is_empty())
}

/// What an error inside a 2xx body stands for: the status its type names (by the words error
/// types are built from, so `rate_limit_reached_error`, `ThrottlingException` and
/// `engine_overloaded_error` need no entry of their own), else a numeric `error.code`, else a
/// failed generation (500).
fn status_of_error(doc: &Json, codes: &[Cow<str>]) -> u16 {
    const BY_TYPE: &[(&str, u16)] = &[
        ("overload", 529),
        ("rate_limit", 429),
        ("ratelimit", 429),
        ("throttl", 429),
        ("too_many_requests", 429),
        ("toomanyrequests", 429),
        ("quota", 429),
        ("usage_limit", 429),
        ("balance", 402),
        ("billing", 402),
        ("payment", 402),
        ("authentication", 401),
        ("unauthorized", 401),
        ("invalid_api_key", 401),
        ("permission", 403),
        ("accessdenied", 403),
        ("not_found", 404),
        ("notfound", 404),
        ("too_large", 413),
        ("context_length", 400),
        ("invalid_request", 400),
        ("invalid_prompt", 400),
        ("validation", 400),
        ("content_filter", 400),
        ("unavailable", 503),
        ("timeout", 504),
    ];
    let numeric = doc.at(&["error", "code"]).and_then(Json::as_u64).and_then(|c| u16::try_from(c).ok()).filter(|c| (400..600).contains(c));
    BY_TYPE.iter().find(|(t, _)| codes.iter().any(|c| c.contains(t))).map(|(_, s)| *s).or(numeric).unwrap_or(500)
}

fn html_title(raw: &str) -> Option<String> {
    // ASCII lowercasing keeps byte offsets valid for `raw`.
    let lower = raw.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = start + lower.get(start..)?.find("</title>")?;
    Some(bounded(raw.get(start..end)?)).filter(|t| !t.is_empty())
}

fn first_line(raw: &str) -> Option<String> {
    raw.lines().map(str::trim).find(|l| !l.is_empty()).map(bounded)
}
