"""The emulator serves the whole platform: every route, lifecycles on a clock, uploads,
inference on deployed models, conflict policy, records and the command line.

Checked over real HTTP on loopback: with the unchanged generated SDK
(``emissary_client_sdk``), plain aiohttp, `http.client` and raw sockets, never through
the emulator's internals. Lifecycles run on a `VirtualClock` (advanced by the test, or by
a client's sleeps); the few real-time checks (``time_scale``) are bounded waits.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import math
import os
import re
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import msgspec
import pytest

from emissary import AsyncEmissaryClient, models
from emissary.testing import (
    CLASSIFICATION_LABELS,
    DEFAULT_API_KEY,
    DEFAULT_BASE_MODELS,
    DEFAULT_MAX_UPLOAD_BYTES,
    EMBEDDING_SIZE,
    MAX_NEW_TOKENS_LIMIT,
    VIRTUAL_EPOCH,
    DatasetScript,
    DeploymentOutcome,
    DeploymentScript,
    Emulator,
    RetryClock,
    TrainingOutcome,
    TrainingScript,
    Upload,
    VirtualClock,
    classify,
    compare,
    embed,
    generate_chat_completion,
    instant_retries,
)

from .faults import ROOT, WAIT, until, wait_until

pytestmark = pytest.mark.anyio
KEY = {"X-API-Key": DEFAULT_API_KEY}
T = TypeVar("T")

P = "/v1/projects/{project_id}"
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("base_models.list", "GET", "/v1/models"),
    ("base_models.get", "GET", "/v1/models/{base_model_name}"),
    ("projects.create", "POST", "/v1/projects"),
    ("projects.list", "GET", "/v1/projects"),
    ("projects.get", "GET", P),
    ("projects.delete", "DELETE", P),
    ("datasets.create", "POST", P + "/datasets"),
    ("datasets.list", "GET", P + "/datasets"),
    ("datasets.get", "GET", P + "/datasets/{dataset_id}"),
    ("datasets.delete", "DELETE", P + "/datasets/{dataset_id}"),
    ("training_jobs.create", "POST", P + "/training-jobs"),
    ("training_jobs.list", "GET", P + "/training-jobs"),
    ("training_jobs.get", "GET", P + "/training-jobs/{training_job_id}"),
    ("training_jobs.delete", "DELETE", P + "/training-jobs/{training_job_id}"),
    ("training_jobs.cancel", "POST", P + "/training-jobs/{training_job_id}/cancel"),
    (
        "training_jobs.list_checkpoints",
        "GET",
        P + "/training-jobs/{training_job_id}/checkpoints",
    ),
    ("deployments.create", "POST", P + "/deployments"),
    ("deployments.list", "GET", P + "/deployments"),
    ("deployments.get", "GET", P + "/deployments/{deployment_id}"),
    ("deployments.delete", "DELETE", P + "/deployments/{deployment_id}"),
    ("deployments.cancel", "POST", P + "/deployments/{deployment_id}/cancel"),
    ("deployments.completions.create", "POST", P + "/deployments/{deployment_id}/completions"),
    (
        "deployments.chat.completions.create",
        "POST",
        P + "/deployments/{deployment_id}/chat/completions",
    ),
    ("deployments.embeddings.create", "POST", P + "/deployments/{deployment_id}/embeddings"),
    (
        "deployments.classification.create",
        "POST",
        P + "/deployments/{deployment_id}/classification",
    ),
)
"""The spec's 25 operations (platform.md §1): name, method, path."""
INFERENCE = {
    "completions": {"prompt": "Hi"},
    "chat/completions": {"messages": [{"role": "user", "content": "Hi"}]},
    "embeddings": {"source_sentence": "a", "target_sentence": "b"},
    "classification": {"source_sentence": "a"},
}
"""A valid body for each kind of inference, by the path's last part."""
IDS = {
    "proj": re.compile(r"proj-[0-9a-f]{12}"),
    "ds": re.compile(r"ds-[0-9a-f]{12}"),
    "tr": re.compile(r"tr-[0-9a-f]{12}"),
    "dp": re.compile(r"dp-[0-9a-f]{12}"),
}


def fill(path: str, **values: str) -> str:
    """`path` with its parameters replaced: by `values`, else by ``x``."""
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)


# --- plain HTTP helpers ---------------------------------------------------------------------


@dataclass
class Reply:
    """An answer: status, JSON body (None when empty) and headers."""

    status: int
    body: Any
    headers: Mapping[str, str]


class Api:
    """The emulator over plain aiohttp, independently of any SDK."""

    def __init__(self, session: aiohttp.ClientSession, emu: Emulator) -> None:
        self.session = session
        self.emu = emu

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] = KEY,
    ) -> Reply:
        """One request; the answer with its body read."""
        async with self.session.request(
            method, self.emu.url + path, json=json, data=data, headers=dict(headers)
        ) as response:
            raw = await response.read()
            body = await response.json(content_type=None) if raw else None
            return Reply(response.status, body, response.headers)

    async def ok(self, method: str, path: str, status: int = 200, **options: Any) -> Any:
        """The JSON body of a request that must answer `status`."""
        reply = await self.request(method, path, **options)
        assert reply.status == status, reply.body
        return reply.body

    async def project(self, name: str | None = None) -> str:
        """A new project's id."""
        body = {} if name is None else {"name": name}
        return str((await self.ok("POST", "/v1/projects", 201, json=body))["id"])

    async def upload(
        self,
        project_id: str,
        content: bytes = b"question,answer\nhi,hello\n",
        *,
        filename: str = "train.csv",
        name: str | None = None,
    ) -> dict[str, Any]:
        """Upload a dataset; its summary."""
        form = aiohttp.FormData()
        if name is not None:
            form.add_field("name", name)
        form.add_field("file", content, filename=filename, content_type="text/csv")
        path = f"/v1/projects/{project_id}/datasets"
        summary: dict[str, Any] = await self.ok("POST", path, 201, data=form)
        return summary

    async def dataset(self, clock: VirtualClock, project_id: str) -> str:
        """A processed dataset's id (the clock advanced past its processing)."""
        dataset_id = str((await self.upload(project_id))["id"])
        clock.advance(self.emu.scripts.dataset.processing_s)
        return dataset_id

    async def job(self, project_id: str, dataset_id: str, **fields: Any) -> str:
        """A new training job's id."""
        body = {"base_model": "Llama-3.2-1B-Instruct", "train_dataset_id": dataset_id, **fields}
        path = f"/v1/projects/{project_id}/training-jobs"
        return str((await self.ok("POST", path, 201, json=body))["id"])

    async def trained(self, clock: VirtualClock, project_id: str) -> str:
        """A training job that ended (the clock advanced past its script)."""
        job_id = await self.job(project_id, await self.dataset(clock, project_id))
        script = self.emu.scripts.training
        clock.advance(script.pending_s + script.running_s)
        return job_id

    async def deployment(self, project_id: str, job_id: str, checkpoint: int = 1) -> str:
        """A new deployment's id."""
        body = {"training_job_id": job_id, "checkpoint": checkpoint}
        path = f"/v1/projects/{project_id}/deployments"
        return str((await self.ok("POST", path, 201, json=body))["id"])

    async def deployed(self, clock: VirtualClock) -> tuple[str, str]:
        """A new project and a deployment in it that ended (``Deployed`` by default)."""
        project_id = await self.project()
        deployment_id = await self.deployment(project_id, await self.trained(clock, project_id))
        script = self.emu.scripts.deployment
        clock.advance(script.pending_s + script.deploying_s)
        return project_id, deployment_id

    async def status(self, path: str) -> Any:
        """The ``status`` of the resource at `path`."""
        return (await self.ok("GET", path))["status"]


