"""Lifecycle faults (platform.md §4): the emulator's ``commit_then_drop``, ``not_found_for``,
``unknown_status`` and ``operation=`` on every request fault, and what the SDK's waits and
creates do under them (§2).

What the emulator does is checked over plain aiohttp (`Api`, independently of any SDK); what
the SDK does, with its own clients (async, and sync where it matters), over real HTTP on
loopback. Emulator and client share one `VirtualClock` (``instant_retries(client,
clock=clock)``): a 10-minute job and a 30-second grace period take no time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest

from emissary import AsyncEmissaryClient
from emissary.errors import (
    AmbiguousCreateError,
    APIConnectionError,
    APIErrorNotFound,
)
from emissary.testing import (
    DatasetScript,
    DeploymentScript,
    Emulator,
    TrainingScript,
    VirtualClock,
    instant_retries,
)
from emissary.utils import RetryConfig

from .test_emulator_platform import Api

pytestmark = pytest.mark.anyio
MODEL = "Llama-3.2-1B-Instruct"
DATA = b"".join(b'{"prompt": "q%d", "completion": "a"}\n' % i for i in range(100))
GRACE_S = 30.0
"""platform.md §2: a 404 within 30 s of a create is "not visible yet"."""
DEMO = {"project_id": "demo-project", "deployment_id": "demo-deployment"}
TRAINING = TrainingScript(pending_s=30, running_s=600, checkpoints=4)
TRAINED_S = TRAINING.pending_s + TRAINING.running_s


@pytest.fixture
def emu(clock: VirtualClock) -> Iterator[Emulator]:
    """A threaded emulator (the sync client blocks the test's thread) on `clock`."""
    with Emulator(clock=clock) as emulator:
        emulator.scripts.dataset = DatasetScript(processing_s=2)
        emulator.scripts.training = TRAINING
        emulator.scripts.deployment = DeploymentScript(pending_s=5, deploying_s=60)
        yield emulator


@pytest.fixture
async def client(emu: Emulator, clock: VirtualClock) -> AsyncIterator[AsyncEmissaryClient]:
    """The async client, its retries and waits on the emulator's clock."""
    async with AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url) as async_client:
        with instant_retries(async_client, clock=clock):
            yield async_client


@pytest.fixture
async def plain(emu: Emulator) -> AsyncIterator[Api]:
    """The emulator over plain aiohttp."""
    async with aiohttp.ClientSession() as session:
        yield Api(session, emu)


async def project_with_data(api: Any, clock: VirtualClock) -> tuple[str, str]:
    """A new project and a processed dataset in it: their ids."""
    project = await api.projects.create(request={"name": "faults"})
    dataset = await api.datasets.upload(project_id=project.id, file=DATA, name="train")
    clock.advance(2)
    return project.id, dataset.id


async def trained(api: Any, clock: VirtualClock) -> tuple[str, str]:
    """A new project and a training job in it that succeeded: their ids."""
    pid, dataset_id = await project_with_data(api, clock)
    body = {"base_model": MODEL, "train_dataset_id": dataset_id}
    job = await api.training_jobs.create(project_id=pid, request_body=body)
    clock.advance(TRAINED_S)
    return pid, job.id


def faults_met(emu: Emulator, operation: str) -> list[str | None]:
    """The fault each request of `operation` met (None: none), in order."""
    return [r.fault for r in emu.requests if r.operation == operation]


# --- operation= on the request faults ------------------------------------------------------

OLD_FAULTS: dict[str, Callable[[Emulator], object]] = {
    "fail": lambda emu: emu.faults.fail(status=503, operation="deployments.get"),
    "drop": lambda emu: emu.faults.drop(operation="deployments.get"),
    "truncate": lambda emu: emu.faults.truncate(operation="deployments.get"),
    "delay": lambda emu: emu.faults.delay(0.01, operation="deployments.get"),
    "hang": lambda emu: emu.faults.hang(operation="deployments.get"),
    "drip": lambda emu: emu.faults.drip(0.0, operation="deployments.get"),
}


