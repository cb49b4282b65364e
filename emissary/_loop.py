"""The private event loop behind the sync facade: one daemon thread running asyncio.

`LoopThread.run(fn, *args, **kwargs)` has the loop run ``await fn(*args, **kwargs)`` and
blocks until it finishes, from any number of threads at once. It is the lean cousin of
anyio's blocking portal: one ``call_soon_threadsafe`` per call, a task that starts at once
(Python 3.12+) and wakes the caller from its own last step, and the caller sleeps in a read
of its thread's own pipe until the loop thread writes a byte to it (`_Wakeup`): a fraction
of the portal's cost (``benchmarks/handoff.py``; figures in ``benchmarks/README.md``). One
long-lived loop: the pooled aiohttp session lives on it, so it must not stop when the last
caller leaves.

- A thread that already runs an event loop (a notebook, an async framework) can call it:
  the work runs on the private loop, never on the caller's.
- Ctrl-C (or any exception raised in the waiting thread) cancels the task and waits briefly
  for it to unwind, so its connection is closed, then re-raises. The coroutine itself is
  made on the loop thread, where no signal handler runs: an interrupt that lands before the
  hand-off leaves no coroutine behind, never awaited.
- In a forked child the parent's thread does not exist: a fresh loop thread is started on
  first use there (the client's transport likewise drops the parent's session).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Generic, ParamSpec, TypeVar

from .errors import ClientClosedError

T = TypeVar("T")
P = ParamSpec("P")
CANCEL_GRACE_S = 2.0
"""How long an interrupted call waits for its task to unwind before re-raising."""
_CLOSED_IN_FLIGHT = "the client was closed while the call was in flight"
_ABANDONING = threading.Lock()
"""Serialises `_Call.abandon`: the loop thread and a caller may both end a stranded call."""

_instances: weakref.WeakSet[LoopThread] = weakref.WeakSet()


class LoopThread:
    """A private asyncio loop on a daemon thread, started on first use."""

    def __init__(self, name: str = "emissary-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._calls: set[_Call[Any]] = set()
        """Calls handed to the loop and not yet returned: ended with `ClientClosedError`
        if the loop stops first (their callers must never wait forever)."""
        _instances.add(self)

    @property
    def closed(self) -> bool:
        """True once `stop` has been called."""
        return self._closed

    @property
    def started(self) -> bool:
        """True when the loop thread runs in this process."""
        return self._loop is not None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop  # None again in a forked child: see _after_fork_in_child
        if loop is not None:
            return loop
        with self._lock:
            if self._closed:
                raise ClientClosedError(
                    "the client is closed; create a new client to send requests"
                )
            if self._loop is None:
                self._start()
            assert self._loop is not None
            return self._loop

    def _start(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                _cancel_leftovers(loop)
                loop.close()
                for call in list(self._calls):  # sent as the loop stopped: never started
                    call.abandon()

        thread = threading.Thread(target=main, name=self._name, daemon=True)
        thread.start()
        # Known from here on, before the wait that Ctrl-C may interrupt: handles sent to the
        # loop before it runs wait for it, so a later call never starts a second thread.
        self._loop, self._thread = loop, thread
        ready.wait()

    def run(
        self, fn: Callable[P, Coroutine[Any, Any, T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``await fn(*args, **kwargs)`` on the private loop and return its result (or
        raise its exception).

        Safe whichever bytecode an interrupt (Ctrl-C) lands on: the coroutine is made on
        the loop thread, the thread's wake-up pipe is claimed and given back inside one
        ``try``, the work is cancelled from the ``except``, and nothing here allocates a file
        descriptor except on a thread's first call.
        """
        loop = self._running_loop()
        if threading.current_thread() is self._thread:
            raise RuntimeError(
                "a sync emissary client was called from its own event loop thread; "
                "use AsyncEmissaryClient inside async code"
            )
        wakeup = _Wakeup.of_this_thread()
        # A call made while this thread already waits in one (from a signal handler or a
        # finalizer) waits on its lock instead: the pipe has one reader at a time.
        nested = wakeup is None or wakeup.busy
        call = _Call(fn, args, kwargs, None if nested else wakeup)
        calls = self._calls
        try:
            if not nested:
                wakeup.busy = True  # type: ignore[union-attr]
            calls.add(call)
            loop.call_soon_threadsafe(call.start, loop)
            if nested:
                call.done.acquire()  # released by the loop thread when the task ends
            else:
                wakeup.wait_until_released(call.done)  # type: ignore[union-attr]
        except BaseException as interrupt:  # interrupted (Ctrl-C): cancel the work
            if isinstance(interrupt, RuntimeError) and loop.is_closed():
                interrupt = ClientClosedError(_CLOSED_IN_FLIGHT)  # another thread closed it
            raise _cancel(loop, call, interrupt)  # noqa: B904 (the interrupt itself, or a later one)
        finally:
            calls.discard(call)
            if not nested:
                wakeup.busy = False  # type: ignore[union-attr]
        return call.outcome()

    def iterate(self, items: AsyncIterator[T]) -> Iterator[T]:
        """Iterate the async iterator `items` from this thread, each step run on the loop
        by `run` (so Ctrl-C cancels it). An iterator offering ``anext_ready`` (a batch)
        hands over every item ready at once, one hand-off per wake-up instead of per item.
        Closing (or dropping) the iterator closes `items` on the loop."""
        take = getattr(items, "anext_ready", None)
        try:
            if take is not None:
                while chunk := self.run(take):
                    yield from chunk
            else:
                while True:
                    try:
                        item = self.run(_anext, items)
                    except StopAsyncIteration:
                        return
                    yield item
        finally:
            closer = getattr(items, "aclose", None)
            if closer is not None and not self._closed:
                self.run(closer)

    def stop(
        self, final: Callable[[], Coroutine[Any, Any, Any]] | None = None, timeout: float = 5.0
    ) -> None:
        """Run ``await final()`` (if given) on the loop, then stop the loop and join its thread.

        Safe from any thread, including the loop's own (e.g. a garbage-collection finalizer
        that happens to run there); `run` raises `ClientClosedError` afterwards.
        """
        if final is not None and self.started and not self._closed:
            if threading.current_thread() is self._thread:
                loop = self._loop
                assert loop is not None
                stop_loop = loop.stop
                self._closed = True
                loop.create_task(final()).add_done_callback(lambda _: stop_loop())
                return
            with contextlib.suppress(Exception):  # best effort; the loop stops regardless
                self.run(final)
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if thread is threading.current_thread():
            loop.stop()
            return
        try:
            loop.call_soon_threadsafe(loop.stop)
        except RuntimeError:  # already closed
            return
        thread.join(timeout)

    def _after_fork_in_child(self) -> None:
        # The parent's loop thread does not exist here; a new one starts on first use.
        self._lock = threading.Lock()
        self._loop = self._thread = None


