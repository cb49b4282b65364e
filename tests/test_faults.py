"""Faults from the server or the network: always a typed error, never a raw one or a hang."""

from __future__ import annotations

import logging
import socket
import traceback

import anyio
import pytest
from aiohttp import web

from emissary import AsyncEmissaryClient
from emissary.errors import (
    APIConnectionError,
    APITimeoutError,
    EmissaryError,
    ResponseValidationError,
    SDKError,
)
from emissary.utils import RetryConfig

from .conftest import fake_time
from .faults import FaultServer, RawServer, json_handler, serve_async, stop_async

pytestmark = pytest.mark.anyio

SECRET = "sk-live-SECRET-4f1c9a"
NO_RETRY = RetryConfig.disabled()


async def call(url: str, **options: object) -> object:
    async with AsyncEmissaryClient(api_key=SECRET, server_url=url, retry_config=NO_RETRY) as c:
        return await c.deployments.completions.create(
            project_id="p",
            deployment_id="d",
            request_body={"prompt": "p"},
            **options,  # type: ignore[arg-type]
        )


def assert_clean(error: BaseException) -> None:
    """A typed error whose whole traceback (causes included) never shows the key."""
    assert isinstance(error, EmissaryError)
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    assert SECRET not in text
    assert SECRET not in repr(error)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_refused() -> None:
    with pytest.raises(APIConnectionError) as caught:
        await call(f"http://127.0.0.1:{free_port()}")
    assert type(caught.value) is APIConnectionError
    assert "could not connect" in str(caught.value)
    assert_clean(caught.value)


async def test_a_server_that_never_answers_times_out_on_schedule() -> None:
    server = await serve_async(lambda conn: server.wait_for_peer_close(conn))
    try:
        with pytest.raises(APITimeoutError) as caught:
            await call(server.url, timeout_ms=50)
        assert "0.05 s" in str(caught.value)
        assert_clean(caught.value)
    finally:
        await stop_async(server)


async def test_the_clients_own_timeout_bounds_an_attempt() -> None:
    # The client's timeout is the HTTP session's own (no per-request timeout is passed).
    server = await serve_async(lambda conn: server.wait_for_peer_close(conn))
    try:
        async with AsyncEmissaryClient(
            api_key=SECRET, server_url=server.url, retry_config=NO_RETRY, timeout_ms=50
        ) as client:
            with pytest.raises(APITimeoutError) as caught, anyio.fail_after(5):
                await client.deployments.completions.create(
                    project_id="p", deployment_id="d", request_body={"prompt": "p"}
                )
        assert "0.05 s" in str(caught.value)
    finally:
        await stop_async(server)


async def test_a_calls_longer_timeout_outlasts_the_clients() -> None:
    import time

    body = b'{"id": "c1", "response": "late"}'

    def answer_late(conn: socket.socket) -> None:
        time.sleep(0.25)  # five times the client's timeout; far inside the call's
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    server = await serve_async(answer_late)
    try:
        async with AsyncEmissaryClient(
            api_key=SECRET, server_url=server.url, retry_config=NO_RETRY, timeout_ms=50
        ) as client:
            result = await client.deployments.completions.create(
                project_id="p", deployment_id="d", request_body={"prompt": "p"}, timeout_ms=5_000
            )
        assert result.response == "late"
    finally:
        await stop_async(server)


