//! The policy's promises (README, "Promises"), as properties over random failure sequences and
//! virtual times, through the component. A driver plays the host: it starts calls, "sends"
//! (drawing each outcome from a tape), reports outcomes and waits as told, checking the state
//! (the snapshot) before every send.

use std::collections::BTreeMap;

use failover_host::types::{CredentialInfo, Failure, Header, HttpResponse, Outbound, TransportFailure, TransportKind};
use failover_host::{Clock, Engine, EventLog, Host, Instance, Policy, Transport, VirtualClock};
use proptest::prelude::*;
use serde_json::Value;

struct NoNetwork;

impl Transport for NoNetwork {
    fn send(&mut self, _: &Outbound, _: Option<&Header>) -> Result<HttpResponse, TransportFailure> {
        Err(TransportFailure { kind: TransportKind::Other, message: "the driver uses the decision API".into() })
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Ok,
    Status(u16),
    RateLimited(u32),
    Timeout,
    Refused,
}

impl Outcome {
    fn failure(self) -> Option<Failure> {
        let http = |status, headers: Vec<Header>, body: &str| {
            Some(Failure::http(HttpResponse { status, headers, body: body.as_bytes().to_vec() }))
        };
        let transport = |kind, message: &str| Some(Failure::transport(kind, message));
        match self {
            Outcome::Ok => None,
            Outcome::Status(401) => http(401, vec![], r#"{"error":{"message":"Unauthorized"}}"#),
            Outcome::Status(s) => http(s, vec![], ""),
            Outcome::RateLimited(secs) => http(
                429,
                vec![Header { name: "retry-after".into(), value: secs.to_string() }],
                r#"{"error":{"message":"Rate limit reached"}}"#,
            ),
            Outcome::Timeout => transport(TransportKind::Timeout, "read"),
            Outcome::Refused => transport(TransportKind::ConnectionRefused, "refused"),
        }
    }
}

/// What happens: per call, the time that passes before it; per attempt, its outcome.
#[derive(Debug, Clone)]
struct Tape {
    gaps: Vec<u64>,
    outcomes: Vec<Outcome>,
}

const CONFIG: &str = r#"{
  "providers": {
    "a": {"base_url": "https://a.example", "credentials": [{"id": "a1"}, {"id": "a2"}]},
    "b": {"base_url": "https://b.example", "credentials": [{"id": "b1"}]}
  },
  "primary": {"provider": "a", "model": "m"},
  "fallback_providers": [{"provider": "b", "model": "n"}],
  "retry": {"max_attempts": 8, "max_wait_ms": 20000},
  "seed": 17
}"#;

fn creds() -> Vec<CredentialInfo> {
    ["a1", "a2", "b1"].iter().map(|id| CredentialInfo { id: id.to_string(), fingerprint: format!("fp-{id}") }).collect()
}

/// One component instance driven with a virtual clock.
struct Driver {
    inst: Instance,
    engine: Engine,
    clock: VirtualClock,
    events: EventLog,
}

impl Driver {
    fn new(policy: &Policy, clock: VirtualClock, state: Option<&str>) -> Driver {
        let events = EventLog::new();
        let host = Host::new(NoNetwork).with_clock(Clock::Virtual(clock.clone())).with_seed(0).with_events(events.clone());
        let mut inst = policy.instantiate(host).expect("instantiate");
        let engine = inst.create_engine(CONFIG, state, &creds()).expect("config and state are valid");
        Driver { inst, engine, clock, events }
    }

    fn snapshot(&mut self) -> String {
        self.inst.snapshot(&self.engine).expect("snapshot")
    }

