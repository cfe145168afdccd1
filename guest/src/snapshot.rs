//! The snapshot: the policy state as JSON, so a host persists it and a fresh engine (a new cron
//! run, another process) continues from it. Carries a schema version; an older schema is
//! migrated, a newer one refused. `merge` joins two snapshots field by field with lattice joins
//! (max, or the value with the greater key), so it is commutative, associative and idempotent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::health::RouteHealth;
use crate::pool::CredentialRecord;
use crate::types::{ConfigError, Reason};

/// The schema this policy writes. Bump it, and add a migration, when the shape changes.
pub const SCHEMA: u32 = 2;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub schema: u32,
    /// The policy version that wrote it (information only).
    #[serde(default)]
    pub policy: String,
    #[serde(default)]
    pub saved_at_ms: u64,
    #[serde(default)]
    pub credentials: BTreeMap<String, CredentialRecord>,
    #[serde(default)]
    pub routes: BTreeMap<String, RouteHealth>,
    /// Retry budget per provider, in thousandths of a token (absent = full).
    #[serde(default)]
    pub budgets: BTreeMap<String, u32>,
    /// The chain position last used, so a change of position is announced once.
    #[serde(default)]
    pub active_position: u32,
    #[serde(default)]
    pub rng: u64,
    #[serde(default)]
    pub cursors: BTreeMap<String, u32>,
    /// The schema it was read from, when it was migrated (not written).
    #[serde(skip)]
    pub migrated_from: u32,
}

fn state_err(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { field: field.to_string(), message: message.into() }
}

impl Snapshot {
    /// Reads a snapshot of this or an older schema; errors name the field under `state`.
    pub fn parse(json: &str) -> Result<Snapshot, ConfigError> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| state_err("state", format!("is not valid JSON: {e}")))?;
        let schema = value
            .get("schema")
            .ok_or_else(|| state_err("state.schema", "is missing: this is not a failover-policy snapshot"))?
            .as_u64()
            .ok_or_else(|| state_err("state.schema", "is not a whole number"))?;
        if schema > SCHEMA as u64 {
            return Err(state_err(
                "state.schema",
                format!(
                    "snapshot schema {schema} is newer than this policy's schema {SCHEMA} (policy {}): \
                     load a newer policy, or start without this state",
                    crate::POLICY_VERSION
                ),
            ));
        }
        if schema == 0 {
            return Err(state_err("state.schema", "0 is not a schema any policy wrote"));
        }
        let mut value = value;
        if schema == 1 {
            migrate_v1(&mut value)?;
        }
        let mut snapshot: Snapshot =
            serde_path_to_error::deserialize(value).map_err(|e| state_err(&format!("state.{}", e.path()), e.inner().to_string()))?;
        if schema < SCHEMA as u64 {
            snapshot.migrated_from = schema as u32;
        }
        // A state saved before messages were masked may hold a key a provider echoed.
        for r in snapshot.credentials.values_mut() {
            let auth = matches!(r.last_reason, Some(Reason::Auth | Reason::AuthPermanent));
            r.last_error = r.last_error.take().map(|e| crate::redact::mask(e, auth));
        }
        Ok(snapshot)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// Schema 1 kept a plain cooldown per route; schema 2 has a circuit breaker. A cooling route
/// becomes an open circuit until the same time; failure counts start afresh.
fn migrate_v1(value: &mut serde_json::Value) -> Result<(), ConfigError> {
    let Some(obj) = value.as_object_mut() else { return Err(state_err("state", "is not a JSON object")) };
    obj.insert("schema".into(), SCHEMA.into());
    let Some(routes) = obj.get_mut("routes").and_then(|r| r.as_object_mut()) else { return Ok(()) };
    for (label, route) in routes.iter_mut() {
        let until = match route.get("cooldown_until_ms") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => {
                Some(v.as_u64().ok_or_else(|| state_err(&format!("state.routes.{label}.cooldown_until_ms"), "is not a whole number"))?)
            }
        };
        *route = match until {
            Some(t) => serde_json::json!({"circuit": "open", "open_until_ms": t, "openings": 1}),
            None => serde_json::json!({}),
        };
    }
    Ok(())
}

