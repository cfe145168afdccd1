//! The policy's values, mirroring `wit/policy.wit` one to one so the WIT glue only converts.
//! Serde names are the WIT names (kebab-case), so JSON output reads like the contract.

use serde::{Deserialize, Serialize};

/// A number's decimal digits, on the stack: text for messages built on every decision, without
/// `to_string`'s formatting machinery (it showed in the decision paths' profiles).
pub struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    pub fn of(n: u64) -> Decimal {
        let mut d = Decimal { digits: [b'0'; 20], start: 20 };
        let mut rest = n;
        loop {
            d.start -= 1;
            d.digits[d.start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                return d;
            }
        }
    }
}

impl AsRef<str> for Decimal {
    fn as_ref(&self) -> &str {
        std::str::from_utf8(&self.digits[self.start..]).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Auth,
    AuthPermanent,
    Billing,
    RateLimit,
    QuotaExhausted,
    Overloaded,
    ServerError,
    Timeout,
    Connection,
    ContextOverflow,
    ModelNotFound,
    ContentFilter,
    BadRequest,
    Unknown,
}

impl Reason {
    pub const ALL: [Reason; 14] = [
        Reason::Auth,
        Reason::AuthPermanent,
        Reason::Billing,
        Reason::RateLimit,
        Reason::QuotaExhausted,
        Reason::Overloaded,
        Reason::ServerError,
        Reason::Timeout,
        Reason::Connection,
        Reason::ContextOverflow,
        Reason::ModelNotFound,
        Reason::ContentFilter,
        Reason::BadRequest,
        Reason::Unknown,
    ];

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

    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The provider's trouble, not the key's: these never touch credential state.
    pub fn is_provider_side(self) -> bool {
        matches!(
            self,
            Reason::Overloaded | Reason::ServerError | Reason::Timeout | Reason::Connection
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    Timeout,
    ConnectionRefused,
    Dns,
    Tls,
    Reset,
    Other,
    /// The limits a driven call measures through its host (never sent by a host: the guest
    /// makes these from a `timed-out` or an `end` it was told of).
    HeadersTimeout,
    FirstContentTimeout,
    IdleTimeout,
    Deadline,
    /// An event stream that ended before its format's terminal signal.
    StreamCut,
    /// An event that could not be parsed, or grew past the bound of one event.
    StreamMalformed,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Timeout => "timeout",
            TransportKind::ConnectionRefused => "connection-refused",
            TransportKind::Dns => "dns",
            TransportKind::Tls => "tls",
            TransportKind::Reset => "reset",
            TransportKind::Other => "other",
            TransportKind::HeadersTimeout => "headers-timeout",
            TransportKind::FirstContentTimeout => "first-content-timeout",
            TransportKind::IdleTimeout => "idle-timeout",
            TransportKind::Deadline => "deadline",
            TransportKind::StreamCut => "stream-cut",
            TransportKind::StreamMalformed => "stream-malformed",
        }
    }

    /// A limit ran out: the route was silent, not refused.
    pub fn is_timeout(self) -> bool {
        matches!(
            self,
            TransportKind::Timeout
                | TransportKind::HeadersTimeout
                | TransportKind::FirstContentTimeout
                | TransportKind::IdleTimeout
                | TransportKind::Deadline
        )
    }

