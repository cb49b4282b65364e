"""Every exception the SDK raises on purpose, in one tree.

    EmissaryError
    ├── ConfigurationError (ValueError)      bad client settings: no server URL, no key, ...
    ├── RequestValidationError (ValueError)  bad call arguments, raised before any I/O
    │   ├── RequestTypeError (TypeError)     ... of the wrong type
    │   └── UploadSourceError                an upload's file is missing, empty or changed
    ├── ClientClosedError (RuntimeError)     the client was closed
    ├── ClientNotPicklableError (TypeError)  a client whose settings cannot be pickled
    ├── BatchInputError                      a batch's input iterable raised (.results)
    ├── WaitError                            a wait ended without success (.resource, .status,
    │   │                                    .elapsed, .polls)
    │   ├── TrainingJobError                 ... the training job Failed, TimedOut, Cancelled
    │   ├── DeploymentError                  ... the deployment Failed, TimedOut, Cancelled
    │   └── WaitTimeoutError (TimeoutError)  ... max_wait ran out (the work goes on)
    ├── AmbiguousCreateError                 a create may have made one of several (.candidates)
    ├── APIConnectionError                   the request did not get a response
    │   ├── APITimeoutError                  ... in time (or the call's time budget ran out)
    │   ├── APITLSError                      ... because TLS failed (never retried)
    │   ├── APIProxyError                    ... because the proxy refused or failed it
    │   └── APIHostNotFoundError             ... because the host name does not exist (never
    │                                        retried; also a ConfigurationError)
    └── SDKError                             the server answered with a non-success response
        ├── APIErrorInvalidInput             400, with .data (status, error)
        ├── APIErrorUnauthorized             401, with .data (status, error)
        ├── APIErrorNotFound                 404, with .data (status, error, code)
        ├── PayloadTooLargeError             413: the upload is larger than the server takes
        └── ResponseValidationError          a 2XX whose body is not the documented JSON

No aiohttp, asyncio or msgspec exception escapes the SDK: transport faults become
`APIConnectionError`, bodies that do not decode become `SDKError`s carrying the raw text.
This module imports nothing else of the package: every other module may import it.

Messages never contain the API key, and no object reachable from an error (its
arguments, attributes, cause or context) holds it: transport errors are not chained to
aiohttp's exceptions, which carry the request's headers.

Every error has `maybe_committed`: True only when the call may have taken effect on the
server although it failed (a create answered 500, or a connection dropped after the request
was sent); False where nothing can have been done (a refused connection, a 400/401/404,
bad input). A create that may have been committed is never retried unless the caller gave
an ``idempotency_key``.

An error that ends a call (`APIConnectionError`, `SDKError`) says how it ended:
`retries_taken` (attempts minus one) and `elapsed` (first attempt to the end), and when the
call was retried its message ends with ``[3 attempts over 2.1 s]``.

`SDKError` keeps the attribute names of the generated `emissary-client-sdk`
(`message`, `status_code`, `body`, `raw_response`) so migrating code keeps working.
"""

from __future__ import annotations

import datetime
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
    "APIHostNotFoundError",
    "APIProxyError",
    "APITLSError",
    "APITimeoutError",
    "AmbiguousCreateError",
    "BatchInputError",
    "ClientClosedError",
    "ClientNotPicklableError",
    "ConfigurationError",
    "DeploymentError",
    "EmissaryError",
    "PayloadTooLargeError",
    "RequestTypeError",
    "RequestValidationError",
    "ResponseValidationError",
    "SDKError",
    "TrainingJobError",
    "UploadSourceError",
    "WaitError",
    "WaitTimeoutError",
]


class EmissaryError(Exception):
    """Base class of every exception the SDK raises on purpose."""

    maybe_committed: bool = False
    """True when the call may have taken effect on the server although it failed (see the
    module docstring): look before you try again."""
    run: Any = None
    """Raised by ``fine_tune``: the `models.FineTuneRun` of the steps done before this one
    failed (run it again with the same ``state=`` file to resume)."""


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


class UploadSourceError(RequestValidationError):
    """An upload's source cannot be sent as it is: a path that does not exist or is a
    directory, an empty source, or a file whose size changed while it was sent (then
    raised mid-upload, and never retried: the bytes would not be the same)."""


class ClientClosedError(EmissaryError, RuntimeError):
    """The client was closed; create a new one (or use it in a ``with`` block)."""


class ClientNotPicklableError(EmissaryError, TypeError):
    """The client holds a setting that cannot be pickled (an ``ssl_context``); the message
    says what to pass instead."""


