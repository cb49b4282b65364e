"""Many calls at once: a batch's rows, how many are in flight, and how fast they are sent.

A batch is a `Batch` iterator over its input: it pulls an input only when a row slot is
free (so memory is bounded for any input), runs each row as one logical call through the
client's request path (its own Idempotency-Key, the client's retries, budget and deadlines)
and yields one `models.BatchResult` per input, whatever happened to it.

The request path asks the batch's `Pacer` before every attempt (retries included) and
tells it how the attempt ended, so that:

- at most `limit` attempts are in flight: fixed, or adaptive (`AIMDLimit`);
- a 429 or 503 carrying Retry-After holds every new attempt of the batch until then;
- ``requests_per_minute`` spaces the attempts out.

A row waiting out its backoff holds no in-flight slot.
"""

from __future__ import annotations

import asyncio
import collections
import importlib
import math
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sized
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .errors import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    EmissaryError,
    SDKError,
)
from .models import BatchResult

if TYPE_CHECKING:
    from ._protocol import Request
    from ._retry import RetryRuntime
    from .models import APIResponse
    from .utils import RetryConfig

    class _Client(Protocol):
        """What a batch needs of a client: its request path, and its retries' clock."""

        _retry_runtime: RetryRuntime

        async def _request(
            self,
            request: Request[Any],
            *,
            retries: RetryConfig | None,
            server_url: str | None,
            timeout_ms: float | None,
            raw: Literal[True],
            pacer: Pacer | None = None,
        ) -> APIResponse[Any]: ...


Concurrency = int | Literal["auto"]
Progress = bool | Callable[[int, int, "int | None"], None]
"""``progress=``: True for a bar on stderr, or a callable given (done, failed, total)."""

_SHRINK_ON = frozenset({429, 503})


class AIMDLimit:
    """An adaptive in-flight limit in the shape of Netflix's ``AIMDLimit``: additive
    increase while the limit is used, multiplicative decrease on 429, 503 and timeouts;
    other failures (400, 401, 404, ...) say nothing of the server's capacity.

    Refinements from TCP: until the first overload the limit grows by one per success
    (slow start: it doubles every round trip), then by one per limit's worth of successes;
    it shrinks once per overload, not once per rejected request (an attempt sent under an
    older, larger limit does not cut the limit again), to `BACKOFF` times the requests
    that were in flight (the server's capacity was just below that, however far slow
    start overshot); and after shrinking it holds for `HOLD_ROUNDS` round trips before
    probing again, so that at a hard capacity it rarely crosses it. Latency is not a
    signal: an LLM call's latency follows the tokens it generates.
    """

    __slots__ = ("epoch", "hold", "limit", "maximum", "slow_start")

    BACKOFF = 0.95
    INITIAL = 8
    HOLD_ROUNDS = 8

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.limit = float(min(self.INITIAL, maximum))
        self.slow_start = True
        self.hold = 0
        """Successes still to see before the limit grows again."""
        self.epoch = 0
        """Bumped at every decrease: tells attempts sent under the current limit apart."""

    @property
    def current(self) -> int:
        """How many attempts may be in flight now."""
        return max(1, int(self.limit))

    def succeeded(self, in_flight: int) -> None:
        """An attempt succeeded while `in_flight` attempts (itself included) were out."""
        if in_flight * 2 < self.limit:  # the limit is not being used: no evidence for more
            return
        if self.hold:
            self.hold -= 1
            return
        step = 1.0 if self.slow_start else 1.0 / self.limit
        self.limit = min(float(self.maximum), self.limit + step)

    def overloaded(self, epoch: int, in_flight: int) -> None:
        """An attempt sent in `epoch` met 429, 503 or a timeout while `in_flight` attempts
        (itself included) were out."""
        if epoch != self.epoch:
            return
        self.slow_start = False
        self.limit = max(1.0, min(self.limit, float(in_flight)) * self.BACKOFF)
        self.hold = int(self.HOLD_ROUNDS * self.limit)
        self.epoch += 1


