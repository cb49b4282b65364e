"""Checks on call arguments, turning msgspec's findings into errors a user can act on.

Every error names the field, says what is allowed and, for a misspelt field, suggests the
closest real one. All of it runs before any network I/O, and building a message can never
fail: values are shown through `shown`, which survives huge integers, deep nesting, lone
surrogates and broken ``__repr__`` methods.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec

from .errors import RequestTypeError, RequestValidationError
from .models import GetChatCompletionsFromDeploymentRequestBody as ChatBody

_ALLOWED: dict[str, str] = {
    "prompt": "a string",
    "temperature": "a finite number >= 0",
    "max_new_tokens": "an integer from 1 to 2147483647 (an int32)",
    "top_p": "a number between 0 and 1",
    "top_k": "an integer from 0 to 2**63 - 1",
    "no_repeat_ngram_size": "an integer from 0 to 2**63 - 1",
    "do_sample": "true or false",
    "messages": "a list of messages, each {'role': ..., 'content': ...}",
    "role": "'system', 'user' or 'assistant'",
    "content": "a string",
    "streaming": "false (or left out)",
    "source_sentence": "a string",
    "target_sentence": "a string",
    "cosine": "true or false",
    "manhattan": "true or false",
    "euclidean": "true or false",
    "name": "a string",
    "description": "a string",
    "base_model": "a base model's name (a string; see base_models.list())",
    "train_dataset_id": "a dataset id (a string)",
    "test_dataset_id": "a dataset id (a string)",
    "train_test_split_ratio": "a number strictly between 0 and 1",
    "parameters": "a mapping of names to strings or numbers (not booleans, not nested)",
    "hf_model_link": "a string (a Hugging Face model's URL)",
    "training_job_id": "a training job id (a string)",
    "checkpoint": "a checkpoint's number (an integer >= 0)",
    "server_type": "'serverless' or 'on-demand'",
}
"""What each request body field takes, for messages (a field name means the same in every
body that has it)."""
_AT = re.compile(r"at `\$([^`]*)`")
_UNKNOWN = re.compile(r"unknown field `([^`]*)`")
_MISSING = re.compile(r"missing required field `([^`]*)`")
_STEP = re.compile(r"\.(\w+)|\[(\d+|\.\.\.)\]")
"""One step of a msgspec error path: ``.name`` or ``[0]`` (``[...]``: a mapping's value)."""
_ENCODER = msgspec.json.Encoder()
S = TypeVar("S", bound=msgspec.Struct)
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel = 3


def shown(value: object) -> str:
    """A short repr of `value` for a message; never raises."""
    if isinstance(value, int) and value.bit_length() > 64:  # its repr may be refused
        return f"<an integer of {value.bit_length()} bits>"
    try:
        return _REPR.repr(value)
    except Exception:  # deep nesting, a __repr__ that raises, ...
        return f"<{type(value).__name__} object that cannot be shown>"


def unencodable(text: str) -> str | None:
    """Where `text` cannot be encoded as UTF-8 (a lone surrogate), described; else None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"a lone surrogate {shown(text[exc.start])} at position {exc.start}"
    return None


def check_id(value: object, name: str) -> str:
    """A project or deployment id: a non-empty string that can be sent as UTF-8."""
    if not isinstance(value, str):
        raise RequestTypeError(
            f"{name} must be a non-empty string, got {type(value).__name__}", field=name
        )
    if not value:
        raise RequestValidationError(f"{name} must be a non-empty string, got ''", field=name)
    if (where := unencodable(value)) is not None:
        raise RequestValidationError(
            f"{name} cannot be sent: it has {where}, which UTF-8 cannot encode", field=name
        )
    return value


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""An HTTP header name (RFC 9110's ``token``)."""
_FORBIDDEN_IN_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""Control characters, which no header value may hold (a tab may)."""
_FRAMING = frozenset({"content-length", "transfer-encoding"})
"""Headers that frame the body: the SDK sets them from the body it sends."""


def check_headers(value: object, name: str) -> dict[str, str]:
    """Extra or default headers: a mapping of strings; names are HTTP tokens (no space,
    colon, control or non-ASCII character), values hold no control character but a tab
    (so a header can never be split into two) and encode as UTF-8. ``Content-Length`` and
    ``Transfer-Encoding`` are refused: they must match the body the SDK sends."""
    if not isinstance(value, Mapping):
        raise RequestTypeError(
            f"{name} must be a mapping of header names to values, got {type(value).__name__}",
            field=name,
        )
    headers: dict[str, str] = {}
    for key, item in value.items():
        field = f"{name}.{shown(key)}"
        for part, what in ((key, "name"), (item, "value")):
            if not isinstance(part, str):
                raise RequestTypeError(
                    f"{name}: a header {what} must be a string, got {shown(part)} "
                    f"({type(part).__name__})",
                    field=field,
                )
        if not key:
            raise RequestValidationError(f"{name}: a header name cannot be empty", field=field)
        if not _TOKEN.fullmatch(key):
            raise RequestValidationError(
                f"{name}: {shown(key)} is not a valid header name (letters, digits and "
                "!#$%&'*+-.^_`|~ only: no space, colon, control or non-ASCII character)",
                field=field,
            )
        if key.lower() in _FRAMING:
            raise RequestValidationError(
                f"{name}: {key} cannot be set: the SDK sets it from the body it sends",
                field=field,
            )
        if _FORBIDDEN_IN_VALUE.search(item):
            raise RequestValidationError(
                f"{name}: the value of {key} has a control character (a line break, NUL, "
                f"...) in {shown(item)}, which could split or corrupt the request",
                field=field,
            )
        if (where := unencodable(item)) is not None:
            raise RequestValidationError(
                f"{name}: the value of {key} has {where}, which UTF-8 cannot encode",
                field=field,
            )
        headers[key] = item
    return headers


def encode_query(value: object) -> str:
    """Extra query parameters as an encoded ``?a=1&b=2`` (percent-encoded; empty if none)."""
    if not isinstance(value, Mapping):
        raise RequestTypeError(
            f"extra_query must be a mapping of strings to strings, got {type(value).__name__}",
            field="extra_query",
        )
    pairs = []
    for key, item in value.items():
        for part in (key, item):
            if not isinstance(part, str):
                raise RequestTypeError(
                    f"extra_query: names and values must be strings, got {shown(part)} "
                    f"({type(part).__name__})",
                    field=f"extra_query.{shown(key)}",
                )
            if (where := unencodable(part)) is not None:
                raise RequestValidationError(
                    f"extra_query: {shown(key)} has {where}, which UTF-8 cannot encode",
                    field=f"extra_query.{shown(key)}",
                )
        pairs.append(f"{quote(key, safe='')}={quote(item, safe='')}")
    return "?" + "&".join(pairs) if pairs else ""


def check_idempotency_key(value: object) -> str:
    """A caller's idempotency key: a non-empty printable string (it is sent as a header)."""
    if not isinstance(value, str):
        raise RequestTypeError(
            f"idempotency_key must be a string, got {type(value).__name__}",
            field="idempotency_key",
        )
    if not value or not value.isprintable() or unencodable(value) is not None:
        raise RequestValidationError(
            "idempotency_key must be a non-empty string of printable characters, got "
            f"{shown(value)}",
            field="idempotency_key",
        )
    return value


_ENCODING_ERRORS = (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError)
"""What encoding a value as JSON may raise: an unsupported type, a lone surrogate, an
integer too large for JSON or for ``int``'s string conversion, nesting too deep."""


def encode_request_body(
    request_body: object, body_type: type[S], extra_body: Mapping[str, Any] | None = None
) -> tuple[S, bytes]:
    """Check a request body (dict or Struct) against `body_type` and return it as a Struct
    and as JSON (unset fields left out), with `extra_body`'s fields merged in at the top
    level unchecked."""
    if type(request_body) is dict:  # the usual case, without an ABC instance check
        given: Any = request_body
    elif isinstance(request_body, msgspec.Struct | Mapping):
        try:
            # A Struct is built without checking its types or Meta ranges, nested ones
            # included: check its values as if they came as a dict.
            given = msgspec.to_builtins(request_body)
        except Exception as exc:
            raise RequestTypeError(
                f"request_body could not be read ({type(exc).__name__}: {shown(exc)})",
                field="request_body",
            ) from None
    else:
        raise RequestTypeError(
            f"request_body must be a dict or an emissary.models.{body_type.__name__}, "
            f"got {type(request_body).__name__}",
            field="request_body",
        )
    if body_type is ChatBody and type(request_body) is dict:
        given = _plain_messages(given)
    try:
        # None is every optional field's default, so it is left out of the JSON (not set).
        # msgspec.convert is strict by default (no "16" for 16); passing strict=True anyway
        # would send it down its slow keyword-argument parsing (a test checks strictness).
        body = msgspec.convert(given, body_type)
        if extra_body is None:
            encoded = _ENCODER.encode(body)
        else:
            _ENCODER.encode(body)  # the body's own values encode (no lone surrogate, say)
    except (msgspec.ValidationError, *_ENCODING_ERRORS):
        raise _explain(given, body_type) from None
    if isinstance(body, ChatBody) and body.streaming:
        raise RequestValidationError(
            "request_body.streaming=True is not supported: the API defines no streaming "
            "response format (extra_body={'streaming': True} sends it all the same)",
            field="request_body.streaming",
        )
    if extra_body is None:
        return body, encoded
    return body, _with_extra_body(body, extra_body)


def _plain_messages(given: Any) -> Any:
    """A chat body whose messages may be Structs (`models.Messages`, never checked when
    built), with every message as a dict, so that each is checked."""
    messages = given.get("messages") if isinstance(given, dict) else None
    if isinstance(messages, list) and any(isinstance(m, msgspec.Struct) for m in messages):
        plain = [msgspec.to_builtins(m) if isinstance(m, msgspec.Struct) else m for m in messages]
        return {**given, "messages": plain}
    return given


def _with_extra_body(body: msgspec.Struct, extra_body: object) -> bytes:
    """The body's JSON with `extra_body`'s fields merged in (they win over the body's)."""
    if not isinstance(extra_body, Mapping):
        raise RequestTypeError(
            f"extra_body must be a mapping of field names to values, got "
            f"{type(extra_body).__name__}",
            field="extra_body",
        )
    merged: dict[str, Any] = msgspec.to_builtins(body)
    for key, value in extra_body.items():
        if not isinstance(key, str) or unencodable(key) is not None:
            raise RequestTypeError(
                f"extra_body's field names must be strings UTF-8 can encode, got {shown(key)}",
                field="extra_body",
            )
        merged[key] = value
    try:
        return _ENCODER.encode(merged)
    except _ENCODING_ERRORS:
        pass
    for key, value in extra_body.items():  # which one? (the error path only)
        try:
            _ENCODER.encode([value])  # one level deeper, as in the merged body
        except _ENCODING_ERRORS as exc:
            raise _unencodable(f"extra_body.{key}", value, exc) from None
    raise RequestTypeError("extra_body cannot be encoded as JSON", field="extra_body")


def _unencodable(field: str, value: object, exc: BaseException) -> RequestTypeError:
    """The error for a value that cannot be sent as JSON, saying why."""
    if isinstance(exc, RecursionError):
        why = "it is nested too deeply"
    elif isinstance(value, int) and not isinstance(value, bool):
        why = "an integer this large cannot be converted to text"
    else:
        why = f"{type(value).__name__} is not a JSON type"
    return RequestTypeError(
        f"{field} cannot be encoded as JSON ({why}): {shown(value)}", field=field
    )


def _explain(given: Any, body_type: type[msgspec.Struct]) -> RequestValidationError:
    """The error for a body that did not convert or encode, as if None fields were absent
    (a None prompt is a missing prompt)."""
    if not isinstance(given, Mapping):
        return RequestTypeError(
            f"request_body must be a dict or an emissary.models.{body_type.__name__}, "
            f"got {type(given).__name__}",
            field="request_body",
        )
    fields = {k: v for k, v in given.items() if v is not None}
    for key in fields:
        if not isinstance(key, str):
            return RequestTypeError(
                f"request_body's field names must be strings, got {shown(key)} "
                f"({type(key).__name__})",
                field="request_body",
            )
        if (where := unencodable(key)) is not None:
            return RequestValidationError(
                f"request_body has a field name with {where}, which UTF-8 cannot encode",
                field="request_body",
            )
    # msgspec cannot build some of its messages around a lone surrogate: check the types
    # with such strings stood in for.
    clean = {k: "?" if isinstance(v, str) and unencodable(v) else v for k, v in fields.items()}
    try:
        msgspec.convert(clean, body_type)
    except msgspec.ValidationError as exc:
        return _body_error(exc, fields, body_type)
    except (UnicodeError, *_ENCODING_ERRORS):
        pass
    for key, value in fields.items():  # valid, but did not encode
        if isinstance(value, str) and (where := unencodable(value)) is not None:
            return RequestValidationError(
                f"request_body.{key} cannot be sent: it has {where}, which UTF-8 cannot encode",
                field=f"request_body.{key}",
            )
    return RequestValidationError("request_body cannot be encoded as JSON", field="request_body")


def _body_error(
    exc: msgspec.ValidationError, body: Mapping[Any, Any], body_type: type[msgspec.Struct]
) -> RequestValidationError:
    """msgspec's finding, said in terms of the call: the field's path (``request_body.
    messages[0].role``), what it takes, what it got, and for a misspelt field the closest
    real one."""
    text = str(exc)
    at = _AT.search(text)
    path = at.group(1) if at else ""
    where = "request_body" + path.replace("[...]", "")
    if match := _UNKNOWN.search(text):
        name = match.group(1)
        allowed = _fields_at(body_type, path)
        message = f"{where}.{name} is not a field of {_what(path)}"
        import difflib  # error path only: keeps `import emissary` light

        close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]!r}?"
        message += f" Allowed fields: {', '.join(allowed)}."
        return RequestValidationError(message, field=f"{where}.{name}")
    if match := _MISSING.search(text):
        name = match.group(1)
        return RequestValidationError(
            f"{where}.{name} is required ({_ALLOWED.get(name, 'a value')})",
            field=f"{where}.{name}",
        )
    if at is not None:
        names = [step for step, _ in _STEP.findall(path) if step]
        value = _value_at(body, path)
        takes = _ALLOWED.get(names[-1], "valid") if names else "valid"
        message = f"{where} must be {takes}, got {shown(value)} ({type(value).__name__})"
        if "got `" in text:
            return RequestTypeError(message, field=where)
        return RequestValidationError(message, field=where)
    return RequestValidationError(f"request_body is invalid: {text}", field="request_body")


