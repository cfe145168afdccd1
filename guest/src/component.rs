//! The WIT glue, and nothing else: converts between the generated bindings and the policy's own
//! types, and implements `Env` over the host imports.

use std::cell::RefCell;
use std::rc::Rc;

use crate::types as t;

wit_bindgen::generate!({ world: "failover", path: "../wit" });

use exports::failover::policy::policy as wp;
use failover::policy::host;
use failover::policy::types as w;

struct Component;

struct ImportEnv;

impl crate::Env for ImportEnv {
    fn now_ms(&mut self) -> u64 {
        host::now_ms()
    }
    fn sleep_ms(&mut self, ms: u64) {
        host::sleep_ms(ms)
    }
    fn send(&mut self, request: &t::Outbound) -> Result<t::HttpResponse, t::TransportFailure> {
        host::send(&outbound_out(request)).map(response_in).map_err(transport_in)
    }
    fn emit(&mut self, e: t::Event) {
        host::emit(&w::Event {
            kind: event_kind_out(e.kind),
            at_ms: e.at_ms,
            route: e.route.map(route_out),
            rule: e.rule,
            message: e.message,
        })
    }
    fn seed(&mut self) -> u64 {
        host::seed()
    }
}

/// Shared with the engine's driven calls, which decide through it between their steps.
pub struct EngineResource(Rc<RefCell<crate::Engine>>);

pub struct DrivenCallResource {
    engine: Rc<RefCell<crate::Engine>>,
    call: RefCell<crate::DrivenCall>,
}

impl wp::Guest for Component {
    type Engine = EngineResource;
    type DrivenCall = DrivenCallResource;

    fn classify(provider: String, failure: w::Failure) -> w::Classified {
        let family = crate::classify::Family::infer(&provider);
        match failure_in(failure) {
            Ok(f) => classified_out(crate::classify::classify(family, &f)),
            Err(bad) => classified_out(bad),
        }
    }

    fn succeeded(response: w::HttpResponse) -> bool {
        crate::classify::succeeded(&response_in(response))
    }

    fn merge(a: String, b: String) -> Result<String, wp::StateError> {
        Ok(crate::snapshot::merge(&parse_state(&a, "a")?, &parse_state(&b, "b")?).to_json())
    }

    fn changes(since: String, now: String) -> Result<Option<wp::Delta>, wp::StateError> {
        let now = parse_state(&now, "now")?;
        // Empty: nothing is known to be stored yet (a process's first save).
        let since = match since.as_str() {
            "" => crate::snapshot::Snapshot { schema: crate::snapshot::SCHEMA, ..Default::default() },
            text => parse_state(text, "since")?,
        };
        let delta = crate::snapshot::changes(&since, &now);
        Ok(delta.map(|d| wp::Delta { state: d.to_json(), keep_until_ms: crate::snapshot::keep_until(&now) }))
    }

    fn fold(states: Vec<String>, now_ms: u64, forget_after_ms: u64) -> Result<wp::Folded, wp::StateError> {
        let f = crate::snapshot::fold(states.iter().map(String::as_str), now_ms, forget_after_ms);
        Ok(wp::Folded {
            keep_until_ms: f.state.as_ref().map_or(0, crate::snapshot::keep_until),
            state: f.state.map(|s| s.to_json()),
            unreadable: f
                .unreadable
                .into_iter()
                .map(|u| wp::UnreadableState { index: u.index, message: u.message, newer: u.newer })
                .collect(),
            forgotten: f.forgotten,
        })
    }

    fn version() -> wp::VersionInfo {
        wp::VersionInfo { policy: crate::POLICY_VERSION.to_string(), schema: crate::snapshot::SCHEMA }
    }
}

impl wp::GuestEngine for EngineResource {
    fn create(config: String, state: Option<String>, credentials: Vec<w::CredentialInfo>) -> Result<wp::Engine, wp::ConfigError> {
        let creds: Vec<t::CredentialInfo> =
            credentials.into_iter().map(|c| t::CredentialInfo { id: c.id, fingerprint: c.fingerprint }).collect();
        crate::Engine::create(&config, state.as_deref(), &creds, &mut ImportEnv)
            .map(|e| wp::Engine::new(EngineResource(Rc::new(RefCell::new(e)))))
            .map_err(|e| wp::ConfigError { field: e.field, message: e.message })
    }

    fn select(&self) -> Result<w::Route, w::NoRoute> {
        self.0.borrow_mut().select(&mut ImportEnv).map(route_out).map_err(no_route_out)
    }

