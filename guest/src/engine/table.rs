//! The decision table (README "Policy behaviour"): what to do after a failure, as a function of
//! the state it reads (`Table`), the classified failure and the call's progress. It changes
//! nothing but the call's progress and the jitter generator; the engine records and announces.

use super::text::position_name;
use super::{event, label};
use crate::budget::Budgets;
use crate::chain::Chain;
use crate::config::Config;
use crate::health::{Admission, Health};
use crate::retry::{backoff_ms, Rng};
use crate::timefmt;
use crate::types::*;

/// What the table reads: the config and the state as it is now.
pub(super) struct Table<'a> {
    pub config: &'a Config,
    pub chain: Chain<'a>,
    pub health: &'a Health,
    pub budgets: &'a Budgets,
    pub labels: &'a [String],
}

/// What a decision rule chose, before it is written up as an `Action`.
pub(super) struct Decision {
    pub kind: ActionKind,
    pub route: Option<Route>,
    pub delay_ms: u64,
    pub fresh_connection: bool,
    pub rule: &'static str,
    pub why: String,
    /// An event the decision asks to be emitted with it (a refused retry).
    pub notice: Option<Event>,
}

impl Decision {
    pub fn to(kind: ActionKind, route: Route, rule: &'static str, why: String) -> Decision {
        Decision { kind, route: Some(route), delay_ms: 0, fresh_connection: false, rule, why, notice: None }
    }
    pub fn give_up(rule: &'static str, why: String) -> Decision {
        Decision { kind: ActionKind::GiveUp, route: None, delay_ms: 0, fresh_connection: false, rule, why, notice: None }
    }
}

