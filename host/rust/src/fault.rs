//! What a call gets when the policy itself failed (trapped, ran out of time or memory): a safe
//! default decision made by the host alone, and how faults are tolerated before the host stops
//! restarting a policy.

use std::time::Duration;

use crate::types::{
    Action, ActionKind, CallProgress, Classified, Failure, FailureKind, FinalError, HttpResponse, NoRoute, Reason, Route, TransportKind,
};

/// The decision a call gets when the policy failed during it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnFault {
    /// A provider-side failure (408, 429, 5xx, timeout, reset, refused connection) is retried
    /// once on the same route after `FAIL_OPEN_DELAY_MS`; anything else gives up.
    #[default]
    FailOpen,
    /// Every call the policy failed in gives up, saying so.
    FailClosed,
}

/// How a `PolicyHost` tolerates a failing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supervision {
    pub on_fault: OnFault,
    /// This many faults within `crash_window` is a crash loop: the host stops restarting the
    /// policy and falls back to the previous good one, or, with none, fails every call closed.
    pub max_crashes: usize,
    pub crash_window: Duration,
}

impl Default for Supervision {
    fn default() -> Self {
        Supervision { on_fault: OnFault::FailOpen, max_crashes: 3, crash_window: Duration::from_secs(60) }
    }
}

/// The delay of fail-open's single retry.
pub const FAIL_OPEN_DELAY_MS: u64 = 1000;

/// The rule on everything the host decides or reports for a failed policy.
pub const FAULT_RULE: &str = "host.policy-fault";

pub(crate) fn action(mode: OnFault, route: &Route, failure: &Failure, progress: Option<&CallProgress>, why: &str) -> Action {
    let mut progress =
        progress.cloned().unwrap_or(CallProgress { attempts: 0, waited_ms: 0, route_retries: 0, left_positions: Vec::new() });
    progress.attempts += 1;
    let retry = mode == OnFault::FailOpen && provider_side(failure) && progress.route_retries == 0;
    let classified = Classified {
        reason: Reason::Unknown,
        retryable: retry,
        rotate_credential: false,
        fall_back: false,
        retry_after_ms: None,
        rule: FAULT_RULE.into(),
        message: format!("not classified: the policy failed ({why})"),
    };
    if retry {
        progress.route_retries += 1;
        progress.waited_ms += FAIL_OPEN_DELAY_MS;
        return Action {
            kind: ActionKind::Retry,
            route: Some(route.clone()),
            delay_ms: FAIL_OPEN_DELAY_MS,
            fresh_connection: true,
            classified,
            progress,
            rule: format!("{FAULT_RULE}.retry"),
            why: format!("the policy failed ({why}); fail-open: one retry on the same route in {FAIL_OPEN_DELAY_MS} ms"),
            error: None,
        };
    }
    let error = final_error(why);
    Action {
        kind: ActionKind::GiveUp,
        route: None,
        delay_ms: 0,
        fresh_connection: false,
        classified,
        progress,
        rule: format!("{FAULT_RULE}.give-up"),
        why: error.message.clone(),
        error: Some(error),
    }
}

pub(crate) fn final_error(why: &str) -> FinalError {
    FinalError {
        reason: Reason::Unknown,
        message: format!("the failover policy failed ({why}); the host gave up on this call"),
        retry_at_ms: None,
        providers: Vec::new(),
    }
}

/// A crash loop ended by going back to the policy that ran before (`tests/hosts/host-messages.json`).
pub(crate) fn crash_loop_message(faults: usize, window_s: u64, why: &str) -> String {
    format!("the policy failed {faults} times within {window_s} s (last: {why}); fell back to the previous policy")
}

/// A crash loop with nothing to go back to: every call fails closed.
pub(crate) fn closed_message(faults: usize, window_s: u64, why: &str) -> String {
    format!(
        "the policy failed {faults} times within {window_s} s (last: {why}) and no previous policy could take over; \
         every call fails closed until a new policy is swapped in"
    )
}

/// Whether a response is an answer while the policy cannot say: its status is a 2xx.
pub(crate) fn succeeded(response: &HttpResponse) -> bool {
    (200..300).contains(&response.status)
}

pub(crate) fn no_route(why: &str) -> NoRoute {
    NoRoute { message: final_error(why).message, earliest_ms: None, providers: Vec::new() }
}

/// A failure that says the provider, not the request or the key, was the problem.
fn provider_side(failure: &Failure) -> bool {
    match (failure.kind, &failure.response, &failure.transport) {
        (FailureKind::Http, Some(r), _) => matches!(r.status, 408 | 429 | 500..=599),
        (FailureKind::Transport, _, Some(t)) => {
            matches!(t.kind, TransportKind::Timeout | TransportKind::Reset | TransportKind::ConnectionRefused)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The messages every host writes itself are spelled in shared data, so the hosts agree.
    #[test]
    fn host_messages_match_the_shared_templates() {
        let shared: Value = serde_json::from_str(include_str!("../../../tests/hosts/host-messages.json")).expect("shared messages");
        let f = &shared["fields"];
        let text = |k: &str| f[k].as_str().map(str::to_string).unwrap_or_else(|| f[k].to_string());
        let render = |name: &str| {
            let mut t = shared["templates"][name].as_str().expect("template").to_string();
            for (k, _) in f.as_object().expect("fields") {
                t = t.replace(&format!("{{{k}}}"), &text(k));
            }
            t
        };
        let why = text("why");
        let route = Route { provider: "p".into(), model: "m".into(), credential: "c".into(), position: 0 };
        let http = |status| Failure {
            kind: FailureKind::Http,
            response: Some(HttpResponse { status, headers: vec![], body: vec![] }),
            transport: None,
        };
        let retry = action(OnFault::FailOpen, &route, &http(503), None, &why);
        let gave_up = action(OnFault::FailOpen, &route, &http(400), None, &why);
        let faults = f["faults"].as_u64().expect("faults") as usize;
        let window = f["window_s"].as_u64().expect("window");
        let cases = [
            ("fault-gave-up", final_error(&why).message),
            ("fault-not-classified", gave_up.classified.message),
            ("fault-retry", retry.why),
            ("crash-loop", crash_loop_message(faults, window, &why)),
            ("closed", closed_message(faults, window, &why)),
        ];
        assert_eq!(FAIL_OPEN_DELAY_MS.to_string(), text("delay_ms"));
        for (name, got) in cases {
            assert_eq!(got, render(name), "{name}");
        }
    }
}