@pytest.mark.parametrize("kind", OLD_FAULTS)
async def test_a_fault_for_one_operation_is_passed_by_the_others(
    kind: str, emu: Emulator, client: AsyncEmissaryClient
) -> None:
    OLD_FAULTS[kind](emu)
    assert await client.projects.list()
    assert await client.base_models.list()
    deployment = await client.deployments.get(**DEMO, timeout_ms=500)  # hang: one attempt
    assert deployment.status == "Deployed"
    met = [(r.operation, r.fault) for r in emu.requests]
    assert met[:3] == [
        ("projects.list", None),
        ("base_models.list", None),
        ("deployments.get", kind),
    ]
    assert all(fault is None for _, fault in met[3:])  # a retry, if any, is answered
    assert emu.faults.pending == 0


async def test_each_request_takes_the_first_fault_meant_for_it(
    emu: Emulator, client: AsyncEmissaryClient
) -> None:
    emu.faults.fail(status=503, operation="deployments.get").drop().fail(status=502)
    await client.projects.list()  # passes the fault for deployments.get by
    await client.deployments.get(**DEMO)
    met = [(r.operation, r.fault) for r in emu.requests]
    assert met == [
        ("projects.list", "drop"),  # the first fault for any request
        ("projects.list", "fail"),  # its retry: the 502, the next one
        ("projects.list", None),
        ("deployments.get", "fail"),  # its own, the 503, waiting for it
        ("deployments.get", None),
    ]
    assert emu.faults.pending == 0


async def test_at_random_for_one_operation(emu: Emulator, client: AsyncEmissaryClient) -> None:
    emu.faults.at_random(1.0, operation="deployments.get")
    for _ in range(3):
        await client.projects.list()
    with pytest.raises(APIConnectionError):  # the first of the turns: a drop
        await client.deployments.get(**DEMO, retries=RetryConfig.disabled())
    emu.faults.at_random(0)
    await client.deployments.get(**DEMO)
    assert faults_met(emu, "projects.list") == [None] * 3
    assert [f is not None for f in faults_met(emu, "deployments.get")] == [True, False]


