//! Turning a value of one contract version into the same value of another. Contract versions
//! only add (types, cases, functions), so every older type has a twin of the same shape in the
//! version the host is written against; the `records!`/`enums!` lists in each version's module
//! name the twins, and a field or case that no longer matches fails to build.

/// A value of one contract version as the same value of another.
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
        $(impl $crate::bindings::convert::Convert<$to::$name> for $from::$name {
            fn convert(self) -> $to::$name {
                $to::$name { $($field: $crate::bindings::convert::Convert::convert(self.$field)),* }
            }
        })*
    };
}

/// `from::Name` into `to::Name`, case by case (exhaustive: a case missing in `to` fails to build).
macro_rules! enums {
    ($from:ident => $to:ident: $($name:ident { $($case:ident),* $(,)? })*) => {
        $(impl $crate::bindings::convert::Convert<$to::$name> for $from::$name {
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

/// The `host` imports of an older contract version: convert, and delegate to the current ones.
macro_rules! delegate_host_imports {
    ($old:ident) => {
        impl $old::host::Host for $crate::host::Host {
            fn send(&mut self, request: $old::types::Outbound) -> Result<$old::types::HttpResponse, $old::types::TransportFailure> {
                use $crate::bindings::convert::Convert;
                let sent = $crate::bindings::v0_3::failover::policy::host::Host::send(self, request.convert());
                sent.convert()
            }

            fn now_ms(&mut self) -> u64 {
                $crate::bindings::v0_3::failover::policy::host::Host::now_ms(self)
            }

            fn sleep_ms(&mut self, ms: u64) {
                $crate::bindings::v0_3::failover::policy::host::Host::sleep_ms(self, ms)
            }

            fn emit(&mut self, event: $old::types::Event) {
                use $crate::bindings::convert::Convert;
                $crate::bindings::v0_3::failover::policy::host::Host::emit(self, event.convert())
            }

            fn seed(&mut self) -> u64 {
                $crate::bindings::v0_3::failover::policy::host::Host::seed(self)
            }
        }

        impl $old::types::Host for $crate::host::Host {}
    };
}

/// The `types` interface as 0.1.0 defined it, unchanged in every later version: both ways
/// between an older version's module and the current one's, spelled once for every version.
macro_rules! types_since_0_1 {
    ($old:ident <=> $new:ident) => {
        $crate::bindings::convert::both_ways!(enums, $old <=> $new:
            Reason {
                Auth, AuthPermanent, Billing, RateLimit, QuotaExhausted, Overloaded, ServerError, Timeout, Connection,
                ContextOverflow, ModelNotFound, ContentFilter, BadRequest, Unknown,
            }
            TransportKind { Timeout, ConnectionRefused, Dns, Tls, Reset, Other }
            FailureKind { Http, Transport }
            CredentialState { Available, Suspect, CoolingDown, Dead, Missing }
            ActionKind { Retry, Rotate, FallBack, Wait, GiveUp }
        );
        $crate::bindings::convert::both_ways!(records, $old <=> $new:
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
    };
}

pub(crate) use {both_ways, delegate_host_imports, enums, records, types_since_0_1};
