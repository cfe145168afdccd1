//! Anthropic: `{"type": "error", "error": {"type", "message"}}`; the error type says it all
//! (https://docs.claude.com/en/api/errors). A 400 `invalid_request_error` can also be a low credit
//! balance or a reached spend limit (billing), or "prompt is too long" (overflow, shared signal).
//! Timing: `retry-after`, then `anthropic-ratelimit-*-reset` (RFC 3339).

use super::{by_code, hit, phrases, Evidence, Hit};
use crate::types::Reason;

pub(super) const LOW_CREDIT: &[&str] = &["credit balance is too low", "specified api usage limits"];

pub fn refine(ev: &Evidence) -> Option<Hit> {
    if ev.has(phrases!(LOW_CREDIT)) {
        return hit(Reason::Billing, "anthropic.400-billing");
    }
    const TYPES: &[(&str, Reason, &str)] = &[
        ("overloaded_error", Reason::Overloaded, "anthropic.overloaded_error"),
        ("rate_limit_error", Reason::RateLimit, "anthropic.rate_limit_error"),
        ("billing_error", Reason::Billing, "anthropic.billing_error"),
        ("authentication_error", Reason::Auth, "anthropic.authentication_error"),
        ("permission_error", Reason::Auth, "anthropic.permission_error"),
        ("not_found_error", Reason::ModelNotFound, "anthropic.not_found_error"),
        ("request_too_large", Reason::ContextOverflow, "anthropic.request_too_large"),
        ("api_error", Reason::ServerError, "anthropic.api_error"),
    ];
    by_code(ev, TYPES)
}
