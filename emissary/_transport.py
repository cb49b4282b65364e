"""The one place that touches aiohttp: the session, timeouts, size caps and error mapping.

`Transport.send` performs one HTTP attempt and returns ``(status, headers, body)``; every
aiohttp, asyncio or OS failure leaves it as an `APIConnectionError` (or `APITimeoutError`),
built from the failure's facts, never chained to aiohttp's exception (whose request info
holds the API key).

Sessions: one per event loop, made lazily on the loop that first uses the client and
reused there (keep-alive), so one client serves several loops at once (threads each
running ``asyncio.run``) or one after another. Each session is closed on its own loop: by
`aclose`, when that loop shuts down (a guard registered as an async generator, which
``asyncio.run`` and ``asyncio.Runner`` close before the loop ends), or when a client that
was never closed is collected (a finalizer asks the loop to close the guard). In a forked
child the parent's sessions are left untouched and new ones made.

Size caps bound the *decoded* body: a compressed body is read through aiohttp's streaming
decoder (which inflates at most a chunk ahead of the reader since aiohttp 3.13.3), never
whole, so a small gzip bomb cannot inflate into memory.

Redirects are never followed, so the API key and body cannot be forwarded to another host.
Plain-HTTP connections read in 64 KiB chunks rather than asyncio's 256 KiB (`_Connector`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import ssl
import threading
import weakref
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING

import aiohttp
import yarl

from ._config import redact_url
from ._network import Proxy, describe_certificate_error
from ._payload import UploadPayload
from ._protocol import Response
from ._upload import Multipart, UploadWatch
from .errors import (
    APIConnectionError,
    APIHostNotFoundError,
    APIProxyError,
    APITimeoutError,
    APITLSError,
    ClientClosedError,
    ConfigurationError,
    EmissaryError,
)

if TYPE_CHECKING:
    from aiohttp.client_proto import ResponseHandler
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.tracing import Trace


_NO_TOTAL = aiohttp.ClientTimeout(total=None, ceil_threshold=math.inf)
"""An upload with a watchdog: no total limit (the watchdog bounds it)."""
ERROR_BODY_LIMIT = 1 << 20
"""At most this much of an error response body is read (1 MiB); the rest is discarded."""
DEFAULT_MAX_RESPONSE_BYTES = 16 << 20
"""A success body larger than this (16 MiB) is refused while reading."""
DEFAULT_MAX_CONNECTIONS = 100
CLOSE_ELSEWHERE_S = 5.0
"""How long `Transport.aclose` waits for sessions on other threads' loops to close."""
_INHERITED: list[object] = []
"""Sessions inherited through fork(), kept untouched for the life of the child process."""
HEAP_READ_SIZE = 64 * 1024
"""Socket reads of plain-HTTP connections are at most this big (see `_Connector`)."""
_ASYNCIO_READ_SIZE = 256 * 1024
_forks = 0
"""Bumped in every forked child: tells a new process apart without a system call per request
(`os.getpid` is one on current glibc)."""


def _count_fork() -> None:
    global _forks
    _forks += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_count_fork)


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connector, with plain-HTTP connections reading at most 64 KiB at a time.

    asyncio's plain-TCP transport reads with ``recv(256 KiB)``, a buffer size that glibc
    serves with mmap: every response then costs an mmap, an mremap to shrink the buffer and
    an munmap, three system calls and a page fault. A 64 KiB buffer comes from the heap.
    Only a transport still at asyncio's default is changed: TLS transports, which read into
    a reused buffer, and others such as uvloop's have no such attribute.
    """

    async def _create_connection(
        self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> ResponseHandler:
        protocol = await super()._create_connection(req, traces, timeout)
        transport = protocol.transport
        if getattr(transport, "max_size", None) == _ASYNCIO_READ_SIZE:
            transport.max_size = HEAP_READ_SIZE  # type: ignore[union-attr]
        return protocol


class _LoopSession:
    """A session and the guard that closes it when its event loop shuts down."""

    __slots__ = ("forks", "guard", "loop", "session")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        session: aiohttp.ClientSession,
        guard: AsyncGenerator[None, None] | None,
    ) -> None:
        self.loop = loop
        self.session = session
        self.guard = guard
        self.forks = _forks
        """The process it belongs to (`_forks` when it was made)."""


async def _close_when_loop_ends(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    """Suspends at its ``yield`` for the session's life; closing it closes the session.

    An async generator first iterated on a loop is closed by that loop's
    ``shutdown_asyncgens()`` (``asyncio.run`` and ``asyncio.Runner`` call it before closing
    the loop) and, if dropped while suspended, by the loop's finalizer hook: either way the
    ``finally`` runs on the session's own loop, so its connections close cleanly and quietly.
    """
    try:
        yield
    finally:
        await session.close()


async def _close_entry(entry: _LoopSession) -> None:
    """Close a session on its own loop (through its guard, if it has one)."""
    if entry.guard is not None:
        await entry.guard.aclose()
    else:
        await entry.session.close()


def _close_abandoned(sessions: dict[asyncio.AbstractEventLoop, _LoopSession]) -> None:
    """Close the sessions of a transport that was dropped without `aclose`, each on its
    own loop if that loop still runs (else they closed with their loop, or cannot be).
    In a forked child, sessions made before the fork are the parent's: left alone."""
    for entry in list(sessions.values()):
        if entry.forks != _forks:
            continue
        loop = entry.loop
        if loop.is_running():
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                loop.call_soon_threadsafe(_start_closing, loop, entry)
        elif loop.is_closed():
            entry.session.detach()
        # else: a loop stopped between runs; its shutdown_asyncgens closes the guard
    sessions.clear()


