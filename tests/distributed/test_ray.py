"""`emissary.integrations.ray` on a real local Ray (``ray.init(num_cpus=2)``) over the
emulator: every row's result equals a direct call's, a faulty row gets an `error` and the
job carries on, the rows of one batch run concurrently, numpy and pandas batches; the
same for `ChatCompletions`, `Embeddings` and `Classifications`, and with random faults
every row comes back once."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from emissary import EmissaryClient  # noqa: E402
from emissary.integrations.ray import (  # noqa: E402
    ChatCompletions,
    Classifications,
    Completions,
    Embeddings,
)
from emissary.testing import Emulator, classify  # noqa: E402

PROJECT, DEPLOYMENT = "demo-project", "demo-deployment"
pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    yield
    ray.shutdown()


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(latency_ms=20) as emulator:
        yield emulator


def direct(emu: Emulator, bodies: list[dict[str, Any]]) -> list[str | None]:
    with EmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
        return [
            r.completion.response if r.completion else None
            for r in client.deployments.completions.batch(
                project_id=PROJECT, deployment_id=DEPLOYMENT, requests=bodies
            )
        ]


def kwargs(emu: Emulator, **more: Any) -> dict[str, Any]:
    return {
        "project_id": PROJECT,
        "deployment_id": DEPLOYMENT,
        "api_key": emu.api_key,
        "server_url": emu.url,
        **more,
    }


def test_every_row_is_answered_a_bad_row_is_an_error_and_a_batch_runs_concurrently(
    cluster: None, emu: Emulator
) -> None:
    rows = [{"prompt": f"row {i}", "max_new_tokens": 4} for i in range(300)]
    rows[17]["max_new_tokens"] = 100_000  # the emulator refuses it: 400
    dataset = ray.data.from_items(rows).map_batches(
        Completions,
        fn_constructor_kwargs=kwargs(emu),
        compute=ray.data.ActorPoolStrategy(size=1),  # one actor: in flight from one batch
        batch_size=100,
    )
    out = sorted(dataset.take_all(), key=lambda row: int(row["prompt"].split()[1]))
    expected = direct(emu, rows)
    assert [row["response"] for row in out] == expected
    assert out[17]["response"] is None
    assert out[17]["error"].startswith("APIErrorInvalidInput: ")
    assert all(row["error"] is None for i, row in enumerate(out) if i != 17)
    assert all(row["request_id"] and row["completion_id"] for i, row in enumerate(out) if i != 17)
    assert emu.max_in_flight > 1  # the rows of a batch were sent together
    # every connection stayed on loopback
    sockets = subprocess.run(["ss", "-tnH"], capture_output=True, text=True, timeout=10)
    foreign = [
        line for line in sockets.stdout.splitlines() if line.split() and "127.0.0.1" not in line
    ]
    assert foreign == [] or all("::1" in line for line in foreign)


def test_pandas_batches_and_settings_from_columns(cluster: None, emu: Emulator) -> None:
    rows = [{"text": f"q {i}", "max_new_tokens": 2 + i % 3} for i in range(40)]
    dataset = ray.data.from_items(rows).map_batches(
        Completions,
        fn_constructor_kwargs=kwargs(emu, prompt_column="text", settings={"temperature": 0.5}),
        compute=ray.data.ActorPoolStrategy(size=2),
        batch_size=10,
        batch_format="pandas",
    )
    out = sorted(dataset.take_all(), key=lambda row: int(row["text"].split()[1]))
    assert [len(row["response"].split()) for row in out] == [2 + i % 3 for i in range(40)]
    assert {row["error"] for row in out} == {None}
    bodies = [
        {"prompt": r["text"], "max_new_tokens": r["max_new_tokens"], "temperature": 0.5}
        for r in rows
    ]
    assert [row["response"] for row in out] == direct(emu, bodies)


# --- chat, embeddings, classification -------------------------------------------------------

FORMATS = ["numpy", "pandas"]


def run(emu: Emulator, cls: type, rows: list[dict[str, Any]], fmt: str, **options: Any) -> Any:
    """Every output row of `cls` over `rows` (each with an ``i``), in input order."""
    dataset = ray.data.from_items(rows).map_batches(
        cls,
        fn_constructor_kwargs=kwargs(emu, **options),
        compute=ray.data.ActorPoolStrategy(size=1),
        batch_size=8,
        batch_format=fmt,
    )
    out = sorted(dataset.take_all(), key=lambda row: row["i"])
    assert [row["i"] for row in out] == [row["i"] for row in rows]  # each row once
    return out


def results(emu: Emulator, endpoint: str, bodies: list[dict[str, Any]]) -> list[Any]:
    """What the endpoint's ``batch`` gives for `bodies`, called directly."""
    with EmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
        resource = {
            "chat": client.deployments.chat.completions,
            "embeddings": client.deployments.embeddings,
            "classification": client.deployments.classification,
        }[endpoint]
        return [
            r.result
            for r in resource.batch(project_id=PROJECT, deployment_id=DEPLOYMENT, requests=bodies)
        ]


def kept(row: dict[str, Any], given: dict[str, Any]) -> None:
    """`row` holds every input column of `given`, with its value."""
    for name, value in given.items():
        if name == "messages" and value is not None:
            assert [dict(m) for m in row[name]] == value
        else:
            assert row[name] == value or (row[name] is None and value is None), name


