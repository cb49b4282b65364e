"""Ours against the emulator in lifecycle order, all 25 operations, with the async client
and the sync one: base models, a project, two datasets (from bytes and from a file object)
polled until processed, a training job run by a `TrainingScript` and polled to Success, its
checkpoints, a deployment of checkpoint 3 polled to Deployed, the four kinds of inference,
a running job and a deploying deployment cancelled, then everything deleted (again with
``missing_ok``). Emulator and client share one `VirtualClock` (``instant_retries(client,
clock=clock)``): a 10-minute job takes no time, and a retry's wait moves the emulator's
time too. The generated SDK's ``str`` enums compare equal to the statuses, every model
result pickles, and a status outside the spec's enum (``"Queued"``, from a small server:
the emulator cannot report one) decodes as its string."""

from __future__ import annotations

import enum
import hashlib
import pickle
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web

from emissary import AsyncEmissaryClient, models
from emissary._operations import OPERATIONS, Operation
from emissary.errors import APIErrorNotFound
from emissary.testing import (
    DEFAULT_BASE_MODELS,
    DatasetScript,
    DeploymentScript,
    Emulator,
    TrainingScript,
    VirtualClock,
    classify,
    compare,
    embed,
    generate_chat_completion,
    generate_completion,
)

from .faults import FaultServer
from .platform_calls import method_of

pytestmark = pytest.mark.anyio

TRAIN = b"".join(b'{"prompt": "q%d", "completion": "a%d"}\n' % (i, i) for i in range(500))
TEST = b"".join(b'{"prompt": "t%d", "completion": "b%d"}\n' % (i, i) for i in range(50))
HEADER = b"# a header line the caller skips\n"
CHAT_MODEL = "Llama-3.2-1B-Instruct"
TERMINAL = {"Success", "Failed", "TimedOut", "Cancelled"}


@pytest.fixture
def emu(clock: VirtualClock) -> Iterator[Emulator]:
    """A threaded emulator (the sync client blocks the test's thread) on `clock`."""
    with Emulator(clock=clock) as emulator:
        emulator.scripts.dataset = DatasetScript(processing_s=2)
        emulator.scripts.training = TrainingScript(pending_s=30, running_s=600, checkpoints=4)
        emulator.scripts.deployment = DeploymentScript(pending_s=5, deploying_s=60)
        yield emulator