async def test_a_body_dripped_byte_by_byte_still_times_out() -> None:
    import time

    def drip(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        try:
            for _ in range(1000):
                conn.sendall(b" ")
                time.sleep(0.01)
        except OSError:
            pass

    server = await serve_async(drip)
    try:
        with pytest.raises(APITimeoutError):
            await call(server.url, timeout_ms=100)
    finally:
        await stop_async(server)


def _drop(conn: socket.socket) -> None:
    conn.close()


def _truncate(conn: socket.socket) -> None:
    conn.sendall(
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id"'
    )
    conn.close()


def _garbage(conn: socket.socket) -> None:
    conn.sendall(b"this is not HTTP at all\r\n\r\n")
    conn.close()


@pytest.mark.parametrize(
    "behaviour", [_drop, _truncate, _garbage], ids=["drop", "truncate", "garbage"]
)
async def test_broken_connections_are_connection_errors(behaviour: object) -> None:
    server = await serve_async(behaviour)  # type: ignore[arg-type]
    try:
        with pytest.raises(APIConnectionError) as caught:
            await call(server.url)
        assert not isinstance(caught.value, APITimeoutError)
        assert_clean(caught.value)
    finally:
        await stop_async(server)


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (200, b"<html>maintenance</html>", "text/html"),
        (200, b'{"id": 1, "response": ["x"]}', "application/json"),
        (200, b"[" * 50_000 + b"]" * 50_000, "application/json"),
        (201, b"", "application/json"),
        (204, b"", "application/json"),
    ],
)
async def test_a_2xx_that_is_not_a_completion_is_an_error_with_the_body(
    status: int, body: bytes, content_type: str
) -> None:
    async with FaultServer(json_handler(status, body, {"Content-Type": content_type})) as server:
        with pytest.raises(ResponseValidationError) as caught:
            await call(server.url)
    error = caught.value
    assert error.status_code == status
    assert error.body == body.decode()
    assert_clean(error)


@pytest.mark.parametrize("status", [402, 409, 422, 429, 500, 502, 503, 504])
async def test_undocumented_statuses_are_sdk_errors(status: int) -> None:
    handler = json_handler(
        status, b'{"detail": "nope"}', {"Content-Type": "application/json", "X-Trace": "t"}
    )
    async with FaultServer(handler) as server:
        with pytest.raises(SDKError) as caught:
            await call(server.url)
    error = caught.value
    assert type(error) is SDKError
    assert error.status_code == status
    assert error.body == '{"detail": "nope"}'
    assert error.headers["x-trace"] == "t"
    assert error.raw_response is not None and error.raw_response.url.startswith(server.url)
    assert_clean(error)