/// Which secret a record is about, ordered: a record without a fingerprint says least, then
/// the later replacement (`fingerprint_since_ms`), then the fingerprint text. A function of the
/// record's secret alone, so picking the greatest is a lattice join.
fn secret_key(r: &CredentialRecord) -> (bool, u64, Option<&str>) {
    (r.fingerprint.is_some(), r.fingerprint_since_ms.unwrap_or(0), r.fingerprint.as_deref())
}

pub(crate) fn merge_credential(a: &CredentialRecord, b: &CredentialRecord) -> CredentialRecord {
    // A record about another secret says nothing about this one: the greater secret wins whole
    // (so a replaced key's dead mark goes); records of one secret join field by field.
    match secret_key(a).cmp(&secret_key(b)) {
        std::cmp::Ordering::Greater => return a.clone(),
        std::cmp::Ordering::Less => return b.clone(),
        std::cmp::Ordering::Equal => {}
    }
    let (cooldown_until_ms, cooldown_reason) = (a.cooldown_until_ms, a.cooldown_reason).max((b.cooldown_until_ms, b.cooldown_reason));
    let (last_error_ms, last_reason, last_error) =
        (a.last_error_ms, a.last_reason, &a.last_error).max((b.last_error_ms, b.last_reason, &b.last_error));
    CredentialRecord {
        cooldown_until_ms,
        cooldown_reason,
        dead: a.dead || b.dead,
        auth_failures: a.auth_failures.max(b.auth_failures),
        last_reason,
        last_error: last_error.clone(),
        last_error_ms,
        fingerprint: a.fingerprint.clone(),
        fingerprint_since_ms: a.fingerprint_since_ms,
    }
}

fn merge_maps<V: Clone>(a: &BTreeMap<String, V>, b: &BTreeMap<String, V>, join: impl Fn(&V, &V) -> V) -> BTreeMap<String, V> {
    let mut out = a.clone();
    for (k, vb) in b {
        let v = match a.get(k) {
            Some(va) => join(va, vb),
            None => vb.clone(),
        };
        out.insert(k.clone(), v);
    }
    out
}

pub fn merge(a: &Snapshot, b: &Snapshot) -> Snapshot {
    let newer = if (a.saved_at_ms, a.active_position) >= (b.saved_at_ms, b.active_position) { a } else { b };
    Snapshot {
        schema: SCHEMA,
        policy: a.policy.clone().max(b.policy.clone()),
        saved_at_ms: newer.saved_at_ms,
        credentials: merge_maps(&a.credentials, &b.credentials, merge_credential),
        routes: merge_maps(&a.routes, &b.routes, merge_route),
        budgets: merge_maps(&a.budgets, &b.budgets, |x, y| *x.min(y)),
        active_position: newer.active_position,
        rng: a.rng.max(b.rng),
        cursors: merge_maps(&a.cursors, &b.cursors, |x, y| *x.max(y)),
        migrated_from: 0,
    }
}

/// Outcomes are a union (the latest `WINDOW_KEEP`); the circuit is the one that says more:
/// the later break or probe, then more openings, then open over half-open over closed.
pub(crate) fn merge_route(a: &RouteHealth, b: &RouteHealth) -> RouteHealth {
    let key = |h: &RouteHealth| (h.open_until_ms.max(h.probe_started_ms), h.openings, h.circuit, h.open_until_ms, h.probe_started_ms);
    let pick = if key(a) >= key(b) { a } else { b };
    let mut window: Vec<(u64, bool)> = a.window.iter().chain(&b.window).copied().collect();
    window.sort_unstable();
    window.dedup();
    let excess = window.len().saturating_sub(WINDOW_KEEP);
    window.drain(..excess);
    RouteHealth { window, ..pick.clone() }
}

/// Merged windows keep at most this many outcomes; the engine trims to its config on use.
const WINDOW_KEEP: usize = 256;