    fn start_call(&self) -> Result<w::Start, w::FinalError> {
        match self.0.borrow_mut().start_call(&mut ImportEnv) {
            Ok(s) => Ok(w::Start {
                route: route_out(s.route),
                delay_ms: s.delay_ms,
                progress: progress_out(s.progress),
                rule: s.rule,
                why: s.why,
            }),
            Err(e) => Err(final_error_out(e)),
        }
    }

    fn on_failure(&self, route: w::Route, failure: w::Failure, progress: Option<w::CallProgress>) -> w::Action {
        let route = route_in(route);
        let progress = progress.map(|p| t::CallProgress {
            attempts: p.attempts,
            waited_ms: p.waited_ms,
            route_retries: p.route_retries,
            left_positions: p.left_positions,
            deadline_ms: None,
        });
        match failure_in(failure) {
            Ok(f) => action_out(self.0.borrow_mut().on_failure(&route, &f, progress, &mut ImportEnv)),
            Err(bad) => {
                let f = t::Failure::Transport(t::TransportFailure { kind: t::TransportKind::Other, message: bad.message });
                action_out(self.0.borrow_mut().on_failure(&route, &f, progress, &mut ImportEnv))
            }
        }
    }

    fn on_success(&self, route: w::Route) {
        self.0.borrow_mut().on_success(&route_in(route), &mut ImportEnv)
    }

    fn prepare(&self, route: w::Route, request: w::Request) -> Result<w::Outbound, wp::PrepareError> {
        self.0
            .borrow()
            .prepare(&route_in(route), &request_in(request))
            .map(|o| outbound_out(&o))
            .map_err(|message| wp::PrepareError { message })
    }

    fn call(&self, request: w::Request) -> Result<wp::CallSuccess, wp::CallFailure> {
        match self.0.borrow_mut().call(&request_in(request), &mut ImportEnv) {
            Ok(s) => Ok(wp::CallSuccess {
                response: response_out(s.response),
                route: route_out(s.route),
                attempts: s.attempts.into_iter().map(attempt_out).collect(),
            }),
            Err(f) => Err(wp::CallFailure { error: final_error_out(f.error), attempts: f.attempts.into_iter().map(attempt_out).collect() }),
        }
    }

    fn begin(&self, request: w::Request, options: wp::CallOptions) -> wp::DrivenCall {
        let call = crate::DrivenCall::new(&self.0.borrow(), request_in(request), options.timeout_ms, &mut ImportEnv);
        wp::DrivenCall::new(DrivenCallResource { engine: Rc::clone(&self.0), call: RefCell::new(call) })
    }

    fn set_credentials(&self, credentials: Vec<w::CredentialInfo>) {
        let creds: Vec<t::CredentialInfo> =
            credentials.into_iter().map(|c| t::CredentialInfo { id: c.id, fingerprint: c.fingerprint }).collect();
        self.0.borrow_mut().set_credentials(&creds, &mut ImportEnv)
    }

    fn snapshot(&self) -> String {
        self.0.borrow().snapshot(&mut ImportEnv).to_json()
    }

    fn check(&self) -> wp::CheckReport {
        let r = self.0.borrow().check(&mut ImportEnv);
        wp::CheckReport { ok: r.ok, findings: r.findings }
    }

    fn absorb(&self, state: String) -> Result<(), wp::StateError> {
        self.0.borrow_mut().absorb(parse_state(&state, "state")?);
        Ok(())
    }
}

impl wp::GuestDrivenCall for DrivenCallResource {
    fn next(&self, input: wp::CallInput) -> wp::Step {
        let step = self.call.borrow_mut().next(&mut self.engine.borrow_mut(), call_input_in(input), &mut ImportEnv);
        step_out(step)
    }
}

export!(Component);

fn parse_state(json: &str, which: &str) -> Result<crate::snapshot::Snapshot, wp::StateError> {
    crate::snapshot::Snapshot::parse(json).map_err(|e| wp::StateError { message: format!("snapshot {which}: {}: {}", e.field, e.message) })
}

fn head_in(h: wp::ResponseHead) -> t::ResponseHead {
    t::ResponseHead { status: h.status, headers: h.headers.into_iter().map(|h| t::Header { name: h.name, value: h.value }).collect() }
}

fn head_out(h: t::ResponseHead) -> wp::ResponseHead {
    wp::ResponseHead { status: h.status, headers: h.headers.into_iter().map(|h| w::Header { name: h.name, value: h.value }).collect() }
}

fn call_input_in(i: wp::CallInput) -> t::CallInput {
    let kind = match i.kind {
        wp::InputKind::Start => t::InputKind::Start,
        wp::InputKind::Head => t::InputKind::Head,
        wp::InputKind::Data => t::InputKind::Data,
        wp::InputKind::End => t::InputKind::End,
        wp::InputKind::TimedOut => t::InputKind::TimedOut,
        wp::InputKind::Failed => t::InputKind::Failed,
        wp::InputKind::Slept => t::InputKind::Slept,
    };
    t::CallInput { kind, head: i.head.map(head_in), data: i.data, failure: i.failure.map(transport_in) }
}

