"""``datasets.create``: a streamed multipart upload from bytes or a file object, over real
loopback HTTP to a server that parses it with aiohttp's own multipart reader. The caller's
file stays open where it was; a retry re-sends the same bytes; a file that cannot seek is
sent once; the file name goes as given; bad bodies are refused before any I/O."""

from __future__ import annotations

import hashlib
import io
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from emissary import AsyncEmissaryClient, EmissaryClient
from emissary.errors import (
    APIConnectionError,
    PayloadTooLargeError,
    RequestTypeError,
    RequestValidationError,
    SDKError,
    UploadSourceError,
)
from emissary.testing import instant_retries

from .faults import FaultServer, read_request, serve_async, stop_async

pytestmark = pytest.mark.anyio

DATA = b"".join(b'{"prompt": "row %d", "completion": "ok"}\n' % i for i in range(50_000))


class Uploads:
    """A server that parses each upload and answers as a list of `replies` says."""

    def __init__(self, *replies: int) -> None:
        self.replies = list(replies) or [201]
        self.parts: list[dict[str, Any]] = []
        self.requests: list[web.Request] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Uploads:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        parts: dict[str, Any] = {"content_type": request.headers.get("Content-Type", "")}
        async for part in await request.multipart():
            data = await part.read()  # type: ignore[union-attr]
            parts[part.name or "?"] = {  # type: ignore[union-attr]
                "filename": part.filename,  # type: ignore[union-attr]
                "type": part.headers.get("Content-Type"),  # type: ignore[union-attr]
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "text": data.decode("utf-8", "replace") if len(data) < 100 else None,
            }
        self.parts.append(parts)
        status = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if status == 201:
            return web.json_response({"id": "ds-1", "name": "n", "is_uploaded": False}, status=201)
        return web.json_response({"status": status, "error": "no"}, status=status)


async def test_bytes_are_streamed_as_the_one_file_part_with_its_name_and_type() -> None:
    uploads = Uploads()
    async with uploads as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            dataset = await client.datasets.create(
                project_id="p",
                request_body={
                    "file": {
                        "file_name": 'train "data" é.jsonl',
                        "content": DATA,
                        "content_type": "application/jsonl",
                    },
                    "name": "my data",
                },
            )
    assert dataset.id == "ds-1"
    (parts,) = uploads.parts
    assert parts["content_type"].startswith("multipart/form-data; boundary=")
    assert parts["file"]["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert parts["file"]["type"] == "application/jsonl"
    assert parts["file"]["filename"] == "train %22data%22 é.jsonl"  # RFC 7578's escape only
    assert parts["name"]["text"] == "my data"
    request = server.requests[0]
    assert int(request.headers["Content-Length"]) > len(DATA)  # the size was known
    assert "Idempotency-Key" in request.headers


async def test_a_file_is_sent_from_where_it_is_left_there_and_never_closed(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"HEADER\n" + DATA)
    uploads = Uploads(503, 201)  # the first attempt fails: the retry re-sends the same bytes
    async with uploads as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            with path.open("rb") as file, instant_retries(client):
                file.readline()  # the caller skipped a header line
                raw = await client.datasets.with_raw_response.create(
                    project_id="p", request_body={"file": {"file_name": "t", "content": file}}
                )
                assert not file.closed and file.tell() == len(b"HEADER\n")
    assert raw.retries_taken == 1
    expected = hashlib.sha256(DATA).hexdigest()
    assert [p["file"]["sha256"] for p in uploads.parts] == [expected, expected]
    assert uploads.parts[0]["file"]["type"] == "application/octet-stream"


def test_the_sync_client_uploads_a_bytesio(tmp_path: Path) -> None:
    from emissary.testing import Emulator

    with Emulator() as emu, EmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
        project = client.projects.create(request={"name": "uploads"})
        assert project.id is not None
        buffer = io.BytesIO(DATA)
        dataset = client.datasets.create(
            project_id=project.id,
            request_body={"file": {"file_name": "d.jsonl", "content": buffer}},
        )
        assert dataset.id is not None and buffer.tell() == 0
        (upload,) = emu.uploads
        assert upload.sha256 == hashlib.sha256(DATA).hexdigest() and upload.size == len(DATA)


async def test_a_file_that_cannot_seek_is_sent_once_without_retry() -> None:
    read, write = os.pipe()
    os.write(write, DATA[:60_000])
    os.close(write)
    uploads = Uploads(503, 201)
    async with uploads as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            with os.fdopen(read, "rb") as pipe, instant_retries(client):
                with pytest.raises(SDKError) as caught:
                    await client.datasets.create(
                        project_id="p",
                        request_body={"file": {"file_name": "t", "content": pipe}},
                    )
    assert caught.value.status_code == 503
    assert len(uploads.parts) == 1 and uploads.parts[0]["file"]["size"] == 60_000
    assert "Transfer-Encoding" in server.requests[0].headers  # no size known: chunked


async def test_a_413_is_payload_too_large_and_not_retried() -> None:
    uploads = Uploads(413)
    async with uploads as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            with instant_retries(client), pytest.raises(PayloadTooLargeError) as caught:
                await client.datasets.create(
                    project_id="p", request_body={"file": {"file_name": "t", "content": b"x"}}
                )
    assert caught.value.status_code == 413 and len(uploads.parts) == 1


class Growing(io.RawIOBase):
    """A seekable file whose reads return more than its size said (it grew)."""

    def __init__(self) -> None:
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = 10 if whence == os.SEEK_END else offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer: Any) -> int:
        buffer[: len(buffer)] = b"y" * len(buffer)
        return len(buffer)


