//! The credential pool: per-key state (cooldown, dead, auth strikes, last error), which key a
//! provider uses next, and how each key's state reads to a user.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{Provider, Strategy};
use crate::timefmt;
use crate::types::{CredentialState, CredentialStatus, Reason};

/// What the policy remembers about one credential id. Part of the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRecord {
    /// Resting until then (rate limit, quota, billing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_until_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_reason: Option<Reason>,
    /// auth-permanent: unusable until the host reports another fingerprint.
    #[serde(default)]
    pub dead: bool,
    /// Auth failures since the last success: the first makes a key suspect, more make it dead.
    #[serde(default)]
    pub auth_failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reason: Option<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_ms: Option<u64>,
    /// The secret's fingerprint when this record was written (never the secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// When this fingerprint replaced another one (absent for the first one known): `merge`
    /// lets the later replacement win, so a replaced key's old record never outlives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_since_ms: Option<u64>,
}

impl CredentialRecord {
    pub fn cooling(&self, now: u64) -> Option<u64> {
        self.cooldown_until_ms.filter(|until| *until > now)
    }

    /// A replaced secret starts clean: dead marks, billing rests and auth strikes were about the old one.
    fn reset_for_new_secret(&mut self, fingerprint: &str, now: u64) {
        *self = CredentialRecord { fingerprint: Some(fingerprint.to_string()), fingerprint_since_ms: Some(now), ..Default::default() };
    }
}

#[derive(Debug, Clone, Default)]
pub struct Pool {
    pub records: BTreeMap<String, CredentialRecord>,
    /// Credential id -> fingerprint, for the ids the host has a secret for.
    present: BTreeMap<String, String>,
    /// Round-robin position per provider.
    pub cursors: BTreeMap<String, u32>,
}

/// A credential whose secret changed since its record was written.
pub struct Replaced {
    pub id: String,
    pub was_dead: bool,
}

impl Pool {
    pub fn new(records: BTreeMap<String, CredentialRecord>, cursors: BTreeMap<String, u32>) -> Pool {
        Pool { records, present: BTreeMap::new(), cursors }
    }

    /// The host's view of its secrets at `now`. Records of replaced secrets are reset.
    pub fn set_present(&mut self, present: impl IntoIterator<Item = (String, String)>, now: u64) -> Vec<Replaced> {
        self.present = present.into_iter().collect();
        let mut replaced = Vec::new();
        for (id, fp) in &self.present {
            let rec = self.records.entry(id.clone()).or_default();
            match &rec.fingerprint {
                Some(old) if old != fp => {
                    let was_dead = rec.dead || rec.cooldown_reason == Some(Reason::Billing);
                    rec.reset_for_new_secret(fp, now);
                    replaced.push(Replaced { id: id.clone(), was_dead });
                }
                Some(_) => {}
                None => rec.fingerprint = Some(fp.clone()),
            }
        }
        replaced
    }

    pub fn record(&self, id: &str) -> Option<&CredentialRecord> {
        self.records.get(id)
    }

    pub fn record_mut(&mut self, id: &str) -> &mut CredentialRecord {
        self.records.entry(id.to_string()).or_default()
    }

    pub fn state(&self, id: &str, now: u64) -> CredentialState {
        if !self.present.contains_key(id) {
            return CredentialState::Missing;
        }
        match self.records.get(id) {
            None => CredentialState::Available,
            Some(r) if r.dead => CredentialState::Dead,
            Some(r) if r.cooling(now).is_some() => CredentialState::CoolingDown,
            Some(r) if r.auth_failures > 0 => CredentialState::Suspect,
            Some(_) => CredentialState::Available,
        }
    }

    pub fn usable(&self, id: &str, now: u64) -> bool {
        matches!(self.state(id, now), CredentialState::Available | CredentialState::Suspect)
    }

