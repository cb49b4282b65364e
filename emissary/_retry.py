"""The retry policy: which outcomes are retried and how long to wait between attempts.

Waits come from `backoff`'s exponential generator with full jitter (`backoff.expo`,
`backoff.full_jitter`); the loop itself is ours so that the clock and the sleep can be
injected, the whole-call budget is checked before every sleep, and a server's
``Retry-After`` is a floor that jitter never shortens.

Retried: 408, 429, 500, 502, 503, 504 and, with ``retry_connection_errors``, connection
failures and timeouts. Never retried: other statuses, bad 2XX bodies, bad input.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import backoff

from .errors import APIConnectionError, SDKError
from .utils import RetryConfig

logger = logging.getLogger("emissary")
T = TypeVar("T")
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 3600.0
"""A ``Retry-After`` longer than this is treated as "do not retry"."""

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class RetryRuntime:
    """The clock, sleep and randomness the retry loop uses (injectable in tests)."""

    __slots__ = ("clock", "random", "sleep")

    def __init__(
        self,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.sleep = sleep
        self.clock = clock
        self.random = rng or random.Random()


def is_retryable(error: Exception, config: RetryConfig) -> bool:
    """True when `error` is worth another attempt under `config`."""
    if isinstance(error, SDKError):
        return error.raw_response is not None and error.status_code in RETRYABLE_STATUSES
    if isinstance(error, APIConnectionError):
        return config.retry_connection_errors
    return False


def retry_after_s(error: Exception, now: float | None = None) -> float | None:
    """The server's requested wait in seconds (``retry-after-ms`` or ``Retry-After``), if any."""
    if not isinstance(error, SDKError):
        return None
    headers = error.headers
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            ms = float(value)
        except ValueError:
            ms = math.nan
        if math.isfinite(ms) and ms >= 0:
            return ms / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    wall = time.time() if now is None else now
    return max(0.0, when.timestamp() - wall)


def _waits(config: RetryConfig, rng: random.Random) -> Iterator[float]:
    strategy = config.backoff
    bounds = backoff.expo(
        base=strategy.exponent,
        factor=strategy.initial_interval / 1000.0,
        max_value=strategy.max_interval / 1000.0,
    )
    next(bounds)  # backoff's generators are primed with a first next()
    for bound in bounds:
        yield rng.uniform(0, bound)


async def call_with_retries(
    attempt: Callable[[float], Awaitable[T]],
    config: RetryConfig,
    timeout_s: float,
    runtime: RetryRuntime,
) -> T:
    """Run `attempt(timeout_s)` until it returns, a non-retryable error, or the budget ends.

    Each attempt's timeout is cut to what is left of ``max_elapsed_time`` so no attempt runs
    past it; a wait that would end past it is not slept: the last error is raised at once.
    """
    if not config.enabled:
        return await attempt(timeout_s)
    clock = runtime.clock
    deadline = clock() + config.backoff.max_elapsed_time / 1000.0
    waits = _waits(config, runtime.random)
    attempt_number = 1
    while True:
        remaining = deadline - clock()
        try:
            return await attempt(min(timeout_s, remaining))
        except (SDKError, APIConnectionError) as error:
            if not is_retryable(error, config):
                raise
            wait = next(waits)
            floor = retry_after_s(error)
            if floor is not None:
                if floor > MAX_RETRY_AFTER_S:
                    raise
                wait = max(wait, floor)
            if clock() + wait >= deadline:
                raise
            logger.info(
                "emissary: attempt %d failed (%s); retrying in %.3f s",
                attempt_number,
                _describe(error),
                wait,
            )
            await runtime.sleep(wait)
            attempt_number += 1


def _describe(error: Exception) -> str:
    if isinstance(error, SDKError):
        return f"status {error.status_code}"
    return type(error).__name__
