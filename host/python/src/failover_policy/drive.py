"""Carries out a driven call (wit/policy.wit `driven-call`), the twin of the Rust host's `drive`.

The guest decides every step; this sends, reads with the time each step allows, sleeps, and
hands the caller what the guest delivers once it commits. Nothing reaches the caller before the
commit, so a failure before the first content is retried or fallen back from unseen; after it the
caller reads the answer as it comes, and a failure ends it with the error event the guest wrote,
or, when it wrote none (a whole answer has no in-band way to say it), with `AnswerBroken` raised
to the reader.

`Drive` carries steps out with a blocking `Carrier`, `AsyncDrive` with an `AsyncCarrier`; what
they carry out on (HTTP, a script in virtual time) is the carrier's business.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Protocol

from .errors import AnswerBroken, FailoverError
from .types import (
    Attempt,
    CallInput,
    FinalError,
    InputKind,
    Outbound,
    Reason,
    ResponseHead,
    Route,
    Step,
    StepKind,
    TransportFailure,
    TransportKind,
)

_FINAL = (StepKind.DONE, StepKind.GIVE_UP)


class Call(Protocol):
    """One driven call in the guest."""

    def next(self, given: CallInput) -> Step: ...
    def close(self) -> None: ...


class Upstream(Protocol):
    """An open response: `read` reports data, end, timed-out (nothing within `within_ms`) or failed."""

    def read(self, within_ms: int) -> CallInput: ...
    def close(self) -> None: ...


class Carrier(Protocol):
    def open(self, out: Outbound, within_ms: int) -> tuple[CallInput, Upstream | None]: ...
    def sleep(self, ms: int) -> None: ...


class AsyncUpstream(Protocol):
    async def read(self, within_ms: int) -> CallInput: ...
    async def aclose(self) -> None: ...


class AsyncCarrier(Protocol):
    async def open(self, out: Outbound, within_ms: int) -> tuple[CallInput, AsyncUpstream | None]: ...
    async def sleep(self, ms: int) -> None: ...


def failed(message: str) -> CallInput:
    return CallInput(InputKind.FAILED, failure=TransportFailure(TransportKind.OTHER, message))


class _Course:
    """What both drives share: the guest's current step, the commit, and how the call ended."""

    def __init__(self, call: Call) -> None:
        self._call: Call | None = call
        self.step = call.next(CallInput(InputKind.START))
        self.head: ResponseHead | None = None
        # Set once the call ended: the answering route (done), every attempt, the final error.
        self.route: Route | None = None
        self.attempts: list[Attempt] = []
        self.error: FinalError | None = None

    def _advance(self, given: CallInput) -> None:
        assert self._call is not None
        self.step = self._call.next(given)

    def _end(self) -> None:
        """The call is over (done or give-up): its outcome kept, the guest's call released."""
        step = self.step
        self.route, self.attempts, self.error = step.route, step.attempts, step.error
        if step.kind is StepKind.GIVE_UP and self.error is None:
            self.error = FinalError(Reason.UNKNOWN, f"the policy gave up without saying why ({step.why})", None, [])
        if self._call is not None:
            self._call.close()
            self._call = None

    def _not_committed(self) -> FailoverError:
        self._end()
        error = self.error or FinalError(
            Reason.UNKNOWN, f"the policy ended the call without an answer or an error: {self.step.why}", None, [])
        return FailoverError(error, self.attempts)

    def _ended_out_of_band(self) -> AnswerBroken | None:
        """After a give-up with no error event to deliver (a whole answer), what its reader raises."""
        self._end()
        if self.step.kind is StepKind.GIVE_UP and not self.step.deliver and self.error is not None:
            return AnswerBroken(self.error, self.attempts)
        return None


class Drive(_Course):
    """A driven call carried out with blocking I/O: `commit()`, then iterate the answer's bytes."""

    def __init__(self, call: Call, carrier: Carrier) -> None:
        super().__init__(call)
        self._carrier = carrier
        self._upstream: Upstream | None = None

    def commit(self) -> ResponseHead:
        """Carries out steps until the guest commits; raises FailoverError when it gives up first."""
        try:
            while self.step.commit is None:
                if self.step.kind in _FINAL:
                    raise self._not_committed()
                self._advance(self._carry_out(self.step))
        except BaseException:
            self.close()
            raise
        self.head = self.step.commit
        return self.head

    def __iter__(self) -> Iterator[bytes]:
        """The answer's bytes as the guest delivers them (after `commit`)."""
        try:
            while True:
                if self.step.deliver:
                    yield self.step.deliver
                if self.step.kind in _FINAL:
                    broken = self._ended_out_of_band()
                    if broken is not None:
                        raise broken
                    return
                self._advance(self._carry_out(self.step))
        finally:
            self.close()

    def _carry_out(self, step: Step) -> CallInput:
        if step.kind is StepKind.SEND:
            self._close_upstream()
            if step.outbound is None:
                return failed("the policy asked for a send without a request")
            given, self._upstream = self._carrier.open(step.outbound, step.within_ms)
            return given
        if step.kind is StepKind.READ:
            return self._upstream.read(step.within_ms) if self._upstream else \
                failed("the policy asked for a read with no response open")
        if step.kind is StepKind.SLEEP:
            self._close_upstream()
            self._carrier.sleep(step.within_ms)
            return CallInput(InputKind.SLEPT)
        return failed("the call is over")

    def _close_upstream(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
            self._upstream = None

    def close(self) -> None:
        """Stops the call (the caller stopped reading, or it ended): the response and the guest's call released."""
        self._close_upstream()
        if self._call is not None:
            self._call.close()
            self._call = None


class AsyncDrive(_Course):
    """The same on an event loop: every wait is awaited, so the loop is never blocked."""

    def __init__(self, call: Call, carrier: AsyncCarrier) -> None:
        super().__init__(call)
        self._carrier = carrier
        self._upstream: AsyncUpstream | None = None

    async def commit(self) -> ResponseHead:
        try:
            while self.step.commit is None:
                if self.step.kind in _FINAL:
                    raise self._not_committed()
                self._advance(await self._carry_out(self.step))
        except BaseException:
            await self.aclose()
            raise
        self.head = self.step.commit
        return self.head

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while True:
                if self.step.deliver:
                    yield self.step.deliver
                if self.step.kind in _FINAL:
                    broken = self._ended_out_of_band()
                    if broken is not None:
                        raise broken
                    return
                self._advance(await self._carry_out(self.step))
        finally:
            await self.aclose()

    async def _carry_out(self, step: Step) -> CallInput:
        if step.kind is StepKind.SEND:
            await self._close_upstream()
            if step.outbound is None:
                return failed("the policy asked for a send without a request")
            given, self._upstream = await self._carrier.open(step.outbound, step.within_ms)
            return given
        if step.kind is StepKind.READ:
            return await self._upstream.read(step.within_ms) if self._upstream else \
                failed("the policy asked for a read with no response open")
        if step.kind is StepKind.SLEEP:
            await self._close_upstream()
            await self._carrier.sleep(step.within_ms)
            return CallInput(InputKind.SLEPT)
        return failed("the call is over")

    async def _close_upstream(self) -> None:
        if self._upstream is not None:
            await self._upstream.aclose()
            self._upstream = None

    async def aclose(self) -> None:
        await self._close_upstream()
        if self._call is not None:
            self._call.close()
            self._call = None
