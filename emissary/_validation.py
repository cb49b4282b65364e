"""Checks on call arguments, turning msgspec's findings into errors a user can act on.

Every error names the field, says what is allowed and, for a misspelt field, suggests the
closest real one. All of it runs before any network I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from .errors import RequestTypeError, RequestValidationError
from .models import GetCompletionsFromDeploymentRequestBody as RequestBody

_BODY_FIELDS: tuple[str, ...] = RequestBody.__struct_fields__
_ALLOWED: dict[str, str] = {
    "prompt": "a string",
    "temperature": "a finite number >= 0",
    "max_new_tokens": "an integer >= 1",
    "top_p": "a number between 0 and 1",
    "top_k": "an integer >= 0",
    "no_repeat_ngram_size": "an integer >= 0",
    "do_sample": "true or false",
}
_AT_FIELD = re.compile(r"at `\$\.(\w+)`")
_UNKNOWN = re.compile(r"unknown field `([^`]*)`")
_MISSING = re.compile(r"missing required field `([^`]*)`")
_ENCODER = msgspec.json.Encoder()


def check_id(value: object, name: str) -> str:
    """A project or deployment id: a non-empty string."""
    if not isinstance(value, str):
        raise RequestTypeError(
            f"{name} must be a non-empty string, got {type(value).__name__}", field=name
        )
    if not value:
        raise RequestValidationError(f"{name} must be a non-empty string, got ''", field=name)
    return value


def encode_request_body(request_body: object) -> bytes:
    """Check a request body (dict or Struct) and return its JSON; unset fields left out."""
    if type(request_body) is dict:  # the usual case, without an ABC instance check
        given: Mapping[Any, Any] = request_body
    elif isinstance(request_body, RequestBody):
        # A Struct is built without checking its types or Meta ranges: check them here.
        given = msgspec.structs.asdict(request_body)
    elif isinstance(request_body, Mapping):
        given = dict(request_body)
    else:
        raise RequestTypeError(
            "request_body must be a dict or an "
            "emissary.models.GetCompletionsFromDeploymentRequestBody, "
            f"got {type(request_body).__name__}",
            field="request_body",
        )
    try:
        # None is every optional field's default, so it is left out of the JSON (not set).
        # msgspec.convert is strict by default (no "16" for 16); passing strict=True anyway
        # would send it down its slow keyword-argument parsing, 40 % of the call's cost.
        body = msgspec.convert(given, RequestBody)
    except msgspec.ValidationError:
        # Explain it as if None fields were absent: a None prompt is a missing prompt.
        fields = {k: v for k, v in given.items() if v is not None}
        try:
            body = msgspec.convert(fields, RequestBody)
        except msgspec.ValidationError as exc:
            raise _body_error(exc, fields) from None
    return _ENCODER.encode(body)


def _body_error(exc: msgspec.ValidationError, body: object) -> RequestValidationError:
    text = str(exc)
    if match := _UNKNOWN.search(text):
        name = match.group(1)
        message = f"request_body.{name} is not a field of the request body"
        import difflib  # error path only: keeps `import emissary` light

        close = difflib.get_close_matches(name, _BODY_FIELDS, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]!r}?"
        message += f" Allowed fields: {', '.join(_BODY_FIELDS)}."
        return RequestValidationError(message, field=f"request_body.{name}")
    if match := _MISSING.search(text):
        name = match.group(1)
        return RequestValidationError(
            f"request_body.{name} is required ({_ALLOWED.get(name, 'a value')})",
            field=f"request_body.{name}",
        )
    if match := _AT_FIELD.search(text):
        name = match.group(1)
        value = _field_value(body, name)
        shown = f"{value!r} ({type(value).__name__})"
        message = f"request_body.{name} must be {_ALLOWED.get(name, 'valid')}, got {shown}"
        if "got `" in text:
            return RequestTypeError(message, field=f"request_body.{name}")
        return RequestValidationError(message, field=f"request_body.{name}")
    return RequestValidationError(f"request_body is invalid: {text}", field="request_body")


def _field_value(body: object, name: str) -> Any:
    if isinstance(body, Mapping):
        return body.get(name)
    return getattr(body, name, None)