class _Wakeup:
    """A pipe on which one thread sleeps until the loop thread writes a byte to it.

    Why not just a lock: releasing a lock wakes the waiting thread while the loop thread
    still holds the GIL, so on one core the woken thread preempts the loop thread, finds the
    GIL taken and sleeps again, several context switches a call, where ``os.read`` and
    ``os.write`` (which let go of the GIL around the system call) need one of each
    (``benchmarks/handoff.py`` counts them).

    Each thread has one, made on its first call and closed when the thread ends (and no call
    of it is still on the loop); nothing else ever opens a pipe, so interrupted calls cannot
    pile up descriptors. Bytes may be left over from an interrupted call or a call that
    finished before its caller began to wait, so the reader drains what is there and goes by
    the call's lock, never by the byte alone. The write end does not block: a full pipe
    already wakes its reader.
    """

    __slots__ = ("_fds", "busy")

    _local = threading.local()

    def __init__(self) -> None:
        self.busy = False
        self._fds: list[tuple[int, int]] = []
        # os.pipe() called from C (starmap inside list.extend): no bytecode runs between
        # the pipe's creation and its storing, so no signal handler can raise in between
        # and lose the two descriptors.
        self._fds.extend(itertools.starmap(os.pipe, ((),)))
        try:
            os.set_blocking(self._fds[0][1], False)
        except (OSError, AttributeError):  # e.g. pipes on Windows before Python 3.12
            self.close()
            raise OSError("a non-blocking pipe is not available here") from None

    @classmethod
    def of_this_thread(cls) -> _Wakeup | None:
        """This thread's wake-up pipe, made on first use; None if none can be had (then
        callers wait on their call's lock)."""
        wakeup: _Wakeup | None = getattr(cls._local, "wakeup", None)
        if wakeup is None:
            try:
                wakeup = cls()
            except OSError:  # out of file descriptors, say
                return None
            cls._local.wakeup = wakeup
        return wakeup

    def wait_until_released(self, lock: threading.Lock) -> None:
        """Sleep until the loop thread has released `lock` (and rung)."""
        read_fd = self._fds[0][0]
        while lock.locked():
            os.read(read_fd, 64)

    def ring(self) -> None:
        """Wake the waiting thread (called on the loop thread, after releasing the lock)."""
        fds = self._fds
        if fds:
            with contextlib.suppress(BlockingIOError):
                os.write(fds[0][1], b"\0")

    def close(self) -> None:
        """Close the pipe (once; the thread's last reference does it)."""
        fds = self._fds
        while fds:
            read_fd, write_fd = fds.pop()
            for fd in (read_fd, write_fd):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def __del__(self) -> None:
        # Run when the thread's local storage goes (the thread ended) or, if a call of it was
        # still on the loop, when that call is dropped on the loop thread: never on the main
        # thread during its life, so Ctrl-C cannot land in here.
        if getattr(self, "_fds", None):
            self.close()

    @classmethod
    def _forget_after_fork(cls) -> None:
        # The child must not share the parent's pipes: each thread makes a new one.
        cls._local = threading.local()


if sys.version_info >= (3, 12):

    def _start_task(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]
    ) -> asyncio.Task[None]:
        """A task whose first step runs now, inside this callback, rather than on the
        loop's next turn: one epoll_wait and one handle fewer per call."""
        return asyncio.Task(coro, loop=loop, eager_start=True)

