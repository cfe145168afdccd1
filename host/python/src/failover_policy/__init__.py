"""failover_policy: the LLM-provider failover policy component, loaded in Python.

The policy (a WASI component built from the Rust guest) decides; this package carries out:
HTTP, clock, events and secrets by credential id.
"""

from .clock import SystemClock, VirtualClock
from .errors import (
                     AnswerBroken,
                     ConfigError,
                     ContractError,
                     FailoverError,
                     GuestTrap,
                     NoRouteError,
                     PolicyError,
                     PrepareError,
                     SwapError,
)
from .events import EventLog
from .policy import Policy
from .store import (
                     FileStore,
                     RedisStore,
                     SetAside,
                     StoreError,
                     StoreLocked,
                     StoreRefused,
                     StoreUnavailable,
)
from .transport import AsyncFailoverTransport, FailoverTransport
from .types import (
                     Action,
                     ActionKind,
                     Attempt,
                     CallProgress,
                     CallSuccess,
                     CheckReport,
                     Classified,
                     CredentialState,
                     CredentialStatus,
                     Delta,
                     Event,
                     EventKind,
                     FinalError,
                     Folded,
                     HttpResponse,
                     NoRoute,
                     Outbound,
                     ProviderStatus,
                     Reason,
                     Request,
                     Route,
                     Start,
                     TransportFailure,
                     TransportKind,
                     UnreadableState,
)

__all__ = [
    "Action", "ActionKind", "AnswerBroken", "AsyncFailoverTransport", "Attempt", "CallProgress", "CallSuccess",
    "CheckReport", "Classified", "ConfigError", "ContractError", "CredentialState", "CredentialStatus", "Delta",
    "Event", "EventKind", "EventLog", "FailoverError", "FailoverTransport", "FileStore", "FinalError", "Folded",
    "GuestTrap", "HttpResponse", "NoRoute", "NoRouteError", "Outbound", "Policy", "PolicyError",
    "PrepareError", "ProviderStatus", "Reason", "RedisStore", "Request", "Route", "SetAside", "Start",
    "StoreError", "StoreLocked", "StoreRefused", "StoreUnavailable", "SwapError", "SystemClock",
    "TransportFailure", "TransportKind", "UnreadableState", "VirtualClock",
]
