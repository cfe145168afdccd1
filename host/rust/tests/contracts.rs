//! The host speaks contracts 0.1.0, 0.2.0 and 0.3.0: the deployed 0.1.0 and 0.2.0 builds (the
//! fixtures under tests/policies/v0.1.0 and v0.2.0) load, decide and replay their frozen
//! scenarios as they did; 0.2.0 and later drive calls; a 0.3.0 policy absorbs a peer's state
//! into a running engine, and older ones get the documented stand-ins; a component of any other
//! version is refused naming them all, at load and at swap, and the running policy keeps serving.

mod support;

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use failover_host::types::{ActionKind, CallInput, CallOptions, EventKind, InputKind, Request, StepKind};
use failover_host::{scenario, ArtifactCache, Contract, Error, EventLog, Policy, PolicyHost};
use support::{broken, credentials, host, status, CONFIG, QUOTA};

fn fixture_dir() -> PathBuf {
    fixture_dir_of("v0.1.0")
}

fn fixture_dir_of(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/policies").join(version)
}

fn fixture() -> Result<Policy> {
    fixture_of("v0.1.0")
}

fn fixture_of(version: &str) -> Result<Policy> {
    let path = fixture_dir_of(version).join("failover_policy.wasm");
    Policy::load_file(&path).with_context(|| format!("load {}", path.display()))
}

fn request() -> Request {
    Request {
        path: "/chat/completions".into(),
        method: "POST".into(),
        headers: Vec::new(),
        body: br#"{"model":"placeholder","messages":[]}"#.to_vec(),
    }
}

fn start_input() -> CallInput {
    CallInput { kind: InputKind::Start, head: None, data: Vec::new(), failure: None }
}

/// The running host, holding a quota cooldown of the primary: later decisions fall back.
fn running(policy: Policy) -> Result<(PolicyHost, EventLog)> {
    let events = EventLog::new();
    let running = PolicyHost::start(policy, CONFIG, None, credentials(), host)?.with_events(events.clone());
    let route = running.select()?.value.map_err(|e| anyhow::anyhow!("no route: {}", e.message))?;
    let action = running.on_failure(&route, &status(429, QUOTA), None)?.value;
    ensure!(action.kind == ActionKind::FallBack, "a quota error falls back: {}", action.why);
    events.take();
    Ok((running, events))
}

/// The provider the running policy selects now.
fn selected(running: &PolicyHost) -> Result<String> {
    Ok(running.select()?.value.map_err(|e| anyhow::anyhow!("no route: {}", e.message))?.provider)
}

#[test]
fn the_0_1_fixture_loads_says_its_version_and_decides() -> Result<()> {
    let policy = fixture()?;
    assert_eq!(policy.contract(), Contract::V0_1);
    let events = EventLog::new();
    let mut instance = policy.instantiate(host().with_events(events.clone()))?;
    assert_eq!(instance.contract(), Contract::V0_1);
    let version = instance.version()?;
    assert!(version.policy.starts_with("0.1.") && version.schema == 2, "{version:?}");

    let engine = instance.create_engine(CONFIG, None, &credentials())?;
    let route = instance.select(&engine)?.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    assert_eq!(route.provider, "alibaba-coding-plan");
    let action = instance.on_failure(&engine, &route, &status(429, QUOTA), None)?;
    assert_eq!((action.kind, action.classified.reason.as_str()), (ActionKind::FallBack, "quota-exhausted"), "{}", action.why);
    let kinds: Vec<EventKind> = events.take().iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::CredentialCooldown), "its events reach the host: {kinds:?}");
    let outbound = instance.prepare(&engine, action.route.as_ref().context("a route")?, &request())?;
    let outbound = outbound.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    assert_eq!(outbound.url, "https://tokens.example/v1/chat/completions");
    Ok(())
}

