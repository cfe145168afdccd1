//! How long to wait, from every form providers use. Classification is stateless (no clock), so
//! absolute times (an HTTP-date `retry-after`, RFC 3339 or epoch resets) are turned into a delay
//! against the response's own `date` header; without one the time is unknown and gives none.

use std::time::{SystemTime, UNIX_EPOCH};

use super::evidence::Evidence;
use super::json::Json;
use super::phrases::phrases;

/// The phrase lists below, for the one-pass search (`phrases.rs`).
pub const PHRASES: &[&[&str]] = &[LEADS];

/// Waits beyond this (about 31 years) are garbage, not advice.
const MAX_MS: f64 = 1e12;

/// What the provider says to wait, whatever the reason: `retry-after-ms`, `retry-after`,
/// Gemini's `RetryInfo.retryDelay`, then "try again in 20s"-style sentences.
pub fn explicit(ev: &Evidence) -> Option<u64> {
    ev.header("retry-after-ms")
        .and_then(|v| millis(v.trim().parse().ok()?, 1.0))
        .or_else(|| ev.header("retry-after").and_then(|v| retry_after(v, ev)))
        .or_else(|| ev.doc.as_ref().and_then(retry_info))
        .or_else(|| ev.has(phrases!(LEADS)).then(|| body_hint(&ev.text)).flatten())
}

/// When the exhausted limit resets; only meaningful for rate limits and quotas, since these
/// headers come with every response.
pub fn reset(ev: &Evidence) -> Option<u64> {
    const OPENAI: &[(&str, &str)] = &[
        ("x-ratelimit-reset-requests", "x-ratelimit-remaining-requests"),
        ("x-ratelimit-reset-tokens", "x-ratelimit-remaining-tokens"),
    ];
    const ANTHROPIC: &[(&str, &str)] = &[
        ("anthropic-ratelimit-requests-reset", "anthropic-ratelimit-requests-remaining"),
        ("anthropic-ratelimit-tokens-reset", "anthropic-ratelimit-tokens-remaining"),
        ("anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-input-tokens-remaining"),
        ("anthropic-ratelimit-output-tokens-reset", "anthropic-ratelimit-output-tokens-remaining"),
    ];
    let rfc3339 = |v: &str| delta_to(humantime::parse_rfc3339_weak(v.trim()).ok()?, ev);
    bucket_reset(ev, OPENAI, go_duration)
        .or_else(|| bucket_reset(ev, ANTHROPIC, rfc3339))
        .or_else(|| ev.header("x-ratelimit-reset").and_then(|v| epoch_reset(v, ev)))
        .or_else(|| openrouter_body_reset(ev))
}

/// `retry-after`: delay-seconds (integer, or decimal as some hosts send), or an HTTP date.
fn retry_after(value: &str, ev: &Evidence) -> Option<u64> {
    let v = value.trim();
    match v.parse::<f64>() {
        Ok(secs) => millis(secs, 1000.0),
        Err(_) => delta_to(httpdate::parse_http_date(v).ok()?, ev),
    }
}

/// The reset of the exhausted buckets (remaining = 0), or of all present buckets when none is
/// known to be exhausted; the longest, so the retry does not come back too early.
/// OpenAI/Groq: `x-ratelimit-reset-requests: 1s` with `x-ratelimit-remaining-requests`;
/// Anthropic: `anthropic-ratelimit-tokens-reset` with `anthropic-ratelimit-tokens-remaining`.
/// `buckets` pairs each reset header with its remaining header.
fn bucket_reset(ev: &Evidence, buckets: &[(&str, &str)], parse: impl Fn(&str) -> Option<u64>) -> Option<u64> {
    let (mut exhausted, mut all) = (None, None);
    for (reset, remaining) in buckets {
        let Some(ms) = ev.header(reset).and_then(&parse) else { continue };
        all = all.max(Some(ms));
        if ev.header(remaining).is_some_and(|r| r.trim() == "0") {
            exhausted = exhausted.max(Some(ms));
        }
    }
    exhausted.or(all)
}

/// A single `x-ratelimit-reset`: epoch milliseconds (OpenRouter), epoch seconds, a duration,
/// or a number of seconds.
fn epoch_reset(value: &str, ev: &Evidence) -> Option<u64> {
    let v = value.trim();
    let Ok(n) = v.parse::<f64>() else { return go_duration(v) };
    let at = match n {
        n if n > 1e12 => UNIX_EPOCH + std::time::Duration::from_millis(n as u64),
        n if n > 1e9 => UNIX_EPOCH + std::time::Duration::from_secs(n as u64),
        n => return millis(n, 1000.0),
    };
    delta_to(at, ev)
}