    /// The key a provider uses next: healthy keys before suspect ones, in the provider's
    /// strategy order; `except` is skipped (the key that just failed). Borrowed from the config,
    /// and one pass with each key's state read once: this runs on most decisions.
    pub fn pick<'p>(&self, provider: &'p Provider, now: u64, except: Option<&str>) -> Option<&'p str> {
        let n = provider.credentials.len();
        let start = match provider.strategy {
            Strategy::FillFirst => 0,
            Strategy::RoundRobin => self.cursors.get(&provider.name).copied().unwrap_or(0) as usize % n.max(1),
        };
        let mut suspect = None;
        for i in 0..n {
            let id = provider.credentials[(start + i) % n].id.as_str();
            if Some(id) == except {
                continue;
            }
            match self.state(id, now) {
                CredentialState::Available => return Some(id),
                CredentialState::Suspect => suspect = suspect.or(Some(id)),
                _ => {}
            }
        }
        suspect
    }

    /// After a success on round-robin, the next call starts at the following key.
    pub fn advance_cursor(&mut self, provider: &Provider, used: &str) {
        if provider.strategy == Strategy::RoundRobin {
            if let Some(i) = provider.credentials.iter().position(|c| c.id == used) {
                self.cursors.insert(provider.name.clone(), ((i + 1) % provider.credentials.len()) as u32);
            }
        }
    }

    /// When the earliest cooling key of a provider becomes usable, and which one.
    pub fn earliest(&self, provider: &Provider, now: u64) -> Option<(u64, String)> {
        provider
            .credentials
            .iter()
            .filter(|c| self.state(&c.id, now) == CredentialState::CoolingDown)
            .filter_map(|c| self.records.get(&c.id).and_then(|r| r.cooling(now)).map(|t| (t, c.id.clone())))
            .min()
    }

    pub fn status(&self, provider: &Provider, now: u64) -> Vec<CredentialStatus> {
        provider
            .credentials
            .iter()
            .map(|c| {
                let rec = self.records.get(&c.id);
                let state = self.state(&c.id, now);
                CredentialStatus {
                    id: c.id.clone(),
                    state,
                    until_ms: if state == CredentialState::CoolingDown { rec.and_then(|r| r.cooling(now)) } else { None },
                    last_reason: rec.and_then(|r| r.last_reason),
                    last_error: rec.and_then(|r| r.last_error.clone()),
                }
            })
            .collect()
    }

    /// How a provider's keys read to a user: `1 key, in quota cooldown until ..., last error 429 ...`.
    pub fn summary(&self, provider: &Provider, now: u64) -> String {
        let phrases: Vec<String> = provider
            .credentials
            .iter()
            .map(|c| {
                let rec = self.records.get(&c.id);
                let mut s = match self.state(&c.id, now) {
                    CredentialState::Available => "available".to_string(),
                    CredentialState::Suspect => "failed authentication once".to_string(),
                    CredentialState::Missing => match &c.env {
                        Some(var) => format!("has no secret in the host (set {var})"),
                        None => "has no secret in the host".to_string(),
                    },
                    CredentialState::Dead => "key appears invalid or expired: replace it or add a backup key".to_string(),
                    CredentialState::CoolingDown => {
                        let (until, why) = rec.map(|r| (r.cooldown_until_ms.unwrap_or(now), r.cooldown_reason)).unwrap_or((now, None));
                        format!("in {} cooldown until {}", cooldown_word(why), timefmt::rfc3339(until))
                    }
                };
                if let Some(err) = rec.and_then(|r| r.last_error.as_deref()) {
                    s.push_str(&format!(", last error {err}"));
                }
                s
            })
            .collect();
        match (provider.credentials.as_slice(), phrases.as_slice()) {
            ([c], [p]) => format!("1 key ({}), {p}", c.id),
            (creds, _) => {
                let parts: Vec<String> = creds.iter().zip(&phrases).map(|(c, p)| format!("{} {p}", c.id)).collect();
                format!("{} keys: {}", creds.len(), parts.join("; "))
            }
        }
    }
}

/// `quota`, `rate-limit`, `billing`: the word users know the rest by.
pub fn cooldown_word(reason: Option<Reason>) -> &'static str {
    match reason {
        Some(Reason::QuotaExhausted) => "quota",
        Some(Reason::RateLimit) => "rate-limit",
        Some(Reason::Billing) => "billing",
        Some(r) => r.as_str(),
        None => "a",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Family;
    use crate::config::{CredentialConfig, Timeouts};

    fn provider(strategy: Strategy, ids: &[&str]) -> Provider {
        Provider {
            name: "p".into(),
            family: Family::Generic,
            base_url: "http://x".into(),
            auth: Family::Generic.default_auth(),
            credentials: ids.iter().map(|id| CredentialConfig { id: id.to_string(), env: None }).collect(),
            strategy,
            headers: vec![],
            timeouts: Timeouts::default(),
            resume: None,
        }
    }

    fn pool(ids: &[&str]) -> Pool {
        let mut p = Pool::default();
        p.set_present(ids.iter().map(|id| (id.to_string(), format!("fp-{id}"))), 0);
        p
    }

    #[test]
    fn picks_healthy_keys_before_suspect_and_skips_cooling_dead_missing() {
        let prov = provider(Strategy::FillFirst, &["a", "b", "c", "d", "e"]);
        let mut p = pool(&["a", "b", "c", "d"]);
        p.record_mut("a").cooldown_until_ms = Some(100);
        p.record_mut("b").dead = true;
        p.record_mut("c").auth_failures = 1;
        assert_eq!(p.pick(&prov, 50, None), Some("d"), "e is missing, d is the only healthy key");
        assert_eq!(p.pick(&prov, 50, Some("d")), Some("c"), "suspect keys come last");
        assert_eq!(p.pick(&prov, 100, None), Some("a"), "a cooldown ends at its end time");
        assert_eq!(p.state("e", 0), CredentialState::Missing);
    }

    #[test]
    fn round_robin_moves_on_after_each_success() {
        let prov = provider(Strategy::RoundRobin, &["a", "b", "c"]);
        let mut p = pool(&["a", "b", "c"]);
        let mut used = vec![];
        for _ in 0..4 {
            let id = p.pick(&prov, 0, None).unwrap().to_string();
            p.advance_cursor(&prov, &id);
            used.push(id);
        }
        assert_eq!(used, ["a", "b", "c", "a"]);
    }

    #[test]
    fn a_new_fingerprint_revives_a_dead_key() {
        let mut p = pool(&["a"]);
        p.record_mut("a").dead = true;
        assert!(p.set_present([("a".to_string(), "fp-a".to_string())], 0).is_empty());
        assert_eq!(p.state("a", 0), CredentialState::Dead);
        let replaced = p.set_present([("a".to_string(), "fp-new".to_string())], 5);
        assert!(replaced.len() == 1 && replaced[0].was_dead);
        assert_eq!(p.state("a", 0), CredentialState::Available);
    }

    #[test]
    fn summary_tells_the_truth_per_key() {
        let prov = provider(Strategy::FillFirst, &["a"]);
        let mut p = pool(&["a"]);
        let r = p.record_mut("a");
        r.cooldown_until_ms = Some(1_795_528_800_000);
        r.cooldown_reason = Some(Reason::QuotaExhausted);
        r.last_error = Some("429 usage allocated quota exceeded.".into());
        assert_eq!(
            p.summary(&prov, 0),
            "1 key (a), in quota cooldown until 2026-11-24T14:00:00Z, last error 429 usage allocated quota exceeded."
        );
    }
}