async def test_the_whole_lifecycle(
    api: Any, emu: Emulator, clock: VirtualClock, tmp_path: Path
) -> None:
    results: list[Any] = []

    def kept(result: Any) -> Any:
        results.append(result)
        return result

    # Base models.
    catalog = kept(await api.base_models.list())
    assert catalog == list(DEFAULT_BASE_MODELS)
    chat_model = kept(await api.base_models.get(base_model_name=CHAT_MODEL))
    assert chat_model.type == "chat" and chat_model.support_serverless is True

    # A project.
    project = kept(await api.projects.create(request=models.CreateProjectRequestBody(name="lc")))
    pid = project.id
    assert pid is not None and pid.startswith("proj-") and project.name == "lc"
    assert pid in [p.id for p in kept(await api.projects.list())]
    empty = kept(await api.projects.get(project_id=pid))
    assert (empty.datasets, empty.training_jobs, empty.deployments) == ([], [], [])

    # Two datasets: bytes, and a file object sent from where the caller left it.
    train = kept(
        await api.datasets.create(
            project_id=pid,
            request_body={
                "file": {"file_name": "train.jsonl", "content": TRAIN, "content_type": "text/x"},
                "name": "train",
            },
        )
    )
    assert train.is_uploaded is False and train.name == "train"
    path = tmp_path / "test.jsonl"
    path.write_bytes(HEADER + TEST)
    with path.open("rb") as handle:
        handle.readline()
        test = kept(
            await api.datasets.create(
                project_id=pid,
                request_body=models.CreateDatasetRequestBody(
                    file=models.File(file_name="test.jsonl", content=handle)
                ),
            )
        )
        assert not handle.closed and handle.tell() == len(HEADER)
    received = [(u.filename, u.content_type, u.name, u.size, u.sha256) for u in emu.uploads]
    assert received == [
        ("train.jsonl", "text/x", "train", len(TRAIN), sha(TRAIN)),
        ("test.jsonl", "application/octet-stream", None, len(TEST), sha(TEST)),
    ]

    # Polled until processed (2 s of virtual time, polls 0.5 s apart).
    polled = [kept(await api.datasets.get(project_id=pid, dataset_id=train.id))]
    while not polled[-1].is_uploaded:
        clock.advance(0.5)
        polled.append(kept(await api.datasets.get(project_id=pid, dataset_id=train.id)))
    assert [d.is_uploaded for d in polled] == [False] * 4 + [True]
    datasets = kept(await api.datasets.list(project_id=pid))
    assert [(d.id, d.is_uploaded) for d in datasets] == [(train.id, True), (test.id, True)]

    # A training job on its script, polled to Success while the clock moves.
    job = kept(
        await api.training_jobs.create(
            project_id=pid,
            request_body=models.CreateTrainingJobRequestBody(
                base_model=CHAT_MODEL,
                train_dataset_id=train.id,
                test_dataset_id=test.id,
                parameters={"epochs": 2, "learning_rate": 0.001},
                name="first",
            ),
        )
    )
    assert job.status == "Pending" and equal_both_ways(models.Status.PENDING, job.status)
    tid = job.id
    seen = [kept(await api.training_jobs.get(project_id=pid, training_job_id=tid))]
    while seen[-1].status not in TERMINAL:
        if len(seen) == 5:  # one poll meets a 503: its retry's wait moves the shared clock
            emu.faults.fail(1, status=503, retry_after=20)
            waited = len(clock.sleeps)
            seen.append(kept(await api.training_jobs.get(project_id=pid, training_job_id=tid)))
            assert clock.sleeps[waited:] == [20.0]
            continue
        clock.advance(60)
        seen.append(kept(await api.training_jobs.get(project_id=pid, training_job_id=tid)))
    statuses = [s.status for s in seen]
    assert statuses[0] == "Pending" and set(statuses[1:-1]) == {"Running"}
    progress = [s.progress for s in seen]
    assert progress == sorted(progress) and 0 < progress[-2] < 100
    detail = seen[-1]
    assert (
        equal_both_ways(models.TrainingJobDetailStatus.SUCCESS, detail.status)
        and detail.progress == 100
    )
    assert detail.hyper_parameters is not None and detail.hyper_parameters["epochs"] == 2
    assert detail.train_dataset is not None and detail.train_dataset.id == train.id
    assert detail.test_dataset is not None and detail.test_dataset.id == test.id
    assert len(emu.polls("training_jobs.get", tid)) == len(seen) + 1  # the 503 included
    checkpoints = kept(
        await api.training_jobs.list_checkpoints(project_id=pid, training_job_id=tid)
    )
    assert [c.checkpoint for c in checkpoints] == [1, 2, 3, 4]
    assert all(c.test_results and c.test_results.aggregated_test_result for c in checkpoints)
    (listed,) = kept(await api.training_jobs.list(project_id=pid))
    assert (listed.id, listed.status) == (tid, "Success")
    assert equal_both_ways(models.Status.SUCCESS, listed.status)

    # The project in between: what it holds so far.
    middle = kept(await api.projects.get(project_id=pid))
    assert [d.id for d in middle.datasets] == [train.id, test.id]
    assert [(j.id, j.status) for j in middle.training_jobs] == [(tid, "Success")]
    assert middle.deployments == []

    # A deployment of checkpoint 3, polled to Deployed.
    deployment = kept(
        await api.deployments.create(
            project_id=pid,
            request_body={
                "training_job_id": tid,
                "checkpoint": 3,
                "server_type": models.ServerType.SERVERLESS,
                "name": "blue",
            },
        )
    )
    assert equal_both_ways(models.DeploymentSummaryStatus.PENDING, deployment.status)
    did = deployment.id
    deploying = [kept(await api.deployments.get(project_id=pid, deployment_id=did))]
    while deploying[-1].status != "Deployed":
        clock.advance(10)
        deploying.append(kept(await api.deployments.get(project_id=pid, deployment_id=did)))
    assert [d.status for d in deploying] == ["Pending"] + ["Deploying"] * 6 + ["Deployed"]
    deployed = deploying[-1]
    assert equal_both_ways(models.DeploymentDetailStatus.DEPLOYED, deployed.status)
    assert (deployed.training_id, deployed.checkpoint, deployed.base_model) == (tid, 3, CHAT_MODEL)
    (summary,) = kept(await api.deployments.list(project_id=pid))
    assert (
        equal_both_ways(models.DeploymentSummaryStatus.DEPLOYED, summary.status)
        and summary.id == did
    )
    holding = kept(await api.projects.get(project_id=pid))
    assert [(d.id, d.status) for d in holding.deployments] == [(did, "Deployed")]

    # The four kinds of inference.
    ids = {"project_id": pid, "deployment_id": did}
    prompt = models.CompletionRequest(prompt="Hi", max_new_tokens=5)
    completion = kept(await api.deployments.completions.create(**ids, request_body=prompt))
    assert completion.response == generate_completion(pid, did, prompt)
    assert len(completion.response.split()) == 5
    conversation = models.GetChatCompletionsFromDeploymentRequestBody(
        messages=[models.Messages(role="user", content="Hi")], max_new_tokens=7
    )
    chat = kept(await api.deployments.chat.completions.create(**ids, request_body=conversation))
    assert chat.response == generate_chat_completion(pid, did, conversation)
    embedded = kept(
        await api.deployments.embeddings.create(
            **ids, request_body={"source_sentence": "a", "target_sentence": "b", "cosine": True}
        )
    )
    vectors = embedded.response.embeddings
    assert vectors.text1 == pytest.approx(embed("a")) and vectors.text2 == pytest.approx(embed("b"))
    assert all(type(x) is float for x in vectors.text1)
    assert embedded.response.cosine_score == pytest.approx(compare(embed("a"), embed("b"))[0])
    assert embedded.response.manhattan_distance is None  # not asked for
    label = kept(
        await api.deployments.classification.create(**ids, request_body={"source_sentence": "ok"})
    )
    assert label.response == classify("ok")

    # Cancel paths: a running job, then a deployment still being deployed.
    second = kept(
        await api.training_jobs.create(
            project_id=pid, request_body={"base_model": CHAT_MODEL, "train_dataset_id": train.id}
        )
    )
    clock.advance(30 + 300)  # half its running time: 2 checkpoints saved
    running = await api.training_jobs.get(project_id=pid, training_job_id=second.id)
    assert (running.status, running.progress) == ("Running", 50)
    assert await api.training_jobs.cancel(project_id=pid, training_job_id=second.id) is None
    clock.advance(3600)
    cancelled = kept(await api.training_jobs.get(project_id=pid, training_job_id=second.id))
    assert equal_both_ways(models.TrainingJobDetailStatus.CANCELLED, cancelled.status)
    assert cancelled.progress == 50
    kept_checkpoints = await api.training_jobs.list_checkpoints(
        project_id=pid, training_job_id=second.id
    )
    assert [c.checkpoint for c in kept_checkpoints] == [1, 2]
    other = kept(
        await api.deployments.create(
            project_id=pid, request_body={"training_job_id": tid, "checkpoint": 1}
        )
    )
    clock.advance(10)
    assert (await api.deployments.get(project_id=pid, deployment_id=other.id)).status == (
        "Deploying"
    )
    assert await api.deployments.cancel(project_id=pid, deployment_id=other.id) is None
    clock.advance(3600)
    stopped = kept(await api.deployments.get(project_id=pid, deployment_id=other.id))
    assert equal_both_ways(models.DeploymentDetailStatus.CANCELLED, stopped.status)
    with pytest.raises(APIErrorNotFound) as not_serving:
        await api.deployments.completions.create(
            project_id=pid, deployment_id=other.id, request_body={"prompt": "p"}
        )
    assert not_serving.value.data.code == "deployment_not_deployed"

    # Delete everything, innermost first; a second delete is a 404 unless missing_ok.
    gone: list[tuple[Any, dict[str, str], str]] = [
        (api.deployments, {"deployment_id": did}, "deployment_not_found"),
        (api.deployments, {"deployment_id": other.id}, "deployment_not_found"),
        (api.training_jobs, {"training_job_id": tid}, "training_job_not_found"),
        (api.training_jobs, {"training_job_id": second.id}, "training_job_not_found"),
        (api.datasets, {"dataset_id": train.id}, "dataset_not_found"),
        (api.datasets, {"dataset_id": test.id}, "dataset_not_found"),
    ]
    for namespace, which, code in gone:
        assert await namespace.delete(project_id=pid, **which) is None
        assert await namespace.delete(project_id=pid, **which, missing_ok=True) is None
        with pytest.raises(APIErrorNotFound) as again:
            await namespace.delete(project_id=pid, **which)
        assert again.value.data.code == code
    bare = kept(await api.projects.get(project_id=pid))
    assert (bare.datasets, bare.training_jobs, bare.deployments) == ([], [], [])
    assert await api.projects.delete(project_id=pid) is None
    assert await api.projects.delete(project_id=pid, missing_ok=True) is None
    with pytest.raises(APIErrorNotFound) as missing:
        await api.projects.get(project_id=pid)
    assert missing.value.data.code == "project_not_found"
    assert pid not in [p.id for p in await api.projects.list()]

    # All 25 operations were made, and every model result pickles.
    assert {r.operation for r in emu.requests} == {op.name for op in OPERATIONS}
    for result in results:
        copy = pickle.loads(pickle.dumps(result))
        assert copy == result and type(copy) is type(result)
    kinds = {type(r[0] if isinstance(r, list) else r) for r in results}
    assert kinds == {result_model(op) for op in OPERATIONS if op.result is not None}


