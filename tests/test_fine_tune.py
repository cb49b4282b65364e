"""``client.fine_tune(...)`` end to end against the emulator, for the async client and the
sync one: local data to a deployed model (a 6-hour training job with 4 checkpoints, on a
`VirtualClock` shared by the emulator and the client, so each run takes milliseconds), what
it returns and tells (`FineTuneRun`, `FineTuneEvent`), the bytes it uploads, the choices
(checkpoint, ``deploy=False``, a given project or dataset, a test set, serverless), the
checks made before anything is created, the errors with their ``.run``, the emulator's
lifecycle faults at every step (an ambiguous create adopted, a resource not visible yet, an
unknown status), and the ``state=`` file: written after each step, resumed after the process
died at hour 5 of training (in process, and for real: a subprocess killed with SIGKILL
against an emulator on sped-up real time), refused when the settings differ or the file is
corrupt.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from emissary import AsyncEmissaryClient, EmissaryClient, errors, models
from emissary.testing import (
    VIRTUAL_EPOCH,
    DatasetScript,
    DeploymentScript,
    Emulator,
    TrainingScript,
    VirtualClock,
    instant_retries,
)

from .faults import until

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
TRAIN = b"".join(b'{"prompt": "q%d", "completion": "a%d"}\n' % (i, i) for i in range(500))
TEST = b"".join(b'{"prompt": "t%d", "completion": "b%d"}\n' % (i, i) for i in range(50))
MODEL = "Llama-3.2-1B-Instruct"  # a chat model that can be deployed serverless
ON_DEMAND_ONLY = "Qwen2.5-7B-Instruct"  # a chat model that cannot (the emulator's catalog)
HOUR = 3600.0
DATASET_S = 20.0
PENDING_S, RUNNING_S = 60.0, 6 * HOUR
DEPLOY_PENDING_S, DEPLOYING_S = 30.0, 300.0
SCRIPTED_S = DATASET_S + PENDING_S + RUNNING_S + DEPLOY_PENDING_S + DEPLOYING_S
"""How long the platform takes, at least, from the upload to a deployed model."""
STEPS = ["project", "upload", "training", "checkpoint", "deployment"]


class Died(BaseException):
    """The process dying at a given moment: nothing in fine_tune catches it (nothing
    could catch a SIGKILL either)."""


class Events:
    """An ``on_event`` that keeps every `models.FineTuneEvent` with the virtual time it
    came at, and runs `also` (if given) on each."""

    def __init__(
        self, clock: VirtualClock, also: Callable[[models.FineTuneEvent], object] | None = None
    ) -> None:
        self.clock = clock
        self.also = also
        self.seen: list[tuple[float, models.FineTuneEvent]] = []

    def __call__(self, event: models.FineTuneEvent) -> None:
        assert isinstance(event, models.FineTuneEvent)
        self.seen.append((self.clock.now() - VIRTUAL_EPOCH, event))
        if self.also is not None:
            self.also(event)

    def steps(self) -> list[tuple[str, str]]:
        """(step, state) of each event, runs of the same one shown once."""
        shown: list[tuple[str, str]] = []
        for _, event in self.seen:
            if not shown or shown[-1] != (event.step, event.state):
                shown.append((event.step, event.state))
        return shown

    def of(self, step: str, state: str) -> list[Any]:
        """The resources of the events of `step` in `state`."""
        return [e.resource for _, e in self.seen if (e.step, e.state) == (step, state)]


@pytest.fixture
def emu(clock: VirtualClock) -> Iterator[Emulator]:
    """A threaded emulator (the sync client blocks the test's thread) on `clock`: a dataset
    is processed in 20 s, training takes 6 hours and saves 4 checkpoints, a deployment is
    ready 5.5 minutes after it is made."""
    with Emulator(clock=clock) as emulator:
        emulator.scripts.dataset = DatasetScript(processing_s=DATASET_S)
        emulator.scripts.training = TrainingScript(
            pending_s=PENDING_S, running_s=RUNNING_S, checkpoints=4
        )
        emulator.scripts.deployment = DeploymentScript(
            pending_s=DEPLOY_PENDING_S, deploying_s=DEPLOYING_S
        )
        yield emulator


@pytest.fixture
def train_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_bytes(TRAIN)
    return path


def operations(emu: Emulator) -> list[str]:
    """The operations of the requests the emulator received, in order."""
    return [str(request.operation) for request in emu.requests]


def creates(emu: Emulator) -> list[str]:
    """The creates of resources among them (uploads included), in order."""
    made = ("projects.create", "datasets.create", "training_jobs.create", "deployments.create")
    return [op for op in operations(emu) if op in made]


# --- From local data to a deployed model -----------------------------------------------------


async def test_from_local_data_to_a_deployed_model(
    api: Any, emu: Emulator, clock: VirtualClock, train_file: Path
) -> None:
    events = Events(clock)
    run = await api.fine_tune(base_model=MODEL, train=train_file, on_event=events)
    elapsed = clock.now() - VIRTUAL_EPOCH

    # What it made: one of each, in a project of its own.
    assert isinstance(run, models.FineTuneRun)
    assert creates(emu) == [
        "projects.create",
        "datasets.create",
        "training_jobs.create",
        "deployments.create",
    ]
    assert operations(emu)[0] == "base_models.get"  # the check, before anything is made
    project = run.project
    assert project.id in emu.projects and project.id != "demo-project"
    assert (run.train_dataset.is_uploaded, run.test_dataset) == (True, None)
    job = run.training_job
    assert (job.status, job.progress, job.base_model) == ("Success", 100, MODEL)
    assert job.train_dataset.id == run.train_dataset.id
    assert isinstance(run.checkpoint, models.TrainingJobCheckpoint)
    assert run.checkpoint.checkpoint == 4  # "last" by default
    deployment = run.deployment
    assert (deployment.status, deployment.training_id, deployment.checkpoint) == (
        "Deployed",
        job.id,
        4,
    )
    assert emu.projects[project.id] == {deployment.id}

    # The bytes uploaded are the file's, under its name and the dataset's.
    (upload,) = emu.uploads
    assert upload.sha256 == hashlib.sha256(TRAIN).hexdigest()
    assert (upload.size, upload.filename) == (len(TRAIN), "train.jsonl")
    assert (upload.project_id, upload.dataset_id) == (project.id, run.train_dataset.id)
    assert upload.name == run.train_dataset.name

    # The events, in order: each step starts (or is done at once) and ends.
    assert events.steps() == [
        ("project", "started"),
        ("project", "done"),
        ("upload", "started"),
        ("upload", "progress"),
        ("upload", "done"),
        ("training", "started"),
        ("training", "progress"),
        ("training", "done"),
        ("checkpoint", "done"),
        ("deployment", "started"),
        ("deployment", "progress"),
        ("deployment", "done"),
    ]
    assert events.of("project", "done") == [project]
    assert events.of("upload", "done") == [run.train_dataset]
    assert events.of("training", "done") == [job]
    assert events.of("checkpoint", "done") == [run.checkpoint]
    assert events.of("deployment", "done") == [deployment]
    progress = events.of("training", "progress")
    assert [p.status for p in progress[:2]] == ["Pending", "Running"]
    assert progress[-1].status == "Success"
    percents = [p.progress for p in progress]
    assert percents == sorted(percents) and percents[-1] == 100
    assert [d.status for d in events.of("deployment", "progress")] == [
        "Pending",
        "Deploying",
        "Deployed",
    ]
    times = [t for t, _ in events.seen]
    assert times == sorted(times)

    # Six hours of training, in virtual time; polled a few hundred times, not thousands;
    # done within minutes of the deployment being ready.
    assert len(emu.polls("training_jobs.get", job.id)) < 300
    assert SCRIPTED_S <= elapsed < SCRIPTED_S + 600

    # The deployment answers.
    reply = await api.deployments.chat.completions.create(
        project_id=project.id,
        deployment_id=deployment.id,
        request_body={"messages": [{"role": "user", "content": "Where is my order?"}]},
    )
    assert reply.response


async def test_a_test_set_is_uploaded_and_trained_with(api: Any, emu: Emulator) -> None:
    """``test=`` takes any upload source too (here a binary file object, from where it
    is); the job gets both datasets, named after ``name=``, as is the job itself."""
    test = io.BytesIO(TRAIN + TEST)
    test.seek(len(TRAIN))
    run = await api.fine_tune(base_model=MODEL, train=TRAIN, test=test, name="bot")
    assert test.tell() == len(TRAIN) and not test.closed  # left where it was
    train_upload, test_upload = emu.uploads
    assert train_upload.sha256 == hashlib.sha256(TRAIN).hexdigest()
    assert test_upload.sha256 == hashlib.sha256(TEST).hexdigest()
    assert (train_upload.name, test_upload.name) == ("bot-train", "bot-test")
    assert test_upload.dataset_id == run.test_dataset.id
    assert run.test_dataset.is_uploaded is True
    assert run.training_job.test_dataset.id == run.test_dataset.id
    assert run.training_job.train_dataset.id == run.train_dataset.id
    assert (run.training_job.name, run.deployment.name) == ("bot", "bot")


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("last", 4),
        (2, 2),
        (lambda saved: saved[0], 1),  # a callable picks one of those it is given
        (
            lambda saved: max(  # ... by their test results, say
                saved, key=lambda c: float(c.test_results.aggregated_test_result["loss"])
            ),
            1,
        ),
    ],
    ids=["last", "a number", "a callable", "by test results"],
)
async def test_the_checkpoint_deployed_is_the_one_chosen(
    api: Any, emu: Emulator, choice: Any, expected: int
) -> None:
    given: list[Any] = []

    def recorded(saved: list[models.TrainingJobCheckpoint]) -> models.TrainingJobCheckpoint:
        given.extend(saved)
        picked: models.TrainingJobCheckpoint = choice(saved)
        return picked

    run = await api.fine_tune(
        base_model=MODEL, train=TRAIN, checkpoint=recorded if callable(choice) else choice
    )
    assert run.checkpoint.checkpoint == expected
    assert run.deployment.checkpoint == expected
    (body,) = [r.body for r in emu.requests if r.operation == "deployments.create"]
    assert json.loads(body)["checkpoint"] == expected
    if callable(choice):
        assert [c.checkpoint for c in given] == [1, 2, 3, 4]


async def test_a_checkpoint_the_job_did_not_save_is_an_error_with_the_run(
    api: Any, emu: Emulator
) -> None:
    with pytest.raises(errors.RequestValidationError) as refused:
        await api.fine_tune(base_model=MODEL, train=TRAIN, checkpoint=7)
    assert str(refused.value) == "the training job has no checkpoint 7 (it has 1, 2, 3, 4)"
    run = refused.value.run
    assert isinstance(run, models.FineTuneRun)
    assert run.project is not None and run.train_dataset is not None
    assert run.training_job.status == "Success"  # what was made is there, to deploy by hand
    assert (run.checkpoint, run.deployment) == (None, None)
    assert "deployments.create" not in operations(emu)


async def test_deploy_false_stops_after_training(
    api: Any, emu: Emulator, clock: VirtualClock
) -> None:
    events = Events(clock)
    run = await api.fine_tune(base_model=MODEL, train=TRAIN, deploy=False, on_event=events)
    assert run.training_job.status == "Success"
    assert run.checkpoint.checkpoint == 4  # picked: what a deployment would use
    assert run.deployment is None
    assert "deployments.create" not in operations(emu)
    assert "deployment" not in [step for step, _ in events.steps()]


async def test_a_project_given_is_used(api: Any, emu: Emulator, clock: VirtualClock) -> None:
    project = await api.projects.create(request={"name": "mine"})
    events = Events(clock)
    run = await api.fine_tune(base_model=MODEL, train=TRAIN, project_id=project.id, on_event=events)
    assert run.project.id == project.id and run.project.name == "mine"
    assert creates(emu).count("projects.create") == 1  # ours
    assert events.steps()[:2] == [("project", "done"), ("upload", "started")]
    assert emu.uploads[0].project_id == project.id
    assert emu.projects[project.id] == {run.deployment.id}


async def test_a_dataset_already_uploaded_is_trained_on(
    api: Any, emu: Emulator, clock: VirtualClock
) -> None:
    project = await api.projects.create(request={"name": "mine"})
    dataset = await api.datasets.upload(project_id=project.id, file=TRAIN, name="uploaded")
    events = Events(clock)
    run = await api.fine_tune(
        base_model=MODEL, train_dataset_id=dataset.id, project_id=project.id, on_event=events
    )
    assert [e for step, e in events.steps() if step == "upload"] == ["progress", "done"]
    assert len(emu.uploads) == 1  # ours: nothing uploaded again
    assert creates(emu).count("datasets.create") == 1
    assert run.train_dataset.id == dataset.id and run.train_dataset.is_uploaded is True
    assert run.training_job.train_dataset.id == dataset.id
    assert run.deployment.status == "Deployed"


async def test_a_dataset_id_given_as_train_is_a_path(api: Any, emu: Emulator) -> None:
    """``train="ds-..."`` names a file (a ``str`` is always a path): refused before any
    request, as a missing file."""
    with pytest.raises(errors.UploadSourceError) as missing:
        await api.fine_tune(base_model=MODEL, train="ds-0123456789ab")
    assert str(missing.value) == "file: 'ds-0123456789ab' does not exist"
    assert missing.value.run == models.FineTuneRun()  # (every error has the run: empty)
    assert emu.requests == []


async def test_a_serverless_deployment(api: Any, emu: Emulator) -> None:
    run = await api.fine_tune(base_model=MODEL, train=TRAIN, server_type="serverless")
    (body,) = [r.body for r in emu.requests if r.operation == "deployments.create"]
    assert json.loads(body)["server_type"] == "serverless"
    assert run.deployment.status == "Deployed"


# --- Checks before anything is created -------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "error", "message", "sent"),
    [
        (
            {"base_model": "Llama-9-Imaginary", "train": TRAIN},
            errors.APIErrorNotFound,
            "base model 'Llama-9-Imaginary' not found",
            ["base_models.get"],
        ),
        (
            {"base_model": ON_DEMAND_ONLY, "train": TRAIN, "server_type": "serverless"},
            errors.RequestValidationError,
            "the base model 'Qwen2.5-7B-Instruct' cannot be deployed serverless: pass "
            "server_type='on-demand' (or none)",
            ["base_models.get"],
        ),
        (
            {"base_model": MODEL, "train": "no/such/train.jsonl"},
            errors.UploadSourceError,
            "file: 'no/such/train.jsonl' does not exist",
            [],
        ),
        (
            {"base_model": MODEL, "train": TRAIN, "test": "no/such/test.jsonl"},
            errors.UploadSourceError,
            "file: 'no/such/test.jsonl' does not exist",
            [],
        ),
        (
            {"base_model": MODEL, "train": b""},
            errors.UploadSourceError,
            "file is empty: a dataset needs its data",
            [],
        ),
    ],
    ids=["unknown base model", "serverless unsupported", "missing train", "missing test", "empty"],
)
async def test_nothing_is_created_when_a_check_fails(
    api: Any,
    emu: Emulator,
    tmp_path: Path,
    arguments: dict[str, Any],
    error: type[Exception],
    message: str,
    sent: list[str],
) -> None:
    state = tmp_path / "run.json"
    with pytest.raises(error) as refused:
        await api.fine_tune(**arguments, state=state)
    assert message in str(refused.value)
    assert operations(emu) == sent  # a look at the base model at most: nothing created
    assert emu.uploads == [] and set(emu.projects) == {"demo-project"}
    assert not state.exists()  # nothing to resume
    run = getattr(refused.value, "run", None)
    assert run is None or run == models.FineTuneRun()  # no step done


async def test_the_on_demand_model_deploys_on_demand(api: Any, emu: Emulator) -> None:
    """The same model without ``server_type``: the check passes, it deploys."""
    run = await api.fine_tune(base_model=ON_DEMAND_ONLY, train=TRAIN)
    assert run.deployment.status == "Deployed"


# --- A step that fails: its own error, with the run so far --------------------------------


async def test_a_training_job_that_fails(api: Any, emu: Emulator) -> None:
    emu.scripts.training = TrainingScript(
        pending_s=PENDING_S, running_s=RUNNING_S, outcome="Failed", checkpoints=4
    )
    with pytest.raises(errors.TrainingJobError) as failed:
        await api.fine_tune(base_model=MODEL, train=TRAIN)
    error = failed.value
    assert error.status == "Failed" and error.resource.status == "Failed"
    assert str(error).startswith(f"the training job {error.resource.id} ended Failed")
    run = error.run
    assert isinstance(run, models.FineTuneRun)
    assert run.project.id == emu.uploads[0].project_id
    assert run.train_dataset.id == emu.uploads[0].dataset_id
    assert (run.training_job, run.checkpoint, run.deployment) == (None, None, None)
    assert "deployments.create" not in operations(emu)


async def test_a_deployment_that_fails(api: Any, emu: Emulator) -> None:
    emu.scripts.deployment = DeploymentScript(pending_s=5, deploying_s=60, outcome="Failed")
    with pytest.raises(errors.DeploymentError) as failed:
        await api.fine_tune(base_model=MODEL, train=TRAIN)
    assert failed.value.status == "Failed"
    run = failed.value.run
    assert run.training_job.status == "Success" and run.checkpoint.checkpoint == 4
    assert run.deployment is None


async def test_an_on_event_that_raises_ends_the_run(api: Any, emu: Emulator) -> None:
    def broken(event: models.FineTuneEvent) -> None:
        if event.step == "training":
            raise ValueError("oops")

    with pytest.raises(errors.EmissaryError) as failed:
        await api.fine_tune(base_model=MODEL, train=TRAIN, on_event=broken)
    assert str(failed.value) == "fine_tune's training step failed: ValueError('oops')"
    assert isinstance(failed.value.__cause__, ValueError)
    assert "training_jobs.create" not in operations(emu)


CREATES = ["projects.create", "datasets.create", "training_jobs.create", "deployments.create"]


@pytest.mark.parametrize("operation", CREATES)
async def test_an_ambiguous_create_is_adopted_not_made_twice(
    api: Any, emu: Emulator, operation: str
) -> None:
    """A create is carried out but its connection dropped before the answer: fine_tune
    finds what it made by the name it gave it and goes on with it, at every step."""
    emu.faults.commit_then_drop(operation=operation)
    run = await api.fine_tune(base_model=MODEL, train=TRAIN)
    assert creates(emu) == CREATES  # each sent once, never again
    (dropped,) = [r for r in emu.requests if r.fault == "commit_then_drop"]
    assert dropped.operation == operation
    assert [p for p in emu.projects if p != "demo-project"] == [run.project.id]
    assert [u.dataset_id for u in emu.uploads] == [run.train_dataset.id]
    (job,) = await api.training_jobs.list(project_id=run.project.id)
    (deployment,) = await api.deployments.list(project_id=run.project.id)
    assert (job.id, deployment.id) == (run.training_job.id, run.deployment.id)
    assert run.deployment.status == "Deployed"


@pytest.mark.parametrize("operation", CREATES)
async def test_a_resource_not_visible_yet_is_waited_for(
    api: Any, emu: Emulator, operation: str
) -> None:
    """What a create made answers 404 (and is left out of lists) for its first 10 s, as
    on a platform whose reads lag behind: fine_tune waits until it shows."""
    emu.faults.not_found_for(10, operation=operation)
    run = await api.fine_tune(base_model=MODEL, train=TRAIN)
    assert creates(emu) == CREATES
    assert run.deployment.status == "Deployed"


@pytest.mark.parametrize("operation", ["training_jobs.create", "deployments.create"])
async def test_an_unknown_status_is_not_an_end(
    api: Any, emu: Emulator, clock: VirtualClock, operation: str
) -> None:
    emu.faults.unknown_status("Queued", 600, operation=operation)
    events = Events(clock)
    run = await api.fine_tune(base_model=MODEL, train=TRAIN, on_event=events)
    step = "training" if operation.startswith("training") else "deployment"
    statuses = [r.status for r in events.of(step, "progress")]
    assert statuses[0] == "Queued" and statuses[-1] in ("Success", "Deployed")
    assert run.deployment.status == "Deployed"


async def test_the_error_of_a_callable_of_yours_has_the_run_too(api: Any, emu: Emulator) -> None:
    """A step that fails raises its error with ``.run`` attached, whatever failed: here
    the ``checkpoint=`` callable, after the job was trained."""

    def broken(saved: list[models.TrainingJobCheckpoint]) -> models.TrainingJobCheckpoint:
        raise KeyError("loss")

    with pytest.raises(errors.EmissaryError) as failed:
        await api.fine_tune(base_model=MODEL, train=TRAIN, checkpoint=broken)
    assert str(failed.value) == "fine_tune's checkpoint step failed: KeyError('loss')"
    run = failed.value.run
    assert isinstance(run, models.FineTuneRun)
    assert run.training_job is not None and run.training_job.status == "Success"


# --- The state file --------------------------------------------------------------------------


def read_state(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


async def test_the_state_file_is_written_after_each_step(
    api: Any, emu: Emulator, clock: VirtualClock, tmp_path: Path
) -> None:
    state = tmp_path / "run.json"
    snapshots: list[tuple[str, str, dict[str, Any] | None]] = []

    def look(event: models.FineTuneEvent) -> None:
        saved = read_state(state) if state.exists() else None
        snapshots.append((event.step, event.state, saved))

    run = await api.fine_tune(
        base_model=MODEL, train=TRAIN, state=state, on_event=Events(clock, look)
    )

    def first(step: str, when: str) -> dict[str, Any]:
        (saved,) = [s for st, w, s in snapshots if (st, w) == (step, when)][:1]
        assert saved is not None
        return saved

    assert snapshots[0] == ("project", "started", None)  # nothing written before
    after_project = first("project", "done")
    assert after_project["project_id"] == run.project.id
    assert "train_dataset_id" not in after_project
    during_upload = first("upload", "progress")
    assert during_upload["train_dataset_id"] == run.train_dataset.id  # before it is waited for
    assert "training_job_id" not in first("training", "started")
    assert first("training", "progress")["training_job_id"] == run.training_job.id
    assert "checkpoint" not in first("training", "done")
    assert first("checkpoint", "done")["checkpoint"] == 4
    assert "deployment_id" not in first("deployment", "started")
    assert first("deployment", "progress")["deployment_id"] == run.deployment.id
    final = read_state(state)
    assert {
        final["project_id"],
        final["train_dataset_id"],
        final["training_job_id"],
        final["deployment_id"],
    } == {run.project.id, run.train_dataset.id, run.training_job.id, run.deployment.id}
    assert os.listdir(tmp_path) == ["run.json"]  # written atomically: no temporary left

    # Run again with it: every step is re-attached, nothing made again.
    made = creates(emu)
    again = Events(clock)
    rerun = await api.fine_tune(base_model=MODEL, train=TRAIN, state=state, on_event=again)
    assert creates(emu) == made
    assert [step for step, _ in again.steps() if _ == "resumed"] == [
        "project",
        "upload",
        "training",
        "deployment",
    ]
    assert (rerun.training_job.id, rerun.deployment.id) == (
        run.training_job.id,
        run.deployment.id,
    )


async def test_resumed_after_dying_at_hour_5_of_training(
    api: Any, emu: Emulator, clock: VirtualClock, tmp_path: Path, train_file: Path
) -> None:
    """The process dies (nothing in fine_tune runs after it) at hour 5 of 6; run again
    with the same state file, it re-attaches to the same job: nothing is uploaded or
    trained twice, and the job's last hour is all the second run waits for training."""
    state = tmp_path / "run.json"

    def die_at_hour_5(event: models.FineTuneEvent) -> None:
        if event.step == "training" and (getattr(event.resource, "progress", 0) or 0) >= 84:
            raise Died

    first = Events(clock, die_at_hour_5)
    with pytest.raises(Died):
        await api.fine_tune(base_model=MODEL, train=train_file, state=state, on_event=first)
    (died_at, last), *_ = first.seen[::-1]
    job_id = read_state(state)["training_job_id"]
    assert (last.resource.id, last.resource.status) == (job_id, "Running")
    assert DATASET_S + PENDING_S + 5 * HOUR <= died_at < DATASET_S + PENDING_S + 5.5 * HOUR

    second = Events(clock)
    run = await api.fine_tune(base_model=MODEL, train=train_file, state=state, on_event=second)
    assert run.training_job.id == job_id and run.training_job.status == "Success"
    assert run.deployment.status == "Deployed" and run.deployment.training_id == job_id
    assert len(emu.uploads) == 1
    assert creates(emu) == [
        "projects.create",
        "datasets.create",
        "training_jobs.create",
        "deployments.create",
    ]
    assert second.steps()[:7] == [
        ("project", "resumed"),
        ("project", "done"),
        ("upload", "resumed"),
        ("upload", "progress"),
        ("upload", "done"),
        ("training", "resumed"),
        ("training", "progress"),
    ]
    resumed_training = [t for t, e in second.seen if e.step == "training"]
    assert resumed_training[-1] - resumed_training[0] < 1.1 * HOUR


async def test_a_resumed_run_whose_job_failed_fails_again(
    api: Any, emu: Emulator, tmp_path: Path
) -> None:
    """A step that failed stays failed: the resume re-attaches to the failed job (it trains
    nothing anew) and raises as the first run did; a new state file starts anew."""
    state = tmp_path / "run.json"
    emu.scripts.training = TrainingScript(outcome="Failed")
    with pytest.raises(errors.TrainingJobError) as first:
        await api.fine_tune(base_model=MODEL, train=TRAIN, state=state)
    emu.scripts.training = TrainingScript()
    with pytest.raises(errors.TrainingJobError) as again:
        await api.fine_tune(base_model=MODEL, train=TRAIN, state=state)
    assert again.value.resource.id == first.value.resource.id
    assert creates(emu).count("training_jobs.create") == 1
    run = await api.fine_tune(base_model=MODEL, train=TRAIN, state=tmp_path / "anew.json")
    assert run.training_job.status == "Success"


@pytest.mark.parametrize(
    "change",
    [
        {"base_model": "Llama-3.2-1B"},
        {"train": TRAIN + TEST},  # other data (of another size)
        {"deploy": False},
        {"server_type": "serverless"},
        {"project_id": "demo-project"},
        {"parameters": {"epochs": 5}},
        {"checkpoint": 2},
        {"train": TRAIN.replace(b"q1", b"Q1")},  # other data of the same size
    ],
    ids=[
        "base_model",
        "train (size)",
        "deploy",
        "server_type",
        "project_id",
        "parameters",
        "checkpoint",
        "train (content)",
    ],
)
async def test_a_resume_with_other_settings_is_refused(
    api: Any, emu: Emulator, tmp_path: Path, change: dict[str, Any]
) -> None:
    """A state file records the settings its run was started with: a run with others
    (another model, other data, other parameters, ...) is refused before any request,
    rather than re-attached to what the first made with the first settings."""
    state = tmp_path / "run.json"
    settings: dict[str, Any] = {"base_model": MODEL, "train": TRAIN}
    await api.fine_tune(**settings, state=state)
    sent = len(emu.requests)
    with pytest.raises(errors.ConfigurationError) as refused:
        await api.fine_tune(**{**settings, **change}, state=state)
    assert "records a run with other settings" in str(refused.value)
    assert "delete it to start anew" in str(refused.value)
    assert len(emu.requests) == sent


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'{"version": 99}', b"\xff\xfe"],
    ids=["not JSON", "not an object", "another version", "not UTF-8"],
)
async def test_a_corrupt_state_file_is_refused(
    api: Any, emu: Emulator, tmp_path: Path, content: bytes
) -> None:
    state = tmp_path / "run.json"
    state.write_bytes(content)
    with pytest.raises(errors.ConfigurationError) as refused:
        await api.fine_tune(base_model=MODEL, train=TRAIN, state=state)
    assert str(refused.value).startswith(f"state: {str(state)!r} ")
    assert str(refused.value).endswith("delete it to start anew")
    assert emu.requests == [] and state.read_bytes() == content  # left as it was

    state.unlink()  # as the message says: a new run
    run = await api.fine_tune(base_model=MODEL, train=TRAIN, state=state)
    assert run.deployment.status == "Deployed"
    assert read_state(state)["deployment_id"] == run.deployment.id


