"""Seeing what happens: log records and OpenTelemetry spans (the SDK's in-memory exporter),
for calls over real HTTP to the emulator. Neither ever holds the key, the prompt or the
completion, unless content capture is asked for."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import SpanKind, StatusCode

from emissary import AsyncEmissaryClient
from emissary.errors import APIErrorNotFound, SDKError
from emissary.testing import Emulator

from .conftest import DEPLOYMENT, PROJECT, fake_time
from .faults import run_python, until

pytestmark = pytest.mark.anyio

PROMPT = "the secret plan for Tuesday"
ARGS: dict[str, Any] = {
    "project_id": PROJECT,
    "deployment_id": DEPLOYMENT,
    "request_body": {"prompt": PROMPT, "max_new_tokens": 5, "temperature": 0.5, "top_k": 7},
}
_EXPORTER = InMemorySpanExporter()


class _Switch(Sampler):
    """Samples while this module's tests run, and drops every span after them (the global
    provider can be set only once per process, and later tests must not pay for it)."""

    on = False

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: Any = None,
        attributes: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> SamplingResult:
        if not self.on:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)  # keep the attributes

    def get_description(self) -> str:
        return "on while tests/test_observability.py runs"


_SWITCH = _Switch()


class _Started(SpanProcessor):
    """Counts the spans started (the exporter sees only those that end)."""

    count = 0

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.count += 1


_STARTED = _Started()


@pytest.fixture(scope="module", autouse=True)
def tracer_provider() -> Iterator[None]:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider(sampler=_SWITCH)
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        provider.add_span_processor(_STARTED)
        trace.set_tracer_provider(provider)
    _SWITCH.on = True
    yield
    _SWITCH.on = False
    _EXPORTER.clear()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def everything_in(span: Any) -> str:
    return json.dumps({"name": span.name, "attributes": dict(span.attributes or {})}, default=str)


# --- logging ------------------------------------------------------------------------


async def test_one_debug_record_per_attempt_and_one_info_record_per_retry(
    emulator: Emulator, client: AsyncEmissaryClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="emissary")
    fake_time(client)
    emulator.faults.fail(status=503, retry_after=2)
    completion = await client.deployments.completions.create(**ARGS)
    records = [r for r in caplog.records if r.name == "emissary"]
    attempts = [r.getMessage() for r in records if r.levelno == logging.DEBUG]
    retries = [r.getMessage() for r in records if r.levelno == logging.INFO]
    path = f"/v1/projects/{PROJECT}/deployments/{DEPLOYMENT}/completions"
    assert len(attempts) == 2 and len(retries) == 1
    assert attempts[0].startswith(f"POST {path} attempt 1: 503 in ")
    assert attempts[1].startswith(f"POST {path} attempt 2: 200 in ")
    assert emulator.requests[1].request_id in attempts[1]
    assert "status 503" in retries[0] and "Retry-After: 2.0" in retries[0]
    text = caplog.text + "".join(str(r.args) for r in records)
    for secret in (emulator.api_key, PROMPT, completion.response or "?"):
        assert secret not in text


async def test_nothing_is_logged_when_the_level_is_off(
    emulator: Emulator, client: AsyncEmissaryClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="emissary")
    fake_time(client)
    emulator.faults.fail(status=503)
    await client.deployments.completions.create(**ARGS)
    assert [r for r in caplog.records if r.name == "emissary"] == []


def test_emissary_log_attaches_a_stderr_handler_to_the_emissary_logger_alone() -> None:
    proc = run_python(
        """
        import logging, os
        os.environ["EMISSARY_LOG"] = "debug"
        from emissary import EmissaryClient
        from emissary.testing import Emulator

        with Emulator() as emu, EmissaryClient(api_key=emu.api_key, server_url=emu.url) as c:
            c.deployments.completions.create(
                project_id="demo-project", deployment_id="demo-deployment",
                request_body={"prompt": "hush"})
        print(len(logging.getLogger().handlers), logging.getLogger("emissary").level)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", str(logging.DEBUG)]  # the root logger is untouched
    assert "DEBUG emissary: POST /v1/projects/demo-project/deployments/demo-deployment" in (
        proc.stderr
    )
    assert "hush" not in proc.stderr and "emissary-test-key" not in proc.stderr