@pytest.mark.parametrize("fmt", FORMATS)
def test_chat_completions_from_messages_or_a_prompt(cluster: None, emu: Emulator, fmt: str) -> None:
    rows: list[dict[str, Any]] = [
        {
            "i": i,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": f"question {i}"},
            ]
            if i % 2
            else None,
            "prompt": None if i % 2 else f"prompt {i}",
            "max_new_tokens": 3 + i % 4,
        }
        for i in range(20)
    ]
    rows[5]["messages"][1]["role"] = "robot"  # refused before sending
    rows[6]["prompt"] = None  # neither messages nor prompt
    rows[8]["max_new_tokens"] = 100_000  # the emulator refuses it: 400
    out = run(emu, ChatCompletions, rows, fmt, settings={"temperature": 0.5})
    bodies = [
        {
            "messages": r["messages"] or [{"role": "user", "content": r["prompt"]}],
            "max_new_tokens": r["max_new_tokens"],
            "temperature": 0.5,
        }
        for r in rows
    ]
    expected = results(emu, "chat", bodies)
    for i, (row, given, result) in enumerate(zip(out, rows, expected, strict=True)):
        kept(row, given)
        assert set(row) == {*given, "response", "completion_id", "request_id", "error"}
        if i in (5, 6, 8):
            assert row["response"] is None
            assert row["completion_id"] is None
            continue
        assert row["error"] is None
        assert row["response"] == result.response
        assert row["completion_id"] == result.id
        assert row["request_id"]
    assert out[5]["error"].startswith("RequestValidationError: request_body.messages[1].role")
    assert out[5]["request_id"] is None
    assert out[6]["error"] == (
        "RequestValidationError: the row has no conversation: neither a 'messages' nor a "
        "'prompt' value"
    )
    assert out[8]["error"].startswith("APIErrorInvalidInput: ")
    assert out[8]["request_id"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_embeddings_and_the_scores_asked_for(cluster: None, emu: Emulator, fmt: str) -> None:
    rows: list[dict[str, Any]] = [
        {
            "i": i,
            "source_sentence": f"source {i}",
            "target_sentence": f"target {i // 2}",
            "cosine": True if i % 3 == 0 else None,
        }
        for i in range(12)
    ]
    rows[4]["target_sentence"] = None  # a required field missing: refused before sending
    out = run(emu, Embeddings, rows, fmt, settings={"euclidean": True})
    bodies = [
        {
            key: value
            for key, value in {**r, "euclidean": True}.items()
            if key != "i" and value is not None
        }
        for r in rows
    ]
    expected = results(emu, "embeddings", bodies)
    scores = ("cosine_score", "manhattan_distance", "euclidean_distance")
    added = {"source_embedding", "target_embedding", *scores, "embedding_id"}
    for i, (row, given, result) in enumerate(zip(out, rows, expected, strict=True)):
        kept(row, given)
        assert set(row) == {*given, *added, "request_id", "error"}
        if i == 4:
            assert all(row[name] is None for name in added)
            continue
        assert row["error"] is None
        assert row["request_id"]
        assert list(row["source_embedding"]) == result.response.embeddings.text1
        assert list(row["target_embedding"]) == result.response.embeddings.text2
        assert row["embedding_id"] == result.id
        assert row["euclidean_distance"] == result.response.euclidean_distance is not None
        assert row["cosine_score"] == result.response.cosine_score
        assert (row["cosine_score"] is None) == (i % 3 != 0)
        assert row["manhattan_distance"] is None
    assert out[4]["error"] == (
        "RequestValidationError: request_body.target_sentence is required (a string)"
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_classifications_keep_a_label_column(cluster: None, emu: Emulator, fmt: str) -> None:
    rows: list[dict[str, Any]] = [
        {"i": i, "source_sentence": f"review {i}", "label": "expected"} for i in range(16)
    ]
    rows[3]["source_sentence"] = None
    out = run(emu, Classifications, rows, fmt)
    expected = results(
        emu, "classification", [{"source_sentence": f"review {i}"} for i in range(16)]
    )
    for i, (row, given, result) in enumerate(zip(out, rows, expected, strict=True)):
        kept(row, given)
        added = {"predicted_class", "classification_id", "request_id", "error"}
        assert set(row) == {*given, *added}
        if i == 3:
            assert row["predicted_class"] is None
            assert row["error"] == (
                "RequestValidationError: request_body.source_sentence is required (a string)"
            )
            continue
        assert row["error"] is None
        assert row["predicted_class"] == result.response == classify(f"review {i}")
        assert row["classification_id"] == result.id


ENDPOINTS = [
    (ChatCompletions, lambda i: {"prompt": f"p {i}", "max_new_tokens": 2}, "response"),
    (
        Embeddings,
        lambda i: {"source_sentence": f"s {i}", "target_sentence": "t", "cosine": True},
        "cosine_score",
    ),
    (Classifications, lambda i: {"source_sentence": f"s {i}"}, "predicted_class"),
]


@pytest.mark.parametrize(
    ("cls", "row", "column"), ENDPOINTS, ids=lambda x: getattr(x, "__name__", "")
)
def test_random_faults_give_every_row_once(
    cluster: None, emu: Emulator, cls: type, row: Any, column: str
) -> None:
    emu.faults.at_random(0.1, seed=23)
    rows = [{"i": i, **row(i)} for i in range(60)]
    out = run(emu, cls, rows, "numpy")
    for answer in out:
        assert (answer[column] is None) != (answer["error"] is None), answer
    assert sum(answer["error"] is None for answer in out) >= 50  # retries mend most faults
    faulted = [r for r in emu.requests if r.fault is not None]
    assert faulted  # the faults did happen
