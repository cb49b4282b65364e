"""Waiting for long-running work: waiters as rows, one poll loop, one schedule.

A `Waiter` row says which operation to poll and what its answers mean (done, failed, still
running); `wait` is the one loop that runs them: each poll an ordinary call through the
client's request path (its own retries, deadlines, logs and spans), each sleep on the
client's retry clock (virtual in tests: a 24-hour wait runs in milliseconds), with a
deadline on the same clock. `Schedule` decides when to poll next: backoff with jitter
between `PollPolicy`'s bounds while nothing tells how long the work takes; while a training
job reports ``progress``, half of the time left to the end its progress lately points to
(measured from when progress last moved, not from each poll: progress is a whole percent,
and a 24-hour job stays at one for 14 minutes), so a 6-hour job is polled a few hundred
times, not thousands, and its end is noticed within seconds; short intervals once progress
reaches 100 (the job finalizes) or the estimated end has come. A poll's ``Retry-After`` is a floor.

A poll that fails (after its own retries) is logged and polling goes on, up to
`MAX_FAILED_POLLS` in a row; 400 and 401 end the wait at once; a 404 within
`INVISIBLE_S` of the resource's creation (or of the wait's start, when the wait does not
know it) is "not visible yet", a later one ends the wait. A status the SDK does not know is
not an end. The deadline is on the same clock: no poll's attempts or retries run past it
(each poll is an ordinary call given the deadline as its `not_after`), the last poll is made
at it as one attempt, and so the wait never overruns it by more than one attempt's
``timeout_ms``. Cancelling the waiting task (or Ctrl-C, in the sync client) stops it at
once; nothing is ever cancelled on the server.
"""

from __future__ import annotations

import datetime
import logging
import math
import random
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from . import _operations as ops
from ._operations import Operation
from ._protocol import build_request
from .errors import (
    APIConnectionError,
    APIErrorInvalidInput,
    APIErrorNotFound,
    APIErrorUnauthorized,
    ConfigurationError,
    DeploymentError,
    SDKError,
    TrainingJobError,
    WaitError,
    WaitTimeoutError,
)
from .utils import PollPolicy

if TYPE_CHECKING:
    from ._protocol import RequestPath

R = TypeVar("R")
logger = logging.getLogger("emissary")

MAX_FAILED_POLLS = 10
"""Polls that may fail in a row (each after its own retries) before the wait gives up."""
INVISIBLE_S = 30.0
"""A resource may answer 404 this long after its creation: not visible yet."""
FINALIZING_INTERVAL_S = 20.0
"""The most between polls once a training job's progress has reached 100 (it finalizes: the
end is near, and noticed within this)."""
OVERDUE_INTERVAL_S = 60.0
"""The most between polls once the end a job's progress pointed to has come and gone (it
is near, or the job slowed down: its last percent can take long)."""
CLOSING_GROWTH = 1.3
"""How the intervals grow near the end, from `PollPolicy.min_interval`."""
RATE_SAMPLES = 4
"""How many of the last changes of progress the rate is measured over (recent ones: a job's
pace changes as it goes)."""
BACKOFF_GROWTH = 1.5
"""How the intervals grow while nothing estimates the time left (pending, no progress)."""

Duration = float | datetime.timedelta


class Waiter(Generic[R]):
    """What waiting for one kind of resource means: which operation polls it, which of its
    answers end the wait, and how."""

    __slots__ = ("error", "failed", "max_wait", "noun", "operation", "succeeded")

    def __init__(
        self,
        noun: str,
        operation: Operation[R],
        succeeded: Callable[[Any], bool],
        failed: frozenset[str],
        error: type[WaitError],
        max_wait: float,
    ) -> None:
        self.noun = noun
        self.operation = operation
        self.succeeded = succeeded
        self.failed = failed
        """The statuses that end the wait in failure."""
        self.error = error
        self.max_wait = max_wait
        """The default ``max_wait``, in seconds."""


_ENDED_BADLY = frozenset({"Failed", "TimedOut", "Cancelled"})
TRAINING_JOB = Waiter(
    "training job",
    ops.GET_TRAINING_JOB,
    lambda job: job.status == "Success",
    _ENDED_BADLY,
    TrainingJobError,
    86_400.0,
)
DEPLOYMENT = Waiter(
    "deployment",
    ops.GET_DEPLOYMENT,
    lambda deployment: deployment.status == "Deployed",
    _ENDED_BADLY,
    DeploymentError,
    3_600.0,
)
PROJECT = Waiter(
    "project", ops.GET_PROJECT, lambda project: True, frozenset(), WaitError, 60.0
)  # (waiting for a project: until it is visible)
DATASET = Waiter(
    "dataset", ops.GET_DATASET, lambda dataset: dataset.is_uploaded is True, frozenset(),
    WaitError, 1_800.0,
)  # fmt: skip