fn step_out(s: t::Step) -> wp::Step {
    let kind = match s.kind {
        t::StepKind::Send => wp::StepKind::Send,
        t::StepKind::Read => wp::StepKind::Read,
        t::StepKind::Sleep => wp::StepKind::Sleep,
        t::StepKind::Done => wp::StepKind::Done,
        t::StepKind::GiveUp => wp::StepKind::GiveUp,
    };
    wp::Step {
        kind,
        outbound: s.outbound.as_ref().map(outbound_out),
        within_ms: s.within_ms,
        commit: s.commit.map(head_out),
        deliver: s.deliver,
        error: s.error.map(final_error_out),
        attempts: s.attempts.into_iter().map(attempt_out).collect(),
        route: s.route.map(route_out),
        rule: s.rule,
        why: s.why,
    }
}

/// A failure record must carry the payload its kind names; a host that sends neither gets an
/// `unknown` classification rather than a trap.
fn failure_in(f: w::Failure) -> Result<t::Failure, t::Classified> {
    match (f.kind, f.response, f.transport) {
        (w::FailureKind::Http, Some(r), _) => Ok(t::Failure::Http(response_in(r))),
        (w::FailureKind::Transport, _, Some(tr)) => Ok(t::Failure::Transport(transport_in(tr))),
        (kind, _, _) => Err(crate::classify::verdict(
            t::Reason::Unknown,
            None,
            "host.malformed-failure".into(),
            format!("the host sent a {kind:?} failure without its payload"),
        )),
    }
}

fn response_in(r: w::HttpResponse) -> t::HttpResponse {
    t::HttpResponse {
        status: r.status,
        headers: r.headers.into_iter().map(|h| t::Header { name: h.name, value: h.value }).collect(),
        body: r.body,
    }
}

fn response_out(r: t::HttpResponse) -> w::HttpResponse {
    w::HttpResponse {
        status: r.status,
        headers: r.headers.into_iter().map(|h| w::Header { name: h.name, value: h.value }).collect(),
        body: r.body,
    }
}

fn transport_in(tr: w::TransportFailure) -> t::TransportFailure {
    let kind = match tr.kind {
        w::TransportKind::Timeout => t::TransportKind::Timeout,
        w::TransportKind::ConnectionRefused => t::TransportKind::ConnectionRefused,
        w::TransportKind::Dns => t::TransportKind::Dns,
        w::TransportKind::Tls => t::TransportKind::Tls,
        w::TransportKind::Reset => t::TransportKind::Reset,
        w::TransportKind::Other => t::TransportKind::Other,
    };
    t::TransportFailure { kind, message: tr.message }
}

fn request_in(r: w::Request) -> t::Request {
    t::Request {
        path: r.path,
        method: r.method,
        headers: r.headers.into_iter().map(|h| t::Header { name: h.name, value: h.value }).collect(),
        body: r.body,
    }
}

fn outbound_out(o: &t::Outbound) -> w::Outbound {
    w::Outbound {
        route: route_out(o.route.clone()),
        url: o.url.clone(),
        method: o.method.clone(),
        headers: o.headers.iter().map(|h| w::Header { name: h.name.clone(), value: h.value.clone() }).collect(),
        body: o.body.clone(),
        secret_header: o.secret_header.clone(),
        secret_prefix: o.secret_prefix.clone(),
        connect_timeout_ms: o.connect_timeout_ms,
        read_timeout_ms: o.read_timeout_ms,
        fresh_connection: o.fresh_connection,
    }
}

fn route_in(r: w::Route) -> t::Route {
    t::Route { provider: r.provider, model: r.model, credential: r.credential, position: r.position }
}

fn route_out(r: t::Route) -> w::Route {
    w::Route { provider: r.provider, model: r.model, credential: r.credential, position: r.position }
}

fn reason_out(r: t::Reason) -> w::Reason {
    match r {
        t::Reason::Auth => w::Reason::Auth,
        t::Reason::AuthPermanent => w::Reason::AuthPermanent,
        t::Reason::Billing => w::Reason::Billing,
        t::Reason::RateLimit => w::Reason::RateLimit,
        t::Reason::QuotaExhausted => w::Reason::QuotaExhausted,
        t::Reason::Overloaded => w::Reason::Overloaded,
        t::Reason::ServerError => w::Reason::ServerError,
        t::Reason::Timeout => w::Reason::Timeout,
        t::Reason::Connection => w::Reason::Connection,
        t::Reason::ContextOverflow => w::Reason::ContextOverflow,
        t::Reason::ModelNotFound => w::Reason::ModelNotFound,
        t::Reason::ContentFilter => w::Reason::ContentFilter,
        t::Reason::BadRequest => w::Reason::BadRequest,
        t::Reason::Unknown => w::Reason::Unknown,
    }
}

