"""The platform's resources as the emulator keeps them, and what each is at a given moment.

A resource stores when it was created, the script it follows and when it was cancelled;
its status, progress, checkpoints and ``updated_at`` are computed from those and the time
of the request (`now`), never stored, so no timer runs and a virtual clock decides all.
Timestamps on the wire are whole UNIX seconds.

Lifecycle faults (`FaultPlan.not_found_for`, `FaultPlan.unknown_status`) are stored the
same way: until when a resource is invisible (`Resource.visible_from`), and which status it
reports until when (`Tracked.shown`).
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from .. import models as m
from ._scripts import DatasetScript, DeploymentScript, TrainingPhase, TrainingScript
from ._uploads import Upload

USER_ID = "user-emulator"
"""Who created everything (``created_by``, ``upload_by``)."""
STORAGE = "s3://emissary-emulator"
"""Where the download URLs point (nowhere real)."""


def new_id(prefix: str) -> str:
    """A fresh resource id: `prefix`, a dash and 12 hex digits (``proj-1f2e3d4c5b6a``)."""
    return f"{prefix}-{secrets.token_hex(6)}"


def timestamp(seconds: float) -> int:
    """A time as the API's whole UNIX seconds."""
    return math.floor(seconds)


def checkpoint_loss(number: int) -> float:
    """The (toy) training loss at checkpoint `number`: it falls as training goes on."""
    return round(2.0 * 0.8**number, 4)


@dataclass(eq=False, kw_only=True)
class Resource:
    """What every resource has: when it becomes visible (``not_found_for``)."""

    visible_from: float = -math.inf
    """Before this time reads (GETs) do not see it: it answers 404 and lists leave it out;
    by default, always visible."""

    def visible(self, now: float) -> bool:
        """Whether it can be seen at `now`."""
        return now >= self.visible_from


@dataclass(eq=False, kw_only=True)
class Tracked(Resource):
    """A resource with a status (a training job, a deployment), which may report another
    one for a while (``unknown_status``)."""

    shown: tuple[str, float] | None = None
    """(the status it reports instead of its script's, until when); None: its own."""

    def reported(self, status: str, now: float) -> str:
        """The status it reports at `now`, its script's being `status`."""
        if self.shown is not None and now < self.shown[1]:
            return self.shown[0]
        return status


R = TypeVar("R", bound=Resource)


def visible_only(resources: Iterable[R], now: float) -> list[R]:
    """Those of `resources` that can be seen at `now`, in order."""
    return [resource for resource in resources if resource.visible(now)]


@dataclass(eq=False)
class Dataset(Resource):
    """An uploaded dataset; processed (``is_uploaded``) once its script says so."""

    id: str
    project_id: str
    name: str | None
    upload: Upload
    created_at: float
    script: DatasetScript

    def is_uploaded(self, now: float) -> bool:
        """Whether it has been processed (and can be trained on)."""
        return self.script.is_uploaded(now - self.created_at)

    def summary(self, now: float) -> m.DatasetSummary:
        """Its `DatasetSummary` at `now`."""
        return m.DatasetSummary(
            id=self.id,
            name=self.name,
            created_at=timestamp(self.created_at),
            is_uploaded=self.is_uploaded(now),
        )

    def detail(self, now: float) -> m.DatasetDetail:
        """Its `DatasetDetail` at `now`."""
        done = self.is_uploaded(now)
        return m.DatasetDetail(
            id=self.id,
            name=self.name,
            is_uploaded=done,
            dataset_download_url=f"{STORAGE}/{self.project_id}/{self.id}",
            upload_by=USER_ID,
            created_at=timestamp(self.created_at),
            updated_at=timestamp(self.created_at + (self.script.processing_s if done else 0)),
        )


