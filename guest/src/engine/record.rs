//! Writing a failure into the state where it lives: the key's record in the pool, the route's
//! health and the provider's retry budget.

use super::{event, label, Engine};
use crate::env::Env;
use crate::pool::{cooldown_word, CredentialRecord};
use crate::timefmt;
use crate::types::*;

impl Engine {
    /// Writes the failure into credential or route state; a second auth failure of a key turns
    /// `auth` into `auth-permanent`.
    pub(super) fn record_failure(&mut self, route: &Route, mut c: Classified, now: u64, env: &mut dyn Env) -> Classified {
        let cd = self.config.cooldown;
        let rec = self.pool.record_mut(&route.credential);
        rec.last_reason = Some(c.reason);
        rec.last_error = Some(c.message.clone());
        rec.last_error_ms = Some(now);
        let cool = |rec: &mut CredentialRecord, until: u64, reason: Reason| {
            let until = until.max(rec.cooldown_until_ms.unwrap_or(0));
            rec.cooldown_until_ms = Some(until);
            rec.cooldown_reason = Some(reason);
            until
        };
        match c.reason {
            Reason::RateLimit => {
                let until = cool(rec, now.saturating_add(c.retry_after_ms.unwrap_or(cd.rate_limit_ms)), Reason::RateLimit);
                env.emit(event(
                    EventKind::CredentialCooldown,
                    now,
                    Some(route.clone()),
                    "pool.rate-limit-cooldown",
                    cat!(
                        route.provider,
                        " credential ",
                        route.credential,
                        " rate-limited until ",
                        timefmt::rfc3339(until),
                        " (",
                        c.message,
                        ")"
                    ),
                ));
            }
            Reason::QuotaExhausted | Reason::Billing => {
                let rest = if c.reason == Reason::Billing { cd.billing_ms } else { c.retry_after_ms.unwrap_or(cd.quota_ms) };
                let until = cool(rec, now.saturating_add(rest), c.reason);
                env.emit(event(
                    EventKind::CredentialCooldown,
                    now,
                    Some(route.clone()),
                    "pool.cooldown",
                    cat!(
                        route.provider,
                        " credential ",
                        route.credential,
                        " in ",
                        cooldown_word(Some(c.reason)),
                        " cooldown until ",
                        timefmt::rfc3339(until),
                        " (",
                        c.message,
                        ")"
                    ),
                ));
            }
            Reason::Auth | Reason::AuthPermanent => {
                rec.auth_failures = rec.auth_failures.saturating_add(1);
                if c.reason == Reason::Auth && rec.auth_failures > self.config.retry.auth_fresh_retries {
                    c.reason = Reason::AuthPermanent;
                    c.retryable = false;
                    c.rule = format!("{}+policy.auth-repeated", c.rule);
                }
                if c.reason == Reason::AuthPermanent {
                    rec.dead = true;
                    rec.last_reason = Some(Reason::AuthPermanent);
                    env.emit(event(
                        EventKind::CredentialDead,
                        now,
                        Some(route.clone()),
                        "pool.dead",
                        format!(
                            "{} credential {}: key appears invalid or expired ({}): replace it or add a backup key",
                            route.provider, route.credential, c.message
                        ),
                    ));
                }
            }
            _ => {}
        }
        let t = if c.reason.is_provider_side() {
            self.budgets.record_failure(&route.provider, &self.config.retry_budget);
            self.health.record_failure(&label(&self.labels, route), now, &c.message, &self.config.health)
        } else {
            self.health.record_answer(&label(&self.labels, route), now, false, &c.message, &self.config.health)
        };
        self.circuit_event(t, route, now, env);
        c
    }
}
