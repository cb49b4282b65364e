"""What every generated sync client shares: the private loop and the client's lifecycle."""

from __future__ import annotations

import weakref
from types import TracebackType
from typing import TypeVar

from .._async.client import AsyncEmissaryClient
from .._loop import LoopThread

_Client = TypeVar("_Client", bound="SyncClientBase")


class SyncClientBase:
    """Runs an `AsyncEmissaryClient`'s coroutines on a private event loop thread.

    The loop thread starts on the first call and stops on `close()`, at garbage collection,
    or at interpreter exit, whichever comes first, closing the HTTP session quietly.
    """

    def __init__(self, async_client: AsyncEmissaryClient) -> None:
        self._async_client = async_client
        self._runner = LoopThread()
        self._finalizer = weakref.finalize(self, _shutdown, async_client, self._runner)

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

    def __repr__(self) -> str:
        inner = getattr(self, "_async_client", None)  # absent if __init__ raised
        if inner is None:
            return f"{type(self).__name__}(<not initialised>)"
        return type(self).__name__ + repr(inner)[len(type(inner).__name__) :]


def _shutdown(async_client: AsyncEmissaryClient, runner: LoopThread) -> None:
    """Close the session on its own loop, then stop the loop (also run at exit or by GC)."""
    if async_client._transport.close_idle():
        runner.stop()
    else:
        runner.stop(async_client.close())
