"""``batch`` and ``iter_batch`` on every inference endpoint (completions, chat, embeddings,
classification), over real loopback HTTP to the emulator: the completions contract holds
for each (every row once, in order, under random faults; each result what a direct call
returns; bad rows their own results and never sent; the in-flight cap as the server sees
it; laziness; stopping early), and a user's code over the results type-checks under
``mypy --strict`` with ``if result.ok:`` narrowing to each endpoint's result type.

The engine is one (`emissary._batch`); `tests/test_batch.py` holds its finer points (the
adaptive limit, the Retry-After gate, the rate cap, Ctrl-C), shown there on completions.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emissary import AsyncEmissaryClient, EmissaryClient, models
from emissary.errors import RequestValidationError
from emissary.testing import Emulator, instant_retries
from emissary.utils import BackoffStrategy, RetryConfig

from .conftest import DEPLOYMENT, PROJECT
from .faults import run_python

pytestmark = pytest.mark.anyio

IDS = {"project_id": PROJECT, "deployment_id": DEPLOYMENT}
PATIENT = RetryConfig(
    "backoff", BackoffStrategy(100, 1000, 2.0, 600_000), retry_connection_errors=True,
    max_attempts=12,
)  # fmt: skip
"""Enough attempts that a 5 % fault rate never fails a row (0.05 ** 12)."""


@dataclass(frozen=True)
class Endpoint:
    """One inference endpoint as the tests drive it."""

    name: str
    resource: Callable[[Any], Any]
    """The endpoint's namespace on a client (async or sync)."""
    body: Callable[[int], dict[str, Any]]
    """Row `i`'s request body."""
    bad: list[Any]
    """Bodies the SDK refuses before any I/O."""
    answer: Callable[[Any], object]
    """What a result says (its text, vectors or class): compared with a direct call's."""


ENDPOINTS = [
    Endpoint(
        "completions",
        lambda c: c.deployments.completions,
        lambda i: {"prompt": f"prompt number {i}", "max_new_tokens": 4},
        [{"prompt": "typo", "max_tokens": 5}, {"prompt": "x", "temperature": -1}],
        lambda r: r.response,
    ),
    Endpoint(
        "chat",
        lambda c: c.deployments.chat.completions,
        lambda i: {"messages": [{"role": "user", "content": f"question {i}"}], "max_new_tokens": 4},
        [{"messages": [{"role": "robot", "content": "x"}]}, {"prompt": "not chat"}],
        lambda r: r.response,
    ),
    Endpoint(
        "embeddings",
        lambda c: c.deployments.embeddings,
        lambda i: {
            "source_sentence": f"first {i}",
            "target_sentence": f"second {i}",
            "cosine": True,
        },
        [{"source_sentence": "only one"}, {"source_sentence": 1, "target_sentence": "x"}],
        lambda r: (
            r.response.embeddings.text1,
            r.response.embeddings.text2,
            r.response.cosine_score,
        ),
    ),
    Endpoint(
        "classification",
        lambda c: c.deployments.classification,
        lambda i: {"source_sentence": f"sentence {i} to classify"},
        [{}, {"source_sentence": "x", "labels": ["a"]}],
        lambda r: r.response,
    ),
]
by_name = pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])


async def direct(endpoint: Endpoint, client: AsyncEmissaryClient, rows: list[Any]) -> list[object]:
    """Each row's answer by a plain ``create``, one after another."""
    resource = endpoint.resource(client)
    return [endpoint.answer(await resource.create(**IDS, request_body=row)) for row in rows]


