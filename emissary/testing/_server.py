"""The emulator's HTTP side: an aiohttp.web server on loopback that routes each request to
its operation, records it, injects faults, meters inference (capacity and latency), and
holds up against any client. What each operation does is `_platform`'s job."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import secrets
import ssl
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict

from .._operations import BY_NAME, MULTIPART, OPERATIONS
from ..models import BaseModelSummary
from ._answers import ApiError, error_response, json_response, result_response
from ._catalog import DEFAULT_BASE_MODELS
from ._checks import check_seconds
from ._clock import Clock, ScaledClock
from ._faults import Fault, FaultPlan
from ._platform import Call, Conflicts, Platform
from ._routes import Match, Router
from ._scripts import Scripts
from ._uploads import DEFAULT_MAX_UPLOAD_BYTES, Upload, receive_upload

DEFAULT_API_KEY = "emissary-test-key"
DEFAULT_DEPLOYMENTS = ("demo-project/demo-deployment",)
DEFAULT_HOST = "127.0.0.1"
REQUEST_ID_HEADER = "X-Request-Id"

DEFAULT_IDLE_TIMEOUT_S = 75.0
"""How long a connection may wait for its next request before the emulator closes it."""
DEFAULT_READ_TIMEOUT_S = 60.0
"""How long a request's body may take to arrive before the emulator answers 408."""

_BAD_INPUT = (HttpProcessingError, web.RequestPayloadError)  # what aiohttp raises on bad bytes
_ROUTER = Router(OPERATIONS)
logger = logging.getLogger("emissary.testing")
"""The emulator's log: requests it could not parse (INFO, one line each) and its own bugs."""


