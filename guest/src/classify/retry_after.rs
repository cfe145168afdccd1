//! How long to wait, from every form providers use. Classification is stateless (no clock), so
//! absolute times (an HTTP-date `retry-after`, RFC 3339 or epoch resets, a reset time written in
//! the body) are turned into a delay against the response's own `date` header; without one the
//! time is unknown and gives none.

use std::time::{SystemTime, UNIX_EPOCH};

use super::clock;
use super::evidence::Evidence;
use super::json::Json;
use super::phrases::phrases;

/// The phrase lists below, for the one-pass search (`phrases.rs`).
pub const PHRASES: &[&[&str]] = &[LEADS, RESET_AT];

/// Waits beyond this (about 31 years) are garbage, not advice.
const MAX_MS: f64 = 1e12;

/// What the provider says to wait, whatever the reason: `retry-after-ms`, `retry-after`,
/// Gemini's `RetryInfo.retryDelay`, a `retry_after` field (seconds), then "try again in
/// 20s"-style sentences.
pub fn explicit(ev: &Evidence) -> Option<u64> {
    ev.header("retry-after-ms")
        .and_then(|v| millis(v.trim().parse().ok()?, 1.0))
        .or_else(|| ev.header("retry-after").and_then(|v| retry_after(v, ev)))
        .or_else(|| ev.doc.as_ref().and_then(retry_info))
        .or_else(|| body_seconds(ev, "retry_after"))
        .or_else(|| ev.has(phrases!(LEADS)).then(|| body_hint(&ev.text)).flatten())
}

/// When the exhausted limit resets; only meaningful for rate limits and quotas, since these
/// headers come with every response. Headers first, then the body: OpenRouter's copy of its
/// headers, Codex's `resets_in_seconds` / `resets_at`, then a reset time written in the message
/// ("will reset at 2026-08-27 21:31:39"), read in the provider's clock (`local`, minutes east of
/// UTC) when it names no zone.
pub fn reset(ev: &Evidence, local: i32) -> Option<u64> {
    const OPENAI: &[(&str, &str)] =
        &[("x-ratelimit-reset-requests", "x-ratelimit-remaining-requests"), ("x-ratelimit-reset-tokens", "x-ratelimit-remaining-tokens")];
    // Cerebras: per-minute and per-day buckets, reset in seconds.
    const CEREBRAS: &[(&str, &str)] = &[
        ("x-ratelimit-reset-requests-minute", "x-ratelimit-remaining-requests-minute"),
        ("x-ratelimit-reset-tokens-minute", "x-ratelimit-remaining-tokens-minute"),
        ("x-ratelimit-reset-requests-day", "x-ratelimit-remaining-requests-day"),
        ("x-ratelimit-reset-tokens-day", "x-ratelimit-remaining-tokens-day"),
    ];
    const ANTHROPIC: &[(&str, &str)] = &[
        ("anthropic-ratelimit-requests-reset", "anthropic-ratelimit-requests-remaining"),
        ("anthropic-ratelimit-tokens-reset", "anthropic-ratelimit-tokens-remaining"),
        ("anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-input-tokens-remaining"),
        ("anthropic-ratelimit-output-tokens-reset", "anthropic-ratelimit-output-tokens-remaining"),
    ];
    // Claude subscriptions: 5-hour and 7-day windows, reset in epoch seconds, `rejected` when used up.
    const UNIFIED: &[(&str, &str)] = &[
        ("anthropic-ratelimit-unified-5h-reset", "anthropic-ratelimit-unified-5h-status"),
        ("anthropic-ratelimit-unified-7d-reset", "anthropic-ratelimit-unified-7d-status"),
        ("anthropic-ratelimit-unified-reset", "anthropic-ratelimit-unified-status"),
    ];
    // Codex (ChatGPT plans): 5-hour and weekly windows, reset in seconds, used up at 100%.
    const CODEX: &[(&str, &str)] = &[
        ("x-codex-primary-reset-after-seconds", "x-codex-primary-used-percent"),
        ("x-codex-secondary-reset-after-seconds", "x-codex-secondary-used-percent"),
    ];
    let zero = |r: &str| r.trim() == "0";
    let rejected = |s: &str| s.trim().eq_ignore_ascii_case("rejected");
    let full = |p: &str| p.trim().parse::<f64>().is_ok_and(|p| p >= 100.0);
    let rfc3339 = |v: &str| delta_to(humantime::parse_rfc3339_weak(v.trim()).ok()?, ev);
    let epoch = |v: &str| epoch_reset(v, ev);
    bucket_reset(ev, OPENAI, zero, duration)
        .or_else(|| bucket_reset(ev, CEREBRAS, zero, duration))
        .or_else(|| bucket_reset(ev, ANTHROPIC, zero, rfc3339))
        .or_else(|| bucket_reset(ev, UNIFIED, rejected, epoch))
        .or_else(|| bucket_reset(ev, CODEX, full, duration))
        .or_else(|| ev.header("x-ratelimit-reset").and_then(epoch))
        // The IETF draft's `RateLimit-Reset`: seconds.
        .or_else(|| ev.header("ratelimit-reset").and_then(duration))
        .or_else(|| openrouter_body_reset(ev))
        .or_else(|| body_seconds(ev, "resets_in_seconds"))
        .or_else(|| body_epoch(ev, "resets_at"))
        .or_else(|| ev.has(phrases!(RESET_AT)).then(|| written_reset(ev, local)).flatten())
}

/// A reset given as a duration: Go's format (`1m30.5s`) or a number of seconds (`20.5`).
fn duration(v: &str) -> Option<u64> {
    let v = v.trim();
    go_duration(v).or_else(|| millis(v.parse().ok()?, 1000.0))
}

