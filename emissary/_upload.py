"""Uploads (``datasets.create``): the multipart body's framing, without I/O, and where its
file's bytes come from.

A `Multipart` is built once per call from the request body, checked before any I/O: the
bytes before the file (`Multipart.head`: the ``name`` part and the ``file`` part's headers),
the file's bytes (a `Source`) and the bytes after (`Multipart.tail`). The transport sends
them in that order on every attempt (`emissary._transport`), so that a retry re-sends the
same bytes: a `BytesSource` from memory, a `FileSource` from the position the caller's file
was at (rewound per attempt, and left there when the call ends, never closed). A file
that cannot seek can be read once only: it is sent once, with no retry.

The file's name is sent as given: quoted as RFC 7578 says (a backslash as ``\\``, a quote as
``%22``, as browsers and the generated SDK send them), never percent-encoded otherwise, so
``train data.jsonl`` is what the server sees. A name or media type holding a control
character (a tab but) is refused: it would corrupt the part's headers.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from typing import IO, Any

from .errors import RequestTypeError, RequestValidationError, UploadSourceError

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""Control characters (but a tab): they cannot go in a part's headers."""
CHUNK_BYTES = 1 << 20
"""How much of a file is read at a time (in a worker thread: the event loop never waits)."""
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class UploadChanged(Exception):
    """The source turned out unusable while it was sent: its size changed, it gave no
    bytes, or not bytes (the writer makes it an `UploadSourceError` naming the field)."""


class Source:
    """Where a file's bytes come from, for one upload: `chunks` gives them, from the start,
    once per attempt."""

    size: int | None
    """How many bytes (None: not knowable, and the body is sent chunked)."""
    replayable: bool
    """Whether the bytes can be sent again (a retry)."""
    name: str | None = None
    """The file's own name, if it has one (a path's, a file object's)."""
    field: str = "file"
    """The argument it came from, for errors (``request_body.file.content`` or ``file``)."""

    def chunks(self) -> AsyncGenerator[bytes, None]:
        """The bytes, from the start (raises `UploadChanged` if they are not `size`)."""
        raise NotImplementedError

    def restore(self) -> None:
        """Leave the caller's object as it was before the call (after the last attempt)."""


class BytesSource(Source):
    """Bytes in memory (sent in slices, never copied whole)."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.view = memoryview(data).cast("B")
        self.size = self.view.nbytes
        self.replayable = True

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        view = self.view
        for start in range(0, len(view), CHUNK_BYTES):
            yield bytes(view[start : start + CHUNK_BYTES])


class FileSource(Source):
    """A binary file object of the caller's, read from its current position in a worker
    thread (anyio), rewound there for each attempt and left there at the end."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        named = getattr(file, "name", None)
        self.name = os.path.basename(named) if isinstance(named, str) and named else None
        self.start: int | None = None
        self.size = None
        self.replayable = False
        try:
            if file.seekable():
                self.start = file.tell()
                self.size = file.seek(0, os.SEEK_END) - self.start
                file.seek(self.start)
                self.replayable = True
        except (OSError, ValueError):  # a pipe or socket that says it seeks, and cannot
            self.start = self.size = None
            self.replayable = False

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        import anyio.to_thread  # only when a file is uploaded

        file = self.file
        if self.start is not None:
            await anyio.to_thread.run_sync(file.seek, self.start)

        async def read(size: int) -> bytes:
            return await anyio.to_thread.run_sync(file.read, size)

        async for chunk in _sized(read, self.size):
            yield chunk

    def restore(self) -> None:
        if self.start is not None:
            with contextlib.suppress(OSError, ValueError):  # closed by the caller meanwhile
                self.file.seek(self.start)


