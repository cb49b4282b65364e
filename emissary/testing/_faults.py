"""Faults the emulator injects into its next requests, for your own resilience tests.

    emulator.faults.fail(2, status=503, retry_after=1)   # the next two requests get 503
    emulator.faults.drop()                               # then one connection is dropped
    emulator.faults.truncate()                           # then a body is cut short
    emulator.faults.delay(0.5)                           # then an answer comes late
    emulator.faults.hang()                               # then one never comes
    emulator.faults.drip(0.05)                           # then the body comes byte by byte

Faults are used up in the order they were added, one per request, before any other check;
requests after them are answered normally, unless ``emulator.faults.at_random(0.05)`` asked
for a share of them to fail (for soak and batch tests). Thread-safe: a test thread may add
faults while the emulator serves on its own thread.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["fail", "drop", "truncate", "delay", "hang", "drip"]


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault (see `FaultPlan` for what each kind does)."""

    kind: FaultKind
    status: int = 503
    retry_after: str | None = None
    retry_after_ms: str | None = None
    body: bytes | None = None
    seconds: float = 0.0


class FaultPlan:
    """The queue of faults for the next requests."""

    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._rate = 0.0
        self._random = random.Random(0)
        self._turn = 0

    def _add(self, fault: Fault, times: int) -> FaultPlan:
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        with self._lock:
            self._queue.extend([fault] * times)
        return self

    def fail(
        self,
        times: int = 1,
        *,
        status: int = 503,
        retry_after: float | str | None = None,
        retry_after_ms: float | str | None = None,
        body: bytes | None = None,
    ) -> FaultPlan:
        """Answer `status` (with ``Retry-After``/``retry-after-ms`` if given: a number of
        seconds, an HTTP date or any string) and `body` (default: the contract's error JSON)."""
        return self._add(
            Fault(
                "fail",
                status=status,
                retry_after=None if retry_after is None else _header_value(retry_after),
                retry_after_ms=None if retry_after_ms is None else _header_value(retry_after_ms),
                body=body,
            ),
            times,
        )

    def drop(self, times: int = 1) -> FaultPlan:
        """Close the connection without answering."""
        return self._add(Fault("drop"), times)

    def truncate(self, times: int = 1) -> FaultPlan:
        """Send the headers and the start of the body, then close the connection."""
        return self._add(Fault("truncate"), times)

    def delay(self, seconds: float, times: int = 1) -> FaultPlan:
        """Wait `seconds`, then answer normally."""
        return self._add(Fault("delay", seconds=seconds), times)

    def hang(self, times: int = 1) -> FaultPlan:
        """Never answer: hold the connection until the client leaves or the server stops."""
        return self._add(Fault("hang"), times)

    def drip(self, interval: float, times: int = 1) -> FaultPlan:
        """Answer normally, but send the body one byte every `interval` seconds."""
        return self._add(Fault("drip", seconds=interval), times)

    def at_random(self, rate: float, *, seed: int = 0) -> FaultPlan:
        """From now on, once the queued faults are used up, each request meets a fault
        with probability `rate`, drawn from a generator seeded with `seed`: a 503, a
        dropped connection and a truncated body in turn (each retried by the client).
        ``at_random(0)`` or `clear` stops it."""
        if not 0 <= rate <= 1:
            raise ValueError(f"rate must be between 0 and 1, got {rate!r}")
        with self._lock:
            self._rate, self._random, self._turn = rate, random.Random(seed), 0
        return self

    def clear(self) -> None:
        """Forget the faults not yet used, and stop `at_random`."""
        with self._lock:
            self._queue.clear()
            self._rate = 0.0

    @property
    def pending(self) -> int:
        """How many faults are still waiting for a request."""
        return len(self._queue)

    def next(self) -> Fault | None:
        """The fault for the request now arriving, if any."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if self._rate and self._random.random() < self._rate:
                self._turn += 1
                return _RANDOM_FAULTS[self._turn % len(_RANDOM_FAULTS)]
            return None


_RANDOM_FAULTS = (Fault("fail", status=503), Fault("drop"), Fault("truncate"))


def _header_value(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)