async def test_an_error_body_is_read_up_to_1_mib_only() -> None:
    sent = 0

    async def huge(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse(status=500)
        await response.prepare(request)
        chunk = b"x" * 65536
        try:
            for _ in range(64 * 16):  # up to 64 MiB
                await response.write(chunk)
                sent += len(chunk)
        except (ConnectionResetError, ConnectionError):
            pass
        return response

    async with FaultServer(huge) as server:
        with pytest.raises(SDKError) as caught:
            await call(server.url)
    assert caught.value.status_code == 500
    assert len(caught.value.body) == 1 << 20
    assert sent < 16 << 20  # the client hung up instead of reading it all


async def test_a_success_body_over_the_cap_is_refused() -> None:
    body = b'{"response": "' + b"y" * 3000 + b'"}'
    async with FaultServer(json_handler(200, body)) as server:
        async with AsyncEmissaryClient(
            api_key=SECRET, server_url=server.url, retry_config=NO_RETRY, max_response_bytes=1000
        ) as client:
            with pytest.raises(ResponseValidationError, match="max_response_bytes"):
                await client.deployments.completions.create(
                    project_id="p", deployment_id="d", request_body={"prompt": "p"}
                )


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_are_not_followed_so_the_key_stays_home(status: int) -> None:
    async with FaultServer(json_handler(200, b'{"response": "stolen"}')) as other:
        redirect = json_handler(status, b"", {"Location": other.url + "/collect"})
        async with FaultServer(redirect) as server:
            with pytest.raises(SDKError) as caught:
                await call(server.url)
    assert caught.value.status_code == status
    assert caught.value.headers["Location"] == other.url + "/collect"
    assert other.requests == []


async def test_the_key_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with FaultServer(json_handler(503, b"busy")) as server:
        async with AsyncEmissaryClient(api_key=SECRET, server_url=server.url) as client:
            fake_time(client)
            with pytest.raises(SDKError):
                await client.deployments.completions.create(
                    project_id="p", deployment_id="d", request_body={"prompt": "p"}
                )
    assert len(server.requests) > 1
    assert any(r.name == "emissary" for r in caplog.records)
    assert SECRET not in caplog.text
    assert all(SECRET not in str(r.args) for r in caplog.records)


async def test_the_key_is_not_in_reprs() -> None:
    client = AsyncEmissaryClient(api_key=SECRET, server_url="http://127.0.0.1:1")
    assert SECRET not in repr(client)
    assert SECRET not in repr(vars(client))


async def test_no_leaked_connections_after_faults() -> None:
    server = RawServer(_drop)
    with server:
        for _ in range(5):
            with pytest.raises(APIConnectionError):
                await call(server.url)
    assert server.connections == 5


# --- the key is reachable from no error ------------------------------------------------


def reachable(root: object) -> list[object]:
    """Every object reachable from `root` through references, but for code: frames,
    tracebacks, modules, classes and functions (a traceback's frames hold the client)."""
    import gc
    import types

    skip = (
        types.FrameType,
        types.TracebackType,
        types.ModuleType,
        type,
        types.FunctionType,
        types.BuiltinFunctionType,
        types.CodeType,
    )
    seen: set[int] = set()
    found: list[object] = []
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        found.append(obj)
        if not isinstance(obj, skip):
            stack.extend(gc.get_referents(obj))
    return found


def assert_key_unreachable(error: BaseException) -> None:
    objects = reachable(error)
    for obj in objects:
        if isinstance(obj, str | bytes):
            assert SECRET not in (obj if isinstance(obj, str) else obj.decode("latin-1")), obj
        elif isinstance(obj, BaseException):
            assert SECRET not in repr(obj), repr(obj)
    assert error.__cause__ is None or isinstance(error.__cause__, EmissaryError)
    assert error.__context__ is None or isinstance(error.__context__, EmissaryError)


def _malformed_status(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 OK-ish\r\nContent-Length: 0\r\n\r\n")
    conn.close()


def _oversized_header(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 20_000 + b"\r\nContent-Length: 0\r\n\r\n")
    conn.close()


def _bad_chunking(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    conn.close()


def _hang(conn: socket.socket) -> None:
    import time

    time.sleep(2)


@pytest.mark.parametrize(
    "behaviour",
    [_malformed_status, _oversized_header, _bad_chunking, _drop, _truncate, _garbage, _hang],
    ids=["status-line", "header-size", "chunking", "drop", "truncate", "garbage", "timeout"],
)
@pytest.mark.parametrize("key", ["string", "callable"])
async def test_no_object_reachable_from_an_error_holds_the_key(behaviour: object, key: str) -> None:
    server = await serve_async(behaviour)  # type: ignore[arg-type]
    try:
        async with AsyncEmissaryClient(
            api_key=SECRET if key == "string" else (lambda: SECRET),
            server_url=server.url,
            timeout_ms=300,
        ) as client:
            fake_time(client)
            with pytest.raises(APIConnectionError) as caught:
                await client.deployments.completions.create(
                    project_id="p", deployment_id="d", request_body={"prompt": "p"}
                )
    finally:
        await stop_async(server)
    error = caught.value
    assert_key_unreachable(error)
    # Tracebacks that show every frame's locals (rich, Sentry, capture_locals) stay clean.
    shown = "".join(
        traceback.TracebackException.from_exception(error, capture_locals=True).format()
    )
    assert SECRET not in shown


async def test_errors_with_a_response_hold_no_key_either() -> None:
    for status in (401, 404, 500, 503):
        async with FaultServer(json_handler(status, b'{"status": 1, "error": "e"}')) as server:
            async with AsyncEmissaryClient(
                api_key=lambda: SECRET, server_url=server.url, retry_config=NO_RETRY
            ) as client:
                with pytest.raises(SDKError) as caught:
                    await client.deployments.completions.create(
                        project_id="p", deployment_id="d", request_body={"prompt": "p"}
                    )
        assert_key_unreachable(caught.value)
        shown = "".join(
            traceback.TracebackException.from_exception(caught.value, capture_locals=True).format()
        )
        assert SECRET not in shown