class PathSource(Source):
    """A file named by its path: checked when the call is made (it exists, is a file, is
    not empty), opened anew for each attempt (anyio's async file, read in a worker thread)
    and closed after it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.name = os.path.basename(self.path) or None
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            raise UploadSourceError(f"file: {self.path!r} does not exist", field="file") from None
        except OSError as exc:
            raise UploadSourceError(
                f"file: {self.path!r} cannot be read ({exc.strerror})", field="file"
            ) from None
        if stat.S_ISDIR(info.st_mode):
            raise UploadSourceError(f"file: {self.path!r} is a directory", field="file")
        self.size = info.st_size if stat.S_ISREG(info.st_mode) else None  # a FIFO: unknown
        self.replayable = stat.S_ISREG(info.st_mode)

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        import anyio  # only when a file is uploaded

        try:
            file = await anyio.open_file(self.path, "rb")
        except OSError as exc:
            raise UploadChanged(f"{self.path!r} cannot be opened ({exc.strerror})") from None
        async with file:
            async for chunk in _sized(file.read, self.size):
                yield chunk


class StreamSource(Source):
    """An iterable of bytes, or (the async client's) an async iterable: its size is not
    known (the body is sent chunked) and it can be read once, so it is sent once, never
    retried. A plain iterable is read in a worker thread (it may block, as a file does)."""

    def __init__(self, stream: Iterable[Any] | AsyncIterable[Any]) -> None:
        self.stream = stream
        self.size = None
        self.replayable = False

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        sent = 0
        async for chunk in _asynchronous(self.stream):
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise UploadChanged(
                    f"the stream gave {type(chunk).__name__}, not bytes (after {sent} bytes)"
                )
            if chunk:
                sent += len(chunk)
                yield bytes(chunk)
        if not sent:
            raise UploadChanged("the stream was empty: there is nothing to upload")


async def _asynchronous(stream: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    """The items of an async iterable, or of a plain one read in a worker thread."""
    if isinstance(stream, AsyncIterable):
        async for item in stream:
            yield item
        return
    import anyio.to_thread

    items = iter(stream)
    done = object()
    while (item := await anyio.to_thread.run_sync(next, items, done)) is not done:
        yield item


async def _sized(
    read: Callable[[int], Awaitable[bytes]], size: int | None
) -> AsyncGenerator[bytes, None]:
    """The bytes `read` gives, in chunks; exactly `size` of them when it is known (else
    `UploadChanged`: the file changed while it was sent); never none at all."""
    sent = 0
    while True:
        wanted = CHUNK_BYTES if size is None else min(CHUNK_BYTES, size - sent)
        chunk = await read(wanted or 1)
        if not chunk:
            break
        if size is not None and sent + len(chunk) > size:
            raise UploadChanged(f"the file grew while it was sent (past {size} bytes)")
        sent += len(chunk)
        yield bytes(chunk)
        if size is not None and sent == size:
            if await read(1):  # not the end: it grew
                raise UploadChanged(f"the file grew while it was sent (past {size} bytes)")
            break
    if size is not None and sent != size:
        raise UploadChanged(f"the file shrank while it was sent ({sent} of {size} bytes)")
    if not sent:  # (a pipe, whose size is not known)
        raise UploadChanged("the file was empty: there is nothing to upload")


UploadFile = (
    str
    | os.PathLike[str]
    | bytes
    | bytearray
    | memoryview
    | IO[bytes]
    | Iterable[bytes]
    | AsyncIterable[bytes]
)
"""What ``datasets.upload(file=...)`` takes (a `str` is always a path)."""


def upload_source(file: object) -> Source:
    """The `Source` of ``datasets.upload(file=...)``: a path (`str` or `os.PathLike`,
    always a path), bytes, a binary file object, or an iterable (or async iterable) of
    bytes; raises `RequestValidationError` for anything else, `UploadSourceError` for a
    missing, empty or directory path, or an empty file."""
    if isinstance(file, Source):  # checked already (fine_tune checks before it uploads)
        return file
    if isinstance(file, str | os.PathLike):
        source: Source = PathSource(file)
    elif isinstance(file, AsyncIterable) or (
        isinstance(file, Iterable)
        and not isinstance(file, bytes | bytearray | memoryview)
        and not callable(getattr(file, "read", None))
    ):
        source = StreamSource(file)
    elif isinstance(file, bytes | bytearray | memoryview) or hasattr(file, "read"):
        source = _source(file, "file")
    else:
        from ._validation import shown

        raise RequestTypeError(
            f"file must be a path, bytes, a binary file object or an iterable of bytes, got "
            f"{shown(file)} ({type(file).__name__})",
            field="file",
        )
    if source.size == 0:
        raise UploadSourceError("file is empty: a dataset needs its data", field="file")
    return source


def check_stall(stall_timeout_ms: object) -> float:
    """``stall_timeout_ms``, checked, in seconds."""
    from .errors import ConfigurationError

    value = stall_timeout_ms
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e12:
        raise ConfigurationError(
            f"stall_timeout_ms must be a positive number of milliseconds, got {value!r}"
        )
    return float(value) / 1000.0


def progress_of(progress: object, total: int | None) -> tuple[Any, Any]:
    """An upload's ``progress=``: (the callable the request path reports to, and the bar
    to close at the end, if it draws one)."""
    from .errors import ConfigurationError

    if progress is False or progress is None:
        return None, None
    if progress is True:
        from ._bars import Bar

        bar = Bar(total, "B", "upload")

        def draw(update: Any) -> None:
            bar.show(update.sent, f"attempt {update.attempt}" if update.attempt > 1 else None)

        return draw, bar
    if callable(progress):
        return progress, None
    raise ConfigurationError(
        f"progress must be True, False or a callable, got {type(progress).__name__}"
    )


class UploadWatch:
    """How one attempt of an upload is timed and followed: it fails once `stall_s` pass
    with no byte sent (not after a total time: a big file may take hours), then gets
    `answer_s` for the answer after its last byte; `sent` is told the bytes of the file
    sent so far, after each chunk."""

    __slots__ = ("answer_s", "sent", "stall_s")

    def __init__(
        self, stall_s: float, answer_s: float, sent: Callable[[int], None] | None = None
    ) -> None:
        self.stall_s = stall_s
        self.answer_s = answer_s
        self.sent = sent


class Multipart:
    """A multipart/form-data body: `head`, the file's bytes, `tail` (see the module)."""

    __slots__ = ("boundary", "content_type", "file_name", "head", "name", "source", "tail")

    def __init__(
        self, source: Source, file_name: str, file_type: str, name: str | None, boundary: str
    ) -> None:
        self.source = source
        self.file_name = file_name
        self.name = name
        self.boundary = boundary
        self.content_type = f"multipart/form-data; boundary={boundary}"
        """The request's Content-Type."""
        head = b""
        if name is not None:
            head += _part_head(boundary, 'form-data; name="name"') + name.encode() + b"\r\n"
        disposition = f'form-data; name="file"; filename="{_quoted(file_name)}"'
        head += _part_head(boundary, disposition, file_type)
        self.head = head
        self.tail = f"\r\n--{boundary}--\r\n".encode()

    @property
    def length(self) -> int | None:
        """The body's length in bytes, when the file's size is known."""
        size = self.source.size
        return None if size is None else len(self.head) + size + len(self.tail)


