"""The API without I/O: what a call sends, and what a response means.

A resource method describes its call as a `Request` (`completion_request` for
completions): the encoded path and query, the JSON body, the call's own headers, the parser
of its response and what a trace span says of it. The client's one request path
(`AsyncEmissaryClient._request`) sends it and hands each `Response` to the parser
(`parse_completion_response`), which returns the result or raises the documented error.
`session_headers` and `new_idempotency_key` make the headers. Pure functions, tested
without a network.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import quote

import msgspec
import yarl
from multidict import CIMultiDict

from ._validation import (
    check_headers,
    check_id,
    check_idempotency_key,
    encode_query,
    encode_request_body,
)
from ._version import __version__
from .errors import (
    APIErrorInvalidInput,
    APIErrorNotFound,
    APIErrorUnauthorized,
    ResponseValidationError,
    SDKError,
)
from .models import (
    APIErrorInvalidInputData,
    APIErrorNotFoundData,
    APIErrorUnauthorizedData,
    Completion,
    CompletionRequest,
    RawResponse,
)

T = TypeVar("T")

USER_AGENT = f"emissary-python/{__version__}"
API_KEY_HEADER = "X-API-Key"
IDEMPOTENCY_HEADER = "Idempotency-Key"
"""A fresh UUID per logical call, the same on each of its attempts."""
ATTEMPT_HEADER = "X-Emissary-Attempt"
"""The attempt's number within its call: 1, 2, ..."""
REQUEST_ID_HEADER = "X-Request-Id"
"""The server's id of the request it answered (for support tickets)."""
STATIC_HEADERS: Mapping[str, str] = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "User-Agent": USER_AGENT,
}

_COMPLETION_DECODER = msgspec.json.Decoder(Completion)
_ERROR_DECODERS: dict[int, tuple[msgspec.json.Decoder[Any], type[SDKError]]] = {
    400: (msgspec.json.Decoder(APIErrorInvalidInputData), APIErrorInvalidInput),
    401: (msgspec.json.Decoder(APIErrorUnauthorizedData), APIErrorUnauthorized),
    404: (msgspec.json.Decoder(APIErrorNotFoundData), APIErrorNotFound),
}


def path_segment(value: str) -> str:
    """Percent-encode `value` as exactly one path segment that can never be a dot segment.

    Everything outside RFC 3986's unreserved set is encoded (``/ ? # %``, spaces,
    non-ASCII); a segment of only dots has its dots encoded too, so ``..`` cannot climb.
    """
    encoded = quote(value, safe="")
    if encoded.strip(".") == "":
        encoded = encoded.replace(".", "%2E")
    return encoded


class Response(msgspec.Struct, frozen=True):
    """What one attempt received. `truncated`: the body was longer than the client
    accepts, and `content` is its start. (A Struct: built in C, once per attempt.)"""

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: yarl.URL
    truncated: bool = False


class Request(msgspec.Struct, Generic[T], frozen=True):
    """One call, as its resource method describes it: what to send, and (`parse`) what its
    response means. The client's request path adds the server, the headers every request
    carries, retries, timing, logging and tracing. Each operation is a subclass (a Struct,
    so a call's description is built in C)."""

    path: str
    """The encoded path, e.g. ``/v1/projects/p/deployments/d/completions``."""
    body: bytes
    """The JSON body."""
    query: str = ""
    """The encoded query, ``?a=1`` or empty."""
    headers: Mapping[str, str] | None = None
    """The caller's extra headers, sent over the SDK's own (checked), or None."""
    idempotency_key: str | None = None
    """The caller's key, or None for a fresh one."""

    operation: ClassVar[str] = "request"
    """The operation's name in logs and trace spans."""

    def parse(self, response: Response) -> T:
        """The call's result from a response, or the error the response means (raised)."""
        raise NotImplementedError

    def span_name(self) -> str:
        """The name of the call's trace span."""
        return self.operation

    def span_attributes(self) -> dict[str, Any]:
        """The trace span's attributes that come from the call itself."""
        return {"gen_ai.operation.name": self.operation}

    def input_text(self) -> str | None:
        """The call's input text (recorded in a span only when the user opts in)."""
        return None