async def test_a_create_cut_off_by_death_is_adopted_on_resume(tmp_path: Path) -> None:
    """The process dies after its create of the training job was made on the server,
    before the answer (the job's id) came back: the state file holds the name the job
    was given, and a resume finds it by that name and adopts it, as `fine_tune` says,
    rather than training a second one."""
    clock = VirtualClock()
    state = tmp_path / "run.json"
    async with (
        Emulator(clock=clock) as emu,  # on this loop: the test sees the create arrive
        AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url) as client,
    ):
        # The training job is made, its answer sent a byte every 30 s: never, here.
        emu.faults.drip(30, operation="training_jobs.create")
        with instant_retries(client, clock=clock):
            with anyio.fail_after(10):
                async with anyio.create_task_group() as running:
                    running.start_soon(
                        functools.partial(
                            client.fine_tune,
                            base_model=MODEL,
                            train=TRAIN,
                            state=state,
                        )
                    )
                    await until(lambda: "training_jobs.create" in operations(emu))
                    project_id = read_state(state)["project_id"]

                    async def made() -> bool:
                        return bool(await client.training_jobs.list(project_id=project_id))

                    await until(made)  # the job exists: its create's answer is on its way
                    running.cancel_scope.cancel()  # the process dies
            recorded = read_state(state)
            assert "training_job_id" not in recorded and recorded["training_job_name"]
            (orphan,) = await client.training_jobs.list(project_id=project_id)
            assert orphan.name == recorded["training_job_name"]

            run = await client.fine_tune(base_model=MODEL, train=TRAIN, state=state)
        jobs = await client.training_jobs.list(project_id=project_id)
        assert [job.id for job in jobs] == [orphan.id]
        assert run.training_job.id == orphan.id


