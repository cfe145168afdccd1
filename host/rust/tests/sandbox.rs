//! A policy that traps, loops, or allocates without bound is contained: the host stays up, the
//! call gets a safe default decision, the state is what it was, and an event says what happened.
//! After repeated faults the host falls back to the previous policy, or fails closed.

mod support;

use std::time::Duration;

use failover_host::types::{ActionKind, Event, Route};
use failover_host::{Error, EventLog, Limits, OnFault, Policy, PolicyHost, Supervision, FAIL_OPEN_DELAY_MS};
use support::{broken, credentials, host, status, CONFIG, QUOTA};

/// Tight limits, so a looping guest costs the suite little time.
fn limits() -> Limits {
    Limits { call_time: Duration::from_millis(100), memory_bytes: 32 << 20, max_payload_bytes: 1 << 20 }
}

fn supervision(on_fault: OnFault) -> Supervision {
    Supervision { on_fault, max_crashes: 2, crash_window: Duration::from_secs(600) }
}

/// The real policy, holding a quota cooldown, under supervision.
fn running(on_fault: OnFault) -> (PolicyHost, EventLog, Route) {
    let events = EventLog::new();
    let policy = Policy::load_default().expect("policy").with_limits(limits());
    let host = PolicyHost::start(policy, CONFIG, None, credentials(), host)
        .expect("start")
        .with_supervision(supervision(on_fault))
        .with_events(events.clone());
    let route = host.select().expect("select").value.expect("a route");
    let action = host.on_failure(&route, &status(429, QUOTA), None).expect("on_failure").value;
    assert_eq!(action.kind, ActionKind::FallBack, "{}", action.why);
    (host, events, route)
}

fn rules(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.rule.as_str()).collect()
}

fn broken_policy(feature: &str) -> Policy {
    Policy::from_bytes(&broken(feature), feature).expect("the broken policy loads").with_limits(limits())
}

/// Swaps `feature` in, makes it misbehave until the crash loop, and checks what a user sees.
fn contained(feature: &str, cause: &str, misbehave: impl Fn(&PolicyHost, &Route) -> String) {
    let (host, events, route) = running(OnFault::FailOpen);
    let real = host.version();
    let before = host.snapshot();
    host.swap(broken_policy(feature)).expect("the broken policy passes its self-check");
    events.take();

    let said = misbehave(&host, &route);
    assert!(said.contains("the failover policy failed"), "{feature}: a clear default decision, got: {said}");
    let first = events.take();
    assert_eq!(rules(&first), ["host.policy-fault"], "{feature}: {first:?}");
    assert!(first[0].message.contains(cause), "{feature}: the event says why: {}", first[0].message);
    assert_eq!(host.snapshot(), before, "{feature}: the state survives a fault");
    assert!(host.version().policy.starts_with("broken"), "{feature}: restarted, not yet given up on");

    misbehave(&host, &route);
    let second = events.take();
    assert_eq!(rules(&second), ["host.policy-crash-loop"], "{feature}: {second:?}");
    assert!(second[0].message.contains("fell back to the previous policy"), "{feature}: says it fell back: {}", second[0].message);
    assert_eq!(host.version().policy, real.policy, "{feature}: the previous policy is back");
    assert_eq!(host.snapshot(), before, "{feature}: the state survives the fallback");
    let next = host.select().expect("select").value.expect("a route");
    assert_eq!(next.provider, "tencent-token-plan", "{feature}: the cooldown written before the swap still holds");
}

#[test]
fn a_policy_that_traps_is_restarted_then_replaced_by_the_previous_one() {
    contained("trap", "wasm trap", |host, _| host.select().expect("no error").value.expect_err("a default decision").message);
}

#[test]
fn a_policy_that_loops_is_stopped_by_the_time_limit() {
    contained("loop", "time limit of 100 ms", |host, route| {
        let action = host.on_failure(route, &status(400, "bad"), None).expect("no error").value;
        assert_eq!(action.kind, ActionKind::GiveUp);
        action.why
    });
}

#[test]
fn a_policy_that_allocates_without_bound_is_stopped_by_the_memory_limit() {
    contained("alloc", "over its limit of 33554432 bytes", |host, _| {
        host.select().expect("no error").value.expect_err("a default decision").message
    });
}

#[test]
fn fail_open_retries_a_provider_failure_once_and_fail_closed_gives_up() {
    for (mode, first, second) in
        [(OnFault::FailOpen, ActionKind::Retry, ActionKind::GiveUp), (OnFault::FailClosed, ActionKind::GiveUp, ActionKind::GiveUp)]
    {
        let (host, _, route) = running(mode);
        host.swap(broken_policy("loop")).expect("swap");
        let action = host.on_failure(&route, &status(503, "overloaded"), None).expect("no error").value;
        assert_eq!(action.kind, first, "{mode:?}: {}", action.why);
        if first == ActionKind::Retry {
            assert_eq!(
                (action.route.as_ref().map(Route::label_with_credential), action.delay_ms),
                (Some(route.label_with_credential()), FAIL_OPEN_DELAY_MS)
            );
        } else {
            assert!(action.error.expect("a final error").message.contains("the failover policy failed"));
        }
        let again = host.on_failure(&route, &status(503, "overloaded"), Some(&action.progress)).expect("no error").value;
        assert_eq!(again.kind, second, "{mode:?}: only one retry: {}", again.why);
    }
}

#[test]
fn with_no_previous_policy_a_crash_loop_fails_closed_until_a_swap() {
    let events = EventLog::new();
    let host = PolicyHost::start(broken_policy("trap"), CONFIG, None, credentials(), host)
        .expect("start")
        .with_supervision(supervision(OnFault::FailOpen))
        .with_events(events.clone());
    for _ in 0..2 {
        host.select().expect("no error").value.expect_err("a default decision");
    }
    let said = events.take();
    assert_eq!(rules(&said), ["host.policy-fault", "host.policy-closed"], "{said:?}");
    assert!(said[1].message.contains("fails closed"), "{}", said[1].message);
    let generation = host.generation();
    let refused = host.select().expect("no error");
    assert!(refused.value.expect_err("closed").message.contains("stopped after repeated failures"));
    assert_eq!(host.generation(), generation, "a closed policy is not restarted again");

    host.swap(Policy::load_default().expect("policy")).expect("a good policy can be swapped in");
    assert!(host.select().expect("select").value.is_ok(), "service is back");
}

#[test]
fn oversized_input_is_refused_before_the_call_and_harms_nothing() {
    let (host, _, route) = running(OnFault::FailOpen);
    let before = host.snapshot();
    let huge = "x".repeat(limits().max_payload_bytes + 1);
    let err = host.on_failure(&route, &status(500, &huge), None).expect_err("too large");
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("over the limit"), "{err}");
    assert_eq!(host.snapshot(), before);
    assert!(host.select().expect("select").value.is_ok());

    let policy = Policy::load_default().expect("policy").with_limits(limits());
    let big_config = format!("{CONFIG}{}", " ".repeat(limits().max_payload_bytes));
    let refused = PolicyHost::start(policy, &big_config, None, credentials(), support::host).err().expect("config too large");
    assert!(refused.to_string().contains("the config is"), "{refused}");
}
