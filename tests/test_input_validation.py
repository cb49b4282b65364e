"""Bad input: a typed error naming the field and the fix, raised before any network I/O."""

from __future__ import annotations

import math
from typing import Any

import pytest

from emissary import AsyncEmissaryClient, EmissaryClient, models
from emissary.errors import (
    ConfigurationError,
    EmissaryError,
    RequestTypeError,
    RequestValidationError,
)
from emissary.testing import Emulator
from emissary.utils import BackoffStrategy, RetryConfig

from .conftest import DEPLOYMENT, PROJECT

pytestmark = pytest.mark.anyio

# (request body, field named, words the message must contain, expected error class)
BAD_BODIES: list[tuple[Any, str, list[str], type[Exception]]] = [
    ({}, "request_body.prompt", ["required", "string"], ValueError),
    ({"prompt": 3}, "request_body.prompt", ["a string", "3"], TypeError),
    (
        {"prompt": "p", "max_tokens": 5},
        "request_body.max_tokens",
        ["did you mean 'max_new_tokens'"],
        ValueError,
    ),
    (
        {"prompt": "p", "temprature": 0.5},
        "request_body.temprature",
        ["did you mean 'temperature'"],
        ValueError,
    ),
    ({"prompt": "p", "zzz": 1}, "request_body.zzz", ["not a field", "Allowed fields"], ValueError),
    ({"prompt": "p", "temperature": -0.1}, "request_body.temperature", [">= 0"], ValueError),
    ({"prompt": "p", "temperature": math.nan}, "request_body.temperature", ["finite"], ValueError),
    ({"prompt": "p", "temperature": math.inf}, "request_body.temperature", ["finite"], ValueError),
    ({"prompt": "p", "temperature": "hot"}, "request_body.temperature", ["number"], TypeError),
    ({"prompt": "p", "top_p": 1.5}, "request_body.top_p", ["between 0 and 1"], ValueError),
    ({"prompt": "p", "top_k": -1}, "request_body.top_k", ["integer from 0"], ValueError),
    ({"prompt": "p", "top_k": True}, "request_body.top_k", ["integer", "bool"], TypeError),
    # Strict: numbers and flags written as strings are refused, never coerced.
    ({"prompt": "p", "max_new_tokens": "16"}, "request_body.max_new_tokens", ["'16'"], TypeError),
    ({"prompt": "p", "do_sample": "true"}, "request_body.do_sample", ["true or false"], TypeError),
    (
        {"prompt": "p", "max_new_tokens": 0},
        "request_body.max_new_tokens",
        ["integer from 1 to 2147483647"],
        ValueError,
    ),
    (
        {"prompt": "p", "max_new_tokens": 5.0},
        "request_body.max_new_tokens",
        ["integer", "float"],
        TypeError,
    ),
    (
        {"prompt": "p", "no_repeat_ngram_size": -2},
        "request_body.no_repeat_ngram_size",
        ["from 0 to"],
        ValueError,
    ),
    ({"prompt": "p", "do_sample": "yes"}, "request_body.do_sample", ["true or false"], TypeError),
    ({"prompt": "p", "do_sample": 1}, "request_body.do_sample", ["true or false"], TypeError),
    ("just a prompt", "request_body", ["dict"], TypeError),
    (None, "request_body", ["dict"], TypeError),
    (
        models.GetCompletionsFromDeploymentRequestBody(prompt="p", top_p=2.0),
        "request_body.top_p",
        ["between 0 and 1"],
        ValueError,
    ),
    (
        models.GetCompletionsFromDeploymentRequestBody(prompt="p", temperature=math.nan),
        "request_body.temperature",
        ["finite"],
        ValueError,
    ),
    (
        models.GetCompletionsFromDeploymentRequestBody(prompt=7),
        "request_body.prompt",
        ["a string"],
        TypeError,
    ),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("body", "field", "words", "kind"), BAD_BODIES)
