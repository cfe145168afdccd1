"""What can go wrong with a state store. Every one is a StoreError (a PolicyError): the policy goes
on deciding from its own state, and what it could not save stays owed to the next save."""

from __future__ import annotations

from ..errors import PolicyError


class StoreError(PolicyError):
    """The state store could not be read or written."""


class StoreLocked(StoreError):
    """Another process held the file lock longer than the bound (a fold under way): this append
    waits for the next save, which includes it."""


class StoreRefused(StoreError):
    """The stored base state is of a newer schema than this policy: it is left untouched."""


class StoreUnavailable(StoreError):
    """The store cannot be reached in time (Redis down, a timeout, an unwritable directory)."""
