"""The contract of every operation row (`emissary._operations.OPERATIONS`, all 25), for the
async client, the sync client and their ``with_raw_response`` twins, over real HTTP to the
emulator: the method and the path on the wire (awkward ids percent-encoded as one segment),
the body exactly as given (unset fields left out, ``0``/``False``/``""`` sent; multipart
parts for ``datasets.create``), the success status and the result's type; each error
status (400, 401, 404, 413, 500) as its exception, a 500 on a create never retried; every
per-call option, and an option an operation does not take refused before any I/O; one
DEBUG record per attempt and one trace span per call. A new row is covered by every test
here as soon as `tests/platform_calls.py` has an example for it."""

from __future__ import annotations

import asyncio
import json
import logging
import typing
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from emissary import AsyncEmissaryClient, EmissaryClient
from emissary._operations import MULTIPART, OPERATIONS, Operation
from emissary.errors import (
    APIErrorInvalidInput,
    APIErrorNotFound,
    APIErrorUnauthorized,
    APITimeoutError,
    PayloadTooLargeError,
    RequestTypeError,
    SDKError,
)
from emissary.models import APIResponse
from emissary.testing import Emulator, VirtualClock, instant_retries
from emissary.utils import BackoffStrategy, RetryConfig

from .faults import run_python
from .platform_calls import (
    API_KEY,
    DEPLOYMENT,
    EXAMPLES,
    PROJECT,
    UPLOAD,
    UPLOAD_NAME_SENT,
    UPLOAD_SHA256,
    arguments,
    build_world,
    emulator,
    encoded_path,
    example,
    method_of,
    same_json,
    sent_json,
)

ROWS = pytest.mark.parametrize("operation", OPERATIONS, ids=[op.name for op in OPERATIONS])
VARIANTS = ("async", "sync", "async raw", "sync raw")
NOWHERE = "http://127.0.0.1:9"
"""A server URL where nothing listens: a call that reached it would fail to connect."""
FAKE_IDS = {
    "base_model_name": "org/m 1",
    "project_id": PROJECT,
    "deployment_id": DEPLOYMENT,
    "dataset_id": "ds-000000000000",
    "training_job_id": "tr-000000000000",
}
"""Ids for calls that meet an injected fault first (nothing needs to exist)."""


def call(
    variant: str,
    server_url: str,
    clock: VirtualClock,
    operation: Operation[Any],
    kwargs: dict[str, Any],
) -> Any:
    """Make `operation`'s call with `kwargs` on a fresh client of `variant` (``"async"``,
    ``"sync"``, and either with ``" raw"``) for `server_url`, its retries sleeping on
    `clock`."""
    raw = variant.endswith(" raw")
    if variant.startswith("async"):

        async def run() -> Any:
            async with AsyncEmissaryClient(api_key=API_KEY, server_url=server_url) as client:
                with instant_retries(client, clock=clock):
                    return await method_of(client, operation, raw=raw)(**kwargs)

        return asyncio.run(run())
    with EmissaryClient(api_key=API_KEY, server_url=server_url) as client:
        with instant_retries(client, clock=clock):
            return method_of(client, operation, raw=raw)(**kwargs)


def check_type(operation: Operation[Any], result: Any) -> None:
    """`result` is what the row says a success returns: None (204), the model, or a
    non-empty list of it (the world holds one of everything)."""
    expected = operation.result
    if expected is None:
        assert result is None
    elif typing.get_origin(expected) is list:
        (item,) = typing.get_args(expected)
        assert isinstance(result, list) and result
        assert all(type(element) is item for element in result)
    else:
        assert type(result) is expected


@pytest.fixture
def world(clock: VirtualClock) -> Iterator[tuple[Emulator, dict[str, str]]]:
    """A threaded emulator on `clock` where every example call succeeds, and its ids."""
    with emulator(clock) as emu:
        yield emu, build_world(emu, clock)


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Emulator, VirtualClock]]:
    """One emulator for the tests whose calls meet an injected fault first."""
    clock = VirtualClock()
    with emulator(clock) as emu:
        yield emu, clock


@pytest.fixture
def faulty(shared: tuple[Emulator, VirtualClock]) -> Iterator[tuple[Emulator, VirtualClock]]:
    emu, clock = shared
    emu.faults.clear()
    emu.requests.clear()
    yield emu, clock
    assert emu.faults.pending == 0  # every fault met its request