@dataclass(eq=False)
class TrainingJob(Tracked):
    """A training job: the request it was made from and its script."""

    id: str
    project_id: str
    request: m.CreateTrainingJobRequestBody
    base_model: m.BaseModelSummary
    train_dataset: Dataset
    test_dataset: Dataset | None
    created_at: float
    script: TrainingScript
    cancelled_at: float | None = None

    def phase(self, now: float) -> TrainingPhase:
        """Its status, progress and checkpoints at `now`."""
        cancelled = None if self.cancelled_at is None else self.cancelled_at - self.created_at
        phase = self.script.at(now - self.created_at, cancelled)
        status = self.reported(phase.status, now)
        return phase if status == phase.status else dataclasses.replace(phase, status=status)

    def summary(self, now: float) -> m.TrainingJobSummary:
        """Its `TrainingJobSummary` at `now`."""
        phase = self.phase(now)
        return m.TrainingJobSummary(
            id=self.id,
            name=self.request.name,
            base_model=self.request.base_model,
            status=phase.status,
            progress=phase.progress,
            created_by=USER_ID,
            created_at=timestamp(self.created_at),
            updated_at=timestamp(self.created_at + phase.changed),
        )

    def detail(self, now: float) -> m.TrainingJobDetail:
        """Its `TrainingJobDetail` at `now`: one loss point per checkpoint saved."""
        phase = self.phase(now)
        return m.TrainingJobDetail(
            id=self.id,
            name=self.request.name,
            description=self.request.description,
            base_model=self.request.base_model,
            status=phase.status,
            progress=phase.progress,
            train_dataset=self.train_dataset.summary(now),
            test_dataset=None if self.test_dataset is None else self.test_dataset.summary(now),
            training_loss=[
                m.TrainingLoss(timestamp=self.created_at + saved, loss=checkpoint_loss(number))
                for number, saved in enumerate(phase.checkpoints, start=1)
            ],
            hyper_parameters={
                **(self.base_model.parameter_template or {}),
                **(self.request.parameters or {}),
            },
            created_by=USER_ID,
            created_at=timestamp(self.created_at),
            updated_at=timestamp(self.created_at + phase.changed),
        )

    def checkpoints(self, now: float) -> list[m.TrainingJobCheckpoint]:
        """The checkpoints saved by `now`, numbered from 1."""
        url = f"{STORAGE}/{self.project_id}/{self.id}/checkpoint-"
        return [
            m.TrainingJobCheckpoint(
                checkpoint=number,
                model_download_url=f"{url}{number}",
                test_results=m.TestResults(
                    general_test_result=f"{url}{number}/test-results.json",
                    aggregated_test_result={"loss": f"{checkpoint_loss(number):.4f}"},
                ),
                created_at=timestamp(self.created_at + saved),
                updated_at=timestamp(self.created_at + saved),
            )
            for number, saved in enumerate(self.phase(now).checkpoints, start=1)
        ]


@dataclass(eq=False)
class Deployment(Tracked):
    """A deployment of a training job's checkpoint (or one of the emulator's pre-made
    ones, which have no training job)."""

    id: str
    name: str | None
    created_at: float
    script: DeploymentScript
    description: str | None = None
    base_model: str | None = None
    training_id: str | None = None
    checkpoint: int | None = None
    server_type: str | None = None
    cancelled_at: float | None = None

    def status(self, now: float) -> str:
        """Its status at `now`."""
        return self._state(now)[0]

    def summary(self, now: float) -> m.DeploymentSummary:
        """Its `DeploymentSummary` at `now`."""
        return m.DeploymentSummary(
            id=self.id,
            name=self.name,
            status=self.status(now),
            created_at=timestamp(self.created_at),
        )

    def detail(self, now: float) -> m.DeploymentDetail:
        """Its `DeploymentDetail` at `now`."""
        status, since = self._state(now)
        return m.DeploymentDetail(
            id=self.id,
            name=self.name,
            description=self.description,
            base_model=self.base_model,
            status=status,
            training_id=self.training_id,
            checkpoint=self.checkpoint,
            created_at=timestamp(self.created_at),
            updated_at=timestamp(self.created_at + since),
        )

    def _state(self, now: float) -> tuple[str, float]:
        cancelled = None if self.cancelled_at is None else self.cancelled_at - self.created_at
        status, since = self.script.at(now - self.created_at, cancelled)
        return self.reported(status, now), since


@dataclass(eq=False)
class Project(Resource):
    """A project and what it holds, each kind by id in creation order."""

    id: str
    name: str | None
    datasets: dict[str, Dataset] = field(default_factory=dict)
    training_jobs: dict[str, TrainingJob] = field(default_factory=dict)
    deployments: dict[str, Deployment] = field(default_factory=dict)

    def summary(self) -> m.ProjectSummary:
        """Its `ProjectSummary`."""
        return m.ProjectSummary(id=self.id, name=self.name)

    def detail(self, now: float) -> m.ProjectDetail:
        """Its `ProjectDetail` at `now`: the summaries of what it holds (what can be seen)."""
        return m.ProjectDetail(
            id=self.id,
            name=self.name,
            datasets=[d.summary(now) for d in visible_only(self.datasets.values(), now)],
            training_jobs=[j.summary(now) for j in visible_only(self.training_jobs.values(), now)],
            deployments=[d.summary(now) for d in visible_only(self.deployments.values(), now)],
        )

    def holdings(self) -> str:
        """What it holds, in words (``"1 dataset and 2 deployments"``), or ``""``."""
        counts = [
            (len(self.datasets), "dataset"),
            (len(self.training_jobs), "training job"),
            (len(self.deployments), "deployment"),
        ]
        words = [f"{n} {kind}{'' if n == 1 else 's'}" for n, kind in counts if n]
        return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)
