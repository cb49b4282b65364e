"""The completions operation without I/O: what to send, and what a response means.

`CompletionURLs`, `session_headers` and `new_idempotency_key` build the request;
`parse_completion_response` turns (status, headers, body bytes) into a `Completion` or
raises the documented error. Pure functions, tested without a network.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import msgspec
import yarl
from multidict import CIMultiDict

from ._validation import check_id
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
    RawResponse,
)

USER_AGENT = f"emissary-python/{__version__}"
API_KEY_HEADER = "X-API-Key"
IDEMPOTENCY_HEADER = "Idempotency-Key"
"""A fresh UUID per logical call, the same on each of its attempts."""
ATTEMPT_HEADER = "X-Emissary-Attempt"
"""The attempt's number within its call: 1, 2, ..."""
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


def completion_path(project_id: str, deployment_id: str) -> str:
    """The encoded path of the completions endpoint for one deployment."""
    return (
        f"/v1/projects/{path_segment(project_id)}"
        f"/deployments/{path_segment(deployment_id)}/completions"
    )


class CompletionURLs:
    """The encoded URL of each (server, project, deployment), built and checked once."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._urls: dict[tuple[str, str, str], yarl.URL] = {}
        self._max_entries = max_entries

    def get(self, base: str, project_id: str, deployment_id: str) -> yarl.URL:
        """The URL to POST to; raises `RequestValidationError` for a bad id."""
        key = (base, project_id, deployment_id)
        try:
            url = self._urls.get(key)
        except TypeError:  # an unhashable id (a list, say): check_id below says what is wrong
            url = None
        if url is None:
            path = completion_path(
                check_id(project_id, "project_id"), check_id(deployment_id, "deployment_id")
            )
            url = yarl.URL(base + path, encoded=True)  # encoded: no re-quoting, no dot removal
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
    runs in C: about three times cheaper than formatting each key in Python.
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


def parse_completion_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    url: yarl.URL | str,
    truncated: bool = False,
) -> Completion:
    """Return the completion a 2XX response carries, or raise the error the response means.

    `truncated` says the body was longer than the client accepts and `body` is its start.
    """
    if 200 <= status < 300:
        if truncated:
            raise ResponseValidationError(
                f"the server answered {status} with a body larger than max_response_bytes "
                f"({len(body)} bytes read)",
                status,
                _text(body),
                _raw(status, headers, body, url),
            )
        try:
            return _COMPLETION_DECODER.decode(body)
        except (msgspec.DecodeError, RecursionError):
            pass
        raise ResponseValidationError(
            f"the server answered {status} with a body that is not the completion JSON",
            status,
            _text(body),
            _raw(status, headers, body, url),
        )
    raw = _raw(status, headers, body, url)
    known = _ERROR_DECODERS.get(status)
    failure: SDKError | None = None
    if known is not None:
        decoder, error_type = known
        with contextlib.suppress(msgspec.DecodeError, RecursionError):  # else a plain one
            failure = error_type(decoder.decode(body), status, _text(body), raw)
    if failure is None:
        failure = SDKError("API error occurred", status, _text(body), raw)
    failure.retry_after = retry_after_seconds(headers)
    raise failure


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