@pytest.fixture
async def emu(clock: VirtualClock) -> AsyncIterator[Emulator]:
    """An emulator on the test's loop, on a virtual clock."""
    async with Emulator(clock=clock) as emulator:
        yield emulator


@pytest.fixture
async def api(emu: Emulator) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, emu)


def multipart(*parts: tuple[str, bytes]) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body from (part headers, content) pairs, and its headers."""
    boundary = "emissary-test-boundary"
    body = b"".join(
        f"--{boundary}\r\n{head}\r\n\r\n".encode() + content + b"\r\n" for head, content in parts
    )
    body += f"--{boundary}--\r\n".encode()
    return body, {**KEY, "Content-Type": f"multipart/form-data; boundary={boundary}"}


def watch(
    get: Callable[[], T], done: Callable[[T], bool], clock: VirtualClock, *, step: float
) -> list[T]:
    """Every answer of `get`, polled until `done`, the clock advanced `step` seconds
    between polls (at most 1000 polls)."""
    answers = [get()]
    while not done(answers[-1]):
        assert len(answers) < 1000, "it never ended"
        clock.advance(step)
        answers.append(get())
    return answers


def file_part(filename_param: str, content: bytes = b"a,b\n") -> tuple[str, bytes]:
    """A ``file`` part whose Content-Disposition ends with `filename_param`."""
    return (f"Content-Disposition: form-data; name=file; {filename_param}", content)


# --- 9. the generated SDK, unchanged, runs all 25 operations ------------------------------


def test_the_generated_sdk_runs_every_operation_in_lifecycle_order() -> None:
    gen = pytest.importorskip("emissary_client_sdk")
    from emissary_client_sdk import models as gm

    clock = VirtualClock()
    with Emulator(clock=clock) as emu:
        emu.scripts.dataset = DatasetScript(processing_s=2)
        emu.scripts.training = TrainingScript(pending_s=30, running_s=600, checkpoints=4)
        emu.scripts.deployment = DeploymentScript(pending_s=5, deploying_s=60)
        sdk = gen.EmissaryClient(api_key=emu.api_key, server_url=emu.url)
        try:
            # Base models.
            catalog = sdk.base_models.list()
            assert [m.name for m in catalog] == [m.name for m in DEFAULT_BASE_MODELS]
            chat_model = sdk.base_models.get(base_model_name="Llama-3.2-1B-Instruct")
            assert chat_model.type == "chat" and chat_model.support_serverless is True

            # A project, and a dataset uploaded into it.
            project = sdk.projects.create(request={"name": "lifecycle"})
            assert IDS["proj"].fullmatch(project.id) and project.name == "lifecycle"
            assert project.id in [p.id for p in sdk.projects.list()]
            pid = project.id
            content = b"question,answer\nWhy?,Because.\n"
            dataset = sdk.datasets.create(
                project_id=pid,
                request_body={
                    "file": {
                        "file_name": "train.csv",
                        "content": content,
                        "content_type": "text/csv",
                    },
                    "name": "train",
                },
            )
            assert IDS["ds"].fullmatch(dataset.id) and dataset.is_uploaded is False
            (upload,) = emu.uploads
            assert (upload.filename, upload.content_type, upload.name) == (
                "train.csv",
                "text/csv",
                "train",
            )
            assert (upload.size, upload.sha256) == (
                len(content),
                hashlib.sha256(content).hexdigest(),
            )
            assert [d.id for d in sdk.datasets.list(project_id=pid)] == [dataset.id]
            clock.advance(2)
            assert sdk.datasets.get(project_id=pid, dataset_id=dataset.id).is_uploaded is True

            # A training job, polled to Success while the clock moves.
            job = sdk.training_jobs.create(
                project_id=pid,
                request_body={
                    "base_model": "Llama-3.2-1B-Instruct",
                    "train_dataset_id": dataset.id,
                    "parameters": {"epochs": 2, "learning_rate": 0.001},
                    "name": "first",
                },
            )
            assert IDS["tr"].fullmatch(job.id) and job.status == "Pending"
            tid = job.id
            polled = watch(
                lambda: (
                    sdk.training_jobs.get(project_id=pid, training_job_id=tid),
                    sdk.training_jobs.list_checkpoints(project_id=pid, training_job_id=tid),
                ),
                lambda seen: seen[0].status not in ("Pending", "Running"),
                clock,
                step=60,
            )
            for n, (running, saved) in enumerate(polled[:-1]):
                ran = min(max(60 * n - 30, 0), 600)  # seconds of running time by poll n
                assert running.progress == math.floor(100 * ran / 600)
                assert [c.checkpoint for c in saved] == list(range(1, 4 * ran // 600 + 1))
            assert [p.status for p, _ in polled[:2]] == ["Pending", "Running"]
            detail = polled[-1][0]
            assert detail.status == "Success" and detail.progress == 100
            assert detail.hyper_parameters is not None and detail.hyper_parameters["epochs"] == 2
            assert detail.train_dataset is not None and detail.train_dataset.id == dataset.id
            assert len(emu.polls("training_jobs.get", tid)) == len(polled) == 12
            checkpoints = sdk.training_jobs.list_checkpoints(project_id=pid, training_job_id=tid)
            assert [c.checkpoint for c in checkpoints] == [1, 2, 3, 4]
            assert [j.status for j in sdk.training_jobs.list(project_id=pid)] == ["Success"]

            # A deployment of its last checkpoint, polled to Deployed.
            deployment = sdk.deployments.create(
                project_id=pid,
                request_body={"training_job_id": tid, "checkpoint": 4, "server_type": "serverless"},
            )
            assert IDS["dp"].fullmatch(deployment.id) and deployment.status == "Pending"
            did = deployment.id
            deploying = watch(
                lambda: sdk.deployments.get(project_id=pid, deployment_id=did),
                lambda seen: seen.status == "Deployed",
                clock,
                step=10,
            )
            assert [x.status for x in deploying] == ["Pending"] + ["Deploying"] * 6 + ["Deployed"]
            d = deploying[-1]
            assert (d.training_id, d.checkpoint, d.base_model) == (tid, 4, "Llama-3.2-1B-Instruct")
            assert [x.id for x in sdk.deployments.list(project_id=pid)] == [did]
            detail_of_project = sdk.projects.get(project_id=pid)
            assert [x.id for x in detail_of_project.datasets] == [dataset.id]
            assert [x.id for x in detail_of_project.training_jobs] == [tid]
            assert [x.status for x in detail_of_project.deployments] == ["Deployed"]

            # The four kinds of inference.
            ids = {"project_id": pid, "deployment_id": did}
            completion = sdk.deployments.completions.create(
                **ids, request_body={"prompt": "Hi", "max_new_tokens": 5}
            )
            assert len(completion.response.split()) == 5
            chat = sdk.deployments.chat.completions.create(
                **ids,
                request_body={"messages": [{"role": "user", "content": "Hi"}], "max_new_tokens": 7},
            )
            assert len(chat.response.split()) == 7
            embeddings = sdk.deployments.embeddings.create(
                **ids,
                request_body={"source_sentence": "a", "target_sentence": "b", "cosine": True},
            )
            assert embeddings.response.embeddings.text1 == pytest.approx(embed("a"))
            assert embeddings.response.cosine_score == pytest.approx(
                compare(embed("a"), embed("b"))[0]
            )
            label = sdk.deployments.classification.create(
                **ids, request_body={"source_sentence": "great"}
            )
            assert label.response == classify("great")

            # Cancel paths: a running job and a deploying deployment.
            second = sdk.training_jobs.create(
                project_id=pid,
                request_body={
                    "base_model": "Llama-3.2-1B-Instruct",
                    "train_dataset_id": dataset.id,
                },
            )
            clock.advance(30 + 300)  # half of its running time: 2 checkpoints saved
            sdk.training_jobs.cancel(project_id=pid, training_job_id=second.id)
            clock.advance(3600)
            cancelled = sdk.training_jobs.get(project_id=pid, training_job_id=second.id)
            assert (cancelled.status, cancelled.progress) == ("Cancelled", 50)
            kept = sdk.training_jobs.list_checkpoints(project_id=pid, training_job_id=second.id)
            assert [c.checkpoint for c in kept] == [1, 2]
            other = sdk.deployments.create(
                project_id=pid, request_body={"training_job_id": tid, "checkpoint": 2}
            )
            clock.advance(10)
            assert sdk.deployments.get(project_id=pid, deployment_id=other.id).status == "Deploying"
            sdk.deployments.cancel(project_id=pid, deployment_id=other.id)
            clock.advance(3600)
            assert sdk.deployments.get(project_id=pid, deployment_id=other.id).status == "Cancelled"
            with pytest.raises(gm.APIErrorNotFound) as not_deployed:
                sdk.deployments.completions.create(
                    project_id=pid, deployment_id=other.id, request_body={"prompt": "p"}
                )
            assert not_deployed.value.data.code == "deployment_not_deployed"

            # Delete paths, innermost first; then each is gone.
            sdk.deployments.delete(project_id=pid, deployment_id=did)
            sdk.training_jobs.delete(project_id=pid, training_job_id=second.id)
            sdk.datasets.delete(project_id=pid, dataset_id=dataset.id)
            with pytest.raises(gm.APIErrorNotFound):
                sdk.deployments.get(project_id=pid, deployment_id=did)
            with pytest.raises(gm.APIErrorNotFound):
                sdk.datasets.get(project_id=pid, dataset_id=dataset.id)
            sdk.projects.delete(project_id=pid)
            with pytest.raises(gm.APIErrorNotFound) as gone:
                sdk.projects.get(project_id=pid)
            assert gone.value.data.code == "project_not_found"
            assert pid not in [p.id for p in sdk.projects.list()]
        finally:
            sdk.sdk_configuration.client.close()
        assert {r.operation for r in emu.requests} == {name for name, _, _ in ROUTES}


def test_the_generated_sdks_quirks_against_a_faithful_emulator() -> None:
    """Without a file, the generated SDK sends an url-encoded form (refused, 400); a 401 on
    a ``get`` is a bare SDKError (the spec lists no 401 there); it percent-encodes ``"``
    in a file name, HTML-form style, and the emulator records the name as sent."""
    gen = pytest.importorskip("emissary_client_sdk")
    from emissary_client_sdk import models as gm

    with Emulator() as emu:
        sdk = gen.EmissaryClient(api_key=emu.api_key, server_url=emu.url)
        stranger = gen.EmissaryClient(api_key="wrong", server_url=emu.url)
        try:
            with pytest.raises(gm.APIErrorInvalidInput) as no_file:
                sdk.datasets.create(project_id="demo-project", request_body={"name": "n"})
            assert "multipart/form-data" in no_file.value.data.error
            assert (
                emu.requests[-1]
                .headers["Content-Type"]
                .startswith("application/x-www-form-urlencoded")
            )
            with pytest.raises(gm.SDKError) as unauthorized:
                stranger.projects.get(project_id="demo-project")
            assert unauthorized.value.status_code == 401
            sdk.datasets.create(
                project_id="demo-project",
                request_body={"file": {"file_name": 'say "hi" 100%.csv', "content": b"x"}},
            )
            assert emu.uploads[-1].filename == "say %22hi%22 100%.csv"
        finally:
            for client in (sdk, stranger):
                client.sdk_configuration.client.close()


# --- 1. routes: statuses, error bodies, ids ------------------------------------------------


@pytest.mark.parametrize(("name", "method", "path"), ROUTES, ids=[r[0] for r in ROUTES])
@pytest.mark.parametrize("key", [None, "wrong"])
async def test_every_route_is_401_without_the_right_key(
    api: Api, name: str, method: str, path: str, key: str | None
) -> None:
    headers = {} if key is None else {"X-API-Key": key}
    reply = await api.request(method, fill(path), headers=headers)
    assert reply.status == 401
    assert reply.body["status"] == 401 and isinstance(reply.body["error"], str)
    assert api.emu.requests[-1].operation == name


@pytest.mark.parametrize(
    ("name", "method", "path"), [r for r in ROUTES if "{project_id}" in r[2]], ids=lambda v: v
)
async def test_every_route_in_a_missing_project_is_404(
    api: Api, name: str, method: str, path: str
) -> None:
    reply = await api.request(method, fill(path, project_id="nope"))
    assert reply.status == 404
    assert reply.body["code"] == "project_not_found" and "nope" in reply.body["error"]


@pytest.mark.parametrize(
    ("name", "method", "path"),
    [r for r in ROUTES if re.search(r"\{(dataset|training_job|deployment)_id\}", r[2])],
    ids=lambda v: v,
)
async def test_every_route_to_a_missing_resource_is_404_with_its_code(
    api: Api, name: str, method: str, path: str
) -> None:
    kind = re.findall(r"\{(\w+)_id\}", path)[-1]
    reply = await api.request(method, fill(path, project_id="demo-project"))
    assert reply.status == 404
    assert reply.body == {
        "status": 404,
        "error": f"{kind.replace('_', ' ')} 'x' not found in project 'demo-project'",
        "code": f"{kind}_not_found",
    }


@pytest.mark.parametrize("path", sorted({r[2] for r in ROUTES}))
async def test_every_path_answers_another_method_with_405_and_allow(api: Api, path: str) -> None:
    allowed = sorted(method for _, method, p in ROUTES if p == path)
    for method in ("PUT", "PATCH", *({"GET", "POST", "DELETE"} - set(allowed))):
        reply = await api.request(method, fill(path))
        assert reply.status == 405, method
        assert reply.headers["Allow"] == ", ".join(allowed)
        assert reply.body["status"] == 405
        assert api.emu.requests[-1].operation is None


@pytest.mark.parametrize(
    "path", ["/v1/nowhere", "/v1/projects/", "/v1/projects//datasets", "/v1/models/a/b"]
)
async def test_an_unknown_path_is_404_route_not_found(api: Api, path: str) -> None:
    reply = await api.request("GET", path)
    assert (reply.status, reply.body["code"]) == (404, "route_not_found")
    assert api.emu.requests[-1].operation is None
    assert api.emu.requests[-1].path_params == {}


@pytest.mark.parametrize(
    ("name", "method", "path"),
    [r for r in ROUTES if r[1] == "POST" and "datasets" not in r[2] and "cancel" not in r[2]],
    ids=lambda v: v,
)
@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"unknown_field": 1}'])
async def test_every_json_body_is_checked_400(
    api: Api, name: str, method: str, path: str, body: bytes
) -> None:
    target = fill(path, project_id="demo-project", deployment_id="demo-deployment")
    reply = await api.request(method, target, data=body)
    assert reply.status == 400
    assert set(reply.body) == {"status", "error"} and reply.body["status"] == 400
    assert reply.body["error"].startswith("invalid request body")


async def test_successes_have_the_specs_statuses_and_shapes(api: Api, clock: VirtualClock) -> None:
    project = await api.request("POST", "/v1/projects", json={"name": "p"})
    assert (project.status, project.body) == (201, {"id": project.body["id"], "name": "p"})
    pid = project.body["id"]
    listed = await api.request("GET", "/v1/projects")
    assert listed.status == 200 and isinstance(listed.body, list)
    unnamed = await api.ok("POST", "/v1/projects", 201)  # the body is optional
    assert set(unnamed) == {"id"}  # no name: left out, not null
    job = await api.trained(clock, pid)
    cancel = await api.request("POST", f"/v1/projects/{pid}/training-jobs/{job}/cancel")
    assert (cancel.status, cancel.body) == (204, None)
    delete = await api.request("DELETE", f"/v1/projects/{pid}/training-jobs/{job}")
    assert (delete.status, delete.body) == (204, None)
    again = await api.request("DELETE", f"/v1/projects/{pid}/training-jobs/{job}")
    assert (again.status, again.body["code"]) == (404, "training_job_not_found")
    for kind in ("datasets", "training-jobs", "deployments"):
        assert isinstance(await api.ok("GET", f"/v1/projects/{pid}/{kind}"), list)


async def test_path_segments_are_percent_decoded() -> None:
    odd = models.BaseModelSummary(name="org/model name", type="chat", support_serverless=False)
    async with (
        Emulator(base_models=[odd], deployments=["my project/dep 1"]) as emu,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, emu)
        model = await api.ok("GET", "/v1/models/org%2Fmodel%20name")
        assert model == {"name": "org/model name", "type": "chat", "support_serverless": False}
        assert emu.requests[-1].path_params == {"base_model_name": "org/model name"}
        path = "/v1/projects/my%20project/deployments/dep%201/completions"
        assert (await api.ok("POST", path, json={"prompt": "p"}))["response"]
        assert emu.requests[-1].path_params == {
            "project_id": "my project",
            "deployment_id": "dep 1",
        }


# --- 1. the base model catalog -------------------------------------------------------------


async def test_the_default_catalog_has_each_type_with_and_without_serverless(api: Api) -> None:
    catalog = await api.ok("GET", "/v1/models")
    types = {m["type"] for m in catalog}
    assert types == {"completion", "chat", "embeddings", "classification"}
    for kind in types:
        serverless = {m["support_serverless"] for m in catalog if m["type"] == kind}
        assert serverless == {True, False}
    for model in catalog:
        assert await api.ok("GET", f"/v1/models/{model['name']}") == model
        assert model["parameter_template"]
    assert [m["name"] for m in catalog] == [m.name for m in api.emu.base_models]
    missing = await api.request("GET", "/v1/models/gpt-17")
    assert (missing.status, missing.body["code"]) == (404, "base_model_not_found")


async def test_a_catalog_of_your_own() -> None:
    mine = [models.BaseModelSummary(name="tiny", type="completion", support_serverless=True)]
    async with Emulator(base_models=mine) as emu, aiohttp.ClientSession() as session:
        assert await Api(session, emu).ok("GET", "/v1/models") == [
            {"name": "tiny", "type": "completion", "support_serverless": True}
        ]
    twice = [*mine, *mine]
    with pytest.raises(ValueError, match="twice"):
        Emulator(base_models=twice)
    with pytest.raises(ValueError, match="name"):
        Emulator(base_models=[models.BaseModelSummary(type="chat")])


# --- 2. state per project, and what creates check ------------------------------------------


async def test_a_project_detail_holds_the_summaries_of_what_it_holds(
    api: Api, clock: VirtualClock
) -> None:
    pid, did = await api.deployed(clock)
    detail = await api.ok("GET", f"/v1/projects/{pid}")
    assert set(detail) == {"id", "datasets", "training_jobs", "deployments"}
    (dataset,) = detail["datasets"]
    (job,) = detail["training_jobs"]
    (deployment,) = detail["deployments"]
    assert IDS["ds"].fullmatch(dataset["id"]) and dataset["is_uploaded"] is True
    assert IDS["tr"].fullmatch(job["id"]) and job["status"] == "Success"
    assert deployment == {
        "id": did,
        "status": "Deployed",
        "created_at": deployment["created_at"],
    }
    other = await api.project()
    assert (await api.ok("GET", f"/v1/projects/{other}"))["datasets"] == []


async def test_creates_check_what_their_bodies_name(api: Api, clock: VirtualClock) -> None:
    api.emu.scripts.training = TrainingScript(pending_s=0, running_s=100, checkpoints=2)
    pid, elsewhere = await api.project(), await api.project()
    ready, foreign = await api.dataset(clock, pid), await api.dataset(clock, elsewhere)
    api.emu.scripts.dataset = DatasetScript(processing_s=10_000)
    raw = str((await api.upload(pid))["id"])  # not processed yet
    done = await api.job(pid, ready)
    on_demand_only = await api.job(pid, ready, base_model="e5-large-v2")
    clock.advance(100)  # both succeeded
    running = await api.job(pid, ready)
    foreign_job = await api.job(elsewhere, foreign)
    clock.advance(10)
    jobs = f"/v1/projects/{pid}/training-jobs"
    deployments = f"/v1/projects/{pid}/deployments"
    base = {"base_model": "Llama-3.2-1B-Instruct", "train_dataset_id": ready}
    cases: list[tuple[str, dict[str, Any], str]] = [
        (jobs, {**base, "base_model": "gpt-17"}, "unknown base model 'gpt-17'"),
        (jobs, {**base, "train_dataset_id": "ds-nope"}, "not found in project"),
        (jobs, {**base, "train_dataset_id": foreign}, "not found in project"),
        (jobs, {**base, "train_dataset_id": raw}, "still being processed"),
        (jobs, {**base, "test_dataset_id": raw}, "test_dataset_id"),
        (jobs, {**base, "train_test_split_ratio": 1}, "train_test_split_ratio"),
        (jobs, {**base, "parameters": {"epochs": True}}, "parameters"),
        (jobs, {"base_model": "Llama-3.2-1B-Instruct"}, "train_dataset_id"),
        (deployments, {"training_job_id": running, "checkpoint": 1}, "is Running"),
        (deployments, {"training_job_id": foreign_job, "checkpoint": 1}, "not found in project"),
        (deployments, {"training_job_id": done, "checkpoint": 3}, "no checkpoint 3 (1 to 2)"),
        (deployments, {"training_job_id": done, "checkpoint": 0}, "no checkpoint 0"),
        (deployments, {"training_job_id": done, "checkpoint": "1"}, "checkpoint"),
        (
            deployments,
            {"training_job_id": done, "checkpoint": 1, "server_type": "gpu"},
            "server_type",
        ),
        (
            deployments,
            {"training_job_id": on_demand_only, "checkpoint": 1, "server_type": "serverless"},
            "does not support server_type 'serverless'",
        ),
    ]
    for path, body, reason in cases:
        reply = await api.request("POST", path, json=body)
        assert reply.status == 400, body
        assert set(reply.body) == {"status", "error"}
        assert reason in reply.body["error"], (body, reply.body)
    serverless = {"training_job_id": done, "checkpoint": 2, "server_type": "serverless"}
    assert (await api.ok("POST", deployments, 201, json=serverless))["status"] == "Pending"
    named = {"training_job_id": on_demand_only, "checkpoint": 1, "name": "n", "description": "d"}
    created = await api.ok("POST", deployments, 201, json=named)
    detail = await api.ok("GET", f"{deployments}/{created['id']}")
    assert (detail["name"], detail["description"], detail["base_model"]) == (
        "n",
        "d",
        "e5-large-v2",
    )


# --- 3. dataset uploads ----------------------------------------------------------------------


async def test_an_upload_is_recorded_and_names_its_dataset(api: Api) -> None:
    content = b"q,a\n" * 1000
    named = await api.upload("demo-project", content, filename="a.csv", name="mine")
    unnamed = await api.upload("demo-project", b"x", filename="b.csv")
    assert (named["name"], unnamed["name"]) == ("mine", "b.csv")  # default: its file's name
    first, second = api.emu.uploads
    assert first == Upload(
        filename="a.csv",
        content_type="text/csv",
        name="mine",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        project_id="demo-project",
        dataset_id=named["id"],
    )
    assert (second.name, second.size) == (None, 1)
    with pytest.raises(AttributeError):
        first.size = 0  # type: ignore[misc]
    assert api.emu.requests[-1].body == b""  # the file is not kept


@pytest.mark.parametrize(
    ("param", "recorded"),
    [
        ('filename="plain.csv"', "plain.csv"),
        (r'filename="say \"hi\".csv"', 'say "hi".csv'),
        ('filename="a%20b.csv"', "a%20b.csv"),  # not percent-decoded
        ('filename="semi;colon.csv"', "semi;colon.csv"),
        ('filename="/etc/passwd"', "/etc/passwd"),
        ('filename="naïve.csv"', "naïve.csv"),
        ("filename=\"x.csv\"; filename*=UTF-8''na%C3%AFve.csv", "naïve.csv"),
        ("filename=bare.csv", "bare.csv"),
    ],
)
async def test_file_names_are_recorded_as_sent(api: Api, param: str, recorded: str) -> None:
    body, headers = multipart(file_part(param))
    await api.ok("POST", "/v1/projects/demo-project/datasets", 201, data=body, headers=headers)
    assert api.emu.uploads[-1].filename == recorded
    assert api.emu.uploads[-1].content_type is None  # the part had none


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (*multipart(('Content-Disposition: form-data; name="name"', b"n")), "no 'file' part"),
        (*multipart(file_part('filename="a"'), file_part('filename="b"')), "two"),
        (b"name=n", {**KEY, "Content-Type": "application/x-www-form-urlencoded"}, "multipart"),
        (b'{"name": "n"}', {**KEY, "Content-Type": "application/json"}, "multipart"),
        (b"garbage", {**KEY, "Content-Type": "multipart/form-data; boundary=zz"}, "malformed"),
        (b"--zz\r\n", {**KEY, "Content-Type": "multipart/form-data"}, "malformed"),
    ],
    ids=["no-file", "two-files", "urlencoded", "json", "garbage", "no-boundary"],
)
async def test_an_upload_without_one_file_is_400(
    api: Api, body: bytes, content_type: dict[str, str], reason: str
) -> None:
    reply = await api.request(
        "POST", "/v1/projects/demo-project/datasets", data=body, headers=content_type
    )
    assert reply.status == 400 and reason in reply.body["error"], reply.body
    assert api.emu.uploads == []


async def test_a_file_over_max_upload_bytes_is_413() -> None:
    assert DEFAULT_MAX_UPLOAD_BYTES == 100 * 1024 * 1024
    async with Emulator(max_upload_bytes=1024) as emu, aiohttp.ClientSession() as session:
        api = Api(session, emu)
        assert (await api.upload("demo-project", b"x" * 1024))["id"]
        body, headers = multipart(file_part('filename="f"', b"x" * 1025))
        reply = await api.request(
            "POST", "/v1/projects/demo-project/datasets", data=body, headers=headers
        )
        assert reply.status == 413
        assert reply.body == {
            "status": 413,
            "error": "the file is larger than the 1024 bytes the server takes",
        }
        assert [u.size for u in emu.uploads] == [1024]


def test_a_large_upload_is_refused_while_it_streams_and_the_client_reads_413() -> None:
    """`http.client` sends all its body before it reads: the emulator answers 413 early and
    drains the rest, so the client sees the answer, and the connection stays usable."""
    with Emulator(max_upload_bytes=1 << 20) as emu:
        body, headers = multipart(file_part('filename="big.bin"', b"\0" * (16 << 20)))
        connection = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=WAIT)
        try:
            connection.request("POST", "/v1/projects/demo-project/datasets", body, headers)
            response = connection.getresponse()
            assert response.status == 413 and b'"status":413' in response.read()
            connection.request("GET", "/v1/projects", headers=KEY)  # the same connection
            again = connection.getresponse()
            assert again.status == 200 and again.read()
        finally:
            connection.close()
        assert emu.uploads == []


async def test_an_upload_is_streamed_in_flat_memory(api: Api) -> None:
    size = 64 << 20
    block = b"\x5a" * (64 << 10)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(size // len(block)):
            yield block

    form = aiohttp.FormData()
    form.add_field("file", chunks(), filename="big.bin", content_type="application/octet-stream")
    tracemalloc.start()
    try:
        await api.ok("POST", "/v1/projects/demo-project/datasets", 201, data=form)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20  # client and emulator together, for a 64 MiB file
    (upload,) = api.emu.uploads
    assert upload.size == size
    assert upload.sha256 == hashlib.sha256(b"\x5a" * size).hexdigest()


def test_an_upload_that_stalls_is_408_and_closed() -> None:
    with Emulator(read_timeout_s=0.3) as emu:
        body, headers = multipart(file_part('filename="f"', b"x" * 100))
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = (
            "POST /v1/projects/demo-project/datasets HTTP/1.1\r\nHost: x\r\n"
            f"{head}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body[: len(body) // 2]
        with socket.create_connection(("127.0.0.1", emu.port), timeout=WAIT) as sock:
            sock.sendall(request)  # and nothing more
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        assert received.startswith(b"HTTP/1.1 408 ")
        assert b"the upload stalled" in received


# --- 4. inference on deployed models -------------------------------------------------------


async def test_the_four_kinds_of_inference_give_deterministic_toy_answers(api: Api) -> None:
    base = "/v1/projects/demo-project/deployments/demo-deployment/"
    request = models.GetChatCompletionsFromDeploymentRequestBody(
        messages=[
            models.Messages(role="system", content="Be brief."),
            models.Messages(role="user", content="Why is the sky blue?"),
        ],
        max_new_tokens=9,
        no_repeat_ngram_size=2,
    )
    chat_body = msgspec.to_builtins(request)
    chat = await api.ok("POST", base + "chat/completions", json=chat_body)
    assert chat == await api.ok("POST", base + "chat/completions", json=chat_body)
    expected = generate_chat_completion("demo-project", "demo-deployment", request)
    assert chat["response"] == expected and len(expected.split()) == 9
    other = {**chat_body, "messages": chat_body["messages"][1:]}
    assert (await api.ok("POST", base + "chat/completions", json=other))["response"] != expected

    plain = await api.ok(
        "POST", base + "embeddings", json={"source_sentence": "cat", "target_sentence": "dog"}
    )
    assert set(plain["response"]) == {"embeddings"}  # no distance unless asked
    text1, text2 = (
        plain["response"]["embeddings"]["text1"],
        plain["response"]["embeddings"]["text2"],
    )
    assert len(text1) == len(text2) == EMBEDDING_SIZE
    assert text1 == pytest.approx(embed("cat")) and text2 == pytest.approx(embed("dog"))
    assert math.fsum(x * x for x in text1) == pytest.approx(1.0)
    asked = await api.ok(
        "POST",
        base + "embeddings",
        json={
            "source_sentence": "cat",
            "target_sentence": "dog",
            "cosine": True,
            "manhattan": True,
            "euclidean": True,
        },
    )
    cosine, manhattan, euclidean = compare(text1, text2)
    assert asked["response"]["cosine_score"] == pytest.approx(cosine)
    assert asked["response"]["manhattan_distance"] == pytest.approx(manhattan)
    assert asked["response"]["euclidean_distance"] == pytest.approx(euclidean)
    same = await api.ok(
        "POST",
        base + "embeddings",
        json={"source_sentence": "x", "target_sentence": "x", "cosine": True, "euclidean": True},
    )
    assert same["response"]["cosine_score"] == pytest.approx(1.0)
    assert same["response"]["euclidean_distance"] == pytest.approx(0.0)

    labels = set()
    for sentence in ("good", "bad", "meh", "fine", "awful", "ok", "great", "so-so"):
        answer = await api.ok("POST", base + "classification", json={"source_sentence": sentence})
        assert answer["response"] == classify(sentence)
        labels.add(answer["response"])
    assert labels <= set(CLASSIFICATION_LABELS) and len(labels) > 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"messages": [{"role": "user", "content": "x"}], "streaming": True}, "streaming"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "role"),
        ({"messages": [{"role": "user"}]}, "content"),
        (
            {"messages": [], "max_new_tokens": MAX_NEW_TOKENS_LIMIT + 1},
            f"at most {MAX_NEW_TOKENS_LIMIT}",
        ),
    ],
)
async def test_chat_bodies_are_checked(api: Api, body: dict[str, Any], reason: str) -> None:
    path = "/v1/projects/demo-project/deployments/demo-deployment/chat/completions"
    reply = await api.request("POST", path, json=body)
    assert reply.status == 400 and reason in reply.body["error"]


@pytest.mark.parametrize("kind", sorted(INFERENCE))
async def test_inference_needs_a_deployed_deployment(
    api: Api, clock: VirtualClock, kind: str
) -> None:
    api.emu.scripts.deployment = DeploymentScript(pending_s=10, deploying_s=20, outcome="Failed")
    pid = await api.project()
    job = await api.trained(clock, pid)
    did = await api.deployment(pid, job)
    path = f"/v1/projects/{pid}/deployments/{did}/{kind}"
    for expected in ("Pending", "Deploying", "Failed"):
        reply = await api.request("POST", path, json=INFERENCE[kind])
        assert (reply.status, reply.body["code"]) == (404, "deployment_not_deployed")
        assert f"is {expected}, not Deployed" in reply.body["error"]
        clock.advance(15)
    api.emu.scripts.deployment = DeploymentScript()
    pid, did = await api.deployed(clock)  # any base model serves all four kinds
    assert await api.ok(
        "POST", f"/v1/projects/{pid}/deployments/{did}/{kind}", json=INFERENCE[kind]
    )


async def test_capacity_and_latency_apply_to_all_four_kinds() -> None:
    base = "/v1/projects/demo-project/deployments/demo-deployment/"
    async with Emulator(capacity=1) as emu, aiohttp.ClientSession() as session:
        api = Api(session, emu)
        emu.faults.hang()
        hung = asyncio.ensure_future(
            api.request("POST", base + "completions", json={"prompt": "h"})
        )
        try:
            await until(lambda: emu.in_flight == 1)
            for kind, body in INFERENCE.items():
                reply = await api.request("POST", base + kind, json=body)
                assert reply.status == 429, kind
                assert int(reply.headers["retry-after-ms"]) >= 1
            assert await api.ok("GET", "/v1/projects")  # platform calls are not metered
            assert emu.max_in_flight == 1
        finally:
            hung.cancel()
            with pytest.raises(asyncio.CancelledError):
                await hung
        await until(lambda: emu.in_flight == 0)
        assert [r.fault for r in emu.requests].count("over_capacity") == 4
    async with Emulator(latency_ms=50) as emu, aiohttp.ClientSession() as session:
        api = Api(session, emu)
        for kind, body in INFERENCE.items():
            start = time.monotonic()
            await api.ok("POST", base + kind, json=body)
            assert time.monotonic() - start >= 0.05, kind


# --- 5. time: the virtual clock, instant retries, time_scale -------------------------------


def test_a_virtual_clock_moves_only_when_told() -> None:
    clock = VirtualClock()
    assert clock.now() == VIRTUAL_EPOCH
    assert clock.advance(1.5) == VIRTUAL_EPOCH + 1.5 == clock.now()
    assert VirtualClock(start=0).now() == 0.0
    for bad in (-1, math.nan, math.inf, True, "1"):
        with pytest.raises(ValueError, match="seconds"):
            clock.advance(bad)  # type: ignore[arg-type]
    assert clock.now() == VIRTUAL_EPOCH + 1.5


async def test_states_are_computed_from_the_clock_at_request_time(
    api: Api, clock: VirtualClock
) -> None:
    pid = await api.project()
    dataset = await api.upload(pid)
    assert dataset["created_at"] == int(VIRTUAL_EPOCH)
    path = f"/v1/projects/{pid}/datasets/{dataset['id']}"
    clock.advance(api.emu.scripts.dataset.processing_s - 0.001)
    assert (await api.ok("GET", path))["is_uploaded"] is False
    clock.advance(0.001)
    detail = await api.ok("GET", path)
    assert detail["is_uploaded"] is True
    assert detail["updated_at"] == int(VIRTUAL_EPOCH + api.emu.scripts.dataset.processing_s)
    assert api.emu.clock is clock


async def test_a_clients_retry_sleeps_advance_the_emulators_clock(
    api: Api, clock: VirtualClock
) -> None:
    api.emu.scripts.deployment = DeploymentScript(pending_s=0, deploying_s=30)
    pid = await api.project()
    did = await api.deployment(pid, await api.trained(clock, pid))
    api.emu.faults.fail(status=503, retry_after=45)
    async with AsyncEmissaryClient(api_key=api.emu.api_key, server_url=api.emu.url) as client:
        with instant_retries(client, clock=clock) as same:
            assert same is clock
            start = clock.now()
            # Deploying now: only the client's 45 s sleep makes it Deployed for the retry.
            result = await client.deployments.completions.create(
                project_id=pid, deployment_id=did, request_body={"prompt": "p"}
            )
        assert result.response
        assert clock.sleeps == [45.0] and clock.now() - start == 45.0
        with instant_retries(client) as own:
            assert isinstance(own, RetryClock)


async def test_time_scale_runs_real_time_faster() -> None:
    """Default scripts on a 1000x clock: from upload to a deployment in milliseconds."""
    async with Emulator(time_scale=0.001) as emu, aiohttp.ClientSession() as session:
        api = Api(session, emu)
        start = emu.clock.now()
        pid = await api.project()
        dataset = (await api.upload(pid))["id"]
        await poll(api, f"/v1/projects/{pid}/datasets/{dataset}", "is_uploaded", True)
        job = await api.job(pid, dataset)
        await poll(api, f"/v1/projects/{pid}/training-jobs/{job}", "status", "Success")
        did = await api.deployment(pid, job, checkpoint=4)
        await poll(api, f"/v1/projects/{pid}/deployments/{did}", "status", "Deployed")
        scripts = emu.scripts
        assert emu.clock.now() - start >= (
            scripts.dataset.processing_s
            + scripts.training.pending_s
            + scripts.training.running_s
            + scripts.deployment.pending_s
            + scripts.deployment.deploying_s
        )
    with pytest.raises(ValueError, match="not both"):
        Emulator(clock=VirtualClock(), time_scale=0.5)
    for bad in (0, -1, math.inf):
        with pytest.raises(ValueError, match="time_scale"):
            Emulator(time_scale=bad)


async def poll(api: Api, path: str, field: str, value: Any) -> None:
    """GET `path` until its `field` is `value` (at most `WAIT` real seconds)."""
    deadline = time.monotonic() + WAIT
    while (await api.ok("GET", path))[field] != value:
        assert time.monotonic() < deadline, f"{path} never had {field}={value!r}"
        await asyncio.sleep(0.002)


# --- 6. lifecycle scripts --------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["Success", "Failed", "TimedOut", "Cancelled"])
async def test_a_training_script_plays_out_to_its_outcome(
    api: Api, clock: VirtualClock, outcome: TrainingOutcome
) -> None:
    api.emu.scripts.training = TrainingScript(
        pending_s=10,
        running_s=100,
        outcome=outcome,
        checkpoints=4,
    )
    pid = await api.project()
    job = await api.job(pid, await api.dataset(clock, pid))
    path = f"/v1/projects/{pid}/training-jobs/{job}"
    timeline: list[tuple[float, str, int, int]] = [
        (0, "Pending", 0, 0),
        (10, "Running", 0, 0),
        (35, "Running", 25, 1),
        (60, "Running", 50, 2),
        (109.9, "Running", 99, 3),
        (110, outcome, 100, 4),
        (10_000, outcome, 100, 4),
    ]
    at = 0.0
    for when, status, progress, checkpoints in timeline:
        clock.advance(when - at)
        at = when
        detail = await api.ok("GET", path)
        assert (detail["status"], detail["progress"]) == (status, progress), when
        saved = await api.ok("GET", path + "/checkpoints")
        assert [c["checkpoint"] for c in saved] == list(range(1, checkpoints + 1)), when
        assert len(detail["training_loss"]) == checkpoints
    assert saved[0]["created_at"] == int(detail["created_at"] + 10 + 25)
    assert detail["updated_at"] == detail["created_at"] + 110


async def test_training_progress_may_follow_a_curve(api: Api, clock: VirtualClock) -> None:
    api.emu.scripts.training = TrainingScript(
        pending_s=0, running_s=100, progress=lambda done: 120 * done**2
    )
    pid = await api.project()
    path = f"/v1/projects/{pid}/training-jobs/" + await api.job(pid, await api.dataset(clock, pid))
    seen = []
    for _ in range(5):
        clock.advance(25)
        seen.append((await api.ok("GET", path))["progress"])
    assert seen == [7, 30, 67, 100, 100]  # 120 * (1/4)**2 = 7.5; clamped at 100


@pytest.mark.parametrize("outcome", ["Deployed", "Failed", "TimedOut", "Cancelled"])
async def test_a_deployment_script_plays_out_to_its_outcome(
    api: Api, clock: VirtualClock, outcome: DeploymentOutcome
) -> None:
    api.emu.scripts.deployment = DeploymentScript(
        pending_s=5,
        deploying_s=60,
        outcome=outcome,
    )
    pid = await api.project()
    did = await api.deployment(pid, await api.trained(clock, pid))
    path = f"/v1/projects/{pid}/deployments/{did}"
    for step, expected in ((0, "Pending"), (5, "Deploying"), (59.9, "Deploying"), (0.1, outcome)):
        clock.advance(step)
        assert await api.status(path) == expected
    detail = await api.ok("GET", path)
    assert detail["updated_at"] == detail["created_at"] + 65
    served = await api.request("POST", path + "/completions", json={"prompt": "p"})
    assert served.status == (200 if outcome == "Deployed" else 404)


async def test_a_dataset_script_decides_when_it_can_be_trained_on(
    api: Api, clock: VirtualClock
) -> None:
    api.emu.scripts.dataset = DatasetScript(processing_s=30)
    pid = await api.project()
    dataset = (await api.upload(pid))["id"]
    body = {"base_model": "Llama-3.2-1B", "train_dataset_id": dataset}
    jobs = f"/v1/projects/{pid}/training-jobs"
    clock.advance(29)
    assert (await api.request("POST", jobs, json=body)).status == 400
    clock.advance(1)
    assert (await api.ok("POST", jobs, 201, json=body))["status"] == "Pending"


async def test_each_resource_keeps_the_script_it_was_created_with(
    api: Api, clock: VirtualClock
) -> None:
    pid = await api.project()
    dataset = await api.dataset(clock, pid)
    api.emu.scripts.training = TrainingScript(pending_s=0, running_s=10, outcome="Failed")
    failing = await api.job(pid, dataset)
    api.emu.scripts.training = TrainingScript(pending_s=0, running_s=10)
    succeeding = await api.job(pid, dataset)
    clock.advance(10)
    jobs = f"/v1/projects/{pid}/training-jobs/"
    assert await api.status(jobs + failing) == "Failed"
    assert await api.status(jobs + succeeding) == "Success"


def test_the_default_scripts_are_short() -> None:
    training, deployment = TrainingScript(), DeploymentScript()
    assert (training.pending_s, training.running_s, training.checkpoints) == (1, 4, 4)
    assert training.outcome == "Success"
    assert (deployment.pending_s, deployment.deploying_s, deployment.outcome) == (1, 2, "Deployed")
    assert DatasetScript().processing_s == 1


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: TrainingScript(pending_s=-1), "pending_s"),
        (lambda: TrainingScript(running_s=math.inf), "running_s"),
        (lambda: TrainingScript(outcome="Running"), "outcome"),  # type: ignore[arg-type]
        (lambda: TrainingScript(checkpoints=True), "checkpoints"),
        (lambda: TrainingScript(checkpoints=-1), "checkpoints"),
        (lambda: TrainingScript(progress=50), "progress"),  # type: ignore[arg-type]
        (lambda: DeploymentScript(outcome="Success"), "outcome"),  # type: ignore[arg-type]
        (lambda: DeploymentScript(deploying_s="60"), "deploying_s"),  # type: ignore[arg-type]
        (lambda: DatasetScript(processing_s=math.nan), "processing_s"),
    ],
)
def test_bad_scripts_are_refused(make: Callable[[], object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        make()


def test_scripts_have_no_other_attributes() -> None:
    emu = Emulator()
    with pytest.raises(AttributeError):
        emu.scripts.trainig = TrainingScript()  # type: ignore[attr-defined]


# --- 7. cancel, delete, and the conflict policy ---------------------------------------------


async def test_cancelling_running_work_makes_it_cancelled_for_good(
    api: Api, clock: VirtualClock
) -> None:
    api.emu.scripts.training = TrainingScript(pending_s=10, running_s=100)
    api.emu.scripts.deployment = DeploymentScript(pending_s=10, deploying_s=100)
    pid = await api.project()
    dataset = await api.dataset(clock, pid)
    pending_job, running_job = await api.job(pid, dataset), None
    clock.advance(5)
    await api.ok("POST", f"/v1/projects/{pid}/training-jobs/{pending_job}/cancel", 204)
    running_job = await api.job(pid, dataset)
    clock.advance(60)
    await api.ok("POST", f"/v1/projects/{pid}/training-jobs/{running_job}/cancel", 204)
    done = await api.trained(clock, pid)
    deploying = await api.deployment(pid, done)
    clock.advance(50)
    await api.ok("POST", f"/v1/projects/{pid}/deployments/{deploying}/cancel", 204)
    clock.advance(1000)
    jobs = f"/v1/projects/{pid}/training-jobs/"
    assert (await api.ok("GET", jobs + pending_job))["progress"] == 0
    stopped = await api.ok("GET", jobs + running_job)
    assert (stopped["status"], stopped["progress"]) == ("Cancelled", 50)
    assert stopped["updated_at"] == stopped["created_at"] + 60
    assert len(await api.ok("GET", jobs + running_job + "/checkpoints")) == 2
    assert await api.status(f"/v1/projects/{pid}/deployments/{deploying}") == "Cancelled"


async def test_conflicts_allow_by_default(api: Api, clock: VirtualClock) -> None:
    assert api.emu.conflicts == "allow"
    pid, did = await api.deployed(clock)
    job = (await api.ok("GET", f"/v1/projects/{pid}/training-jobs"))[0]["id"]
    jobs, deployments = f"/v1/projects/{pid}/training-jobs/", f"/v1/projects/{pid}/deployments/"
    # Cancelling what ended: a no-op.
    await api.ok("POST", jobs + job + "/cancel", 204)
    await api.ok("POST", deployments + did + "/cancel", 204)
    assert await api.status(jobs + job) == "Success"
    assert await api.status(deployments + did) == "Deployed"
    # Deleting what runs: stopped and deleted.
    running = await api.job(pid, (await api.ok("GET", f"/v1/projects/{pid}/datasets"))[0]["id"])
    deploying = await api.deployment(pid, job)
    clock.advance(api.emu.scripts.deployment.pending_s)
    await api.ok("DELETE", jobs + running, 204)
    await api.ok("DELETE", deployments + deploying, 204)
    assert (await api.request("GET", jobs + running)).status == 404
    assert (await api.request("POST", deployments + deploying + "/cancel")).status == 404
    # Deleting a project that holds resources: with them.
    await api.ok("DELETE", f"/v1/projects/{pid}", 204)
    assert (await api.request("GET", f"/v1/projects/{pid}")).status == 404
    assert (await api.request("GET", deployments + did)).body["code"] == "project_not_found"
    assert pid not in [p["id"] for p in await api.ok("GET", "/v1/projects")]
    assert (await api.request("DELETE", f"/v1/projects/{pid}")).status == 404


async def test_conflicts_refuse_names_the_reason(api: Api, clock: VirtualClock) -> None:
    api.emu.conflicts = "refuse"
    pid, did = await api.deployed(clock)
    dataset = (await api.ok("GET", f"/v1/projects/{pid}/datasets"))[0]["id"]
    job = (await api.ok("GET", f"/v1/projects/{pid}/training-jobs"))[0]["id"]
    running = await api.job(pid, dataset)
    deploying = await api.deployment(pid, job)
    clock.advance(api.emu.scripts.deployment.pending_s)
    jobs, deployments = f"/v1/projects/{pid}/training-jobs/", f"/v1/projects/{pid}/deployments/"
    refused = [
        ("POST", jobs + job + "/cancel", f"training job {job!r} already ended (Success)"),
        ("POST", deployments + did + "/cancel", f"deployment {did!r} already ended (Deployed)"),
        ("DELETE", jobs + running, f"training job {running!r} is Running; cancel it first"),
        ("DELETE", deployments + deploying, f"{deploying!r} is Deploying; cancel it first"),
        (
            "DELETE",
            f"/v1/projects/{pid}",
            "still holds 1 dataset, 2 training jobs and 2 deployments; delete them first",
        ),
    ]
    for method, path, reason in refused:
        reply = await api.request(method, path)
        assert reply.status == 400 and reason in reply.body["error"], reply.body
    assert await api.status(jobs + running) == "Running"
    await api.ok("POST", jobs + running + "/cancel", 204)  # then it may go
    await api.ok("DELETE", jobs + running, 204)
    api.emu.conflicts = "allow"
    await api.ok("DELETE", f"/v1/projects/{pid}", 204)
    with pytest.raises(ValueError, match="conflicts"):
        api.emu.conflicts = "sometimes"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="conflicts"):
        Emulator(conflicts="never")  # type: ignore[arg-type]


# --- 8. records --------------------------------------------------------------------------------


async def test_polls_counts_the_requests_of_one_operation_on_one_resource(
    api: Api, clock: VirtualClock
) -> None:
    pid = await api.project()
    job = await api.job(pid, await api.dataset(clock, pid))
    other = await api.job(pid, await api.dataset(clock, pid))
    for _ in range(3):
        await api.ok("GET", f"/v1/projects/{pid}/training-jobs/{job}")
    await api.ok("GET", f"/v1/projects/{pid}/training-jobs/{other}")
    await api.ok("GET", f"/v1/projects/{pid}/training-jobs/{job}/checkpoints")
    polls = api.emu.polls("training_jobs.get", job)
    assert len(polls) == 3
    assert all(r.path_params == {"project_id": pid, "training_job_id": job} for r in polls)
    assert [r.request_id for r in polls] == sorted(r.request_id for r in polls)
    assert len(api.emu.polls("training_jobs.list_checkpoints", job)) == 1
    assert api.emu.polls("deployments.get", job) == []
    assert len(api.emu.polls("projects.get", pid)) == 0
    with pytest.raises(ValueError, match="unknown operation"):
        api.emu.polls("training_jobs.poll", job)
    with pytest.raises(ValueError, match="names no resource"):
        api.emu.polls("projects.list", pid)


# --- the command line --------------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[str, str]]:
    """``python -m emissary.testing --time-scale 0.001`` on a free port: its URL and the
    line it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "emissary.testing", "--port", "0", "--time-scale", "0.001"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        yield line.split(" on ", 1)[1].split()[0], line
    finally:
        proc.terminate()
        proc.wait(timeout=WAIT)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert proc.returncode == 0


