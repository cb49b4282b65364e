"""Retry settings, with the names and argument order of the generated `emissary-client-sdk`,
and the options every call takes.

Times are in milliseconds. Pass a `RetryConfig` as ``retry_config=`` to a client or as
``retries=`` to one call; ``RetryConfig("none", ...)`` (or `RetryConfig.disabled()`) turns
retries off. `DEFAULT_RETRY_CONFIG` is what a client uses when given none.

`CallOptions` (and `PostOptions`, `JSONPostOptions`) type the keyword options of every
operation (``**options`` in their signatures, which type checkers and IDEs expand).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

import msgspec

from .errors import ConfigurationError

__all__ = [
    "DEFAULT_RETRY_CONFIG",
    "BackoffStrategy",
    "PollPolicy",
    "CallOptions",
    "JSONPostOptions",
    "PostOptions",
    "RetryBudget",
    "RetryConfig",
]


class BackoffStrategy(msgspec.Struct, frozen=True):
    """Exponential backoff with full jitter.

    The n-th wait (n = 0, 1, ...) is drawn uniformly from
    ``[0, min(max_interval, initial_interval * exponent ** n)]`` milliseconds, and the whole
    call, waits included, stops after `max_elapsed_time` milliseconds.
    """

    initial_interval: int
    """First wait's upper bound, in milliseconds (> 0)."""
    max_interval: int
    """Largest wait's upper bound, in milliseconds (>= initial_interval)."""
    exponent: float
    """Growth factor of the upper bound per attempt (>= 1)."""
    max_elapsed_time: int
    """Budget for the whole call, attempts and waits included, in milliseconds (> 0)."""

    def __post_init__(self) -> None:
        for name in ("initial_interval", "max_interval", "max_elapsed_time"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigurationError(
                    f"BackoffStrategy.{name} must be a positive number of milliseconds, "
                    f"got {value!r}"
                )
        if self.max_interval < self.initial_interval:
            raise ConfigurationError(
                "BackoffStrategy.max_interval must be >= initial_interval, "
                f"got {self.max_interval!r} < {self.initial_interval!r}"
            )
        exponent = self.exponent
        if (
            isinstance(exponent, bool)
            or not isinstance(exponent, int | float)
            or not math.isfinite(exponent)
            or exponent < 1
        ):
            raise ConfigurationError(
                f"BackoffStrategy.exponent must be a finite number >= 1, got {exponent!r}"
            )


class RetryConfig(msgspec.Struct, frozen=True):
    """Whether and how a call is retried.

    `strategy` is ``"backoff"`` (retry with `backoff`) or ``"none"`` (never retry).
    `retry_connection_errors` also retries refused, reset and dropped connections and
    timeouts, not only retryable status codes.

    `max_attempts` caps the attempts of a call that fails without being told when to come
    back: refused or dropped connections, timeouts, 5XX answers without ``Retry-After``. So
    a server that is down or hangs fails fast (3 attempts, a few seconds, as the big SDKs
    do), while an overloaded one that answers 429 or 503 *with* ``Retry-After`` is waited
    for, up to ``backoff.max_elapsed_time``. None lifts the cap: only the time budget
    (and the client's `RetryBudget`) then stops retries.
    """

    strategy: Literal["backoff", "none"]
    backoff: BackoffStrategy
    retry_connection_errors: bool = True
    max_attempts: int | None = 3
    """The most attempts for failures without ``Retry-After`` (>= 1), or None for no cap."""

    def __post_init__(self) -> None:
        if self.strategy not in ("backoff", "none"):
            raise ConfigurationError(
                f'RetryConfig.strategy must be "backoff" or "none", got {self.strategy!r}'
            )
        if not isinstance(self.backoff, BackoffStrategy):
            raise ConfigurationError(
                f"RetryConfig.backoff must be a BackoffStrategy, got {type(self.backoff).__name__}"
            )
        if not isinstance(self.retry_connection_errors, bool):
            raise ConfigurationError(
                "RetryConfig.retry_connection_errors must be a bool, "
                f"got {self.retry_connection_errors!r}"
            )
        attempts = self.max_attempts
        if attempts is not None and (
            isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1
        ):
            raise ConfigurationError(
                f"RetryConfig.max_attempts must be an integer >= 1 or None, got {attempts!r}"
            )

    @property
    def enabled(self) -> bool:
        """True when this config retries at all."""
        return self.strategy == "backoff"

    @classmethod
    def disabled(cls) -> RetryConfig:
        """A config that never retries."""
        return cls("none", DEFAULT_RETRY_CONFIG.backoff, False)


class RetryBudget(msgspec.Struct, frozen=True):
    """A client-wide cap on retries (a token bucket, as AWS's retry quota and gRPC's retry
    throttling), so that in an outage retries add a little traffic instead of multiplying it.

    The bucket starts full at `capacity` tokens. A retry spends `retry_cost` tokens
    (`timeout_cost` after a timeout) and is not made when the bucket cannot pay; every
    successful attempt puts back `success_refund`. With the defaults (100, 5, 10, 1), a total
    outage stops retrying after at most 20 retries, whatever the number of calls, and a
    healthy stream of successes refills the bucket within 100 calls. A server pacing its
    clients (429 or 503 with ``Retry-After``) is not in an outage: waiting as it asks costs
    no tokens (a batch at a deployment's capacity meets many such answers).
    """

    capacity: float = 100.0
    retry_cost: float = 5.0
    timeout_cost: float = 10.0
    success_refund: float = 1.0

    def __post_init__(self) -> None:
        for name in ("capacity", "retry_cost", "timeout_cost", "success_refund"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ConfigurationError(f"RetryBudget.{name} must be a number >= 0, got {value!r}")

    @classmethod
    def unlimited(cls) -> RetryBudget:
        """A budget that never refuses a retry (each call's own limits still apply)."""
        return cls(capacity=math.inf, retry_cost=0.0, timeout_cost=0.0, success_refund=0.0)


DEFAULT_RETRY_CONFIG = RetryConfig(
    "backoff",
    BackoffStrategy(
        initial_interval=500, max_interval=8_000, exponent=2.0, max_elapsed_time=60_000
    ),
    retry_connection_errors=True,
    max_attempts=3,
)
"""Retries on by default. A server that is down, hangs or fails without ``Retry-After``
gets 3 attempts (waits of up to 0.5 s and 1 s between them); one that answers 429 or 503
with ``Retry-After`` is waited for as it asks, up to 60 s for the whole call."""


class CallOptions(TypedDict, total=False):
    """Options every operation takes, as keywords (all optional).

    - ``retries``: a `RetryConfig` for this call, instead of the client's.
    - ``server_url``: the base URL for this call, instead of the client's.
    - ``timeout_ms``: the limit for each attempt of this call, in milliseconds.
    - ``extra_headers``: headers sent on every attempt, over the SDK's own (a name or value
      that could split the request is refused before any I/O).
    - ``extra_query``: query parameters added to the URL (percent-encoded).
    """

    retries: RetryConfig | None
    server_url: str | None
    timeout_ms: float | None
    extra_headers: Mapping[str, str] | None
    extra_query: Mapping[str, str] | None


class PostOptions(CallOptions, total=False):
    """`CallOptions`, and for a POST: ``idempotency_key``, the call's ``Idempotency-Key``
    instead of a fresh UUID (the same on every attempt; on a create it also lets the SDK
    retry a failure that may have taken effect, as the server de-duplicates by it)."""

    idempotency_key: str | None


class JSONPostOptions(PostOptions, total=False):
    """`PostOptions`, and for a JSON body: ``extra_body``, fields merged into the body at
    the top level, for fields the server knows and the SDK does not yet (not checked
    against the schema; a value that cannot be encoded is a `RequestTypeError`)."""

    extra_body: Mapping[str, Any] | None


class PollPolicy(msgspec.Struct, frozen=True):
    """How a wait polls (``training_jobs.wait(poll=PollPolicy(...))``), in seconds.

    Between `min_interval` and `max_interval`: backoff with jitter while nothing tells how
    long the work will take, and, while a training job reports ``progress``, a schedule that
    uses its estimate of the time left (falling back to short intervals once progress
    reaches 100). A ``Retry-After`` on a poll's answer is a floor.
    """

    min_interval: float = 2.0
    max_interval: float = 120.0

    def __post_init__(self) -> None:
        for name in ("min_interval", "max_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigurationError(
                    f"PollPolicy.{name} must be a positive number of seconds, got {value!r}"
                )
        if self.max_interval < self.min_interval:
            raise ConfigurationError(
                "PollPolicy.max_interval must be >= min_interval, got "
                f"{self.max_interval!r} < {self.min_interval!r}"
            )
