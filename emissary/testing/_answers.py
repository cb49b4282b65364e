"""What the emulator sends back: results as JSON, and the spec's error bodies.

Errors are ``{"status": ..., "error": ...}``, plus a ``"code"`` on a 404 (the spec's
``ApiErrorNotFound``); a handler raises `ApiError` and the server turns it into that.
Results are the SDK's own (lenient) model Structs, sent without the fields the emulator has
no value for: every field of a response is optional in the spec, and leaving it out is
what a server does, rather than sending ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from aiohttp import web

_ENCODER = msgspec.json.Encoder()


class ApiError(Exception):
    """An answer other than success, raised by a handler: `status`, the message `error`,
    the `code` (404s), any extra `headers` (a 405's ``Allow``), and whether to `close` the
    connection after it (a request whose body could not all be read)."""

    def __init__(
        self,
        status: int,
        error: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.code = code
        self.headers = dict(headers or {})
        self.close = close

    def response(self) -> web.Response:
        """The error as the spec's JSON body."""
        response = error_response(self.status, self.error, code=self.code)
        response.headers.update(self.headers)
        if self.close:
            response.force_close()
        return response


def not_found(kind: str, name: str, project_id: str | None = None) -> ApiError:
    """The 404 for a `kind` (``"dataset"``, ...) that does not exist, coded
    ``<kind>_not_found``."""
    where = "" if project_id is None else f" in project {project_id!r}"
    return ApiError(
        404, f"{kind.replace('_', ' ')} {name!r} not found{where}", code=f"{kind}_not_found"
    )


def invalid(message: str) -> ApiError:
    """A 400: the request (its body, mostly) is not acceptable, for the reason given."""
    return ApiError(400, message)


def json_response(status: int, payload: Any) -> web.Response:
    """`payload` (builtins or msgspec Structs) as a JSON response."""
    return web.Response(
        status=status, body=_ENCODER.encode(payload), content_type="application/json"
    )


def error_response(status: int, message: str, *, code: str | None = None) -> web.Response:
    """The spec's error body: ``{"status", "error"}``, and ``"code"`` when given."""
    payload: dict[str, Any] = {"status": status, "error": message}
    if code is not None:
        payload["code"] = code
    return json_response(status, payload)


def result_response(status: int, result: object) -> web.Response:
    """An operation's result with its success `status`: no body for None (a 204), else
    the result as JSON without its unset (None) fields."""
    if result is None:
        return web.Response(status=status)
    return json_response(status, _without_nulls(msgspec.to_builtins(result)))


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value
