//! The fallback chain: the primary then `fallback_providers`, which positions can be used now
//! (a usable credential and a route that is not cooling), when the next one will be, and how the
//! chain's state reads to a user.

use crate::config::Config;
use crate::health::{Admission, Circuit, Health};
use crate::pool::{cooldown_word, Pool};
use crate::timefmt;
use crate::types::{CredentialState, NoRoute, ProviderStatus, Route};

/// A read-only view over the state, for one decision at one instant.
pub struct Chain<'a> {
    pub config: &'a Config,
    pub pool: &'a Pool,
    pub health: &'a Health,
    /// `provider/model` per position, the key of a route's health.
    pub labels: &'a [String],
    pub now: u64,
}

impl<'a> Chain<'a> {
    pub fn len(&self) -> usize {
        self.config.chain.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `provider/model` of a position.
    pub fn label(&self, position: u32) -> &'a str {
        &self.labels[position as usize]
    }

    /// Until when the route's circuit keeps calls away, and in which state: what deciding needs,
    /// without the text (this runs for every position a decision looks at).
    fn circuit_until(&self, position: u32) -> Option<(u64, Circuit)> {
        let h = self.health.routes.get(self.labels.get(position as usize)?)?;
        match h.admission(self.now, &self.config.health) {
            Admission::No(until) => Some((until, h.circuit)),
            _ => None,
        }
    }

    /// Until when the route's circuit keeps calls away, and how that reads to a user.
    pub fn circuit_block(&self, position: u32) -> Option<(u64, String)> {
        let (until, circuit) = self.circuit_until(position)?;
        let until_text = timefmt::rfc3339(until);
        let what = if circuit == Circuit::Open {
            ["circuit open after provider-side failures until ", &until_text, " (then one probe)"].concat()
        } else {
            ["circuit half-open: a probe call is in flight (until ", &until_text, " at the latest)"].concat()
        };
        Some((until, what))
    }

    /// The route at `position` if it can be used now, with the key it would use.
    pub fn usable(&self, position: u32, except: Option<&str>) -> Option<Route> {
        let entry = self.config.chain.get(position as usize)?;
        if self.circuit_until(position).is_some() {
            return None;
        }
        let provider = self.config.provider(&entry.provider)?;
        let credential = self.pool.pick(provider, self.now, except)?.to_string();
        Some(Route { provider: entry.provider.clone(), model: entry.model.clone(), credential, position })
    }

    /// The first usable position in chain order that `allowed` admits.
    pub fn first_usable(&self, allowed: impl Fn(u32) -> bool) -> Option<Route> {
        (0..self.len() as u32).filter(|p| allowed(*p)).find_map(|p| self.usable(p, None))
    }

    /// When `position` becomes usable if nothing else changes (cooling keys and route end), with
    /// the key it would use then; none when it never will by itself (dead or missing keys).
    pub fn usable_at(&self, position: u32) -> Option<(u64, Route)> {
        let entry = self.config.chain.get(position as usize)?;
        let provider = self.config.provider(&entry.provider)?;
        let route_free = self.circuit_until(position).map(|(until, _)| until).unwrap_or(self.now);
        let key = match self.pool.pick(provider, self.now, None) {
            Some(id) => (self.now, id.to_string()),
            None => self.pool.earliest(provider, self.now)?,
        };
        let at = route_free.max(key.0);
        Some((at, Route { provider: entry.provider.clone(), model: entry.model.clone(), credential: key.1, position }))
    }

    /// The earliest time any admitted position becomes usable.
    pub fn earliest(&self, allowed: impl Fn(u32) -> bool) -> Option<(u64, Route)> {
        (0..self.len() as u32).filter(|p| allowed(*p)).filter_map(|p| self.usable_at(p)).min_by_key(|(at, r)| (*at, r.position))
    }

    pub fn statuses(&self) -> Vec<ProviderStatus> {
        self.config
            .chain
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| {
                let provider = self.config.provider(&entry.provider)?;
                let block = self.circuit_block(i as u32);
                let route_until = block.as_ref().map(|(until, _)| *until);
                let mut summary = self.pool.summary(provider, self.now);
                if let Some((_, what)) = block {
                    summary = format!("{what}; {summary}");
                }
                Some(ProviderStatus {
                    provider: entry.provider.clone(),
                    model: entry.model.clone(),
                    position: i as u32,
                    route_until_ms: route_until,
                    credentials: self.pool.status(provider, self.now),
                    summary,
                })
            })
            .collect()
    }

    /// Why nothing can be used: every provider's truth, and when to come back.
    pub fn no_route(&self) -> NoRoute {
        let providers = self.statuses();
        let earliest = self.earliest(|_| true).map(|(at, _)| at);
        let per: Vec<String> =
            providers.iter().map(|p| format!("{}/{} (position {}): {}", p.provider, p.model, p.position, p.summary)).collect();
        let when = match earliest {
            Some(t) => format!("; the earliest becomes usable at {}", timefmt::rfc3339(t)),
            None => "; none becomes usable by waiting".to_string(),
        };
        NoRoute { message: format!("no usable route: {}{when}", per.join(" | ")), earliest_ms: earliest, providers }
    }

    /// Why `position` is not usable, short: `rate-limited until 2026-...`, `key dead`.
    pub fn why_unusable(&self, position: u32) -> String {
        let Some(entry) = self.config.chain.get(position as usize) else { return "not configured".into() };
        if let Some((_, what)) = self.circuit_block(position) {
            return what;
        }
        let Some(provider) = self.config.provider(&entry.provider) else { return "not configured".into() };
        let states: Vec<(CredentialState, Option<u64>, Option<crate::types::Reason>)> = provider
            .credentials
            .iter()
            .map(|c| {
                let rec = self.pool.record(&c.id);
                (self.pool.state(&c.id, self.now), rec.and_then(|r| r.cooling(self.now)), rec.and_then(|r| r.cooldown_reason))
            })
            .collect();
        if let Some((_, until, reason)) = states.iter().filter(|s| s.0 == CredentialState::CoolingDown).min_by_key(|s| s.1) {
            let what = match reason {
                Some(crate::types::Reason::RateLimit) => "rate-limited".to_string(),
                r => format!("in {} cooldown", cooldown_word(*r)),
            };
            return format!("{what} until {}", timefmt::rfc3339(until.unwrap_or(self.now)));
        }
        if states.iter().any(|s| s.0 == CredentialState::Dead) {
            return "has no valid key (key appears invalid or expired)".into();
        }
        if states.iter().all(|s| s.0 == CredentialState::Missing) {
            return "has no key in the host".into();
        }
        "unavailable".into()
    }

    /// `Primary alibaba-coding-plan rate-limited until ...; using fallback 1/1 tencent-token-plan/kimi2.5`
    pub fn fallback_notice(&self, from: u32, to: &Route) -> String {
        let entry = &self.config.chain[from as usize];
        let who = if from == 0 { format!("Primary {}", entry.provider) } else { format!("Fallback {from} {}", entry.provider) };
        format!("{who} {}; using fallback {}/{} {}/{}", self.why_unusable(from), to.position, self.len() - 1, to.provider, to.model)
    }
}
