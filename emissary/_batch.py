"""Many calls at once: a batch's rows, how many are in flight, and how fast they are sent.

A batch is a `Batch` iterator over its input: it pulls an input only when a row slot is
free (so memory is bounded for any input), runs each row as one logical call through the
client's request path (its own Idempotency-Key, the client's retries, budget and deadlines)
and yields one `models.BatchResult` per input, whatever happened to it.

The request path asks the batch's `Pacer` before every attempt (retries included) and
tells it how the attempt ended, so that:

- at most `limit` attempts are in flight: fixed, or adaptive (`AIMDLimit`, its sends
  paced over the round trip so that they do not go out, and come back, in bursts);
- a 429 or 503 carrying Retry-After holds every new attempt of the batch until then;
- ``requests_per_minute`` spaces the attempts out.

A row waiting out its backoff holds no in-flight slot.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sized
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast

from .errors import (
    APIConnectionError,
    APITimeoutError,
    BatchInputError,
    ClientClosedError,
    ConfigurationError,
    EmissaryError,
    SDKError,
)
from .models import BatchFailure, BatchOutcome, BatchResult, BatchSuccess

if TYPE_CHECKING:
    from ._protocol import Request, RequestPath
    from ._retry import RetryRuntime
    from .utils import RetryConfig


T = TypeVar("T")
Concurrency = int | Literal["auto"]
Progress = bool | Callable[[int, int, "int | None"], None]
"""``progress=``: True for a bar on stderr, or a callable given (done, failed, total)."""

_SHRINK_ON = frozenset({429, 503})
PACING_GAIN = 1.25
"""How much faster than its limit's pace an adaptive batch may send (`Pacer._paced`): a
round's sends are spread over four fifths of a round trip (BBR's probing gain)."""


class AIMDLimit:
    """An adaptive in-flight limit in the shape of Netflix's ``AIMDLimit``: additive
    increase while the limit is used, multiplicative decrease on 429, 503 and timeouts;
    other failures (400, 401, 404, ...) say nothing of the server's capacity.

    Refinements from TCP: until the first overload the limit grows by one per success
    (slow start: it doubles every round trip), then by one per limit's worth of successes;
    it shrinks once per overload, not once per rejected request (an attempt sent under an
    older, larger limit does not cut the limit again); and after shrinking it holds for
    `HOLD_ROUNDS` round trips before probing again, so that at a hard capacity it rarely
    crosses it. Latency is not a signal: an LLM call's latency follows the tokens it
    generates.

    How far it shrinks: a server that refuses (429, 503) is full, and the attempts sent
    before the refused one and still out are what fills it, so the limit drops to their
    number (the server's capacity, measured), however far slow start overshot, in one
    step; but never below half the attempts in flight (TCP's cut), as when some of those
    earlier attempts were refused too and are on their way back. A timeout measures
    nothing: the limit drops to `BACKOFF` times the attempts in flight.
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

    def overloaded(self, epoch: int, in_flight: int, earlier: int | None = None) -> None:
        """An attempt sent in `epoch` met 429, 503 (`earlier`: how many attempts sent
        before it were still out) or a timeout (`earlier` None) while `in_flight`
        attempts, itself included, were out."""
        if epoch != self.epoch:
            return
        self.slow_start = False
        estimate = in_flight * self.BACKOFF if earlier is None else max(earlier, in_flight // 2)
        self.limit = max(1.0, min(self.limit, float(estimate)))
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
        self.sent = 0
        """Attempts admitted so far (adaptive only): an attempt's ticket is its number."""
        self.pending: dict[int, tuple[int, float]] = {}
        """The epoch of the limit each attempt in flight was sent under, and when, by
        ticket."""
        self.round_trip: float | None = None
        """A successful attempt's time, smoothed (TCP's SRTT: 7/8 of the last, 1/8 of the
        new), once one is known (adaptive only): the pacing's round trip."""
        self.next_paced = -math.inf

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
            if self.adaptive is not None and self.interval is None and self.round_trip:
                await self._paced(clock, sleep)  # (a rate cap spaces the sends already)
        except BaseException:
            self.in_flight -= 1
            self._wake()
            raise
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.adaptive is None:
            return 0
        self.sent += 1
        self.pending[self.sent] = (self.adaptive.epoch, clock())
        return self.sent

    async def _paced(self, clock: Callable[[], float], sleep: Any) -> None:
        """Space the attempts of an adaptive batch `PACING_GAIN` times faster than the
        limit's pace (the limit per round trip): slots freed together (a server answering
        a round at once) are refilled over most of a round trip, not in one burst, so the
        answers come back spread out and every slot is refilled as soon as it frees."""
        assert self.adaptive is not None and self.round_trip is not None
        now = clock()
        at = max(now, self.next_paced)
        self.next_paced = at + self.round_trip / (PACING_GAIN * self.adaptive.current)
        if at > now:
            await sleep(at - now)

    def settle(self, ticket: int, error: BaseException | None) -> None:
        """An attempt admitted with `ticket` ended (`error` None: it succeeded)."""
        adaptive = self.adaptive
        epoch, sent_at = (0, 0.0) if adaptive is None else self.pending.pop(ticket, (-1, 0.0))
        if error is None:
            if adaptive is not None:
                adaptive.succeeded(self.in_flight)
                took = self.runtime.clock() - sent_at
                previous = self.round_trip
                self.round_trip = took if previous is None else previous + (took - previous) / 8
        elif isinstance(error, SDKError) and error.status_code in _SHRINK_ON:
            if adaptive is not None:
                adaptive.overloaded(epoch, self.in_flight, self._earlier(ticket))
            if error.retry_after is not None:
                self.gate_until = max(self.gate_until, self.runtime.clock() + error.retry_after)
        elif isinstance(error, APITimeoutError) and adaptive is not None:
            adaptive.overloaded(epoch, self.in_flight)
        self.in_flight -= 1
        self._wake()

    def _earlier(self, ticket: int) -> int:
        """How many attempts sent before the one of `ticket` are still in flight."""
        return sum(1 for sent in self.pending if sent < ticket)

    def _wake(self) -> None:
        """Hand free slots to the attempts waiting, first come first served."""
        while self.waiters and self.in_flight < self.limit:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self.in_flight += 1


class _RowsBar:
    """The ``progress=True`` bar of a batch: rows done, and how many failed."""

    def __init__(self, total: int | None) -> None:
        from ._bars import Bar

        self.bar = Bar(total, "row")

    def __call__(self, done: int, failed: int, total: int | None) -> None:
        self.bar.show(done, f"failed={failed}" if failed else None)

    def close(self) -> None:
        self.bar.close()


REORDER_BUFFER_BYTES = 32 << 20
"""With ``ordered=True``, finished rows wait for every earlier one before they are handed
out. They may hold this much (32 MiB, estimated from their response bodies) before no new
row starts: a row that retries for a minute then holds up memory, not the rows behind it."""
_PARKED_OVERHEAD = 512
"""What a waiting result is taken to cost beyond its response body, in bytes."""


class Batch(Generic[T]):
    """The rows of one batch, as an async iterator of `models.BatchOutcome` (see the
    module docstring); ``iter_batch`` returns one. Close it (``aclose()``, or ``async
    with``) to stop early: rows in flight are cancelled and their connections closed.
    Dropping it without closing cancels them too.

    If the input iterable raises, the rows in flight finish and are handed out, then
    `BatchInputError` is raised from the input's exception. Closing the client under a
    batch ends it with `ClientClosedError`, as it ends a single call.

    (This object is what the caller holds; its rows run in a `_Rows` that the event loop's
    tasks refer to. So the caller dropping it is seen, and stops them.)
    """

    def __init__(
        self,
        client: RequestPath,
        describe: Callable[[Any], Request],
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
        if isinstance(items, AsyncIterable):
            source: Iterator[Any] | AsyncIterator[Any] = items.__aiter__()
        elif isinstance(items, Iterable) and not isinstance(items, str | bytes | dict):
            source = iter(items)
        else:
            raise ConfigurationError(
                "requests must be an iterable of request bodies (a list, a generator, ...), "
                f"got {type(items).__name__}"
            )
        if total is None and isinstance(items, Sized):
            total = len(items)
        self.total = total
        """How many rows the input has, when it says so (a list does; a generator not)."""
        self._rows: _Rows[T] = _Rows(
            client,
            describe,
            source,
            Pacer(
                concurrency=concurrency,
                max_concurrency=max_concurrency,
                requests_per_minute=requests_per_minute,
                runtime=client._retry_runtime,
            ),
            retries=retries,
            timeout_ms=timeout_ms,
            slots=max_concurrency if concurrency == "auto" else int(concurrency),
            ordered=ordered,
            progress=progress,
            total=total,
        )

    @property
    def pacer(self) -> Pacer:
        """What admits the batch's attempts (its limit, and the most seen in flight)."""
        return self._rows.pacer

    def __aiter__(self) -> Batch[T]:
        return self

    async def __aenter__(self) -> Batch[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def __anext__(self) -> BatchOutcome[T]:
        rows = self._rows
        while not rows.ready:
            if not await rows.wait():
                raise StopAsyncIteration
        return rows.ready.popleft()

    async def anext_ready(self) -> list[BatchOutcome[T]]:
        """Every result ready now (waiting for at least one); empty at the end. The sync
        facade takes results this way: one hand-off per wake-up instead of per row."""
        rows = self._rows
        while not rows.ready:
            if not await rows.wait():
                return []
        ready = list(rows.ready)
        rows.ready.clear()
        return ready

    async def aclose(self) -> None:
        """Stop: cancel the rows in flight and wait for them to unwind."""
        await self._rows.aclose()

    def __del__(self) -> None:
        rows = getattr(self, "_rows", None)
        if rows is not None:  # dropped mid-batch: stop its rows
            rows.abandon()


class _Rows(Generic[T]):
    """A batch's rows: started while slots are free, their results queued in `ready`."""

    def __init__(
        self,
        client: RequestPath,
        describe: Callable[[Any], Request],
        source: Iterator[Any] | AsyncIterator[Any],
        pacer: Pacer,
        *,
        retries: RetryConfig | None,
        timeout_ms: float | None,
        slots: int,
        ordered: bool,
        progress: Progress,
        total: int | None,
    ) -> None:
        self.client = client
        self.describe = describe
        self.source = source
        self.sync_source = None if isinstance(source, AsyncIterator) else source
        self.pacer = pacer
        self.retries, self.timeout_ms = retries, timeout_ms
        self.slots = slots
        """The most rows in flight at once (the pacer admits their attempts)."""
        self.ordered = ordered
        self.total = total
        self.next_index = 0
        self.next_out = 0
        self.exhausted = False
        self.closed = False
        self.tasks: set[asyncio.Task[tuple[BatchOutcome[T], int]]] = set()
        self.ready: collections.deque[BatchOutcome[T]] = collections.deque()
        self.parked: dict[int, BatchOutcome[T]] = {}  # ordered: finished, awaiting their turn
        self.parked_bytes = 0
        self.wakeup: asyncio.Event | None = None
        self.draining = False
        """Every result is taken as it comes (`collect`, for ``batch``): a freed slot is
        refilled from its row's callback at once. (``iter_batch`` leaves that to its
        consumer's next turn, so that its input is not read ahead of what it consumes.)"""
        self.failure: BaseException | None = None
        self.input_error: Exception | None = None
        self.done = 0
        self.failed = 0
        self.bar: _RowsBar | None = None
        self.progress: Callable[[int, int, int | None], None] | None = None
        if progress is True:
            self.bar = _RowsBar(total)
            self.progress = self.bar
        elif callable(progress):
            self.progress = progress

    async def wait(self) -> bool:
        """Start rows while slots are free, then wait until one finishes; False when every
        row has been handed out. Raises `BatchInputError` once the rows that ran are out,
        if the input raised."""
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure
        if self.closed:
            return False
        if self.wakeup is None:
            self.wakeup = asyncio.Event()
        try:
            await self.fill()
            if not self.tasks:
                self.close_bar()
                if self.input_error is not None and not self.parked:
                    error, self.input_error = self.input_error, None
                    self.closed = True
                    raise BatchInputError(
                        f"the batch's requests raised {type(error).__name__} after "
                        f"{self.next_index} rows: {error}"
                    ) from error
                return False
            self.wakeup.clear()
            await self.wakeup.wait()
            return True
        except BaseException:
            await self.aclose()
            raise

    def room(self) -> bool:
        """Whether another row may start: input left, a slot free and, ordered, the rows
        waiting their turn under `REORDER_BUFFER_BYTES`."""
        return (
            not self.exhausted
            and len(self.tasks) < self.slots
            and self.parked_bytes < REORDER_BUFFER_BYTES
        )

    async def fill(self) -> None:
        """Start rows from the input while there is `room`."""
        if self.sync_source is not None:
            self.pull()
            return
        source = cast("AsyncIterator[Any]", self.source)
        while self.room():
            try:
                item = await source.__anext__()
            except StopAsyncIteration:
                self.exhausted = True
                return
            except Exception as error:  # the caller's input failed: finish what runs
                self.exhausted, self.input_error = True, error
                return
            self.start(item)

    def pull(self) -> None:
        """`fill` from a synchronous input (so from a row's callback too)."""
        assert self.sync_source is not None
        while self.room():
            try:
                item = next(self.sync_source)
            except StopIteration:
                self.exhausted = True
                return
            except Exception as error:  # the caller's input failed: finish what runs
                self.exhausted, self.input_error = True, error
                return
            self.start(item)

    def start(self, item: Any) -> None:
        """Start the row of `item` as a task of its own."""
        task = asyncio.get_running_loop().create_task(self.row(self.next_index, item))
        self.next_index += 1
        self.tasks.add(task)
        task.add_done_callback(self.finished)

    async def row(self, index: int, item: Any) -> tuple[BatchOutcome[T], int]:
        """One row: its call, and whatever became of it (with the bytes it holds)."""
        try:
            request = self.describe(item)
            response = await self.client._request(
                request,
                retries=self.retries,
                server_url=None,
                timeout_ms=self.timeout_ms,
                raw=True,
                pacer=self.pacer,
            )
        except (SDKError, APIConnectionError) as error:
            failure: BatchFailure[T] = BatchFailure(
                index=index,
                error=error,
                request_id=error.request_id if isinstance(error, SDKError) else None,
                retries_taken=error.retries_taken,
            )
            return failure, len(error.body) if isinstance(error, SDKError) else 0
        except ClientClosedError:  # closed under the batch: no row can run, the batch ends
            raise
        except EmissaryError as error:  # bad input
            return BatchFailure(index=index, error=error), 0
        except Exception as error:  # a bug, ours or in the input's objects: still this row's
            unexpected = EmissaryError(
                f"the row failed unexpectedly: {type(error).__name__}: {error}"
            )
            unexpected.__cause__ = error
            return BatchFailure(index=index, error=unexpected), 0
        success = BatchSuccess(
            index=index,
            result=response.parse(),
            request_id=response.request_id,
            retries_taken=response.retries_taken,
        )
        return success, len(response.content)

    def finished(self, task: asyncio.Task[tuple[BatchOutcome[T], int]]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:  # not a row's failure (KeyboardInterrupt, say): the batch ends
            self.end(error)
            return
        result, size = task.result()
        self.done += 1
        self.failed += not result.ok
        if self.ordered:
            self.parked[result.index] = result
            self.parked_bytes += size + _PARKED_OVERHEAD
            while self.next_out in self.parked:
                self.ready.append(self.parked.pop(self.next_out))
                self.next_out += 1
            if not self.parked:
                self.parked_bytes = 0
        else:
            self.ready.append(result)
        if self.draining and self.sync_source is not None and not self.closed:
            # One row in for one row out, here, rather than every slot a turn of the loop
            # freed at once when the consumer wakes: rows then start and end interleaved,
            # not in bursts, and the cycle collector runs less often (benchmarks/README.md,
            # "A row's end starts the next row"). An async input cannot be read from a
            # callback: `collect` refills from it when it wakes.
            try:
                self.pull()
            except BaseException as failure:  # the input's own (KeyboardInterrupt, say)
                self.end(failure)
                return
        if self.progress is not None:
            self.progress(self.done, self.failed, self.total)
        if self.wakeup is not None:
            self.wakeup.set()

    def end(self, failure: BaseException) -> None:
        """What is not a row's failure ends the batch: `wait` raises it."""
        self.ready.clear()
        self.closed = True
        for other in self.tasks:
            other.cancel()
        self.failure = failure
        if self.wakeup is not None:
            self.wakeup.set()

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    async def aclose(self) -> None:
        """Stop: cancel the rows in flight and wait for them to unwind."""
        self.closed = True
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.close_bar()
        closer = getattr(self.source, "aclose", None)
        if closer is not None:
            await closer()

    def abandon(self) -> None:
        """The caller dropped the batch: cancel the rows in flight (no waiting)."""
        self.closed = True
        for task in list(self.tasks):
            task.cancel()
        self.close_bar()


async def collect(batch: Batch[T]) -> list[BatchOutcome[T]]:
    """Every result of `batch`, in input order (the rows themselves run unordered, so one
    slow row never holds up the others). If the input raised, the `BatchInputError`
    carries the results of the rows that ran."""
    results: list[BatchOutcome[T]] = []
    batch._rows.draining = True
    try:
        while chunk := await batch.anext_ready():
            results += chunk
    except BatchInputError as error:
        results.sort(key=_index)
        error.results = results
        raise
    finally:
        await batch.aclose()
    results.sort(key=_index)
    return results


def _index(result: BatchResult[Any]) -> int:
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
