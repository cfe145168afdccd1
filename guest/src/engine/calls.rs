//! How a call starts, and the guest-driven loop (`call`): every send, sleep and decision of
//! one call through the host's imports.

use super::Engine;
use crate::classify;
use crate::env::Env;
use crate::timefmt;
use crate::types::*;

use super::event;

impl Engine {
    /// How a call starts: the selected route now, else a wait for the earliest route when it
    /// fits the wait budget, else the final error. Host-driven loops and `call` share it.
    pub fn start_call(&mut self, env: &mut dyn Env) -> Result<Start, FinalError> {
        self.start_call_within(env, None)
    }

    /// `start_call` for a call with a deadline: a wait for the earliest route must end before it.
    pub fn start_call_within(&mut self, env: &mut dyn Env, deadline_ms: Option<u64>) -> Result<Start, FinalError> {
        let now = env.now_ms();
        match self.select(env) {
            Ok(route) => Ok(Start {
                route,
                delay_ms: 0,
                progress: CallProgress::default(),
                rule: "chain.select".into(),
                why: "the first usable route of the chain".into(),
            }),
            Err(no_route) => match no_route.earliest_ms {
                Some(at) if at > now && at - now <= self.config.retry.max_wait_ms && deadline_ms.is_none_or(|d| at < d) => {
                    let chain = self.chain(now);
                    let Some((_, route)) = chain.earliest(|_| true) else {
                        return Err(self.no_route_error(no_route, now));
                    };
                    let delay = at - now;
                    let why = format!(
                        "nothing is usable now; {}/{} becomes usable at {} in {delay} ms, within the wait budget of {} ms",
                        route.provider,
                        route.model,
                        timefmt::rfc3339(at),
                        self.config.retry.max_wait_ms
                    );
                    env.emit(event(EventKind::RetryScheduled, now, Some(route.clone()), "chain.wait-earliest", why.clone()));
                    self.announce(&route, now, env);
                    Ok(Start {
                        route,
                        delay_ms: delay,
                        progress: CallProgress { waited_ms: delay, ..Default::default() },
                        rule: "chain.wait-earliest".into(),
                        why,
                    })
                }
                _ => {
                    let error = self.no_route_error(no_route, now);
                    env.emit(event(EventKind::GaveUp, now, None, "chain.no-route", error.message.clone()));
                    Err(error)
                }
            },
        }
    }

    /// The guest-driven loop: every send, sleep and decision of one call.
    pub fn call(&mut self, request: &Request, env: &mut dyn Env) -> Result<CallSuccess, CallFailure> {
        let mut attempts: Vec<Attempt> = Vec::new();
        let start = self.start_call(env).map_err(|error| CallFailure { error, attempts: Vec::new() })?;
        if start.delay_ms > 0 {
            env.sleep_ms(start.delay_ms);
        }
        let mut route = start.route;
        let deadline_ms = Some(env.now_ms().saturating_add(self.config.deadline_ms));
        let mut progress = Some(CallProgress { deadline_ms, ..start.progress });
        let mut fresh = false;
        loop {
            let mut outbound = match self.prepare(&route, request) {
                Ok(o) => o,
                Err(message) => {
                    let now = env.now_ms();
                    let c = classify::verdict(Reason::BadRequest, None, "request.prepare".into(), message.clone());
                    let error =
                        FinalError { reason: Reason::BadRequest, message, retry_at_ms: None, providers: self.chain(now).statuses() };
                    attempts.push(Attempt { route, at_ms: now, outcome: "not-sent".into(), classified: Some(c), action: None });
                    return Err(CallFailure { error, attempts });
                }
            };
            outbound.fresh_connection = fresh;
            let at_ms = env.now_ms();
            let failure = match env.send(&outbound) {
                // An error event inside a 200 stream is the failure it stands for, not an answer.
                Ok(resp) if classify::succeeded(&resp) => {
                    self.on_success(&route, env);
                    attempts.push(Attempt {
                        route: route.clone(),
                        at_ms,
                        outcome: Decimal::of(resp.status.into()).as_ref().to_string(),
                        classified: None,
                        action: None,
                    });
                    return Ok(CallSuccess { response: resp, route, attempts });
                }
                Ok(resp) => Failure::Http(resp),
                Err(t) => Failure::Transport(t),
            };
            let action = self.on_failure(&route, &failure, progress.take(), env);
            attempts.push(Attempt {
                route: route.clone(),
                at_ms,
                outcome: failure.outcome(),
                classified: Some(action.classified.clone()),
                action: Some(action.clone()),
            });
            match (action.kind, action.route.clone()) {
                (ActionKind::GiveUp, _) | (_, None) => {
                    let error = self.error_of(&action, env.now_ms());
                    return Err(CallFailure { error, attempts });
                }
                (_, Some(next)) => {
                    if action.delay_ms > 0 {
                        env.sleep_ms(action.delay_ms);
                    }
                    fresh = action.fresh_connection;
                    route = next;
                }
            }
            progress = Some(action.progress);
        }
    }
}