# --- tracing ------------------------------------------------------------------------


async def test_one_client_span_per_call_with_the_genai_attributes(
    emulator: Emulator, client: AsyncEmissaryClient, spans: InMemorySpanExporter
) -> None:
    fake_time(client)
    emulator.faults.fail(2, status=503)
    completion = await client.deployments.completions.create(**ARGS)
    (span,) = spans.get_finished_spans()
    assert span.name == f"text_completion {DEPLOYMENT}"
    assert span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes or {})
    assert attributes == {
        "gen_ai.operation.name": "text_completion",
        "gen_ai.provider.name": "emissary",
        "gen_ai.request.model": DEPLOYMENT,
        "gen_ai.request.max_tokens": 5,
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.top_k": 7,
        "gen_ai.response.id": completion.id,
        "server.address": "127.0.0.1",
        "server.port": emulator.port,
        "http.request.resend_count": 2,
        "emissary.project_id": PROJECT,
        "emissary.deployment_id": DEPLOYMENT,
        "emissary.operation": "deployments.completions.create",
        "emissary.request_id": emulator.requests[-1].request_id,
    }
    assert span.status.status_code is StatusCode.UNSET
    shown = everything_in(span)
    assert PROMPT not in shown and (completion.response or "?") not in shown
    assert emulator.api_key not in shown


async def test_a_failed_call_is_an_error_span(
    emulator: Emulator, client: AsyncEmissaryClient, spans: InMemorySpanExporter
) -> None:
    with pytest.raises(APIErrorNotFound):
        await client.deployments.completions.create(**{**ARGS, "project_id": "nope"})
    fake_time(client)
    emulator.faults.fail(3, status=500)
    with pytest.raises(SDKError):
        await client.deployments.completions.create(**ARGS)
    missing, failed = spans.get_finished_spans()
    assert missing.status.status_code is StatusCode.ERROR
    assert missing.attributes is not None and missing.attributes["error.type"] == "APIErrorNotFound"
    assert missing.attributes["emissary.request_id"] == emulator.requests[0].request_id
    assert failed.attributes is not None and failed.attributes["error.type"] == "SDKError"
    assert failed.attributes["http.request.resend_count"] == 2


