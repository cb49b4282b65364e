"""The emulator: an aiohttp.web server that speaks the completions contract on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import secrets
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict

from ..models import GetCompletionsFromDeploymentRequestBody as RequestBody
from ._faults import Fault, FaultPlan
from ._generator import MAX_NEW_TOKENS_LIMIT, generate_completion

DEFAULT_API_KEY = "emissary-test-key"
DEFAULT_DEPLOYMENTS = ("demo-project/demo-deployment",)
DEFAULT_HOST = "127.0.0.1"
REQUEST_ID_HEADER = "X-Request-Id"

DEFAULT_IDLE_TIMEOUT_S = 75.0
"""How long a connection may wait for its next request before the emulator closes it."""
DEFAULT_READ_TIMEOUT_S = 60.0
"""How long a request's body may take to arrive before the emulator answers 408."""

_BODY_DECODER = msgspec.json.Decoder(RequestBody, strict=True)
_ENCODER = msgspec.json.Encoder()
_BAD_INPUT = (HttpProcessingError, web.RequestPayloadError)  # what aiohttp raises on bad bytes
logger = logging.getLogger("emissary.testing")
"""The emulator's log: requests it could not parse (INFO, one line each) and its own bugs."""


class RecordedRequest(msgspec.Struct, frozen=True):
    """One request the emulator received, for assertions in tests."""

    method: str
    raw_path: str
    headers: CIMultiDict[str]
    body: bytes
    peer: str
    """The client's address as ``host:port``: one value per connection (keep-alive shows)."""
    fault: str | None = None
    """The injected fault this request met (see `FaultPlan`), if any."""
    request_id: str = ""
    """The ``X-Request-Id`` the emulator sent with its answer."""
    received_at: float = 0.0
    """When it arrived, on the `time.monotonic` clock."""


def _parse_deployments(deployments: Iterable[str | tuple[str, str]]) -> dict[str, set[str]]:
    projects: dict[str, set[str]] = {}
    for item in deployments:
        if isinstance(item, str):
            project, sep, deployment = item.partition("/")
            if not sep or not project or not deployment:
                raise ValueError(f"a deployment is given as 'PROJECT/DEPLOYMENT', got {item!r}")
        else:
            project, deployment = item
        projects.setdefault(project, set()).add(deployment)
    return projects