def parse_completion_response(response: Response) -> Completion:
    """Return the completion a 2XX response carries, or raise the error the response means
    (with the response's ``X-Request-Id`` and ``Retry-After`` on it)."""
    status = response.status
    if 200 <= status < 300 and not response.truncated:
        try:
            return _COMPLETION_DECODER.decode(response.content)
        except (msgspec.DecodeError, RecursionError):
            pass
    raise _error(response)


def _error(response: Response) -> SDKError:
    status, headers, body, url = response.status, response.headers, response.content, response.url
    truncated = response.truncated
    text, raw = _text(body), _raw(status, headers, body, url)
    failure: SDKError | None = None
    if 200 <= status < 300:
        what = (
            f"a body larger than max_response_bytes ({len(body)} bytes read)"
            if truncated
            else "a body that is not the completion JSON"
        )
        failure = ResponseValidationError(
            f"the server answered {status} with {what}", status, text, raw
        )
    elif (known := _ERROR_DECODERS.get(status)) is not None:
        decoder, error_type = known
        with contextlib.suppress(msgspec.DecodeError, RecursionError):  # else a plain one
            failure = error_type(decoder.decode(body), status, text, raw)
    if failure is None:
        failure = SDKError("API error occurred", status, text, raw)
    failure.request_id = headers.get(REQUEST_ID_HEADER)
    failure.retry_after = retry_after_seconds(headers)
    return failure


class CompletionCall(Request[Completion], frozen=True, kw_only=True):
    """A ``deployments.completions.create`` call."""

    project_id: str
    deployment_id: str
    settings: CompletionRequest
    """The checked request body (for the span's attributes)."""

    operation: ClassVar[str] = "text_completion"

    parse = staticmethod(parse_completion_response)

    def span_name(self) -> str:
        return f"text_completion {self.deployment_id}"

    def span_attributes(self) -> dict[str, Any]:
        settings = self.settings
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": self.operation,
            "gen_ai.request.model": self.deployment_id,
            "emissary.project_id": self.project_id,
        }
        for name, value in (
            ("gen_ai.request.max_tokens", settings.max_new_tokens),
            ("gen_ai.request.temperature", settings.temperature),
            ("gen_ai.request.top_p", settings.top_p),
            ("gen_ai.request.top_k", settings.top_k),
        ):
            if value is not None:
                attributes[name] = value
        return attributes

    def input_text(self) -> str | None:
        return self.settings.prompt


def completion_request(
    *,
    project_id: object,
    deployment_id: object,
    request_body: object,
    extra_headers: object = None,
    extra_query: object = None,
    extra_body: object = None,
    idempotency_key: object = None,
) -> CompletionCall:
    """Check a completion call's arguments and describe it; raises `RequestValidationError`
    (before any I/O) for anything that cannot be sent."""
    settings, body = encode_request_body(request_body, extra_body)  # type: ignore[arg-type]
    return CompletionCall(
        completion_path(project_id, deployment_id),
        body,
        "" if extra_query is None else encode_query(extra_query),
        None if extra_headers is None else check_headers(extra_headers, "extra_headers"),
        None if idempotency_key is None else check_idempotency_key(idempotency_key),
        project_id=project_id,  # type: ignore[arg-type]  # checked by completion_path
        deployment_id=deployment_id,  # type: ignore[arg-type]
        settings=settings,
    )


_PATHS: dict[tuple[str, str], str] = {}
_MAX_PATHS = 1024


def completion_path(project_id: object, deployment_id: object) -> str:
    """The encoded path of the completions endpoint for one deployment, each id checked
    and encoded once (then remembered); raises `RequestValidationError` for a bad id."""
    key = (project_id, deployment_id)
    try:
        path = _PATHS.get(key)  # type: ignore[arg-type]
    except TypeError:  # an unhashable id (a list, say): check_id below says what is wrong
        path = None
    if path is None:
        path = (
            f"/v1/projects/{path_segment(check_id(project_id, 'project_id'))}"
            f"/deployments/{path_segment(check_id(deployment_id, 'deployment_id'))}"
            "/completions"
        )
        if len(_PATHS) >= _MAX_PATHS:
            _PATHS.clear()
        _PATHS[key] = path  # type: ignore[index]
    return path