def test_every_row_has_an_example_and_no_example_is_left_over() -> None:
    assert {op.name for op in OPERATIONS} == set(EXAMPLES)
    for operation in OPERATIONS:
        example(operation)


# --- success: the wire, the status, the result ------------------------------------------------


@ROWS
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_call_is_sent_as_its_row_says_and_returns_its_type(
    operation: Operation[Any],
    variant: str,
    world: tuple[Emulator, dict[str, str]],
    clock: VirtualClock,
) -> None:
    emu, ids = world
    result = call(variant, emu.url, clock, operation, arguments(operation, ids))
    (request,) = emu.requests
    assert (request.operation, request.method) == (operation.name, operation.method)
    assert request.raw_path == encoded_path(operation, ids)  # no query, ids one segment each
    assert request.path_params == {name: ids[name] for name in operation.parameters}
    headers = request.headers
    assert headers["X-API-Key"] == API_KEY and headers["Accept"] == "application/json"
    assert ("Idempotency-Key" in headers) == (operation.method == "POST")
    assert headers["X-Emissary-Attempt"] == "1"
    if operation.body == MULTIPART:
        assert headers["Content-Type"].startswith("multipart/form-data; boundary=")
        upload = emu.uploads[-1]
        assert (upload.filename, upload.content_type, upload.name) == (
            UPLOAD_NAME_SENT,
            "application/jsonl",
            "train",
        )
        assert (upload.size, upload.sha256) == (len(UPLOAD), UPLOAD_SHA256)
    elif operation.body is None:
        assert request.body == b""
    else:
        assert headers["Content-Type"] == "application/json"
        assert same_json(json.loads(request.body), sent_json(operation, ids)), request.body
    if not variant.endswith(" raw"):
        check_type(operation, result)
        return
    assert isinstance(result, APIResponse)
    assert result.status_code == operation.status
    assert result.request_id == request.request_id
    assert result.retries_taken == 0
    assert result.idempotency_key == headers.get("Idempotency-Key")
    parsed = result.parse()
    check_type(operation, parsed)
    if operation.decoder is None:
        assert result.content == b""
    else:
        assert parsed == msgspec.json.decode(result.content, type=operation.result)
    if operation.kind in ("read", "inference"):  # nothing changed: the plain call agrees
        plain = variant.removesuffix(" raw")
        assert call(plain, emu.url, clock, operation, arguments(operation, ids)) == parsed


def test_projects_create_without_a_request_sends_an_empty_object(
    world: tuple[Emulator, dict[str, str]], clock: VirtualClock
) -> None:
    emu, _ = world
    (operation,) = [op for op in OPERATIONS if op.name == "projects.create"]
    project = call("sync", emu.url, clock, operation, {})
    assert project.id is not None and project.name is None
    assert emu.requests[-1].body == b"{}"
    assert emu.requests[-1].headers["Content-Type"] == "application/json"


# --- errors -------------------------------------------------------------------------------------

ERRORS: dict[int, type[SDKError]] = {
    400: APIErrorInvalidInput,
    401: APIErrorUnauthorized,
    404: APIErrorNotFound,
    413: PayloadTooLargeError,
    500: SDKError,
}


@ROWS
@pytest.mark.parametrize("status", sorted(ERRORS))
@pytest.mark.parametrize("variant", ["async", "sync", "async raw"])
def test_each_error_status_is_its_exception_on_every_route(
    operation: Operation[Any],
    status: int,
    variant: str,
    faulty: tuple[Emulator, VirtualClock],
) -> None:
    emu, clock = faulty
    # A 500 is retried (3 attempts by default), but never on a create: it may have been made.
    attempts = 3 if status == 500 and operation.kind != "create" else 1
    emu.faults.fail(attempts, status=status)
    with pytest.raises(SDKError) as caught:
        call(variant, emu.url, clock, operation, arguments(operation, FAKE_IDS))
    error = caught.value
    assert type(error) is ERRORS[status]
    assert error.status_code == status
    assert len(emu.requests) == attempts and error.retries_taken == attempts - 1
    assert {r.operation for r in emu.requests} == {operation.name}
    assert error.request_id == emu.requests[-1].request_id
    if status in (400, 401, 404):
        data: Any = getattr(error, "data", None)
        assert (data.status, data.error) == (status, "injected fault")
        if status == 404:
            assert data.code == "injected"
    if status < 500 or operation.kind == "create":
        assert error.maybe_committed is (status == 500)