def _what(path: str) -> str:
    return "the request body" if not path else f"request_body{path}"


def _fields_at(body_type: type[msgspec.Struct], path: str) -> tuple[str, ...]:
    """The fields of the Struct found at `path` (``.messages[0]``) within `body_type`."""
    import typing  # error path only

    current: Any = body_type
    for name, index in _STEP.findall(path):
        if name and isinstance(current, type) and issubclass(current, msgspec.Struct):
            current = typing.get_type_hints(current).get(name)
        elif index:
            args = [a for a in typing.get_args(current) if a is not type(None)]
            current = args[-1] if args else None
        while typing.get_origin(current) is not None and not typing.get_args(current)[1:]:
            current = typing.get_args(current)[0]  # list[X] (or X | None): X
    if isinstance(current, type) and issubclass(current, msgspec.Struct):
        return current.__struct_fields__
    return ()


def _value_at(body: Any, path: str) -> Any:
    """The value at `path` (``.messages[0].role``) in `body`, or None if not there."""
    current = body
    for name, index in _STEP.findall(path):
        try:
            if name:
                current = current.get(name) if isinstance(current, Mapping) else None
            elif index != "...":
                current = current[int(index)]
            else:  # a mapping's value: msgspec does not say which; show the first bad one
                return next(iter(current.values()), None)
        except (LookupError, TypeError, AttributeError):
            return None
    return current
