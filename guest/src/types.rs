//! The policy's values, mirroring `wit/policy.wit` one to one so the WIT glue only converts.
//! Serde names are the WIT names (kebab-case), so JSON output reads like the contract.

use serde::{Deserialize, Serialize};

/// A contract enum spelled once: its variants with their WIT names, `ALL`, `as_str` and
/// `parse`. `tests/contract.rs` holds every list against `wit/policy.wit`, so a case added to
/// the contract fails the guest's tests until it is spelled here, and the `match`es of the WIT
/// glue (`component.rs`) fail to compile until it is converted.
macro_rules! wit_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|k| k.as_str() == s)
            }
        }
    };
}

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

wit_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
    #[serde(rename_all = "kebab-case")]
    Reason {
        Auth = "auth",
        AuthPermanent = "auth-permanent",
        Billing = "billing",
        RateLimit = "rate-limit",
        QuotaExhausted = "quota-exhausted",
        Overloaded = "overloaded",
        ServerError = "server-error",
        Timeout = "timeout",
        Connection = "connection",
        ContextOverflow = "context-overflow",
        ModelNotFound = "model-not-found",
        ContentFilter = "content-filter",
        BadRequest = "bad-request",
        Unknown = "unknown",
    }
}

impl Reason {
    /// The provider's trouble, not the key's: these never touch credential state.
    pub fn is_provider_side(self) -> bool {
        matches!(self, Reason::Overloaded | Reason::ServerError | Reason::Timeout | Reason::Connection)
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
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
    }
}

wit_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    TransportKind {
        Timeout = "timeout",
        ConnectionRefused = "connection-refused",
        Dns = "dns",
        Tls = "tls",
        Reset = "reset",
        Other = "other",
        /// The limits a driven call measures through its host (never sent by a host: the guest
        /// makes these from a `timed-out` or an `end` it was told of).
        HeadersTimeout = "headers-timeout",
        FirstContentTimeout = "first-content-timeout",
        IdleTimeout = "idle-timeout",
        Deadline = "deadline",
        /// An event stream that ended before its format's terminal signal.
        StreamCut = "stream-cut",
        /// An event that could not be parsed, or grew past the bound of one event.
        StreamMalformed = "stream-malformed",
    }
}

impl TransportKind {
    /// The kinds only a driven call makes (from what its host reported); not in the WIT enum.
    pub const DRIVEN: [TransportKind; 6] = [
        TransportKind::HeadersTimeout,
        TransportKind::FirstContentTimeout,
        TransportKind::IdleTimeout,
        TransportKind::Deadline,
        TransportKind::StreamCut,
        TransportKind::StreamMalformed,
    ];

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

wit_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    CredentialState {
        Available = "available",
        Suspect = "suspect",
        CoolingDown = "cooling-down",
        Dead = "dead",
        Missing = "missing",
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

wit_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    ActionKind {
        Retry = "retry",
        Rotate = "rotate",
        FallBack = "fall-back",
        Wait = "wait",
        GiveUp = "give-up",
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

wit_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    EventKind {
        Notice = "notice",
        FallbackActivated = "fallback-activated",
        PrimaryRestored = "primary-restored",
        CredentialCooldown = "credential-cooldown",
        CredentialDead = "credential-dead",
        CredentialRestored = "credential-restored",
        RouteCooldown = "route-cooldown",
        RetryScheduled = "retry-scheduled",
        GaveUp = "gave-up",
        CircuitOpened = "circuit-opened",
        CircuitHalfOpen = "circuit-half-open",
        CircuitClosed = "circuit-closed",
        RetryBudgetExhausted = "retry-budget-exhausted",
        StateRestored = "state-restored",
        StateDropped = "state-dropped",
        StreamEventDropped = "stream-event-dropped",
        StreamResumed = "stream-resumed",
        StreamFailed = "stream-failed",
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

wit_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    InputKind {
        Start = "start",
        Head = "head",
        Data = "data",
        End = "end",
        TimedOut = "timed-out",
        Failed = "failed",
        Slept = "slept",
    }
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

wit_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    StepKind {
        Send = "send",
        Read = "read",
        Sleep = "sleep",
        Done = "done",
        GiveUp = "give-up",
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