# --- per-call options ---------------------------------------------------------------------------


@ROWS
@pytest.mark.parametrize("variant", ["async", "sync"])
def test_every_call_option_reaches_the_wire(
    operation: Operation[Any],
    variant: str,
    world: tuple[Emulator, dict[str, str]],
    clock: VirtualClock,
) -> None:
    emu, ids = world
    options: dict[str, Any] = {
        "server_url": emu.url,  # the client's own points nowhere
        "extra_headers": {"X-Trace": "t-1"},
        "extra_query": {"trace": "a b/c"},
        "timeout_ms": 10_000,
        "retries": RetryConfig("backoff", BackoffStrategy(1, 2, 1.0, 1_000), max_attempts=2),
    }
    if operation.method == "POST":
        options["idempotency_key"] = f"key-{operation.name}"
    extra_body = dict(example(operation).extra_body)
    if extra_body:
        options["extra_body"] = extra_body
    kwargs = arguments(operation, ids) | options
    result = call(variant, NOWHERE, clock, operation, kwargs)
    if isinstance(result, APIResponse):
        pytest.fail("a plain call returned a raw response")
    check_type(operation, result)
    (request,) = emu.requests
    assert request.raw_path == encoded_path(operation, ids) + "?trace=a%20b%2Fc"
    assert request.headers["X-Trace"] == "t-1"
    assert request.headers.getall("Idempotency-Key", []) == (
        [options["idempotency_key"]] if operation.method == "POST" else []
    )
    if extra_body:
        expected = sent_json(operation, ids) | extra_body
        assert same_json(json.loads(request.body), expected), request.body


@ROWS
@pytest.mark.parametrize("variant", ["async", "sync"])
def test_retries_and_timeout_ms_are_the_calls_own(
    operation: Operation[Any], variant: str, faulty: tuple[Emulator, VirtualClock]
) -> None:
    emu, clock = faulty
    kwargs = arguments(operation, FAKE_IDS)
    off = RetryConfig.disabled()
    emu.faults.fail(1, status=503)  # retried by default, also on a create: nothing was done
    with pytest.raises(SDKError) as refused:
        call(variant, emu.url, clock, operation, kwargs | {"retries": off})
    assert refused.value.status_code == 503 and len(emu.requests) == 1
    emu.faults.hang()  # never answers: the attempt's own limit ends it
    with pytest.raises(APITimeoutError) as late:  # (a limit the request is sent well within,
        # a new connection included, on a busy 2-core host: 40 ms once was not, on 3.10)
        call(variant, emu.url, clock, operation, kwargs | {"retries": off, "timeout_ms": 150})
    assert late.value.retries_taken == 0 and len(emu.requests) == 2
    if operation.kind == "create":
        assert late.value.maybe_committed


CREATES = [op for op in OPERATIONS if op.kind == "create"]


@pytest.mark.parametrize("operation", CREATES, ids=[op.name for op in CREATES])
@pytest.mark.parametrize("variant", ["async", "sync"])
def test_a_create_given_its_own_idempotency_key_is_retried_after_a_500(
    operation: Operation[Any],
    variant: str,
    world: tuple[Emulator, dict[str, str]],
    clock: VirtualClock,
) -> None:
    emu, ids = world
    emu.faults.fail(1, status=500)
    kwargs = arguments(operation, ids) | {"idempotency_key": "once-only"}
    result = call(variant, emu.url, clock, operation, kwargs)
    check_type(operation, result)
    assert [r.headers["Idempotency-Key"] for r in emu.requests] == ["once-only"] * 2
    assert [r.headers["X-Emissary-Attempt"] for r in emu.requests] == ["1", "2"]
    if operation.body == MULTIPART:  # the same bytes again
        assert emu.uploads[-1].sha256 == UPLOAD_SHA256