class Emulator:
    """A local Emissary API: ``with Emulator() as emu:`` (a server thread) or
    ``async with Emulator() as emu:`` (on the running loop); then use ``emu.url`` and
    ``emu.api_key``.

    It answers 401 to a wrong or missing ``X-API-Key``, 404 (with a ``code``) to an unknown
    project, deployment or route, 400 to an invalid body, and otherwise 200 with a
    deterministic toy completion of exactly ``max_new_tokens`` words (16 when unset).
    Every answer carries a unique ``X-Request-Id``; every request is kept in `requests`
    (with the id it was given); `faults` injects failures into the next ones.

    With `ssl_context` (a server context holding a certificate, e.g. from ``trustme``) it
    serves HTTPS, to test a private CA, mutual TLS or a proxy's CONNECT tunnel.

    A deployment's capacity, for batches: with `capacity`, at most that many requests are
    served at once and any more are answered 429 with ``retry-after-ms`` (when the first
    of those in progress will be done), recorded with ``fault="over_capacity"``;
    `latency_ms` is how long each answer takes. `max_in_flight` is the most requests it
    has served at once.

    As a server it holds up against any client: bytes that are not HTTP (or TLS sent to
    its plain-HTTP port) get a 400 and one INFO line on the ``emissary.testing`` logger,
    never a traceback on stderr; a body it cannot read (a bad ``Content-Encoding``) gets a
    400, one slower than `read_timeout_s` a 408; a connection is closed once it has waited
    `idle_timeout_s` for its next request (idle, or with a request head that never ends).
    `requests` keeps every request until you clear it (``emu.requests.clear()``), so a
    long-running emulator grows by one record per request; nothing else does.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        deployments: Iterable[str | tuple[str, str]] = DEFAULT_DEPLOYMENTS,
        host: str = DEFAULT_HOST,
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        capacity: int | None = None,
        latency_ms: float = 0.0,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
    ) -> None:
        if capacity is not None and (not isinstance(capacity, int) or capacity < 1):
            raise ValueError(f"capacity must be a positive integer or None, got {capacity!r}")
        if not isinstance(latency_ms, int | float) or not 0 <= latency_ms < 3_600_000:
            raise ValueError(
                f"latency_ms must be a number of milliseconds >= 0, got {latency_ms!r}"
            )
        self.api_key = api_key
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.capacity = capacity
        self.latency_ms = latency_ms
        self.idle_timeout_s = _positive_seconds("idle_timeout_s", idle_timeout_s)
        """A connection that has waited this long for its next request is closed (75 s, as
        nginx and aiohttp's classic default): from its opening (over TLS, the end of its
        handshake, which asyncio bounds to 60 s) or its last answer to the end of its next
        request's head."""
        self.read_timeout_s = _positive_seconds("read_timeout_s", read_timeout_s)
        """A request whose body has not all arrived this long after its head is answered
        408 and its connection closed."""
        self.max_in_flight = 0
        """The most requests served at once so far."""
        # When each request in progress (by request id) should be done, for 429s'
        # retry-after-ms: an entry lives exactly as long as its request.
        self._busy_until: dict[str, float] = {}
        self.projects = _parse_deployments(deployments)
        self.requests: list[RecordedRequest] = []
        self.faults = FaultPlan()
        """Faults to inject into the next requests: ``emu.faults.fail(2, status=503)``."""
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._served = 0
        self._id_prefix = secrets.token_hex(4)  # unique across emulators and runs

    @property
    def in_flight(self) -> int:
        """Requests being served now."""
        return len(self._busy_until)

    @property
    def url(self) -> str:
        """The base URL to pass as ``server_url``."""
        scheme = "http" if self.ssl_context is None else "https"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def application(self) -> web.Application:
        """The aiohttp application (to mount it in a server of your own)."""
        app = web.Application(client_max_size=4 << 20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start(self) -> None:
        """Start serving on the running event loop."""
        runner = web.AppRunner(
            self.application(),
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,  # a hung handler ends when its client leaves
            shutdown_timeout=1.0,
            keepalive_timeout=self.idle_timeout_s,
            logger=_ServerLog(logger),
        )
        await runner.setup()
        site = web.TCPSite(
            runner, self.host, self.port, reuse_address=True, ssl_context=self.ssl_context
        )
        await site.start()
        if self.port == 0:
            self.port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        """Stop serving and close open connections."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        server = runner.server
        transports = [h.transport for h in server.connections if h.transport] if server else []
        await runner.cleanup()
        # A TLS connection still waiting for its peer's close_notify would outlive a loop
        # closed now (and its socket leak): end those at once.
        for transport in transports:
            transport.abort()
        await asyncio.sleep(0)  # the aborted transports close their sockets on this turn

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __enter__(self) -> Emulator:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.stop())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="emissary-emulator", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
        self._loop = self._thread = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """Every request, whatever its route: record it, then answer, fail or refuse it."""
        try:
            body = await asyncio.wait_for(request.read(), self.read_timeout_s)
        except asyncio.TimeoutError:
            message = f"the request body did not arrive in {self.read_timeout_s:g} s"
            return self._refuse(request, 408, message)
        except _BAD_INPUT as exc:  # e.g. Content-Encoding: gzip on a body that is not gzip
            return self._refuse(request, 400, f"unreadable request body: {_one_line(exc)}")
        loop = asyncio.get_running_loop()
        over = self.capacity is not None and self.in_flight >= self.capacity
        fault = None if over else self.faults.next()
        request_id = self._record(
            request, body, "over_capacity" if over else fault.kind if fault else None
        )
        if over:
            # The first slot to free: the request due first, even one overdue (its answer
            # is late because the process is busy; it frees its slot any moment now).
            wait_ms = (min(self._busy_until.values(), default=0.0) - loop.time()) * 1000
            response: web.StreamResponse = _error(429, "the deployment is at capacity")
            response.headers["retry-after-ms"] = str(max(1, math.ceil(wait_ms)))
            response.headers[REQUEST_ID_HEADER] = request_id
            return response
        self._busy_until[request_id] = loop.time() + self.latency_ms / 1000
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency_ms:
                await asyncio.sleep(self.latency_ms / 1000)
            if fault is None:
                response = self._answer(request, body)
            else:
                response = await _inject(
                    fault, request, lambda: self._answer(request, body), request_id
                )
        finally:
            del self._busy_until[request_id]
        response.headers.setdefault(REQUEST_ID_HEADER, request_id)
        return response

    def _record(self, request: web.Request, body: bytes, fault: str | None) -> str:
        """Keep a request in `requests`; its request id."""
        peername = request.transport.get_extra_info("peername") if request.transport else None
        peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        self._served += 1
        request_id = f"req-{self._id_prefix}-{self._served:06d}"
        self.requests.append(
            RecordedRequest(
                request.method,
                request.raw_path,
                CIMultiDict(request.headers),
                body,
                peer,
                fault,
                request_id,
                time.monotonic(),
            )
        )
        return request_id

    def _refuse(self, request: web.Request, status: int, message: str) -> web.Response:
        """The answer to a request whose body could not be read; its connection closes."""
        response = _error(status, message)
        response.headers[REQUEST_ID_HEADER] = self._record(request, b"", None)
        response.force_close()
        return response

    def _answer(self, request: web.Request, body: bytes) -> web.Response:
        """The contract's answer to a request."""
        path = request.raw_path.partition("?")[0]
        parts = path.split("/")
        if (
            len(parts) != 7
            or parts[:3] != ["", "v1", "projects"]
            or parts[4] != "deployments"
            or parts[6] != "completions"
        ):
            return _error(404, f"no route for {path}", code="route_not_found")
        if request.method != "POST":
            response = _error(405, f"{request.method} is not allowed here; use POST")
            response.headers["Allow"] = "POST"
            return response
        if request.headers.get("X-API-Key") != self.api_key:
            return _error(401, "missing or invalid API key (X-API-Key header)")
        project_id, deployment_id = unquote(parts[3]), unquote(parts[5])
        deployments = self.projects.get(project_id)
        if deployments is None:
            return _error(404, f"project {project_id!r} not found", code="project_not_found")
        if deployment_id not in deployments:
            return _error(
                404,
                f"deployment {deployment_id!r} not found in project {project_id!r}",
                code="deployment_not_found",
            )
        try:
            completion_request = _BODY_DECODER.decode(body)
        except (msgspec.DecodeError, RecursionError) as exc:
            return _error(400, f"invalid request body: {exc}")
        if (completion_request.max_new_tokens or 0) > MAX_NEW_TOKENS_LIMIT:
            return _error(
                400, f"max_new_tokens must be at most {MAX_NEW_TOKENS_LIMIT} on the emulator"
            )
        text = generate_completion(project_id, deployment_id, completion_request)
        completion_id = "cmpl-" + hashlib.sha256(text.encode()).hexdigest()[:16]
        return _json(200, {"id": completion_id, "response": text})


async def _inject(
    fault: Fault, request: web.Request, answer: Callable[[], web.Response], request_id: str
) -> web.StreamResponse:
    kind = fault.kind
    if kind == "fail":
        payload: dict[str, Any] = {"status": fault.status, "error": "injected fault"}
        if fault.status == 404:
            payload["code"] = "injected"
        response = (
            _json(fault.status, payload)
            if fault.body is None
            else web.Response(status=fault.status, body=fault.body)
        )
        if fault.retry_after is not None:
            response.headers["Retry-After"] = fault.retry_after
        if fault.retry_after_ms is not None:
            response.headers["retry-after-ms"] = fault.retry_after_ms
        return response
    if kind == "drop":
        _close(request)
        return web.Response()
    if kind == "hang":
        await asyncio.Event().wait()  # cancelled when the client leaves or the server stops
    if kind == "delay":
        await asyncio.sleep(fault.seconds)
        return answer()
    full = answer()
    payload_bytes = full.body if isinstance(full.body, bytes) else b""
    stream = web.StreamResponse(status=full.status, headers=full.headers)
    stream.headers[REQUEST_ID_HEADER] = request_id  # sent before the body starts
    stream.content_length = len(payload_bytes)
    await stream.prepare(request)
    if kind == "truncate":
        await stream.write(payload_bytes[: len(payload_bytes) // 2])
        _close(request)
        return stream
    for index in range(len(payload_bytes)):  # drip
        await stream.write(payload_bytes[index : index + 1])
        await asyncio.sleep(fault.seconds)
    await stream.write_eof()
    return stream


if TYPE_CHECKING:  # subscriptable at run time from Python 3.11 only
    _LoggerAdapter = logging.LoggerAdapter[logging.Logger]
else:
    _LoggerAdapter = logging.LoggerAdapter


class _ServerLog(_LoggerAdapter):
    """aiohttp's server log, for the emulator: a request aiohttp could not parse (garbage,
    a bad header line, TLS sent to the plain-HTTP port) is one INFO line with no traceback,
    so no client can flood stderr (or, when nobody reads it, fill the pipe and stall the
    server). Anything else, a bug of the emulator, keeps its traceback."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        """Log as `logging.LoggerAdapter.log`, bad input on one line at INFO at most."""
        error = kwargs.get("exc_info")
        if error is True:
            error = sys.exc_info()[1]
        elif isinstance(error, tuple):
            error = error[1]
        if isinstance(error, _BAD_INPUT):
            level = min(level, logging.INFO)
            msg, args = f"{msg}: %s", (*args, _one_line(error))
            kwargs["exc_info"] = None
        super().log(level, msg, *args, **kwargs)


def _one_line(error: BaseException) -> str:
    """What was wrong with a request's bytes, on one line (aiohttp's text spans several)."""
    if isinstance(error, web.RequestPayloadError) and error.__cause__ is not None:
        error = error.__cause__  # the parser's own error, wrapped for the handler
    text = error.message if isinstance(error, HttpProcessingError) else str(error)
    return " ".join(str(text).split())


def _positive_seconds(name: str, value: float) -> float:
    """`value` as a float, or ValueError naming the setting if it is not seconds > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}")
    return float(value)


def _close(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()


def _json(status: int, payload: Mapping[str, Any]) -> web.Response:
    return web.Response(
        status=status, body=_ENCODER.encode(payload), content_type="application/json"
    )


def _error(status: int, message: str, *, code: str | None = None) -> web.Response:
    payload: dict[str, Any] = {"status": status, "error": message}
    if code is not None:
        payload["code"] = code
    return _json(status, payload)
