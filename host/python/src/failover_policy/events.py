"""Policy events: to `logging` (logger `failover_policy`) and into a bounded collector."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from .types import Event, EventKind

log = logging.getLogger("failover_policy")

# Events a user should see without debug logging.
_WARN = {EventKind.CREDENTIAL_DEAD, EventKind.GAVE_UP, EventKind.FALLBACK_ACTIVATED,
         EventKind.CREDENTIAL_COOLDOWN, EventKind.ROUTE_COOLDOWN, EventKind.STATE_DROPPED,
         EventKind.RETRY_BUDGET_EXHAUSTED}


class EventLog:
    """Logs every event and keeps the last `keep`; `listener` (if any) sees each one too."""

    def __init__(self, keep: int = 1000, listener: Callable[[Event], None] | None = None) -> None:
        self._events: deque[Event] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self.listener = listener

    def __call__(self, event: Event) -> None:
        # Inside a guest call: build the log record only when the level is enabled.
        level = logging.WARNING if event.kind in _WARN else logging.INFO
        if log.isEnabledFor(level):
            log.log(level, "%s [%s] %s", event.kind.value, event.rule, event.message)
        with self._lock:
            self._events.append(event)
        if self.listener is not None:
            self.listener(event)

    @property
    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
