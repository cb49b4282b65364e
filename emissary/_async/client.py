"""`AsyncEmissaryClient`: settings, the transport and the retry runtime, shared by resources."""

from __future__ import annotations

from types import TracebackType

from .._config import ApiKeySource, ClientSettings, redact_url
from .._protocol import CompletionURLs
from .._retry import RetryRuntime
from .._transport import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_RESPONSE_BYTES, Transport
from ..errors import ConfigurationError
from ..utils import RetryBudget, RetryConfig
from .resources import AsyncDeployments


class AsyncEmissaryClient:
    """Async client for the Emissary API; use it as ``async with AsyncEmissaryClient() as c:``.

    Arguments:
        api_key: the API key, or a zero-argument callable returning it (called per request);
            defaults to the ``EMISSARY_CLIENT_API_KEY`` environment variable.
        server_url: the API's base URL; defaults to ``EMISSARY_SERVER_URL``.
        retry_config: how calls are retried; defaults to `emissary.utils.DEFAULT_RETRY_CONFIG`.
        timeout_ms: the limit for each attempt, connect to last body byte (default 60 s).
        max_connections: the size of the keep-alive connection pool (default 100).
        max_response_bytes: the largest success body accepted (default 16 MiB).
        retry_budget: the client-wide cap on retries (default `utils.RetryBudget()`: at most
            20 retries in a total outage, refilled by successes).

    The HTTP session is created on first use, on the event loop that uses it.
    """

    deployments: AsyncDeployments
    """Operations on deployments: ``client.deployments.completions.create(...)``."""

    def __init__(
        self,
        api_key: ApiKeySource | None = None,
        server_url: str | None = None,
        retry_config: RetryConfig | None = None,
        timeout_ms: float | None = None,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        retry_budget: RetryBudget | None = None,
    ) -> None:
        self._settings = ClientSettings.resolve(
            api_key=api_key,
            server_url=server_url,
            retry_config=retry_config,
            timeout_ms=timeout_ms,
            max_response_bytes=max_response_bytes,
        )
        self._transport = Transport(
            max_connections=max_connections,
            headers=self._settings.session_headers,
            usual_timeout_s=self._settings.first_attempt_timeout_s,
        )
        self._urls = CompletionURLs()
        if retry_budget is not None and not isinstance(retry_budget, RetryBudget):
            raise ConfigurationError(
                "retry_budget must be an emissary.utils.RetryBudget or None, "
                f"got {type(retry_budget).__name__}"
            )
        self._retry_runtime = RetryRuntime(budget=retry_budget)
        self.deployments = AsyncDeployments(self)

    @property
    def server_url(self) -> str:
        """The base URL requests go to (unless a call overrides it)."""
        return self._settings.server_url

    @property
    def closed(self) -> bool:
        """True once the client has been closed."""
        return self._transport.closed

    async def close(self) -> None:
        """Close the HTTP session; the client cannot send requests afterwards."""
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncEmissaryClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        settings = getattr(self, "_settings", None)  # absent if __init__ raised
        if settings is None:
            return f"{type(self).__name__}(<not initialised>)"
        url = redact_url(settings.server_url)
        return f"{type(self).__name__}(server_url={url!r}, api_key=<redacted>)"