/// OpenRouter repeats its rate-limit headers in the body: `error.metadata.headers`.
fn openrouter_body_reset(ev: &Evidence) -> Option<u64> {
    let headers = ev.doc.as_ref()?.at(&["error", "metadata", "headers"])?;
    match headers.find_key(|k| k.eq_ignore_ascii_case("x-ratelimit-reset"))? {
        Json::String(s) => epoch_reset(s, ev),
        Json::Number(n) => epoch_reset(&n.to_string(), ev),
        _ => None,
    }
}

/// Gemini/Vertex: `error.details[] {"@type": "...google.rpc.RetryInfo", "retryDelay": "33s"}`.
fn retry_info(doc: &Json) -> Option<u64> {
    let details = doc.at(&["error", "details"])?.as_array()?;
    details
        .iter()
        .filter(|d| d.get("@type").and_then(Json::as_str).is_some_and(|t| t.ends_with("RetryInfo")))
        .find_map(|d| go_duration(d.get("retryDelay")?.as_str()?))
}

const LEADS: &[&str] = &["try again in ", "retry in ", "retry after ", "try again after ", "reset after "];

/// "Please try again in 14m24.5s", "Please retry in 33.16s", "retry after 6 seconds",
/// "Your quota will reset after 8h44m7s": the first such sentence that carries a duration.
fn body_hint(text: &str) -> Option<u64> {
    LEADS.iter().find_map(|lead| {
        text.match_indices(lead).find_map(|(i, _)| spoken_duration(text.get(i + lead.len()..)?))
    })
}

/// `20s`, `14m24.5s` (compact) or `6 seconds`, `1 minute` (spelled) at the start of `s`.
fn spoken_duration(s: &str) -> Option<u64> {
    // A duration is short; looking further would make a body full of "try again in" quadratic.
    let s = s.trim_start();
    let s = &s[..s.char_indices().nth(32).map_or(s.len(), |(i, _)| i)];
    let compact_end = s.find(|c: char| c.is_whitespace() || matches!(c, ',' | ')' | '"' | '\\')).unwrap_or(s.len());
    let compact = s[..compact_end].trim_end_matches('.');
    if let Some(ms) = go_duration(compact) {
        return Some(ms);
    }
    let mut words = s.split_whitespace();
    let n: f64 = words.next()?.parse().ok()?;
    let unit = words.next()?.trim_end_matches(|c: char| !c.is_ascii_alphabetic());
    let scale = match unit {
        "ms" | "millisecond" | "milliseconds" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => 1000.0,
        "min" | "mins" | "minute" | "minutes" => 60_000.0,
        "h" | "hour" | "hours" => 3_600_000.0,
        _ => return None,
    };
    millis(n, scale)
}

/// Go's duration format as OpenAI and Gemini send it: `1s`, `6m0s`, `1m30.5s`, `20ms`,
/// `2.256s`, `1h2m3s`. The whole string must be durations.
pub fn go_duration(s: &str) -> Option<u64> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let (scale, len) = if rest.starts_with("ms") {
            (1.0, 2)
        } else if rest.starts_with("us") {
            (0.001, 2)
        } else if rest.starts_with("µs") {
            (0.001, "µs".len())
        } else if rest.starts_with("ns") {
            (0.000_001, 2)
        } else if rest.starts_with('h') {
            (3_600_000.0, 1)
        } else if rest.starts_with('m') {
            (60_000.0, 1)
        } else if rest.starts_with('s') {
            (1000.0, 1)
        } else {
            return None;
        };
        total += n * scale;
        rest = &rest[len..];
    }
    millis(total, 1.0)
}

/// `n × scale` milliseconds, rounded up so a retry never comes early; none when absurd.
fn millis(n: f64, scale: f64) -> Option<u64> {
    let ms = (n * scale).ceil();
    (ms.is_finite() && (0.0..=MAX_MS).contains(&ms)).then_some(ms as u64)
}

/// The delay from the response's `date` header to `at` (0 when `at` has passed).
fn delta_to(at: SystemTime, ev: &Evidence) -> Option<u64> {
    let now = httpdate::parse_http_date(ev.header("date")?.trim()).ok()?;
    let ms = at.duration_since(now).map(|d| d.as_millis()).unwrap_or(0);
    millis(ms as f64, 1.0)
}