/// `retry-after`: delay-seconds (integer, or decimal as some hosts send), or an HTTP date.
fn retry_after(value: &str, ev: &Evidence) -> Option<u64> {
    let v = value.trim();
    match v.parse::<f64>() {
        Ok(secs) => millis(secs, 1000.0),
        Err(_) => delta_to(httpdate::parse_http_date(v).ok()?, ev),
    }
}

/// The reset of the exhausted buckets, or of all present buckets when none is known to be
/// exhausted; the longest, so the retry does not come back too early.
/// OpenAI/Groq: `x-ratelimit-reset-requests: 1s` with `x-ratelimit-remaining-requests`;
/// Anthropic: `anthropic-ratelimit-tokens-reset` with `anthropic-ratelimit-tokens-remaining`.
/// `buckets` pairs each reset header with the header that says whether the bucket is used up.
fn bucket_reset(
    ev: &Evidence,
    buckets: &[(&str, &str)],
    used_up: impl Fn(&str) -> bool,
    parse: impl Fn(&str) -> Option<u64>,
) -> Option<u64> {
    let (mut exhausted, mut all) = (None, None);
    for (reset, state) in buckets {
        let Some(ms) = ev.header(reset).and_then(&parse) else { continue };
        all = all.max(Some(ms));
        if ev.header(state).is_some_and(&used_up) {
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

/// A number of seconds in the error object or at the top level of the body: a `retry_after`
/// field some gateways add, Codex's `resets_in_seconds`.
fn body_seconds(ev: &Evidence, key: &str) -> Option<u64> {
    let n = body_field(ev, key)?.as_f64()?;
    millis(n, 1000.0)
}

/// An epoch-seconds field (Codex's `resets_at`), against the response's `date`.
fn body_epoch(ev: &Evidence, key: &str) -> Option<u64> {
    let n = body_field(ev, key)?.as_u64()?;
    delta_to(UNIX_EPOCH + std::time::Duration::from_secs(n), ev)
}

fn body_field<'e>(ev: &'e Evidence, key: &str) -> Option<&'e Json<'e>> {
    let doc = ev.doc.as_ref()?;
    doc.at(&["error", key]).or_else(|| doc.get(key))
}

const RESET_AT: &[&str] = &["reset at", "resets at", "reset on", "resets on", "将在"];

/// "Your limit will reset at 2026-08-27 21:31:39", "Resets at 2026-08-07T05:00:00Z", "您的限额将在
/// 2026-08-25 07:41:44 重置": the first reset word followed by a time.
fn written_reset(ev: &Evidence, local: i32) -> Option<u64> {
    let text = &ev.text;
    let at = RESET_AT.iter().find_map(|lead| {
        text.match_indices(lead).find_map(|(i, _)| {
            let rest = text.get(i + lead.len()..)?.trim_start_matches([':', ' ']);
            clock::timestamp(rest, local)
        })
    })?;
    delta_to(at, ev)
}

/// Gemini/Vertex: `error.details[] {"@type": "...google.rpc.RetryInfo", "retryDelay": "33s"}`.
fn retry_info(doc: &Json) -> Option<u64> {
    let details = doc.at(&["error", "details"])?.as_array()?;
    details
        .iter()
        .filter(|d| d.get("@type").and_then(Json::as_str).is_some_and(|t| t.ends_with("RetryInfo")))
        .find_map(|d| go_duration(d.get("retryDelay")?.as_str()?))
}

const LEADS: &[&str] = &["try again in ", "retry in ", "retry after ", "try again after ", "reset after ", "resets in ", "reset in "];

/// "Please try again in 14m24.5s", "Please retry in 33.16s", "retry after 6 seconds",
/// "Your quota will reset after 8h44m7s", "Your quota resets in 3h 47m": the first such
/// sentence that carries a duration.
fn body_hint(text: &str) -> Option<u64> {
    LEADS.iter().find_map(|lead| text.match_indices(lead).find_map(|(i, _)| spoken_duration(text.get(i + lead.len()..)?)))
}

/// `20s`, `14m24.5s`, `3h 47m` (compact) or `6 seconds`, `2 days 4 hours` (spelled) at the
/// start of `s`: the sum of the durations that follow one another, up to the end of the
/// sentence or JSON string.
fn spoken_duration(s: &str) -> Option<u64> {
    // A duration is short; looking further would make a body full of "try again in" quadratic.
    let s = &s[..s.char_indices().nth(48).map_or(s.len(), |(i, _)| i)];
    let s = &s[..s.find([',', ';', ')', '"', '\\']).unwrap_or(s.len())];
    let mut words = s.split_whitespace().map(|w| w.trim_end_matches('.'));
    let (mut total, mut any) = (0.0, false);
    while let Some(word) = words.next() {
        if let Some(ms) = go_duration(word) {
            total += ms as f64;
        } else {
            let Ok(n) = word.parse::<f64>() else { break };
            let Some(scale) = words.next().and_then(unit) else { break };
            total += n * scale;
        }
        any = true;
    }
    any.then(|| millis(total, 1.0)).flatten()
}

/// Milliseconds in a spelled unit.
fn unit(word: &str) -> Option<f64> {
    let scale = match word.trim_end_matches(|c: char| !c.is_ascii_alphabetic()) {
        "ms" | "millisecond" | "milliseconds" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => 1000.0,
        "min" | "mins" | "minute" | "minutes" => 60_000.0,
        "h" | "hour" | "hours" => 3_600_000.0,
        "d" | "day" | "days" => 86_400_000.0,
        _ => return None,
    };
    Some(scale)
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
