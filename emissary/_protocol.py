"""The API without I/O: what a call sends, and what a response means.

A resource method hands its operation (a row of `emissary._operations`), the path's ids,
the request body and the call's options to `build_request`, which checks them all (before
any I/O) and describes the call as a `Request`: the encoded path and query, the body (JSON
bytes, or a multipart `Multipart`), the call's own headers. The client's one request path
(`AsyncEmissaryClient._request`) sends it and hands each `Response` to `Request.parse`,
which returns the result or raises the documented error. `session_headers` and
`new_idempotency_key` make the headers. An error built here says whether the call may have
taken effect on the server (`maybe_committed`: a 5XX but 503, a bad 2XX body). Pure
functions, tested without a network.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import quote

import msgspec
import yarl
from multidict import CIMultiDict

from ._operations import MULTIPART, Operation
from ._upload import Multipart, multipart_body
from ._validation import (
    check_headers,
    check_id,
    check_idempotency_key,
    encode_query,
    encode_request_body,
    shown,
)
from ._version import __version__
from .errors import (
    APIErrorInvalidInput,
    APIErrorNotFound,
    APIErrorUnauthorized,
    PayloadTooLargeError,
    RequestTypeError,
    ResponseValidationError,
    SDKError,
)
from .models import (
    APIErrorInvalidInputData,
    APIErrorNotFoundData,
    APIErrorUnauthorizedData,
    RawResponse,
)

if TYPE_CHECKING:
    from ._batch import Pacer
    from ._retry import RetryRuntime
    from .utils import RetryConfig

T = TypeVar("T")

USER_AGENT = f"emissary-python/{__version__}"
API_KEY_HEADER = "X-API-Key"
IDEMPOTENCY_HEADER = "Idempotency-Key"
"""A fresh UUID per logical call (of a POST), the same on each of its attempts."""
ATTEMPT_HEADER = "X-Emissary-Attempt"
"""The attempt's number within its call: 1, 2, ..."""
REQUEST_ID_HEADER = "X-Request-Id"
"""The server's id of the request it answered (for support tickets)."""
CONTENT_TYPE_HEADER = "Content-Type"
JSON = "application/json"
STATIC_HEADERS: Mapping[str, str] = {"Accept": JSON, "User-Agent": USER_AGENT}
"""Headers every request carries. (Content-Type is the request's own: a JSON body's, a
multipart body's with its boundary, or none.)"""