async def test_a_file_that_changes_while_sent_is_an_upload_source_error() -> None:
    uploads = Uploads()
    async with uploads as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            with instant_retries(client), pytest.raises(UploadSourceError) as caught:
                await client.datasets.create(
                    project_id="p",
                    request_body={"file": {"file_name": "t", "content": Growing()}},
                )
    assert "grew" in str(caught.value) and caught.value.field == "request_body.file.content"
    assert uploads.parts == []  # the server never got a whole body


@pytest.mark.parametrize(
    ("body", "field", "kind"),
    [
        ({"name": "no file"}, "request_body.file", RequestValidationError),
        ({"file": {"file_name": "t", "content": "text"}}, "request_body.file.content", TypeError),
        ({"file": {"file_name": "", "content": b"x"}}, "request_body.file.file_name", TypeError),
        ({"file": {"fil_name": "t", "content": b"x"}}, "request_body.file.fil_name", ValueError),
        ({"file": {"file_name": "t", "content": b"x"}, "nme": "x"}, "request_body.nme", ValueError),
        ("not a body", "request_body", TypeError),
    ],
)
async def test_bad_bodies_are_refused_before_any_io(
    body: Any, field: str, kind: type[Exception]
) -> None:
    async with AsyncEmissaryClient(api_key="k", server_url="http://127.0.0.1:9") as client:
        with pytest.raises(RequestValidationError) as caught:
            await client.datasets.create(project_id="p", request_body=body)
    assert caught.value.field == field and isinstance(caught.value, kind)


async def test_a_text_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("{}\n")
    async with AsyncEmissaryClient(api_key="k", server_url="http://127.0.0.1:9") as client:
        with path.open() as text, pytest.raises(RequestTypeError, match="binary mode"):
            await client.datasets.create(
                project_id="p", request_body={"file": {"file_name": "t", "content": text}}
            )


async def test_an_upload_dropped_before_its_end_is_retried_with_the_same_bytes() -> None:
    # A connection dropped while the body was still being sent cannot have created
    # anything: a replayable upload is retried, even a create without idempotency_key.
    # (16 MiB: more than loopback's socket buffers hold, so the drop comes mid-body.)
    data = DATA * 8
    bodies: list[bytes] = []

    def behaviour(conn: socket.socket) -> None:
        if not bodies:  # the first connection: a part of the body, then a drop
            bodies.append(conn.recv(65536))
            conn.close()
            return
        request = read_request(conn)
        bodies.append(request)
        answer = b'{"id": "ds-1"}'
        conn.sendall(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(answer), answer)
        )
        conn.close()

    server = await serve_async(behaviour, read_first=False)
    try:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            with instant_retries(client):
                raw = await client.datasets.with_raw_response.create(
                    project_id="p", request_body={"file": {"file_name": "t", "content": data}}
                )
    finally:
        await stop_async(server)
    assert raw.parse().id == "ds-1" and raw.retries_taken == 1
    assert hashlib.sha256(data).hexdigest() in {
        hashlib.sha256(part).hexdigest() for part in _file_parts(bodies[1])
    }


def _file_parts(request: bytes) -> list[bytes]:
    """The parts' contents of a multipart request (head and body as sent)."""
    head, _, body = request.partition(b"\r\n\r\n")
    boundary = head.split(b"boundary=", 1)[1].split(b"\r\n", 1)[0]
    parts = body.split(b"--" + boundary)[1:-1]
    return [part.partition(b"\r\n\r\n")[2][:-2] for part in parts]


async def test_an_upload_dropped_after_it_was_all_sent_may_have_been_committed() -> None:
    async def drop(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    async with FaultServer(drop) as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            with instant_retries(client), pytest.raises(APIConnectionError) as caught:
                await client.datasets.create(
                    project_id="p", request_body={"file": {"file_name": "t", "content": b"x"}}
                )
    assert caught.value.maybe_committed and len(server.requests) == 1  # never sent twice