def refused_options(operation: Operation[Any]) -> list[str]:
    """Options `operation` does not take, and a typo of one it does."""
    names = ["extra_header"]
    if operation.method != "POST":
        names.append("idempotency_key")
    if not isinstance(operation.body, type):  # no JSON body: nothing to merge into
        names.append("extra_body")
    if operation.kind != "delete":
        names.append("missing_ok")
    return names


@ROWS
@pytest.mark.parametrize("variant", ["async", "sync"])
def test_an_option_the_operation_does_not_take_is_refused_before_any_io(
    operation: Operation[Any], variant: str, clock: VirtualClock
) -> None:
    for name in refused_options(operation):
        value = {"extra_header": {"X": "1"}, "extra_body": {"x": 1}}.get(name, "k")
        kwargs = arguments(operation, FAKE_IDS) | {name: value}
        with pytest.raises(RequestTypeError) as caught:
            call(variant, NOWHERE, clock, operation, kwargs)
        assert caught.value.field == name and repr(name) in str(caught.value), caught.value
        assert operation.name in str(caught.value)
        assert not caught.value.maybe_committed


# --- logs and spans -----------------------------------------------------------------------------


@ROWS
@pytest.mark.parametrize("variant", ["async", "sync"])
def test_one_debug_record_per_attempt_names_the_method_and_path_never_the_key(
    operation: Operation[Any],
    variant: str,
    world: tuple[Emulator, dict[str, str]],
    clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu, ids = world
    caplog.set_level(logging.DEBUG, logger="emissary")
    emu.faults.fail(1, status=503)
    call(variant, emu.url, clock, operation, arguments(operation, ids))
    records = [r for r in caplog.records if r.name == "emissary"]
    attempts = [r.getMessage() for r in records if r.levelno == logging.DEBUG]
    where = f"{operation.method} {encoded_path(operation, ids)}"
    assert len(attempts) == 2, attempts
    assert attempts[0].startswith(f"{where} attempt 1: 503 in ")
    assert attempts[1].startswith(f"{where} attempt 2: {operation.status} in ")
    assert emu.requests[-1].request_id in attempts[1]
    assert API_KEY not in caplog.text + "".join(str(r.args) for r in records)


SPANS = """
import json
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from emissary import EmissaryClient
from emissary._operations import OPERATIONS
from emissary.testing import VirtualClock, instant_retries
from tests.platform_calls import arguments, build_world, emulator, method_of

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
seen = {}
for operation in OPERATIONS:
    clock = VirtualClock()
    with emulator(clock) as emu:
        ids = build_world(emu, clock)
        with EmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
            with instant_retries(client, clock=clock):
                exporter.clear()
                emu.faults.fail(1, status=503)
                method_of(client, operation)(**arguments(operation, ids))
        spans = [
            {"name": s.name, "kind": s.kind.name, "status": s.status.status_code.name,
             "attributes": dict(s.attributes or {})}
            for s in exporter.get_finished_spans()
        ]
        seen[operation.name] = {
            "ids": ids, "spans": spans, "request_id": emu.requests[-1].request_id,
        }
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def spans() -> dict[str, Any]:
    """Every operation's call (one 503, then success) with OpenTelemetry's SDK and an
    in-memory exporter, in a fresh interpreter: the process-wide tracer provider can be set
    only once, and tests/test_observability.py owns this process's."""
    done = run_python(SPANS, dev=False)
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


@ROWS
def test_one_span_per_call_with_its_operation(
    operation: Operation[Any], spans: dict[str, Any]
) -> None:
    seen = spans[operation.name]
    (span,) = seen["spans"]  # one per call, not one per attempt
    attributes = span["attributes"]
    ids = seen["ids"]
    assert span["kind"] == "CLIENT" and span["status"] == "UNSET"
    assert attributes["emissary.operation"] == operation.name
    for name in operation.parameters:
        assert attributes[f"emissary.{name}"] == ids[name]
    assert attributes["http.request.resend_count"] == 1
    assert attributes["emissary.request_id"] == seen["request_id"]
    if operation.gen_ai is None:
        assert span["name"] == operation.name
    else:
        assert span["name"] == f"{operation.gen_ai} {ids['deployment_id']}"
        assert attributes["gen_ai.operation.name"] == operation.gen_ai
    assert API_KEY not in json.dumps(span)