async def test_a_named_create_cut_off_by_death_adopts_its_own_job_not_an_older_one(
    tmp_path: Path,
) -> None:
    """As above, with the caller's ``name=``, which an older job in the project has too:
    the state file records the jobs that had the name before the create, and the resume
    adopts the one its create made, never the older one, and trains no third."""
    clock = VirtualClock()
    state = tmp_path / "run.json"
    async with (
        Emulator(clock=clock) as emu,
        AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url) as client,
    ):
        with instant_retries(client, clock=clock):
            project = await client.projects.create(request={"name": "shared"})
            assert project.id is not None
            pid = project.id
            data = await client.datasets.upload(project_id=pid, file=TRAIN)
            assert data.id is not None
            await client.datasets.wait(project_id=pid, dataset_id=data.id)
            older = await client.training_jobs.create(
                project_id=pid,
                request_body={"base_model": MODEL, "train_dataset_id": data.id, "name": "mine"},
            )
            emu.faults.drip(30, operation="training_jobs.create")
            settings: dict[str, Any] = {
                "base_model": MODEL, "train_dataset_id": data.id, "project_id": pid,
                "name": "mine", "state": state,
            }  # fmt: skip
            with anyio.fail_after(10):
                async with anyio.create_task_group() as running:
                    running.start_soon(functools.partial(client.fine_tune, **settings))

                    async def made() -> bool:
                        return len(await client.training_jobs.list(project_id=pid)) == 2

                    await until(made)
                    running.cancel_scope.cancel()  # the process dies
            recorded = read_state(state)
            assert recorded["training_job_name"] == "mine"
            assert recorded["training_job_before"] == [older.id]
            (orphan,) = [
                j for j in await client.training_jobs.list(project_id=pid) if j.id != older.id
            ]

            run = await client.fine_tune(**settings)
        assert run.training_job.id == orphan.id
        assert len(await client.training_jobs.list(project_id=pid)) == 2


