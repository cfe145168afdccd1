//! Peers' state merged into a running engine: what a fleet's other processes learned (a key
//! exhausted, a route broken) holds here from the next decision on, by `merge`'s rules.

use super::Engine;
use crate::snapshot::{merge_credential, merge_route, Snapshot};

impl Engine {
    /// Joins `peers` into this engine's records. Records of credentials and routes this config
    /// does not name are ignored, and so is a record about another secret than the one this
    /// host holds for that id (it says nothing about ours). The chain position, the randomness
    /// and calls under way are this process's own and stay.
    pub fn absorb(&mut self, peers: Snapshot) {
        let config = &self.config;
        let named = |id: &str| config.providers.values().any(|p| p.credentials.iter().any(|c| c.id == id));
        for (id, theirs) in peers.credentials {
            if !named(&id) {
                continue;
            }
            let joined = match self.pool.record(&id) {
                Some(ours) if ours.fingerprint.is_some() && theirs.fingerprint.is_some() && ours.fingerprint != theirs.fingerprint => {
                    continue
                }
                Some(ours) => merge_credential(ours, &theirs),
                None => theirs,
            };
            *self.pool.record_mut(&id) = joined;
        }
        for (label, theirs) in peers.routes {
            if !self.labels.contains(&label) {
                continue;
            }
            let joined = match self.health.routes.get(&label) {
                Some(ours) => merge_route(ours, &theirs),
                None => theirs,
            };
            self.health.routes.insert(label, joined);
        }
        for (provider, theirs) in peers.budgets {
            if config.providers.contains_key(&provider) {
                let ours = self.budgets.tokens.entry(provider).or_insert(theirs);
                *ours = (*ours).min(theirs);
            }
        }
        for (provider, theirs) in peers.cursors {
            if config.providers.contains_key(&provider) {
                let ours = self.pool.cursors.entry(provider).or_insert(theirs);
                *ours = (*ours).max(theirs);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::Engine;
    use crate::snapshot::Snapshot;
    use crate::types::CredentialInfo;

    struct Clock(u64);

    impl crate::Env for Clock {
        fn now_ms(&mut self) -> u64 {
            self.0
        }
        fn sleep_ms(&mut self, ms: u64) {
            self.0 += ms;
        }
        fn send(&mut self, _: &crate::types::Outbound) -> Result<crate::types::HttpResponse, crate::types::TransportFailure> {
            unreachable!("absorb never sends")
        }
        fn emit(&mut self, _: crate::types::Event) {}
        fn seed(&mut self) -> u64 {
            7
        }
    }

    const CONFIG: &str = r#"{"providers": {
        "p": {"base_url": "https://p.example/v1", "credentials": [{"id": "a"}, {"id": "b"}]},
        "q": {"base_url": "https://q.example/v1", "credentials": [{"id": "c"}]}},
        "primary": {"provider": "p", "model": "m"},
        "fallback_providers": [{"provider": "q", "model": "n"}]}"#;

    fn engine(clock: &mut Clock, fingerprint: &str) -> Engine {
        let creds: Vec<CredentialInfo> =
            ["a", "b", "c"].iter().map(|id| CredentialInfo { id: id.to_string(), fingerprint: fingerprint.to_string() }).collect();
        Engine::create(CONFIG, None, &creds, clock).expect("config")
    }

    fn peers(json: &str) -> Snapshot {
        Snapshot::parse(json).expect("snapshot")
    }

    #[test]
    fn a_peers_cooldown_holds_in_the_running_engine_and_the_next_route_is_chosen() {
        let mut clock = Clock(1_000);
        let mut e = engine(&mut clock, "fp");
        e.absorb(peers(
            r#"{"schema": 2, "credentials": {
                "a": {"cooldown_until_ms": 90000, "cooldown_reason": "quota-exhausted", "fingerprint": "fp"},
                "b": {"cooldown_until_ms": 90000, "cooldown_reason": "quota-exhausted", "fingerprint": "fp"}}}"#,
        ));
        let route = e.select(&mut clock).expect("a route");
        assert_eq!((route.provider.as_str(), route.credential.as_str()), ("q", "c"), "p's keys are exhausted fleet-wide");
    }

    #[test]
    fn absorb_ignores_unknown_records_other_secrets_and_keeps_its_own_later_cooldown() {
        let mut clock = Clock(1_000);
        let mut e = engine(&mut clock, "fp");
        e.absorb(peers(r#"{"schema": 2, "credentials": {"a": {"cooldown_until_ms": 50000, "fingerprint": "fp"}}}"#));
        e.absorb(peers(
            r#"{"schema": 2, "credentials": {
                "a": {"cooldown_until_ms": 20000, "fingerprint": "fp"},
                "b": {"dead": true, "fingerprint": "another-secret"},
                "zz": {"dead": true}},
              "routes": {"x/y": {"circuit": "open", "open_until_ms": 9}}}"#,
        ));
        let s = e.snapshot(&mut clock);
        assert_eq!(s.credentials["a"].cooldown_until_ms, Some(50000), "the later cooldown stays");
        assert!(!s.credentials["b"].dead, "a record about another secret says nothing about ours");
        assert!(!s.credentials.contains_key("zz") && !s.routes.contains_key("x/y"), "not in this config");
    }

    #[test]
    fn absorbing_is_merging_the_snapshots() {
        let mut clock = Clock(1_000);
        let mut e = engine(&mut clock, "fp");
        let theirs = peers(
            r#"{"schema": 2, "credentials": {"c": {"cooldown_until_ms": 7000, "last_error_ms": 900, "fingerprint": "fp"}},
              "routes": {"q/n": {"circuit": "open", "open_until_ms": 4000, "openings": 1, "window": [[900, false]]}},
              "budgets": {"q": 300}, "cursors": {"p": 1}}"#,
        );
        let expected = crate::snapshot::merge(&e.snapshot(&mut clock), &theirs);
        e.absorb(theirs);
        let got = e.snapshot(&mut clock);
        assert_eq!(
            (&got.credentials, &got.routes, &got.budgets, &got.cursors),
            (&expected.credentials, &expected.routes, &expected.budgets, &expected.cursors)
        );
    }
}
