"""Steering one call or one client: extra headers, query and body, idempotency keys,
default headers and ``with_options``; over real HTTP to the emulator."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from emissary import AsyncEmissaryClient, EmissaryClient
from emissary.errors import (
    APIErrorInvalidInput,
    APIErrorUnauthorized,
    ClientClosedError,
    ConfigurationError,
    RequestTypeError,
    RequestValidationError,
)
from emissary.testing import Emulator, RetryClock

from .conftest import DEPLOYMENT, PROJECT, fake_time

pytestmark = pytest.mark.anyio

ARGS: dict[str, Any] = {
    "project_id": PROJECT,
    "deployment_id": DEPLOYMENT,
    "request_body": {"prompt": "p"},
}


async def test_extra_headers_go_on_every_attempt_over_the_sdks_own(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    fake_time(client)
    emulator.faults.fail(2, status=503)
    await client.deployments.completions.create(
        **ARGS,
        extra_headers={"X-Trace": "t-1", "user-agent": "my-app/2", "X-Emissary-Attempt": "9"},
    )
    assert len(emulator.requests) == 3
    for number, request in enumerate(emulator.requests, start=1):
        assert request.headers["X-Trace"] == "t-1"
        assert request.headers.getall("User-Agent") == ["my-app/2"]  # replaced, not added
        assert request.headers["X-Emissary-Attempt"] == str(number)  # always the SDK's


async def test_an_idempotency_key_given_in_any_case_replaces_the_fresh_one(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    await client.deployments.completions.create(
        **ARGS, extra_headers={"idempotency-key": "from-headers"}
    )
    assert emulator.requests[-1].headers.getall("Idempotency-Key") == ["from-headers"]


@pytest.mark.parametrize(
    ("headers", "kind", "words"),
    [
        ({"X-A": "one\r\nX-Injected: 1"}, RequestValidationError, ["line break"]),
        ({"X-A\n": "v"}, RequestValidationError, ["not a valid header name"]),
        ({"X-A": "nul\x00"}, RequestValidationError, ["NUL"]),
        ({"": "v"}, RequestValidationError, ["empty"]),
        ({"X-A": 5}, RequestTypeError, ["string", "int"]),
        ({"X-A": "\ud800"}, RequestValidationError, ["surrogate"]),
        (["X-A"], RequestTypeError, ["mapping"]),
    ],
)
async def test_bad_extra_headers_are_refused_before_io(
    emulator: Emulator,
    client: AsyncEmissaryClient,
    headers: Any,
    kind: type[Exception],
    words: list[str],
) -> None:
    with pytest.raises(kind) as caught:
        await client.deployments.completions.create(**ARGS, extra_headers=headers)
    assert caught.value.field.startswith("extra_headers")  # type: ignore[attr-defined]
    for word in words:
        assert word in str(caught.value)
    assert emulator.requests == []


async def test_extra_query_is_added_percent_encoded(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    result = await client.deployments.completions.create(
        **ARGS, extra_query={"trace": "a b&c", "v": "2"}
    )
    assert result.response
    assert emulator.requests[-1].raw_path.endswith("/completions?trace=a%20b%26c&v=2")
    with pytest.raises(RequestTypeError):
        await client.deployments.completions.create(**ARGS, extra_query={"n": 1})
    assert len(emulator.requests) == 1


async def test_extra_body_fields_are_merged_unchecked_but_encodable(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    # The emulator knows no such field (it answers 400): what matters is what was sent.
    with pytest.raises(APIErrorInvalidInput):
        await client.deployments.completions.create(
            project_id=PROJECT,
            deployment_id=DEPLOYMENT,
            request_body={"prompt": "p", "top_k": 3},
            extra_body={"seed": 7, "stop": ["\n"], "top_k": 5},
        )
    assert json.loads(emulator.requests[-1].body) == {
        "prompt": "p",
        "top_k": 5,
        "seed": 7,
        "stop": ["\n"],
    }
    for bad in ({"seed": object()}, {"seed": 1j}):
        with pytest.raises(RequestTypeError) as caught:
            await client.deployments.completions.create(**ARGS, extra_body=bad)
        assert caught.value.field == "extra_body.seed"
    with pytest.raises(RequestTypeError):
        await client.deployments.completions.create(**ARGS, extra_body=["seed"])  # type: ignore[arg-type]
    assert len(emulator.requests) == 1


async def test_an_idempotency_key_is_the_same_on_every_attempt(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    fake_time(client)
    emulator.faults.drop(2)
    await client.deployments.completions.create(**ARGS, idempotency_key="order-42")
    assert [r.headers["Idempotency-Key"] for r in emulator.requests] == ["order-42"] * 3
    for bad in ("", "two\nlines", 42):
        with pytest.raises(RequestValidationError) as caught:
            await client.deployments.completions.create(**ARGS, idempotency_key=bad)  # type: ignore[arg-type]
        assert caught.value.field == "idempotency_key"
    assert len(emulator.requests) == 3


async def test_default_headers_go_on_every_request_of_the_client(emulator: Emulator) -> None:
    async with AsyncEmissaryClient(
        api_key=emulator.api_key,
        server_url=emulator.url,
        default_headers={"X-Team": "search", "User-Agent": "search-bot/1"},
    ) as client:
        for _ in range(2):
            await client.deployments.completions.create(**ARGS)
        await client.deployments.completions.create(**ARGS, extra_headers={"X-Team": "ads"})
    assert [r.headers["X-Team"] for r in emulator.requests] == ["search", "search", "ads"]
    assert {r.headers["User-Agent"] for r in emulator.requests} == {"search-bot/1"}
    with pytest.raises(ConfigurationError, match="line break"):
        AsyncEmissaryClient(api_key="k", server_url=emulator.url, default_headers={"X": "a\nb"})


async def test_with_options_changes_settings_and_shares_the_pool(emulator: Emulator) -> None:
    base = AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url)
    other = base.with_options(timeout_ms=5_000, default_headers={"X-Variant": "b"})
    wrong = base.with_options(api_key="wrong-key")
    assert type(other) is AsyncEmissaryClient and other.server_url == base.server_url
    await base.deployments.completions.create(**ARGS)
    await other.deployments.completions.create(**ARGS)
    with pytest.raises(APIErrorUnauthorized):
        await wrong.deployments.completions.create(**ARGS)
    assert len({r.peer for r in emulator.requests}) == 1  # one pooled connection for all
    assert [r.headers.get("X-Variant") for r in emulator.requests] == [None, "b", None]
    assert [r.headers["X-API-Key"] for r in emulator.requests] == [
        emulator.api_key,
        emulator.api_key,
        "wrong-key",
    ]
    await other.close()  # stops the derived client only
    assert other.closed and not base.closed
    with pytest.raises(ClientClosedError):
        await other.deployments.completions.create(**ARGS)
    await base.deployments.completions.create(**ARGS)
    await base.close()  # closes the pool for everyone
    assert wrong.closed
    with pytest.raises(ClientClosedError):
        await wrong.deployments.completions.create(**ARGS)


async def test_with_options_shares_the_retry_budget_and_the_test_clock(
    emulator: Emulator,
) -> None:
    async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as base:
        clock = RetryClock().install(base)
        derived = base.with_options(retry_config=None)
        emulator.faults.fail(2, status=503)
        await derived.deployments.completions.create(**ARGS)
        assert len(clock.sleeps) == 2  # the derived client waits on the same virtual clock


def test_the_sync_with_options_shares_the_loop_thread(thread_emulator: Emulator) -> None:
    def loop_threads() -> int:
        return sum(t.name == "emissary-loop" for t in threading.enumerate())

    before = loop_threads()
    with EmissaryClient(api_key=thread_emulator.api_key, server_url=thread_emulator.url) as base:
        derived = base.with_options(default_headers={"X-Variant": "sync"})
        assert type(derived) is EmissaryClient
        base.deployments.completions.create(**ARGS)
        derived.deployments.completions.create(**ARGS)
        raw = derived.deployments.completions.with_raw_response.create(**ARGS)
        assert raw.status_code == 200
        assert loop_threads() == before + 1
        derived.close()
        assert derived.closed and not base.closed
        base.deployments.completions.create(**ARGS)
    assert loop_threads() == before
    assert [r.headers.get("X-Variant") for r in thread_emulator.requests] == [
        None,
        "sync",
        "sync",
        None,
    ]