def _part_head(boundary: str, disposition: str, content_type: str | None = None) -> bytes:
    lines = [f"--{boundary}", f"Content-Disposition: {disposition}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _quoted(name: str) -> str:
    """A file name inside a quoted-string: a backslash as a quoted-pair (servers undo it),
    a quote as ``%22`` as browsers send it (RFC 7578 §4.2). (Control characters were
    refused: `multipart_body`.)"""
    return name.replace("\\", "\\\\").replace('"', "%22")


def multipart_body(request_body: object, boundary: str) -> Multipart:
    """Check a ``datasets.create`` body (dict or `models.CreateDatasetRequestBody`) and
    describe it as a `Multipart`; raises `RequestValidationError` before any I/O."""
    from ._validation import shown, unencodable

    given = _fields(request_body, "request_body", "CreateDatasetRequestBody", ("file", "name"))
    name = given.get("name")
    if name is not None and (not isinstance(name, str) or unencodable(name) is not None):
        raise RequestTypeError(
            f"request_body.name must be a string, got {shown(name)}", field="request_body.name"
        )
    if given.get("file") is None:
        raise RequestValidationError(
            "request_body.file is required: a dataset is created with its file "
            "({'file_name': ..., 'content': bytes or a binary file object})",
            field="request_body.file",
        )
    file = _fields(
        given["file"], "request_body.file", "File", ("file_name", "content", "content_type")
    )
    file_name = file.get("file_name")
    if not isinstance(file_name, str) or not file_name or unencodable(file_name) is not None:
        raise RequestTypeError(
            f"request_body.file.file_name must be a non-empty string, got {shown(file_name)}",
            field="request_body.file.file_name",
        )
    if _CONTROL.search(file_name):
        raise RequestValidationError(
            f"request_body.file.file_name has a control character: {shown(file_name)}",
            field="request_body.file.file_name",
        )
    file_type = file.get("content_type") or DEFAULT_CONTENT_TYPE
    if not isinstance(file_type, str) or _CONTROL.search(file_type) or not file_type.isascii():
        raise RequestTypeError(
            f"request_body.file.content_type must be a media type such as "
            f"'application/jsonl', got {shown(file_type)}",
            field="request_body.file.content_type",
        )
    content = file.get("content")
    source = content if isinstance(content, Source) else _source(content)
    if source.size == 0:
        raise UploadSourceError(
            "request_body.file.content is empty: a dataset needs its data",
            field="request_body.file.content",
        )
    return Multipart(source, file_name, file_type, name, boundary)


def _source(content: object, field: str = "request_body.file.content") -> Source:
    source = _bytes_or_file(content, field)
    source.field = field
    return source


def _bytes_or_file(content: object, field: str) -> Source:
    from ._validation import shown

    if isinstance(content, bytes | bytearray | memoryview):
        return BytesSource(content)
    if isinstance(content, io.TextIOBase) or (
        hasattr(content, "read") and "b" not in getattr(content, "mode", "b")
    ):
        raise RequestTypeError(
            f"{field} is a text file: open it in binary mode ('rb')", field=field
        )
    if callable(getattr(content, "read", None)):
        if getattr(content, "closed", False):
            raise RequestValidationError(f"{field} is a closed file", field=field)
        return FileSource(content)  # type: ignore[arg-type]
    raise RequestTypeError(
        f"{field} must be bytes or a binary file object, got {shown(content)} "
        f"({type(content).__name__})",
        field=field,
    )


def _fields(value: object, field: str, model: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    """A dict or Struct's fields, only those `allowed` (else a typo's hint)."""
    import msgspec

    from ._validation import shown

    if isinstance(value, msgspec.Struct):
        return msgspec.structs.asdict(value)
    if not isinstance(value, Mapping):
        raise RequestTypeError(
            f"{field} must be a dict or an emissary.models.{model}, got {type(value).__name__}",
            field=field,
        )
    for key in value:
        if key not in allowed:
            import difflib

            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RequestValidationError(
                f"{field}.{shown(key)} is not a field of {model}{hint} Allowed fields: "
                f"{', '.join(allowed)}.",
                field=f"{field}.{key}",
            )
    return value
