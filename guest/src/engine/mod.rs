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

mod absorb;
mod action;
mod calls;
mod check;
mod prepare;
mod record;
mod table;
mod text;

use crate::budget::Budgets;
use crate::chain::Chain;
use crate::classify::{self, Family};
use crate::config::Config;
use crate::env::Env;
use crate::health::{Admission, Health, Transition};
use crate::pool::Pool;
use crate::retry::Rng;
use crate::snapshot::{Snapshot, SCHEMA};
use crate::timefmt;
use crate::types::*;
use table::{Decision, Table};

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
                    env.emit(event(
                        EventKind::StateDropped,
                        now,
                        None,
                        "state.unknown-credentials",
                        format!("snapshot state for credentials no longer in the config was dropped: {}", dropped.join(", ")),
                    ));
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
                env.emit(event(
                    EventKind::StateRestored,
                    now,
                    None,
                    "state.restored",
                    format!(
                        "restored state saved at {} (schema {}{})",
                        timefmt::rfc3339(s.saved_at_ms),
                        s.schema,
                        if s.migrated_from > 0 { format!(", migrated from schema {}", s.migrated_from) } else { String::new() }
                    ),
                ));
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
            env.emit(event(
                EventKind::CircuitHalfOpen,
                now,
                Some(route.clone()),
                "health.probe",
                format!(
                    "route {label}: the break is over; this call is the one probe (other calls keep skipping the route until it answers)"
                ),
            ));
        }
        probe
    }

    fn circuit_event(&self, t: Option<Transition>, route: &Route, now: u64, env: &mut dyn Env) {
        match t {
            Some(Transition::Opened { until_ms, break_ms, why }) => env.emit(event(
                EventKind::CircuitOpened,
                now,
                Some(route.clone()),
                "health.circuit-opened",
                format!(
                    "route {} circuit opened for {} until {}: {why}",
                    label(&self.labels, route),
                    timefmt::duration(break_ms),
                    timefmt::rfc3339(until_ms)
                ),
            )),
            Some(Transition::Closed { why }) => env.emit(event(
                EventKind::CircuitClosed,
                now,
                Some(route.clone()),
                "health.circuit-closed",
                format!("route {} circuit closed: {why}", label(&self.labels, route)),
            )),
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
            (
                EventKind::PrimaryRestored,
                "chain.primary-restored",
                format!("Primary {} is usable again; returning from {from} to {}/{}", route.provider, route.provider, route.model),
            )
        } else if first || route.position > self.active_position {
            (EventKind::FallbackActivated, "chain.fallback", chain.fallback_notice(0, route))
        } else {
            (
                EventKind::FallbackActivated,
                "chain.fallback-earlier",
                format!(
                    "Fallback {} is usable again; using fallback {}/{} {}/{}",
                    route.position,
                    route.position,
                    chain.len() - 1,
                    route.provider,
                    route.model
                ),
            )
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
            return Err(format!(
                "position {} is {}/{}, not {}/{}",
                route.position, entry.provider, entry.model, route.provider, route.model
            ));
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
            let decision = Decision::give_up(
                "host.unknown-route",
                format!("the host reported a failure on a route this policy did not give: {problem}"),
            );
            return self.finish(decision, classified, progress, route, now, env);
        }
        let classified = self.record_failure(route, classified, now, env);
        let mut rng = self.rng;
        let table =
            Table { config: &self.config, chain: self.chain(now), health: &self.health, budgets: &self.budgets, labels: &self.labels };
        let mut decision = table::decide(&table, &mut rng, route, &classified, &mut progress, now);
        self.rng = rng;
        if let Some(notice) = decision.notice.take() {
            env.emit(notice);
        }
        if let Some(next) = &decision.route {
            if decision.kind != ActionKind::Wait {
                self.claim(next, now, env);
            }
        }
        self.finish(decision, classified, progress, route, now, env)
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
        Some(l)
            if l.len() == provider.len() + 1 + model.len()
                && l.starts_with(provider)
                && l.ends_with(model)
                && l.as_bytes()[provider.len()] == b'/' =>
        {
            Cow::Borrowed(l)
        }
        _ => Cow::Owned(route.label()),
    }
}

fn event(kind: EventKind, at_ms: u64, route: Option<Route>, rule: &str, message: String) -> Event {
    Event { kind, at_ms, route, rule: rule.to_string(), message }
}
