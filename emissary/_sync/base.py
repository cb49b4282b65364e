"""What every generated sync client shares: the private loop and the client's lifecycle."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TypeVar

from .._async.client import _UNSET, AsyncEmissaryClient, _rebuild
from .._config import ApiKeySource
from .._loop import LoopThread
from ..utils import RetryBudget, RetryConfig

_Client = TypeVar("_Client", bound="SyncClientBase")


class SyncClientBase:
    """Runs an `AsyncEmissaryClient`'s coroutines on a private event loop thread.

    The loop thread starts on the first call and stops on `close()`, at garbage collection,
    or at interpreter exit, whichever comes first, closing the HTTP session quietly.
    """

    def __init__(
        self,
        async_client: AsyncEmissaryClient,
        *,
        parent: SyncClientBase | None = None,
    ) -> None:
        self._async_client = async_client
        self._parent = parent  # keeps the shared pool and loop thread alive
        self._finalizer: weakref.finalize[..., object]
        if parent is None:
            self._runner = LoopThread()
            self._finalizer = weakref.finalize(self, _shutdown, async_client, self._runner)
        else:
            self._runner = parent._runner
            self._finalizer = weakref.finalize(self, _stop_sending, async_client)
        self._bind()

    def _bind(self) -> None:
        """Make the sync resources over the async client's (written by the generator)."""
        raise NotImplementedError

    def with_options(
        self: _Client,
        *,
        api_key: ApiKeySource | None = _UNSET,
        server_url: str | None = _UNSET,
        retry_config: RetryConfig | None = _UNSET,
        timeout_ms: float | None = _UNSET,
        max_response_bytes: int = _UNSET,
        retry_budget: RetryBudget | None = _UNSET,
        default_headers: Mapping[str, str] | None = _UNSET,
        tracing: bool = _UNSET,
    ) -> _Client:
        """A client of this class with some settings changed, sharing this one's connection
        pool and loop thread (and retry budget, unless `retry_budget` is given). Closing
        this client closes the pool for both; closing the new one only stops it sending."""
        inner = self._async_client.with_options(
            api_key=api_key,
            server_url=server_url,
            retry_config=retry_config,
            timeout_ms=timeout_ms,
            max_response_bytes=max_response_bytes,
            retry_budget=retry_budget,
            default_headers=default_headers,
            tracing=tracing,
        )
        clone = type(self).__new__(type(self))
        SyncClientBase.__init__(clone, inner, parent=self._parent or self)
        return clone

    @property
    def server_url(self) -> str:
        """The base URL requests go to (unless a call overrides it)."""
        return self._async_client.server_url

    @property
    def closed(self) -> bool:
        """True once the client has been closed."""
        return self._async_client.closed

    def close(self) -> None:
        """Close the HTTP session and stop the loop thread; later calls raise
        `ClientClosedError`. Calling it again does nothing."""
        self._finalizer()

    def __enter__(self: _Client) -> _Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle the settings (see `AsyncEmissaryClient.__reduce__`): the copy starts its
        own loop thread and pool on first use."""
        return (_rebuild, (type(self), self._async_client._pickled_options()))

    def __repr__(self) -> str:
        inner = getattr(self, "_async_client", None)  # absent if __init__ raised
        if inner is None:
            return f"{type(self).__name__}(<not initialised>)"
        return type(self).__name__ + repr(inner)[len(type(inner).__name__) :]


def _stop_sending(async_client: AsyncEmissaryClient) -> None:
    """Close a client made by `with_options`: it stops sending; the pool is its parent's."""
    async_client._closed = True


def _shutdown(async_client: AsyncEmissaryClient, runner: LoopThread) -> None:
    """Close the session on its own loop, then stop the loop (also run at exit or by GC)."""
    if async_client._transport.close_idle():
        runner.stop()
    else:
        runner.stop(async_client.close)