/// The rule table: what to do next for each reason (README: "Policy behaviour").
pub(super) fn decide(t: &Table, rng: &mut Rng, route: &Route, c: &Classified, p: &mut CallProgress, now: u64) -> Decision {
    let retry = t.config.retry;
    if p.attempts >= retry.max_attempts {
        return Decision::give_up(
            "budget.attempts",
            format!("{} attempts made, the call's limit (retry.max_attempts = {})", p.attempts, retry.max_attempts),
        );
    }
    if let Some(deadline) = p.deadline_ms.filter(|d| now >= *d) {
        return Decision::give_up(
            "deadline.passed",
            format!("the call's deadline ({}) has passed after {} attempts", timefmt::rfc3339(deadline), p.attempts),
        );
    }
    let chain = &t.chain;
    let rotate = |rule: &'static str, why: &str| -> Option<Decision> {
        let provider = chain.config.provider(&route.provider)?;
        let id = chain.pool.pick(provider, now, Some(&route.credential))?;
        let why = cat!(why, "; rotating from credential ", route.credential, " to ", id, " at once");
        let to =
            Route { provider: route.provider.clone(), model: route.model.clone(), credential: id.to_string(), position: route.position };
        Some(Decision::to(ActionKind::Rotate, to, rule, why))
    };
    match c.reason {
        Reason::RateLimit => {
            if let Some(d) = rotate("rate-limit.rotate", "rate-limited") {
                return d;
            }
            if let Some(ra) = c.retry_after_ms.filter(|ra| *ra <= retry.short_retry_after_ms) {
                if p.waited_ms.saturating_add(ra) <= retry.max_wait_ms && before_deadline(p, now, ra) {
                    return Decision {
                        kind: ActionKind::Retry,
                        route: Some(route.clone()),
                        delay_ms: ra,
                        fresh_connection: false,
                        rule: "rate-limit.short-wait",
                        why: format!(
                            "rate-limited with no other key; retry-after {ra} ms is within retry.short_retry_after_ms = {} ms",
                            retry.short_retry_after_ms
                        ),
                        notice: None,
                    };
                }
            }
            let why = match c.retry_after_ms {
                Some(ra) => format!("rate-limited, no other key, retry-after {ra} ms is too long to wait"),
                None => "rate-limited, no other key and no retry-after".to_string(),
            };
            fall_back(t, route, c, p, now, "rate-limit.fall-back", why)
        }
        Reason::QuotaExhausted | Reason::Billing => {
            let what = if c.reason == Reason::Billing { "billing problem" } else { "quota exhausted" };
            rotate("quota.rotate", what).unwrap_or_else(|| {
                fall_back(
                    t,
                    route,
                    c,
                    p,
                    now,
                    "quota.fall-back",
                    format!("{what} on the only usable key; no retry of a key that will not reset soon"),
                )
            })
        }
        Reason::Auth => {
            if let Some(d) = rotate("auth.rotate", "authentication failed") {
                return d;
            }
            Decision {
                kind: ActionKind::Retry,
                route: Some(route.clone()),
                delay_ms: 0,
                fresh_connection: true,
                rule: "auth.fresh-retry",
                why: format!(
                    "authentication failed on the only key {}; one immediate retry on a fresh connection, no backoff",
                    route.credential
                ),
                notice: None,
            }
        }
        Reason::AuthPermanent => rotate("auth-permanent.rotate", "key invalid or expired").unwrap_or_else(|| {
            fall_back(
                t,
                route,
                c,
                p,
                now,
                "auth-permanent.fall-back",
                format!("credential {} is dead (key appears invalid or expired)", route.credential),
            )
        }),
        r if r.is_provider_side() || r == Reason::Unknown => {
            // A silent route costs one timeout: waiting on it again only multiplies the wait.
            let other = |pos: u32| pos != route.position && !p.left_positions.contains(&pos);
            if r == Reason::Timeout && chain.first_usable(other).is_some() {
                p.left_positions.push(route.position);
                return fall_back(
                    t,
                    route,
                    c,
                    p,
                    now,
                    "timeout.fall-back",
                    format!("{}: the route was silent; another route can answer, so no retry of this one", c.message),
                );
            }
            if t.health.admission(&label(t.labels, route), now, &t.config.health) != Admission::Yes {
                p.left_positions.push(route.position);
                return fall_back(t, route, c, p, now, "health.circuit-open", format!("{}: the route's circuit is open", r.as_str()));
            }
            let budget = &t.config.retry_budget;
            if p.route_retries < retry.route_retries && !t.budgets.allows_retry(&route.provider, budget) {
                let state = t.budgets.describe(&route.provider, budget);
                let notice = event(
                    EventKind::RetryBudgetExhausted,
                    now,
                    Some(route.clone()),
                    "budget.exhausted",
                    cat!(route.provider, ": retry budget exhausted (", state, "); no retry, falling back at once"),
                );
                p.left_positions.push(route.position);
                let d = fall_back(t, route, c, p, now, "budget.exhausted", cat!(r.as_str(), "; retry budget exhausted (", state, ")"));
                return Decision { notice: Some(notice), ..d };
            }
            if p.route_retries < retry.route_retries {
                let backoff = backoff_ms(&retry, p.route_retries, rng);
                let delay = backoff.max(c.retry_after_ms.unwrap_or(0));
                if p.waited_ms.saturating_add(delay) <= retry.max_wait_ms && before_deadline(p, now, delay) {
                    p.route_retries += 1;
                    return Decision {
                        kind: ActionKind::Retry,
                        route: Some(route.clone()),
                        delay_ms: delay,
                        fresh_connection: matches!(r, Reason::Connection | Reason::Timeout),
                        rule: "provider.backoff",
                        why: cat!(
                            r.as_str(),
                            " is the provider's trouble, not the key's: same key, backoff retry ",
                            Decimal::of(p.route_retries.into()),
                            "/",
                            Decimal::of(retry.route_retries.into()),
                            " after ",
                            Decimal::of(delay),
                            " ms (jittered backoff ",
                            Decimal::of(backoff),
                            " ms",
                            c.retry_after_ms.map(|ra| cat!(", retry-after ", Decimal::of(ra), " ms")).unwrap_or_default(),
                            ")"
                        ),
                        notice: None,
                    };
                }
            }
            p.left_positions.push(route.position);
            let why = format!("{} after {} backoff retries (retry.route_retries = {})", r.as_str(), p.route_retries, retry.route_retries);
            fall_back(t, route, c, p, now, "provider.fall-back", why)
        }
        Reason::ContextOverflow | Reason::ModelNotFound => {
            p.left_positions.push(route.position);
            let rule = if c.reason == Reason::ContextOverflow { "context.fall-back" } else { "model.fall-back" };
            fall_back(t, route, c, p, now, rule, format!("{}: no retry of the same model", c.reason.as_str()))
        }
        Reason::ContentFilter if t.config.content_filter_fallback => {
            p.left_positions.push(route.position);
            fall_back(t, route, c, p, now, "content-filter.fall-back", "content filtered; content_filter_fallback is on".to_string())
        }
        _ => Decision::give_up("request.give-up", format!("{}: the request itself must change; no retry, no fallback", c.reason.as_str())),
    }
}