def equal_both_ways(member: enum.Enum, status: str | None) -> bool:
    """Whether one of the generated SDK's ``str`` enums and a status compare equal, whichever
    side's ``__eq__`` is asked."""
    assert isinstance(member, str)  # the generated SDK's enums are ``str`` enums
    value: object = status
    return member == value and value == member


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def result_model(operation: Operation[Any]) -> type:
    """The model an operation returns (the item's, for a list)."""
    result = operation.result
    if typing.get_origin(result) is list:
        (result,) = typing.get_args(result)
    assert isinstance(result, type)
    return result


# --- statuses are open --------------------------------------------------------------------------


def status_fields(model: type) -> list[str]:
    """The fields of `model` that hold a status: its own, or its lists' items'."""
    found = []
    for field in msgspec.structs.fields(model):
        if field.name == "status":
            found.append("status")
        elif typing.get_origin(typing.get_args(field.type)[0]) is list:
            (item,) = typing.get_args(typing.get_args(field.type)[0])
            if "status" in {f.name for f in msgspec.structs.fields(item)}:
                found.append(field.name)
    return found


WITH_STATUS = [op for op in OPERATIONS if op.result is not None and status_fields(result_model(op))]


def test_the_operations_with_a_status() -> None:
    assert sorted(op.name for op in WITH_STATUS) == [
        "deployments.create",
        "deployments.get",
        "deployments.list",
        "projects.get",
        "training_jobs.create",
        "training_jobs.get",
        "training_jobs.list",
    ]