class RecordedRequest(msgspec.Struct, frozen=True):
    """One request the emulator received, for assertions in tests."""

    method: str
    raw_path: str
    headers: CIMultiDict[str]
    body: bytes
    """The body as received; empty for an upload (``datasets.create``: see
    ``Emulator.uploads``), which is never held in memory."""
    peer: str
    """The client's address as ``host:port``: one value per connection (keep-alive shows)."""
    fault: str | None = None
    """The kind of injected fault this request met (``"drop"``, ``"commit_then_drop"``, ...:
    see `FaultPlan`), if any."""
    request_id: str = ""
    """The ``X-Request-Id`` the emulator sent with its answer."""
    received_at: float = 0.0
    """When it arrived, on the `time.monotonic` clock."""
    operation: str | None = None
    """The operation its method and path name (``"deployments.get"``), as in
    `emissary._operations`; None for a path or method the API does not have."""
    path_params: dict[str, str] = {}
    """Its path's parameters, percent-decoded (``{"project_id": ..., "deployment_id":
    ...}``); empty for an unknown route."""


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
    """A local Emissary API, the whole platform: ``with Emulator() as emu:`` (a server
    thread) or ``async with Emulator() as emu:`` (on the running loop); then use
    ``emu.url`` and ``emu.api_key``.

    **Routes.** Every operation of the spec (`emissary._operations`): base models,
    projects, datasets (multipart uploads), training jobs with their checkpoints,
    deployments, and the four kinds of inference. Creates answer 201, deletes and cancels
    204 with no body, lists a bare JSON array; ids are ``proj-``, ``ds-``, ``tr-`` and
    ``dp-`` plus hex. Errors are the spec's: 401 to a wrong or missing ``X-API-Key`` on
    every route; 404 with a ``code`` for an unknown route (``route_not_found``), project,
    dataset, training job, deployment or base model (``project_not_found``, ...); 405 with
    ``Allow`` for a known path with another method; 400 with a message for an invalid body
    or one naming what cannot be used (an unknown base model, a dataset not processed yet,
    a training job that did not succeed, a checkpoint it did not save, ``serverless`` on a
    base model without it, ...); 413 for an upload larger than `max_upload_bytes`.

    **Inference** (completions, chat, embeddings, classification) is served by any
    ``Deployed`` deployment, whatever its base model, with deterministic toy answers (see
    `generate_completion`, `embed`, `classify`); any other status is a 404 coded
    ``deployment_not_deployed``. `deployments` (``"PROJECT/DEPLOYMENT"`` strings) are made
    up front, ``Deployed`` from the start: by default ``demo-project/demo-deployment``.

    **Time.** Every resource's state (status, progress, checkpoints, ``is_uploaded``) is
    computed from `clock` when a request asks for it, following the script it was created
    with (`scripts`: ``emu.scripts.training = TrainingScript(...)``). By default the clock
    is real time; ``time_scale=0.001`` runs it 1000 times faster (for an emulator in
    another process); ``clock=VirtualClock()`` makes it move only when told, and
    ``instant_retries(client, clock=clock)`` makes a client sleep on the same clock.
    Where the spec is silent (cancelling what ended, deleting what runs, deleting a
    project that holds resources) `conflicts` decides: ``"allow"`` (default) or
    ``"refuse"`` (a 400 naming the reason).

    **Base models.** `base_models` is the catalog (default: `DEFAULT_BASE_MODELS`, two
    models of each type, one of them serverless); ``GET /v1/models/{name}`` of another
    name is a 404.

    **Records.** Every request is kept in `requests` (with its operation and the request
    id it was given; `polls` picks those of one operation and resource), every dataset
    file in `uploads` (name, type, size, SHA-256); every answer carries a unique
    ``X-Request-Id``; `faults` injects failures into the next requests (for all, or for
    one operation: ``commit_then_drop`` carries a create out and drops its answer) and
    into the next resources created (``not_found_for``, ``unknown_status``).

    With `ssl_context` (a server context holding a certificate, e.g. from ``trustme``) it
    serves HTTPS, to test a private CA, mutual TLS or a proxy's CONNECT tunnel.

    A deployment's capacity, for batches: with `capacity`, at most that many inference
    requests are served at once and any more are answered 429 with ``retry-after-ms``
    (when the first of those in progress will be done), recorded with
    ``fault="over_capacity"``; `latency_ms` is how long each inference answer takes.
    `max_in_flight` is the most inference requests it has served at once. Other
    operations (creates, gets, polls) are served at once, whatever the capacity.

    As a server it holds up against any client: bytes that are not HTTP (or TLS sent to
    its plain-HTTP port) get a 400 and one INFO line on the ``emissary.testing`` logger,
    never a traceback on stderr; a body it cannot read (a bad ``Content-Encoding``) gets a
    400, one slower than `read_timeout_s` a 408 (an upload: one that stops arriving for
    `read_timeout_s`); a connection is closed once it has waited `idle_timeout_s` for its
    next request (idle, or with a request head that never ends). `requests` keeps every
    request until you clear it (``emu.requests.clear()``), and `uploads` every upload, so
    a long-running emulator grows by one record per request and one per resource; nothing
    else does.
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
        base_models: Iterable[BaseModelSummary] = DEFAULT_BASE_MODELS,
        clock: Clock | None = None,
        time_scale: float = 1.0,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        conflicts: Conflicts = "allow",
    ) -> None:
        if capacity is not None and (not isinstance(capacity, int) or capacity < 1):
            raise ValueError(f"capacity must be a positive integer or None, got {capacity!r}")
        if not isinstance(latency_ms, int | float) or not 0 <= latency_ms < 3_600_000:
            raise ValueError(
                f"latency_ms must be a number of milliseconds >= 0, got {latency_ms!r}"
            )
        if isinstance(max_upload_bytes, bool) or not isinstance(max_upload_bytes, int):
            raise ValueError(f"max_upload_bytes must be an integer, got {max_upload_bytes!r}")
        if max_upload_bytes < 0:
            raise ValueError(f"max_upload_bytes must be >= 0, got {max_upload_bytes!r}")
        if clock is not None and time_scale != 1.0:
            raise ValueError("give clock= or time_scale=, not both")
        self.api_key = api_key
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.capacity = capacity
        self.latency_ms = latency_ms
        self.idle_timeout_s = check_seconds("idle_timeout_s", idle_timeout_s, strict=True)
        """A connection that has waited this long for its next request is closed (75 s, as
        nginx and aiohttp's classic default): from its opening (over TLS, the end of its
        handshake, which asyncio bounds to 60 s) or its last answer to the end of its next
        request's head."""
        self.read_timeout_s = check_seconds("read_timeout_s", read_timeout_s, strict=True)
        """A request whose body has not all arrived this long after its head is answered
        408 and its connection closed (an upload: when no data came for this long)."""
        self.max_upload_bytes = max_upload_bytes
        """The largest dataset file taken (100 MiB by default); a larger one gets 413."""
        self.clock: Clock = ScaledClock(time_scale) if clock is None else clock
        """The clock every resource's state is computed from (``clock.now()``)."""
        self.max_in_flight = 0
        """The most inference requests served at once so far."""
        # When each inference request in progress (by request id) should be done, for
        # 429s' retry-after-ms: an entry lives exactly as long as its request.
        self._busy_until: dict[str, float] = {}
        self._platform = Platform(
            clock=self.clock,
            base_models=base_models,
            conflicts=conflicts,
            deployments=_parse_deployments(deployments),
        )
        self.requests: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._served = 0
        self._id_prefix = secrets.token_hex(4)  # unique across emulators and runs

    @property
    def scripts(self) -> Scripts:
        """The lifecycle scripts of what is created next: ``emu.scripts.training =
        TrainingScript(...)`` (also ``.deployment``, ``.dataset``)."""
        return self._platform.scripts

    @property
    def faults(self) -> FaultPlan:
        """Faults to inject into the next requests (``emu.faults.fail(2, status=503)``)
        and the next resources created (``emu.faults.not_found_for(10)``): see
        `FaultPlan`."""
        return self._platform.faults

    @property
    def conflicts(self) -> Conflicts:
        """``"allow"`` or ``"refuse"``: what to do where the spec is silent (see the class
        docstring); may be changed at any time."""
        return self._platform.conflicts

    @conflicts.setter
    def conflicts(self, value: Conflicts) -> None:
        self._platform.conflicts = value

    @property
    def base_models(self) -> list[BaseModelSummary]:
        """The base model catalog, in order."""
        return list(self._platform.base_models.values())

    @property
    def uploads(self) -> list[Upload]:
        """Every dataset file received (that made a dataset), in order: `Upload` records
        (``filename``, ``content_type``, ``name``, ``size``, ``sha256``, the ids)."""
        return self._platform.uploads

    @property
    def projects(self) -> dict[str, set[str]]:
        """Each project's deployment ids, now (a snapshot)."""
        return {pid: set(p.deployments) for pid, p in self._platform.projects.items()}

    def polls(self, operation: str, id: str) -> list[RecordedRequest]:
        """The recorded requests of `operation` (``"training_jobs.get"``) on the resource
        `id` (the last parameter of its path), in order: to count a client's polls."""
        row = BY_NAME.get(operation)
        if row is None:
            raise ValueError(f"unknown operation {operation!r}; one of {sorted(BY_NAME)}")
        if not row.parameters:
            raise ValueError(f"{operation} names no resource in its path")
        last = row.parameters[-1]
        return [
            request
            for request in list(self.requests)
            if request.operation == operation and request.path_params.get(last) == id
        ]

    @property
    def in_flight(self) -> int:
        """Inference requests being served now."""
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
        match: Match | ApiError
        try:
            match = _ROUTER.match(request.method, request.raw_path)
        except ApiError as exc:
            match = exc
        operation = match.operation if isinstance(match, Match) else None
        try:  # an upload is streamed later, by its handler
            streamed = operation is not None and operation.body == MULTIPART
            body = b"" if streamed else await self._read_body(request)
        except ApiError as refusal:
            return await self._refuse(request, match, refusal)
        metered = operation is not None and operation.kind == "inference"
        loop = asyncio.get_running_loop()
        over = metered and self.capacity is not None and self.in_flight >= self.capacity
        fault = None if over else self.faults.next(None if operation is None else operation.name)
        request_id = self._record(
            request, match, body, "over_capacity" if over else fault.kind if fault else None
        )
        if over:
            # The first slot to free: the request due first, even one overdue (its answer
            # is late because the process is busy; it frees its slot any moment now).
            wait_ms = (min(self._busy_until.values(), default=0.0) - loop.time()) * 1000
            response: web.StreamResponse = error_response(429, "the deployment is at capacity")
            response.headers["retry-after-ms"] = str(max(1, math.ceil(wait_ms)))
            response.headers[REQUEST_ID_HEADER] = request_id
            return response
        if metered:
            self._busy_until[request_id] = loop.time() + self.latency_ms / 1000
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if metered and self.latency_ms:
                await asyncio.sleep(self.latency_ms / 1000)
            answer = functools.partial(self._answer, request, match, body)
            if fault is None:
                response = await answer()
            else:
                response = await _inject(fault, request, answer, request_id)
        finally:
            self._busy_until.pop(request_id, None)
        response.headers.setdefault(REQUEST_ID_HEADER, request_id)
        if response.keep_alive is False and not response.prepared:  # a body left unread
            return await _send_and_close(request, response)
        return response

    def _record(
        self, request: web.Request, match: Match | ApiError, body: bytes, fault: str | None
    ) -> str:
        """Keep a request in `requests`; its request id."""
        peername = request.transport.get_extra_info("peername") if request.transport else None
        peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        self._served += 1
        request_id = f"req-{self._id_prefix}-{self._served:06d}"
        operation, params = (
            (match.operation.name, dict(match.params)) if isinstance(match, Match) else (None, {})
        )
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
                operation,
                params,
            )
        )
        return request_id

    async def _read_body(self, request: web.Request) -> bytes:
        """The request's body, or `ApiError`: 408 if it takes longer than
        `read_timeout_s`, 413 past aiohttp's limit (4 MiB), 400 if it cannot be decoded."""
        try:
            return await asyncio.wait_for(request.read(), self.read_timeout_s)
        except asyncio.TimeoutError:
            message = f"the request body did not arrive in {self.read_timeout_s:g} s"
            raise ApiError(408, message) from None
        except web.HTTPRequestEntityTooLarge as exc:
            raise ApiError(413, exc.text or "request body too large") from None
        except _BAD_INPUT as exc:  # e.g. Content-Encoding: gzip on a body that is not gzip
            raise ApiError(400, f"unreadable request body: {_one_line(exc)}") from None

    async def _refuse(
        self, request: web.Request, match: Match | ApiError, refusal: ApiError
    ) -> web.StreamResponse:
        """The answer to a request whose body could not be read; its connection closes."""
        response = refusal.response()
        response.headers[REQUEST_ID_HEADER] = self._record(request, match, b"", None)
        return await _send_and_close(request, response)

    async def _answer(
        self, request: web.Request, match: Match | ApiError, body: bytes
    ) -> web.Response:
        """The contract's answer to a request: a route error, a 401, or what its
        operation's handler says (with the operation's success status)."""
        if isinstance(match, ApiError):
            return match.response()
        if request.headers.get("X-API-Key") != self.api_key:
            return error_response(401, "missing or invalid API key (X-API-Key header)")
        call = Call(
            match.operation,
            match.params,
            body,
            functools.partial(self._receive_upload, request),
        )
        try:
            result = await self._platform.handle(call)
        except ApiError as exc:
            return exc.response()
        return result_response(match.operation.status, result)

    def _receive_upload(
        self, request: web.Request, project_id: str, dataset_id: str
    ) -> Awaitable[Upload]:
        return receive_upload(
            request,
            project_id=project_id,
            dataset_id=dataset_id,
            max_bytes=self.max_upload_bytes,
            stall_s=self.read_timeout_s,
        )


