//! The text a user reads when a call fails: the final error, per provider, never a bare
//! "no API key".

use super::table::Decision;
use super::Engine;
use crate::timefmt;
use crate::types::*;

impl Engine {
    /// What the caller is told when `action` ends the call: its final error, or its reasoning.
    pub fn error_of(&self, action: &Action, now: u64) -> FinalError {
        action.error.clone().unwrap_or_else(|| FinalError {
            reason: action.classified.reason,
            message: action.why.clone(),
            retry_at_ms: None,
            providers: self.chain(now).statuses(),
        })
    }

    pub(super) fn final_error(&self, c: &Classified, from: &Route, d: &Decision, now: u64) -> FinalError {
        let chain = self.chain(now);
        let providers = chain.statuses();
        // A route usable right now was left by this call; only a later time tells when to come back.
        let retry_at_ms = chain.earliest(|_| true).map(|(at, _)| at).filter(|at| *at > now);
        let headline = match c.reason {
            Reason::AuthPermanent | Reason::Auth => format!(
                "{}: credential {} key appears invalid or expired ({}): replace it or add a backup key",
                from.provider, from.credential, c.message
            ),
            Reason::Billing => format!(
                "{}: credential {} has a billing problem ({}): add credit or a backup key",
                from.provider, from.credential, c.message
            ),
            Reason::BadRequest | Reason::ContentFilter => {
                format!("{} rejected the request ({}): {}", from.provider, c.message, c.reason.as_str())
            }
            _ => format!("{} failed: {}", from.label(), c.message),
        };
        let per: Vec<String> = providers.iter().map(|p| format!("{}/{}: {}", p.provider, p.model, p.summary)).collect();
        let when = retry_at_ms.map(|t| format!(" Try again at {}.", timefmt::rfc3339(t))).unwrap_or_default();
        FinalError {
            reason: c.reason,
            message: format!("{} Gave up: {} Routes: {}{when}", sentence(&headline), sentence(&d.why), sentence(&per.join(" | "))),
            retry_at_ms,
            providers,
        }
    }

    pub(super) fn no_route_error(&self, no_route: NoRoute, now: u64) -> FinalError {
        let statuses = &no_route.providers;
        let reason = statuses.iter().flat_map(|p| p.credentials.iter()).filter_map(|c| c.last_reason).next().unwrap_or(
            if statuses.iter().all(|p| p.credentials.iter().all(|c| c.state == CredentialState::Missing)) {
                Reason::AuthPermanent
            } else {
                Reason::Unknown
            },
        );
        let when = match no_route.earliest_ms {
            Some(t) if t > now => format!(" (in {}, beyond the call's wait budget)", timefmt::duration(t - now)),
            _ => String::new(),
        };
        FinalError {
            reason,
            message: format!("{}{when}", no_route.message),
            retry_at_ms: no_route.earliest_ms,
            providers: no_route.providers,
        }
    }
}

/// Ends a clause with one full stop: provider messages often bring their own.
fn sentence(s: &str) -> String {
    if s.ends_with('.') {
        s.to_string()
    } else {
        format!("{s}.")
    }
}

/// `primary`, `fallback 1/2`
pub(super) fn position_name(position: u32, chain_len: usize) -> String {
    if position == 0 {
        "primary".to_string()
    } else {
        cat!("fallback ", Decimal::of(position.into()), "/", Decimal::of((chain_len - 1) as u64))
    }
}