async def test_a_missing_ok_delete_of_nothing_is_logged_traced_and_raw_as_its_404(
    emulator: Emulator,
    client: AsyncEmissaryClient,
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The 404 is the answer the caller asked to accept: the call succeeds, its attempt is
    # logged with the status it got, its span is not an error, and the raw variant hands
    # back that answer with nothing to parse.
    caplog.set_level(logging.DEBUG, logger="emissary")
    raw = await client.projects.with_raw_response.delete(project_id="gone", missing_ok=True)
    assert (raw.status_code, raw.parse(), raw.retries_taken) == (404, None, 0)
    assert raw.request_id == emulator.requests[-1].request_id
    (record,) = [r for r in caplog.records if r.name == "emissary"]
    assert record.getMessage().startswith("DELETE /v1/projects/gone attempt 1: 404 in ")
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes is not None and span.attributes["emissary.project_id"] == "gone"
    assert "error.type" not in span.attributes


async def test_tracing_false_makes_no_span(emulator: Emulator, spans: InMemorySpanExporter) -> None:
    async with AsyncEmissaryClient(
        api_key=emulator.api_key, server_url=emulator.url, tracing=False
    ) as client:
        await client.deployments.completions.create(**ARGS)
    assert spans.get_finished_spans() == ()


async def test_content_is_recorded_only_when_asked_for(
    emulator: Emulator, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as client:
        completion = await client.deployments.completions.create(**ARGS)
    (span,) = spans.get_finished_spans()
    assert span.attributes is not None
    assert json.loads(str(span.attributes["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}
    ]
    assert (
        json.loads(str(span.attributes["gen_ai.output.messages"]))[0]["parts"][0]["content"]
        == completion.response
    )


async def test_aiohttps_own_http_spans_nest_under_the_call(
    emulator: Emulator, spans: InMemorySpanExporter
) -> None:
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    instrumentor = AioHttpClientInstrumentor()
    instrumentor.instrument()
    try:
        async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as client:
            fake_time(client)
            emulator.faults.fail(status=503)
            await client.deployments.completions.create(**ARGS)
    finally:
        instrumentor.uninstrument()
    finished = spans.get_finished_spans()
    (ours,) = [s for s in finished if s.name.startswith("text_completion")]
    http = [s for s in finished if s is not ours]
    assert len(http) == 2  # one per attempt
    for span in http:
        assert span.parent is not None and span.parent.span_id == ours.context.span_id
        assert span.context.trace_id == ours.context.trace_id


def test_the_opentelemetry_internal_the_no_provider_check_reads_is_still_there() -> None:
    # _observe skips building spans while the API's module global is None (no provider
    # set): if the API renames it, the check falls back to get_tracer_provider(), slower.
    assert hasattr(trace, "_TRACER_PROVIDER"), "revisit Observer.start in emissary/_observe.py"
    assert trace._TRACER_PROVIDER is trace.get_tracer_provider()  # set by this module


def test_without_opentelemetry_nothing_of_it_is_imported() -> None:
    proc = run_python(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if it were not installed
        from emissary import EmissaryClient
        from emissary.testing import Emulator

        with Emulator() as emu, EmissaryClient(api_key=emu.api_key, server_url=emu.url) as c:
            print(c.deployments.completions.create(
                project_id="demo-project", deployment_id="demo-deployment",
                request_body={"prompt": "p"}).id is not None)
        print(sorted(m for m, v in sys.modules.items() if m.startswith("opentelemetry") and v))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["True", "[]"]


def test_spans_start_once_a_provider_is_set_after_the_client_was_made() -> None:
    proc = run_python(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from emissary import EmissaryClient
        from emissary.testing import Emulator

        with Emulator() as emu, EmissaryClient(api_key=emu.api_key, server_url=emu.url) as c:
            call = lambda: c.deployments.completions.create(
                project_id="demo-project", deployment_id="demo-deployment",
                request_body={"prompt": "p"})
            call()  # the API alone: no span is even built
            exporter = InMemorySpanExporter()
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
            call()
            print([s.name for s in exporter.get_finished_spans()])
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['text_completion demo-deployment']"


async def test_spans_never_hold_proxy_credentials(
    emulator: Emulator, spans: InMemorySpanExporter
) -> None:
    from .proxies import RecordingProxy

    password = "pr0xy-pa55"
    async with RecordingProxy(credentials=("u", password)) as proxy:
        async with AsyncEmissaryClient(
            api_key=emulator.api_key, server_url=emulator.url, proxy=proxy.url_with("u", password)
        ) as client:
            await client.deployments.completions.create(**ARGS)
    assert len(proxy.requests) == 1
    (span,) = spans.get_finished_spans()
    assert password not in everything_in(span) + json.dumps(
        [dict(e.attributes or {}) for e in span.events], default=str
    )


async def test_a_cancelled_batch_leaves_no_span_open(
    emulator: Emulator, client: AsyncEmissaryClient, spans: InMemorySpanExporter
) -> None:
    import asyncio

    emulator.faults.hang(50)
    started = _STARTED.count
    task = asyncio.ensure_future(
        client.deployments.completions.batch(
            project_id=PROJECT,
            deployment_id=DEPLOYMENT,
            requests=[{"prompt": "p"}] * 30,
            max_concurrency=20,  # 20 rows under way, 8 of them in flight, 12 waiting
        )
    )
    await until(lambda: emulator.in_flight == 8, "8 rows in flight")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    ended = spans.get_finished_spans()
    assert len(ended) == 8 and _STARTED.count - started == 8  # none started and left open
    assert all(span.status.status_code == StatusCode.ERROR for span in ended)
