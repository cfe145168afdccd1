//! The contract's values, generated from `wit/policy.wit` (0.3.0; an older policy's values are
//! converted to these), plus their WIT spellings for JSON output, traces and timelines.

pub use crate::bindings::v0_3::exports::failover::policy::policy::{
    Attempt, CallFailure, CallInput, CallOptions, CallSuccess, CheckReport, Delta, Folded, InputKind, PrepareError, ResponseHead,
    StateError, Step, StepKind, UnreadableState, VersionInfo,
};
pub use crate::bindings::v0_3::failover::policy::types::{
    Action, ActionKind, CallProgress, Classified, CredentialInfo, CredentialState, CredentialStatus, Event, EventKind, Failure,
    FailureKind, FinalError, Header, HttpResponse, NoRoute, Outbound, ProviderStatus, Reason, Request, Route, Start, TransportFailure,
    TransportKind,
};

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Auth => "auth",
            Reason::AuthPermanent => "auth-permanent",
            Reason::Billing => "billing",
            Reason::RateLimit => "rate-limit",
            Reason::QuotaExhausted => "quota-exhausted",
            Reason::Overloaded => "overloaded",
            Reason::ServerError => "server-error",
            Reason::Timeout => "timeout",
            Reason::Connection => "connection",
            Reason::ContextOverflow => "context-overflow",
            Reason::ModelNotFound => "model-not-found",
            Reason::ContentFilter => "content-filter",
            Reason::BadRequest => "bad-request",
            Reason::Unknown => "unknown",
        }
    }
}

impl TransportKind {
    pub const ALL: [TransportKind; 6] = [
        TransportKind::Timeout,
        TransportKind::ConnectionRefused,
        TransportKind::Dns,
        TransportKind::Tls,
        TransportKind::Reset,
        TransportKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Timeout => "timeout",
            TransportKind::ConnectionRefused => "connection-refused",
            TransportKind::Dns => "dns",
            TransportKind::Tls => "tls",
            TransportKind::Reset => "reset",
            TransportKind::Other => "other",
        }
    }

    pub fn parse(name: &str) -> Option<TransportKind> {
        TransportKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Retry => "retry",
            ActionKind::Rotate => "rotate",
            ActionKind::FallBack => "fall-back",
            ActionKind::Wait => "wait",
            ActionKind::GiveUp => "give-up",
        }
    }
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Notice => "notice",
            EventKind::FallbackActivated => "fallback-activated",
            EventKind::PrimaryRestored => "primary-restored",
            EventKind::CredentialCooldown => "credential-cooldown",
            EventKind::CredentialDead => "credential-dead",
            EventKind::CredentialRestored => "credential-restored",
            EventKind::RouteCooldown => "route-cooldown",
            EventKind::RetryScheduled => "retry-scheduled",
            EventKind::GaveUp => "gave-up",
            EventKind::CircuitOpened => "circuit-opened",
            EventKind::CircuitHalfOpen => "circuit-half-open",
            EventKind::CircuitClosed => "circuit-closed",
            EventKind::RetryBudgetExhausted => "retry-budget-exhausted",
            EventKind::StateRestored => "state-restored",
            EventKind::StateDropped => "state-dropped",
            EventKind::StreamEventDropped => "stream-event-dropped",
            EventKind::StreamResumed => "stream-resumed",
            EventKind::StreamFailed => "stream-failed",
        }
    }
}

impl Route {
    /// `provider/model#credential`, as traces and timelines write a route (the guest's
    /// `label` is `provider/model`, the key of a route's health).
    pub fn label_with_credential(&self) -> String {
        format!("{}/{}#{}", self.provider, self.model, self.credential)
    }
}

impl Failure {
    pub fn http(response: HttpResponse) -> Failure {
        Failure { kind: FailureKind::Http, response: Some(response), transport: None }
    }

    pub fn transport(kind: TransportKind, message: impl Into<String>) -> Failure {
        Failure { kind: FailureKind::Transport, response: None, transport: Some(TransportFailure { kind, message: message.into() }) }
    }
}
