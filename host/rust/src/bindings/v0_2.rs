//! The glue generated from contract 0.2.0 (`tests/policies/v0.2.0/policy.wit`), for deployed
//! policies built against it. Its types (the driven call's included) have the same shapes as
//! the current contract's, which the host is written against: `Convert` turns each into the
//! other here, and the 0.2.0 `host` imports convert and delegate to the current ones.

use super::convert::{both_ways, delegate_host_imports, enums, records, types_since_0_1};
use super::v0_3::exports::failover::policy::policy as p3;
use super::v0_3::failover::policy::types as t3;
use exports::failover::policy::policy as p2;
use failover::policy as old;
use failover::policy::types as t2;

wasmtime::component::bindgen!({
    world: "failover",
    path: "../../tests/policies/v0.2.0/policy.wit",
});

types_since_0_1!(t2 <=> t3);

both_ways!(enums, p2 <=> p3:
    InputKind { Start, Head, Data, End, TimedOut, Failed, Slept }
    StepKind { Send, Read, Sleep, Done, GiveUp }
);

both_ways!(records, p2 <=> p3:
    ConfigError { field, message }
    StateError { message }
    Attempt { route, at_ms, outcome, classified, action }
    CallSuccess { response, route, attempts }
    CallFailure { error, attempts }
    PrepareError { message }
    VersionInfo { policy, schema }
    CheckReport { ok, findings }
    CallOptions { timeout_ms }
    ResponseHead { status, headers }
    CallInput { kind, head, data, failure }
    Step { kind, outbound, within_ms, commit, deliver, error, attempts, route, rule, why }
);

// Events only go from the policy to the host.
enums!(t2 => t3:
    EventKind {
        Notice, FallbackActivated, PrimaryRestored, CredentialCooldown, CredentialDead, CredentialRestored,
        RouteCooldown, RetryScheduled, GaveUp, CircuitOpened, CircuitHalfOpen, CircuitClosed, RetryBudgetExhausted,
        StateRestored, StateDropped, StreamEventDropped, StreamResumed, StreamFailed,
    }
);
records!(t2 => t3: Event { kind, at_ms, route, rule, message });

delegate_host_imports!(old);