#[test]
fn the_0_1_fixture_replays_the_0_1_scenarios_against_their_golden_traces() -> Result<()> {
    let reports = scenario::run_dir(&fixture()?, &fixture_dir().join("scenarios"))?;
    assert_eq!(reports.len(), 17, "every frozen 0.1 scenario ran");
    let failures: Vec<String> = reports.iter().flat_map(|r| r.failures.clone()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[test]
fn a_0_1_policy_has_no_driven_call_and_says_so() -> Result<()> {
    let mut instance = fixture()?.instantiate(host())?;
    let engine = instance.create_engine(CONFIG, None, &credentials())?;
    let err = instance.begin(&engine, &request(), &CallOptions { timeout_ms: None }).expect_err("0.1.0 has no begin");
    assert!(matches!(err, Error::Unsupported { contract: Contract::V0_1, .. }), "{err:?}");
    assert!(err.to_string().contains("failover:policy@0.1.0"), "{err}");
    assert!(instance.select(&engine)?.is_ok(), "the instance is untouched");
    Ok(())
}

#[test]
fn the_0_2_fixture_replays_the_0_2_scenarios_against_their_golden_traces() -> Result<()> {
    let policy = fixture_of("v0.2.0")?;
    assert_eq!(policy.contract(), Contract::V0_2);
    let dir = fixture_dir_of("v0.2.0").join("scenarios");
    let scenarios =
        std::fs::read_dir(&dir)?.filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))).count();
    let reports = scenario::run_dir(&policy, &dir)?;
    assert_eq!(reports.len(), scenarios, "every frozen 0.2 scenario ran");
    assert!(scenarios >= 20, "the frozen 0.2 scenarios are there: {scenarios}");
    let failures: Vec<String> = reports.iter().flat_map(|r| r.failures.clone()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[test]
fn the_built_policy_speaks_0_3_and_the_0_2_fixture_drives_calls_too() -> Result<()> {
    assert_eq!(Policy::load_default()?.contract(), Contract::V0_3);
    drives_a_call_step_by_step(Policy::load_default()?, Contract::V0_3)?;
    drives_a_call_step_by_step(fixture_of("v0.2.0")?, Contract::V0_2)
}

fn a_quota_snapshot(policy: &Policy) -> Result<String> {
    let mut peer = policy.instantiate(host())?;
    let engine = peer.create_engine(CONFIG, None, &credentials())?;
    let route = peer.select(&engine)?.map_err(|e| anyhow::anyhow!("no route: {}", e.message))?;
    peer.on_failure(&engine, &route, &status(429, QUOTA), None)?;
    Ok(peer.snapshot(&engine)?)
}

#[test]
fn a_0_3_policy_absorbs_a_peers_cooldown_into_a_running_engine() -> Result<()> {
    let policy = Policy::load_default()?;
    let peers = a_quota_snapshot(&policy)?;
    let mut running = policy.instantiate(host())?;
    let engine = running.create_engine(CONFIG, None, &credentials())?;
    assert_eq!(running.select(&engine)?.map_err(|e| anyhow::anyhow!("{}", e.message))?.provider, "alibaba-coding-plan");
    running.absorb(&engine, &peers)?.map_err(|e| anyhow::anyhow!("absorb: {}", e.message))?;
    let route = running.select(&engine)?.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    assert_eq!(route.provider, "tencent-token-plan", "the peer's quota cooldown holds here");
    let refused = running.absorb(&engine, "{not json")?;
    assert!(refused.is_err(), "an unreadable state is refused");
    assert_eq!(running.select(&engine)?.map_err(|e| anyhow::anyhow!("{}", e.message))?.provider, "tencent-token-plan");
    Ok(())
}

/// A state the policy refused, as an error.
fn state<T>(answer: Result<T, failover_host::types::StateError>) -> Result<T> {
    answer.map_err(|e| anyhow::anyhow!("{}", e.message))
}

/// The cooldown end of `credential` in `state` (the test reads the snapshot; the host never does).
fn cooldown_until(state: &str, credential: &str) -> Result<u64> {
    let json: serde_json::Value = serde_json::from_str(state)?;
    json["credentials"][credential]["cooldown_until_ms"].as_u64().with_context(|| format!("{credential} cools in {state}"))
}

#[test]
fn a_0_3_policy_says_how_long_a_store_keeps_a_delta_and_a_fold() -> Result<()> {
    let policy = Policy::load_default()?;
    let quota = a_quota_snapshot(&policy)?;
    let until = cooldown_until(&quota, "ali-1")?;
    let mut inst = policy.instantiate(host())?;
    let engine = inst.create_engine(CONFIG, None, &credentials())?;
    let empty = inst.snapshot(&engine)?;

    let delta = state(inst.changes(&empty, &quota)?)?.context("the cooldown is a change")?;
    assert_eq!(delta.keep_until_ms, until, "kept until the cooldown ends");
    let folded = state(inst.fold(&[empty.clone(), delta.state.clone()], 0, 0)?)?;
    assert_eq!(folded.keep_until_ms, until, "the folded state is kept until the cooldown ends");
    let folded = state(inst.fold(std::slice::from_ref(&empty), 0, 0)?)?;
    assert_eq!(folded.keep_until_ms, 0, "nothing running: nothing to keep it for");
    assert!(state(inst.changes(&quota, &quota)?)?.is_none(), "no change, no delta");
    Ok(())
}

#[test]
fn older_policies_have_no_absorb_and_change_and_fold_the_old_way() -> Result<()> {
    for (version, contract) in [("v0.1.0", Contract::V0_1), ("v0.2.0", Contract::V0_2)] {
        let policy = fixture_of(version)?;
        let quota = a_quota_snapshot(&policy)?;
        let mut inst = policy.instantiate(host())?;
        let engine = inst.create_engine(CONFIG, None, &credentials())?;
        let empty = inst.snapshot(&engine)?;
        let err = inst.absorb(&engine, &quota).expect_err("no absorb before 0.3.0");
        assert!(matches!(err, Error::Unsupported { contract: c, .. } if c == contract), "{err:?}");
        assert!(err.to_string().contains("engine.absorb"), "{err}");
        assert!(inst.changes(&empty, &empty)?.map_err(|e| anyhow::anyhow!("{}", e.message))?.is_none());
        let delta = inst.changes(&empty, &quota)?.map_err(|e| anyhow::anyhow!("{}", e.message))?.context("a delta")?;
        assert_eq!(delta.state, quota, "the whole state");
        assert_eq!(delta.keep_until_ms, 0, "an older policy cannot say how long to keep it");
        let folded = inst.fold(&[empty.clone(), "{broken".into(), quota.clone()], 0, 1)?.map_err(|e| anyhow::anyhow!("{}", e.message))?;
        assert_eq!(folded.forgotten, 0);
        assert_eq!(folded.keep_until_ms, 0, "an older policy cannot say how long to keep it");
        assert_eq!(folded.unreadable.iter().map(|u| u.index).collect::<Vec<_>>(), [1]);
        let merged = inst.merge(&empty, &quota)?.map_err(|e| anyhow::anyhow!("{}", e.message))?;
        assert_eq!(folded.state, Some(merged), "pairwise merge ({version})");
    }
    Ok(())
}

fn drives_a_call_step_by_step(policy: Policy, contract: Contract) -> Result<()> {
    let mut instance = policy.instantiate(host())?;
    assert_eq!(instance.contract(), contract);
    let engine = instance.create_engine(CONFIG, None, &credentials())?;
    let call = instance.begin(&engine, &request(), &CallOptions { timeout_ms: Some(30_000) })?;
    let step = instance.next(&call, &start_input())?;
    assert_eq!(step.kind, StepKind::Send, "{}: {}", step.rule, step.why);
    let outbound = step.outbound.context("a send step carries the request")?;
    assert_eq!(outbound.route.provider, "alibaba-coding-plan");
    assert!(step.within_ms > 0 && step.within_ms <= 30_000, "bounded by the caller's timeout: {}", step.within_ms);

    let huge = CallInput { kind: InputKind::Data, head: None, data: vec![b'x'; (1 << 20) + 1], failure: None };
    let err = instance.next(&call, &huge).expect_err("over the payload limit");
    assert!(matches!(err, Error::TooLarge { what: "the body bytes read", .. }), "{err:?}");
    instance.drop_call(call)?;
    assert!(instance.select(&engine)?.is_ok(), "the instance is untouched");
    Ok(())
}

/// What a refusal of the 0.4.0 component says: the version it exports and those this host speaks.
fn names_both(err: &Error) {
    assert!(matches!(err, Error::UnknownContract { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("exports failover:policy/policy@0.4.0; this host speaks 0.1.0, 0.2.0 and 0.3.0"), "names every version: {text}");
}

#[test]
fn a_component_of_another_contract_version_is_refused_at_load_naming_both() -> Result<()> {
    let bytes = broken("contract-0-4");
    names_both(&Policy::from_bytes(&bytes, "future.wasm").err().context("refused")?);
    names_both(&Policy::from_bytes_baseline(&bytes, "future.wasm").err().context("refused")?);
    let dir = std::env::temp_dir().join(format!("failover-contracts-{}", std::process::id()));
    let refused = Policy::from_bytes_cached(&bytes, "future.wasm", &ArtifactCache::new(&dir)).err();
    let _ = std::fs::remove_dir_all(&dir);
    names_both(&refused.context("refused from the cache")?);
    // The same policy built for 0.3.0 loads: only the version was wrong.
    assert_eq!(Policy::from_bytes(&broken("trap"), "trap.wasm")?.contract(), Contract::V0_3);
    Ok(())
}

#[test]
fn a_component_of_another_contract_version_is_refused_at_swap_and_the_running_policy_stays() -> Result<()> {
    let (running, events) = running(Policy::load_default()?)?;
    let (version, before) = (running.version(), running.snapshot());
    let dir = std::env::temp_dir().join(format!("failover-contracts-swap-{}", std::process::id()));
    let refused = running.swap_tiered(&broken("contract-0-4"), "future.wasm", &ArtifactCache::new(&dir)).err();
    let _ = std::fs::remove_dir_all(&dir);
    names_both(&refused.context("refused")?);

    let said = events.take();
    assert_eq!(said.iter().map(|e| e.rule.as_str()).collect::<Vec<_>>(), ["host.swap-refused"]);
    assert!(said[0].message.contains("@0.4.0") && said[0].message.contains(&version.policy), "{}", said[0].message);
    assert_eq!((running.version().policy, running.generation()), (version.policy, 0));
    assert_eq!(running.snapshot(), before);
    assert_eq!(selected(&running)?, "tencent-token-plan", "still serving, cooldown held");
    Ok(())
}

#[test]
fn a_swap_to_the_0_1_fixture_and_back_carries_the_state() -> Result<()> {
    let (running, _) = running(Policy::load_default()?)?;
    let current = running.version();

    let to_old = running.swap(fixture()?)?;
    assert_eq!((&to_old.from.policy, to_old.generation), (&current.policy, 1));
    assert!(to_old.to.policy.starts_with("0.1."), "{:?}", to_old.to);
    assert_eq!(selected(&running)?, "tencent-token-plan", "the 0.1.0 policy holds the cooldown written by 0.3.0");

    let back = running.swap(Policy::load_default()?)?;
    assert_eq!((&back.to.policy, back.generation), (&current.policy, 2));
    assert_eq!(selected(&running)?, "tencent-token-plan", "and 0.3.0 holds it again after 0.1.0");
    Ok(())
}

/// Answers every request whole, as a provider that does not stream.
struct Answers;

const ANSWER: &[u8] = br#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"whole"},"finish_reason":"stop"}]}"#;

impl failover_host::Transport for Answers {
    fn send(
        &mut self,
        _: &failover_host::types::Outbound,
        _: Option<&failover_host::types::Header>,
    ) -> std::result::Result<failover_host::types::HttpResponse, failover_host::types::TransportFailure> {
        let headers = vec![failover_host::types::Header { name: "content-type".into(), value: "application/json".into() }];
        Ok(failover_host::types::HttpResponse { status: 200, headers, body: ANSWER.to_vec() })
    }
}

#[test]
fn a_streamed_call_on_a_0_1_policy_is_answered_whole_by_its_own_call() -> Result<()> {
    let mut instance = fixture()?.instantiate(failover_host::Host::new(Answers))?;
    let engine = instance.create_engine(CONFIG, None, &credentials())?;
    let begun = instance.stream(&engine, &request(), &CallOptions { timeout_ms: None })?;
    let failover_host::Begun::Answer(answer) = begun else { anyhow::bail!("the 0.1 policy's call failed") };
    assert_eq!(answer.head().status, 200);
    let (body, ended) = answer.finish()?;
    assert_eq!(body, ANSWER);
    assert!(ended.error.is_none());
    assert_eq!(ended.route.context("the answering route")?.provider, "alibaba-coding-plan");
    Ok(())
}
