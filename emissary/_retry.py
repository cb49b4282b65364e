"""The retry policy: which outcomes are retried and how long to wait between attempts.

Waits come from `backoff`'s exponential generator (`backoff.expo`) with full jitter drawn
here; the loop itself is ours so that the clock and the sleep can be injected, the whole-call
budget is checked before every sleep, and a server's ``Retry-After`` is a floor that jitter
never shortens.

Retried: 408, 429, 500, 502, 503, 504 and, with ``retry_connection_errors``, refused, reset
and dropped connections, truncated bodies, timeouts and unreachable proxies. Never retried:
other statuses, bad 2XX bodies, bad input, TLS failures, host names that do not exist, a
proxy's refusal (407 above all; a proxy's 502, 503 or 504 is retried). A call stops after
``max_attempts`` attempts unless the server paces it (429 or 503 with ``Retry-After``), and
always when its ``max_elapsed_time`` is spent. A client-wide `TokenBucket` (see
`utils.RetryBudget`) stops retries when too many attempts fail.

The request path (`AsyncEmissaryClient._request`) runs the attempts; on each failure it asks
`Retrying.after`, which waits or ends the call. Every error that ends a call leaves with
``retries_taken`` and ``elapsed`` set.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator

from .errors import (
    APIConnectionError,
    APIHostNotFoundError,
    APIProxyError,
    APITimeoutError,
    APITLSError,
    SDKError,
)
from .utils import RetryBudget, RetryConfig

_logger = logging.getLogger("emissary")
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 3600.0
"""A ``Retry-After`` longer than this (an hour) is taken as "do not retry"."""
PACING_STATUSES = frozenset({429, 503})
"""With ``Retry-After``, these say "come back later": not counted against ``max_attempts``."""

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class TokenBucket:
    """The state of a client's `RetryBudget` (one event loop touches it: no lock needed)."""

    __slots__ = ("budget", "tokens")

    def __init__(self, budget: RetryBudget) -> None:
        self.budget = budget
        self.tokens = budget.capacity

    def withdraw(self, error: Exception) -> bool:
        """Pay for a retry after `error`; False (and nothing paid) when the bucket can't."""
        budget = self.budget
        cost = budget.timeout_cost if isinstance(error, APITimeoutError) else budget.retry_cost
        if cost > self.tokens:
            return False
        self.tokens -= cost
        return True

    def deposit(self) -> None:
        """A successful attempt: refill a little."""
        tokens = self.tokens + self.budget.success_refund
        self.tokens = tokens if tokens < self.budget.capacity else self.budget.capacity


class RetryRuntime:
    """The clock, sleep, randomness and retry budget the retry loop uses (injectable)."""

    __slots__ = ("bucket", "clock", "random", "sleep")

    def __init__(
        self,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        budget: RetryBudget | None = None,
        bucket: TokenBucket | None = None,
    ) -> None:
        self.sleep = sleep
        self.clock = clock
        self.random = rng or random.Random()
        self.bucket = bucket or TokenBucket(budget or RetryBudget())
        """The client's token bucket (one shared by clients made with ``with_options``)."""


def is_retryable(error: Exception, config: RetryConfig) -> bool:
    """True when `error` is worth another attempt under `config`."""
    if isinstance(error, SDKError):
        return error.raw_response is not None and error.status_code in RETRYABLE_STATUSES
    if isinstance(error, APITLSError | APIHostNotFoundError):
        return False
    if isinstance(error, APIProxyError) and error.status_code not in (None, 502, 503, 504):
        return False  # the proxy refused (407 above all): asking again gets the same answer
    if isinstance(error, APIConnectionError):
        return config.retry_connection_errors
    return False


def _waits(config: RetryConfig, rng: random.Random) -> Iterator[float]:
    """Full-jitter waits in seconds: uniform in [0, min(max, initial * exponent ** n)]."""
    import backoff  # imported on the first retry only: keeps `import emissary` light

    strategy = config.backoff
    bounds = backoff.expo(
        base=strategy.exponent,
        factor=strategy.initial_interval / 1000.0,
        max_value=strategy.max_interval / 1000.0,
    )
    next(bounds)  # backoff's generators are primed with a first next()
    for bound in bounds:
        yield rng.uniform(0, bound)


def first_attempt_timeout(config: RetryConfig, timeout_s: float) -> float:
    """The first attempt's limit: `timeout_s`, cut to the call's whole budget."""
    if not config.enabled:
        return timeout_s
    return min(timeout_s, config.backoff.max_elapsed_time / 1000.0)


