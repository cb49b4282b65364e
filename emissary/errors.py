"""Every exception the SDK raises on purpose, in one tree.

    EmissaryError
    ├── ConfigurationError (ValueError)      bad client settings: no server URL, no key, ...
    ├── RequestValidationError (ValueError)  bad call arguments, raised before any I/O
    │   └── RequestTypeError (TypeError)     ... of the wrong type
    ├── ClientClosedError (RuntimeError)     the client was closed
    ├── APIConnectionError                   the request did not get a response
    │   ├── APITimeoutError                  ... in time
    │   └── APITLSError                      ... because TLS failed (never retried)
    └── SDKError                             the server answered with a non-success response
        ├── APIErrorInvalidInput             400, with .data (status, error)
        ├── APIErrorUnauthorized             401, with .data (status, error)
        ├── APIErrorNotFound                 404, with .data (status, error, code)
        └── ResponseValidationError          a 2XX whose body is not the documented JSON

No aiohttp, asyncio or msgspec exception escapes the SDK: transport faults become
`APIConnectionError`, bodies that do not decode become `SDKError`s carrying the raw text.
Messages never contain the API key.

`SDKError` keeps the attribute names of the generated `emissary-client-sdk`
(`message`, `status_code`, `body`, `raw_response`) so migrating code keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import (
        APIErrorInvalidInputData,
        APIErrorNotFoundData,
        APIErrorUnauthorizedData,
        RawResponse,
    )

__all__ = [
    "APIConnectionError",
    "APIErrorInvalidInput",
    "APIErrorNotFound",
    "APIErrorUnauthorized",
    "APITLSError",
    "APITimeoutError",
    "ClientClosedError",
    "ConfigurationError",
    "EmissaryError",
    "RequestTypeError",
    "RequestValidationError",
    "ResponseValidationError",
    "SDKError",
]


class EmissaryError(Exception):
    """Base class of every exception the SDK raises on purpose."""


class ConfigurationError(EmissaryError, ValueError):
    """The client cannot be used as configured (no server URL, no API key, bad option)."""


class RequestValidationError(EmissaryError, ValueError):
    """A call argument is invalid; raised before any network I/O.

    `field` names the offending argument as a dotted path, e.g. ``request_body.top_p``.
    """

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (str(self),), {"field": self.field}))


class RequestTypeError(RequestValidationError, TypeError):
    """A call argument has the wrong type; raised before any network I/O."""


class ClientClosedError(EmissaryError, RuntimeError):
    """The client was closed; create a new one (or use it in a ``with`` block)."""


class APIConnectionError(EmissaryError):
    """The request could not be completed: refused, reset, dropped or truncated."""


class APITimeoutError(APIConnectionError):
    """The request did not complete within its time limit (``timeout_ms``)."""


class APITLSError(APIConnectionError):
    """The TLS handshake or certificate check failed; retrying would not help."""


class SDKError(EmissaryError):
    """The server answered with a status or body the API does not document as success.

    Attributes:
        message: a one-line description.
        status_code: the HTTP status code.
        body: the response body as text (at most 1 MiB of it is read).
        headers: the response headers (case-insensitive mapping).
        raw_response: a `models.RawResponse` with the status, headers, body bytes and URL.
        retry_after: the wait in seconds the server asked for (``Retry-After`` or
            ``retry-after-ms``), or None.
    """

    def __init__(
        self,
        message: str,
        status_code: int = -1,
        body: str = "",
        raw_response: RawResponse | None = None,
    ) -> None:
        super().__init__(message, status_code, body, raw_response)
        self.message = message
        self.status_code = status_code
        self.body = body
        self.raw_response = raw_response

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers; empty when there was no response."""
        if self.raw_response is None:
            return {}
        return self.raw_response.headers

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked the client to wait before retrying, if it said so."""
        from ._protocol import retry_after_seconds

        return retry_after_seconds(self.headers)

    def __str__(self) -> str:
        text = f"{self.message}: Status {self.status_code}"
        if self.body:
            shown = self.body if len(self.body) <= 500 else self.body[:500] + "..."
            text += f"\n{shown}"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(message={self.message!r}, status_code={self.status_code})"


class _APIErrorWithData(SDKError):
    """An error response whose JSON body has the documented shape, decoded as `.data`."""

    data: Any

    def __init__(
        self,
        data: Any,
        status_code: int = -1,
        body: str = "",
        raw_response: RawResponse | None = None,
    ) -> None:
        message = getattr(data, "error", "") or type(self).__doc__ or "API error"
        super().__init__(message, status_code, body, raw_response)
        self.data = data
        self.args = (data, status_code, body, raw_response)


class APIErrorInvalidInput(_APIErrorWithData):
    """400: the server rejected the request body."""

    data: APIErrorInvalidInputData


class APIErrorUnauthorized(_APIErrorWithData):
    """401: the API key is missing or wrong."""

    data: APIErrorUnauthorizedData


class APIErrorNotFound(_APIErrorWithData):
    """404: the project or deployment does not exist (see ``.data.code``)."""

    data: APIErrorNotFoundData


class ResponseValidationError(SDKError):
    """A 2XX response whose body is not the documented JSON; `.body` holds what came."""


def _rebuild(cls: type[Exception], args: tuple[Any, ...], state: dict[str, Any]) -> Exception:
    error = cls.__new__(cls, *args)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error
