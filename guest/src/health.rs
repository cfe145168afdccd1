//! Route health: a circuit breaker per provider/model route. Only provider-side failures
//! (overloaded, server error, timeout, connection) count; a dead key or a bad request says
//! nothing about the route. Closed: calls flow, outcomes fill a sliding window (the last
//! `window_calls` within `window_ms`). Enough failures at a high enough rate open the circuit:
//! calls skip the route until the break ends. Then exactly one call is the probe (half-open);
//! others keep skipping it. The probe's answer closes the circuit, or a provider-side failure
//! reopens it with a longer break.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::HealthConfig;
use crate::timefmt;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Circuit {
    #[default]
    Closed,
    HalfOpen,
    Open,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteHealth {
    #[serde(default)]
    pub circuit: Circuit,
    /// Recent outcomes `(at_ms, ok)`, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub window: Vec<(u64, bool)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until_ms: Option<u64>,
    /// Openings since the circuit last closed: each one doubles the break.
    #[serde(default)]
    pub openings: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_started_ms: Option<u64>,
}

/// May a call use the route now?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Yes,
    /// Yes, as the one probe of a half-open circuit.
    Probe,
    /// No, until then (a break ending, or an unanswered probe expiring).
    No(u64),
}

/// A change of circuit state, with the numbers that caused it, for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Opened { until_ms: u64, break_ms: u64, why: String },
    Closed { why: String },
}

impl RouteHealth {
    pub fn admission(&self, now: u64, cfg: &HealthConfig) -> Admission {
        match self.circuit {
            Circuit::Closed => Admission::Yes,
            Circuit::Open => match self.open_until_ms {
                Some(until) if until > now => Admission::No(until),
                _ => Admission::Probe,
            },
            Circuit::HalfOpen => match self.probe_started_ms {
                Some(started) if started.saturating_add(cfg.probe_timeout_ms) > now => {
                    Admission::No(started.saturating_add(cfg.probe_timeout_ms))
                }
                _ => Admission::Probe,
            },
        }
    }

    fn break_ms(&self, cfg: &HealthConfig) -> u64 {
        let growth = cfg.break_multiplier.powi(self.openings.saturating_sub(1).min(64) as i32);
        ((cfg.break_ms as f64) * growth).min(cfg.max_break_ms as f64) as u64
    }

    fn open(&mut self, now: u64, cfg: &HealthConfig, why: String) -> Transition {
        self.openings = self.openings.saturating_add(1);
        let break_ms = self.break_ms(cfg);
        let until_ms = now.saturating_add(break_ms);
        *self = RouteHealth {
            circuit: Circuit::Open,
            window: vec![],
            open_until_ms: Some(until_ms),
            openings: self.openings,
            probe_started_ms: None,
        };
        Transition::Opened { until_ms, break_ms, why }
    }

    fn close(&mut self, why: String) -> Transition {
        *self = RouteHealth::default();
        Transition::Closed { why }
    }

    fn trim(&mut self, now: u64, cfg: &HealthConfig) {
        self.window.retain(|(at, _)| at.saturating_add(cfg.window_ms) > now);
        let excess = self.window.len().saturating_sub(cfg.window_calls as usize);
        self.window.drain(..excess);
    }
}

/// Keyed by `provider/model`.
#[derive(Debug, Clone, Default)]
pub struct Health {
    pub routes: BTreeMap<String, RouteHealth>,
}

impl Health {
    pub fn admission(&self, route: &str, now: u64, cfg: &HealthConfig) -> Admission {
        self.routes.get(route).map(|h| h.admission(now, cfg)).unwrap_or(Admission::Yes)
    }

    /// The route was handed to a call as its probe.
    pub fn begin_probe(&mut self, route: &str, now: u64) {
        let h = self.routes.entry(route.to_string()).or_default();
        h.circuit = Circuit::HalfOpen;
        h.probe_started_ms = Some(now);
    }