@by_name
async def test_every_row_once_in_order_under_random_faults_as_a_direct_call_answers(
    endpoint: Endpoint, emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    rows = [endpoint.body(i) for i in range(200)]
    expected = await direct(endpoint, client, rows)
    assert len({repr(e) for e in expected}) > 1  # the answers tell rows apart
    emulator.requests.clear()
    emulator.faults.at_random(0.05, seed=11)
    with instant_retries(client):
        results = await endpoint.resource(client).batch(
            **IDS, requests=rows, concurrency=16, retries=PATIENT
        )
    assert [r.index for r in results] == list(range(200))
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert [endpoint.answer(r.result) for r in results] == expected
    faulted = [r for r in emulator.requests if r.fault is not None]
    assert 3 <= len(faulted) <= 30  # the faults did happen
    assert sum(r.retries_taken for r in results) == len(faulted)
    keys: dict[str, set[bytes]] = {}  # one logical call per row: one key, one body
    for seen in emulator.requests:
        keys.setdefault(seen.headers["Idempotency-Key"], set()).add(seen.body)
    assert len(keys) == 200 and all(len(b) == 1 for b in keys.values())
    assert {seen.operation for seen in emulator.requests} == {
        f"deployments.{'chat.completions' if endpoint.name == 'chat' else endpoint.name}.create"
    }


@by_name
async def test_bad_rows_are_their_own_results_and_are_never_sent(
    endpoint: Endpoint, emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    rows: list[Any] = [endpoint.body(0), *endpoint.bad, "not a body", endpoint.body(1)]
    results = await endpoint.resource(client).batch(**IDS, requests=rows)
    assert [r.ok for r in results] == [True] + [False] * (len(rows) - 2) + [True]
    assert all(isinstance(r.error, RequestValidationError) for r in results if not r.ok)
    assert len(emulator.requests) == 2


@by_name
async def test_the_server_never_sees_more_in_flight_than_the_concurrency(
    endpoint: Endpoint,
) -> None:
    async with (
        Emulator(latency_ms=20) as emu,
        AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url) as client,
    ):
        rows = [endpoint.body(i) for i in range(40)]
        results = await endpoint.resource(client).batch(**IDS, requests=rows, concurrency=5)
        assert all(r.ok for r in results)
    assert emu.max_in_flight == 5


@by_name
async def test_iter_batch_pulls_its_input_lazily_and_stopping_cancels_the_rest(
    endpoint: Endpoint, emulator: Emulator, client: AsyncEmissaryClient
) -> None:
    pulled = 0

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        for i in range(10_000):
            pulled += 1
            yield endpoint.body(i)

    seen = []
    batch = endpoint.resource(client).iter_batch(
        **IDS, requests=rows(), concurrency=4, ordered=True
    )
    async for result in batch:
        seen.append(endpoint.answer(result.result))
        if len(seen) == 10:
            break
    await batch.aclose()
    assert pulled <= 10 + 4 + 1  # never far ahead of what was handed out
    assert seen == await direct(endpoint, client, [endpoint.body(i) for i in range(10)])
    assert emulator.in_flight == 0


@by_name
def test_the_sync_client_batches_each_endpoint(
    endpoint: Endpoint, thread_emulator: Emulator, sync_client: EmissaryClient
) -> None:
    rows = [endpoint.body(i) for i in range(30)]
    resource = endpoint.resource(sync_client)
    expected = [endpoint.answer(resource.create(**IDS, request_body=row)) for row in rows]
    results = resource.batch(**IDS, requests=rows, concurrency=8)
    assert [endpoint.answer(r.result) for r in results] == expected
    lazily = [r.index for r in resource.iter_batch(**IDS, requests=rows, ordered=True)]
    assert lazily == list(range(30))


EMBED: models.GetEmbeddingsFromDeploymentRequestBodyTypedDict = {
    "source_sentence": "a corpus row",
    "target_sentence": "another",
    "cosine": True,
}


def vectors(results: list[Any]) -> list[list[float]]:
    """The embedding vectors of `results` (embeddings answers)."""
    return [v for r in results for v in (r.response.embeddings.text1, r.response.embeddings.text2)]


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="CPython's cycle collector")
async def test_embedding_vectors_are_left_out_of_the_cycle_collector_and_freed_as_usual(
    client: AsyncEmissaryClient,
) -> None:
    """A kept vector costs the collector nothing (`emissary._untrack`; the figures are in
    ``benchmarks/README.md``): decoded by a call or a batch, or built by hand."""
    embeddings = client.deployments.embeddings
    direct = [
        await embeddings.create(project_id=PROJECT, deployment_id=DEPLOYMENT, request_body=EMBED)
        for _ in range(3)
    ]
    batched = await embeddings.batch(
        project_id=PROJECT, deployment_id=DEPLOYMENT, requests=[EMBED] * 20, concurrency=4
    )
    found = vectors(direct) + vectors([r.result for r in batched])
    assert len(found) == 46 and all(len(v) > 0 for v in found)
    assert not any(gc.is_tracked(v) for v in found)
    assert found[0] == found[-2] and all(type(x) is float for x in found[0])  # as decoded
    made = models.GetEmbeddingsFromDeploymentEmbeddings(text1=[0.5, 1.5], text2=None)
    assert made.text1 == [0.5, 1.5] and not gc.is_tracked(made.text1)
    # Reference counting still frees a vector: its result holds one reference, no more.
    vector = found[0]
    del batched, found
    assert sys.getrefcount(vector) == 3  # `vector`, the result's field, the call's argument
    del direct
    assert sys.getrefcount(vector) == 2


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="CPython's cycle collector")
def test_the_sync_clients_embedding_vectors_are_untracked_too(sync_client: EmissaryClient) -> None:
    answer = sync_client.deployments.embeddings.create(
        project_id=PROJECT, deployment_id=DEPLOYMENT, request_body=EMBED
    )
    assert len(vectors([answer])) == 2
    assert not any(gc.is_tracked(v) for v in vectors([answer]))