class URLs:
    """The URL of each (server, path, query), built once: encoded, so never re-quoted and
    never normalised (no dot-segment removal)."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._urls: dict[tuple[str, str, str], yarl.URL] = {}
        self._max_entries = max_entries

    def get(self, base: str, path: str, query: str) -> yarl.URL:
        """The URL for `path` and `query` on the server `base`."""
        key = (base, path, query)
        url = self._urls.get(key)
        if url is None:
            url = yarl.URL(base + path + query, encoded=True)
            if len(self._urls) >= self._max_entries:
                self._urls.clear()
            self._urls[key] = url
        return url


_KEYS_PER_FETCH = 256
_KEY_STRIDE = 37
"""A key's 36 characters and a space: `_fetch_keys` lays a batch out in one buffer."""
_HEX_DIGIT = b"0123456789abcdef" * 16
"""A `bytes.translate` table: byte ``b`` becomes the hex digit of its low four bits."""
_VARIANT_DIGIT = b"89ab" * 64
"""Likewise, to ``8``, ``9``, ``a`` or ``b`` by its low two bits (UUID variant 10xx)."""
_fresh_keys: Iterator[str] = iter(())


def _fetch_keys() -> Iterator[str]:
    """`_KEYS_PER_FETCH` UUID4 strings from one `os.urandom` call.

    Each random byte becomes one hex digit (its low four bits) by `bytes.translate`; the
    fixed characters (dashes, the version ``4``, the variant's top bits) are then written
    into every key at once with strided slices, and a space separates the keys. All of it
    runs in C, with one system call per batch instead of one per key.
    """
    n, stride = _KEYS_PER_FETCH, _KEY_STRIDE
    raw = os.urandom(n * stride)
    text = bytearray(raw.translate(_HEX_DIGIT))
    for dash in (8, 13, 18, 23):
        text[dash::stride] = b"-" * n
    text[14::stride] = b"4" * n  # version 4
    text[19::stride] = raw[19::stride].translate(_VARIANT_DIGIT)
    text[36::stride] = b" " * n
    return iter(text.decode("ascii").split())


def new_idempotency_key() -> str:
    """A random UUID4 string, as ``str(uuid.uuid4())`` gives, from `os.urandom`.

    Keys are drawn 256 at a time (one system call instead of one per key), handed out
    once each, also across threads (a list iterator's ``next`` is atomic under the GIL),
    and never shared with a forked child (its batch is dropped at fork).
    """
    global _fresh_keys
    key = next(_fresh_keys, None)
    if key is None:
        _fresh_keys = keys = _fetch_keys()
        key = next(keys)
    return key


def _drop_keys_after_fork() -> None:
    global _fresh_keys
    _fresh_keys = iter(())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_keys_after_fork)


def session_headers(api_key: str | None) -> dict[str, str]:
    """The headers every request carries: `STATIC_HEADERS` and, if given, the API key."""
    headers = dict(STATIC_HEADERS)
    if api_key is not None:
        headers[API_KEY_HEADER] = api_key
    return headers


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def _raw(status: int, headers: Mapping[str, str], body: bytes, url: yarl.URL | str) -> RawResponse:
    return RawResponse(status, CIMultiDict(headers), body, str(url))


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The wait a response asks for, in seconds: ``retry-after-ms``, else ``Retry-After``
    (delta-seconds or an HTTP date, `now` being the wall-clock time). Garbage gives None.
    """
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            ms = float(value)
        except ValueError:
            ms = math.nan
        if math.isfinite(ms) and ms >= 0:
            return ms / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    import email.utils  # only for HTTP dates: keeps `import emissary` light

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    wall = time.time() if now is None else now
    return max(0.0, when.timestamp() - wall)