@pytest.mark.parametrize("operation", WITH_STATUS, ids=[op.name for op in WITH_STATUS])
async def test_an_unknown_status_decodes_as_its_string(operation: Operation[Any]) -> None:
    model = result_model(operation)
    one: dict[str, Any] = {"id": "x-1"}
    for name in status_fields(model):
        one[name] = "Queued" if name == "status" else [{"id": "x-2", "status": "Queued"}]
    is_list = typing.get_origin(operation.result) is list
    body = [one] if is_list else one

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=operation.status)

    ids = {name: f"{name}-1" for name in operation.parameters}
    arguments: dict[str, Any] = dict(ids)
    if operation.name == "training_jobs.create":
        arguments["request_body"] = {"base_model": "m", "train_dataset_id": "ds-1"}
    elif operation.name == "deployments.create":
        arguments["request_body"] = {"training_job_id": "tr-1", "checkpoint": 1}
    async with FaultServer(answer) as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            result = await method_of(client, operation)(**arguments)
    (decoded,) = result if is_list else [result]
    statuses = [
        item.status
        for name in status_fields(model)
        for item in ([decoded] if name == "status" else getattr(decoded, name))
    ]
    assert statuses and all(type(s) is str and s == "Queued" for s in statuses)
    assert pickle.loads(pickle.dumps(decoded)) == decoded