fn classified_out(c: t::Classified) -> w::Classified {
    w::Classified {
        reason: reason_out(c.reason),
        retryable: c.retryable,
        rotate_credential: c.rotate_credential,
        fall_back: c.fall_back,
        retry_after_ms: c.retry_after_ms,
        rule: c.rule,
        message: c.message,
    }
}

fn credential_state_out(s: t::CredentialState) -> w::CredentialState {
    match s {
        t::CredentialState::Available => w::CredentialState::Available,
        t::CredentialState::Suspect => w::CredentialState::Suspect,
        t::CredentialState::CoolingDown => w::CredentialState::CoolingDown,
        t::CredentialState::Dead => w::CredentialState::Dead,
        t::CredentialState::Missing => w::CredentialState::Missing,
    }
}

fn provider_status_out(p: t::ProviderStatus) -> w::ProviderStatus {
    w::ProviderStatus {
        provider: p.provider,
        model: p.model,
        position: p.position,
        route_until_ms: p.route_until_ms,
        credentials: p
            .credentials
            .into_iter()
            .map(|c| w::CredentialStatus {
                id: c.id,
                state: credential_state_out(c.state),
                until_ms: c.until_ms,
                last_reason: c.last_reason.map(reason_out),
                last_error: c.last_error,
            })
            .collect(),
        summary: p.summary,
    }
}

fn no_route_out(n: t::NoRoute) -> w::NoRoute {
    w::NoRoute { message: n.message, earliest_ms: n.earliest_ms, providers: n.providers.into_iter().map(provider_status_out).collect() }
}

fn final_error_out(e: t::FinalError) -> w::FinalError {
    w::FinalError {
        reason: reason_out(e.reason),
        message: e.message,
        retry_at_ms: e.retry_at_ms,
        providers: e.providers.into_iter().map(provider_status_out).collect(),
    }
}

fn action_out(a: t::Action) -> w::Action {
    let kind = match a.kind {
        t::ActionKind::Retry => w::ActionKind::Retry,
        t::ActionKind::Rotate => w::ActionKind::Rotate,
        t::ActionKind::FallBack => w::ActionKind::FallBack,
        t::ActionKind::Wait => w::ActionKind::Wait,
        t::ActionKind::GiveUp => w::ActionKind::GiveUp,
    };
    w::Action {
        kind,
        route: a.route.map(route_out),
        delay_ms: a.delay_ms,
        fresh_connection: a.fresh_connection,
        classified: classified_out(a.classified),
        progress: progress_out(a.progress),
        rule: a.rule,
        why: a.why,
        error: a.error.map(final_error_out),
    }
}

fn progress_out(p: t::CallProgress) -> w::CallProgress {
    w::CallProgress { attempts: p.attempts, waited_ms: p.waited_ms, route_retries: p.route_retries, left_positions: p.left_positions }
}

fn attempt_out(a: t::Attempt) -> wp::Attempt {
    wp::Attempt {
        route: route_out(a.route),
        at_ms: a.at_ms,
        outcome: a.outcome,
        classified: a.classified.map(classified_out),
        action: a.action.map(action_out),
    }
}

fn event_kind_out(k: t::EventKind) -> w::EventKind {
    use t::EventKind as K;
    match k {
        K::Notice => w::EventKind::Notice,
        K::FallbackActivated => w::EventKind::FallbackActivated,
        K::PrimaryRestored => w::EventKind::PrimaryRestored,
        K::CredentialCooldown => w::EventKind::CredentialCooldown,
        K::CredentialDead => w::EventKind::CredentialDead,
        K::CredentialRestored => w::EventKind::CredentialRestored,
        K::RouteCooldown => w::EventKind::RouteCooldown,
        K::RetryScheduled => w::EventKind::RetryScheduled,
        K::GaveUp => w::EventKind::GaveUp,
        K::CircuitOpened => w::EventKind::CircuitOpened,
        K::CircuitHalfOpen => w::EventKind::CircuitHalfOpen,
        K::CircuitClosed => w::EventKind::CircuitClosed,
        K::RetryBudgetExhausted => w::EventKind::RetryBudgetExhausted,
        K::StateRestored => w::EventKind::StateRestored,
        K::StateDropped => w::EventKind::StateDropped,
        K::StreamEventDropped => w::EventKind::StreamEventDropped,
        K::StreamResumed => w::EventKind::StreamResumed,
        K::StreamFailed => w::EventKind::StreamFailed,
    }
}
