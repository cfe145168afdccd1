//! A policy that misbehaves on purpose, for the hosts' containment tests. Without a feature it
//! behaves dully (no route, give up) and keeps the snapshot it was given verbatim, so a host can
//! check that state survives it. Each cargo feature adds one misbehaviour (see Cargo.toml).

use std::cell::RefCell;

// The contract as build.rs leaves it: `wit/policy.wit`, or with `contract-0-4` version 0.4.0.
wit_bindgen::generate!({ world: "failover", path: concat!(env!("OUT_DIR"), "/wit") });

use exports::failover::policy::policy as wp;
use failover::policy::types as w;

/// The schema this build claims to write.
const SCHEMA: u32 = if cfg!(feature = "schema") { 1 } else { 2 };

struct Component;

pub struct Engine {
    state: RefCell<String>,
}

fn classified() -> w::Classified {
    w::Classified {
        reason: w::Reason::Unknown,
        retryable: false,
        rotate_credential: false,
        fall_back: false,
        retry_after_ms: None,
        rule: "broken.none".into(),
        message: "the broken test policy classifies nothing".into(),
    }
}

fn final_error() -> w::FinalError {
    w::FinalError {
        reason: w::Reason::Unknown,
        message: "the broken test policy routes nothing".into(),
        retry_at_ms: None,
        providers: Vec::new(),
    }
}

/// The `schema` field of a snapshot, read without a JSON parser (this crate has no other deps).
fn schema_of(snapshot: &str) -> Option<u64> {
    let rest = &snapshot[snapshot.find("\"schema\"")? + "\"schema\"".len()..];
    let digits: String = rest.trim_start_matches([' ', ':']).chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A driven call that gives up at its first step.
pub struct DrivenCall;

impl wp::GuestDrivenCall for DrivenCall {
    fn next(&self, _: wp::CallInput) -> wp::Step {
        wp::Step {
            kind: wp::StepKind::GiveUp,
            outbound: None,
            within_ms: 0,
            commit: None,
            deliver: Vec::new(),
            error: Some(final_error()),
            attempts: Vec::new(),
            route: None,
            rule: "broken.give-up".into(),
            why: final_error().message,
        }
    }
}

impl wp::Guest for Component {
    type Engine = Engine;
    type DrivenCall = DrivenCall;

    fn classify(_: String, _: w::Failure) -> w::Classified {
        classified()
    }

    fn succeeded(response: w::HttpResponse) -> bool {
        (200..300).contains(&response.status)
    }

    fn merge(a: String, _: String) -> Result<String, wp::StateError> {
        Ok(a)
    }

    fn changes(_: String, _: String) -> Result<Option<wp::Delta>, wp::StateError> {
        Ok(None)
    }

    fn fold(states: Vec<String>, _: u64, _: u64) -> Result<wp::Folded, wp::StateError> {
        Ok(wp::Folded { state: states.into_iter().next(), keep_until_ms: 0, unreadable: Vec::new(), forgotten: 0 })
    }

    fn version() -> wp::VersionInfo {
        wp::VersionInfo { policy: format!("broken-{}", env!("CARGO_PKG_VERSION")), schema: SCHEMA }
    }
}

impl wp::GuestEngine for Engine {
    fn create(_: String, state: Option<String>, _: Vec<w::CredentialInfo>) -> Result<wp::Engine, wp::ConfigError> {
        let state = state.unwrap_or_else(|| format!("{{\"schema\":{SCHEMA}}}"));
        if let Some(schema) = schema_of(&state).filter(|&s| s > SCHEMA as u64) {
            return Err(wp::ConfigError {
                field: "state.schema".into(),
                message: format!("snapshot schema {schema} is newer than this policy's schema {SCHEMA}"),
            });
        }
        Ok(wp::Engine::new(Engine { state: RefCell::new(state) }))
    }

    fn select(&self) -> Result<w::Route, w::NoRoute> {
        if cfg!(feature = "trap") {
            panic!("the broken test policy traps in select");
        }
        if cfg!(feature = "alloc") {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1; 1 << 20]);
            }
        }
        Err(w::NoRoute { message: final_error().message, earliest_ms: None, providers: Vec::new() })
    }

    fn start_call(&self) -> Result<w::Start, w::FinalError> {
        Err(final_error())
    }

    fn on_failure(&self, _: w::Route, _: w::Failure, progress: Option<w::CallProgress>) -> w::Action {
        if cfg!(feature = "loop") {
            let mut n = 0u64;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        w::Action {
            kind: w::ActionKind::GiveUp,
            route: None,
            delay_ms: 0,
            fresh_connection: false,
            classified: classified(),
            progress: progress.unwrap_or(w::CallProgress { attempts: 1, waited_ms: 0, route_retries: 0, left_positions: Vec::new() }),
            rule: "broken.give-up".into(),
            why: final_error().message,
            error: Some(final_error()),
        }
    }

    fn on_success(&self, _: w::Route) {}

    fn prepare(&self, _: w::Route, _: w::Request) -> Result<w::Outbound, wp::PrepareError> {
        Err(wp::PrepareError { message: final_error().message })
    }

    fn call(&self, _: w::Request) -> Result<wp::CallSuccess, wp::CallFailure> {
        Err(wp::CallFailure { error: final_error(), attempts: Vec::new() })
    }

    fn begin(&self, _: w::Request, _: wp::CallOptions) -> wp::DrivenCall {
        wp::DrivenCall::new(DrivenCall)
    }

    fn set_credentials(&self, _: Vec<w::CredentialInfo>) {}

    fn snapshot(&self) -> String {
        self.state.borrow().clone()
    }

    fn check(&self) -> wp::CheckReport {
        wp::CheckReport { ok: true, findings: vec![format!("broken test policy holding {} bytes of state", self.state.borrow().len())] }
    }

    fn absorb(&self, _: String) -> Result<(), wp::StateError> {
        Ok(())
    }
}

export!(Component);