_ERROR_DECODERS: dict[int, tuple[msgspec.json.Decoder[Any], type[SDKError]]] = {
    400: (msgspec.json.Decoder(APIErrorInvalidInputData), APIErrorInvalidInput),
    401: (msgspec.json.Decoder(APIErrorUnauthorizedData), APIErrorUnauthorized),
    404: (msgspec.json.Decoder(APIErrorNotFoundData), APIErrorNotFound),
}
_NOTHING_DONE = frozenset({408, 429, 503})
"""Statuses that say the server did not process the request (it timed out reading it, or
refused it for now): the call cannot have taken effect."""


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


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """One call, as `build_request` describes it: what to send, and (`parse`) what its
    response means. The client's request path adds the server, the headers every request
    carries, retries, timing, logging and tracing. (A Struct: built in C, once per call.)"""

    operation: Operation[Any]
    """Which operation (its method, result type and retry kind)."""
    path: str
    """The encoded path, e.g. ``/v1/projects/p/deployments/d/completions``."""
    body: bytes | Multipart | None = None
    """The JSON body, a multipart upload, or nothing."""
    content_type: str | None = None
    """The body's media type."""
    query: str = ""
    """The encoded query, ``?a=1`` or empty."""
    headers: Mapping[str, str] | None = None
    """The caller's extra headers, sent over the SDK's own (checked), or None."""
    idempotency_key: str | None = None
    """The caller's key, or None for a fresh one (POSTs only)."""
    ids: tuple[str, ...] = ()
    """The path's parameters, in the operation's order."""
    settings: Any = None
    """The checked JSON body (a Struct), for the trace span's attributes."""
    missing_ok: bool = False
    """A DELETE whose resource is already gone (404) succeeds."""
    stall_timeout_s: float | None = None
    """An upload fails after this long without a byte sent (``datasets.upload``), instead
    of after the attempt's time limit; None: the limit, as any call."""
    on_progress: Any = None
    """An upload's progress callable, given a `models.UploadProgress` per chunk sent."""

    @property
    def method(self) -> str:
        """The HTTP method."""
        return self.operation.method

    @property
    def idempotent(self) -> bool:
        """Whether an attempt that may have taken effect can be made again: any call but a
        create without the caller's own ``idempotency_key``."""
        return self.operation.kind != "create" or self.idempotency_key is not None

    @property
    def replayable(self) -> bool:
        """Whether the body can be sent again: not an upload from a source that can be
        read once only (a pipe), which is sent once."""
        return not isinstance(self.body, Multipart) or self.body.source.replayable

    def gone(self, error: Exception) -> bool:
        """Whether `error` says this call's resource is not there, where that is what a
        DELETE asked for (`missing_ok`, or an earlier attempt that may have deleted it)."""
        return self.operation.kind == "delete" and isinstance(error, APIErrorNotFound)

    def parse(self, response: Response) -> Any:
        """The call's result from a response, or the error the response means (raised)."""
        return parse(self.operation, response)

    def span_name(self) -> str:
        """The call's trace span name: ``chat {deployment}`` for inference (the GenAI
        conventions), else the operation (``deployments.get``)."""
        gen_ai = self.operation.gen_ai
        if gen_ai is not None:
            return f"{gen_ai} {self.ids[-1]}"
        return self.operation.name

    def span_attributes(self) -> dict[str, Any]:
        """The trace span's attributes that come from the call itself: the operation, the
        ids, and for inference the GenAI conventions' model and settings."""
        operation = self.operation
        attributes: dict[str, Any] = {"emissary.operation": operation.name}
        for name, value in zip(operation.parameters, self.ids, strict=True):
            attributes[f"emissary.{name}"] = value
        if operation.gen_ai is None:
            return attributes
        attributes["gen_ai.operation.name"] = operation.gen_ai
        attributes["gen_ai.request.model"] = self.ids[-1]
        settings = self.settings
        for name, field in _GEN_AI_SETTINGS:
            setting = getattr(settings, field, None)
            if setting is not None:
                attributes[name] = setting
        return attributes

    def input_messages(self) -> list[tuple[str, str]] | None:
        """The call's input as (role, text) messages (recorded in a span only when the
        user opts in)."""
        settings = self.settings
        messages = getattr(settings, "messages", None)
        if messages is not None:
            return [(message.role, message.content) for message in messages]
        texts = [
            getattr(settings, field, None)
            for field in ("prompt", "source_sentence", "target_sentence")
        ]
        return [("user", text) for text in texts if isinstance(text, str)] or None


_GEN_AI_SETTINGS = (
    ("gen_ai.request.max_tokens", "max_new_tokens"),
    ("gen_ai.request.temperature", "temperature"),
    ("gen_ai.request.top_p", "top_p"),
    ("gen_ai.request.top_k", "top_k"),
)


class RequestPath(Protocol):
    """What resources, batches and waits need of a client: its one request path, and
    the clock, sleep and randomness its retries use (`AsyncEmissaryClient` is one)."""

    _retry_runtime: RetryRuntime

    async def _request(
        self,
        request: Request,
        *,
        retries: RetryConfig | None,
        server_url: str | None,
        timeout_ms: float | None,
        raw: bool = False,
        pacer: Pacer | None = None,
        not_after: float | None = None,
    ) -> Any: ...


def parse(operation: Operation[T], response: Response) -> T:
    """Return the result a 2XX response carries, or raise the error the response means
    (with the response's ``X-Request-Id`` and ``Retry-After`` on it)."""
    if 200 <= response.status < 300 and not response.truncated:
        decoder = operation.decoder
        if decoder is None:
            return None  # type: ignore[return-value]  # Operation[None]: nothing to read
        try:
            return decoder.decode(response.content)
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
            else "a body that is not the documented JSON"
        )
        failure = ResponseValidationError(
            f"the server answered {status} with {what}", status, text, raw
        )
    elif (known := _ERROR_DECODERS.get(status)) is not None:
        decoder, error_type = known
        with contextlib.suppress(msgspec.DecodeError, RecursionError):  # else a plain one
            failure = error_type(decoder.decode(body), status, text, raw)
    elif status == 413:
        failure = PayloadTooLargeError(
            "the request is larger than the server takes", 413, text, raw
        )
    if failure is None:
        failure = SDKError("API error occurred", status, text, raw)
    failure.request_id = headers.get(REQUEST_ID_HEADER)
    failure.retry_after = retry_after_seconds(headers)
    failure.maybe_committed = (status >= 500 and status not in _NOTHING_DONE) or status < 300
    return failure