/// The first usable route other than this one and those the call left; else wait for the
/// earliest within the wait budget; else give up saying when to come back.
/// The first usable route other than this one and those the call left; else wait for the
/// earliest within the wait budget; else give up saying when to come back.
fn fall_back(t: &Table, route: &Route, c: &Classified, p: &mut CallProgress, now: u64, rule: &'static str, why: String) -> Decision {
    let chain = &t.chain;
    let window = |pos: u32| chain.config.chain[pos as usize].context_window;
    let current_window = window(route.position);
    let allowed = |pos: u32| {
        if p.left_positions.contains(&pos) {
            return false;
        }
        if c.reason == Reason::ContextOverflow {
            // Only a larger window helps; unknown windows get the benefit of the doubt.
            if let (Some(cur), Some(cand)) = (current_window, window(pos)) {
                return cand > cur;
            }
            return pos != route.position;
        }
        true
    };
    if let Some(to) = chain.first_usable(allowed) {
        p.route_retries = 0;
        let kind = if to.position == route.position { ActionKind::Rotate } else { ActionKind::FallBack };
        let why = cat!(
            why,
            "; using ",
            position_name(to.position, chain.len()),
            " ",
            to.provider,
            "/",
            to.model,
            " with credential ",
            to.credential
        );
        return Decision::to(kind, to, rule, why);
    }
    match chain.earliest(allowed) {
        Some((at, to)) if p.waited_ms.saturating_add(at - now) <= t.config.retry.max_wait_ms && before_deadline(p, now, at - now) => {
            p.route_retries = 0;
            let delay = at - now;
            Decision {
                kind: ActionKind::Wait,
                route: Some(to.clone()),
                delay_ms: delay,
                fresh_connection: false,
                rule: "chain.wait-earliest",
                why: format!(
                    "{why}; nothing is usable now; {}/{} becomes usable at {} in {delay} ms, within the wait budget ({} of {} ms left)",
                    to.provider,
                    to.model,
                    timefmt::rfc3339(at),
                    t.config.retry.max_wait_ms - p.waited_ms,
                    t.config.retry.max_wait_ms
                ),
                notice: None,
            }
        }
        Some((at, _)) => Decision::give_up(
            "chain.exhausted-wait-too-long",
            format!(
                "{why}; nothing else is usable now and the earliest route is usable only at {} (in {}), beyond the wait budget",
                timefmt::rfc3339(at),
                timefmt::duration(at - now)
            ),
        ),
        None => Decision::give_up("chain.exhausted", format!("{why}; no other route is usable and none will become usable by waiting")),
    }
}

/// Whether a wait of `delay` ms ends before the call's deadline (always, without one).
fn before_deadline(p: &CallProgress, now: u64, delay: u64) -> bool {
    p.deadline_ms.is_none_or(|d| now.saturating_add(delay) < d)
}
