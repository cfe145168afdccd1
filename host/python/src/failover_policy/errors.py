"""Exceptions of the Python host; each carries what the policy said, not a re-interpretation."""

from __future__ import annotations

from .types import Attempt, FinalError, NoRoute, ProviderStatus


class PolicyError(Exception):
    """Base of every error raised by failover_policy."""


class ConfigError(PolicyError, ValueError):
    """A bad config or snapshot; `field` is the JSON path of the problem."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NoRouteError(PolicyError):
    """`select()` found no usable route; `providers` says why, per provider."""

    def __init__(self, no_route: NoRoute) -> None:
        super().__init__(no_route.message)
        self.no_route = no_route
        self.earliest_ms: int | None = no_route.earliest_ms
        self.providers: list[ProviderStatus] = no_route.providers


class FailoverError(PolicyError):
    """A call gave up; the message is the policy's final error, written for the user."""

    def __init__(self, error: FinalError, attempts: list[Attempt]) -> None:
        super().__init__(error.message)
        self.error = error
        self.reason = error.reason
        self.retry_at_ms = error.retry_at_ms
        self.attempts = attempts


class AnswerBroken(FailoverError):
    """A committed answer broke off and the policy wrote no error event to say so (a whole answer
    has none): raised to its reader, so the part read is never taken for all of it."""


class PrepareError(PolicyError):
    """The guest could not rewrite a request for a route (e.g. the body is not JSON)."""


class GuestTrap(PolicyError):
    """The policy component trapped; the host rebuilt a fresh instance from the last snapshot."""


class ContractError(PolicyError):
    """The component was built for a contract version this host does not speak; `exported` is
    its `failover:policy/policy` export (None when it has none), `spoken` the versions spoken."""

    def __init__(self, exported: str | None, spoken: tuple[str, ...], message: str | None = None) -> None:
        what = exported or "no failover:policy/policy interface"
        versions = spoken[0] if len(spoken) == 1 else f"{', '.join(spoken[:-1])} and {spoken[-1]}"
        super().__init__(message or f"component exports {what}; this host speaks {versions}")
        self.exported, self.spoken = exported, spoken

    @classmethod
    def lacks(cls, contract: str, export: str, since: str) -> ContractError:
        """The running policy's contract has no `export` (added in contract `since`)."""
        return cls(contract, (since,), f"the running policy speaks contract {contract}, which has no {export} "
                                       f"(added in {since}): swap in a policy of contract {since} or later")


class SwapError(PolicyError):
    """A new component failed validation; the old policy stays in place."""


class PayloadTooLarge(PolicyError, ValueError):
    """A string or body crossing into (or out of) the policy is over the payload limit."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} is {size} bytes, over the policy's payload limit of {limit} bytes")
        self.what, self.size, self.limit = what, size, limit
