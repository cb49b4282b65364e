"""``client.fine_tune(...)``: local data to a deployed model in one call, resumable.

The steps, each an ordinary call (or wait) of the client, in order: check (the base model
exists, supports serverless if asked, and every local source can be read: before anything
is created), project (created unless given), upload (the training data, and the test data
if any, each waited for until processed), training (created and waited for), checkpoint
(picked: ``"last"``, a number, or a callable over the checkpoints), deployment (created and
waited for, unless ``deploy=False``).

With ``state=PATH``, a JSON file records the run after each step, written atomically (a
temporary file, fsynced, renamed over it), and before each create the name the resource
will have (and which resources had that name already). Running again with the same file
resumes: a step whose resource is recorded is not made again (its resource is re-attached,
and waited for if it is still running), and a create that was interrupted is found by its
recorded name and adopted. So a run killed at hour 5 of training re-attaches to the same
job: nothing is uploaded or trained twice. The file also records the run's settings (the
data's fingerprint among them: a path's size and modification time, bytes' SHA-256), and a
run with other settings is refused rather than attached to what the first one made.

Creates are made with `emissary._waiters.create_adopting`: after an ambiguous failure they
adopt what they made, never make it twice. A step's error is raised as it is, with the run
so far as its ``.run`` (an error of a callable of the caller's, ``checkpoint=`` or
``on_event=``, as an `EmissaryError` whose cause it is). ``on_event`` gets a
`models.FineTuneEvent` as each step starts (``"started"``: it makes something new;
``"resumed"``: it re-attaches to what the state file recorded), as a wait sees progress,
and as it ends (``"done"``, every step).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import _operations as ops
from . import _waiters as waiters
from .errors import ConfigurationError, EmissaryError, RequestValidationError
from .models import FineTuneEvent, FineTuneRun, TrainingJobCheckpoint

if TYPE_CHECKING:
    from ._async.client import AsyncEmissaryClient

STATE_VERSION = 1
CheckpointChoice = str | int | Callable[[list[TrainingJobCheckpoint]], TrainingJobCheckpoint]
"""``checkpoint=``: ``"last"``, a checkpoint's number, or a callable that picks one."""


