//! The engine: one policy config plus its state, answering the host's decision points
//! (`select`, `on_failure`, `on_success`, `prepare`) and running the guest-driven `call` loop.
//! Each decision names the rule that fired and the numbers behind it.

use std::borrow::Cow;

/// Joins text pieces into a string allocated once at its final size. Decision messages are
/// built on every call, where `format!`'s machinery and regrowth showed in profiles.
macro_rules! cat {
    ($($piece:expr),+ $(,)?) => {
        [$(AsRef::<str>::as_ref(&$piece)),+].concat()
    };
}

use crate::chain::Chain;
use crate::classify::{self, Family};
use crate::config::Config;
use crate::env::Env;
use crate::budget::Budgets;
use crate::health::{Admission, Health, Transition};
use crate::pool::{cooldown_word, Pool};
use crate::retry::{backoff_ms, Rng};
use crate::snapshot::{Snapshot, SCHEMA};
use crate::timefmt;
use crate::types::*;

pub struct Engine {
    config: Config,
    pool: Pool,
    health: Health,
    budgets: Budgets,
    active_position: u32,
    /// Until this engine's first announcement: a fresh agent says it starts on a fallback even
    /// when the restored state already had it there.
    announced: bool,
    rng: Rng,
    /// `provider/model` per chain position, the key of a route's health: made once, not per call.
    labels: Vec<String>,
}

/// What a decision rule chose, before it is written up as an `Action`.
struct Decision {
    kind: ActionKind,
    route: Option<Route>,
    delay_ms: u64,
    fresh_connection: bool,
    rule: &'static str,
    why: String,
}

impl Decision {
    fn to(kind: ActionKind, route: Route, rule: &'static str, why: String) -> Decision {
        Decision { kind, route: Some(route), delay_ms: 0, fresh_connection: false, rule, why }
    }
    fn give_up(rule: &'static str, why: String) -> Decision {
        Decision { kind: ActionKind::GiveUp, route: None, delay_ms: 0, fresh_connection: false, rule, why }
    }
}

impl Engine {
    /// A bad config or snapshot is an error naming the field, never a panic.
    pub fn create(
        config_json: &str,
        state_json: Option<&str>,
        credentials: &[CredentialInfo],
        env: &mut dyn Env,
    ) -> Result<Engine, ConfigError> {
        let config = Config::parse(config_json)?;
        let snapshot = state_json.map(Snapshot::parse).transpose()?;
        let now = env.now_ms();
        let (mut pool, health, budgets, active_position, rng) = match snapshot {
            Some(s) => {
                let known = |id: &String| config.providers.values().any(|p| p.credentials.iter().any(|c| &c.id == id));
                let dropped: Vec<String> = s.credentials.keys().filter(|id| !known(id)).cloned().collect();
                if !dropped.is_empty() {
                    env.emit(event(EventKind::StateDropped, now, None, "state.unknown-credentials",
                        format!("snapshot state for credentials no longer in the config was dropped: {}", dropped.join(", "))));
                }
                let records = s.credentials.into_iter().filter(|(id, _)| known(id)).collect();
                let routes = s
                    .routes
                    .into_iter()
                    .filter(|(label, _)| config.chain.iter().any(|e| format!("{}/{}", e.provider, e.model) == *label))
                    .collect();
                let active = s.active_position.min(config.chain.len() as u32 - 1);
                let rng = match (s.rng, config.seed) {
                    (0, Some(seed)) => seed,
                    (0, None) => env.seed(),
                    (r, _) => r,
                };
                env.emit(event(EventKind::StateRestored, now, None, "state.restored",
                    format!("restored state saved at {} (schema {}{})", timefmt::rfc3339(s.saved_at_ms), s.schema,
                        if s.migrated_from > 0 { format!(", migrated from schema {}", s.migrated_from) } else { String::new() })));
                let tokens = s.budgets.into_iter().filter(|(p, _)| config.providers.contains_key(p)).collect();
                (Pool::new(records, s.cursors), Health { routes }, Budgets { tokens }, active, Rng(rng))
            }
            None => {
                let seed = config.seed.unwrap_or_else(|| env.seed());
                (Pool::default(), Health::default(), Budgets::default(), 0, Rng(seed))
            }
        };
        pool.set_present(known_credentials(&config, credentials), now);
        let labels = config.chain.iter().map(|e| format!("{}/{}", e.provider, e.model)).collect();
        Ok(Engine { config, pool, health, budgets, active_position, announced: false, rng, labels })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn chain(&self, now: u64) -> Chain<'_> {
        Chain { config: &self.config, pool: &self.pool, health: &self.health, labels: &self.labels, now }
    }

