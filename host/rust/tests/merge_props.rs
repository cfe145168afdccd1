//! `merge` property-tested through the component (`Instance::merge`): random snapshots in the
//! guest's canonical JSON, compared as parsed JSON.

use anyhow::{anyhow, Result};
use failover_host::types::{Header, HttpResponse, Outbound, TransportFailure, TransportKind};
use failover_host::{Host, Instance, Policy, Transport};
use std::cell::RefCell;

use proptest::prelude::*;
use serde_json::{json, Map, Value};

struct NoNetwork;

impl Transport for NoNetwork {
    fn send(&mut self, _: &Outbound, _: Option<&Header>) -> Result<HttpResponse, TransportFailure> {
        Err(TransportFailure { kind: TransportKind::Other, message: "merge sends nothing".into() })
    }
}

thread_local! {
    // Compiling the component takes seconds: one instance per test thread serves every case.
    static INSTANCE: RefCell<Instance> = RefCell::new(
        Policy::load_default().and_then(|p| p.instantiate(Host::new(NoNetwork))).expect("the built-in policy loads"),
    );
}

fn merge(a: &Value, b: &Value) -> Result<Value> {
    let out = INSTANCE
        .with_borrow_mut(|inst| inst.merge(&a.to_string(), &b.to_string()))?
        .map_err(|e| anyhow!("merge refused: {}", e.message))?;
    Ok(serde_json::from_str(&out)?)
}

const REASONS: [&str; 5] = ["rate-limit", "quota-exhausted", "billing", "auth", "auth-permanent"];

/// Few values per field, so generated snapshots collide on keys, fingerprints and times.
fn credential() -> impl Strategy<Value = Value> {
    (
        proptest::option::of((0u64..4).prop_map(|t| t * 1000)),
        proptest::option::of(0usize..REASONS.len()),
        any::<bool>(),
        0u32..3,
        proptest::option::of((0usize..REASONS.len(), 0u64..4)),
        proptest::option::of((0usize..3, proptest::option::of(1u64..3))),
    )
        .prop_map(|(until, why, dead, strikes, last, fp)| {
            let mut r = Map::new();
            if let Some(t) = until {
                r.insert("cooldown_until_ms".into(), json!(t));
            }
            if let Some(w) = why {
                r.insert("cooldown_reason".into(), json!(REASONS[w]));
            }
            r.insert("dead".into(), json!(dead));
            r.insert("auth_failures".into(), json!(strikes));
            if let Some((w, t)) = last {
                r.insert("last_reason".into(), json!(REASONS[w]));
                r.insert("last_error".into(), json!(format!("{} at {t}", REASONS[w])));
                r.insert("last_error_ms".into(), json!(t));
            }
            if let Some((f, since)) = fp {
                r.insert("fingerprint".into(), json!(format!("fp{f}")));
                if let Some(s) = since {
                    r.insert("fingerprint_since_ms".into(), json!(s));
                }
            }
            Value::Object(r)
        })
}

fn route() -> impl Strategy<Value = Value> {
    (
        0usize..3,
        proptest::collection::btree_set((0u64..6, any::<bool>()), 0..4),
        proptest::option::of(0u64..4),
        0u32..3,
        proptest::option::of(0u64..4),
    )
        .prop_map(|(circuit, window, until, openings, probe)| {
            let mut r = Map::new();
            r.insert("circuit".into(), json!(["closed", "half-open", "open"][circuit]));
            if !window.is_empty() {
                // Engines write windows oldest first; the set keeps them sorted and distinct.
                r.insert("window".into(), json!(window.into_iter().collect::<Vec<_>>()));
            }
            if let Some(t) = until {
                r.insert("open_until_ms".into(), json!(t));
            }
            r.insert("openings".into(), json!(openings));
            if let Some(t) = probe {
                r.insert("probe_started_ms".into(), json!(t));
            }
            Value::Object(r)
        })
}