class Pacer:
    """Admits a batch's attempts: the in-flight limit, the Retry-After gate, the rate cap.
    The client's request path calls `admit` before each attempt and `settle` after it."""

    def __init__(
        self,
        *,
        concurrency: Concurrency,
        max_concurrency: int,
        requests_per_minute: float | None,
        runtime: RetryRuntime,
    ) -> None:
        self.adaptive = AIMDLimit(max_concurrency) if concurrency == "auto" else None
        self.fixed = max_concurrency if concurrency == "auto" else int(concurrency)
        self.interval = None if requests_per_minute is None else 60.0 / requests_per_minute
        self.runtime = runtime
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate_until = -math.inf
        self.next_send = -math.inf
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def limit(self) -> int:
        """The in-flight limit now."""
        return self.fixed if self.adaptive is None else self.adaptive.current

    async def admit(self) -> int:
        """Wait until an attempt may be sent; returns the ticket `settle` takes."""
        clock, sleep = self.runtime.clock, self.runtime.sleep
        if self.interval is not None:  # reserve a send time, at least `interval` apart
            now = clock()
            at = max(now, self.next_send)
            self.next_send = at + self.interval
            if at > now:
                await sleep(at - now)
        while (wait := self.gate_until - clock()) > 0:  # a server asked the batch to wait
            await sleep(wait)
        if self.in_flight < self.limit and not self.waiters:
            self.in_flight += 1
        else:
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await waiter  # `_wake` hands this attempt a slot (counted in in_flight)
            except asyncio.CancelledError:
                if waiter.cancelled():
                    if waiter in self.waiters:
                        self.waiters.remove(waiter)
                else:  # handed a slot just as it was cancelled: pass the slot on
                    self.in_flight -= 1
                    self._wake()
                raise
        try:
            while (wait := self.gate_until - clock()) > 0:  # set while this one queued
                await sleep(wait)
        except BaseException:
            self.in_flight -= 1
            self._wake()
            raise
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return 0 if self.adaptive is None else self.adaptive.epoch

    def settle(self, ticket: int, error: BaseException | None) -> None:
        """An attempt admitted with `ticket` ended (`error` None: it succeeded)."""
        adaptive = self.adaptive
        if error is None:
            if adaptive is not None:
                adaptive.succeeded(self.in_flight)
        elif isinstance(error, SDKError) and error.status_code in _SHRINK_ON:
            if adaptive is not None:
                adaptive.overloaded(ticket, self.in_flight)
            if error.retry_after is not None:
                self.gate_until = max(self.gate_until, self.runtime.clock() + error.retry_after)
        elif isinstance(error, APITimeoutError) and adaptive is not None:
            adaptive.overloaded(ticket, self.in_flight)
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        """Hand free slots to the attempts waiting, first come first served."""
        while self.waiters and self.in_flight < self.limit:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self.in_flight += 1