async def test_bad_request_body_is_refused_before_io(
    emulator: Emulator,
    client: AsyncEmissaryClient,
    body: Any,
    field: str,
    words: list[str],
    kind: type[Exception],
) -> None:
    with pytest.raises(RequestValidationError) as caught:
        await client.deployments.completions.create(
            project_id=PROJECT, deployment_id=DEPLOYMENT, request_body=body
        )
    error = caught.value
    assert isinstance(error, kind)
    assert isinstance(error, EmissaryError)
    assert error.field == field
    assert field in str(error)
    for word in words:
        assert word in str(error)
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("ids", "field", "kind"),
    [
        ({"project_id": "", "deployment_id": DEPLOYMENT}, "project_id", ValueError),
        ({"project_id": PROJECT, "deployment_id": ""}, "deployment_id", ValueError),
        ({"project_id": 12, "deployment_id": DEPLOYMENT}, "project_id", TypeError),
        ({"project_id": PROJECT, "deployment_id": None}, "deployment_id", TypeError),
    ],
)
async def test_bad_ids_are_refused_before_io(
    emulator: Emulator, client: AsyncEmissaryClient, ids: dict[str, Any], field: str, kind: type
) -> None:
    with pytest.raises(RequestValidationError) as caught:
        await client.deployments.completions.create(**ids, request_body={"prompt": "p"})
    assert isinstance(caught.value, kind)
    assert caught.value.field == field
    assert "non-empty string" in str(caught.value)
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"retries": "yes"}, ["retries", "RetryConfig"]),
        ({"timeout_ms": 0}, ["timeout_ms", "positive"]),
        ({"timeout_ms": "5"}, ["timeout_ms"]),
        ({"server_url": "ftp://example.com"}, ["server_url", "http"]),
        ({"server_url": "not a url"}, ["server_url"]),
    ],
)
async def test_bad_call_options_are_refused_before_io(
    emulator: Emulator, client: AsyncEmissaryClient, options: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await client.deployments.completions.create(
            project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}, **options
        )
    assert isinstance(caught.value, ValueError)
    for word in words:
        assert word in str(caught.value)
    assert emulator.requests == []


def test_a_request_body_of_the_wrong_type_is_a_type_error() -> None:
    with pytest.raises(RequestTypeError):
        EmissaryClient(api_key="k", server_url="http://127.0.0.1:1").deployments.completions.create(
            project_id="p",
            deployment_id="d",
            request_body=["prompt"],  # type: ignore[arg-type]
        )


def test_missing_server_url_names_the_argument_and_the_variable() -> None:
    with pytest.raises(ConfigurationError) as caught:
        AsyncEmissaryClient(api_key="k")
    assert "server_url" in str(caught.value)
    assert "EMISSARY_SERVER_URL" in str(caught.value)


def test_missing_api_key_names_the_argument_and_the_variable() -> None:
    with pytest.raises(ConfigurationError) as caught:
        EmissaryClient(server_url="http://127.0.0.1:1")
    assert "api_key" in str(caught.value)
    assert "EMISSARY_CLIENT_API_KEY" in str(caught.value)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMISSARY_CLIENT_API_KEY", "env-key")
    monkeypatch.setenv("EMISSARY_SERVER_URL", "http://127.0.0.1:9/")
    client = AsyncEmissaryClient()
    assert client.server_url == "http://127.0.0.1:9"


