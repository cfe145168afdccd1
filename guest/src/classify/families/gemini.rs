//! Google Gemini (AI Studio) and Vertex AI: `{"error": {"code", "message", "status",
//! "details": [...]}}`, or an array of such in a stream. The status string and the typed
//! details carry the meaning:
//! - 400 `INVALID_ARGUMENT` with ErrorInfo `API_KEY_INVALID` ("API key not valid", "API key
//!   expired") → auth-permanent; "free tier is not available in your country ... enable
//!   billing" → billing; "User location is not supported" → model-not-found (another provider
//!   may work from here); token counts over the limit → overflow (shared signal).
//! - 403 `PERMISSION_DENIED`: `SERVICE_DISABLED` (the API is off for the project) →
//!   auth-permanent; a leaked key → auth-permanent (shared signal); else auth.
//! - 429 `RESOURCE_EXHAUSTED`: QuotaFailure `quotaId`s decide — any `PerDay` → quota-exhausted,
//!   `PerMinute` → rate-limit; `MODEL_CAPACITY_EXHAUSTED` / "no capacity" → overloaded; "quota
//!   will reset after 8h44m7s" → quota-exhausted; anything else is a short limit (Vertex's
//!   "Resource exhausted. Please try again later."). Its message says "check your plan and
//!   billing details" even for per-minute limits, so 429 never means billing here.
//! - 503 "The model is overloaded" → overloaded (shared signal); 504 → timeout.
//! - A blocked prompt or `SAFETY` finish in a 200 body → content-filter.
//!
//! Timing: `RetryInfo.retryDelay` ("33s"), then "Please retry in 33.16s".

use super::{hit, phrases, Evidence, Hit};
use crate::types::Reason;

pub(super) const KEY_INVALID: &[&str] = &["api key not valid", "api key expired"];
pub(super) const ENABLE_BILLING: &[&str] = &["enable billing"];
pub(super) const LOCATION: &[&str] = &["location is not supported"];
pub(super) const NO_CAPACITY: &[&str] = &["no capacity available"];
pub(super) const PER_DAY: &[&str] = &["perday", "per_day", "quota will reset", "exhausted your capacity"];
pub(super) const PER_MINUTE: &[&str] = &["perminute", "per_minute"];

pub fn refine(ev: &Evidence) -> Option<Hit> {
    if ev.code(&["api_key_invalid"]) || ev.has(phrases!(KEY_INVALID)) {
        return hit(Reason::AuthPermanent, "gemini.api-key-invalid");
    }
    if ev.status == 403 && ev.code(&["service_disabled"]) {
        return hit(Reason::AuthPermanent, "gemini.403-service-disabled");
    }
    if ev.status == 400 && ev.has(phrases!(ENABLE_BILLING)) {
        return hit(Reason::Billing, "gemini.400-billing");
    }
    if ev.status == 400 && ev.has(phrases!(LOCATION)) {
        return hit(Reason::ModelNotFound, "gemini.400-location");
    }
    if ev.status == 429 {
        return resource_exhausted(ev);
    }
    if ev.code(&["safety", "prohibited_content", "blocklist", "spii", "image_safety"]) {
        return hit(Reason::ContentFilter, "gemini.safety");
    }
    None
}

fn resource_exhausted(ev: &Evidence) -> Option<Hit> {
    if ev.code(&["model_capacity_exhausted"]) || ev.has(phrases!(NO_CAPACITY)) {
        return hit(Reason::Overloaded, "gemini.429-capacity");
    }
    if ev.has(phrases!(PER_DAY)) {
        return hit(Reason::QuotaExhausted, "gemini.429-per-day");
    }
    if ev.has(phrases!(PER_MINUTE)) {
        return hit(Reason::RateLimit, "gemini.429-per-minute");
    }
    hit(Reason::RateLimit, "gemini.429")
}
