"""Virtual time for a client's retries: tests that retry without waiting.

    from emissary.testing import instant_retries

    with instant_retries(client) as clock:   # an EmissaryClient or AsyncEmissaryClient
        client.deployments.completions.create(...)
    assert clock.sleeps == [...]              # the waits the client chose, none slept

Only the retry loop's clock and sleep are virtual: attempts still take real time on the
wire, and timeouts (``timeout_ms``) are real. The call's time budget (``max_elapsed_time``)
is counted on the virtual clock, so waits use it up exactly as they would in real life.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._async.client import AsyncEmissaryClient
    from .._retry import RetryRuntime
    from .._sync.client import EmissaryClient


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

    def install(self, client: AsyncEmissaryClient | EmissaryClient) -> RetryClock:
        """Make `client`'s retries use this clock from now on (its retry budget stays)."""
        runtime = _runtime(client)
        runtime.clock, runtime.sleep, runtime.random = self.clock, self.sleep, self._random
        return self


@contextmanager
def instant_retries(
    client: AsyncEmissaryClient | EmissaryClient, clock: RetryClock | None = None
) -> Iterator[RetryClock]:
    """Within the block, `client` retries at once on a virtual clock (`RetryClock`); its
    real clock and sleep come back at the end."""
    runtime = _runtime(client)
    saved = runtime.clock, runtime.sleep, runtime.random
    try:
        yield (clock or RetryClock()).install(client)
    finally:
        runtime.clock, runtime.sleep, runtime.random = saved


def _runtime(client: AsyncEmissaryClient | EmissaryClient) -> RetryRuntime:
    from .._async.client import AsyncEmissaryClient

    inner = client if isinstance(client, AsyncEmissaryClient) else client._async_client
    return inner._retry_runtime
