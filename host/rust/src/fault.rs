//! What a call gets when the policy itself failed (trapped, ran out of time or memory): a safe
//! default decision made by the host alone, and how faults are tolerated before the host stops
//! restarting a policy.

use std::time::Duration;

use crate::types::{
    Action, ActionKind, CallProgress, Classified, Failure, FailureKind, FinalError, HttpResponse, NoRoute, Reason, Route,
    TransportKind,
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

pub(crate) fn action(
    mode: OnFault,
    route: &Route,
    failure: &Failure,
    progress: Option<&CallProgress>,
    why: &str,
) -> Action {
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
