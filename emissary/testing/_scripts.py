"""Lifecycle scripts: how the emulator's datasets, training jobs and deployments change over
time, for the ones created next.

    emu.scripts.training = TrainingScript(pending_s=30, running_s=600, outcome="Failed")
    emu.scripts.deployment = DeploymentScript(deploying_s=60)
    emu.scripts.dataset = DatasetScript(processing_s=2)

A resource keeps the script it was created with; its state is computed from it and the
time elapsed since its creation whenever it is asked for (there are no timers), so a
`VirtualClock` makes every lifecycle deterministic. The defaults are short, so that a
lifecycle on real time is over in seconds: a dataset is processed in 1 s, a training job
waits 1 s then runs 4 s and saves 4 checkpoints, a deployment waits 1 s then deploys in 2 s.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, get_args

from ._checks import check_seconds

TrainingOutcome = Literal["Success", "Failed", "TimedOut", "Cancelled"]
"""How a training job can end."""
DeploymentOutcome = Literal["Deployed", "Failed", "TimedOut", "Cancelled"]
"""How a deployment can end."""
TRAINING_TERMINAL = frozenset(get_args(TrainingOutcome))
"""A training job's statuses that never change again."""
DEPLOYMENT_TERMINAL = frozenset(get_args(DeploymentOutcome))
"""A deployment's statuses that never change again (``Deployed`` included)."""


@dataclass(frozen=True, slots=True)
class DatasetScript:
    """A dataset's life: ``is_uploaded`` is False for `processing_s` seconds after the
    upload, then True (until then it cannot be trained on)."""

    processing_s: float = 1.0

    def __post_init__(self) -> None:
        _check_seconds(self, "processing_s")

    def is_uploaded(self, elapsed: float) -> bool:
        """Whether the dataset is processed `elapsed` seconds after its upload."""
        return elapsed >= self.processing_s


@dataclass(frozen=True, slots=True)
class TrainingPhase:
    """What a training job is at one moment (times in seconds since its creation)."""

    status: str
    progress: int
    """Percent done, 0 to 100."""
    checkpoints: tuple[float, ...]
    """When each checkpoint saved so far was saved: checkpoint k is ``checkpoints[k - 1]``."""
    changed: float
    """When it last changed (its ``updated_at``)."""


@dataclass(frozen=True, slots=True)
class TrainingScript:
    """A training job's life: ``Pending`` for `pending_s` seconds, ``Running`` for
    `running_s`, then `outcome` (``"Success"``, ``"Failed"``, ``"TimedOut"`` or
    ``"Cancelled"``).

    While it runs, ``progress`` grows linearly from 0 to 100, or as `progress` says: a
    function of the share of the running time elapsed (0.0 to 1.0) returning a percentage
    (0 to 100; it is clamped and rounded down). A job that succeeds ends at 100. Checkpoint
    k of `checkpoints` (numbered from 1) is saved once k / `checkpoints` of the running time
    has passed; a job that fails or is cancelled keeps the checkpoints saved by then.
    """

    pending_s: float = 1.0
    running_s: float = 4.0
    outcome: TrainingOutcome = "Success"
    checkpoints: int = 4
    progress: Callable[[float], float] | None = None

    def __post_init__(self) -> None:
        _check_seconds(self, "pending_s", "running_s")
        _check_outcome(self.outcome, TRAINING_TERMINAL)
        if isinstance(self.checkpoints, bool) or not isinstance(self.checkpoints, int):
            raise ValueError(f"checkpoints must be an integer >= 0, got {self.checkpoints!r}")
        if self.checkpoints < 0:
            raise ValueError(f"checkpoints must be >= 0, got {self.checkpoints!r}")
        if self.progress is not None and not callable(self.progress):
            raise ValueError(f"progress must be a function or None, got {self.progress!r}")

    def at(self, elapsed: float, cancelled: float | None = None) -> TrainingPhase:
        """The job `elapsed` seconds after its creation, if it was cancelled `cancelled`
        seconds after it (None: never)."""
        end = self.pending_s + self.running_s
        status: str
        if cancelled is not None and cancelled < end and elapsed >= cancelled:
            status, stopped = "Cancelled", cancelled
        elif elapsed >= end:
            status, stopped = self.outcome, end
        else:
            status = "Pending" if elapsed < self.pending_s else "Running"
            stopped = elapsed
        ran = min(max(stopped - self.pending_s, 0.0), self.running_s)
        fraction = ran / self.running_s if self.running_s else float(stopped >= end)
        saved = min(self.checkpoints, math.floor(self.checkpoints * fraction + 1e-9))
        times = tuple(
            self.pending_s + self.running_s * k / self.checkpoints for k in range(1, saved + 1)
        )
        if status == "Success":
            progress = 100
        elif stopped < self.pending_s:
            progress = 0
        else:
            progress = self._percent(fraction)
        changed = 0.0 if status == "Pending" else stopped
        return TrainingPhase(status, progress, times, changed)

    def _percent(self, fraction: float) -> int:
        value = fraction * 100 if self.progress is None else self.progress(fraction)
        return math.floor(min(100.0, max(0.0, value)))


@dataclass(frozen=True, slots=True)
class DeploymentScript:
    """A deployment's life: ``Pending`` for `pending_s` seconds, ``Deploying`` for
    `deploying_s`, then `outcome` (``"Deployed"``, ``"Failed"``, ``"TimedOut"`` or
    ``"Cancelled"``). Only a ``Deployed`` deployment answers inference requests."""

    pending_s: float = 1.0
    deploying_s: float = 2.0
    outcome: DeploymentOutcome = "Deployed"

    def __post_init__(self) -> None:
        _check_seconds(self, "pending_s", "deploying_s")
        _check_outcome(self.outcome, DEPLOYMENT_TERMINAL)

    def at(self, elapsed: float, cancelled: float | None = None) -> tuple[str, float]:
        """The status `elapsed` seconds after creation and when it began (same clock), if
        it was cancelled `cancelled` seconds after creation (None: never)."""
        end = self.pending_s + self.deploying_s
        if cancelled is not None and cancelled < end and elapsed >= cancelled:
            return "Cancelled", cancelled
        if elapsed >= end:
            return self.outcome, end
        if elapsed >= self.pending_s:
            return "Deploying", self.pending_s
        return "Pending", 0.0


@dataclass(slots=True)
class Scripts:
    """The scripts for what is created next (``emu.scripts``): assign a new script to an
    attribute to change the lifecycle of the resources created after that."""

    training: TrainingScript = field(default_factory=TrainingScript)
    deployment: DeploymentScript = field(default_factory=DeploymentScript)
    dataset: DatasetScript = field(default_factory=DatasetScript)


def _check_seconds(script: object, *names: str) -> None:
    for name in names:
        check_seconds(name, getattr(script, name))


def _check_outcome(outcome: str, allowed: frozenset[str]) -> None:
    if outcome not in allowed:
        raise ValueError(f"outcome must be one of {sorted(allowed)}, got {outcome!r}")


READY = DeploymentScript(pending_s=0, deploying_s=0)
"""The script of the emulator's pre-made deployments: ``Deployed`` from the start."""
