"""`emissary.integrations.ray.Completions` on a real local Ray (``ray.init(num_cpus=2)``)
over the emulator: every row's text equals a direct call's, a faulty row gets an `error`
and the job carries on, the rows of one batch run concurrently, numpy and pandas batches."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from emissary import EmissaryClient  # noqa: E402
from emissary.integrations.ray import Completions  # noqa: E402
from emissary.testing import Emulator  # noqa: E402

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