fn keyed<S: Strategy<Value = Value>>(keys: &'static [&'static str], values: S) -> impl Strategy<Value = Value> {
    proptest::collection::btree_map(proptest::sample::select(keys), values, 0..=keys.len())
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

fn snapshot() -> impl Strategy<Value = Value> {
    (
        0u64..3,
        keyed(&["a", "b", "c"], credential()),
        keyed(&["p/m", "q/m"], route()),
        keyed(&["p", "q"], (0u32..3).prop_map(|n| json!(n * 1000))),
        keyed(&["p", "q"], (0u32..3).prop_map(|n| json!(n))),
        0u32..3,
        0u64..3,
    )
        .prop_map(|(saved, credentials, routes, budgets, cursors, active, rng)| {
            // Field order as the guest writes it, so an unchanged snapshot compares equal.
            json!({"schema": 2, "policy": "0.1.0", "saved_at_ms": saved, "credentials": credentials,
                "routes": routes, "budgets": budgets, "active_position": active, "rng": rng, "cursors": cursors})
        })
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn merge_is_a_join(a in snapshot(), b in snapshot(), c in snapshot()) {
        let ab = merge(&a, &b).unwrap();
        prop_assert_eq!(&ab, &merge(&a, &b).unwrap(), "deterministic");
        prop_assert_eq!(&ab, &merge(&b, &a).unwrap(), "commutative");
        prop_assert_eq!(&merge(&a, &a).unwrap(), &a, "idempotent");
        let left = merge(&ab, &c).unwrap();
        let bc = merge(&b, &c).unwrap();
        prop_assert_eq!(&left, &merge(&a, &bc).unwrap(), "associative");
        prop_assert_eq!(&merge(&ab, &a).unwrap(), &ab, "absorbs what it already holds");
    }

    #[test]
    fn a_cooldown_keeps_the_later_end_and_a_dead_key_stays_dead_for_its_secret(a in snapshot(), b in snapshot()) {
        let m = merge(&a, &b).unwrap();
        for (id, rec) in m["credentials"].as_object().into_iter().flatten() {
            let (ra, rb) = (&a["credentials"][id], &b["credentials"][id]);
            let secret = |r: &Value| (r.get("fingerprint").is_some(), r["fingerprint_since_ms"].as_u64().unwrap_or(0), r["fingerprint"].as_str().map(String::from));
            for (mine, other) in [(ra, rb), (rb, ra)] {
                if mine.is_null() {
                    continue;
                }
                let same_secret = other.is_null() || secret(mine) == secret(other);
                if same_secret {
                    prop_assert!(rec["cooldown_until_ms"].as_u64() >= mine["cooldown_until_ms"].as_u64(), "{id}: later cooldown end kept");
                    prop_assert!(!mine["dead"].as_bool().unwrap_or(false) || rec["dead"] == json!(true), "{id}: dead stays dead");
                } else if secret(mine) < secret(other) {
                    // A newer secret (later replacement) says nothing of the old one's dead mark.
                    prop_assert_eq!(rec, other, "{}: the replaced secret's record goes whole", id);
                }
            }
        }
    }
}

#[test]
fn a_schema_1_snapshot_is_migrated_before_merging() -> Result<()> {
    let v1 = json!({"schema": 1, "routes": {"p/m": {"consecutive_failures": 2, "cooldown_until_ms": 500}}});
    let v2 = json!({"schema": 2, "routes": {"p/m": {"circuit": "closed", "window": [[7, false]], "openings": 0}}});
    let m = merge(&v1, &v2)?;
    assert_eq!(m["schema"], 2);
    assert_eq!(m["routes"]["p/m"], json!({"circuit": "open", "window": [[7, false]], "open_until_ms": 500, "openings": 1}));
    Ok(())
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_error() -> Result<()> {
    let v3 = json!({"schema": 3});
    let v2 = json!({"schema": 2});
    for (a, b, which) in [(&v3, &v2, "snapshot a"), (&v2, &v3, "snapshot b")] {
        let err = INSTANCE.with_borrow_mut(|inst| inst.merge(&a.to_string(), &b.to_string()))?.expect_err("schema 3 is refused");
        assert!(err.message.starts_with(which) && err.message.contains("schema 3 is newer than this policy's schema 2"), "{}", err.message);
    }
    Ok(())
}