@pytest.mark.parametrize("key", ["sk-secret\r\nX-Evil: 1", "sk-secret\n", "sk-\x00secret"])
def test_api_key_with_line_breaks_is_refused_without_echoing_it(key: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        AsyncEmissaryClient(api_key=key, server_url="http://127.0.0.1:1")
    assert isinstance(caught.value, ValueError)
    assert "sk-" not in str(caught.value)
    assert "line break" in str(caught.value)


async def test_api_key_callable_returning_a_bad_key_fails_before_io(emulator: Emulator) -> None:
    async with AsyncEmissaryClient(api_key=lambda: "sk-x\r\n", server_url=emulator.url) as client:
        with pytest.raises(ConfigurationError) as caught:
            await client.deployments.completions.create(
                project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
            )
    assert "sk-x" not in str(caught.value)
    assert emulator.requests == []


@pytest.mark.parametrize(
    "make",
    [
        lambda: BackoffStrategy(0, 10, 2.0, 100),
        lambda: BackoffStrategy(10, 5, 2.0, 100),
        lambda: BackoffStrategy(10, 100, 0.5, 100),
        lambda: BackoffStrategy(10, 100, 2.0, -1),
        lambda: RetryConfig("sometimes", BackoffStrategy(1, 2, 2.0, 3), True),  # type: ignore[arg-type]
        lambda: RetryConfig("backoff", "fast", True),  # type: ignore[arg-type]
    ],
)
def test_bad_retry_settings_are_refused(make: Any) -> None:
    with pytest.raises(ConfigurationError):
        make()


def _deep(depth: int) -> object:
    value: object = "p"
    for _ in range(depth):
        value = [value]
    return value


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr is broken")


# Found by fuzzing: each raised a foreign exception (TypeError, UnicodeEncodeError,
# ValueError, RecursionError) before the fix.
FUZZED: list[tuple[dict[str, Any], str, list[str], type[Exception]]] = [
    ({"project_id": ["a", "b"]}, "project_id", ["non-empty string", "list"], TypeError),
    ({"deployment_id": {"x": 1}}, "deployment_id", ["non-empty string", "dict"], TypeError),
    ({"project_id": "ab\ud800"}, "project_id", ["surrogate", "position 2"], ValueError),
    ({"deployment_id": "\udcff"}, "deployment_id", ["surrogate"], ValueError),
    ({"request_body": {"prompt": "hi \ud83d"}}, "request_body.prompt", ["surrogate"], ValueError),
    ({"request_body": {"prompt": "p", "\ud800": 1}}, "request_body", ["field name"], ValueError),
    ({"request_body": {"prompt": 10**5000}}, "request_body.prompt", ["bits", "int"], TypeError),
    (
        {"request_body": {"prompt": "p", "top_k": -(10**5000)}},
        "request_body.top_k",
        ["integer from 0", "bits"],
        ValueError,
    ),
    # Integers fit the spec's formats (int32 for max_new_tokens, else a signed 64-bit one),
    # however large: never msgspec's or int()'s own error from encoding them.
    (
        {"request_body": {"prompt": "x", "max_new_tokens": int("9" * 4000) * 10**2001}},
        "request_body.max_new_tokens",
        ["int32", "bits"],
        ValueError,
    ),
    (
        {"request_body": {"prompt": "x", "max_new_tokens": 2**31}},
        "request_body.max_new_tokens",
        ["2147483647"],
        ValueError,
    ),
    (
        {"request_body": {"prompt": "x", "no_repeat_ngram_size": 2**63}},
        "request_body.no_repeat_ngram_size",
        ["2**63 - 1"],
        ValueError,
    ),
    ({"extra_body": {"n": 10**6000}}, "extra_body.n", ["cannot be encoded", "bits"], TypeError),
    ({"extra_body": {"f": object()}}, "extra_body.f", ["object is not a JSON type"], TypeError),
    # Header names are HTTP tokens; values hold no control character but a tab; the body's
    # framing is the SDK's.
    ({"extra_headers": {"X Bad": "v"}}, "extra_headers.'X Bad'", ["header name"], ValueError),
    ({"extra_headers": {"X:Y": "v"}}, "extra_headers.'X:Y'", ["header name"], ValueError),
    ({"extra_headers": {"X\tY": "v"}}, "extra_headers.'X\\tY'", ["header name"], ValueError),
    ({"extra_headers": {"Xé": "v"}}, "extra_headers.'Xé'", ["non-ASCII"], ValueError),
    ({"extra_headers": {"X\x01": "v"}}, "extra_headers.'X\\x01'", ["control"], ValueError),
    ({"extra_headers": {"X": "a\x01"}}, "extra_headers.'X'", ["control character"], ValueError),
    ({"extra_headers": {"X": "a\x7f"}}, "extra_headers.'X'", ["control character"], ValueError),
    (
        {"extra_headers": {"Content-Length": "abc"}},
        "extra_headers.'Content-Length'",
        ["sets it from the body"],
        ValueError,
    ),
    (
        {"extra_headers": {"transfer-encoding": "chunked"}},
        "extra_headers.'transfer-encoding'",
        ["sets it from the body"],
        ValueError,
    ),
    ({"request_body": {"prompt": _deep(100_000)}}, "request_body.prompt", ["list"], TypeError),
    ({"request_body": {"prompt": _BadRepr()}}, "request_body.prompt", ["_BadRepr"], TypeError),
    ({"request_body": {"prompt": "x" * 10**6 + "\ud800"}}, "request_body.prompt", [], ValueError),
    ({"request_body": {1: "p"}}, "request_body", ["field names must be strings"], TypeError),
    (
        {"request_body": {"prompt": "p", "top_p": "\ud800"}},
        "request_body.top_p",
        ["number"],
        TypeError,
    ),
]


@pytest.mark.parametrize(("arguments", "field", "words", "kind"), FUZZED)
async def test_fuzzed_inputs_are_typed_errors_naming_the_field(
    emulator: Emulator,
    client: AsyncEmissaryClient,
    arguments: dict[str, Any],
    field: str,
    words: list[str],
    kind: type[Exception],
) -> None:
    call = {"project_id": PROJECT, "deployment_id": DEPLOYMENT, "request_body": {"prompt": "p"}}
    with pytest.raises(RequestValidationError) as caught:
        await client.deployments.completions.create(**{**call, **arguments})
    error = caught.value
    assert isinstance(error, kind)
    assert error.field == field
    message = str(error)
    assert len(message) < 500  # never the whole value
    message.encode("utf-8")  # the message itself can always be printed
    for word in words:
        assert word in message
    assert emulator.requests == []


def test_extra_body_nested_to_the_recursion_limit_is_a_typed_error() -> None:
    # Each value used to be checked alone, then the merged body (one level deeper)
    # overflowed with a RecursionError. Across msgspec's limit (found here: it follows the
    # interpreter's, which differs by version): sent, or a typed error, never another.
    import msgspec

    from emissary._operations import COMPLETIONS
    from emissary._protocol import build_request

    def nested(depth: int) -> Any:
        value: Any = []
        for _ in range(depth):
            value = [value]
        return value

    low, high = 1, 200_000  # msgspec encodes `low` levels, not `high`
    while high - low > 1:
        middle = (low + high) // 2
        try:
            msgspec.json.encode(nested(middle))
            low = middle
        except RecursionError:
            high = middle
    sent, refused = 0, []
    for depth in range(high - 60, high + 20, 2):
        try:
            build_request(
                COMPLETIONS, ("p", "d"), {"prompt": "x"}, {"extra_body": {"deep": nested(depth)}}
            )
            sent += 1
        except RequestTypeError as error:
            refused.append(error)
    assert sent and refused  # the range crossed the limit
    for error in refused:
        assert error.field == "extra_body.deep" and "nested too deeply" in str(error)


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({"X Bad": "v"}, ["default_headers", "header name"]),
        ({"X": "a\x01"}, ["default_headers", "control character"]),
        ({"Content-Length": "12"}, ["default_headers", "Content-Length"]),
    ],
)
def test_bad_default_headers_are_a_configuration_error(
    headers: dict[str, str], words: list[str]
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        EmissaryClient(api_key="k", server_url="http://127.0.0.1:9", default_headers=headers)
    for word in words:
        assert word in str(caught.value)