def seconds(value: object, name: str) -> float | None:
    """A duration argument (seconds, or a `datetime.timedelta`), checked; None stays."""
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigurationError(
            f"{name} must be a number of seconds >= 0 (or a datetime.timedelta), got {value!r}"
        )
    return float(value)


class Schedule:
    """When to poll next (see the module docstring). Pure: it is given the time and what
    the last poll saw, and answers a wait in seconds, jittered (many waits never poll in
    step) and always within the `PollPolicy`'s bounds."""

    def __init__(self, policy: PollPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng
        self.interval = policy.min_interval
        """The backoff's next interval (while nothing estimates the time left)."""
        self.closing: float | None = None
        """The next interval once the end is near: progress reached 100, or the estimated
        end has come (None before)."""
        self.samples: list[tuple[float, int]] = []
        """(when, progress) for the last changes of progress: the rate is measured over
        them. A change is dated halfway between the poll that saw it and the one before."""
        self.polled: float | None = None
        """When the last poll was made."""

    def next(self, now: float, progress: int | None, running: bool) -> float:
        """The wait before the next poll, given the time and the resource's progress."""
        before, self.polled = self.polled, now
        if running and progress is not None and progress >= 100:  # finalizing: soon done
            return self._closing(FINALIZING_INTERVAL_S)
        if running and progress is not None and progress > 0:
            samples = self.samples
            if samples and progress < samples[-1][1]:
                samples.clear()  # (a progress that went back: start over)
            if not samples or progress > samples[-1][1]:
                samples.append((now if before is None else (before + now) / 2, progress))
                del samples[:-RATE_SAMPLES]
            (start, first), (changed, last) = samples[0], samples[-1]
            if last > first and changed > start:
                rate = min(  # percent per second, lately; but it has not reached last + 1:
                    (last - first) / (changed - start), (last + 1 - first) / (now - start)
                )
                left = (100 - last) / rate - (now - changed)  # to the end it points to
                if left > 0:
                    self.closing = None
                    return self._bounded(left / 2)
                return self._closing(OVERDUE_INTERVAL_S)  # soon done, or it slowed down
        wait = self.interval
        self.interval = min(self.policy.max_interval, wait * BACKOFF_GROWTH)
        return self._bounded(wait)

    def _closing(self, most: float) -> float:
        """Short intervals, growing slowly up to `most`: the end is near."""
        wait = self.closing or self.policy.min_interval
        self.closing = min(wait * CLOSING_GROWTH, most)
        return self._bounded(wait)

    def _bounded(self, wait: float) -> float:
        """`wait` less up to a fifth (jitter), within the policy's bounds."""
        low, high = self.policy.min_interval, self.policy.max_interval
        return max(low, min(high, wait * self.rng.uniform(0.8, 1.0)))


async def wait(
    client: RequestPath,
    waiter: Waiter[R],
    ids: tuple[str, ...],
    *,
    max_wait: Duration | None,
    poll: PollPolicy | None,
    on_progress: Callable[[R], object] | None,
    progress: bool,
    raise_on_failure: bool,
    options: Mapping[str, Any],
    created_at: float | None = None,
) -> R:
    """Poll the resource of `ids` until `waiter` says it is done (see the module)."""
    limit = seconds(max_wait, "max_wait")
    if poll is not None and not isinstance(poll, PollPolicy):
        raise ConfigurationError(
            f"poll must be an emissary.utils.PollPolicy, got {type(poll).__name__}"
        )
    runtime = client._retry_runtime
    clock, sleep = runtime.clock, runtime.sleep
    schedule = Schedule(poll or PollPolicy(), runtime.random)
    start = clock()
    deadline = math.inf if limit is None else start + limit
    visible_from = start if created_at is None else created_at
    request = build_request(waiter.operation, ids, None, options)
    get = options.get
    last: Any = None
    polls = failures = 0
    seen: tuple[object, object] | None = None
    bar = _Bar(waiter.noun) if progress else None
    try:
        while True:
            floor = 0.0
            try:
                answer = await client._request(
                    request,
                    retries=get("retries"),
                    server_url=get("server_url"),
                    timeout_ms=get("timeout_ms"),
                    raw=True,
                    not_after=None if limit is None else deadline,
                )
            except (APIErrorInvalidInput, APIErrorUnauthorized):
                raise
            except (SDKError, APIConnectionError) as error:
                floor = getattr(error, "retry_after", None) or 0.0
                if isinstance(error, APIErrorNotFound):
                    if clock() - visible_from >= INVISIBLE_S:
                        raise  # gone, or never was
                else:  # not visible yet, above: not a failure
                    failures += 1
                    if failures > MAX_FAILED_POLLS:
                        raise
                    logger.info(
                        "polling the %s failed (%s); polling on (%d failures in a row)",
                        waiter.noun, type(error).__name__, failures,
                    )  # fmt: skip
            else:
                failures = 0
                polls += 1
                last = answer.parse()
                floor = _retry_after(answer.headers)
                state = _state(last)
                status = state[0]
                if state != seen:
                    seen = state
                    if on_progress is not None:
                        on_progress(last)
                    if bar is not None:
                        bar.show(*state)
                if waiter.succeeded(last):
                    return cast("R", last)
                if status in waiter.failed:
                    if not raise_on_failure:
                        return cast("R", last)
                    raise waiter.error(
                        f"the {waiter.noun} {ids[-1]} ended {status}{_progress_note(last)}",
                        resource=last, status=status, polls=polls,
                        elapsed=datetime.timedelta(seconds=clock() - start),
                    )  # fmt: skip
            now = clock()
            if now >= deadline:
                raise WaitTimeoutError(
                    f"the {waiter.noun} {ids[-1]} was not done after {limit:g} s (max_wait): "
                    f"{_status(last)}; it goes on on the server",
                    resource=last, status=_state(last)[0], polls=polls,
                    elapsed=datetime.timedelta(seconds=now - start),
                )  # fmt: skip
            running = getattr(last, "status", None) == "Running"
            pause = max(floor, schedule.next(now, getattr(last, "progress", None), running))
            await sleep(min(pause, deadline - now))  # the last poll at the deadline itself
    finally:
        if bar is not None:
            bar.close()


def _retry_after(headers: Mapping[str, str]) -> float:
    from ._protocol import retry_after_seconds

    return retry_after_seconds(headers) or 0.0


def _state(resource: Any) -> tuple[Any, Any]:
    """(status, progress) of a polled resource: a dataset's are those of its
    ``is_uploaded`` ("processing" at 0, then "processed" at 100)."""
    if resource is None:
        return None, None
    uploaded = getattr(resource, "is_uploaded", None)
    if uploaded is not None:
        return ("processed", 100) if uploaded else ("processing", 0)
    return getattr(resource, "status", None), getattr(resource, "progress", None)


def _status(resource: Any) -> str:
    if resource is None:
        return "no poll was answered"
    status = _state(resource)[0]
    if status is None:
        return "no status yet"
    return f"last seen {status}" + _progress_note(resource)


def _progress_note(resource: Any) -> str:
    progress = getattr(resource, "progress", None)
    return "" if progress is None else f" at {progress} %"


class _Bar:
    """``progress=True``: a bar on stderr, in percent, with the status."""

    def __init__(self, noun: str) -> None:
        from ._bars import Bar

        self.bar = Bar(100, "%", noun)

    def show(self, status: object, progress: object) -> None:
        done = max(0, min(100, progress)) if isinstance(progress, int) else self.bar.bar.n
        self.bar.show(done, str(status or ""))

    def close(self) -> None:
        self.bar.close()


NAME_PREFIX = "emissary-"
"""The name the SDK gives a resource ``create_and_wait`` makes when the caller gave none, so
that after an ambiguous failure it can find the one it made."""


async def create_and_wait(
    client: RequestPath,
    create: Operation[Any],
    listing: Operation[list[Any]],
    waiter: Waiter[R],
    project_id: str,
    body: object,
    options: Mapping[str, Any],
    **waiting: Any,
) -> R:
    """Create a resource (`create_adopting`), then `wait` for it."""
    found = await create_adopting(
        client, create, listing, waiter.noun, (project_id,), body, options
    )
    created_at = client._retry_runtime.clock()
    return await wait(
        client, waiter, (project_id, found), options=options, created_at=created_at,
        **waiting,
    )  # fmt: skip


async def create_adopting(
    client: RequestPath,
    create: Operation[Any],
    listing: Operation[list[Any]],
    noun: str,
    ids: tuple[str, ...],
    body: object,
    options: Mapping[str, Any],
    *,
    send: Callable[[object], Awaitable[Any]] | None = None,
    begin: Callable[[str, list[str]], object] | None = None,
    resume: tuple[str, Collection[str]] | None = None,
) -> str:
    """Create a resource and return its id. A create that failed after it may have taken
    effect (``maybe_committed``) is never made again: the resource it made is looked for
    (by its name: the caller's, or one the SDK gives it) and adopted; several candidates
    raise `AmbiguousCreateError`; none, once it has had `INVISIBLE_S` to show, raises the
    create's error (nothing was made). `send` makes the create from the named body (an
    upload, say), else it is `create` with `options`.

    For a create that outlives its process (``fine_tune``'s state file): `begin` is told,
    just before the create is sent, the name and the ids of the resources that already had
    it; `resume` gives those back to a later run, which adopts what the interrupted create
    made (looking as after an ambiguous failure), or makes it now under that name."""
    get = options.get
    if resume is not None:
        name, before = resume[0], set(resume[1])
        logger.info("a create was interrupted: looking for the %s %r", noun, name)
        found = await _adopt(client, listing, noun, ids, name, before, get, None)
        if found is not None:
            return found
    else:
        named, name = _named(body)
        before = set()
        if named:  # the caller's name: what has it already?
            before = {r.id for r in await _list(client, listing, ids, get) if r.name == name}
    if begin is not None:
        begin(name, sorted(before))
    try:
        if send is not None:
            created = await send(_with_name(body, name))
        else:
            created = await client._request(
                build_request(create, ids, _with_name(body, name), options),
                retries=get("retries"),
                server_url=get("server_url"),
                timeout_ms=get("timeout_ms"),
            )
        made: str = created.id
        return made
    except (SDKError, APIConnectionError) as error:
        if not error.maybe_committed:
            raise
        logger.info("the create may have been made: looking for the %s %r", noun, name)
        found = await _adopt(client, listing, noun, ids, name, before, get, error)
        if found is None:
            raise
        return found


async def _adopt(
    client: RequestPath,
    listing: Operation[list[Any]],
    noun: str,
    ids: tuple[str, ...],
    name: str,
    before: set[str],
    get: Any,
    error: BaseException | None,
) -> str | None:
    """The id of the one resource named `name` (not in `before`) that a create made, once
    it shows (None if none has after `INVISIBLE_S`); several: `AmbiguousCreateError`."""
    from .errors import AmbiguousCreateError

    runtime = client._retry_runtime
    started = runtime.clock()
    while True:
        candidates = [
            r for r in await _list(client, listing, ids, get)
            if r.name == name and r.id not in before
        ]  # fmt: skip
        if len(candidates) > 1:
            raise AmbiguousCreateError(
                f"the create of a {noun} named {name!r} may have been made, and "
                f"{len(candidates)} {noun}s could be it: "
                f"{', '.join(str(r.id) for r in candidates)}",
                candidates,
            ) from error
        if candidates:
            logger.info("adopting the %s %s the create made", noun, candidates[0].id)
            adopted: str = candidates[0].id
            return adopted
        if runtime.clock() - started >= INVISIBLE_S:
            return None
        await runtime.sleep(2.0)


def _named(body: object) -> tuple[bool, str]:
    """(whether the caller named the resource, the name it will have)."""
    import uuid

    name = body.get("name") if isinstance(body, Mapping) else getattr(body, "name", None)
    if isinstance(name, str) and name:
        return True, name
    return False, f"{NAME_PREFIX}{uuid.uuid4().hex[:16]}"


def _with_name(body: object, name: str) -> object:
    """`body` with `name` set (a copy: the caller's is left as it was)."""
    import msgspec

    if isinstance(body, msgspec.Struct):
        return msgspec.structs.replace(body, name=name)
    if isinstance(body, Mapping):
        return {**body, "name": name}
    return body  # not a body: build_request says what is wrong with it


async def _list(
    client: RequestPath, listing: Operation[list[Any]], ids: tuple[str, ...], get: Any
) -> list[Any]:
    listed: list[Any] = await client._request(
        build_request(listing, ids, None, {}),
        retries=get("retries"),
        server_url=get("server_url"),
        timeout_ms=get("timeout_ms"),
    )
    return listed
