"""The emulator speaks the contract: statuses, bodies, deterministic toy completions, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from emissary import AsyncEmissaryClient, models
from emissary.testing import (
    DEFAULT_API_KEY,
    DEFAULT_MAX_NEW_TOKENS,
    Emulator,
    generate_completion,
)

from .conftest import DEPLOYMENT, PROJECT

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent
PATH = f"/v1/projects/{PROJECT}/deployments/{DEPLOYMENT}/completions"


async def raw_post(
    emulator: Emulator, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, str, dict[str, object]]:
    """A request from plain aiohttp, so the emulator is checked independently of the SDK."""
    async with aiohttp.ClientSession() as session:
        async with session.post(
            emulator.url + path,
            data=body,
            headers={"Content-Type": "application/json", **(headers or {})},
        ) as response:
            return response.status, response.content_type, await response.json()


KEY = {"X-API-Key": DEFAULT_API_KEY}


async def test_success_shape(emulator: Emulator) -> None:
    status, ctype, payload = await raw_post(emulator, PATH, b'{"prompt": "hi"}', KEY)
    assert (status, ctype) == (200, "application/json")
    assert set(payload) == {"id", "response"}
    assert isinstance(payload["response"], str)
    assert len(payload["response"].split()) == DEFAULT_MAX_NEW_TOKENS


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}])
async def test_missing_or_wrong_key_is_401(emulator: Emulator, headers: dict[str, str]) -> None:
    status, ctype, payload = await raw_post(emulator, PATH, b'{"prompt": "hi"}', headers)
    assert (status, ctype) == (401, "application/json")
    assert payload["status"] == 401 and isinstance(payload["error"], str)


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (f"/v1/projects/nope/deployments/{DEPLOYMENT}/completions", "project_not_found"),
        (f"/v1/projects/{PROJECT}/deployments/nope/completions", "deployment_not_found"),
        ("/v1/elsewhere", "route_not_found"),
    ],
)
async def test_unknown_things_are_404_with_a_code(emulator: Emulator, path: str, code: str) -> None:
    status, _, payload = await raw_post(emulator, path, b'{"prompt": "hi"}', KEY)
    assert status == 404
    assert payload["status"] == 404 and payload["code"] == code and payload["error"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b'{"prompt": 1}',
        b'{"prompt": "p", "top_p": 2}',
        b'{"prompt": "p", "max_new_tokens": 0}',
        b'{"prompt": "p", "max_new_tokens": 1.0}',
        b'{"prompt": "p", "top_k": true}',
        b'{"prompt": "p", "extra": 1}',
        b'{"prompt": "p", "max_new_tokens": 5000}',
    ],
)
async def test_invalid_bodies_are_400(emulator: Emulator, body: bytes) -> None:
    status, _, payload = await raw_post(emulator, PATH, body, KEY)
    assert status == 400
    assert payload["status"] == 400 and isinstance(payload["error"], str)


async def test_the_same_request_gives_the_same_text(client: AsyncEmissaryClient) -> None:
    body = {"prompt": "repeat me", "max_new_tokens": 30}
    create = client.deployments.completions.create
    first = await create(project_id=PROJECT, deployment_id=DEPLOYMENT, request_body=body)
    second = await create(project_id=PROJECT, deployment_id=DEPLOYMENT, request_body=body)
    assert first == second


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "other"},
        {"temperature": 1.3},
        {"top_k": 40},
        {"top_p": 0.5},
        {"do_sample": True},
    ],
)
def test_each_setting_changes_the_text(change: dict[str, object]) -> None:
    base = {"prompt": "base", "max_new_tokens": 20}
    a = generate_completion("p", "d", models.CompletionRequest(**base))  # type: ignore[arg-type]
    b = generate_completion("p", "d", models.CompletionRequest(**{**base, **change}))  # type: ignore[arg-type]
    assert a != b
    assert len(b.split()) == 20


def test_the_deployment_changes_the_text() -> None:
    body = models.CompletionRequest(prompt="x")
    assert generate_completion("p", "d1", body) != generate_completion("p", "d2", body)


@pytest.mark.parametrize("length", [1, 2, 17, 500, 4096])
def test_exactly_max_new_tokens_words(length: int) -> None:
    text = generate_completion(
        "p", "d", models.CompletionRequest(prompt="n", max_new_tokens=length)
    )
    assert len(text.split()) == length


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("top_k", [None, 3, 50])
def test_no_repeat_ngram_size_is_honoured(n: int, top_k: int | None) -> None:
    body = models.CompletionRequest(
        prompt="ng", max_new_tokens=600, no_repeat_ngram_size=n, top_k=top_k
    )
    words = generate_completion("p", "d", body).split()
    assert len(words) == 600
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    assert len(grams) == len(set(grams))


def test_without_the_setting_ngrams_do_repeat() -> None:
    words = generate_completion(
        "p", "d", models.CompletionRequest(prompt="ng", max_new_tokens=600, top_k=3)
    ).split()
    assert len(set(words)) < len(words)


def test_the_generated_sdk_works_against_the_emulator_unchanged(thread_emulator: Emulator) -> None:
    emissary_client_sdk = pytest.importorskip("emissary_client_sdk")
    from emissary_client_sdk import models as gen_models

    sdk = emissary_client_sdk.EmissaryClient(
        api_key=thread_emulator.api_key, server_url=thread_emulator.url
    )
    res = sdk.deployments.completions.create(
        project_id=PROJECT,
        deployment_id=DEPLOYMENT,
        request_body={
            "prompt": "What is the capital of France?",
            "temperature": 0.7,
            "max_new_tokens": 12,
            "top_p": 0.9,
            "top_k": 50,
            "no_repeat_ngram_size": 2,
            "do_sample": True,
        },
    )
    assert res is not None and res.id and len((res.response or "").split()) == 12
    with pytest.raises(gen_models.APIErrorNotFound) as not_found:
        sdk.deployments.completions.create(
            project_id=PROJECT, deployment_id="missing", request_body={"prompt": "p"}
        )
    assert not_found.value.data.code == "deployment_not_found"
    with pytest.raises(gen_models.APIErrorInvalidInput) as invalid:
        sdk.deployments.completions.create(
            project_id=PROJECT,
            deployment_id=DEPLOYMENT,
            request_body={"prompt": "p", "max_new_tokens": 9999},
        )
    assert invalid.value.data.status == 400
    bad_key = emissary_client_sdk.EmissaryClient(api_key="wrong", server_url=thread_emulator.url)
    with pytest.raises(gen_models.SDKError) as unauthorized:
        bad_key.deployments.completions.create(
            project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
        )
    assert unauthorized.value.status_code == 401
    for client in (sdk, bad_key):  # the generated SDK never closes its httpx clients itself
        client.sdk_configuration.client.close()


def test_command_line_serves_the_given_deployments() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emissary.testing",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--api-key",
            "cli-key",
            "--deployment",
            "alpha/one",
            "--deployment",
            "beta/two",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "alpha/one" in line and "beta/two" in line
        url = line.split(" on ", 1)[1].split()[0]
        from emissary import EmissaryClient

        with EmissaryClient(api_key="cli-key", server_url=url) as client:
            result = client.deployments.completions.create(
                project_id="beta",
                deployment_id="two",
                request_body={"prompt": "p", "max_new_tokens": 3},
            )
        assert len((result.response or "").split()) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == 0


def test_command_line_help_documents_defaults() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "emissary.testing", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "300"},
    ).stdout
    for word in (
        "--host",
        "--port",
        "--api-key",
        "--deployment",
        "8000",
        DEFAULT_API_KEY,
        "demo-project/demo-deployment",
    ):
        assert word in out


def test_recorded_requests_are_json_friendly(thread_emulator: Emulator) -> None:
    from emissary import EmissaryClient

    with EmissaryClient(api_key=thread_emulator.api_key, server_url=thread_emulator.url) as c:
        c.deployments.completions.create(
            project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "r"}
        )
    (request,) = thread_emulator.requests
    assert json.loads(request.body) == {"prompt": "r"}


def test_command_line_on_a_busy_port_says_so_in_one_line() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "emissary.testing", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"127.0.0.1:{port}" in lines[0]
    assert "in use" in lines[0] and "--port 0" in lines[0]