class BatchInputError(EmissaryError):
    """The iterable of a batch's requests raised (its exception is ``__cause__``).

    Nothing already paid for is lost: the rows in flight finish first. ``batch()`` puts
    every result of the rows that ran, in input order, in `results`; ``iter_batch()`` has
    yielded each of them before raising, so its `results` is empty.
    """

    def __init__(self, message: str, results: list[Any] | None = None) -> None:
        super().__init__(message)
        self.results: list[Any] = [] if results is None else results
        """The results of the rows that ran (``batch()``), in input order."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (str(self),), {"results": self.results}))


class WaitError(EmissaryError):
    """A wait for a resource ended without success. Nothing is cancelled on the server.

    Attributes:
        resource: the last state of the resource seen (its detail model), or None if no
            poll succeeded.
        status: its last status (``is_uploaded`` of a dataset as "processing"), or None.
        elapsed: how long the wait took.
        polls: how many polls were answered.
    """

    def __init__(
        self,
        message: str,
        *,
        resource: Any = None,
        status: str | None = None,
        elapsed: datetime.timedelta | None = None,
        polls: int = 0,
    ) -> None:
        super().__init__(message)
        self.resource = resource
        self.status = status
        self.elapsed = elapsed
        self.polls = polls

    def __reduce__(self) -> tuple[Any, ...]:
        state = {k: getattr(self, k) for k in ("resource", "status", "elapsed", "polls")}
        return (_rebuild, (type(self), (str(self),), state))


class TrainingJobError(WaitError):
    """The training job ended ``Failed``, ``TimedOut`` or ``Cancelled`` (see `status`; the
    spec gives no reason field: `resource` holds its last progress)."""


class DeploymentError(WaitError):
    """The deployment ended ``Failed``, ``TimedOut`` or ``Cancelled`` (see `status`)."""


class WaitTimeoutError(WaitError, TimeoutError):
    """``max_wait`` ran out before the resource was done; it goes on on the server (cancel
    it, or wait again)."""


class AmbiguousCreateError(EmissaryError):
    """A create failed in a way that may have made the resource, and more than one
    resource could be it: `candidates` holds them (the SDK will not pick one)."""

    def __init__(self, message: str, candidates: list[Any] | None = None) -> None:
        super().__init__(message)
        self.candidates: list[Any] = [] if candidates is None else candidates
        self.maybe_committed = True

    def __reduce__(self) -> tuple[Any, ...]:
        state = {"candidates": self.candidates, "maybe_committed": True}
        return (_rebuild, (type(self), (str(self),), state))


class _CallError(EmissaryError):
    """An error that ended a call: it knows how many attempts the call made, over how long."""

    retries_taken: int = 0
    """How many times the call was retried before it ended with this error (attempts - 1)."""
    elapsed: datetime.timedelta | None = None
    """From the call's first attempt to this error; None if the error was made by hand."""

    def _attempts_note(self) -> str:
        """`` [3 attempts over 2.1 s]`` for a retried call, else nothing."""
        if not self.retries_taken:
            return ""
        seconds = self.elapsed.total_seconds() if self.elapsed is not None else 0.0
        return f" [{self.retries_taken + 1} attempts over {seconds:.1f} s]"


class APIConnectionError(_CallError):
    """The request could not be completed: refused, reset, dropped or truncated."""

    def __str__(self) -> str:
        return super().__str__() + self._attempts_note()


class APITimeoutError(APIConnectionError):
    """The request did not complete within its time limit (``timeout_ms``), or the call's
    whole budget (``max_elapsed_time``) was spent."""


class APITLSError(APIConnectionError):
    """The TLS handshake or certificate check failed; retrying would not help."""


class APIProxyError(APIConnectionError):
    """The proxy could not be reached, or answered instead of passing the request on.

    A 407 (its credentials are missing or wrong) is never retried, nor is any refusal
    but a 502, 503 or 504 (the proxy could not reach the server); an unreachable proxy is
    retried like any connection failure. The message never shows the proxy's password.
    """

    status_code: int | None = None
    """The proxy's status (407, say), or None when it could not be reached."""


class APIHostNotFoundError(APIConnectionError, ConfigurationError):
    """The server's host name does not exist (a mistyped ``server_url``, say).

    Not retried: the name service answered, and asking again gives the same answer. A
    `ConfigurationError` too, since the fix is in the settings. (A *temporary* name-service
    failure is a plain `APIConnectionError` and is retried.)
    """


class SDKError(_CallError):
    """The server answered with a status or body the API does not document as success.

    Attributes:
        message: a one-line description.
        status_code: the HTTP status code.
        body: the response body as text (at most 1 MiB of it is read).
        headers: the response headers (case-insensitive mapping).
        raw_response: a `models.RawResponse` with the status, headers, body bytes and URL.
        request_id: the response's ``X-Request-Id``, or None.
        retries_taken: how many times the call was retried (attempts - 1).
        elapsed: the call's time from its first attempt to this error.
        retry_after: the wait in seconds the server asked for (``Retry-After`` or
            ``retry-after-ms``), or None.
    """

    retry_after: float | None = None
    """Seconds the server asked the client to wait before retrying, if it said so (read
    from the response when it arrived)."""
    request_id: str | None = None
    """The server's id of the request (its ``X-Request-Id`` header): quote it to support."""

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

    def __str__(self) -> str:
        text = f"{self.message}: Status {self.status_code}{self._attempts_note()}"
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


class PayloadTooLargeError(SDKError):
    """413: the request (an upload, say) is larger than the server takes; never retried."""


class ResponseValidationError(SDKError):
    """A 2XX response whose body is not the documented JSON; `.body` holds what came."""


def _rebuild(cls: type[Exception], args: tuple[Any, ...], state: dict[str, Any]) -> Exception:
    error = cls.__new__(cls, *args)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error