/// The entries of `now` that joining into `since` would change.
fn grown<V: Clone + PartialEq>(since: &BTreeMap<String, V>, now: &BTreeMap<String, V>, join: impl Fn(&V, &V) -> V) -> BTreeMap<String, V> {
    now.iter().filter(|(k, v)| since.get(*k).is_none_or(|s| join(s, v) != *s)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// What `now` knows that `since` does not (a delta: `merge(since, delta)` holds what
/// `merge(since, now)` holds); none when only the save time, chain position or randomness differ,
/// which say nothing a peer needs.
pub fn changes(since: &Snapshot, now: &Snapshot) -> Option<Snapshot> {
    let mut credentials = grown(&since.credentials, &now.credentials, merge_credential);
    let mut routes = grown(&since.routes, &now.routes, merge_route);
    // A record that only names its secret, where `since` has none, tells a peer nothing: a
    // fleet's first saves would otherwise carry every key of the config.
    credentials.retain(|id, r| since.credentials.contains_key(id) || !is_blank(r));
    routes.retain(|label, h| since.routes.contains_key(label) || *h != RouteHealth::default());
    let delta = Snapshot {
        credentials,
        routes,
        budgets: grown(&since.budgets, &now.budgets, |x, y| *x.min(y)),
        cursors: grown(&since.cursors, &now.cursors, |x, y| *x.max(y)),
        ..now.clone()
    };
    let empty = delta.credentials.is_empty() && delta.routes.is_empty() && delta.budgets.is_empty() && delta.cursors.is_empty();
    (!empty).then_some(Snapshot { migrated_from: 0, ..delta })
}

/// A record that says no more than which secret it is about (not a replacement, no failure).
fn is_blank(r: &CredentialRecord) -> bool {
    let blank = CredentialRecord { fingerprint: r.fingerprint.clone(), ..CredentialRecord::default() };
    *r == blank
}

/// The latest cooldown or open-circuit end in `s`, 0 when none: how long a store must keep it.
pub fn keep_until(s: &Snapshot) -> u64 {
    let cooldowns = s.credentials.values().filter_map(|r| r.cooldown_until_ms);
    let breaks = s.routes.values().filter_map(|h| h.open_until_ms);
    cooldowns.chain(breaks).max().unwrap_or(0)
}

/// The latest time a credential record shows life: a failure, a cooldown's end, a new secret.
fn credential_seen(r: &CredentialRecord) -> u64 {
    [r.last_error_ms, r.cooldown_until_ms, r.fingerprint_since_ms].into_iter().flatten().max().unwrap_or(0)
}

/// The latest time a route record shows life: an outcome, a break's end, a probe.
fn route_seen(h: &RouteHealth) -> u64 {
    let last_outcome = h.window.last().map(|(at, _)| *at);
    [last_outcome, h.open_until_ms, h.probe_started_ms].into_iter().flatten().max().unwrap_or(0)
}

/// Drops the credential and route records not seen in the `forget_after_ms` before `now_ms`
/// (a cooldown or break still running is seen in the future, so it is never dropped); returns
/// how many. 0 forgets nothing.
pub fn forget(s: &mut Snapshot, now_ms: u64, forget_after_ms: u64) -> u32 {
    if forget_after_ms == 0 {
        return 0;
    }
    let horizon = now_ms.saturating_sub(forget_after_ms);
    let before = s.credentials.len() + s.routes.len();
    s.credentials.retain(|_, r| credential_seen(r) >= horizon);
    s.routes.retain(|_, h| route_seen(h) >= horizon);
    (before - s.credentials.len() - s.routes.len()) as u32
}

/// One of `fold`'s states it could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub index: u32,
    pub message: String,
    /// Of a newer schema: a newer policy wrote it.
    pub newer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folded {
    pub state: Option<Snapshot>,
    pub unreadable: Vec<Unreadable>,
    pub forgotten: u32,
}

/// Many states merged into one, the unreadable ones left out and named, then `forget`.
pub fn fold<'a>(states: impl IntoIterator<Item = &'a str>, now_ms: u64, forget_after_ms: u64) -> Folded {
    let mut state: Option<Snapshot> = None;
    let mut unreadable = Vec::new();
    for (index, json) in states.into_iter().enumerate() {
        match Snapshot::parse(json) {
            Ok(s) => state = Some(state.map_or(s.clone(), |acc| merge(&acc, &s))),
            Err(e) => unreadable.push(Unreadable {
                index: index as u32,
                newer: e.field == "state.schema" && e.message.contains("is newer than"),
                message: format!("snapshot {index}: {}: {}", e.field, e.message),
            }),
        }
    }
    let forgotten = state.as_mut().map_or(0, |s| forget(s, now_ms, forget_after_ms));
    Folded { state: state.map(|s| Snapshot { migrated_from: 0, ..s }), unreadable, forgotten }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Reason;

    #[test]
    fn refuses_newer_and_garbage_snapshots_naming_the_field() {
        let cases = [
            (r#"{"schema": 3}"#, "state.schema", "newer than this policy's schema 2"),
            (r#"{"schema": 0}"#, "state.schema", "0 is not"),
            (r#"{"credentials": {}}"#, "state.schema", "is missing"),
            (r#"not json"#, "state", "not valid JSON"),
            (r#"{"schema": 2, "credentials": {"a": {"dead": "yes"}}}"#, "state.credentials.a.dead", "invalid type"),
            (r#"{"schema": 2, "extra": 1}"#, "state", "unknown field `extra`"),
            (
                r#"{"schema": 1, "routes": {"p/m": {"cooldown_until_ms": "soon"}}}"#,
                "state.routes.p/m.cooldown_until_ms",
                "not a whole number",
            ),
        ];
        for (json, field, msg) in cases {
            let e = Snapshot::parse(json).unwrap_err();
            assert!(e.field.starts_with(field) && e.message.contains(msg), "{json}: got {e}");
        }
    }

    #[test]
    fn a_schema_1_route_cooldown_becomes_an_open_circuit() {
        let s = Snapshot::parse(r#"{"schema": 1, "routes": {"p/m": {"consecutive_failures": 2, "cooldown_until_ms": 500}, "q/m": {"consecutive_failures": 1}}}"#).unwrap();
        assert_eq!((s.schema, s.migrated_from), (SCHEMA, 1));
        let open = &s.routes["p/m"];
        assert_eq!((open.circuit, open.open_until_ms, open.openings), (crate::health::Circuit::Open, Some(500), 1));
        assert_eq!(s.routes["q/m"], RouteHealth::default());
    }

    #[test]
    fn merge_keeps_the_later_cooldown_and_the_dead_mark() {
        let mut a = Snapshot { schema: SCHEMA, ..Default::default() };
        let mut b = a.clone();
        a.credentials.insert(
            "k".into(),
            CredentialRecord {
                cooldown_until_ms: Some(50),
                cooldown_reason: Some(Reason::RateLimit),
                fingerprint: Some("f".into()),
                ..Default::default()
            },
        );
        b.credentials.insert(
            "k".into(),
            CredentialRecord {
                cooldown_until_ms: Some(90),
                cooldown_reason: Some(Reason::QuotaExhausted),
                dead: true,
                fingerprint: Some("f".into()),
                ..Default::default()
            },
        );
        let m = merge(&a, &b);
        assert_eq!(m, merge(&b, &a));
        assert_eq!(m, merge(&m, &m));
        let k = &m.credentials["k"];
        assert_eq!((k.cooldown_until_ms, k.cooldown_reason, k.dead), (Some(90), Some(Reason::QuotaExhausted), true));
    }

    #[test]
    fn a_replaced_secret_wins_whole_and_merging_any_way_round_agrees() {
        let rec = |fp: Option<&str>, since: Option<u64>, dead: bool, err_ms: u64| CredentialRecord {
            fingerprint: fp.map(String::from),
            fingerprint_since_ms: since,
            dead,
            last_error_ms: Some(err_ms),
            ..Default::default()
        };
        let snap = |r: CredentialRecord| {
            let mut s = Snapshot { schema: SCHEMA, ..Default::default() };
            s.credentials.insert("k".into(), r);
            s
        };
        // The old rule (the later error wins whole) lost the dead mark of `a` in one grouping.
        let (a, b, c) = (snap(rec(Some("x"), None, false, 5)), snap(rec(Some("x"), None, true, 1)), snap(rec(Some("y"), None, false, 3)));
        assert_eq!(merge(&merge(&a, &b), &c), merge(&a, &merge(&b, &c)));
        let none = snap(rec(None, None, true, 9));
        assert_eq!(merge(&merge(&none, &a), &c), merge(&none, &merge(&a, &c)));
        let replaced = snap(rec(Some("a-new"), Some(7), false, 0));
        let m = merge(&merge(&a, &b), &replaced);
        assert_eq!(m.credentials["k"], replaced.credentials["k"], "the replacement clears the dead mark");
    }

    fn snap(json: &str) -> Snapshot {
        Snapshot::parse(json).expect("snapshot")
    }

    #[test]
    fn changes_hold_what_since_lacks_and_nothing_else() {
        let since = snap(
            r#"{"schema": 2, "saved_at_ms": 5, "rng": 1, "credentials": {"a": {"cooldown_until_ms": 50, "fingerprint": "f"}, "b": {"dead": true}},
              "routes": {"p/m": {"openings": 1, "open_until_ms": 40, "circuit": "open"}}, "budgets": {"p": 500}, "cursors": {"p": 2}}"#,
        );
        let cases = [
            (
                "the same records, a later save and other randomness",
                r#"{"schema": 2, "saved_at_ms": 9, "rng": 3, "credentials": {"a": {"cooldown_until_ms": 50, "fingerprint": "f"}}}"#,
                None,
            ),
            (
                "an earlier cooldown adds nothing",
                r#"{"schema": 2, "credentials": {"a": {"cooldown_until_ms": 10, "fingerprint": "f"}}}"#,
                None,
            ),
            (
                "a later cooldown",
                r#"{"schema": 2, "credentials": {"a": {"cooldown_until_ms": 90, "fingerprint": "f"}, "b": {"dead": true}}}"#,
                Some("a"),
            ),
            ("a new key", r#"{"schema": 2, "credentials": {"c": {"last_error_ms": 3}}}"#, Some("c")),
            ("a new key that only names its secret", r#"{"schema": 2, "credentials": {"c": {"fingerprint": "f"}}}"#, None),
            ("a replaced secret", r#"{"schema": 2, "credentials": {"c": {"fingerprint": "g", "fingerprint_since_ms": 4}}}"#, Some("c")),
            ("a spent budget", r#"{"schema": 2, "budgets": {"p": 100}}"#, Some("budgets")),
            ("a later break", r#"{"schema": 2, "routes": {"p/m": {"openings": 2, "open_until_ms": 80, "circuit": "open"}}}"#, Some("p/m")),
        ];
        for (what, now, expect) in cases {
            let now = snap(now);
            let delta = changes(&since, &now);
            let got: Option<Vec<String>> = delta.as_ref().map(|d| {
                let mut keys: Vec<String> = d.credentials.keys().chain(d.routes.keys()).cloned().collect();
                if !d.budgets.is_empty() {
                    keys.push("budgets".into());
                }
                keys
            });
            assert_eq!(got, expect.map(|k| vec![k.to_string()]), "{what}");
            if let Some(d) = delta {
                let (by_delta, by_whole) = (merge(&since, &d), merge(&since, &now));
                assert_eq!(
                    (&by_delta.credentials, &by_delta.routes, &by_delta.budgets),
                    (&by_whole.credentials, &by_whole.routes, &by_whole.budgets),
                    "{what}"
                );
            }
        }
    }

    #[test]
    fn keep_until_is_the_latest_cooldown_or_break_end() {
        let cases = [
            (r#"{"schema": 2}"#, 0),
            (r#"{"schema": 2, "credentials": {"a": {"last_error_ms": 99}}}"#, 0),
            (r#"{"schema": 2, "credentials": {"a": {"cooldown_until_ms": 50}, "b": {"cooldown_until_ms": 70}}}"#, 70),
            (r#"{"schema": 2, "credentials": {"a": {"cooldown_until_ms": 50}}, "routes": {"p/m": {"open_until_ms": 90}}}"#, 90),
        ];
        for (json, expected) in cases {
            assert_eq!(keep_until(&snap(json)), expected, "{json}");
        }
    }

    #[test]
    fn fold_merges_names_the_unreadable_and_forgets_the_long_quiet() {
        let day = 24 * 3600 * 1000;
        let now = 30 * day;
        let base = format!(
            r#"{{"schema": 2, "credentials": {{"old": {{"last_error_ms": {old}}}, "cooling": {{"last_error_ms": {old}, "cooldown_until_ms": {later}}}}},
                "routes": {{"p/m": {{"window": [[{old}, false]]}}, "q/n": {{"window": [[{recent}, true]]}}}}}}"#,
            old = now - 8 * day,
            later = now + day,
            recent = now - day
        );
        let delta = format!(r#"{{"schema": 2, "credentials": {{"new": {{"last_error_ms": {}}}}}}}"#, now - 1);
        let f = fold([base.as_str(), "garbage", r#"{"schema": 99}"#, delta.as_str()], now, 7 * day);
        let s = f.state.expect("a state");
        assert_eq!(s.credentials.keys().collect::<Vec<_>>(), ["cooling", "new"], "the quiet key goes, a running cooldown stays");
        assert_eq!(s.routes.keys().collect::<Vec<_>>(), ["q/n"]);
        assert_eq!(f.forgotten, 2);
        let unreadable: Vec<(u32, bool)> = f.unreadable.iter().map(|u| (u.index, u.newer)).collect();
        assert_eq!(unreadable, [(1, false), (2, true)]);
        assert!(f.unreadable[0].message.starts_with("snapshot 1: state:"), "{}", f.unreadable[0].message);
        let kept = fold([base.as_str()], now, 0).state.expect("a state");
        assert_eq!(kept.credentials.len() + kept.routes.len(), 4, "0 forgets nothing");
        assert_eq!(fold(["nope"], now, 0).state, None);
    }

    fn arbitrary(records: Vec<(u8, u64, bool, u64, u8)>, budgets: Vec<(u8, u32)>) -> Snapshot {
        let mut s = Snapshot { schema: SCHEMA, ..Default::default() };
        for (key, cooldown, dead, at, fp) in records {
            s.credentials.insert(
                format!("k{}", key % 4),
                CredentialRecord {
                    cooldown_until_ms: (cooldown > 0).then_some(cooldown),
                    dead,
                    last_error_ms: Some(at),
                    fingerprint: (fp % 3 > 0).then(|| format!("f{}", fp % 3)),
                    ..Default::default()
                },
            );
            s.routes.insert(format!("p{}/m", key % 3), RouteHealth { window: vec![(at, dead)], ..Default::default() });
        }
        s.budgets = budgets.into_iter().map(|(p, t)| (format!("p{}", p % 3), t)).collect();
        s
    }

    proptest::proptest! {
        #[test]
        fn merging_the_changes_is_merging_the_whole(
            a in proptest::collection::vec((0u8..8, 0u64..100, proptest::bool::ANY, 0u64..100, 0u8..6), 0..6),
            b in proptest::collection::vec((0u8..8, 0u64..100, proptest::bool::ANY, 0u64..100, 0u8..6), 0..6),
            ba in proptest::collection::vec((0u8..4, 0u32..1000), 0..3),
            bb in proptest::collection::vec((0u8..4, 0u32..1000), 0..3),
        ) {
            let (since, now) = (arbitrary(a, ba), arbitrary(b, bb));
            let mut whole = merge(&since, &now);
            // Blank records where `since` has none are left out of a delta: they say nothing.
            whole.credentials.retain(|id, r| since.credentials.contains_key(id) || !is_blank(r));
            whole.routes.retain(|label, h| since.routes.contains_key(label) || *h != RouteHealth::default());
            let by_delta = changes(&since, &now).map_or_else(|| since.clone(), |d| merge(&since, &d));
            proptest::prop_assert_eq!(
                (&by_delta.credentials, &by_delta.routes, &by_delta.budgets, &by_delta.cursors),
                (&whole.credentials, &whole.routes, &whole.budgets, &whole.cursors)
            );
        }
    }
}