class Retrying:
    """The retries of one call whose first attempt failed (begun at `started`).

    `after(error)` decides on each failure: it sleeps the wait and returns the next
    attempt's limit, or raises the error that ends the call. Each later attempt's limit is
    cut to what is left of ``max_elapsed_time``, so no attempt runs past it, and none starts
    without time left: a call whose budget is spent (a loop that woke late from its backoff
    sleep) ends with `APITimeoutError`. A wait that would end past the budget (a long
    ``Retry-After`` included) is not slept: the error is raised at once. `not_after` (a
    wait's deadline, on the same clock) ends the budget earlier, if it comes first.
    """

    __slots__ = (
        "attempts",
        "config",
        "deadline",
        "logger",
        "not_after",
        "rolling",
        "runtime",
        "started",
        "timeout_s",
        "waits",
    )

    def __init__(
        self,
        config: RetryConfig,
        timeout_s: float,
        runtime: RetryRuntime,
        started: float,
        logger: logging.Logger = _logger,
        *,
        rolling: bool = False,
        not_after: float | None = None,
    ) -> None:
        self.config = config
        self.logger = logger
        """Where each retry is logged (INFO)."""
        self.rolling = rolling
        """The budget counts from each failure, not from the call's start (an upload's
        attempts take as long as its file: only waits and answers are budgeted)."""
        self.timeout_s = timeout_s
        self.runtime = runtime
        self.started = started
        self.attempts = 1
        """Attempts made so far."""
        self.not_after = math.inf if not_after is None else not_after
        self.deadline = min(started + config.backoff.max_elapsed_time / 1000.0, self.not_after)
        self.waits = _waits(config, runtime.random) if config.enabled else iter(())

    async def after(
        self,
        error: SDKError | APIConnectionError,
        *,
        idempotent: bool = True,
        replayable: bool = True,
    ) -> float:
        """Wait before the next attempt and return its limit (seconds), or raise the error
        that ends the call (`error` itself, marked with the attempts and the time taken).
        A call that must not take effect twice (a create without the caller's idempotency
        key: not `idempotent`) is retried only if the failed attempt cannot have taken
        effect; one whose body cannot be sent again (not `replayable`) is never retried."""
        config, runtime, number = self.config, self.runtime, self.attempts
        clock = runtime.clock
        if self.rolling:
            self.deadline = min(clock() + config.backoff.max_elapsed_time / 1000.0, self.not_after)
        if (
            not config.enabled
            or not replayable
            or not is_retryable(error, config)
            or (error.maybe_committed and not idempotent)
        ):
            raise _ended(error, number, self.started, clock)
        wait = next(self.waits)
        floor = error.retry_after if isinstance(error, SDKError) else None
        paced = (
            floor is not None
            and isinstance(error, SDKError)
            and error.status_code in PACING_STATUSES
        )
        cap = config.max_attempts
        if cap is not None and number >= cap and not paced:
            raise _ended(error, number, self.started, clock)
        if floor is not None:
            if not floor <= MAX_RETRY_AFTER_S:
                raise _ended(error, number, self.started, clock)
            # A server pacing its clients says when: wait that long (or a tenth of the
            # backoff, should it keep saying "now"). On other statuses it is a floor.
            wait = max(floor, wait / 10) if paced else max(wait, floor)
        if clock() + wait >= self.deadline or not math.isfinite(wait):
            raise _ended(error, number, self.started, clock)
        if not paced and not runtime.bucket.withdraw(error):  # pacing is not an outage
            self.logger.info("retry budget exhausted; not retrying %s", _describe(error))
            raise _ended(error, number, self.started, clock)
        self.logger.info(
            "attempt %d failed (%s); retrying in %.3f s (Retry-After: %s)",
            number,
            _describe(error),
            wait,
            floor,
        )
        await runtime.sleep(wait)
        left = self.deadline - clock()
        if not left > 0:  # aiohttp reads a limit <= 0 as "no limit": never send one
            spent = APITimeoutError(
                f"the call's time budget (max_elapsed_time {config.backoff.max_elapsed_time} "
                f"ms) was spent before attempt {number + 1}; attempt {number} failed with "
                f"{type(error).__name__}: {str(error).partition(chr(10))[0]}"
            )
            raise _ended(spent, number, self.started, clock) from error
        self.attempts = number + 1
        return min(self.timeout_s, left)


def _ended(
    error: SDKError | APIConnectionError, attempts: int, started: float, clock: Clock
) -> SDKError | APIConnectionError:
    """`error`, marked as the end of a call that made `attempts` attempts since `started`."""
    error.retries_taken = attempts - 1
    error.elapsed = datetime.timedelta(seconds=max(0.0, clock() - started))
    return error


def _describe(error: Exception) -> str:
    if isinstance(error, SDKError):
        return f"status {error.status_code}"
    return type(error).__name__
