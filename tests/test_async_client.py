"""The async client end to end, over real HTTP to the emulator."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import tracemalloc
import warnings

import pytest

from emissary import AsyncEmissaryClient, models
from emissary.errors import (
    APIErrorInvalidInput,
    APIErrorNotFound,
    APIErrorUnauthorized,
    ClientClosedError,
    SDKError,
)
from emissary.testing import Emulator
from emissary.utils import BackoffStrategy, RetryConfig

from .conftest import DEPLOYMENT, PROJECT, fake_time
from .faults import connections_to, read_request, serve_async, stop_async

pytestmark = pytest.mark.anyio

FULL_BODY = {
    "prompt": "What is the capital of France?",
    "temperature": 0.7,
    "max_new_tokens": 50,
    "top_p": 0.9,
    "top_k": 50,
    "no_repeat_ngram_size": 2,
    "do_sample": True,
}


async def test_the_reference_example_returns_a_completion(client: AsyncEmissaryClient) -> None:
    result = await client.deployments.completions.create(
        project_id=PROJECT, deployment_id=DEPLOYMENT, request_body=FULL_BODY
    )
    assert isinstance(result, models.GetCompletionsFromDeploymentResponseBody)
    assert result.id and result.id.startswith("cmpl-")
    assert result.response is not None
    assert len(result.response.split()) == 50


async def test_the_request_on_the_wire(emulator: Emulator, client: AsyncEmissaryClient) -> None:
    await client.deployments.completions.create(
        project_id=PROJECT, deployment_id=DEPLOYMENT, request_body=FULL_BODY
    )
    (request,) = emulator.requests
    assert request.method == "POST"
    assert request.raw_path == f"/v1/projects/{PROJECT}/deployments/{DEPLOYMENT}/completions"
    assert request.headers["X-API-Key"] == emulator.api_key
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("emissary-python/")
    assert json.loads(request.body) == FULL_BODY


async def test_unset_fields_are_not_sent(emulator: Emulator, client: AsyncEmissaryClient) -> None:
    await client.deployments.completions.create(
        project_id=PROJECT,
        deployment_id=DEPLOYMENT,
        request_body={"prompt": "p", "temperature": None, "top_k": 3},
    )
    await client.deployments.completions.create(
        project_id=PROJECT,
        deployment_id=DEPLOYMENT,
        request_body=models.CompletionRequest(prompt="p", do_sample=False),
    )
    assert [r.body for r in emulator.requests] == [
        b'{"prompt":"p","top_k":3}',
        b'{"prompt":"p","do_sample":false}',
    ]


async def test_a_struct_and_a_dict_give_the_same_result(client: AsyncEmissaryClient) -> None:
    create = client.deployments.completions.create
    from_dict = await create(project_id=PROJECT, deployment_id=DEPLOYMENT, request_body=FULL_BODY)
    from_struct = await create(
        project_id=PROJECT,
        deployment_id=DEPLOYMENT,
        request_body=models.GetCompletionsFromDeploymentRequestBody(**FULL_BODY),  # type: ignore[arg-type]
    )
    assert from_dict == from_struct


@pytest.mark.parametrize(
    ("project_id", "raw"),
    [
        ("a/b", "a%2Fb"),
        ("q?x=1#frag", "q%3Fx%3D1%23frag"),
        ("50%", "50%25"),
        ("with space", "with%20space"),
        ("ünï", "%C3%BCn%C3%AF"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("%2E%2E", "%252E%252E"),
    ],
)
async def test_ids_cannot_change_the_path(
    emulator: Emulator, client: AsyncEmissaryClient, project_id: str, raw: str
) -> None:
    with pytest.raises(APIErrorNotFound) as caught:
        await client.deployments.completions.create(
            project_id=project_id, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
        )
    assert caught.value.data.code == "project_not_found"
    assert repr(project_id) in caught.value.data.error
    assert (
        emulator.requests[-1].raw_path == f"/v1/projects/{raw}/deployments/{DEPLOYMENT}/completions"
    )


async def test_odd_ids_reach_a_deployment_that_has_them() -> None:
    async with Emulator(deployments=[("team/a b", "../x?y")]) as emu:
        async with AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
            result = await client.deployments.completions.create(
                project_id="team/a b", deployment_id="../x?y", request_body={"prompt": "p"}
            )
    assert result.response


async def test_wrong_key_is_unauthorized(emulator: Emulator) -> None:
    async with AsyncEmissaryClient(api_key="wrong", server_url=emulator.url) as client:
        with pytest.raises(APIErrorUnauthorized) as caught:
            await client.deployments.completions.create(
                project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
            )
    assert caught.value.status_code == 401
    assert caught.value.data.status == 401
    assert "API key" in caught.value.data.error


async def test_unknown_deployment_is_not_found(client: AsyncEmissaryClient) -> None:
    with pytest.raises(APIErrorNotFound) as caught:
        await client.deployments.completions.create(
            project_id=PROJECT, deployment_id="nope", request_body={"prompt": "p"}
        )
    assert caught.value.data.code == "deployment_not_found"
    assert caught.value.data.status == 404


async def test_server_side_validation_is_invalid_input(client: AsyncEmissaryClient) -> None:
    # Valid for the SDK, refused by the emulator's own limit.
    with pytest.raises(APIErrorInvalidInput) as caught:
        await client.deployments.completions.create(
            project_id=PROJECT,
            deployment_id=DEPLOYMENT,
            request_body={"prompt": "p", "max_new_tokens": 100_000},
        )
    assert caught.value.data.status == 400
    assert "max_new_tokens" in caught.value.data.error


async def test_per_call_server_url_overrides_the_clients(emulator: Emulator) -> None:
    async with Emulator(api_key=emulator.api_key) as other:
        async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as c:
            await c.deployments.completions.create(
                project_id="demo-project",
                deployment_id="demo-deployment",
                request_body={"prompt": "p"},
                server_url=other.url + "/",
            )
    assert len(other.requests) == 1
    assert emulator.requests == []


async def test_api_key_callable_is_called_per_request(emulator: Emulator) -> None:
    calls = []

    def key() -> str:
        calls.append(1)
        return emulator.api_key

    async with AsyncEmissaryClient(api_key=key, server_url=emulator.url) as client:
        for _ in range(3):
            await client.deployments.completions.create(
                project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
            )
    assert len(calls) == 3


async def test_api_key_from_the_environment(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMISSARY_CLIENT_API_KEY", emulator.api_key)
    monkeypatch.setenv("EMISSARY_SERVER_URL", emulator.url)
    async with AsyncEmissaryClient() as client:
        result = await client.deployments.completions.create(
            project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
        )
    assert result.response


async def test_connections_are_reused(emulator: Emulator, client: AsyncEmissaryClient) -> None:
    for _ in range(5):
        await client.deployments.completions.create(
            project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
        )
    assert len({r.peer for r in emulator.requests}) == 1


async def test_concurrent_calls(emulator: Emulator, client: AsyncEmissaryClient) -> None:
    results = await asyncio.gather(
        *(
            client.deployments.completions.create(
                project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": f"n{i}"}
            )
            for i in range(50)
        )
    )
    assert len({r.response for r in results}) == 50
    assert len(emulator.requests) == 50


async def test_close_releases_the_session_and_refuses_new_calls(emulator: Emulator) -> None:
    client = AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url)
    await client.deployments.completions.create(
        project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
    )
    assert connections_to(emulator.port) == 1
    await client.close()
    assert connections_to(emulator.port) == 0
    assert client.closed
    await client.close()  # idempotent
    with pytest.raises(ClientClosedError, match="closed"):
        await client.deployments.completions.create(
            project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
        )


async def test_chained_construction_works(emulator: Emulator) -> None:
    # The resource keeps its client alive.
    create = AsyncEmissaryClient(
        api_key=emulator.api_key, server_url=emulator.url
    ).deployments.completions.create
    result = await create(
        project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
    )
    assert result.response
    await create.__self__._client.close()


def test_an_async_client_survives_several_asyncio_runs() -> None:
    """The session is bound to a loop; a new loop gets a new session, not 'loop is closed'.

    The first run ends without closing the client, so its pooled socket dies with its loop
    and is reclaimed by the garbage collector (with a ResourceWarning, as in aiohttp).
    """
    with warnings.catch_warnings(), Emulator() as emu:
        warnings.simplefilter("ignore", ResourceWarning)
        client = AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url)

        async def call() -> str | None:
            result = await client.deployments.completions.create(
                project_id="demo-project",
                deployment_id="demo-deployment",
                request_body={"prompt": "p"},
            )
            return result.response

        first = asyncio.run(call())
        second = asyncio.run(call())
        asyncio.run(client.close())
        gc.collect()
    assert first == second and first
    assert len({r.peer for r in emu.requests}) == 2


async def test_retry_config_none_sends_once_and_backoff_retries(emulator: Emulator) -> None:
    from aiohttp import web

    from .faults import FaultServer, json_handler

    async with FaultServer(json_handler(503, b"busy")) as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            sleeps = fake_time(client).sleeps
            with pytest.raises(SDKError) as caught:
                await client.deployments.completions.create(
                    project_id="p",
                    deployment_id="d",
                    request_body={"prompt": "p"},
                    retries=RetryConfig("none", BackoffStrategy(1, 2, 2.0, 100), False),
                )
            assert caught.value.status_code == 503
            assert len(server.requests) == 1

            ok = 0

            async def flaky(request: web.Request) -> web.StreamResponse:
                nonlocal ok
                ok += 1
                if ok < 3:
                    return web.Response(status=503, text="busy")
                return web.json_response({"id": "x", "response": "fine"})

            server.handler = flaky
            result = await client.deployments.completions.create(
                project_id="p", deployment_id="d", request_body={"prompt": "p"}
            )
    assert result.response == "fine"
    assert len(server.requests) == 4
    assert len(sleeps) == 2


async def test_plain_http_responses_are_read_without_a_256_kib_buffer() -> None:
    # asyncio reads plain TCP with recv(256 KiB): a buffer glibc maps and unmaps for every
    # response. The client's connections read 64 KiB at most, from the heap.
    body = b'{"id": "c", "response": "ok"}'
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    def answer(conn: socket.socket) -> None:
        while read_request(conn):
            conn.sendall(reply)

    server = await serve_async(answer, read_first=False)
    try:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            create = client.deployments.completions.create
            args = {"project_id": "p", "deployment_id": "d", "request_body": {"prompt": "x"}}
            await create(**args)  # the connection is made
            tracemalloc.start()
            try:
                for _ in range(3):
                    assert (await create(**args)).response == "ok"
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    finally:
        await stop_async(server)
    assert peak < 200 * 1024, f"peak traced memory {peak} bytes"


def test_the_asyncio_internal_the_read_buffer_change_relies_on_is_still_there() -> None:
    # _transport._Connector lowers a plain-TCP transport's read size only while asyncio's
    # own default is 256 KiB (the `max_size` class attribute): if asyncio renames or
    # changes it, the optimisation silently stops, so say so here.
    import asyncio.selector_events as selector_events

    from emissary._transport import HEAP_READ_SIZE

    default = getattr(selector_events._SelectorSocketTransport, "max_size", None)
    assert default == 256 * 1024, "asyncio's read size changed: revisit _transport._Connector"
    assert default > HEAP_READ_SIZE