@pytest.mark.parametrize(
    ("add", "reason"),
    [
        (lambda emu: emu.faults.drop(operation="deployments.fetch"), "unknown operation"),
        (lambda emu: emu.faults.commit_then_drop(operation="projects.lst"), "unknown operation"),
        (lambda emu: emu.faults.commit_then_drop(0), "times must be >= 1"),
        (lambda emu: emu.faults.at_random(0.1, operation="nope"), "unknown operation"),
        (lambda emu: emu.faults.not_found_for(5, operation="projects.list"), "not a create"),
        (lambda emu: emu.faults.not_found_for(-1), "seconds"),
        (lambda emu: emu.faults.unknown_status("Queued", 5, operation="projects.create"), "for"),
        (lambda emu: emu.faults.unknown_status("", 5), "status string"),
        (lambda emu: emu.faults.unknown_status("Queued", float("nan")), "for_s"),
    ],
)
def test_bad_faults_are_refused(add: Callable[[Emulator], object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        add(Emulator())


async def test_commit_then_drop_is_for_training_jobs_create_unless_told(
    client: AsyncEmissaryClient, emu: Emulator
) -> None:
    emu.faults.commit_then_drop()
    await client.projects.create()
    assert emu.faults.pending == 1  # still waiting for a training_jobs.create
    emu.faults.clear()
    emu.faults.commit_then_drop(operation=None)
    with pytest.raises(APIConnectionError):
        await client.projects.list(retries=RetryConfig.disabled())
    assert faults_met(emu, "projects.list") == ["commit_then_drop"]


def test_pending_and_clear_count_the_lifecycle_faults_too() -> None:
    faults = Emulator().faults
    faults.not_found_for(10).unknown_status("Queued", 60).commit_then_drop(2)
    assert faults.pending == 4
    faults.clear()
    assert faults.pending == 0


# --- commit_then_drop: the emulator ---------------------------------------------------------


async def test_commit_then_drop_creates_then_drops_the_connection(
    plain: Api, emu: Emulator, clock: VirtualClock
) -> None:
    emu.faults.commit_then_drop(operation="training_jobs.create")
    pid = await plain.project()  # not a training_jobs.create: passes the fault by
    dataset_id = await plain.dataset(clock, pid)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await plain.job(pid, dataset_id, name="dropped")
    (job,) = await plain.ok("GET", f"/v1/projects/{pid}/training-jobs")
    assert (job["name"], job["status"]) == ("dropped", "Pending")
    assert faults_met(emu, "training_jobs.create") == ["commit_then_drop"]
    assert faults_met(emu, "projects.create") == faults_met(emu, "datasets.create") == [None]


async def test_commit_then_drop_reads_an_upload_to_its_end(plain: Api, emu: Emulator) -> None:
    pid = await plain.project()
    emu.faults.commit_then_drop(operation="datasets.create")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await plain.upload(pid, DATA, name="dropped")
    (upload,) = emu.uploads
    assert (upload.name, upload.size) == ("dropped", len(DATA))
    (dataset,) = await plain.ok("GET", f"/v1/projects/{pid}/datasets")
    assert dataset["id"] == upload.dataset_id


# --- commit_then_drop: the SDK --------------------------------------------------------------

Ids = dict[str, str]
CREATES: dict[str, tuple[Callable[[Any, Ids], Awaitable[Any]], str]] = {
    "projects.create": (lambda api, ids: api.projects.create(request={"name": "made"}), "projects"),
    "datasets.create": (
        lambda api, ids: api.datasets.create(
            project_id=ids["project_id"],
            request_body={"file": {"file_name": "t.jsonl", "content": DATA}},
        ),
        "datasets",
    ),
    "datasets.upload": (
        lambda api, ids: api.datasets.upload(project_id=ids["project_id"], file=DATA),
        "datasets",
    ),
    "training_jobs.create": (
        lambda api, ids: api.training_jobs.create(
            project_id=ids["project_id"],
            request_body={"base_model": MODEL, "train_dataset_id": ids["dataset_id"]},
        ),
        "training_jobs",
    ),
    "deployments.create": (
        lambda api, ids: api.deployments.create(
            project_id=ids["project_id"],
            request_body={"training_job_id": ids["training_job_id"], "checkpoint": 4},
        ),
        "deployments",
    ),
}
"""For each method that creates: a plain call of it (given the ids of a project, a
processed dataset and a trained job), and its namespace (whose ``create`` operation it makes,
and whose list it adds to)."""
CREATE_OPERATIONS = [f"{namespace}.create" for _, namespace in CREATES.values()]


@pytest.mark.parametrize("method", CREATES)
async def test_a_plain_create_that_may_have_been_made_raises_and_is_not_retried(
    method: str, api: Any, emu: Emulator, clock: VirtualClock
) -> None:
    pid, job_id = await trained(api, clock)
    (dataset,) = await api.datasets.list(project_id=pid)
    ids = {"project_id": pid, "dataset_id": dataset.id, "training_job_id": job_id}
    make, namespace = CREATES[method]
    operation = f"{namespace}.create"
    listing = getattr(api, namespace).list
    where = {} if namespace == "projects" else {"project_id": pid}
    before = await listing(**where)
    emu.faults.commit_then_drop(operation=operation)
    with pytest.raises(APIConnectionError) as failed:
        await make(api, ids)
    assert failed.value.maybe_committed is True
    assert failed.value.retries_taken == 0
    assert faults_met(emu, operation)[-1:] == ["commit_then_drop"]  # one attempt, made
    assert len(await listing(**where)) == len(before) + 1


async def test_create_and_wait_adopts_the_training_job_a_dropped_create_made(
    api: Any, emu: Emulator, clock: VirtualClock
) -> None:
    pid, dataset_id = await project_with_data(api, clock)
    emu.faults.commit_then_drop(operation="training_jobs.create")
    done = await api.training_jobs.create_and_wait(
        project_id=pid, request_body={"base_model": MODEL, "train_dataset_id": dataset_id}
    )
    (job,) = await api.training_jobs.list(project_id=pid)
    assert (done.id, done.status) == (job.id, "Success")
    assert job.name.startswith("emissary-")  # named by the SDK, to be found again
    assert faults_met(emu, "training_jobs.create") == ["commit_then_drop"]


async def test_create_and_wait_adopts_the_deployment_a_dropped_create_made(
    api: Any, emu: Emulator, clock: VirtualClock
) -> None:
    pid, job_id = await trained(api, clock)
    emu.faults.commit_then_drop(operation="deployments.create")
    done = await api.deployments.create_and_wait(
        project_id=pid, request_body={"training_job_id": job_id, "checkpoint": 4, "name": "blue"}
    )
    (deployment,) = await api.deployments.list(project_id=pid)
    assert (done.id, done.status, deployment.name) == (deployment.id, "Deployed", "blue")
    assert faults_met(emu, "deployments.create") == ["commit_then_drop"]


@pytest.mark.parametrize("operation", sorted(set(CREATE_OPERATIONS)))
async def test_fine_tune_adopts_what_a_dropped_create_made(
    operation: str, api: Any, emu: Emulator
) -> None:
    emu.faults.commit_then_drop(operation=operation)
    run = await api.fine_tune(base_model=MODEL, train=DATA)
    assert run.deployment.status == "Deployed"
    pid = run.project.id
    assert [p.id for p in await api.projects.list() if p.id != "demo-project"] == [pid]
    assert [d.id for d in await api.datasets.list(project_id=pid)] == [run.train_dataset.id]
    assert [j.id for j in await api.training_jobs.list(project_id=pid)] == [run.training_job.id]
    assert [d.id for d in await api.deployments.list(project_id=pid)] == [run.deployment.id]
    assert len(emu.uploads) == 1
    assert faults_met(emu, operation) == ["commit_then_drop"]


@pytest.mark.parametrize("operation", sorted(set(CREATE_OPERATIONS)))
async def test_fine_tune_goes_on_through_what_is_not_visible_yet(
    operation: str, api: Any, emu: Emulator
) -> None:
    """What fine_tune creates may answer 404 for a few seconds: "not visible yet" (§2)."""
    emu.faults.not_found_for(10, operation=operation)
    run = await api.fine_tune(base_model=MODEL, train=DATA)
    assert run.deployment.status == "Deployed"
    assert emu.faults.pending == 0


async def test_a_delete_dropped_after_it_was_made_succeeds_on_its_retry(
    client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    pid, job_id = await trained(client, clock)
    emu.faults.commit_then_drop(operation="training_jobs.delete")
    assert await client.training_jobs.delete(project_id=pid, training_job_id=job_id) is None
    assert faults_met(emu, "training_jobs.delete") == ["commit_then_drop", None]  # then a 404
    assert await client.training_jobs.list(project_id=pid) == []


# --- the caller's name, taken before --------------------------------------------------------


async def test_with_same_named_jobs_before_the_one_new_is_adopted(
    client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    pid, dataset_id = await project_with_data(client, clock)
    body = {"base_model": MODEL, "train_dataset_id": dataset_id, "name": "mine"}
    old = {(await client.training_jobs.create(project_id=pid, request_body=body)).id}
    old.add((await client.training_jobs.create(project_id=pid, request_body=body)).id)
    emu.faults.commit_then_drop(operation="training_jobs.create")
    done = await client.training_jobs.create_and_wait(project_id=pid, request_body=body)
    jobs = await client.training_jobs.list(project_id=pid)
    assert [j.name for j in jobs] == ["mine"] * 3
    assert {j.id for j in jobs} - old == {done.id}
    assert done.status == "Success"


async def test_two_new_candidates_are_ambiguous(
    client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    """Two jobs named "mine" before; then a third made by someone else, not visible yet when
    the create looks at what is there, and the create's own, both showing 10 s later."""
    pid, dataset_id = await project_with_data(client, clock)
    body = {"base_model": MODEL, "train_dataset_id": dataset_id, "name": "mine"}
    for _ in range(2):
        await client.training_jobs.create(project_id=pid, request_body=body)
    emu.faults.not_found_for(10).not_found_for(10)  # the other one's, then the create's
    other = await client.training_jobs.create(project_id=pid, request_body=body)
    emu.faults.commit_then_drop(operation="training_jobs.create")
    with pytest.raises(AmbiguousCreateError) as ambiguous:
        await client.training_jobs.create_and_wait(project_id=pid, request_body=body)
    jobs = await client.training_jobs.list(project_id=pid)
    assert len(jobs) == 4  # the two before, the other's and the create's: none made twice
    candidates = {c.id for c in ambiguous.value.candidates}
    assert candidates == {jobs[2].id, jobs[3].id} and other.id in candidates
    assert ambiguous.value.maybe_committed is True


# --- not_found_for --------------------------------------------------------------------------


async def test_a_hidden_training_job_is_404_to_reads_for_its_first_seconds(
    plain: Api, emu: Emulator, clock: VirtualClock
) -> None:
    pid = await plain.project()
    dataset_id = await plain.dataset(clock, pid)
    emu.faults.not_found_for(10)
    job_id = await plain.job(pid, dataset_id)  # the create's own answer shows it
    jobs, job = f"/v1/projects/{pid}/training-jobs", f"/v1/projects/{pid}/training-jobs/{job_id}"
    clock.advance(9.5)
    for path in [job, job + "/checkpoints"]:
        reply = await plain.request("GET", path)
        assert (reply.status, reply.body["code"]) == (404, "training_job_not_found")
    assert await plain.ok("GET", jobs) == []
    assert (await plain.ok("GET", f"/v1/projects/{pid}"))["training_jobs"] == []
    clock.advance(0.5)
    assert (await plain.ok("GET", job))["status"] == "Pending"
    assert [j["id"] for j in await plain.ok("GET", jobs)] == [job_id]
    (listed,) = (await plain.ok("GET", f"/v1/projects/{pid}"))["training_jobs"]
    assert listed["id"] == job_id


async def test_a_hidden_project_hides_what_it_holds_from_reads(
    plain: Api, emu: Emulator, clock: VirtualClock
) -> None:
    emu.faults.not_found_for(5)
    pid = await plain.project()
    dataset_id = (await plain.upload(pid))["id"]  # a write: it finds the project
    for path in [f"/v1/projects/{pid}", f"/v1/projects/{pid}/datasets/{dataset_id}"]:
        reply = await plain.request("GET", path)
        assert (reply.status, reply.body["code"]) == (404, "project_not_found")
    assert pid not in [p["id"] for p in await plain.ok("GET", "/v1/projects")]
    clock.advance(5)
    assert pid in [p["id"] for p in await plain.ok("GET", "/v1/projects")]
    assert [d["id"] for d in await plain.ok("GET", f"/v1/projects/{pid}/datasets")] == [dataset_id]


async def test_writes_find_a_hidden_resource(
    plain: Api, emu: Emulator, clock: VirtualClock
) -> None:
    pid = await plain.project()
    emu.faults.not_found_for(60, operation="datasets.create")
    emu.faults.not_found_for(60, operation="training_jobs.create")
    dataset_id = await plain.dataset(clock, pid)  # processed, not visible to reads
    job_id = await plain.job(pid, dataset_id)  # a create naming it
    job = f"/v1/projects/{pid}/training-jobs/{job_id}"
    assert (await plain.request("POST", job + "/cancel")).status == 204
    assert (await plain.request("DELETE", job)).status == 204
    clock.advance(60)
    assert await plain.ok("GET", f"/v1/projects/{pid}/training-jobs") == []


async def test_a_lifecycle_fault_for_one_create_waits_for_it(
    plain: Api, emu: Emulator, clock: VirtualClock
) -> None:
    emu.faults.not_found_for(10, operation="training_jobs.create")
    emu.faults.unknown_status("Queued", 10, operation="deployments.create")
    pid = await plain.project()
    dataset_id = await plain.dataset(clock, pid)
    assert await plain.ok("GET", f"/v1/projects/{pid}/datasets/{dataset_id}")
    assert emu.faults.pending == 2  # neither was for those
    job_id = await plain.job(pid, dataset_id)
    assert (await plain.request("GET", f"/v1/projects/{pid}/training-jobs/{job_id}")).status == 404
    assert emu.faults.pending == 1


async def test_a_wait_right_after_create_waits_through_the_404s(
    api: Any, emu: Emulator, clock: VirtualClock
) -> None:
    pid, dataset_id = await project_with_data(api, clock)
    emu.faults.not_found_for(10)
    job = await api.training_jobs.create(
        project_id=pid, request_body={"base_model": MODEL, "train_dataset_id": dataset_id}
    )
    with pytest.raises(APIErrorNotFound) as hidden:
        await api.training_jobs.get(project_id=pid, training_job_id=job.id)
    assert hidden.value.data.code == "training_job_not_found"
    polls_when_seen: list[int] = []
    done = await api.training_jobs.wait(
        project_id=pid,
        training_job_id=job.id,
        on_progress=lambda _: polls_when_seen.append(len(emu.polls("training_jobs.get", job.id))),
    )
    assert done.status == "Success"
    assert polls_when_seen[0] >= 3  # the get above, and the wait's 404s before its first answer


async def test_a_wait_on_what_never_existed_gives_up_after_the_grace_period(
    api: Any, clock: VirtualClock
) -> None:
    start = clock.now()
    with pytest.raises(APIErrorNotFound) as gone:
        await api.training_jobs.wait(project_id="demo-project", training_job_id="tr-000000000000")
    assert gone.value.data.code == "training_job_not_found"
    assert GRACE_S <= clock.now() - start < GRACE_S + 20  # the first poll past the grace


async def test_create_and_wait_finds_a_dropped_create_once_it_shows(
    client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    pid, dataset_id = await project_with_data(client, clock)
    emu.faults.commit_then_drop(operation="training_jobs.create")
    emu.faults.not_found_for(10, operation="training_jobs.create")
    done = await client.training_jobs.create_and_wait(
        project_id=pid, request_body={"base_model": MODEL, "train_dataset_id": dataset_id}
    )
    (job,) = await client.training_jobs.list(project_id=pid)
    assert (done.id, done.status) == (job.id, "Success")
    assert len(faults_met(emu, "training_jobs.list")) > 2  # listed until it showed
    assert job.name is not None and job.name.startswith("emissary-")


# --- unknown_status -------------------------------------------------------------------------


async def test_an_unknown_status_is_reported_for_its_first_seconds(
    plain: Api, emu: Emulator, clock: VirtualClock
) -> None:
    pid = await plain.project()  # a project and a dataset have no status: not for them
    emu.faults.unknown_status("Queued", 60)
    dataset_id = await plain.dataset(clock, pid)
    job_id = await plain.job(pid, dataset_id)
    job, jobs = f"/v1/projects/{pid}/training-jobs/{job_id}", f"/v1/projects/{pid}/training-jobs"
    clock.advance(45)  # its script: Running since 15 s
    detail = await plain.ok("GET", job)
    assert (detail["status"], detail["progress"]) == ("Queued", 2)  # progress as scripted
    assert [j["status"] for j in await plain.ok("GET", jobs)] == ["Queued"]
    (listed,) = (await plain.ok("GET", f"/v1/projects/{pid}"))["training_jobs"]
    assert listed["status"] == "Queued"
    clock.advance(15)
    assert await plain.status(job) == "Running"


async def test_an_unknown_status_on_a_deployment(
    plain: Api, emu: Emulator, clock: VirtualClock
) -> None:
    pid = await plain.project()
    job_id = await plain.trained(clock, pid)
    emu.faults.unknown_status("Warming", 10)
    deployment = f"/v1/projects/{pid}/deployments/{await plain.deployment(pid, job_id)}"
    statuses = []
    for _ in range(4):
        statuses.append(await plain.status(deployment))
        clock.advance(5)
    assert statuses == ["Warming", "Warming", "Deploying", "Deploying"]


async def test_a_wait_goes_on_through_an_unknown_status(
    api: Any, emu: Emulator, clock: VirtualClock
) -> None:
    pid, dataset_id = await project_with_data(api, clock)
    emu.faults.unknown_status("Queued", 60)
    seen: list[str] = []
    done = await api.training_jobs.create_and_wait(
        project_id=pid,
        request_body={"base_model": MODEL, "train_dataset_id": dataset_id},
        on_progress=lambda job: seen.append(job.status),
    )
    assert done.status == "Success"
    assert seen[0] == "Queued" and seen[-1] == "Success"
    assert set(seen) == {"Queued", "Running", "Success"}  # Pending hidden by "Queued"


async def test_an_unknown_status_outlasting_the_script_is_not_an_end(
    client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    pid, job_id = await trained(client, clock)
    emu.faults.unknown_status("Queued", 600)
    seen: list[str] = []
    start = clock.now()
    done = await client.deployments.create_and_wait(
        project_id=pid,
        request_body={"training_job_id": job_id, "checkpoint": 1},
        on_progress=lambda deployment: seen.append(deployment.status),
    )
    assert (done.status, seen) == ("Deployed", ["Queued", "Deployed"])
    assert clock.now() - start >= 600