class _Bar:
    """The ``progress=True`` bar: tqdm on stderr (imported on first use)."""

    def __init__(self, total: int | None) -> None:
        tqdm = importlib.import_module("tqdm").tqdm  # untyped, and only imported here

        self.bar: Any = tqdm(total=total, unit="row", file=sys.stderr, dynamic_ncols=True)
        self.failed = 0

    def __call__(self, done: int, failed: int, total: int | None) -> None:
        if failed != self.failed:
            self.failed = failed
            self.bar.set_postfix(failed=failed, refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


class Batch:
    """The rows of one batch, as an async iterator of `models.BatchResult` (see the module
    docstring); ``iter_batch`` returns one. Close it (``aclose()``, or ``async with``) to
    stop early: rows in flight are cancelled and their connections closed."""

    def __init__(
        self,
        client: _Client,
        describe: Callable[[Any], Request[Any]],
        items: Iterable[Any] | AsyncIterable[Any],
        *,
        concurrency: Concurrency,
        max_concurrency: int,
        requests_per_minute: float | None,
        retries: RetryConfig | None,
        timeout_ms: float | None,
        progress: Progress,
        ordered: bool,
        total: int | None = None,
    ) -> None:
        check_batch_options(concurrency, max_concurrency, requests_per_minute, progress)
        self._client = client
        self._describe = describe
        self._sync_items: Iterator[Any] | None = None
        self._async_items: AsyncIterator[Any] | None = None
        if isinstance(items, AsyncIterable):
            self._async_items = items.__aiter__()
        elif isinstance(items, Iterable) and not isinstance(items, str | bytes | dict):
            self._sync_items = iter(items)
        else:
            raise ConfigurationError(
                "requests must be an iterable of request bodies (a list, a generator, ...), "
                f"got {type(items).__name__}"
            )
        self.total = len(items) if total is None and isinstance(items, Sized) else total
        """How many rows the input has, when it says so (a list does; a generator not)."""
        self.pacer = Pacer(
            concurrency=concurrency,
            max_concurrency=max_concurrency,
            requests_per_minute=requests_per_minute,
            runtime=client._retry_runtime,
        )
        self._retries, self._timeout_ms = retries, timeout_ms
        self._slots = max_concurrency if concurrency == "auto" else int(concurrency)
        """Rows started and not yet handed out: bounds the memory of any input."""
        self._ordered = ordered
        self._next_index = 0
        self._next_out = 0
        self._exhausted = False
        self._closed = False
        self._tasks: set[asyncio.Task[BatchResult]] = set()
        self._ready: collections.deque[BatchResult] = collections.deque()
        self._parked: dict[int, BatchResult] = {}  # ordered: finished, waiting their turn
        self._wakeup: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self.done = 0
        self.failed = 0
        self._bar: _Bar | None = None
        self._progress: Callable[[int, int, int | None], None] | None = None
        if progress is True:
            self._bar = _Bar(self.total)
            self._progress = self._bar
        elif callable(progress):
            self._progress = progress

    def __aiter__(self) -> Batch:
        return self

    async def __aenter__(self) -> Batch:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def __anext__(self) -> BatchResult:
        while not self._ready:
            if not await self._wait():
                raise StopAsyncIteration
        return self._ready.popleft()

    async def anext_ready(self) -> list[BatchResult]:
        """Every result ready now (waiting for at least one); empty at the end. The sync
        facade takes results this way: one hand-off per wake-up instead of per row."""
        while not self._ready:
            if not await self._wait():
                return []
        ready = list(self._ready)
        self._ready.clear()
        return ready

    async def _wait(self) -> bool:
        """Start rows while slots are free, then wait until one finishes; False when
        every row has been handed out."""
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        if self._closed:
            return False
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        try:
            await self._fill()
            if not self._tasks:
                self._close_bar()
                return False
            self._wakeup.clear()
            await self._wakeup.wait()
            return True
        except BaseException:
            await self.aclose()
            raise

    async def _fill(self) -> None:
        while not self._exhausted and len(self._tasks) + len(self._parked) < self._slots:
            try:
                if self._sync_items is not None:
                    item = next(self._sync_items)
                else:
                    assert self._async_items is not None
                    item = await self._async_items.__anext__()
            except (StopIteration, StopAsyncIteration):
                self._exhausted = True
                return
            task = asyncio.get_running_loop().create_task(self._row(self._next_index, item))
            self._next_index += 1
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    async def _row(self, index: int, item: Any) -> BatchResult:
        """One row: its call, and whatever became of it."""
        try:
            request = self._describe(item)
            response = await self._client._request(
                request,
                retries=self._retries,
                server_url=None,
                timeout_ms=self._timeout_ms,
                raw=True,
                pacer=self.pacer,
            )
        except (SDKError, APIConnectionError) as error:
            return BatchResult(
                index=index,
                error=error,
                request_id=getattr(error, "request_id", None),
                retries_taken=error.retries_taken,
            )
        except EmissaryError as error:  # bad input, a closed client
            return BatchResult(index=index, error=error)
        return BatchResult(
            index=index,
            completion=response.parse(),
            request_id=response.request_id,
            retries_taken=response.retries_taken,
        )

    def _finished(self, task: asyncio.Task[BatchResult]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:  # a bug, not a row's failure: the batch ends with it
            self._ready.clear()
            self._closed = True
            for other in self._tasks:
                other.cancel()
            self._failure = error
            if self._wakeup is not None:
                self._wakeup.set()
            return
        result = task.result()
        self.done += 1
        self.failed += result.error is not None
        if self._ordered:
            self._parked[result.index] = result
            while self._next_out in self._parked:
                self._ready.append(self._parked.pop(self._next_out))
                self._next_out += 1
        else:
            self._ready.append(result)
        if self._progress is not None:
            self._progress(self.done, self.failed, self.total)
        if self._wakeup is not None:
            self._wakeup.set()

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    async def aclose(self) -> None:
        """Stop: cancel the rows in flight and wait for them to unwind."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._close_bar()
        closer = getattr(self._async_items, "aclose", None)
        if closer is not None:
            await closer()

    def __del__(self) -> None:
        for task in getattr(self, "_tasks", ()):  # dropped mid-batch: stop its rows
            task.cancel()


async def collect(batch: Batch) -> list[BatchResult]:
    """Every result of `batch`, in input order (the rows themselves run unordered, so one
    slow row never holds up the others)."""
    results: list[BatchResult] = []
    try:
        while chunk := await batch.anext_ready():
            results += chunk
    finally:
        await batch.aclose()
    results.sort(key=_index)
    return results


def _index(result: BatchResult) -> int:
    return result.index


def check_batch_options(
    concurrency: object, max_concurrency: object, requests_per_minute: object, progress: object
) -> None:
    """Raise `ConfigurationError` for batch options that cannot work (before any I/O)."""
    if not _positive_int(max_concurrency):
        raise ConfigurationError(
            f"max_concurrency must be an integer >= 1, got {max_concurrency!r}"
        )
    if concurrency != "auto" and not _positive_int(concurrency):
        raise ConfigurationError(
            f"concurrency must be 'auto' or an integer >= 1, got {concurrency!r}"
        )
    if requests_per_minute is not None and (
        isinstance(requests_per_minute, bool)
        or not isinstance(requests_per_minute, int | float)
        or not 0 < requests_per_minute < math.inf
    ):
        raise ConfigurationError(
            f"requests_per_minute must be a positive number or None, got {requests_per_minute!r}"
        )
    if not isinstance(progress, bool) and not callable(progress):
        raise ConfigurationError(
            "progress must be True, False or a callable taking (done, failed, total), "
            f"got {type(progress).__name__}"
        )


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