# --- kill -9 at hour 5 of training, for real -----------------------------------------------

CHILD = """
import sys

from emissary import EmissaryClient

train, state = sys.argv[1:]
with EmissaryClient() as client:  # the emulator's URL and key from the environment
    client.fine_tune(
        base_model="Llama-3.2-1B-Instruct",
        train=train,
        state=state,
        on_event=lambda event: print(event.step, event.state, flush=True),
    )
print("finished", flush=True)
"""
TIME_SCALE = 0.0001
"""A real second is 10 000 emulated ones: 6 hours of training take 2.16 s."""


def test_killed_at_hour_5_of_training_the_run_resumes_the_same_job(
    tmp_path: Path, train_file: Path
) -> None:
    """``fine_tune(state=...)`` in a subprocess, against an emulator here on sped-up real
    time; SIGKILL once its training job is at hour 5 of 6; then the same call with the
    same state file here: it re-attaches to that job (one upload, one training job) and
    ends with the job's checkpoint deployed."""
    state = tmp_path / "run.json"
    out, err = tmp_path / "child.out", tmp_path / "child.err"
    began = time.monotonic()
    with (
        Emulator(time_scale=TIME_SCALE) as emu,
        EmissaryClient(api_key=emu.api_key, server_url=emu.url) as client,
    ):
        emu.scripts.dataset = DatasetScript(processing_s=0)
        emu.scripts.training = TrainingScript(pending_s=60, running_s=RUNNING_S, checkpoints=4)
        emu.scripts.deployment = DeploymentScript(pending_s=0, deploying_s=0)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("EMISSARY_")},
            "EMISSARY_SERVER_URL": emu.url,
            "EMISSARY_CLIENT_API_KEY": emu.api_key,
            "PYTHONPATH": str(ROOT),
        }
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            child = subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(CHILD), str(train_file), str(state)],
                stdout=stdout,
                stderr=stderr,
                env=env,
                cwd=tmp_path,
            )
        try:
            # Until its job is at hour 5 (84 % of 6 hours): bounded, watched from here.
            deadline = time.monotonic() + 15
            job: Any = None
            while job is None or job.status != "Running" or (job.progress or 0) < 84:
                assert child.poll() is None, err.read_text()
                assert time.monotonic() < deadline, f"training not at hour 5: {job}"
                if state.exists() and "training_job_id" in (recorded := read_state(state)):
                    job = client.training_jobs.get(
                        project_id=recorded["project_id"],
                        training_job_id=recorded["training_job_id"],
                    )
                time.sleep(0.005)
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
        killed_at = time.monotonic() - began
        assert child.returncode == -signal.SIGKILL
        assert out.read_text().splitlines()[-1] == "training progress"  # in the wait
        assert "checkpoint" not in read_state(state)

        run = client.fine_tune(base_model=MODEL, train=str(train_file), state=state)
        took = time.monotonic() - began

        assert run.training_job.id == job.id and run.training_job.status == "Success"
        assert (run.deployment.status, run.deployment.training_id) == ("Deployed", job.id)
        (upload,) = emu.uploads
        assert upload.sha256 == hashlib.sha256(TRAIN).hexdigest()
        assert run.train_dataset.id == upload.dataset_id
        assert creates(emu) == [
            "projects.create",
            "datasets.create",
            "training_jobs.create",
            "deployments.create",
        ]
        (only,) = client.training_jobs.list(project_id=run.project.id)
        assert only.id == job.id
    assert killed_at < took < 15, (killed_at, took)