    /// A provider-side failure on the route.
    pub fn record_failure(&mut self, route: &str, now: u64, detail: &str, cfg: &HealthConfig) -> Option<Transition> {
        let h = self.routes.entry(route.to_string()).or_default();
        if h.circuit != Circuit::Closed {
            let why = format!("the probe failed ({detail}); opening #{} since the last close", h.openings + 1);
            return Some(h.open(now, cfg, why));
        }
        h.window.push((now, false));
        h.trim(now, cfg);
        let failures = h.window.iter().filter(|(_, ok)| !ok).count() as u32;
        let calls = h.window.len() as u32;
        let rate = failures as f64 / calls as f64;
        if failures >= cfg.min_failures && rate >= cfg.failure_rate {
            let why = format!(
                "{failures} provider-side failures in the last {calls} calls within {} (rate {:.0}% >= {:.0}%, at least {} failures); last: {detail}",
                timefmt::duration(cfg.window_ms), rate * 100.0, cfg.failure_rate * 100.0, cfg.min_failures
            );
            return Some(h.open(now, cfg, why));
        }
        None
    }

    /// The route answered: a success, or a failure that is not the provider's (a 4xx shows it is up).
    pub fn record_answer(&mut self, route: &str, now: u64, success: bool, detail: &str, cfg: &HealthConfig) -> Option<Transition> {
        let h = match self.routes.get_mut(route) {
            Some(h) => h,
            None if success => self.routes.entry(route.to_string()).or_default(),
            None => return None,
        };
        if h.circuit != Circuit::Closed {
            let openings = h.openings;
            return Some(h.close(format!("the probe was answered ({detail}) after {openings} opening(s)")));
        }
        if success {
            h.window.push((now, true));
            h.trim(now, cfg);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HealthConfig {
        HealthConfig::default()
    }

    #[test]
    fn opens_on_enough_failures_at_a_high_rate_and_not_before() {
        let c = cfg();
        let mut h = Health::default();
        for t in 0..10 {
            h.record_answer("r", t, true, "200", &c);
        }
        assert!(h.record_failure("r", 10, "503", &c).is_none());
        assert!(h.record_failure("r", 11, "503", &c).is_none());
        assert!(h.record_failure("r", 12, "503", &c).is_none(), "3 of 13 is below 50%");
        let mut h = Health::default();
        h.record_answer("r", 0, true, "200", &c);
        h.record_failure("r", 1, "503", &c);
        h.record_failure("r", 2, "503", &c);
        let opened = h.record_failure("r", 3, "503", &c).expect("3 of 4 opens");
        assert!(matches!(opened, Transition::Opened { until_ms, .. } if until_ms == 3 + c.break_ms));
        assert_eq!(h.admission("r", 4, &c), Admission::No(3 + c.break_ms));
    }

    #[test]
    fn one_probe_after_the_break_then_longer_breaks_until_it_closes() {
        let c = cfg();
        let mut h = Health::default();
        for t in 0..3 {
            h.record_failure("r", t, "503", &c);
        }
        let end = 2 + c.break_ms;
        assert_eq!(h.admission("r", end, &c), Admission::Probe);
        h.begin_probe("r", end);
        assert_eq!(h.admission("r", end + 1, &c), Admission::No(end + c.probe_timeout_ms), "one probe at a time");
        let reopened = h.record_failure("r", end + 5, "timeout", &c).unwrap();
        let longer = (c.break_ms as f64 * c.break_multiplier) as u64;
        assert!(longer > c.break_ms);
        assert!(matches!(reopened, Transition::Opened { break_ms, .. } if break_ms == longer));
        let end2 = end + 5 + longer;
        h.begin_probe("r", end2);
        assert!(matches!(h.record_answer("r", end2 + 1, false, "401", &c), Some(Transition::Closed { .. })));
        assert_eq!(h.admission("r", end2 + 2, &c), Admission::Yes);
    }

    #[test]
    fn an_unanswered_probe_expires_and_breaks_stop_growing_at_the_cap() {
        let c = cfg();
        let mut h = RouteHealth { circuit: Circuit::HalfOpen, probe_started_ms: Some(100), openings: 40, ..Default::default() };
        assert_eq!(h.admission(100 + c.probe_timeout_ms, &c), Admission::Probe);
        h.open(0, &c, String::new());
        assert_eq!(h.open_until_ms, Some(c.max_break_ms));
    }
}