else:

    def _start_task(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]
    ) -> asyncio.Task[None]:
        """A task for `coro` (eager start needs Python 3.12)."""
        return loop.create_task(coro)


class _Call(Generic[T]):
    """One coroutine handed to the loop. The loop thread releases `done` when the task ends
    and then rings the caller's `_Wakeup`, if it has one; without one the caller waits on
    the bare lock (cheaper than a `concurrent.futures.Future`)."""

    __slots__ = (
        "_args",
        "_cancelled",
        "_error",
        "_fn",
        "_kwargs",
        "_released",
        "_result",
        "_task",
        "_wakeup",
        "done",
    )

    def __init__(
        self,
        fn: Callable[..., Coroutine[Any, Any, T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wakeup: _Wakeup | None = None,
    ) -> None:
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._wakeup = wakeup  # kept open by this reference until the call has ended
        self._task: asyncio.Task[None] | None = None
        self._cancelled = False
        self._released = False
        self._result: T | None = None
        self._error: BaseException | None = None
        self.done = threading.Lock()
        self.done.acquire()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._cancelled:
            self._end_unstarted()
            return
        self._task = task = _start_task(loop, self._drive())
        task.add_done_callback(self._finish)  # only for a task cancelled before it began

    async def _drive(self) -> None:
        # The caller is woken from the task's own last step: from a done callback it would
        # take one more turn of the loop (an epoll_wait and a handle) first.
        try:
            self._result = await self._fn(*self._args, **self._kwargs)
        except BaseException as error:  # CancelledError (Ctrl-C in the caller) included
            # A cancelled call's caller has gone: keep no traceback (and so no frames, no
            # connection) for that thread to drop. Cancelled by anything else, the loop
            # is stopping: the client was closed under the caller.
            if self._cancelled:
                self._error = asyncio.CancelledError()
            elif isinstance(error, asyncio.CancelledError):
                self._error = ClientClosedError(_CLOSED_IN_FLIGHT)
            else:
                self._error = error
        self._release()

    def cancel(self) -> None:
        """Cancel the work (on the loop thread). Handles reach the loop in the order they
        were sent, so if `start` was ever sent it has run by now: no task and no release
        means it never was (the caller was interrupted first), and the work never begins.

        Whatever the interrupted caller leaves behind is let go on this thread: the last
        reference to a connection dropped on the caller's thread would run asyncio's weak
        dictionary callbacks there, where the next Ctrl-C can land.
        """
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()
        elif not self._released:
            self._end_unstarted()
        else:  # it ended before the cancellation came: its caller will not read the outcome
            self._result, self._error = None, asyncio.CancelledError()

    def _finish(self, task: asyncio.Task[None]) -> None:
        if not self._released:  # cancelled before `_drive` began: it never ran
            self._end_unstarted()

    def _end_unstarted(self) -> None:
        """End a call cancelled before its work began (its coroutine was never made): report
        it cancelled (to an interrupted caller) or closed (when the loop stopped under it)."""
        self._error = (
            asyncio.CancelledError() if self._cancelled else ClientClosedError(_CLOSED_IN_FLIGHT)
        )
        self._release()

    def abandon(self) -> None:
        """End the call with `ClientClosedError` if it has not ended: its loop is closed,
        so nothing else ever will (called from any thread, once the loop is gone)."""
        with _ABANDONING:
            if not self._released:
                self._end_unstarted()

    def _release(self) -> None:
        # The loop thread lets go of the task: were the caller's thread to drop the last
        # reference, asyncio's weak-set callbacks would run there, where Ctrl-C can land.
        self._task = None
        self._released = True
        self.done.release()
        if self._wakeup is not None:
            self._wakeup.ring()

    def outcome(self) -> T:
        """The task's result, or its exception raised here."""
        if self._error is not None:
            error, self._error = self._error, None  # no reference cycle via the traceback
            raise error
        return self._result  # type: ignore[return-value]


async def _anext(items: AsyncIterator[T]) -> T:
    return await items.__anext__()


def _cancel(
    loop: asyncio.AbstractEventLoop, call: _Call[Any], interrupt: BaseException
) -> BaseException:
    """Send `call` its cancellation and let it unwind (closing its connection) for up to
    `CANCEL_GRACE_S`; return the interrupt to re-raise (the latest, if more came).

    In a storm of Ctrl-C the next interrupt can land while the cancellation is being sent:
    it is sent again until it went (twice does no harm), so no call outlives its caller.
    """
    while True:
        try:
            loop.call_soon_threadsafe(call.cancel)
            break
        except RuntimeError:  # the loop is closed: nothing is running there any more
            call.abandon()
            break
        except BaseException as again:
            interrupt = again
    try:
        call.done.acquire(timeout=CANCEL_GRACE_S)
    except BaseException as again:  # interrupted while waiting: stop waiting
        interrupt = again
    return interrupt


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())


def _reset_after_fork() -> None:
    _Wakeup._forget_after_fork()
    for instance in list(_instances):
        instance._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
