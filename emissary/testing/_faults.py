"""Faults the emulator injects into its next requests and the next resources created, for
your own resilience tests.

    emulator.faults.fail(2, status=503, retry_after=1)   # the next two requests get 503
    emulator.faults.drop()                               # then one connection is dropped
    emulator.faults.truncate()                           # then a body is cut short
    emulator.faults.delay(0.5)                           # then an answer comes late
    emulator.faults.hang()                               # then one never comes
    emulator.faults.drip(0.05)                           # then the body comes byte by byte
    emulator.faults.commit_then_drop()                   # then a job is made, unanswered

Request faults are used up in the order they were added, one per request, before any other
check; requests after them are answered normally, unless ``emulator.faults.at_random(0.05)``
asked for a share of them to fail (for soak and batch tests). Each takes ``operation=``, an
operation name of `emissary._operations` (``"deployments.get"``): such a fault waits for a
request of that operation, and requests of other operations pass it by (they take the
first queued fault meant for them, if any); without it, a fault is for the next request,
whatever it is (``commit_then_drop`` is for ``"training_jobs.create"`` unless told
otherwise: ``operation=None`` for any request). ``commit_then_drop`` carries the request
out (the resource is created, the upload recorded, ...) and then drops the connection
without an answer: the client cannot tell whether it took effect (``maybe_committed``).

Lifecycle faults are used up by the next resource created (a project, a dataset, a
training job or a deployment; with ``operation=``, by the next one that create makes):

    emulator.faults.not_found_for(10)            # 404 (with its code) for its first 10 s
    emulator.faults.unknown_status("Queued", 60)  # its status is "Queued" for its first 60 s

A resource hidden by ``not_found_for`` is invisible to reads for that time, as on an
eventually consistent platform whose reads are served by a replica that lags behind: every
GET that names it (a get, its checkpoints, a list or get of what a hidden project holds)
answers the 404 of a resource that does not exist, with its code (``training_job_not_found``,
...), and lists and a project's detail leave it out. Writes see it (a create in it or
naming it, a delete, a cancel, inference), and so does the create's own answer.
``unknown_status`` only applies to what has a status (a training job or a deployment): a
project or dataset created meanwhile leaves it for the next one. The two kinds combine on
one resource; two faults of one kind go to two resources, in order. Times are the
emulator's clock (a `VirtualClock`, or real time).

Thread-safe: a test thread may add faults while the emulator serves on its own thread.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal

from .._operations import BY_NAME
from ._checks import check_seconds

FaultKind = Literal[
    "fail",
    "drop",
    "truncate",
    "delay",
    "hang",
    "drip",
    "commit_then_drop",
    "not_found_for",
    "unknown_status",
]
LIFECYCLE_KINDS: frozenset[FaultKind] = frozenset({"not_found_for", "unknown_status"})
"""The kinds used up by a resource created rather than by a request."""
WITH_STATUS = frozenset({"training_jobs.create", "deployments.create"})
"""The creates of the resources that have a status (for ``unknown_status``)."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault (see `FaultPlan` for what each kind does)."""

    kind: FaultKind
    status: int = 503
    retry_after: str | None = None
    retry_after_ms: str | None = None
    body: bytes | None = None
    seconds: float = 0.0
    operation: str | None = None
    """The operation it is meant for (``"training_jobs.create"``); None: any."""
    value: str | None = None
    """The status an ``unknown_status`` fault reports."""

    def meant_for(self, operation: str | None) -> bool:
        """Whether a request (or a create) of `operation` uses this fault up."""
        return self.operation is None or self.operation == operation


