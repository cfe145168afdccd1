//! The glue generated from contract 0.1.0 (`tests/policies/v0.1.0/policy.wit`), for deployed
//! policies built against it. Its types have the same shapes as 0.2.0's, which the host is
//! written against: `Convert` turns each into the other here, and the 0.1.0 `host` imports
//! convert and delegate to the 0.2.0 ones.

use super::v0_2::exports::failover::policy::policy as p2;
use super::v0_2::failover::policy::{host as current, types as t2};
use crate::host::Host;
use exports::failover::policy::policy as p1;
use failover::policy::types as t1;

wasmtime::component::bindgen!({
    world: "failover",
    path: "../../tests/policies/v0.1.0/policy.wit",
});

/// A value of one contract version as the same value of the other.
pub(crate) trait Convert<T> {
    fn convert(self) -> T;
}

macro_rules! unchanged {
    ($($t:ty),*) => {
        $(impl Convert<$t> for $t {
            fn convert(self) -> $t {
                self
            }
        })*
    };
}

unchanged!(bool, u8, u16, u32, u64, String);

impl<A: Convert<B>, B> Convert<Option<B>> for Option<A> {
    fn convert(self) -> Option<B> {
        self.map(A::convert)
    }
}

impl<A: Convert<B>, B> Convert<Vec<B>> for Vec<A> {
    fn convert(self) -> Vec<B> {
        self.into_iter().map(A::convert).collect()
    }
}

impl<A: Convert<B>, B, E: Convert<F>, F> Convert<Result<B, F>> for Result<A, E> {
    fn convert(self) -> Result<B, F> {
        self.map(A::convert).map_err(E::convert)
    }
}

/// `from::Name` into `to::Name`, field by field.
macro_rules! records {
    ($from:ident => $to:ident: $($name:ident { $($field:ident),* $(,)? })*) => {
        $(impl Convert<$to::$name> for $from::$name {
            fn convert(self) -> $to::$name {
                $to::$name { $($field: self.$field.convert()),* }
            }
        })*
    };
}

/// `from::Name` into `to::Name`, case by case (exhaustive: a case missing in `to` fails to build).
macro_rules! enums {
    ($from:ident => $to:ident: $($name:ident { $($case:ident),* $(,)? })*) => {
        $(impl Convert<$to::$name> for $from::$name {
            fn convert(self) -> $to::$name {
                match self {
                    $($from::$name::$case => $to::$name::$case),*
                }
            }
        })*
    };
}

/// Both directions of `records!` or `enums!`.
macro_rules! both_ways {
    ($kind:ident, $a:ident <=> $b:ident: $($body:tt)*) => {
        $kind!($a => $b: $($body)*);
        $kind!($b => $a: $($body)*);
    };
}

both_ways!(enums, t1 <=> t2:
    Reason {
        Auth, AuthPermanent, Billing, RateLimit, QuotaExhausted, Overloaded, ServerError, Timeout, Connection,
        ContextOverflow, ModelNotFound, ContentFilter, BadRequest, Unknown,
    }
    TransportKind { Timeout, ConnectionRefused, Dns, Tls, Reset, Other }
    FailureKind { Http, Transport }
    CredentialState { Available, Suspect, CoolingDown, Dead, Missing }
    ActionKind { Retry, Rotate, FallBack, Wait, GiveUp }
);

both_ways!(records, t1 <=> t2:
    Header { name, value }
    HttpResponse { status, headers, body }
    TransportFailure { kind, message }
    Failure { kind, response, transport }
    Classified { reason, retryable, rotate_credential, fall_back, retry_after_ms, rule, message }
    Route { provider, model, credential, position }
    CredentialStatus { id, state, until_ms, last_reason, last_error }
    ProviderStatus { provider, model, position, route_until_ms, credentials, summary }
    NoRoute { message, earliest_ms, providers }
    CallProgress { attempts, waited_ms, route_retries, left_positions }
    FinalError { reason, message, retry_at_ms, providers }
    Start { route, delay_ms, progress, rule, why }
    Action { kind, route, delay_ms, fresh_connection, classified, progress, rule, why, error }
    Request { path, method, headers, body }
    Outbound {
        route, url, method, headers, body, secret_header, secret_prefix, connect_timeout_ms, read_timeout_ms,
        fresh_connection,
    }
    CredentialInfo { id, fingerprint }
);

both_ways!(records, p1 <=> p2:
    ConfigError { field, message }
    StateError { message }
    Attempt { route, at_ms, outcome, classified, action }
    CallSuccess { response, route, attempts }
    CallFailure { error, attempts }
    PrepareError { message }
    VersionInfo { policy, schema }
    CheckReport { ok, findings }
);

// Events only go from the policy to the host, and 0.2.0 has more kinds than 0.1.0.
enums!(t1 => t2:
    EventKind {
        Notice, FallbackActivated, PrimaryRestored, CredentialCooldown, CredentialDead, CredentialRestored,
        RouteCooldown, RetryScheduled, GaveUp, CircuitOpened, CircuitHalfOpen, CircuitClosed, RetryBudgetExhausted,
        StateRestored, StateDropped,
    }
);
records!(t1 => t2: Event { kind, at_ms, route, rule, message });

impl failover::policy::host::Host for Host {
    fn send(&mut self, request: t1::Outbound) -> Result<t1::HttpResponse, t1::TransportFailure> {
        current::Host::send(self, request.convert()).convert()
    }

    fn now_ms(&mut self) -> u64 {
        current::Host::now_ms(self)
    }

    fn sleep_ms(&mut self, ms: u64) {
        current::Host::sleep_ms(self, ms)
    }

    fn emit(&mut self, event: t1::Event) {
        current::Host::emit(self, event.convert())
    }

    fn seed(&mut self) -> u64 {
        current::Host::seed(self)
    }
}

impl t1::Host for Host {}