def test_ctypes_is_imported_with_the_first_vector_and_without_it_vectors_stay_tracked() -> None:
    """`import emissary` stays light; a Python built without ctypes still embeds."""
    proc = run_python(
        """
        import gc, sys
        from emissary import EmissaryClient, models
        print("ctypes" in sys.modules)
        sys.modules["ctypes"] = None  # as if this Python had no ctypes
        from emissary.testing import Emulator
        with Emulator() as emu, EmissaryClient(api_key=emu.api_key, server_url=emu.url) as c:
            vectors = c.deployments.embeddings.create(
                project_id=sys.argv[1], deployment_id=sys.argv[2],
                request_body={"source_sentence": "a", "target_sentence": "b"},
            ).response.embeddings
        print(len(vectors.text1) > 0, gc.is_tracked(vectors.text1))
        """,
        PROJECT,
        DEPLOYMENT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["False", "True True"]


USER_CODE = """
from emissary import AsyncEmissaryClient, EmissaryClient

client = EmissaryClient(api_key="k", server_url="http://127.0.0.1:1")
for r in client.deployments.embeddings.batch(
    project_id="p", deployment_id="d",
    requests=[{"source_sentence": "a", "target_sentence": "b"}],
):
    if r.ok:
        reveal_type(r.result)
        assert r.result.response is not None
    else:
        reveal_type(r.error)
for c in client.deployments.classification.batch(
    project_id="p", deployment_id="d", requests=[{"source_sentence": "a"}]
):
    if c.ok:
        reveal_type(c.result.response)
    print(c.result.response)  # not narrowed: an error
chats = client.deployments.chat.completions.iter_batch(
    project_id="p", deployment_id="d", requests=[{"messages": [{"role": "user", "content": "a"}]}]
)
for chat in chats:
    if chat.ok:
        reveal_type(chat.result)
        reveal_type(chat.completion)
client.deployments.embeddings.batch(
    project_id="p", deployment_id="d", requests=[{"source_sentence": "only one"}]
)  # a body missing a required field: an error


async def main(a: AsyncEmissaryClient) -> None:
    async for e in a.deployments.embeddings.iter_batch(
        project_id="p", deployment_id="d", requests=[]
    ):
        if e.ok:
            reveal_type(e.result)
    done = await a.deployments.classification.batch(project_id="p", deployment_id="d", requests=[])
    reveal_type(done)
"""


def test_a_users_code_over_each_endpoints_results_type_checks_and_narrows(
    tmp_path: Path,
) -> None:
    from mypy import api

    user = tmp_path / "user_code.py"
    user.write_text(USER_CODE)
    out, _, status = api.run(
        ["--strict", "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", str(user)]
    )
    revealed = [
        line.split('Revealed type is "')[1][:-1] for line in out.splitlines() if "Revealed" in line
    ]
    models = "emissary.models._inference."
    assert revealed == [
        f"{models}GetEmbeddingsFromDeploymentResponseBody",
        "emissary.errors.EmissaryError",
        "str | None",
        f"{models}GetChatCompletionsFromDeploymentResponseBody",
        f"{models}GetChatCompletionsFromDeploymentResponseBody",
        f"{models}GetEmbeddingsFromDeploymentResponseBody",
        "list[emissary.models._results.BatchSuccess["
        f"{models}GetClassificationFromDeploymentResponseBody] | "
        "emissary.models._results.BatchFailure["
        f"{models}GetClassificationFromDeploymentResponseBody]]",
    ], out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert status == 1 and len(errors) == 2, out
    assert '| None" has no attribute "response"' in errors[0], out  # c.result, not narrowed
    assert "List item 0 has incompatible type" in errors[1], out  # no target_sentence