    /// The snapshot without its time stamp: the state proper.
    fn state(&mut self) -> Value {
        let mut snap: Value = serde_json::from_str(&self.snapshot()).expect("snapshot is JSON");
        snap["saved_at_ms"] = Value::Null;
        snap
    }
}

#[derive(Default, Debug)]
struct Run {
    /// Each decision in full (the generated types have no `PartialEq`; their debug form has every field).
    actions: Vec<String>,
    violations: Vec<String>,
    successes: BTreeMap<String, u32>,
    budget_retries: BTreeMap<String, u32>,
}

/// Checks the route's circuit before a send: never while open, at most one send per probe.
fn check_send(d: &mut Driver, label: &str, probes: &mut BTreeMap<(String, u64), u32>, run: &mut Run) {
    let snap: Value = serde_json::from_str(&d.snapshot()).expect("snapshot is JSON");
    let Some(h) = snap["routes"].get(label) else { return };
    let now = d.clock.now_ms();
    match h["circuit"].as_str() {
        Some("open") if h["open_until_ms"].as_u64().is_some_and(|u| u > now) => {
            run.violations.push(format!("sent to {label} at {now} while its circuit is open until {}", h["open_until_ms"]))
        }
        Some("half-open") => {
            let n = probes.entry((label.to_string(), h["probe_started_ms"].as_u64().unwrap_or(0))).or_default();
            *n += 1;
            if *n > 1 {
                run.violations.push(format!("second call to half-open {label} during one probe"));
            }
        }
        _ => {}
    }
}

/// Plays calls `calls` of `tape`; `cursor` is the next outcome.
fn play(d: &mut Driver, tape: &Tape, calls: std::ops::Range<usize>, cursor: &mut usize, run: &mut Run) {
    let mut probes = BTreeMap::new();
    for call in calls {
        d.clock.advance(tape.gaps[call]);
        // The WIT promise hosts rely on to skip a snapshot: a quiet start changes no state.
        let (before, _) = (d.state(), d.events.take());
        let started = d.inst.start_call(&d.engine).expect("no trap");
        if d.events.take().is_empty() && d.state() != before {
            run.violations.push(format!("call {call}: start-call changed the state without an event"));
        }
        let Ok(start) = started else { continue };
        d.clock.advance(start.delay_ms);
        let (mut route, mut progress) = (start.route, Some(start.progress));
        loop {
            check_send(d, &format!("{}/{}", route.provider, route.model), &mut probes, run);
            let outcome = tape.outcomes[*cursor % tape.outcomes.len()];
            *cursor += 1;
            let Some(failure) = outcome.failure() else {
                d.inst.on_success(&d.engine, &route).expect("no trap");
                *run.successes.entry(route.provider.clone()).or_default() += 1;
                break;
            };
            let action = d.inst.on_failure(&d.engine, &route, &failure, progress.as_ref()).expect("no trap");
            if action.rule == "provider.backoff" {
                *run.budget_retries.entry(route.provider.clone()).or_default() += 1;
            }
            run.actions.push(format!("{action:?}"));
            let Some(next) = action.route.clone() else { break };
            d.clock.advance(action.delay_ms);
            route = next;
            progress = Some(action.progress);
        }
    }
}

fn tapes(outcomes: impl Strategy<Value = Outcome>) -> impl Strategy<Value = Tape> {
    (proptest::collection::vec(0u64..90_000, 1..40), proptest::collection::vec(outcomes, 1..80))
        .prop_map(|(gaps, outcomes)| Tape { gaps, outcomes })
}

fn any_outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        3 => Just(Outcome::Ok),
        2 => prop_oneof![Just(500u16), Just(502), Just(503), Just(529)].prop_map(Outcome::Status),
        1 => Just(Outcome::Status(401)),
        1 => Just(Outcome::Status(400)),
        1 => (1u32..30).prop_map(Outcome::RateLimited),
        1 => Just(Outcome::Timeout),
        1 => Just(Outcome::Refused),
    ]
}

fn provider_side() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        1 => Just(Outcome::Ok),
        4 => prop_oneof![Just(500u16), Just(503), Just(529)].prop_map(Outcome::Status),
        1 => Just(Outcome::Timeout),
        1 => Just(Outcome::Refused),
    ]
}

const START_MS: u64 = 1_795_528_800_000;

fn policy() -> &'static Policy {
    static POLICY: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| Policy::load_default().expect("the built-in policy loads"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// An open route is never sent a call before its break ends, except the single probe; and
    /// same-route retries never exceed the budget's bound (5 above the threshold, plus 0.1 per success).
    #[test]
    fn circuits_and_budgets_hold(tape in tapes(any_outcome())) {
        let mut d = Driver::new(policy(), VirtualClock::new(START_MS), None);
        let mut run = Run::default();
        play(&mut d, &tape, 0..tape.gaps.len(), &mut 0, &mut run);
        prop_assert!(run.violations.is_empty(), "{:?}", run.violations);
        for (provider, retries) in &run.budget_retries {
            let successes = run.successes.get(provider).copied().unwrap_or(0);
            let bound = 5 + successes.div_ceil(10);
            prop_assert!(*retries <= bound, "{provider}: {retries} retries > bound {bound} with {successes} successes");
        }
    }

    /// No key is marked dead, cooled or suspect by a provider-side failure.
    #[test]
    fn provider_side_failures_never_touch_keys(tape in tapes(provider_side())) {
        let mut d = Driver::new(policy(), VirtualClock::new(START_MS), None);
        play(&mut d, &tape, 0..tape.gaps.len(), &mut 0, &mut Run::default());
        let snap: Value = serde_json::from_str(&d.snapshot()).expect("snapshot is JSON");
        for (id, rec) in snap["credentials"].as_object().into_iter().flatten() {
            let touched = rec["dead"].as_bool() == Some(true)
                || !rec["cooldown_until_ms"].is_null()
                || rec["auth_failures"].as_u64().unwrap_or(0) > 0;
            prop_assert!(!touched, "{id}: {rec}");
        }
    }

    /// The same seed and inputs replay to the same decisions; and a snapshot restored into a
    /// fresh engine at any point between calls decides exactly as carrying on would.
    #[test]
    fn replay_and_restore_give_the_same_decisions(tape in tapes(any_outcome()), cut in 0usize..40) {
        let calls = tape.gaps.len();
        let cut = cut.min(calls);
        let run_whole = || {
            let mut d = Driver::new(policy(), VirtualClock::new(START_MS), None);
            let mut run = Run::default();
            play(&mut d, &tape, 0..calls, &mut 0, &mut run);
            run.actions
        };
        let whole = run_whole();
        prop_assert_eq!(&whole, &run_whole());

        let clock = VirtualClock::new(START_MS);
        let mut d = Driver::new(policy(), clock.clone(), None);
        let mut run = Run::default();
        let mut cursor = 0;
        play(&mut d, &tape, 0..cut, &mut cursor, &mut run);
        let state = d.snapshot();
        let mut restored = Driver::new(policy(), clock, Some(&state));
        play(&mut restored, &tape, cut..calls, &mut cursor, &mut run);
        prop_assert_eq!(whole, run.actions);
    }
}