def test_the_time_scale_flag_speeds_up_a_subprocess_emulator(served: tuple[str, str]) -> None:
    gen = pytest.importorskip("emissary_client_sdk")
    url, line = served
    assert "time scale 0.001" in line
    sdk = gen.EmissaryClient(api_key=DEFAULT_API_KEY, server_url=url)
    try:
        pid = sdk.projects.create(request=None).id
        dataset = sdk.datasets.create(
            project_id=pid, request_body={"file": {"file_name": "t.csv", "content": b"a\n"}}
        ).id
        wait_until(lambda: sdk.datasets.get(project_id=pid, dataset_id=dataset).is_uploaded)
        job = sdk.training_jobs.create(
            project_id=pid,
            request_body={"base_model": "Llama-3.2-1B", "train_dataset_id": dataset},
        ).id
        wait_until(
            lambda: sdk.training_jobs.get(project_id=pid, training_job_id=job).status == "Success"
        )
    finally:
        sdk.sdk_configuration.client.close()


@pytest.mark.parametrize("value", ["0", "-1", "fast", "inf"])
def test_a_bad_time_scale_is_a_usage_error(value: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "emissary.testing", "--time-scale", value],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 2 and "--time-scale" in proc.stderr


def test_emissary_emulator_forwards_the_time_scale_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "emissary", "emulator", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    ).stdout
    assert "--time-scale" in out and "1000 times faster" in out