class FaultPlan:
    """The queue of faults for the next requests and resources (see the module docstring).

    Request faults, each for the next ``times`` (``n``) requests of ``operation`` (an
    operation name of `emissary._operations`; None: any request):

    - ``fail``: answer an error status (with ``Retry-After``, a body of yours, ...);
    - ``drop``: close the connection without answering, before doing anything;
    - ``truncate``: send the headers and half the body, then close;
    - ``delay``: answer late; ``hang``: never answer; ``drip``: send the body byte by byte;
    - ``commit_then_drop``: carry the request out, then close without answering (an
      ambiguous create: ``operation`` is ``"training_jobs.create"`` unless told);
    - ``at_random``: once nothing queued is meant for it, a request (of ``operation``)
      meets a 503, a drop or a truncated body with some probability.

    Lifecycle faults, each for the next resource created (by ``operation``, a create; None:
    any create):

    - ``not_found_for``: it answers 404 (with its code) to every GET naming it, and lists
      leave it out, for its first seconds (writes find it);
    - ``unknown_status``: it (a training job or a deployment) reports another status for
      its first seconds.

    Each fault is used up once: a request (or a resource) takes the first one queued that
    is meant for it, so faults for one operation keep their order, and requests of other
    operations pass them by. `pending` counts what is left and `clear` forgets it.
    Thread-safe.
    """

    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()
        self._lifecycle: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._rate = 0.0
        self._rate_operation: str | None = None
        self._random = random.Random(0)
        self._turn = 0

    def _add(self, fault: Fault, times: int) -> FaultPlan:
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        queue = self._lifecycle if fault.kind in LIFECYCLE_KINDS else self._queue
        with self._lock:
            queue.extend([fault] * times)
        return self

    def fail(
        self,
        times: int = 1,
        *,
        status: int = 503,
        retry_after: float | str | None = None,
        retry_after_ms: float | str | None = None,
        body: bytes | None = None,
        operation: str | None = None,
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
                operation=_operation(operation),
            ),
            times,
        )

    def drop(self, times: int = 1, *, operation: str | None = None) -> FaultPlan:
        """Close the connection without answering (before the request is carried out: an
        upload's body is not even read)."""
        return self._add(Fault("drop", operation=_operation(operation)), times)

    def truncate(self, times: int = 1, *, operation: str | None = None) -> FaultPlan:
        """Send the headers and the start of the body, then close the connection."""
        return self._add(Fault("truncate", operation=_operation(operation)), times)

    def delay(self, seconds: float, times: int = 1, *, operation: str | None = None) -> FaultPlan:
        """Wait `seconds` (real time), then answer normally."""
        return self._add(Fault("delay", seconds=seconds, operation=_operation(operation)), times)

    def hang(self, times: int = 1, *, operation: str | None = None) -> FaultPlan:
        """Never answer: hold the connection until the client leaves or the server stops."""
        return self._add(Fault("hang", operation=_operation(operation)), times)

    def drip(self, interval: float, times: int = 1, *, operation: str | None = None) -> FaultPlan:
        """Answer normally, but send the body one byte every `interval` seconds."""
        return self._add(Fault("drip", seconds=interval, operation=_operation(operation)), times)

    def commit_then_drop(
        self, n: int = 1, *, operation: str | None = "training_jobs.create"
    ) -> FaultPlan:
        """Carry the request out (create the resource, record the upload, delete, ...: the
        answer is made, whatever it is), then close the connection without sending it;
        for the next `n` requests of `operation` (by default ``"training_jobs.create"``,
        the create that costs most if doubled; ``"datasets.create"``, ...; None: the next
        requests, whatever they are). The client sees a connection dropped after its
        request was sent: ``maybe_committed``."""
        return self._add(Fault("commit_then_drop", operation=_operation(operation)), n)

    def not_found_for(self, seconds: float, *, operation: str | None = None) -> FaultPlan:
        """Hide the next resource created (by `operation`, a create: ``"datasets.create"``;
        None: whatever it is) from reads for its first `seconds`: every GET that names it
        answers 404 with its code (``training_job_not_found``, ...) and lists leave it out,
        as on an eventually consistent platform (see the module docstring). The create's
        own answer shows it, and writes (a delete, a create naming it, ...) find it."""
        check_seconds("seconds", seconds)
        return self._add(
            Fault("not_found_for", seconds=seconds, operation=_operation(operation, "create")),
            1,
        )

    def unknown_status(
        self, value: str, for_s: float, *, operation: str | None = None
    ) -> FaultPlan:
        """The next training job or deployment created (by `operation`,
        ``"training_jobs.create"`` or ``"deployments.create"``; None: either) reports
        `value` (``"Queued"``, a status the spec does not list) as its status for its
        first `for_s` seconds, then its script's status. Only the status changes: its
        progress and checkpoints follow the script."""
        check_seconds("for_s", for_s)
        if not isinstance(value, str) or not value:
            raise ValueError(f"value must be a non-empty status string, got {value!r}")
        if operation is not None and operation not in WITH_STATUS:
            raise ValueError(
                f"unknown_status is for {' or '.join(sorted(WITH_STATUS))}, got {operation!r}"
            )
        fault = Fault("unknown_status", seconds=for_s, value=value, operation=operation)
        return self._add(fault, 1)

    def at_random(self, rate: float, *, seed: int = 0, operation: str | None = None) -> FaultPlan:
        """From now on, once the queued faults are used up, each request (of `operation`,
        if given) meets a fault with probability `rate`, drawn from a generator seeded
        with `seed`: a 503, a dropped connection and a truncated body in turn (each
        retried by the client). ``at_random(0)`` or `clear` stops it."""
        if not 0 <= rate <= 1:
            raise ValueError(f"rate must be between 0 and 1, got {rate!r}")
        operation = _operation(operation)
        with self._lock:
            self._rate, self._random, self._turn = rate, random.Random(seed), 0
            self._rate_operation = operation
        return self

    def clear(self) -> None:
        """Forget the faults not yet used, and stop `at_random`."""
        with self._lock:
            self._queue.clear()
            self._lifecycle.clear()
            self._rate = 0.0

    @property
    def pending(self) -> int:
        """How many faults are still waiting for a request or a resource."""
        with self._lock:
            return len(self._queue) + len(self._lifecycle)

    def next(self, operation: str | None = None) -> Fault | None:
        """The fault for the request now arriving, of `operation` (None: a route the API
        does not have), if any: the first queued one meant for it, used up."""
        with self._lock:
            fault = _take(self._queue, operation)
            if fault is not None:
                return fault
            meant = self._rate_operation is None or self._rate_operation == operation
            if self._rate and meant and self._random.random() < self._rate:
                self._turn += 1
                return _RANDOM_FAULTS[self._turn % len(_RANDOM_FAULTS)]
            return None

    def created(self, operation: str) -> list[Fault]:
        """The lifecycle faults a resource that `operation` just created uses up: the
        first queued ``not_found_for`` meant for it, and (for a training job or a
        deployment) the first ``unknown_status``."""
        kinds: list[FaultKind] = ["not_found_for"]
        if operation in WITH_STATUS:
            kinds.append("unknown_status")
        with self._lock:
            taken = (_take(self._lifecycle, operation, kind) for kind in kinds)
            return [fault for fault in taken if fault is not None]


def _take(queue: deque[Fault], operation: str | None, kind: str | None = None) -> Fault | None:
    """Remove and return the first fault of `queue` meant for `operation` (of `kind`)."""
    for index, fault in enumerate(queue):
        if fault.meant_for(operation) and kind in (None, fault.kind):
            del queue[index]
            return fault
    return None


def _operation(name: str | None, kind: str | None = None) -> str | None:
    """`name`, checked: an operation of `emissary._operations` (of `kind`), or None."""
    if name is None:
        return None
    row = BY_NAME.get(name)
    if row is None:
        raise ValueError(f"unknown operation {name!r}; one of {sorted(BY_NAME)}")
    if kind is not None and row.kind != kind:
        choices = sorted(op.name for op in BY_NAME.values() if op.kind == kind)
        raise ValueError(f"{name} is not a {kind}; one of {choices}")
    return name


_RANDOM_FAULTS = (Fault("fail", status=503), Fault("drop"), Fault("truncate"))


def _header_value(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)
