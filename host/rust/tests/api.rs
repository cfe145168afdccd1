//! The library API a host app drives itself: select, prepare, report the outcome, persist
//! state. No network: the host here sends nothing, it only reports what "happened".

mod support;

use failover_host::types::{ActionKind, Failure, HttpResponse, Request};
use failover_host::{Clock, Error, EventLog, Host, Policy, VirtualClock};
use support::{credentials, NoNetwork, CONFIG, QUOTA};

#[test]
fn a_host_driven_call_falls_back_and_the_state_carries_over() {
    let policy = Policy::load_default().expect("policy");
    let events = EventLog::new();
    let host =
        Host::new(NoNetwork).with_clock(Clock::Virtual(VirtualClock::new(1_795_528_800_000))).with_events(events.clone()).with_seed(1);
    let mut inst = policy.instantiate(host).expect("instantiate");
    let version = inst.version().expect("version");
    assert!(!version.policy.is_empty() && version.schema >= 1);

    let engine = inst.create_engine(CONFIG, None, &credentials()).expect("config");
    let route = inst.select(&engine).expect("no trap").expect("a route");
    assert_eq!((route.provider.as_str(), route.credential.as_str(), route.position), ("alibaba-coding-plan", "ali-1", 0));
    let start = inst.start_call(&engine).expect("no trap").expect("a start");
    assert_eq!((start.route.position, start.delay_ms), (0, 0));

    let request = Request {
        path: "/chat/completions".into(),
        method: "POST".into(),
        headers: Vec::new(),
        body: br#"{"model":"placeholder","messages":[]}"#.to_vec(),
    };
    let out = inst.prepare(&engine, &route, &request).expect("no trap").expect("prepared");
    assert_eq!(out.url, "https://coding.example/v1/chat/completions");
    assert!(String::from_utf8_lossy(&out.body).contains("qwen3.6-plus"), "the model is rewritten per route");

    let failure = Failure::http(HttpResponse { status: 429, headers: Vec::new(), body: QUOTA.into() });
    let action = inst.on_failure(&engine, &start.route, &failure, Some(&start.progress)).expect("no trap");
    assert_eq!(action.kind, ActionKind::FallBack);
    let next = action.route.clone().expect("a fallback route");
    assert_eq!(next.provider, "tencent-token-plan");
    let out = inst.prepare(&engine, &next, &request).expect("no trap").expect("prepared");
    assert_eq!(out.url, "https://tokens.example/v1/chat/completions");
    inst.on_success(&engine, &next).expect("no trap");
    assert!(events.take().iter().any(|e| e.message.contains("using fallback 1/1")), "a fallback notice");

    let snapshot = inst.snapshot(&engine).expect("snapshot");
    let merged = inst.merge(&snapshot, &snapshot).expect("no trap").expect("merge");
    assert!(inst.check(&engine).expect("check").ok);
    inst.drop_engine(engine).expect("drop");

    // A new engine (a new process, a new cron tick) starts where the last one left off.
    let engine = inst.create_engine(CONFIG, Some(&merged), &credentials()).expect("restored");
    let route = inst.select(&engine).expect("no trap").expect("a route");
    assert_eq!(route.provider, "tencent-token-plan");
}

#[test]
fn bad_configs_are_typed_errors_naming_the_field() {
    let policy = Policy::load_default().expect("policy");
    let mut inst = policy.instantiate(Host::new(NoNetwork)).expect("instantiate");
    let bad = CONFIG.replace("https://tokens.example/v1/", "ftp://tokens");
    match inst.create_engine(&bad, None, &credentials()) {
        Err(Error::Config { field, .. }) => assert_eq!(field, "providers.tencent-token-plan.base_url"),
        other => panic!("want a config error, got {:?}", other.map(|_| "an engine")),
    }
    // The instance is still usable after a refused config.
    assert!(inst.create_engine(CONFIG, None, &credentials()).is_ok());
}

#[test]
fn an_engine_used_with_another_instance_is_an_error_not_a_panic() {
    let policy = Policy::load_default().expect("policy");
    let mut a = policy.instantiate(Host::new(NoNetwork)).expect("instantiate");
    let mut b = policy.instantiate(Host::new(NoNetwork)).expect("instantiate");
    let engine = a.create_engine(CONFIG, None, &credentials()).expect("config");
    let _ = b.create_engine(CONFIG, None, &credentials()).expect("config");
    assert!(matches!(b.select(&engine), Err(Error::Guest(_))));
}

#[test]
fn a_host_driving_its_own_loop_asks_the_policy_what_counts_as_an_answer() {
    const OVERLOADED_EVENT: &str =
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    const ANSWER: &str = r#"{"id":"x","object":"chat.completion","choices":[{"message":{"content":"no error here"}}]}"#;
    let mut inst = Policy::load_default().expect("policy").instantiate(Host::new(NoNetwork)).expect("instantiate");
    let running =
        failover_host::PolicyHost::start(Policy::load_default().expect("policy"), CONFIG, None, credentials(), || Host::new(NoNetwork))
            .expect("start");
    let cases = [(200, OVERLOADED_EVENT, false), (200, ANSWER, true), (201, "", true), (429, QUOTA, false)];
    for (status, body, answer) in cases {
        let response = HttpResponse { status, headers: Vec::new(), body: body.into() };
        assert_eq!(inst.succeeded(&response).expect("no trap"), answer, "Instance: {status} {body}");
        assert_eq!(running.succeeded(&response).expect("no trap").value, answer, "PolicyHost: {status} {body}");
    }
}