    pub fn set_credentials(&mut self, credentials: &[CredentialInfo], env: &mut dyn Env) {
        let now = env.now_ms();
        for r in self.pool.set_present(known_credentials(&self.config, credentials), now) {
            let what = if r.was_dead { "was dead or blocked; its new secret is tried again" } else { "has a new secret" };
            env.emit(event(EventKind::CredentialRestored, now, None, "pool.secret-replaced", format!("credential {} {what}", r.id)));
        }
    }

    /// The route to start with: the primary if usable, else the first usable fallback.
    pub fn select(&mut self, env: &mut dyn Env) -> Result<Route, NoRoute> {
        let now = env.now_ms();
        match self.chain(now).first_usable(|_| true) {
            Some(route) => {
                // A probe tells nothing yet: the route is announced once it answers (on-success).
                if !self.claim(&route, now, env) {
                    self.announce(&route, now, env);
                }
                Ok(route)
            }
            None => Err(self.chain(now).no_route()),
        }
    }

    /// A route handed to a call: when its circuit's break is over, this call is the one probe.
    /// Says whether it is.
    fn claim(&mut self, route: &Route, now: u64, env: &mut dyn Env) -> bool {
        let label = label(&self.labels, route);
        let probe = self.health.admission(&label, now, &self.config.health) == Admission::Probe;
        if probe {
            self.health.begin_probe(&label, now);
            env.emit(event(EventKind::CircuitHalfOpen, now, Some(route.clone()), "health.probe",
                format!("route {label}: the break is over; this call is the one probe (other calls keep skipping the route until it answers)")));
        }
        probe
    }

    fn circuit_event(&self, t: Option<Transition>, route: &Route, now: u64, env: &mut dyn Env) {
        match t {
            Some(Transition::Opened { until_ms, break_ms, why }) => env.emit(event(EventKind::CircuitOpened, now, Some(route.clone()), "health.circuit-opened",
                format!("route {} circuit opened for {} until {}: {why}", label(&self.labels, route), timefmt::duration(break_ms), timefmt::rfc3339(until_ms)))),
            Some(Transition::Closed { why }) => env.emit(event(EventKind::CircuitClosed, now, Some(route.clone()), "health.circuit-closed",
                format!("route {} circuit closed: {why}", label(&self.labels, route)))),
            None => {}
        }
    }

    /// Tell the user when the chain position in use changes (fallback taken, primary back).
    fn announce(&mut self, route: &Route, now: u64, env: &mut dyn Env) {
        let first = !std::mem::replace(&mut self.announced, true);
        if route.position == self.active_position && !(first && route.position != 0) {
            return;
        }
        let chain = self.chain(now);
        let (kind, rule, message) = if route.position == 0 && self.active_position == 0 {
            return;
        } else if route.position == 0 {
            let from = chain.label(self.active_position);
            (EventKind::PrimaryRestored, "chain.primary-restored",
             format!("Primary {} is usable again; returning from {from} to {}/{}", route.provider, route.provider, route.model))
        } else if first || route.position > self.active_position {
            (EventKind::FallbackActivated, "chain.fallback", chain.fallback_notice(0, route))
        } else {
            (EventKind::FallbackActivated, "chain.fallback-earlier",
             format!("Fallback {} is usable again; using fallback {}/{} {}/{}", route.position, route.position, chain.len() - 1, route.provider, route.model))
        };
        env.emit(event(EventKind::Notice, now, Some(route.clone()), rule, message.clone()));
        env.emit(event(kind, now, Some(route.clone()), rule, message));
        self.active_position = route.position;
    }

    pub fn on_success(&mut self, route: &Route, env: &mut dyn Env) {
        let now = env.now_ms();
        if self.config.provider(&route.provider).is_none() {
            return;
        }
        let t = self.health.record_answer(&label(&self.labels, route), now, true, "success", &self.config.health);
        self.circuit_event(t, route, now, env);
        self.budgets.record_success(&route.provider, &self.config.retry_budget);
        if let Some(rec) = self.pool.records.get_mut(&route.credential) {
            rec.auth_failures = 0;
        }
        if let Some(p) = self.config.provider(&route.provider) {
            let p = p.clone();
            self.pool.advance_cursor(&p, &route.credential);
        }
        self.announce(route, now, env);
    }