def _start_closing(loop: asyncio.AbstractEventLoop, entry: _LoopSession) -> None:
    _BACKGROUND.add(task := loop.create_task(_close_entry(entry)))
    task.add_done_callback(_BACKGROUND.discard)


_BACKGROUND: set[asyncio.Task[None]] = set()
"""Closing tasks of abandoned sessions, kept until done (the loop holds tasks weakly)."""


class Transport:
    """aiohttp sessions, one per event loop that uses the client, sending one attempt at a time."""

    def __init__(
        self,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        headers: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._ssl: ssl.SSLContext | bool = True if ssl_context is None else ssl_context
        self._headers = dict(headers or {})
        self._sessions: dict[asyncio.AbstractEventLoop, _LoopSession] = {}
        # A client dropped unclosed: close its sessions on their loops. The finalizer holds
        # the dict, so the sessions never become garbage themselves (aiohttp would warn).
        weakref.finalize(self, _close_abandoned, self._sessions)
        self._current: tuple[int, int, asyncio.AbstractEventLoop, aiohttp.ClientSession] | None
        self._current = None
        """(thread, fork count, loop, session) of the last call: the check on every request
        reads this one tuple, so threads running loops of their own never see a torn mix."""
        self._forks = _forks
        self._closed = False
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    @property
    def closed(self) -> bool:
        """True once `aclose` has been called."""
        return self._closed

    async def _session_for_this_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._forks != _forks:
            self._leave_inherited()
        if self._closed:
            raise ClientClosedError("the client is closed; create a new client to send requests")
        entry = self._sessions.get(loop)
        if entry is None or entry.session.closed:  # closed: its loop shut down and ran again
            self._forget_dead_loops()
            entry = await self._open(loop)
        self._current = (threading.get_ident(), _forks, loop, entry.session)
        return entry.session

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _LoopSession:
        session = aiohttp.ClientSession(
            connector=_Connector(
                limit=self._max_connections,
                ttl_dns_cache=300,
                # aiohttp rounds timeouts over 5 s up to whole seconds; keep them exact so
                # an attempt never outlives the call's budget.
                timeout_ceil_threshold=math.inf,
                ssl=self._ssl,
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            headers=self._headers,
            raise_for_status=False,
            auto_decompress=True,
            trust_env=False,  # else aiohttp adds ~/.netrc passwords (proxies: _network)
        )
        # aiohttp (3.14+) silently sends a GET or DELETE again when a kept-alive connection
        # drops: the retry policy would take the second attempt's answer (a 404 after a
        # delete that worked) for the first. Every attempt must be the SDK's own, counted
        # and logged. (A private flag: test_aiohttp_never_resends_an_attempt_by_itself
        # guards it.)
        session._retry_connection = False
        # A loop that has run shutdown_asyncgens() takes no new async generator (it warns):
        # such a session is closed by aclose() or the finalizer alone. (asyncio's own flag;
        # test_a_loop_that_runs_on_after_shutdown_asyncgens_gets_a_new_session guards it.)
        guard = None
        if not getattr(loop, "_asyncgens_shutdown_called", False):
            guard = _close_when_loop_ends(session)
            await guard.asend(None)  # runs to its yield at once: now the loop knows the guard
        entry = self._sessions[loop] = _LoopSession(loop, session, guard)
        return entry

    def _forget_dead_loops(self) -> None:
        """Drop the sessions of loops that are closed (they were closed with their loop,
        or, if the loop was closed without ``shutdown_asyncgens``, can no longer be)."""
        for loop, entry in list(self._sessions.items()):
            if loop.is_closed() or entry.session.closed:
                self._sessions.pop(loop, None)
                entry.session.detach()  # nothing can be sent on it again; no warning at GC

    def _leave_inherited(self) -> None:
        """In a forked child: the parent's sessions share its sockets and its loops' epoll
        sets, so closing them here would break the parent's connections. Keep them (and
        their guards), untouched, for the life of this process."""
        _INHERITED.extend(self._sessions.values())
        self._sessions.clear()
        self._current = None
        self._forks = _forks

    async def send(
        self,
        method: str,
        url: yarl.URL,
        headers: Mapping[str, str],
        body: bytes | Multipart | None,
        *,
        timeout_s: float,
        max_response_bytes: int,
        proxy: Proxy | None = None,
        limited_by: str = "timeout_ms",
        watch: UploadWatch | None = None,
    ) -> Response:
        """Send one attempt of `method` with `body` to `url` (through `proxy`, if given),
        the whole attempt (connect to last body byte) bounded by `timeout_s` (> 0).

        A 2XX body is read up to `max_response_bytes`, any other up to `ERROR_BODY_LIMIT`,
        both counted after decoding; past that the connection is dropped and the result
        marked truncated. A timeout's message names what set the limit (`limited_by`). An
        upload with a `watch` is timed by it instead (`_watched`). A failure says whether
        the request may have reached the server (`maybe_committed`): not if the connection
        (or the proxy's tunnel) was never made, or an upload's body was not all sent.
        """
        current = self._current
        # Is the cached session's loop the one running this coroutine? A loop runs on one
        # thread at a time, so yes exactly when it is running on this thread. (Cheaper than
        # asyncio.get_running_loop(), which makes a getpid() system call on 3.11.)
        if (
            current is None
            or current[0] != threading.get_ident()
            or current[1] != _forks
            or not current[2].is_running()
        ):
            session = await self._session_for_this_loop()
        else:
            session = current[3]
        if watch is not None:  # an upload with a stall watchdog: its own timing
            return await self._watched(method, url, headers, body, watch, max_response_bytes, proxy)
        upload = None if not isinstance(body, Multipart) else UploadPayload(body)
        request = session.request(
            method,
            url,
            data=body if upload is None else upload,
            headers=headers,
            allow_redirects=False,
            timeout=self._timeouts.get(timeout_s) or self._timeout(timeout_s),
            proxy=None if proxy is None else proxy.url,
        )
        # A failure is built inside its except clause and raised after it, so that it has
        # neither a cause nor a context: aiohttp's exceptions hold the request's headers.
        failure: EmissaryError | None = None
        try:  # (an upload's body is settled in `finally`: its file closed before we return)
            async with request as response:
                status = response.status
                if status == 407 and proxy is not None:  # the proxy answered, for a plain-
                    raise proxy_refused(proxy, status, response.reason)  # HTTP target
                limit = max_response_bytes if 200 <= status < 300 else ERROR_BODY_LIMIT
                length = response.content_length
                if (
                    length is not None
                    and length <= limit
                    and _CONTENT_ENCODING not in response.headers
                ):
                    data = await response.read()
                    return Response(status, response.headers, data, url)
                data, complete = await _read_at_most(response.content, limit)
                if not complete:
                    response.close()  # drop the connection rather than read the rest
                return Response(status, response.headers, data, url, not complete)
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            failure = APITimeoutError(
                f"{method} {_safe(url)} did not complete within {timeout_s:g} s ({limited_by})"
            )
            failure.maybe_committed = True
        except (aiohttp.ClientError, OSError, RuntimeError) as exc:
            if not (isinstance(exc, RuntimeError) and session.closed and not self._closed):
                failure = transport_error(exc, url, method, closed=self._closed, proxy=proxy)
        finally:
            if upload is not None:
                await upload.settle()
        if upload is not None and upload.failure is not None:
            failure = upload.failure  # the file changed under the upload: not worth a retry
        elif upload is not None and failure is not None and not upload.sent_all:
            failure.maybe_committed = False  # a body cut short cannot have been processed
        if failure is not None:
            raise failure
        # The session was closed under us before anything was sent: its loop ran
        # shutdown_asyncgens() (which closes it) and then went on running. Use a new one.
        self._current = None
        self._sessions.pop(asyncio.get_running_loop(), None)
        return await self.send(
            method,
            url,
            headers,
            body,
            timeout_s=timeout_s,
            max_response_bytes=max_response_bytes,
            proxy=proxy,
            limited_by=limited_by,
        )

    async def _watched(
        self,
        method: str,
        url: yarl.URL,
        headers: Mapping[str, str],
        body: bytes | Multipart | None,
        watch: UploadWatch,
        max_response_bytes: int,
        proxy: Proxy | None,
    ) -> Response:
        """`send` for an upload timed by its `watch`: no total limit, an anyio cancel scope
        whose deadline each chunk sent pushes `stall_s` further, and `answer_s` for the
        answer once the server's side has the last byte (`UploadPayload`). The scope's
        cancellation becomes a timeout."""
        import anyio  # an upload with a watchdog: not on the path of other calls

        assert isinstance(body, Multipart)
        session = await self._session_for_this_loop()
        failure: EmissaryError | None = None
        upload = UploadPayload(body, watch)
        try:  # (the body settled outside the scope, which may be cancelled: see `settle`)
            with anyio.CancelScope(deadline=_now() + watch.stall_s) as scope:
                upload.scope = scope
                try:
                    async with session.request(
                        method,
                        url,
                        data=upload,
                        headers=headers,
                        allow_redirects=False,
                        timeout=_NO_TOTAL,
                        proxy=None if proxy is None else proxy.url,
                    ) as response:
                        status = response.status
                        if status == 407 and proxy is not None:
                            raise proxy_refused(proxy, status, response.reason)
                        limit = max_response_bytes if 200 <= status < 300 else ERROR_BODY_LIMIT
                        data, complete = await _read_at_most(response.content, limit)
                        if not complete:
                            response.close()
                        return Response(status, response.headers, data, url, not complete)
                except (aiohttp.ClientError, OSError, RuntimeError) as exc:
                    failure = transport_error(exc, url, method, closed=self._closed, proxy=proxy)
        finally:
            await upload.settle()
        if scope.cancelled_caught:
            what = (
                f"sent no byte for {watch.stall_s:g} s (stall_timeout_ms)"
                if not upload.sent_all
                else f"got no answer within {watch.answer_s:g} s of its last byte (timeout_ms)"
            )
            failure = APITimeoutError(f"{method} {_safe(url)}: the upload {what}")
            failure.maybe_committed = upload.sent_all
        if upload.failure is not None:
            failure = upload.failure
        elif failure is not None and not upload.sent_all:
            failure.maybe_committed = False
        assert failure is not None
        raise failure

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        """A new `aiohttp.ClientTimeout` for `seconds`, remembered in `_timeouts` (which
        `send` reads first: a call's limit is nearly always one seen before)."""
        if not seconds > 0:  # aiohttp reads a total <= 0 as "no limit at all"
            raise APITimeoutError(f"no time left for an attempt ({seconds!r} s)")
        if len(self._timeouts) > 64:
            self._timeouts.clear()
        # ceil_threshold: aiohttp would round a limit of 5 s or more up to the next whole
        # second, and the attempt could outlive the call's budget.
        timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(
            total=seconds, ceil_threshold=math.inf
        )
        return timeout

    def close_idle(self) -> bool:
        """Refuse further requests if no session is open here; True if so."""
        if not self._sessions or self._forks != _forks:
            self._closed = True
            return True
        return False

    async def aclose(self) -> None:
        """Close every session, each on its own loop, and refuse further requests."""
        self._closed = True
        self._current = None
        if self._forks != _forks:
            self._leave_inherited()
            return
        entries = list(self._sessions.values())
        self._sessions.clear()
        here = asyncio.get_running_loop()
        elsewhere = []
        for entry in entries:
            if entry.loop is here:
                await _close_entry(entry)
            elif entry.loop.is_running():  # another thread's loop: close it there
                closing = asyncio.run_coroutine_threadsafe(_close_entry(entry), entry.loop)
                elsewhere.append(asyncio.wrap_future(closing))
            else:  # its loop is gone, or stopped and not closed: nothing can be sent on it
                entry.session.detach()
        if elsewhere:
            await asyncio.wait(elsewhere, timeout=CLOSE_ELSEWHERE_S)


def _now() -> float:
    return asyncio.get_running_loop().time()


def transport_error(
    exc: BaseException,
    url: yarl.URL,
    method: str = "POST",
    *,
    closed: bool = False,
    proxy: Proxy | None = None,
) -> EmissaryError:
    """Our error for an aiohttp or OS failure of an attempt on `url` (through `proxy`), made
    of plain facts: no reference to `exc`, whose request info or connection key may hold
    credentials, and the proxy shown without its password. `closed` says the client was
    closed meanwhile. A failure to connect (or to set up TLS or a proxy's tunnel) sent
    nothing: it is not `maybe_committed`; any later one may have been."""
    error = _transport_error(exc, url, method, closed, proxy)
    error.maybe_committed = not isinstance(
        exc, aiohttp.ClientConnectorError | aiohttp.ClientHttpProxyError | aiohttp.InvalidURL
    )
    return error


def _transport_error(
    exc: BaseException, url: yarl.URL, method: str, closed: bool, proxy: Proxy | None
) -> EmissaryError:
    if closed:  # whatever the attempt met (a dropped connection, a closed session): the close
        return ClientClosedError("the client was closed while the call was in flight")
    where = f"{method} {_safe(url)}"
    if isinstance(exc, aiohttp.InvalidURL):
        return ConfigurationError(f"invalid request URL {_safe(url)}")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        advice = describe_certificate_error(exc.certificate_error, url.host or "the server")
        return APITLSError(f"{where}: TLS failed: {advice}; not retried")
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch):
        reason = getattr(exc, "os_error", None)
        return APITLSError(f"{where}: TLS failed ({_reason(reason or exc)}); not retried")
    if isinstance(exc, aiohttp.ClientHttpProxyError) and proxy is not None:
        return proxy_refused(proxy, exc.status, exc.message)
    if isinstance(exc, aiohttp.ClientProxyConnectionError) and proxy is not None:
        return APIProxyError(
            f"could not connect to the proxy {_shown(proxy)} ({_reason(exc.os_error)})"
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        target = f"{exc.host}:{exc.port}"
        if isinstance(os_error, socket.gaierror):
            # aiohttp reports a proxy whose name does not resolve as a connection to it
            what, setting = (
                ("proxy host", proxy.source)
                if proxy is not None and exc.host == proxy.url.host
                else ("host", "server_url")
            )
            if os_error.errno in _NAME_DOES_NOT_EXIST:
                return APIHostNotFoundError(
                    f"the {what} {exc.host!r} does not exist ({os_error.strerror}); check {setting}"
                )
            return APIConnectionError(
                f"could not resolve the {what} {exc.host!r} ({os_error.strerror})"
            )
        return APIConnectionError(f"could not connect to {target} ({_reason(os_error)})")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return APIConnectionError(f"{where}: the response body was cut short")
    if isinstance(exc, aiohttp.ClientResponseError):  # a malformed or oversized answer
        return APIConnectionError(f"{where}: the response was not valid HTTP ({exc.message})")
    if isinstance(exc, ssl.SSLError) or isinstance(getattr(exc, "__cause__", None), ssl.SSLError):
        error = exc if isinstance(exc, ssl.SSLError) else exc.__cause__
        if "CERTIFICATE_REQUIRED" in str(error).upper():
            return APITLSError(
                f"{where}: the server asks for a client certificate (mutual TLS): pass "
                "ssl_context= with ssl_context.load_cert_chain(...); not retried"
            )
    return APIConnectionError(f"{where} failed ({_reason(exc)})")


def proxy_refused(proxy: Proxy, status: int, message: str | None) -> APIProxyError:
    """The error for a proxy that answered `status` instead of passing the request on."""
    advice = (
        ": its credentials are missing or wrong (user:password in the proxy URL)"
        if status in (401, 407)  # 407 is the standard; some proxies answer a bad password 401
        else ""
    )
    error = APIProxyError(
        f"the proxy {_shown(proxy)} answered {status} ({message or 'no reason given'}){advice}"
    )
    error.status_code = status
    return error


def _shown(proxy: Proxy) -> str:
    """The proxy's URL for messages: no user name or password."""
    return str(proxy.url.with_user(None))


_CONTENT_ENCODING = "Content-Encoding"
_NAME_DOES_NOT_EXIST = frozenset(
    code
    for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
    if code is not None
)
"""getaddrinfo's "no such name" answers, as opposed to a temporary failure (EAI_AGAIN)."""


def _reason(error: BaseException) -> str:
    """``TypeName: message`` of an OS or library error, for our messages."""
    text = redact_url(str(error) or repr(error))  # a proxy's password never shows
    return f"{type(error).__name__}: {text}"


async def _read_at_most(content: aiohttp.StreamReader, limit: int) -> tuple[bytes, bool]:
    """Read up to `limit` bytes; the flag is False when the body was longer."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await content.read(min(1 << 16, limit + 1 - size))
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], False


def _safe(url: yarl.URL) -> str:
    """The URL without any userinfo, for messages."""
    return str(url.with_user(None))
