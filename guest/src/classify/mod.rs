//! Failure classification: what a failed response or transport error means.
//!
//! Interface used by the rest of the policy (keep stable):
//! - `Family` (parse/infer/names/default_auth) picks the provider-specific rules.
//! - `classify(family, &Failure) -> Classified`, pure and bounded in time for any input.
//! - `succeeded(&HttpResponse)`: a 2xx whose body is not an error (a stream's error event).
//!
//! Where to look: `generic.rs` (what a bare status means), `families/<family>.rs` (what a
//! provider means by its statuses and codes), `limits.rs` (billing and usage windows, shared by
//! all providers), `signals.rs` (the other codes and phrases shared by all providers),
//! `retry_after.rs` (how long to wait), `evidence.rs` (reading the body once) and `framing.rs`
//! (errors inside event streams and other framings).
//! Order of evaluation: proxy HTML pages → billing and usage windows → family → signals →
//! generic status.

mod clock;
mod evidence;
mod families;
mod family;
mod framing;
mod generic;
mod json;
mod limits;
mod phrases;
mod retry_after;
mod signals;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod tests;

pub use evidence::succeeded;
pub use family::Family;

use crate::types::{Classified, Failure, Reason, TransportFailure, TransportKind};
use evidence::Evidence;

/// Only this much of a body is read: enough for every provider's error envelope.
pub const BODY_PREFIX: usize = 64 * 1024;

/// A rule's finding: the reason and the dotted name of the rule, e.g. `gemini.429-per-day`.
pub struct Hit {
    pub reason: Reason,
    pub rule: String,
}

pub fn classify(family: Family, failure: &Failure) -> Classified {
    match failure {
        Failure::Transport(t) => transport(t),
        Failure::Http(resp) => {
            let ev = Evidence::read(resp);
            let Hit { reason, rule } = if ev.html {
                generic::proxy_page(&ev)
            } else {
                limits::decisive(&ev)
                    .or_else(|| families::refine(family, &ev))
                    .or_else(|| signals::classify(&ev))
                    .unwrap_or_else(|| generic::status(&ev))
            };
            let explicit = retry_after::explicit(&ev);
            let reset = || retry_after::reset(&ev, families::local_offset(family));
            let wait = match reason {
                // A used-up window rests until it resets, even when a shorter retry-after comes along.
                Reason::QuotaExhausted => explicit.max(reset()),
                Reason::RateLimit => explicit.or_else(reset),
                _ => explicit,
            };
            verdict(reason, wait, rule, ev.summary())
        }
    }
}

fn transport(t: &TransportFailure) -> Classified {
    let timed_out = t.kind.is_timeout()
        || (t.kind == TransportKind::Other && ["timed out", "timeout"].iter().any(|w| t.message.to_lowercase().contains(w)));
    let reason = match t.kind {
        _ if timed_out => Reason::Timeout,
        TransportKind::StreamMalformed => Reason::ServerError,
        _ => Reason::Connection,
    };
    let message = evidence::bounded(&format!("{}: {}", t.kind.as_str(), t.message));
    verdict(reason, None, format!("transport.{}", t.kind.as_str()), message)
}

/// The flags follow from the reason; only the reason, timing and wording vary by rule.
pub fn verdict(reason: Reason, retry_after_ms: Option<u64>, rule: String, message: String) -> Classified {
    use Reason::*;
    let retryable = matches!(reason, Auth | RateLimit | Overloaded | ServerError | Timeout | Connection | Unknown);
    let rotate_credential = matches!(reason, Auth | AuthPermanent | Billing | RateLimit | QuotaExhausted);
    let fall_back = !matches!(reason, BadRequest | ContentFilter);
    let message = crate::redact::mask(message, matches!(reason, Auth | AuthPermanent));
    Classified { reason, retryable, rotate_credential, fall_back, retry_after_ms, rule, message }
}
