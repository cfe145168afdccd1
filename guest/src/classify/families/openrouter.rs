//! OpenRouter: `{"error": {"code": <status>, "message", "metadata"}}`
//! (https://openrouter.ai/docs/api-reference/errors). 401 invalid/disabled key → auth; 402 out
//! of credits ("requires more credits, or fewer max_tokens") → billing; 404 "No endpoints found"
//! → model-not-found (shared signal); 408 → timeout; 429 "free-models-per-day" →
//! quota-exhausted, "free-models-per-min" → rate-limit (shared signals); 502 → server-error.
//! Errors after the stream started come in a 200 as an SSE `data:` chunk with `error`.
//! Timing: `X-RateLimit-Reset` (epoch ms, also repeated in `error.metadata.headers`).

use super::{hit, phrases, Evidence, Hit};
use crate::types::Reason;

pub(super) const MODERATION: &[&str] = &["moderation", "flagged"];
pub(super) const UPSTREAM: &[&str] = &["rate-limited upstream"];
pub(super) const PER_DAY: &[&str] = &["per-day", "per day"];

pub fn refine(ev: &Evidence) -> Option<Hit> {
    let metadata = ev.doc.as_ref().and_then(|d| d.at(&["error", "metadata"]));
    // 403: the model requires moderation and the input was flagged (`metadata.reasons`,
    // `metadata.flagged_input`).
    if ev.status == 403 && (metadata.is_some_and(|m| m.get("flagged_input").is_some()) || ev.has(phrases!(MODERATION))) {
        return hit(Reason::ContentFilter, "openrouter.403-moderation");
    }
    // 429 from the upstream provider ("is temporarily rate-limited upstream", "Provider returned
    // error"): OpenRouter's shared capacity at that provider, which another OpenRouter key would
    // hit just the same.
    let upstream = metadata.is_some_and(|m| m.get("provider_name").is_some_and(|p| !p.is_null()));
    if ev.status == 429 && (upstream || ev.has(phrases!(UPSTREAM))) && !ev.has(phrases!(PER_DAY)) {
        return hit(Reason::Overloaded, "openrouter.429-upstream");
    }
    // 503: no provider meets the routing requirements right now.
    if ev.status == 503 {
        return hit(Reason::Overloaded, "openrouter.503-no-provider");
    }
    None
}