class _State:
    """The run's record: ids of what each step made, the names of what it is making, and
    the settings it was started with (a resume with other settings is refused)."""

    def __init__(self, path: str | os.PathLike[str] | None, settings: dict[str, Any]) -> None:
        self.path = None if path is None else os.fspath(path)
        self.data: dict[str, Any] = {"version": STATE_VERSION, "settings": settings}
        if self.path is not None and os.path.exists(self.path):
            try:
                with open(self.path, "rb") as file:
                    saved = json.loads(file.read())
            except (OSError, ValueError) as exc:
                raise ConfigurationError(
                    f"state: {self.path!r} cannot be read ({exc}); delete it to start anew"
                ) from None
            if not isinstance(saved, dict) or saved.get("version") != STATE_VERSION:
                raise ConfigurationError(
                    f"state: {self.path!r} is not a fine_tune state file; delete it to start anew"
                )
            if saved.get("settings") != settings:
                raise ConfigurationError(
                    f"state: {self.path!r} records a run with other settings "
                    f"({_difference(saved.get('settings'), settings)}); use another state "
                    "file, or delete it to start anew"
                )
            self.data = saved

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def set(self, **values: Any) -> None:
        """Record `values` (written at once, atomically)."""
        self.data.update(values)
        if self.path is None:
            return
        temporary = f"{self.path}.tmp-{os.getpid()}"
        with open(temporary, "wb") as file:
            file.write(json.dumps(self.data, indent=1).encode() + b"\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)

    def interrupted(self, step: str) -> tuple[str, list[str]] | None:
        """The name (and the ids that had it before) of `step`'s create, if one was begun
        and its resource not recorded: the create was interrupted."""
        name = self.get(f"{step}_name")
        return None if name is None else (name, self.get(f"{step}_before") or [])

    def began(self, step: str) -> Callable[[str, list[str]], None]:
        """What `create_adopting` tells before `step`'s create: recorded."""
        return lambda name, before: self.set(**{f"{step}_name": name, f"{step}_before": before})


def _difference(saved: object, settings: dict[str, Any]) -> str:
    if not isinstance(saved, dict):
        return "none recorded"
    keys = sorted(k for k in {*saved, *settings} if saved.get(k) != settings.get(k))
    return ", ".join(keys)


async def fine_tune(
    client: AsyncEmissaryClient,
    *,
    base_model: str,
    train: object,
    test: object,
    train_dataset_id: str | None,
    test_dataset_id: str | None,
    project_id: str | None,
    project_name: str | None,
    train_test_split_ratio: float | None,
    parameters: dict[str, Any] | None,
    hf_model_link: str | None,
    name: str | None,
    description: str | None,
    deploy: bool,
    checkpoint: CheckpointChoice,
    server_type: str | None,
    state: str | os.PathLike[str] | None,
    progress: bool,
    on_event: Callable[[FineTuneEvent], object] | None,
) -> FineTuneRun:
    """See `AsyncEmissaryClient.fine_tune` and the module docstring."""
    run = FineTuneRun()
    step = "check"
    try:
        sources = _check(train, test, train_dataset_id, test_dataset_id, checkpoint)
        record = _State(
            state,
            {
                "base_model": base_model,
                "train": _fingerprint(train, sources["train"]),
                "test": _fingerprint(test, sources["test"]),
                "train_dataset_id": train_dataset_id,
                "test_dataset_id": test_dataset_id,
                "project_id": project_id,
                "project_name": project_name,
                "train_test_split_ratio": train_test_split_ratio,
                "parameters": parameters,
                "hf_model_link": hf_model_link,
                "name": name,
                "description": description,
                "deploy": deploy,
                "checkpoint": "a callable" if callable(checkpoint) else checkpoint,
                "server_type": server_type,
            },
        )
        tell = on_event or (lambda event: None)
        model = await client.base_models.get(base_model_name=base_model)
        if server_type == "serverless" and model.support_serverless is False:
            raise RequestValidationError(
                f"the base model {base_model!r} cannot be deployed serverless: pass "
                "server_type='on-demand' (or none)",
                field="server_type",
            )
        step = "project"
        run.project = await _project(client, record, project_id, project_name, tell)
        pid: str = run.project.id
        step = "upload"
        for which, source, given_id in (
            ("train", sources["train"], train_dataset_id),
            ("test", sources["test"], test_dataset_id),
        ):
            if source is None and given_id is None:
                continue
            dataset = await _dataset(
                client, record, pid, which, source, given_id, name, progress, tell
            )
            setattr(run, f"{which}_dataset", dataset)
        step = "training"
        run.training_job = await _training(
            client, record, pid, run, base_model, train_test_split_ratio, parameters,
            hf_model_link, name, description, progress, tell,
        )  # fmt: skip
        step = "checkpoint"
        run.checkpoint = await _checkpoint(
            client, record, pid, run.training_job.id, checkpoint, tell
        )
        if deploy:
            step = "deployment"
            run.deployment = await _deployment(
                client, record, pid, run, server_type, name, description, progress, tell
            )
    except EmissaryError as error:
        error.run = run
        raise
    except Exception as error:  # a callable of the caller's (checkpoint=, on_event=) failed
        failure = EmissaryError(f"fine_tune's {step} step failed: {error!r}")
        failure.run = run
        raise failure from error
    return run


def _check(
    train: object,
    test: object,
    train_dataset_id: str | None,
    test_dataset_id: str | None,
    checkpoint: object,
) -> dict[str, Any]:
    """The arguments' checks (before any I/O); the upload sources of `train` and `test`."""
    from ._upload import upload_source

    if (train is None) == (train_dataset_id is None):
        raise RequestValidationError(
            "fine_tune needs the training data: train= (a path, bytes, a file object, ...) "
            "or train_dataset_id= (a dataset already uploaded), not both",
            field="train",
        )
    if test is not None and test_dataset_id is not None:
        raise RequestValidationError(
            "give test= or test_dataset_id=, not both", field="test_dataset_id"
        )
    if not (checkpoint == "last" or callable(checkpoint) or _is_number(checkpoint)):
        raise RequestValidationError(
            f"checkpoint must be 'last', a checkpoint's number or a callable, got {checkpoint!r}",
            field="checkpoint",
        )
    return {
        "train": None if train is None else upload_source(train),
        "test": None if test is None else upload_source(test),
    }


def _fingerprint(given: object, source: object) -> object:
    """What the state file records of the data, to tell other data on a resume: a path's
    size and modification time (as ``make`` does: a file is not read twice), bytes' SHA-256,
    a file object's size; nothing of a stream."""
    if source is None:
        return None
    if isinstance(given, bytes | bytearray | memoryview):
        import hashlib

        return {"sha256": hashlib.sha256(given).hexdigest()}
    if isinstance(given, str | os.PathLike):
        info = os.stat(given)
        return {"path": os.fspath(given), "size": info.st_size, "mtime_ns": info.st_mtime_ns}
    return {"size": getattr(source, "size", None)}


def _is_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


Tell = Callable[[FineTuneEvent], object]


async def _project(
    client: AsyncEmissaryClient,
    record: _State,
    project_id: str | None,
    project_name: str | None,
    tell: Tell,
) -> Any:
    if project_id is not None:  # the caller's: it exists, or this is an error now
        project = await client.projects.get(project_id=project_id)
        tell(FineTuneEvent("project", "done", project))
        return project
    found = record.get("project_id")
    if found is None:
        tell(FineTuneEvent("project", "started"))
        found = await waiters.create_adopting(
            client, ops.CREATE_PROJECT, ops.LIST_PROJECTS, "project", (),
            {"name": project_name}, {}, begin=record.began("project"),
            resume=record.interrupted("project"),
        )  # fmt: skip
        record.set(project_id=found)
    else:
        tell(FineTuneEvent("project", "resumed"))
    project = await waiters.wait(  # made just now (or before a crash): maybe not visible yet
        client, waiters.PROJECT, (found,), max_wait=None, poll=None, on_progress=None,
        progress=False, raise_on_failure=True, options={},
    )  # fmt: skip
    tell(FineTuneEvent("project", "done", project))
    return project


async def _dataset(
    client: AsyncEmissaryClient,
    record: _State,
    project_id: str,
    which: str,
    source: Any,
    given_id: str | None,
    name: str | None,
    progress: bool,
    tell: Tell,
) -> Any:
    key = f"{which}_dataset_id"
    known = given_id or record.get(key)
    if known is None:
        tell(FineTuneEvent("upload", "started"))

        async def send(body: object) -> Any:
            assert isinstance(body, dict)
            return await client.datasets.upload(
                project_id=project_id, file=source, name=body["name"], progress=progress
            )

        step = f"{which}_dataset"
        known = await waiters.create_adopting(
            client, ops.CREATE_DATASET, ops.LIST_DATASETS, "dataset", (project_id,),
            {"name": None if name is None else f"{name}-{which}"}, {}, send=send,
            begin=record.began(step), resume=record.interrupted(step),
        )  # fmt: skip
        record.set(**{key: known})
    elif given_id is None:
        tell(FineTuneEvent("upload", "resumed"))
    dataset = await client.datasets.wait(
        project_id=project_id,
        dataset_id=known,
        progress=progress,
        on_progress=lambda d: tell(FineTuneEvent("upload", "progress", d)),
    )
    tell(FineTuneEvent("upload", "done", dataset))
    return dataset


async def _training(
    client: AsyncEmissaryClient,
    record: _State,
    project_id: str,
    run: FineTuneRun,
    base_model: str,
    split: float | None,
    parameters: dict[str, Any] | None,
    hf_model_link: str | None,
    name: str | None,
    description: str | None,
    progress: bool,
    tell: Tell,
) -> Any:
    known = record.get("training_job_id")
    if known is None:
        tell(FineTuneEvent("training", "started"))
        body = {
            "base_model": base_model,
            "train_dataset_id": run.train_dataset.id,
            "test_dataset_id": None if run.test_dataset is None else run.test_dataset.id,
            "train_test_split_ratio": split,
            "name": name,
            "description": description,
            "parameters": parameters,
            "hf_model_link": hf_model_link,
        }
        known = await waiters.create_adopting(
            client, ops.CREATE_TRAINING_JOB, ops.LIST_TRAINING_JOBS, "training job",
            (project_id,), body, {}, begin=record.began("training_job"),
            resume=record.interrupted("training_job"),
        )  # fmt: skip
        record.set(training_job_id=known)
    else:
        tell(FineTuneEvent("training", "resumed"))
    job = await client.training_jobs.wait(
        project_id=project_id,
        training_job_id=known,
        max_wait=None,
        progress=progress,
        on_progress=lambda j: tell(FineTuneEvent("training", "progress", j)),
    )
    tell(FineTuneEvent("training", "done", job))
    return job


async def _checkpoint(
    client: AsyncEmissaryClient,
    record: _State,
    project_id: str,
    training_job_id: str,
    choice: CheckpointChoice,
    tell: Tell,
) -> TrainingJobCheckpoint:
    saved = await client.training_jobs.list_checkpoints(
        project_id=project_id, training_job_id=training_job_id
    )
    recorded = record.get("checkpoint")
    if recorded is not None:
        choice = recorded
    picked = _pick(saved, choice)
    record.set(checkpoint=picked.checkpoint)
    tell(FineTuneEvent("checkpoint", "done", picked))
    return picked


def _pick(
    saved: Sequence[TrainingJobCheckpoint], choice: CheckpointChoice
) -> TrainingJobCheckpoint:
    numbered = [c for c in saved if c.checkpoint is not None]
    if not numbered:
        raise RequestValidationError(
            "the training job saved no checkpoint to deploy", field="checkpoint"
        )
    if choice == "last":
        return max(numbered, key=lambda c: c.checkpoint or 0)
    if callable(choice):
        picked = choice(list(numbered))
        if not isinstance(picked, TrainingJobCheckpoint):
            raise RequestValidationError(
                f"checkpoint= must return one of the checkpoints it is given, got {picked!r}",
                field="checkpoint",
            )
        return picked
    for candidate in numbered:
        if candidate.checkpoint == choice:
            return candidate
    numbers = ", ".join(str(c.checkpoint) for c in numbered)
    raise RequestValidationError(
        f"the training job has no checkpoint {choice!r} (it has {numbers})", field="checkpoint"
    )


async def _deployment(
    client: AsyncEmissaryClient,
    record: _State,
    project_id: str,
    run: FineTuneRun,
    server_type: str | None,
    name: str | None,
    description: str | None,
    progress: bool,
    tell: Tell,
) -> Any:
    known = record.get("deployment_id")
    if known is None:
        tell(FineTuneEvent("deployment", "started"))
        body = {
            "training_job_id": run.training_job.id,
            "checkpoint": run.checkpoint.checkpoint,
            "server_type": server_type,
            "name": name,
            "description": description,
        }
        known = await waiters.create_adopting(
            client, ops.CREATE_DEPLOYMENT, ops.LIST_DEPLOYMENTS, "deployment", (project_id,),
            body, {}, begin=record.began("deployment"), resume=record.interrupted("deployment"),
        )  # fmt: skip
        record.set(deployment_id=known)
    else:
        tell(FineTuneEvent("deployment", "resumed"))
    deployment = await client.deployments.wait(
        project_id=project_id,
        deployment_id=known,
        max_wait=None,
        progress=progress,
        on_progress=lambda d: tell(FineTuneEvent("deployment", "progress", d)),
    )
    tell(FineTuneEvent("deployment", "done", deployment))
    return deployment
