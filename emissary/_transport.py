"""The one place that touches aiohttp: the session, timeouts, size caps and error mapping.

`Transport.send` performs one HTTP attempt and returns ``(status, headers, body)``; every
aiohttp, asyncio or OS failure leaves it as an `APIConnectionError` (or `APITimeoutError`).

The session is created lazily on the event loop that first uses it and reused there
(keep-alive). Used from another loop (a second ``asyncio.run()``) or in a forked child, the
old session is detached, never touched from the wrong loop or process, and a new one made.
Redirects are never followed, so the API key and body cannot be forwarded to another host.
Plain-HTTP connections read in 64 KiB chunks rather than asyncio's 256 KiB (`_Connector`).
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

import aiohttp
import yarl

from .errors import (
    APIConnectionError,
    APITimeoutError,
    APITLSError,
    ClientClosedError,
    ConfigurationError,
)

if TYPE_CHECKING:
    from aiohttp.client_proto import ResponseHandler
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.tracing import Trace


ERROR_BODY_LIMIT = 1 << 20
"""At most this much of an error response body is read (1 MiB); the rest is discarded."""
DEFAULT_MAX_RESPONSE_BYTES = 16 << 20
"""A success body larger than this (16 MiB) is refused while reading."""
DEFAULT_MAX_CONNECTIONS = 100
_INHERITED: list[aiohttp.BaseConnector] = []
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


HTTPResult = tuple[int, Mapping[str, str], bytes, bool]
"""What one attempt received: ``(status, headers, body, truncated)``, where `truncated` is
True when the body was longer than the cap and only its start was read. (A plain tuple: a
NamedTuple's ``__new__`` is one more Python call on every request.)"""


class Transport:
    """An aiohttp session bound to one event loop, sending one attempt at a time."""

    def __init__(
        self,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        headers: Mapping[str, str] | None = None,
        usual_timeout_s: float,
    ) -> None:
        self._max_connections = max_connections
        self._headers = dict(headers or {})
        self._usual_timeout_s = usual_timeout_s
        """The session's own timeout: an attempt with this limit passes none to aiohttp,
        which saves it a keyword argument (about 5,000 instructions) on every request."""
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._forks = _forks
        self._closed = False
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    @property
    def closed(self) -> bool:
        """True once `aclose` has been called."""
        return self._closed

    async def _session_for_this_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is not None and self._loop is loop and self._forks == _forks:
            return session
        if self._closed:
            raise ClientClosedError("the client is closed; create a new client to send requests")
        if session is not None:
            await self._discard(session)
        self._session = session = aiohttp.ClientSession(
            connector=_Connector(
                limit=self._max_connections,
                ttl_dns_cache=300,
                # aiohttp rounds timeouts over 5 s up to whole seconds; keep them exact so
                # an attempt never outlives the call's budget.
                timeout_ceil_threshold=math.inf,
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            headers=self._headers,
            timeout=self._timeout(self._usual_timeout_s),
            raise_for_status=False,
            auto_decompress=True,
            trust_env=False,
        )
        self._loop, self._thread, self._forks = loop, threading.get_ident(), _forks
        return session

    async def _discard(self, session: aiohttp.ClientSession) -> None:
        """Let go of a session made on another loop or in the parent process."""
        connector = session.connector
        session.detach()  # never touch the sockets from here: they are not this loop's
        old_loop = self._loop
        if connector is None:
            return
        if self._forks != _forks:
            # Inherited through fork(): its sockets and its loop's epoll set are shared with
            # the parent, so closing them here would break the parent's connections. Keep it,
            # untouched, for the life of this process.
            _INHERITED.append(connector)
            return
        if old_loop is not None and old_loop.is_closed():
            # Its loop is gone (a previous asyncio.run): nothing can be sent on it again;
            # mark it closed. Its sockets are reclaimed with the dead loop's transports.
            await connector.close()
        elif old_loop is not None and old_loop.is_running():
            asyncio.run_coroutine_threadsafe(_close_connector(connector), old_loop)

    async def send(
        self,
        url: yarl.URL,
        headers: Mapping[str, str],
        body: bytes,
        *,
        timeout_s: float,
        max_response_bytes: int,
    ) -> HTTPResult:
        """POST `body` to `url`, the whole attempt (connect to last body byte) bounded by
        `timeout_s`.

        A 2XX body is read up to `max_response_bytes`, any other up to `ERROR_BODY_LIMIT`;
        past that the connection is dropped and the result marked truncated.
        """
        session = self._session
        # Is the session's loop the one running this coroutine? A loop runs on one thread at
        # a time, so yes exactly when it is running on this thread. (Cheaper than comparing
        # with asyncio.get_running_loop(), which makes a getpid() system call on 3.11.)
        if (
            session is None
            or self._thread != threading.get_ident()
            or self._forks != _forks
            or not self._loop.is_running()  # type: ignore[union-attr]
        ):
            session = await self._session_for_this_loop()
        if timeout_s == self._usual_timeout_s:  # the session's own timeout
            request = session.post(url, data=body, headers=headers, allow_redirects=False)
        else:
            request = session.post(
                url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=self._timeout(timeout_s),
            )
        try:
            async with request as response:
                status = response.status
                limit = max_response_bytes if 200 <= status < 300 else ERROR_BODY_LIMIT
                length = response.content_length
                if length is not None and length <= limit:
                    return status, response.headers, await response.read(), False
                data, complete = await _read_at_most(response.content, limit)
                if not complete:
                    response.close()  # drop the connection rather than read the rest
                return status, response.headers, data, not complete
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise APITimeoutError(
                f"POST {_safe(url)} did not complete within {timeout_s:g} s"
            ) from exc
        except aiohttp.InvalidURL as exc:
            raise ConfigurationError(f"invalid request URL {_safe(url)}") from exc
        except (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch) as exc:
            raise APITLSError(
                f"POST {_safe(url)}: TLS failed ({type(exc).__name__}); not retried"
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise APIConnectionError(
                f"could not connect to {exc.host}:{exc.port} ({type(exc).__name__}: {exc.strerror})"
            ) from exc
        except aiohttp.ClientPayloadError as exc:
            raise APIConnectionError(
                f"POST {_safe(url)}: the response body was cut short ({type(exc).__name__})"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise APIConnectionError(
                f"POST {_safe(url)} failed: {type(exc).__name__}: {exc}"
            ) from exc

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            if len(self._timeouts) > 64:
                self._timeouts.clear()
            # ceil_threshold: aiohttp would round a limit of 5 s or more up to the next
            # whole second, and the attempt could outlive the call's budget.
            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(
                total=seconds, ceil_threshold=math.inf
            )
        return timeout

    def close_idle(self) -> bool:
        """Refuse further requests if no session was ever opened here; True if so."""
        if self._session is None or self._forks != _forks:
            self._closed = True
            return True
        return False

    async def aclose(self) -> None:
        """Close the session (if any) and refuse further requests."""
        self._closed = True
        session, self._session = self._session, None
        if session is None:
            return
        if self._forks == _forks and self._loop is asyncio.get_running_loop():
            await session.close()
        else:
            await self._discard(session)


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


async def _close_connector(connector: aiohttp.BaseConnector) -> None:
    await connector.close()


def _safe(url: yarl.URL) -> str:
    """The URL without any userinfo, for messages."""
    return str(url.with_user(None))
