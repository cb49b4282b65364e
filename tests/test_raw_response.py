"""What came back: ``with_raw_response``, request ids and retries on results and errors."""

from __future__ import annotations

import datetime
import pickle
from typing import Any

import pytest

from emissary import AsyncEmissaryClient, EmissaryClient, models
from emissary.errors import APIConnectionError, APIErrorNotFound, SDKError
from emissary.testing import Emulator

from .conftest import DEPLOYMENT, PROJECT, fake_time

pytestmark = pytest.mark.anyio

ARGS: dict[str, Any] = {
    "project_id": PROJECT,
    "deployment_id": DEPLOYMENT,
    "request_body": {"prompt": "raw", "max_new_tokens": 4},
}


async def test_the_raw_response_of_a_call(emulator: Emulator, client: AsyncEmissaryClient) -> None:
    fake_time(client)
    emulator.faults.fail(2, status=503, retry_after=1)
    raw = await client.deployments.completions.with_raw_response.create(**ARGS)
    assert isinstance(raw, models.APIResponse)
    last = emulator.requests[-1]
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("application/json")  # case-insensitive
    assert raw.request_id == last.request_id == raw.headers["X-Request-Id"]
    assert raw.idempotency_key == last.headers["Idempotency-Key"]
    assert raw.retries_taken == 2
    assert isinstance(raw.elapsed, datetime.timedelta) and raw.elapsed.total_seconds() >= 2.0
    assert raw.url == f"{emulator.url}/v1/projects/{PROJECT}/deployments/{DEPLOYMENT}/completions"
    completion = raw.parse()
    assert isinstance(completion, models.Completion)
    assert raw.content == raw.text.encode() and completion.id is not None
    assert completion.id in raw.text
    assert completion == await client.deployments.completions.create(**ARGS)  # the same text
    clone = pickle.loads(pickle.dumps(raw))
    assert (clone.status_code, clone.request_id, clone.parse()) == (200, raw.request_id, completion)
    assert clone.headers["X-Request-Id"] == raw.request_id


async def test_request_ids_are_unique_and_on_every_error(
    emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    ids = set()
    for _ in range(5):
        ids.add((await client.deployments.completions.with_raw_response.create(**ARGS)).request_id)
    assert len(ids) == 5 and None not in ids
    with pytest.raises(APIErrorNotFound) as caught:
        await client.deployments.completions.create(**{**ARGS, "deployment_id": "gone"})
    assert caught.value.request_id == emulator.requests[-1].request_id
    assert caught.value.retries_taken == 0


async def test_a_retried_error_says_its_request_id_and_retries(emulator: Emulator) -> None:
    async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as client:
        fake_time(client)
        emulator.faults.fail(3, status=500)
        with pytest.raises(SDKError) as caught:
            await client.deployments.completions.with_raw_response.create(**ARGS)
    assert caught.value.retries_taken == 2
    assert caught.value.request_id == emulator.requests[-1].request_id
    emulator.faults.drop()
    async with AsyncEmissaryClient(
        api_key=emulator.api_key, server_url=emulator.url, retry_config=None
    ) as client:
        fake_time(client)
        emulator.faults.drop(3)
        with pytest.raises(APIConnectionError) as dropped:
            await client.deployments.completions.create(**ARGS)
    assert getattr(dropped.value, "request_id", None) is None  # no response, no id


def test_the_sync_raw_response(thread_emulator: Emulator, sync_client: EmissaryClient) -> None:
    raw = sync_client.deployments.completions.with_raw_response.create(**ARGS)
    assert raw.status_code == 200 and raw.retries_taken == 0
    assert raw.request_id == thread_emulator.requests[-1].request_id
    assert raw.parse() == sync_client.deployments.completions.create(**ARGS)


async def test_a_raw_response_has_no_credentials_in_its_url() -> None:
    async with Emulator() as emu:
        url = emu.url.replace("http://", "http://bob:hunter2@")
        async with AsyncEmissaryClient(api_key=emu.api_key, server_url=url) as client:
            raw = await client.deployments.completions.with_raw_response.create(
                project_id="demo-project",
                deployment_id="demo-deployment",
                request_body={"prompt": "p"},
            )
    assert "hunter2" not in raw.url and "hunter2" not in repr(raw)
