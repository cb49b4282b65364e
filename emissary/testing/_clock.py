"""Clocks for tests: virtual time for a client's retries and waits, and for the emulator.

    from emissary.testing import Emulator, VirtualClock, instant_retries

    clock = VirtualClock()
    with Emulator(clock=clock) as emu, EmissaryClient(...) as client:
        with instant_retries(client, clock=clock):  # the client sleeps on `clock` too
            ...                                      # a 10-minute wait takes no time
        clock.advance(600)                           # or move time yourself

- `VirtualClock`: time that moves only when told (`advance`) or when a client installed on
  it sleeps; the emulator reads it to compute every resource's state, so a client and the
  emulator share one timeline.
- `RetryClock`: a client's retry loop alone on virtual time (``clock.sleeps`` lists the
  waits it chose), for retry tests that need no emulator timeline.
- `ScaledClock`: real time, sped up (``Emulator(time_scale=0.001)``), for an emulator in
  another process, where no clock can be shared.

Only the client's retry loop (and waits) run on the virtual clock: attempts still take real
time on the wire, and timeouts (``timeout_ms``) are real. The call's time budget
(``max_elapsed_time``) is counted on the virtual clock, so waits use it up exactly as they
would in real life.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Protocol, TypeVar, overload

from ._checks import check_seconds

if TYPE_CHECKING:
    from .._async.client import AsyncEmissaryClient
    from .._retry import RetryRuntime
    from .._sync.client import EmissaryClient

    Client = AsyncEmissaryClient | EmissaryClient

VIRTUAL_EPOCH = 1_767_225_600.0
"""Where a `VirtualClock` starts by default: 2026-01-01T00:00:00Z as a UNIX time, so that
the emulator's timestamps (``created_at``, ...) are plausible and the same on every run."""


class Clock(Protocol):
    """What the emulator reads the time from: ``now()``, in seconds since the UNIX epoch
    (`VirtualClock`, `ScaledClock`, or any object of yours with that method)."""

    def now(self) -> float:
        """The current time, in seconds (never going backwards)."""
        ...


class VirtualClock:
    """Time that moves only when told, shared by the emulator and a client.

    ``Emulator(clock=clock)`` computes every resource's state from ``clock.now()`` at the
    moment of each request; ``instant_retries(client, clock=clock)`` makes the client's
    retries (and waits) sleep on it, each sleep advancing it at once. Thread-safe: the
    emulator may read it on its thread while a test advances it on another.

    Attributes:
        sleeps: every sleep a client installed on this clock asked for, in order.
    """

    def __init__(self, start: float = VIRTUAL_EPOCH) -> None:
        self._now = check_seconds("start", start, minimum=None)
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        """The virtual time, in seconds since the UNIX epoch."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock `seconds` (>= 0) forward; the new time."""
        step = check_seconds("seconds", seconds)
        with self._lock:
            self._now += step
            return self._now

    async def sleep(self, seconds: float) -> None:
        """A client's sleep: record it, advance the clock past it, and yield to the loop
        once (so other tasks run as they would during a real sleep)."""
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    def install(self, client: Client, *, seed: int | None = 0) -> VirtualClock:
        """Make `client`'s retries (and waits) sleep on this clock from now on; their
        jitter comes from a generator seeded with `seed` (repeatable by default)."""
        _use(client, self.now, self.sleep, random.Random(seed))
        return self

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now!r})"


class RetryClock:
    """A virtual clock that the retry loop reads and sleeps on.

    Attributes:
        now: the virtual time in seconds; moves only when the retry loop sleeps.
        sleeps: every wait the retry loop asked for, in order.
        lag: extra virtual seconds each sleep lasts, as when an event loop wakes late
            from a backoff sleep (0 by default).
    """

    def __init__(self, *, lag: float = 0.0, seed: int | None = 0) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.lag = lag
        self._random = random.Random(seed)  # the jitter, repeatable by default

    def clock(self) -> float:
        """The virtual time, in seconds."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Record the wait, move the clock past it, and yield to the loop once."""
        self.sleeps.append(seconds)
        self.now += seconds + self.lag
        await asyncio.sleep(0)

    def install(self, client: Client) -> RetryClock:
        """Make `client`'s retries use this clock from now on (its retry budget stays)."""
        _use(client, self.clock, self.sleep, self._random)
        return self


class ScaledClock:
    """Real time, `time_scale` real seconds to each emulated second: ``ScaledClock(0.001)``
    runs 1000 times faster than real time. It starts at the wall-clock time and moves with
    the monotonic clock (a change of the system time does not affect it)."""

    def __init__(self, time_scale: float = 1.0) -> None:
        self.time_scale = check_seconds("time_scale", time_scale, strict=True)
        self._wall = time.time()
        self._start = time.monotonic()

    def now(self) -> float:
        """The emulated time, in seconds since the UNIX epoch."""
        return self._wall + (time.monotonic() - self._start) / self.time_scale

    def __repr__(self) -> str:
        return f"ScaledClock(time_scale={self.time_scale!r})"


_C = TypeVar("_C", RetryClock, VirtualClock)


@overload
def instant_retries(client: Client, clock: None = None) -> AbstractContextManager[RetryClock]: ...
@overload
def instant_retries(client: Client, clock: _C) -> AbstractContextManager[_C]: ...
def instant_retries(
    client: Client, clock: RetryClock | VirtualClock | None = None
) -> AbstractContextManager[RetryClock | VirtualClock]:
    """Within the block, `client` retries (and waits) at once on a virtual clock: a new
    `RetryClock` by default, or the `VirtualClock` given, which the emulator may read too
    (``Emulator(clock=clock)``), so that a client's sleep advances the emulator's time.
    The client's real clock and sleep come back at the end."""
    return _installed(client, RetryClock() if clock is None else clock)


@contextmanager
def _installed(
    client: Client, clock: RetryClock | VirtualClock
) -> Iterator[RetryClock | VirtualClock]:
    runtime = _runtime(client)
    saved = runtime.clock, runtime.sleep, runtime.random
    try:
        yield clock.install(client)
    finally:
        runtime.clock, runtime.sleep, runtime.random = saved


def _use(
    client: Client,
    now: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    rng: random.Random,
) -> None:
    """Point `client`'s retry runtime at a clock, a sleep and a random generator."""
    runtime = _runtime(client)
    runtime.clock, runtime.sleep, runtime.random = now, sleep, rng


def _runtime(client: Client) -> RetryRuntime:
    from .._async.client import AsyncEmissaryClient

    inner = client if isinstance(client, AsyncEmissaryClient) else client._async_client
    return inner._retry_runtime
