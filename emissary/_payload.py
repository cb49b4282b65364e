"""The body of an upload as aiohttp writes it: the multipart head, the file's bytes chunk by
chunk from its `Source`, the tail; and, for an upload with a stall watchdog, the timing
around it (each chunk pushes the attempt's deadline, and the answer's time starts once the
server's side has the whole body, not when the last byte is handed to the kernel).

aiohttp writes a body in a task of its own, and cancels that task without waiting for it
when the answer comes first (a 413 before the body is read): `UploadPayload.settle` waits
for it, so that the file the source opened is closed when the call returns.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp

from ._upload import Multipart, UploadChanged, UploadWatch
from .errors import UploadSourceError

if TYPE_CHECKING:
    from aiohttp.abc import AbstractStreamWriter

DRAIN_POLL_S = 0.05
"""How often, after the last byte, the kernel is asked how much of the body it still holds."""
SETTLE_S = 5.0
"""The most `settle` waits for the body's writer: a source blocked in a read (a pipe with
no writer) cannot be interrupted, and is left to close when its read returns."""


class UploadPayload(aiohttp.payload.Payload):
    """A multipart body written from its `Multipart` description (a fresh payload per
    attempt: aiohttp consumes one). It records whether all of it was written (a connection
    dropped before that cannot have created anything) and why its source failed, if it did
    (the transport raises that); with a `watch`, each chunk pushes the attempt's stall
    deadline (`scope`, an anyio cancel scope) further and is reported, and the answer gets
    `watch.answer_s` from when the server's side has taken the last byte."""

    def __init__(
        self, body: Multipart, watch: UploadWatch | None = None, scope: Any = None
    ) -> None:
        super().__init__(body, content_type=body.content_type)
        self._size = body.length
        self._autoclose = True  # it holds nothing to close: the caller's file stays open
        self.body = body
        self.watch = watch
        self.scope = scope
        self.sent_all = False
        self.failure: UploadSourceError | None = None
        self.writer_task: asyncio.Task[Any] | None = None

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """Not text: a multipart body is bytes (aiohttp asks only when logging)."""
        return ""

    async def write(self, writer: AbstractStreamWriter) -> None:
        """Write the whole body; the source is closed before this returns or raises."""
        self.writer_task = asyncio.current_task()
        body, watch = self.body, self.watch
        if watch is not None:
            self._progress(watch, 0)  # the attempt starts
        await writer.write(body.head)
        sent = 0
        chunks = body.source.chunks()
        try:
            async for chunk in chunks:
                await writer.write(chunk)
                if watch is not None:
                    sent += len(chunk)
                    self._progress(watch, sent)
        except UploadChanged as exc:
            self.failure = UploadSourceError(f"{body.source.field}: {exc}", field=body.source.field)
            raise
        finally:
            await chunks.aclose()  # (cancelled mid-body: the file is closed here, now)
        await writer.write(body.tail)
        self.sent_all = True
        if watch is not None and self.scope is not None:
            await self._until_taken(writer, watch)

    def _progress(self, watch: UploadWatch, sent: int) -> None:
        if self.scope is not None:
            self.scope.deadline = _now() + watch.stall_s
        if watch.sent is not None:
            watch.sent(sent)

    async def _until_taken(self, writer: AbstractStreamWriter, watch: UploadWatch) -> None:
        """Hold the stall rule until the server's side has acknowledged the whole body (the
        kernel's send buffer can hold megabytes, seconds of a slow link), then give the
        answer `answer_s`. Where the system cannot tell (not Linux), the answer gets
        `stall_s` more."""
        scope = self.scope
        held = _held_by(writer)
        if held is None:
            scope.deadline = _now() + watch.stall_s + watch.answer_s
            return
        last = held()
        while last > 0:
            await asyncio.sleep(DRAIN_POLL_S)
            now = held()
            if now < last:  # it moves: not a stall
                scope.deadline = _now() + watch.stall_s
            last = now
        scope.deadline = _now() + watch.answer_s

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        """Write the whole body (its length is the one it said: `size`)."""
        await self.write(writer)

    async def settle(self) -> None:
        """Wait (at most `SETTLE_S`) for aiohttp's task writing this body to end, so that
        the source is closed when the call returns."""
        task = self.writer_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()  # (aiohttp has, when the answer came first: no harm done twice)
            await asyncio.wait({task}, timeout=SETTLE_S)


def _held_by(writer: AbstractStreamWriter) -> Callable[[], int] | None:
    """A function that tells how many bytes written on `writer`'s connection the peer has
    not acknowledged yet (the transport's buffer, then the kernel's: Linux's
    ``SIOCOUTQ``), or None where the system cannot tell."""
    transport = getattr(writer, "transport", None)
    if transport is None or sys.platform != "linux":
        return None
    sock = transport.get_extra_info("socket")
    if sock is None:
        return None
    import fcntl
    import struct
    import termios

    fd = sock.fileno()

    def held() -> int:
        try:
            queued = fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0")
        except OSError:  # closed under us: nothing more will be taken
            return 0
        unacknowledged: int = struct.unpack("i", queued)[0]
        buffered: int = transport.get_write_buffer_size()
        return buffered + unacknowledged

    return held


def _now() -> float:
    return asyncio.get_running_loop().time()
