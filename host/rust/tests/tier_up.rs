//! Tiered loading: a never-seen `.wasm` swapped in with `PolicyHost::swap_tiered` serves its
//! first decision from a baseline (Winch) build, then tiers up to the optimised (Cranelift)
//! build compiled in the background, carrying the state and deciding the same way.

mod support;

use std::path::PathBuf;
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use failover_host::types::{ActionKind, Event};
use failover_host::{ArtifactCache, EventLog, Limits, Policy, PolicyHost, Tier, DEFAULT_POLICY};
use support::{broken, credentials, host, status, CONFIG, QUOTA};

/// A bound on waiting, so a tier-up that never comes fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(120);

fn start(limits: Limits) -> (PolicyHost, EventLog) {
    let events = EventLog::new();
    let policy = Policy::load_default().expect("policy").with_limits(limits);
    let running = PolicyHost::start(policy, CONFIG, None, credentials(), host).expect("start").with_events(events.clone());
    (running, events)
}

/// An empty cache of its own, so the `.wasm` is never-seen.
fn empty_cache(name: &str) -> ArtifactCache {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tier-up-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    ArtifactCache::new(dir)
}

fn rules(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.rule.as_str()).collect()
}

/// One step of traffic: a select, and a quota failure on the route it gave, if any. Returns
/// both decisions (the clock stands still, so they compare equal across hosts) and the
/// generation that made the first.
fn step(host: &PolicyHost) -> (String, Option<ActionKind>, u64) {
    let answer = host.select().expect("select");
    let action = answer.value.as_ref().ok().map(|route| host.on_failure(route, &status(429, QUOTA), None).expect("on_failure").value.kind);
    (format!("{:?}", answer.value), action, answer.generation)
}

#[test]
fn a_never_seen_wasm_serves_from_the_baseline_build_then_tiers_up_with_the_state() {
    let (running, events) = start(Limits::default());
    // The same traffic on the optimised build throughout, to compare decisions and state with.
    let (reference, _) = start(Limits::default());
    let cache = empty_cache("carry");

    let tiered = running.swap_tiered(DEFAULT_POLICY, "the built-in policy", &cache).expect("swap_tiered");
    assert_eq!(tiered.tier, Tier::Baseline);
    assert_eq!(running.tier(), Tier::Baseline);
    let baseline_generation = tiered.swapped.generation;

    let (label, kind, generation) = step(&running);
    assert_eq!(generation, baseline_generation, "the first decision comes from the baseline build");
    assert_eq!((label.clone(), kind), {
        let (l, k, _) = step(&reference);
        (l, k)
    });
    let before = running.snapshot();
    assert_eq!(before, reference.snapshot(), "the baseline build keeps the same state");

    let tier_up = tiered.tier_up.expect("a tier-up under way");
    let up = tier_up.wait(PATIENCE).expect("the tier-up finishes").expect("the tier-up succeeds");
    assert_eq!(up.generation, baseline_generation + 1);
    assert_eq!((&up.from.policy, up.from.schema), (&up.to.policy, up.to.schema), "the same policy, another build");
    assert_eq!(running.tier(), Tier::Optimised);
    assert_eq!(running.snapshot(), before, "the optimised build restored the state as it was");
    let said = events.take();
    assert_eq!(rules(&said), ["host.policy-swapped", "host.policy-tiered-up"], "{said:?}");

    for _ in 0..3 {
        let (label, kind, generation) = step(&running);
        let (ref_label, ref_kind, _) = step(&reference);
        assert_eq!(generation, up.generation, "later decisions come from the optimised build");
        assert_eq!((label, kind), (ref_label, ref_kind));
        assert_eq!(running.snapshot(), reference.snapshot());
    }

    // Now cached: the same bytes load optimised at once, with nothing left to do.
    let again = running.swap_tiered(DEFAULT_POLICY, "the built-in policy", &cache).expect("swap_tiered");
    assert_eq!((again.tier, again.tier_up.is_none()), (Tier::Optimised, true));
    let _ = std::fs::remove_dir_all(cache.dir());
}

#[test]
fn a_looping_policy_on_the_baseline_tier_is_stopped_by_the_time_limit() {
    let limits = Limits { call_time: Duration::from_millis(100), memory_bytes: 32 << 20, max_payload_bytes: 1 << 20 };
    let policy = Policy::from_bytes_baseline(&broken("loop"), "loop").expect("loads").with_limits(limits);
    assert_eq!(policy.tier(), Tier::Baseline);
    let running = PolicyHost::start(policy, CONFIG, None, credentials(), host).expect("start");
    // A route to fail on, from the real policy.
    let route = start(limits).0.select().expect("select").value.expect("a route");
    let began = Instant::now();
    let action = running.on_failure(&route, &status(400, "bad"), None).expect("no error").value;
    assert!(action.why.contains("time limit of 100 ms"), "{}", action.why);
    assert!(began.elapsed() < Duration::from_secs(5), "stopped in {:?}", began.elapsed());
}

#[test]
fn a_tier_up_overtaken_by_another_swap_leaves_the_newer_policy_running() {
    // The tier-up thread makes its host only once its build is ready; holding it there until the
    // newer swap has landed fixes the order, whatever the two compiles cost on a loaded machine.
    let (landed, wait_for_landing) = mpsc::channel::<()>();
    let wait_for_landing = Mutex::new(wait_for_landing);
    let make_host = move || {
        if std::thread::current().name() == Some("failover-tier-up") {
            let _ = wait_for_landing.lock().expect("not poisoned").recv_timeout(PATIENCE);
        }
        host()
    };
    let policy = Policy::load_default().expect("policy");
    let running = PolicyHost::start(policy, CONFIG, None, credentials(), make_host).expect("start");
    let trap = Policy::from_bytes(&broken("trap"), "trap").expect("loads");
    let tiered = running.swap_tiered(DEFAULT_POLICY, "the built-in policy", &empty_cache("overtaken")).expect("swap_tiered");
    let newer = running.swap(trap).expect("swap");
    landed.send(()).expect("the tier-up thread waits");
    let outcome = tiered.tier_up.expect("a tier-up under way").wait(PATIENCE).expect("the tier-up finishes");
    let refused = outcome.expect_err("dropped, not applied");
    assert!(refused.to_string().contains("another policy took over"), "{refused}");
    assert_eq!((running.generation(), running.version().policy), (newer.generation, newer.to.policy));
}

#[test]
fn dropping_the_host_does_not_wait_for_the_tier_up() {
    let (running, _) = start(Limits::default());
    let cache = empty_cache("drop");
    let tiered = running.swap_tiered(DEFAULT_POLICY, "the built-in policy", &cache).expect("swap_tiered");
    let began = Instant::now();
    drop(running);
    // Far under an optimising compile of the policy (0.36 s on an idle machine), far over a
    // drop (under a millisecond), so a loaded machine does not make it fail.
    assert!(began.elapsed() < Duration::from_millis(250), "drop took {:?}", began.elapsed());
    let outcome = tiered.tier_up.expect("a tier-up under way").wait(PATIENCE).expect("the tier-up thread ends");
    let gone = outcome.expect_err("no host to tier up");
    assert!(gone.to_string().contains("dropped before the tier-up"), "{gone}");
}
