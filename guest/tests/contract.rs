//! The contract is spelled once, in `wit/policy.wit`: every enum the guest spells for itself
//! must have exactly the WIT's cases, in the WIT's names. A case added to the contract fails
//! here until the guest handles it (and fails to compile in the WIT glue's matches).

use failover_policy::types::{ActionKind, CredentialState, EventKind, InputKind, Reason, StepKind, TransportKind};

const WIT: &str = include_str!("../../wit/policy.wit");

/// The cases of `enum name { ... }` in the WIT, comments left out.
fn wit_enum(name: &str) -> Vec<String> {
    let start = WIT.find(&format!("enum {name} {{")).unwrap_or_else(|| panic!("no enum {name} in wit/policy.wit"));
    let body = &WIT[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
    body.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("//")).map(|l| l.trim_end_matches(',').to_string()).collect()
}

fn names<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> Vec<String> {
    all.iter().map(|k| as_str(*k).to_string()).collect()
}

#[test]
fn every_guest_enum_has_exactly_the_wit_cases() {
    let transport: Vec<TransportKind> = TransportKind::ALL.iter().copied().filter(|k| !TransportKind::DRIVEN.contains(k)).collect();
    let cases: [(&str, Vec<String>); 7] = [
        ("reason", names(Reason::ALL, Reason::as_str)),
        ("transport-kind", names(&transport, TransportKind::as_str)),
        ("credential-state", names(CredentialState::ALL, CredentialState::as_str)),
        ("action-kind", names(ActionKind::ALL, ActionKind::as_str)),
        ("event-kind", names(EventKind::ALL, EventKind::as_str)),
        ("input-kind", names(InputKind::ALL, InputKind::as_str)),
        ("step-kind", names(StepKind::ALL, StepKind::as_str)),
    ];
    for (wit, guest) in cases {
        assert_eq!(guest, wit_enum(wit), "enum {wit}: the guest's spelling differs from wit/policy.wit");
    }
}

#[test]
fn the_driven_kinds_are_the_guest_s_own() {
    for k in TransportKind::DRIVEN {
        assert!(!wit_enum("transport-kind").contains(&k.as_str().to_string()), "{} is in the WIT", k.as_str());
        assert_eq!(TransportKind::parse(k.as_str()), Some(k));
    }
}