async def _inject(
    fault: Fault,
    request: web.Request,
    answer: Callable[[], Awaitable[web.Response]],
    request_id: str,
) -> web.StreamResponse:
    """Answer `request` with `fault` (`answer` gives the normal answer, when one is
    sent)."""
    kind = fault.kind
    if kind == "fail":
        payload: dict[str, Any] = {"status": fault.status, "error": "injected fault"}
        if fault.status == 404:
            payload["code"] = "injected"
        response = (
            json_response(fault.status, payload)
            if fault.body is None
            else web.Response(status=fault.status, body=fault.body)
        )
        if fault.retry_after is not None:
            response.headers["Retry-After"] = fault.retry_after
        if fault.retry_after_ms is not None:
            response.headers["retry-after-ms"] = fault.retry_after_ms
        return response
    if kind == "commit_then_drop":
        await answer()  # carried out (an upload read to its end), and the answer never sent
    if kind in ("drop", "commit_then_drop"):
        _close(request)
        return web.Response()
    if kind == "hang":
        await asyncio.Event().wait()  # cancelled when the client leaves or the server stops
    if kind == "delay":
        await asyncio.sleep(fault.seconds)
        return await answer()
    full = await answer()
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


async def _send_and_close(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Send `response` and close the connection at once: aiohttp would otherwise first
    drain what is left of the request's body, for up to 10 s, even after
    ``Connection: close``."""
    response.force_close()  # says so: Connection: close
    await response.prepare(request)
    await response.write_eof()
    _close(request)
    return response


def _close(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()