    pub fn parse(s: &str) -> Option<TransportKind> {
        [
            TransportKind::Timeout,
            TransportKind::ConnectionRefused,
            TransportKind::Dns,
            TransportKind::Tls,
            TransportKind::Reset,
            TransportKind::Other,
            TransportKind::HeadersTimeout,
            TransportKind::FirstContentTimeout,
            TransportKind::IdleTimeout,
            TransportKind::Deadline,
            TransportKind::StreamCut,
            TransportKind::StreamMalformed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportFailure {
    pub kind: TransportKind,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Http(HttpResponse),
    Transport(TransportFailure),
}

impl Failure {
    /// `429`, or the transport kind: how attempts and timelines name an outcome.
    pub fn outcome(&self) -> String {
        match self {
            Failure::Http(r) => Decimal::of(r.status.into()).as_ref().to_string(),
            Failure::Transport(t) => t.kind.as_str().to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Classified {
    pub reason: Reason,
    pub retryable: bool,
    pub rotate_credential: bool,
    pub fall_back: bool,
    pub retry_after_ms: Option<u64>,
    pub rule: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Route {
    pub provider: String,
    pub model: String,
    pub credential: String,
    pub position: u32,
}

impl Route {
    pub fn label(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialState {
    Available,
    Suspect,
    CoolingDown,
    Dead,
    Missing,
}

impl CredentialState {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialState::Available => "available",
            CredentialState::Suspect => "suspect",
            CredentialState::CoolingDown => "cooling-down",
            CredentialState::Dead => "dead",
            CredentialState::Missing => "missing",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CredentialStatus {
    pub id: String,
    pub state: CredentialState,
    pub until_ms: Option<u64>,
    pub last_reason: Option<Reason>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ProviderStatus {
    pub provider: String,
    pub model: String,
    pub position: u32,
    pub route_until_ms: Option<u64>,
    pub credentials: Vec<CredentialStatus>,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NoRoute {
    pub message: String,
    pub earliest_ms: Option<u64>,
    pub providers: Vec<ProviderStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CallProgress {
    pub attempts: u32,
    pub waited_ms: u64,
    pub route_retries: u32,
    pub left_positions: Vec<u32>,
    /// A driven call's deadline (epoch ms): no retry or wait is planned past it. Not in the
    /// WIT record: host-driven loops have no deadline of the guest's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    Retry,
    Rotate,
    FallBack,
    Wait,
    GiveUp,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FinalError {
    pub reason: Reason,
    pub message: String,
    pub retry_at_ms: Option<u64>,
    pub providers: Vec<ProviderStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Start {
    pub route: Route,
    pub delay_ms: u64,
    pub progress: CallProgress,
    pub rule: String,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Action {
    pub kind: ActionKind,
    pub route: Option<Route>,
    pub delay_ms: u64,
    pub fresh_connection: bool,
    pub classified: Classified,
    pub progress: CallProgress,
    pub rule: String,
    pub why: String,
    pub error: Option<FinalError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    Notice,
    FallbackActivated,
    PrimaryRestored,
    CredentialCooldown,
    CredentialDead,
    CredentialRestored,
    RouteCooldown,
    RetryScheduled,
    GaveUp,
    CircuitOpened,
    CircuitHalfOpen,
    CircuitClosed,
    RetryBudgetExhausted,
    StateRestored,
    StateDropped,
    StreamEventDropped,
    StreamResumed,
    StreamFailed,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Event {
    pub kind: EventKind,
    pub at_ms: u64,
    pub route: Option<Route>,
    pub rule: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    pub path: String,
    pub method: String,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub route: Route,
    pub url: String,
    pub method: String,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
    pub secret_header: String,
    pub secret_prefix: String,
    pub connect_timeout_ms: u64,
    pub read_timeout_ms: u64,
    pub fresh_connection: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialInfo {
    pub id: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Attempt {
    pub route: Route,
    pub at_ms: u64,
    pub outcome: String,
    pub classified: Option<Classified>,
    pub action: Option<Action>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSuccess {
    pub response: HttpResponse,
    pub route: Route,
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailure {
    pub error: FinalError,
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub ok: bool,
    pub findings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::Decimal;

    #[test]
    fn decimal_matches_to_string() {
        for n in [0, 7, 10, 429, 65_535, 1_795_528_800_000, u64::MAX] {
            assert_eq!(Decimal::of(n).as_ref(), n.to_string());
        }
    }
}

/// A response's status and headers (`response-head` in the WIT).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<Header>,
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Start,
    Head,
    Data,
    End,
    TimedOut,
    Failed,
    Slept,
}

/// What came of the last step of a driven call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInput {
    pub kind: InputKind,
    pub head: Option<ResponseHead>,
    pub data: Vec<u8>,
    pub failure: Option<TransportFailure>,
}

impl CallInput {
    pub fn of(kind: InputKind) -> CallInput {
        CallInput { kind, head: None, data: Vec::new(), failure: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Send,
    Read,
    Sleep,
    Done,
    GiveUp,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Send => "send",
            StepKind::Read => "read",
            StepKind::Sleep => "sleep",
            StepKind::Done => "done",
            StepKind::GiveUp => "give-up",
        }
    }
}

/// What the host does next in a driven call (`step` in the WIT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub kind: StepKind,
    pub outbound: Option<Outbound>,
    pub within_ms: u64,
    pub commit: Option<ResponseHead>,
    pub deliver: Vec<u8>,
    pub error: Option<FinalError>,
    pub attempts: Vec<Attempt>,
    pub route: Option<Route>,
    pub rule: String,
    pub why: String,
}
