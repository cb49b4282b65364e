"""Dataset uploads: a multipart/form-data body, streamed and hashed as it arrives.

The ``file`` part is never held in memory: each chunk is counted and hashed (SHA-256), then
dropped, so the emulator's memory stays flat whatever the size. A file larger than the
emulator's ``max_upload_bytes`` is refused (413) as soon as it goes past it; the rest of
the body is drained by the server before the connection is reused. An optional ``name``
part (UTF-8 text) names the dataset; other parts are ignored.

The ``filename`` recorded is the one in the part's ``Content-Disposition``, as sent:
quoted-string escapes (``\\"``) are undone, percent signs are not decoded (a client that
percent-encodes its names, as HTML forms do with ``"``, is recorded with them), and an
RFC 5987 ``filename*=UTF-8''...`` takes precedence when present.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable
from typing import TypeVar
from urllib.parse import unquote

import msgspec
from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from ._answers import ApiError, invalid

DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024
"""The largest dataset file the emulator takes by default (100 MiB); larger ones get 413."""
_CHUNK = 64 * 1024
_MAX_NAME_BYTES = 64 * 1024
_PARAMETER = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_QUOTED_PAIR = re.compile(r"\\(.)")
_MALFORMED = (ValueError, RuntimeError, HttpProcessingError)
"""What aiohttp's multipart reader raises on a body that is not multipart."""
T = TypeVar("T")


class Upload(msgspec.Struct, frozen=True, kw_only=True):
    """One dataset file the emulator received (``emu.uploads``), for assertions: what the
    client sent, without the bytes themselves."""

    filename: str | None
    """The file part's file name, as sent (see the module docstring); None if it had
    none."""
    content_type: str | None
    """The file part's ``Content-Type``; None if it had none."""
    name: str | None
    """The ``name`` part, if one was sent (the dataset's name)."""
    size: int
    """The file's size in bytes (its content, not the multipart framing)."""
    sha256: str
    """The SHA-256 of the file's content, in hex."""
    project_id: str
    dataset_id: str
    """The dataset it created."""


async def receive_upload(
    request: web.Request, *, project_id: str, dataset_id: str, max_bytes: int, stall_s: float
) -> Upload:
    """Read a dataset upload from `request`'s multipart body, streaming its file.

    Raises `ApiError`: 400 for a body that is not multipart/form-data, has no ``file`` part
    or two of them, or is malformed; 413 for a file larger than `max_bytes`; 408 when the
    body stops arriving for `stall_s` seconds.
    """
    if request.content_type != "multipart/form-data":
        raise invalid(
            "a dataset is uploaded as multipart/form-data with a 'file' part, "
            f"got Content-Type {request.content_type!r}"
        )
    try:
        reader = await request.multipart()
        received: tuple[dict[str, str], str | None, int, str] | None = None
        name: str | None = None
        while (part := await _within(reader.next(), stall_s)) is not None:
            if not isinstance(part, BodyPartReader):
                raise invalid("a nested multipart part is not a dataset file")
            disposition = _disposition(part.headers.get(hdrs.CONTENT_DISPOSITION, ""))
            field = disposition.get("name")
            if field == "file":
                if received is not None:
                    raise invalid("one 'file' part per dataset, got two")
                size, digest = await _count(part, max_bytes, stall_s)
                content_type = part.headers.get(hdrs.CONTENT_TYPE)
                received = (disposition, content_type, size, digest)
            elif field == "name":
                name = await _text(part, stall_s)
            else:
                await _within(part.release(), stall_s)
    except (*_MALFORMED, web.RequestPayloadError) as exc:
        raise invalid(f"malformed multipart/form-data body: {exc}") from None
    if received is None:
        raise invalid("a dataset needs its file: the body has no 'file' part")
    disposition, content_type, size, digest = received
    return Upload(
        filename=disposition.get("filename*", disposition.get("filename")),
        content_type=content_type,
        name=name,
        size=size,
        sha256=digest,
        project_id=project_id,
        dataset_id=dataset_id,
    )


async def _count(part: BodyPartReader, max_bytes: int, stall_s: float) -> tuple[int, str]:
    """The size and SHA-256 of a part's content, read chunk by chunk."""
    digest = hashlib.sha256()
    size = 0
    while chunk := await _within(part.read_chunk(_CHUNK), stall_s):
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, f"the file is larger than the {max_bytes} bytes the server takes")
        digest.update(chunk)
    return size, digest.hexdigest()


async def _text(part: BodyPartReader, stall_s: float) -> str:
    """A short text part's content, as UTF-8."""
    data = bytearray()
    while chunk := await _within(part.read_chunk(_CHUNK), stall_s):
        data += chunk
        if len(data) > _MAX_NAME_BYTES:
            raise invalid(f"the 'name' part is longer than {_MAX_NAME_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("the 'name' part is not UTF-8 text") from None


async def _within(step: Awaitable[T], stall_s: float) -> T:
    """`step`, or a 408 (closing the connection) if it takes more than `stall_s`."""
    try:
        return await asyncio.wait_for(step, stall_s)
    except asyncio.TimeoutError:
        raise ApiError(408, f"the upload stalled: no data for {stall_s:g} s", close=True) from None


def _disposition(header: str) -> dict[str, str]:
    """The parameters of a ``Content-Disposition`` header (keys lower-cased; the first of
    a repeated one wins; an ``x*`` one decoded per RFC 5987, dropped if it cannot be)."""
    params: dict[str, str] = {}
    for key, raw in _PARAMETER.findall(header):
        key = key.lower()
        value = raw.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = _QUOTED_PAIR.sub(r"\1", value[1:-1])
        if key.endswith("*"):
            charset, quote, rest = value.partition("'")
            _, quote2, encoded = rest.partition("'")
            try:
                value = unquote(encoded, charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError):
                continue
            if not (quote and quote2):
                continue
        params.setdefault(key, value)
    return params