# --- building a call ------------------------------------------------------------------------

_OPTIONS = frozenset({"retries", "server_url", "timeout_ms", "extra_headers", "extra_query"})
"""Options every call takes (`CallOptions`)."""
_POST_OPTIONS = _OPTIONS | {"idempotency_key"}
_JSON_POST_OPTIONS = _POST_OPTIONS | {"extra_body"}


def allowed_options(operation: Operation[Any]) -> frozenset[str]:
    """The per-call options `operation` takes: ``idempotency_key`` on POSTs, ``extra_body``
    where the body is JSON."""
    if operation.method != "POST":
        return _OPTIONS
    return _POST_OPTIONS if operation.body in (None, MULTIPART) else _JSON_POST_OPTIONS


def build_request(
    operation: Operation[Any],
    ids: tuple[object, ...],
    body: object,
    options: Mapping[str, Any],
    *,
    missing_ok: bool = False,
    stall_timeout_s: float | None = None,
    on_progress: Any = None,
) -> Request:
    """Check a call's arguments and describe it; raises `RequestValidationError` (before
    any I/O) for anything that cannot be sent."""
    path = fill_path(operation, ids)
    if options and not options.keys() <= allowed_options(operation):
        raise _unexpected_option(operation, options)
    get = options.get
    kind = operation.body
    settings: Any = None
    content_type: str | None = None
    payload: bytes | Multipart | None = None
    if isinstance(kind, str):  # MULTIPART
        payload = multipart_body(body, new_idempotency_key().replace("-", ""))
        content_type = payload.content_type
    elif kind is not None:
        if body is None and operation.kind == "create":  # an optional body: sent empty
            body = {}
        settings, payload = encode_request_body(body, kind, get("extra_body"))
        content_type = JSON
    extra_query, extra_headers, key = (
        get("extra_query"),
        get("extra_headers"),
        get("idempotency_key"),
    )
    return Request(
        operation=operation,
        path=path,
        body=payload,
        content_type=content_type,
        query="" if extra_query is None else encode_query(extra_query),
        headers=None if extra_headers is None else check_headers(extra_headers, "extra_headers"),
        idempotency_key=None if key is None else check_idempotency_key(key),
        ids=ids,  # type: ignore[arg-type]  # checked by fill_path
        settings=settings,
        missing_ok=missing_ok,
        stall_timeout_s=stall_timeout_s,
        on_progress=on_progress,
    )


def _unexpected_option(operation: Operation[Any], options: Mapping[str, Any]) -> RequestTypeError:
    import difflib  # the error path only

    allowed = sorted(allowed_options(operation))
    name = next(str(key) for key in options if key not in allowed)
    close = difflib.get_close_matches(name, [*allowed, "extra_body", "idempotency_key"], n=1)
    hint = ""
    if close and close[0] not in allowed:
        hint = f": {close[0]} is not an option of {operation.name}"
    elif close:
        hint = f"; did you mean {close[0]!r}?"
    return RequestTypeError(
        f"{operation.name}() got an unexpected argument {shown(name)}{hint} "
        f"(its options: {', '.join(allowed)})",
        field=name,
    )


_PATHS: dict[tuple[Operation[Any], tuple[object, ...]], str] = {}
_MAX_PATHS = 1024


def fill_path(operation: Operation[Any], ids: tuple[object, ...]) -> str:
    """`operation`'s encoded path with `ids` in it, each checked and encoded as one segment
    (then remembered); raises `RequestValidationError` for a bad id."""
    key = (operation, ids)
    try:
        path = _PATHS.get(key)
    except TypeError:  # an unhashable id (a list, say): check_id below says what is wrong
        path = None
    if path is None:
        segments = {
            name: path_segment(check_id(value, name))
            for name, value in zip(operation.parameters, ids, strict=True)
        }
        path = operation.path.format_map(segments)
        if len(_PATHS) >= _MAX_PATHS:
            _PATHS.clear()
        _PATHS[key] = path
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