    pub fn family(&self, provider: &str) -> Family {
        self.config.provider(provider).map(|p| p.family).unwrap_or_else(|| Family::infer(provider))
    }

    /// The provider's time limits (the defaults for a provider not in the config).
    pub fn timeouts(&self, provider: &str) -> crate::config::Timeouts {
        self.config.provider(provider).map(|p| p.timeouts).unwrap_or_default()
    }

    /// The extra fields of a resume's prefilled message, when the provider can resume at all.
    pub fn resume_fields(&self, provider: &str) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.config.provider(provider).and_then(|p| p.resume.as_ref()).map(|r| &r.message_fields)
    }

    /// A usable route at `position` now (its circuit closed, a key available), if any.
    pub fn usable_now(&self, position: u32, now: u64) -> Option<Route> {
        self.chain(now).usable(position, None)
    }

    /// Every route's state, for a final error.
    pub fn statuses(&self, now: u64) -> Vec<ProviderStatus> {
        self.chain(now).statuses()
    }

    /// A failure written into credential and route state with no decision after it: a committed
    /// answer that broke off and will not be resumed still counts like its HTTP equivalent.
    pub fn record_failure_only(&mut self, route: &Route, failure: &Failure, env: &mut dyn Env) -> Classified {
        let now = env.now_ms();
        let classified = classify::classify(self.family(&route.provider), failure);
        if self.known_route(route).is_err() {
            return classified;
        }
        self.record_failure(route, classified, now, env)
    }

    /// Checks a route a host handed back: it must be one this config could have produced.
    fn known_route(&self, route: &Route) -> Result<(), String> {
        let entry = self
            .config
            .chain
            .get(route.position as usize)
            .ok_or_else(|| format!("chain position {} does not exist (chain has {})", route.position, self.config.chain.len()))?;
        if entry.provider != route.provider || entry.model != route.model {
            return Err(format!("position {} is {}/{}, not {}/{}", route.position, entry.provider, entry.model, route.provider, route.model));
        }
        let provider = self.config.provider(&route.provider).ok_or_else(|| format!("unknown provider {}", route.provider))?;
        if !provider.credentials.iter().any(|c| c.id == route.credential) {
            return Err(format!("credential {} is not one of {}'s", route.credential, route.provider));
        }
        Ok(())
    }

    pub fn on_failure(&mut self, route: &Route, failure: &Failure, progress: Option<CallProgress>, env: &mut dyn Env) -> Action {
        let now = env.now_ms();
        let classified = classify::classify(self.family(&route.provider), failure);
        let mut progress = progress.unwrap_or_default();
        progress.attempts = progress.attempts.saturating_add(1);
        if let Err(problem) = self.known_route(route) {
            let decision = Decision::give_up("host.unknown-route", format!("the host reported a failure on a route this policy did not give: {problem}"));
            return self.finish(decision, classified, progress, route, now, env);
        }
        let classified = self.record_failure(route, classified, now, env);
        let decision = self.decide(route, &classified, &mut progress, now, env);
        if let Some(next) = &decision.route {
            if decision.kind != ActionKind::Wait {
                self.claim(next, now, env);
            }
        }
        self.finish(decision, classified, progress, route, now, env)
    }

    /// Writes the failure into credential or route state; a second auth failure of a key turns
    /// `auth` into `auth-permanent`.
    fn record_failure(&mut self, route: &Route, mut c: Classified, now: u64, env: &mut dyn Env) -> Classified {
        let cd = self.config.cooldown;
        let rec = self.pool.record_mut(&route.credential);
        rec.last_reason = Some(c.reason);
        rec.last_error = Some(c.message.clone());
        rec.last_error_ms = Some(now);
        let cool = |rec: &mut crate::pool::CredentialRecord, until: u64, reason: Reason| {
            let until = until.max(rec.cooldown_until_ms.unwrap_or(0));
            rec.cooldown_until_ms = Some(until);
            rec.cooldown_reason = Some(reason);
            until
        };
        match c.reason {
            Reason::RateLimit => {
                let until = cool(rec, now.saturating_add(c.retry_after_ms.unwrap_or(cd.rate_limit_ms)), Reason::RateLimit);
                env.emit(event(EventKind::CredentialCooldown, now, Some(route.clone()), "pool.rate-limit-cooldown",
                    cat!(route.provider, " credential ", route.credential, " rate-limited until ", timefmt::rfc3339(until), " (", c.message, ")")));
            }
            Reason::QuotaExhausted | Reason::Billing => {
                let rest = if c.reason == Reason::Billing { cd.billing_ms } else { c.retry_after_ms.unwrap_or(cd.quota_ms) };
                let until = cool(rec, now.saturating_add(rest), c.reason);
                env.emit(event(EventKind::CredentialCooldown, now, Some(route.clone()), "pool.cooldown",
                    cat!(route.provider, " credential ", route.credential, " in ", cooldown_word(Some(c.reason)), " cooldown until ",
                        timefmt::rfc3339(until), " (", c.message, ")")));
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
                    env.emit(event(EventKind::CredentialDead, now, Some(route.clone()), "pool.dead",
                        format!("{} credential {}: key appears invalid or expired ({}): replace it or add a backup key",
                            route.provider, route.credential, c.message)));
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

    /// The rule table: what to do next for each reason (README: "Policy behaviour").
    fn decide(&mut self, route: &Route, c: &Classified, p: &mut CallProgress, now: u64, env: &mut dyn Env) -> Decision {
        let retry = self.config.retry;
        if p.attempts >= retry.max_attempts {
            return Decision::give_up("budget.attempts", format!("{} attempts made, the call's limit (retry.max_attempts = {})", p.attempts, retry.max_attempts));
        }
        if let Some(deadline) = p.deadline_ms.filter(|d| now >= *d) {
            return Decision::give_up("deadline.passed", format!("the call's deadline ({}) has passed after {} attempts", timefmt::rfc3339(deadline), p.attempts));
        }
        let chain = self.chain(now);
        let rotate = |rule: &'static str, why: &str| -> Option<Decision> {
            let provider = chain.config.provider(&route.provider)?;
            let id = chain.pool.pick(provider, now, Some(&route.credential))?;
            let why = cat!(why, "; rotating from credential ", route.credential, " to ", id, " at once");
            let to = Route { provider: route.provider.clone(), model: route.model.clone(), credential: id.to_string(), position: route.position };
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
                            why: format!("rate-limited with no other key; retry-after {ra} ms is within retry.short_retry_after_ms = {} ms", retry.short_retry_after_ms),
                        };
                    }
                }
                let why = match c.retry_after_ms {
                    Some(ra) => format!("rate-limited, no other key, retry-after {ra} ms is too long to wait"),
                    None => "rate-limited, no other key and no retry-after".to_string(),
                };
                self.fall_back(route, c, p, now, "rate-limit.fall-back", why)
            }
            Reason::QuotaExhausted | Reason::Billing => {
                let what = if c.reason == Reason::Billing { "billing problem" } else { "quota exhausted" };
                rotate("quota.rotate", what)
                    .unwrap_or_else(|| self.fall_back(route, c, p, now, "quota.fall-back", format!("{what} on the only usable key; no retry of a key that will not reset soon")))
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
                    why: format!("authentication failed on the only key {}; one immediate retry on a fresh connection, no backoff", route.credential),
                }
            }
            Reason::AuthPermanent => rotate("auth-permanent.rotate", "key invalid or expired").unwrap_or_else(|| {
                self.fall_back(route, c, p, now, "auth-permanent.fall-back", format!("credential {} is dead (key appears invalid or expired)", route.credential))
            }),
            r if r.is_provider_side() || r == Reason::Unknown => {
                // A silent route costs one timeout: waiting on it again only multiplies the wait.
                let other = |pos: u32| pos != route.position && !p.left_positions.contains(&pos);
                if r == Reason::Timeout && chain.first_usable(other).is_some() {
                    p.left_positions.push(route.position);
                    return self.fall_back(route, c, p, now, "timeout.fall-back", format!("{}: the route was silent; another route can answer, so no retry of this one", c.message));
                }
                if self.health.admission(&label(&self.labels, route), now, &self.config.health) != Admission::Yes {
                    p.left_positions.push(route.position);
                    return self.fall_back(route, c, p, now, "health.circuit-open", format!("{}: the route's circuit is open", r.as_str()));
                }
                let budget = &self.config.retry_budget;
                if p.route_retries < retry.route_retries && !self.budgets.allows_retry(&route.provider, budget) {
                    let state = self.budgets.describe(&route.provider, budget);
                    env.emit(event(EventKind::RetryBudgetExhausted, now, Some(route.clone()), "budget.exhausted",
                        cat!(route.provider, ": retry budget exhausted (", state, "); no retry, falling back at once")));
                    p.left_positions.push(route.position);
                    return self.fall_back(route, c, p, now, "budget.exhausted", cat!(r.as_str(), "; retry budget exhausted (", state, ")"));
                }
                if p.route_retries < retry.route_retries {
                    let backoff = backoff_ms(&retry, p.route_retries, &mut self.rng);
                    let delay = backoff.max(c.retry_after_ms.unwrap_or(0));
                    if p.waited_ms.saturating_add(delay) <= retry.max_wait_ms && before_deadline(p, now, delay) {
                        p.route_retries += 1;
                        return Decision {
                            kind: ActionKind::Retry,
                            route: Some(route.clone()),
                            delay_ms: delay,
                            fresh_connection: matches!(r, Reason::Connection | Reason::Timeout),
                            rule: "provider.backoff",
                            why: cat!(r.as_str(), " is the provider's trouble, not the key's: same key, backoff retry ",
                                Decimal::of(p.route_retries.into()), "/", Decimal::of(retry.route_retries.into()), " after ",
                                Decimal::of(delay), " ms (jittered backoff ", Decimal::of(backoff), " ms",
                                c.retry_after_ms.map(|ra| cat!(", retry-after ", Decimal::of(ra), " ms")).unwrap_or_default(), ")"),
                        };
                    }
                }
                p.left_positions.push(route.position);
                let why = format!("{} after {} backoff retries (retry.route_retries = {})", r.as_str(), p.route_retries, retry.route_retries);
                self.fall_back(route, c, p, now, "provider.fall-back", why)
            }
            Reason::ContextOverflow | Reason::ModelNotFound => {
                p.left_positions.push(route.position);
                let rule = if c.reason == Reason::ContextOverflow { "context.fall-back" } else { "model.fall-back" };
                self.fall_back(route, c, p, now, rule, format!("{}: no retry of the same model", c.reason.as_str()))
            }
            Reason::ContentFilter if self.config.content_filter_fallback => {
                p.left_positions.push(route.position);
                self.fall_back(route, c, p, now, "content-filter.fall-back", "content filtered; content_filter_fallback is on".to_string())
            }
            _ => Decision::give_up("request.give-up", format!("{}: the request itself must change; no retry, no fallback", c.reason.as_str())),
        }
    }

    /// The first usable route other than this one and those the call left; else wait for the
    /// earliest within the wait budget; else give up saying when to come back.
    fn fall_back(&mut self, route: &Route, c: &Classified, p: &mut CallProgress, now: u64, rule: &'static str, why: String) -> Decision {
        let chain = self.chain(now);
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
            let why = cat!(why, "; using ", position_name(to.position, chain.len()), " ", to.provider, "/", to.model, " with credential ", to.credential);
            return Decision::to(kind, to, rule, why);
        }
        match chain.earliest(allowed) {
            Some((at, to)) if p.waited_ms.saturating_add(at - now) <= self.config.retry.max_wait_ms && before_deadline(p, now, at - now) => {
                p.route_retries = 0;
                let delay = at - now;
                Decision {
                    kind: ActionKind::Wait,
                    route: Some(to.clone()),
                    delay_ms: delay,
                    fresh_connection: false,
                    rule: "chain.wait-earliest",
                    why: format!("{why}; nothing is usable now; {}/{} becomes usable at {} in {delay} ms, within the wait budget ({} of {} ms left)",
                        to.provider, to.model, timefmt::rfc3339(at), self.config.retry.max_wait_ms - p.waited_ms, self.config.retry.max_wait_ms),
                }
            }
            Some((at, _)) => Decision::give_up("chain.exhausted-wait-too-long",
                format!("{why}; nothing else is usable now and the earliest route is usable only at {} (in {}), beyond the wait budget", timefmt::rfc3339(at), timefmt::duration(at - now))),
            None => Decision::give_up("chain.exhausted", format!("{why}; no other route is usable and none will become usable by waiting")),
        }
    }

    /// Writes a decision up as an `Action` with its final error and events.
    fn finish(&mut self, d: Decision, classified: Classified, mut progress: CallProgress, from: &Route, now: u64, env: &mut dyn Env) -> Action {
        if matches!(d.kind, ActionKind::Retry | ActionKind::Wait) {
            progress.waited_ms = progress.waited_ms.saturating_add(d.delay_ms);
        }
        let mut error = None;
        match d.kind {
            ActionKind::GiveUp => {
                let e = self.final_error(&classified, from, &d, now);
                env.emit(event(EventKind::GaveUp, now, Some(from.clone()), d.rule, e.message.clone()));
                error = Some(e);
            }
            ActionKind::Retry | ActionKind::Wait => {
                env.emit(event(EventKind::RetryScheduled, now, d.route.clone(), d.rule, d.why.clone()));
            }
            // Only a move of the chain position in use is news: after a failed probe of the
            // primary the call falls back to the fallback already in use, and says nothing.
            ActionKind::FallBack => {
                if let Some(to) = d.route.as_ref().filter(|to| to.position != self.active_position) {
                    let chain = self.chain(now);
                    let who = if from.position == 0 { cat!("Primary ", from.provider) } else { cat!("Fallback ", Decimal::of(from.position.into()), " ", from.provider) };
                    let msg = cat!(who, " failed (", classified.message, "); using ", position_name(to.position, chain.len()), " ", to.provider, "/", to.model);
                    env.emit(event(EventKind::Notice, now, Some(to.clone()), d.rule, msg.clone()));
                    env.emit(event(EventKind::FallbackActivated, now, Some(to.clone()), d.rule, msg));
                    self.active_position = to.position;
                }
            }
            ActionKind::Rotate => {}
        }
        Action {
            kind: d.kind,
            route: d.route,
            delay_ms: d.delay_ms,
            fresh_connection: d.fresh_connection,
            classified,
            progress,
            rule: d.rule.to_string(),
            why: d.why,
            error,
        }
    }

    fn final_error(&self, c: &Classified, from: &Route, d: &Decision, now: u64) -> FinalError {
        let chain = self.chain(now);
        let providers = chain.statuses();
        // A route usable right now was left by this call; only a later time tells when to come back.
        let retry_at_ms = chain.earliest(|_| true).map(|(at, _)| at).filter(|at| *at > now);
        let headline = match c.reason {
            Reason::AuthPermanent | Reason::Auth => format!(
                "{}: credential {} key appears invalid or expired ({}): replace it or add a backup key",
                from.provider, from.credential, c.message
            ),
            Reason::Billing => format!("{}: credential {} has a billing problem ({}): add credit or a backup key", from.provider, from.credential, c.message),
            Reason::BadRequest | Reason::ContentFilter => format!("{} rejected the request ({}): {}", from.provider, c.message, c.reason.as_str()),
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

    /// Rewrites a request for a route: URL under the provider's base, `model` in the JSON body,
    /// caller-supplied auth headers removed (the host adds the real one).
    pub fn prepare(&self, route: &Route, request: &Request) -> Result<Outbound, String> {
        self.known_route(route)?;
        let provider = self.config.provider(&route.provider).ok_or_else(|| format!("unknown provider {}", route.provider))?;
        let path = request.path.trim_start_matches('/');
        let url = if path.is_empty() { provider.base_url.clone() } else { format!("{}/{path}", provider.base_url) };
        let body = match serde_json::from_slice::<serde_json::Value>(&request.body) {
            Ok(serde_json::Value::Object(mut obj)) => {
                obj.insert("model".into(), serde_json::Value::String(route.model.clone()));
                serde_json::to_vec(&obj).map_err(|e| format!("cannot re-encode the request body: {e}"))?
            }
            _ => request.body.clone(),
        };
        let auth_names = ["authorization", "x-api-key", "api-key", "x-goog-api-key", &provider.auth.header.to_ascii_lowercase()];
        let mut headers: Vec<Header> = request
            .headers
            .iter()
            .filter(|h| {
                let n = h.name.to_ascii_lowercase();
                !auth_names.contains(&n.as_str()) && n != "content-length" && n != "host"
            })
            .cloned()
            .collect();
        for (name, value) in &provider.headers {
            headers.retain(|h| !h.name.eq_ignore_ascii_case(name));
            headers.push(Header { name: name.clone(), value: value.clone() });
        }
        Ok(Outbound {
            route: route.clone(),
            url,
            method: if request.method.is_empty() { "POST".into() } else { request.method.clone() },
            headers,
            body,
            secret_header: provider.auth.header.clone(),
            secret_prefix: provider.auth.prefix.clone(),
            connect_timeout_ms: provider.timeouts.connect_ms,
            read_timeout_ms: provider.timeouts.read_ms,
            fresh_connection: false,
        })
    }

    /// How a call starts: the selected route now, else a wait for the earliest route when it
    /// fits the wait budget, else the final error. Host-driven loops and `call` share it.
    pub fn start_call(&mut self, env: &mut dyn Env) -> Result<Start, FinalError> {
        self.start_call_within(env, None)
    }

    /// `start_call` for a call with a deadline: a wait for the earliest route must end before it.
    pub fn start_call_within(&mut self, env: &mut dyn Env, deadline_ms: Option<u64>) -> Result<Start, FinalError> {
        let now = env.now_ms();
        match self.select(env) {
            Ok(route) => Ok(Start {
                route,
                delay_ms: 0,
                progress: CallProgress::default(),
                rule: "chain.select".into(),
                why: "the first usable route of the chain".into(),
            }),
            Err(no_route) => match no_route.earliest_ms {
                Some(at) if at > now && at - now <= self.config.retry.max_wait_ms && deadline_ms.is_none_or(|d| at < d) => {
                    let chain = self.chain(now);
                    let Some((_, route)) = chain.earliest(|_| true) else {
                        return Err(self.no_route_error(no_route, now));
                    };
                    let delay = at - now;
                    let why = format!(
                        "nothing is usable now; {}/{} becomes usable at {} in {delay} ms, within the wait budget of {} ms",
                        route.provider, route.model, timefmt::rfc3339(at), self.config.retry.max_wait_ms
                    );
                    env.emit(event(EventKind::RetryScheduled, now, Some(route.clone()), "chain.wait-earliest", why.clone()));
                    self.announce(&route, now, env);
                    Ok(Start {
                        route,
                        delay_ms: delay,
                        progress: CallProgress { waited_ms: delay, ..Default::default() },
                        rule: "chain.wait-earliest".into(),
                        why,
                    })
                }
                _ => {
                    let error = self.no_route_error(no_route, now);
                    env.emit(event(EventKind::GaveUp, now, None, "chain.no-route", error.message.clone()));
                    Err(error)
                }
            },
        }
    }

    /// The guest-driven loop: every send, sleep and decision of one call.
    pub fn call(&mut self, request: &Request, env: &mut dyn Env) -> Result<CallSuccess, CallFailure> {
        let mut attempts: Vec<Attempt> = Vec::new();
        let start = self.start_call(env).map_err(|error| CallFailure { error, attempts: Vec::new() })?;
        if start.delay_ms > 0 {
            env.sleep_ms(start.delay_ms);
        }
        let mut route = start.route;
        let deadline_ms = Some(env.now_ms().saturating_add(self.config.deadline_ms));
        let mut progress = Some(CallProgress { deadline_ms, ..start.progress });
        let mut fresh = false;
        loop {
            let mut outbound = match self.prepare(&route, request) {
                Ok(o) => o,
                Err(message) => {
                    let now = env.now_ms();
                    let c = classify::verdict(Reason::BadRequest, None, "request.prepare".into(), message.clone());
                    let error = FinalError { reason: Reason::BadRequest, message, retry_at_ms: None, providers: self.chain(now).statuses() };
                    attempts.push(Attempt { route, at_ms: now, outcome: "not-sent".into(), classified: Some(c), action: None });
                    return Err(CallFailure { error, attempts });
                }
            };
            outbound.fresh_connection = fresh;
            let at_ms = env.now_ms();
            let failure = match env.send(&outbound) {
                // An error event inside a 200 stream is the failure it stands for, not an answer.
                Ok(resp) if classify::succeeded(&resp) => {
                    self.on_success(&route, env);
                    attempts.push(Attempt { route: route.clone(), at_ms, outcome: Decimal::of(resp.status.into()).as_ref().to_string(), classified: None, action: None });
                    return Ok(CallSuccess { response: resp, route, attempts });
                }
                Ok(resp) => Failure::Http(resp),
                Err(t) => Failure::Transport(t),
            };
            let action = self.on_failure(&route, &failure, progress.take(), env);
            attempts.push(Attempt {
                route: route.clone(),
                at_ms,
                outcome: failure.outcome(),
                classified: Some(action.classified.clone()),
                action: Some(action.clone()),
            });
            match (action.kind, action.route.clone()) {
                (ActionKind::GiveUp, _) | (_, None) => {
                    let error = action.error.clone().unwrap_or_else(|| FinalError {
                        reason: action.classified.reason,
                        message: action.why.clone(),
                        retry_at_ms: None,
                        providers: self.chain(env.now_ms()).statuses(),
                    });
                    return Err(CallFailure { error, attempts });
                }
                (_, Some(next)) => {
                    if action.delay_ms > 0 {
                        env.sleep_ms(action.delay_ms);
                    }
                    fresh = action.fresh_connection;
                    route = next;
                }
            }
            progress = Some(action.progress);
        }
    }

    fn no_route_error(&self, no_route: NoRoute, now: u64) -> FinalError {
        let statuses = &no_route.providers;
        let reason = statuses
            .iter()
            .flat_map(|p| p.credentials.iter())
            .filter_map(|c| c.last_reason)
            .next()
            .unwrap_or(if statuses.iter().all(|p| p.credentials.iter().all(|c| c.state == CredentialState::Missing)) {
                Reason::AuthPermanent
            } else {
                Reason::Unknown
            });
        let when = match no_route.earliest_ms {
            Some(t) if t > now => format!(" (in {}, beyond the call's wait budget)", timefmt::duration(t - now)),
            _ => String::new(),
        };
        FinalError { reason, message: format!("{}{when}", no_route.message), retry_at_ms: no_route.earliest_ms, providers: no_route.providers }
    }

    pub fn snapshot(&self, env: &mut dyn Env) -> Snapshot {
        Snapshot {
            schema: SCHEMA,
            policy: crate::POLICY_VERSION.to_string(),
            saved_at_ms: env.now_ms(),
            credentials: self.pool.records.clone(),
            routes: self.health.routes.clone(),
            budgets: self.budgets.tokens.clone(),
            active_position: self.active_position,
            rng: self.rng.0,
            cursors: self.pool.cursors.clone(),
            migrated_from: 0,
        }
    }

    /// A self-check over the state: every record belongs to the config and nothing is
    /// inconsistent. A host runs it after restoring state into a new policy, before switching.
    pub fn check(&self, env: &mut dyn Env) -> CheckReport {
        let now = env.now_ms();
        let mut findings = vec![format!("policy {} schema {SCHEMA}; chain of {} routes", crate::POLICY_VERSION, self.config.chain.len())];
        let mut ok = true;
        for (id, rec) in &self.pool.records {
            let owner = self.config.providers.values().find(|p| p.credentials.iter().any(|c| &c.id == id));
            if owner.is_none() {
                ok = false;
                findings.push(format!("credential {id} is in the state but not in the config"));
            }
            if rec.dead && rec.fingerprint.is_none() {
                findings.push(format!("credential {id} is dead but has no fingerprint: only a new fingerprint revives it"));
            }
        }
        if self.active_position as usize >= self.config.chain.len() {
            ok = false;
            findings.push(format!("active position {} is outside the chain", self.active_position));
        }
        let usable = (0..self.config.chain.len() as u32).filter(|p| self.chain(now).usable(*p, None).is_some()).count();
        findings.push(format!("{usable} of {} routes usable now", self.config.chain.len()));
        CheckReport { ok, findings }
    }
}

/// The host's credentials that this config names; others have no place in the state.
fn known_credentials(config: &Config, credentials: &[CredentialInfo]) -> Vec<(String, String)> {
    credentials
        .iter()
        .filter(|c| config.providers.values().any(|p| p.credentials.iter().any(|k| k.id == c.id)))
        .map(|c| (c.id.clone(), c.fingerprint.clone()))
        .collect()
}

/// `route.label()`, borrowed from the chain's labels when the route's position has the same text.
fn label<'l>(labels: &'l [String], route: &Route) -> Cow<'l, str> {
    let (provider, model) = (route.provider.as_str(), route.model.as_str());
    match labels.get(route.position as usize) {
        Some(l) if l.len() == provider.len() + 1 + model.len()
            && l.starts_with(provider)
            && l.ends_with(model)
            && l.as_bytes()[provider.len()] == b'/' =>
        {
            Cow::Borrowed(l)
        }
        _ => Cow::Owned(route.label()),
    }
}

/// Whether a wait of `delay` ms ends before the call's deadline (always, without one).
fn before_deadline(p: &CallProgress, now: u64, delay: u64) -> bool {
    p.deadline_ms.is_none_or(|d| now.saturating_add(delay) < d)
}

/// Ends a clause with one full stop: provider messages often bring their own.
fn sentence(s: &str) -> String {
    if s.ends_with('.') { s.to_string() } else { format!("{s}.") }
}

/// `primary`, `fallback 1/2`
fn position_name(position: u32, chain_len: usize) -> String {
    if position == 0 { "primary".to_string() } else { cat!("fallback ", Decimal::of(position.into()), "/", Decimal::of((chain_len - 1) as u64)) }
}

fn event(kind: EventKind, at_ms: u64, route: Option<Route>, rule: &str, message: String) -> Event {
    Event { kind, at_ms, route, rule: rule.to_string(), message }
}
