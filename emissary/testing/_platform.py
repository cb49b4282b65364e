"""The emulated platform: its state (projects and what they hold) and one handler per
operation of `emissary._operations`.

A handler gets the request as a `Call` (path parameters, body) and returns the operation's
result (a model Struct, a list of them, or None for a 204), or raises `ApiError`. What is
checked, in order: the resources named in the path (404), the body (400), then what the
body refers to (400: an unknown base model, a dataset of another project or not processed
yet, a training job that did not succeed, a checkpoint it did not save, serverless on a
base model without it). Every state is computed from the clock at request time.

Each create hands its new resource the lifecycle faults meant for it (`FaultPlan.created`).
A resource hidden by ``not_found_for`` lags behind for reads, as on a platform whose reads
are served by a replica that has not caught up yet: until it shows, every GET that names it
(or something it holds) is its 404, and lists and a project's detail leave it out; writes
(a create in it or naming it, a delete, a cancel, inference) see it. ``unknown_status``
replaces a status for a while.

Where the spec is silent the emulator follows `conflicts` (``emu.conflicts``):

- ``"allow"`` (the default): cancelling a job or deployment that already ended is a no-op
  (204, nothing changes); deleting a running job or a deployment still being deployed
  stops and deletes it; deleting a project deletes what it holds.
- ``"refuse"``: each of those is a 400 that names the reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args

import msgspec

from .. import models as m
from .._operations import Operation
from ._answers import ApiError, invalid, not_found
from ._catalog import catalog
from ._clock import Clock
from ._faults import FaultPlan
from ._generator import (
    MAX_NEW_TOKENS_LIMIT,
    classify,
    compare,
    embed,
    generate_chat_completion,
    generate_completion,
)
from ._resources import (
    Dataset,
    Deployment,
    Project,
    Resource,
    Tracked,
    TrainingJob,
    new_id,
    visible_only,
)
from ._scripts import DEPLOYMENT_TERMINAL, READY, TRAINING_TERMINAL, Scripts
from ._uploads import Upload

Conflicts = Literal["allow", "refuse"]
"""What the emulator does where the spec is silent (see the module docstring)."""
CONFLICT_POLICIES: tuple[Conflicts, ...] = get_args(Conflicts)
S = TypeVar("S", bound=msgspec.Struct)
R = TypeVar("R", bound=Resource)
_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}


@dataclass(frozen=True, slots=True)
class Call:
    """One request, as a handler sees it."""

    operation: Operation[Any]
    params: Mapping[str, str]
    """The path's parameters, percent-decoded."""
    body: bytes = b""
    """The JSON body (empty for an upload, which is read with `receive_upload`)."""
    receive_upload: Callable[[str, str], Awaitable[Upload]] | None = None
    """Reads the upload of ``datasets.create`` (given the project's and the new dataset's
    ids)."""

    def decode(self, kind: type[S]) -> S:
        """The body as `kind`, strictly (no unknown field, no coercion); an empty body as
        ``kind()`` where every field is optional; else a 400 saying what is wrong."""
        if not self.body.strip():
            try:
                return kind()
            except TypeError:
                raise invalid("invalid request body: a JSON object is required") from None
        decoder = _DECODERS.get(kind)
        if decoder is None:
            decoder = _DECODERS[kind] = msgspec.json.Decoder(kind, strict=True)
        try:
            body: S = decoder.decode(self.body)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise invalid(f"invalid request body: {exc}") from None
        return body


class Platform:
    """The emulated platform's state, and a handler for each operation (`handle`)."""

    def __init__(
        self,
        *,
        clock: Clock,
        base_models: Iterable[m.BaseModelSummary],
        conflicts: Conflicts,
        deployments: Mapping[str, Iterable[str]],
    ) -> None:
        self.clock = clock
        self.faults = FaultPlan()
        """``emu.faults``: the server takes the request faults, each create the lifecycle
        faults meant for what it makes."""
        self.base_models = catalog(base_models)
        self.scripts = Scripts()
        self.conflicts = conflicts
        self.projects: dict[str, Project] = {}
        self.uploads: list[Upload] = []
        now = clock.now()
        for project_id, deployment_ids in deployments.items():
            project = self.projects[project_id] = Project(project_id, project_id)
            for deployment_id in deployment_ids:
                project.deployments[deployment_id] = Deployment(
                    deployment_id, deployment_id, now, READY
                )

    @property
    def conflicts(self) -> Conflicts:
        """``"allow"`` or ``"refuse"`` (see the module docstring)."""
        return self._conflicts

    @conflicts.setter
    def conflicts(self, value: Conflicts) -> None:
        if value not in CONFLICT_POLICIES:
            raise ValueError(f"conflicts must be one of {CONFLICT_POLICIES}, got {value!r}")
        self._conflicts = value

    async def handle(self, call: Call) -> object:
        """The result of `call`'s operation (or `ApiError`)."""
        handler = _HANDLERS.get(call.operation.name)
        if handler is None:
            raise ApiError(501, f"the emulator does not serve {call.operation.name} yet")
        return await handler(self, call)

    def _born(self, call: Call, resource: Resource, now: float) -> None:
        """Give a resource `call` just created (at `now`) the lifecycle faults meant for
        it: hidden for a while (``not_found_for``), another status for a while
        (``unknown_status``)."""
        for fault in self.faults.created(call.operation.name):
            if fault.kind == "not_found_for":
                resource.visible_from = now + fault.seconds
            elif isinstance(resource, Tracked) and fault.value is not None:
                resource.shown = (fault.value, now + fault.seconds)

    # --- base models ----------------------------------------------------------------------

    async def list_base_models(self, call: Call) -> object:
        """``base_models.list``: the catalog."""
        return list(self.base_models.values())

    async def get_base_model(self, call: Call) -> object:
        """``base_models.get``: one model of the catalog, by name."""
        name = call.params["base_model_name"]
        model = self.base_models.get(name)
        if model is None:
            raise not_found("base_model", name)
        return model

    # --- projects -------------------------------------------------------------------------

    async def create_project(self, call: Call) -> object:
        """``projects.create``: a new, empty project (the body, and its name, optional)."""
        body = call.decode(m.CreateProjectRequestBody)
        project = Project(new_id("proj"), body.name)
        self._born(call, project, self.clock.now())
        self.projects[project.id] = project
        return project.summary()

    async def list_projects(self, call: Call) -> object:
        """``projects.list``."""
        now = self.clock.now()
        return [project.summary() for project in visible_only(self.projects.values(), now)]

    async def get_project(self, call: Call) -> object:
        """``projects.get``: the project with the summaries of what it holds."""
        return self._project(call).detail(self.clock.now())

    async def delete_project(self, call: Call) -> object:
        """``projects.delete``: with what it holds (see `conflicts`)."""
        project = self._project(call)
        if held := project.holdings():
            self._conflict(f"project {project.id!r} still holds {held}; delete them first")
        del self.projects[project.id]
        return None

    # --- datasets -------------------------------------------------------------------------

    async def create_dataset(self, call: Call) -> object:
        """``datasets.create``: the upload, streamed; named after its file unless a
        ``name`` part says otherwise."""
        project = self._project(call)
        if call.receive_upload is None:
            raise RuntimeError("datasets.create needs its upload reader")
        upload = await call.receive_upload(project.id, new_id("ds"))
        project = self._project(call)  # it may have been deleted during the upload
        now = self.clock.now()
        dataset = Dataset(
            upload.dataset_id,
            project.id,
            upload.filename if upload.name is None else upload.name,
            upload,
            now,
            self.scripts.dataset,
        )
        self._born(call, dataset, now)
        project.datasets[dataset.id] = dataset
        self.uploads.append(upload)
        return dataset.summary(now)

    async def list_datasets(self, call: Call) -> object:
        """``datasets.list``."""
        now = self.clock.now()
        datasets = self._project(call).datasets.values()
        return [dataset.summary(now) for dataset in visible_only(datasets, now)]

    async def get_dataset(self, call: Call) -> object:
        """``datasets.get``."""
        return self._dataset(call)[1].detail(self.clock.now())

    async def delete_dataset(self, call: Call) -> object:
        """``datasets.delete`` (training jobs made from it keep their copy)."""
        project, dataset = self._dataset(call)
        del project.datasets[dataset.id]
        return None

    # --- training jobs --------------------------------------------------------------------

    async def create_training_job(self, call: Call) -> object:
        """``training_jobs.create``: checks the base model and the datasets (theirs to the
        project, and processed) before the job starts on the current training script."""
        project = self._project(call)
        body = call.decode(m.CreateTrainingJobRequestBody)
        base_model = self.base_models.get(body.base_model)
        if base_model is None:
            raise invalid(f"unknown base model {body.base_model!r} (see GET /v1/models)")
        now = self.clock.now()
        train = _usable(project, body.train_dataset_id, "train_dataset_id", now)
        test = (
            None
            if body.test_dataset_id is None
            else _usable(project, body.test_dataset_id, "test_dataset_id", now)
        )
        job = TrainingJob(
            new_id("tr"), project.id, body, base_model, train, test, now, self.scripts.training
        )
        self._born(call, job, now)
        project.training_jobs[job.id] = job
        return job.summary(now)

    async def list_training_jobs(self, call: Call) -> object:
        """``training_jobs.list``."""
        now = self.clock.now()
        jobs = self._project(call).training_jobs.values()
        return [job.summary(now) for job in visible_only(jobs, now)]

    async def get_training_job(self, call: Call) -> object:
        """``training_jobs.get``."""
        return self._training_job(call)[1].detail(self.clock.now())

    async def delete_training_job(self, call: Call) -> object:
        """``training_jobs.delete``: a job still running per `conflicts`."""
        project, job = self._training_job(call)
        status = job.phase(self.clock.now()).status
        if status not in TRAINING_TERMINAL:
            self._conflict(f"training job {job.id!r} is {status}; cancel it first")
        del project.training_jobs[job.id]
        return None

    async def cancel_training_job(self, call: Call) -> object:
        """``training_jobs.cancel``: ``Cancelled`` from now on; a job that already ended
        per `conflicts`."""
        _, job = self._training_job(call)
        now = self.clock.now()
        status = job.phase(now).status
        if status in TRAINING_TERMINAL:
            self._conflict(f"training job {job.id!r} already ended ({status})")
        else:
            job.cancelled_at = now
        return None

    async def list_checkpoints(self, call: Call) -> object:
        """``training_jobs.list_checkpoints``: those saved so far."""
        return self._training_job(call)[1].checkpoints(self.clock.now())

    # --- deployments ----------------------------------------------------------------------

    async def create_deployment(self, call: Call) -> object:
        """``deployments.create``: a checkpoint of a job that succeeded, deployed on the
        current deployment script."""
        project = self._project(call)
        body = call.decode(m.CreateDeploymentRequestBody)
        job = project.training_jobs.get(body.training_job_id)
        if job is None:
            raise invalid(
                f"training job {body.training_job_id!r} not found in project {project.id!r}"
            )
        now = self.clock.now()
        phase = job.phase(now)
        if phase.status != "Success":
            raise invalid(
                f"training job {job.id!r} is {phase.status}: only a job that ended in "
                "Success can be deployed"
            )
        saved = len(phase.checkpoints)
        if not 1 <= body.checkpoint <= saved:
            has = f"1 to {saved}" if saved else "none"
            raise invalid(f"training job {job.id!r} has no checkpoint {body.checkpoint} ({has})")
        if body.server_type == "serverless" and not job.base_model.support_serverless:
            raise invalid(
                f"base model {job.base_model.name!r} does not support server_type "
                "'serverless'; use 'on-demand'"
            )
        deployment = Deployment(
            new_id("dp"),
            body.name,
            now,
            self.scripts.deployment,
            description=body.description,
            base_model=job.base_model.name,
            training_id=job.id,
            checkpoint=body.checkpoint,
            server_type=body.server_type,
        )
        self._born(call, deployment, now)
        project.deployments[deployment.id] = deployment
        return deployment.summary(now)

    async def list_deployments(self, call: Call) -> object:
        """``deployments.list``."""
        now = self.clock.now()
        deployments = self._project(call).deployments.values()
        return [deployment.summary(now) for deployment in visible_only(deployments, now)]

    async def get_deployment(self, call: Call) -> object:
        """``deployments.get``."""
        return self._deployment(call)[1].detail(self.clock.now())

    async def delete_deployment(self, call: Call) -> object:
        """``deployments.delete``: one still being deployed per `conflicts`."""
        project, deployment = self._deployment(call)
        status = deployment.status(self.clock.now())
        if status not in DEPLOYMENT_TERMINAL:
            self._conflict(f"deployment {deployment.id!r} is {status}; cancel it first")
        del project.deployments[deployment.id]
        return None

    async def cancel_deployment(self, call: Call) -> object:
        """``deployments.cancel``: ``Cancelled`` from now on; one whose deployment already
        ended (``Deployed`` included) per `conflicts`."""
        _, deployment = self._deployment(call)
        now = self.clock.now()
        status = deployment.status(now)
        if status in DEPLOYMENT_TERMINAL:
            self._conflict(f"deployment {deployment.id!r} already ended ({status})")
        else:
            deployment.cancelled_at = now
        return None

    # --- inference ------------------------------------------------------------------------

    async def completions(self, call: Call) -> object:
        """``deployments.completions.create``: toy text of ``max_new_tokens`` words."""
        project_id, deployment_id = self._serving(call)
        body = call.decode(m.GetCompletionsFromDeploymentRequestBody)
        _check_length(body.max_new_tokens)
        text = generate_completion(project_id, deployment_id, body)
        return m.GetCompletionsFromDeploymentResponseBody(
            id=_answer_id("cmpl", text.encode()), response=text
        )

    async def chat(self, call: Call) -> object:
        """``deployments.chat.completions.create``: a toy reply to the conversation."""
        project_id, deployment_id = self._serving(call)
        body = call.decode(m.GetChatCompletionsFromDeploymentRequestBody)
        if body.streaming:
            raise invalid("streaming is not supported by the emulator: send streaming=false")
        _check_length(body.max_new_tokens)
        text = generate_chat_completion(project_id, deployment_id, body)
        return m.GetChatCompletionsFromDeploymentResponseBody(
            id=_answer_id("chat", text.encode()), response=text
        )

    async def embeddings(self, call: Call) -> object:
        """``deployments.embeddings.create``: both sentences' vectors and the distances
        asked for."""
        self._serving(call)
        body = call.decode(m.GetEmbeddingsFromDeploymentRequestBody)
        text1, text2 = embed(body.source_sentence), embed(body.target_sentence)
        cosine, manhattan, euclidean = compare(text1, text2)
        return m.GetEmbeddingsFromDeploymentResponseBody(
            id=_answer_id("emb", call.body),
            response=m.Response(
                embeddings=m.GetEmbeddingsFromDeploymentEmbeddings(text1=text1, text2=text2),
                cosine_score=cosine if body.cosine else None,
                manhattan_distance=manhattan if body.manhattan else None,
                euclidean_distance=euclidean if body.euclidean else None,
            ),
        )

    async def classification(self, call: Call) -> object:
        """``deployments.classification.create``: one label of a small fixed set."""
        self._serving(call)
        body = call.decode(m.GetClassificationFromDeploymentRequestBody)
        label = classify(body.source_sentence)
        return m.GetClassificationFromDeploymentResponseBody(
            id=_answer_id("cls", call.body), response=label
        )

    # --- lookups --------------------------------------------------------------------------

    def _find(self, call: Call, resources: Mapping[str, R], id: str) -> R | None:
        """The resource `id` of `resources`, unless there is none or `call` is a read
        (a GET) and it cannot be seen yet (``not_found_for``)."""
        resource = resources.get(id)
        reading = call.operation.method == "GET"
        hidden = resource is not None and reading and not resource.visible(self.clock.now())
        return None if hidden else resource

    def _project(self, call: Call) -> Project:
        project_id = call.params["project_id"]
        project = self._find(call, self.projects, project_id)
        if project is None:
            raise not_found("project", project_id)
        return project

    def _dataset(self, call: Call) -> tuple[Project, Dataset]:
        project = self._project(call)
        dataset = self._find(call, project.datasets, call.params["dataset_id"])
        if dataset is None:
            raise not_found("dataset", call.params["dataset_id"], project.id)
        return project, dataset

    def _training_job(self, call: Call) -> tuple[Project, TrainingJob]:
        project = self._project(call)
        job = self._find(call, project.training_jobs, call.params["training_job_id"])
        if job is None:
            raise not_found("training_job", call.params["training_job_id"], project.id)
        return project, job

    def _deployment(self, call: Call) -> tuple[Project, Deployment]:
        project = self._project(call)
        deployment = self._find(call, project.deployments, call.params["deployment_id"])
        if deployment is None:
            raise not_found("deployment", call.params["deployment_id"], project.id)
        return project, deployment

    def _serving(self, call: Call) -> tuple[str, str]:
        """The ids of the deployment an inference call names, if it is ``Deployed`` (else
        a 404 coded ``deployment_not_deployed``)."""
        project, deployment = self._deployment(call)
        status = deployment.status(self.clock.now())
        if status != "Deployed":
            raise ApiError(
                404,
                f"deployment {deployment.id!r} is {status}, not Deployed: it serves nothing",
                code="deployment_not_deployed",
            )
        return project.id, deployment.id

    def _conflict(self, reason: str) -> None:
        """Where the spec is silent: go on under ``"allow"``, a 400 under ``"refuse"``."""
        if self.conflicts == "refuse":
            raise invalid(reason)


def _usable(project: Project, dataset_id: str, field: str, now: float) -> Dataset:
    """The dataset a training job names, if it is the project's and processed (else 400)."""
    dataset = project.datasets.get(dataset_id)
    if dataset is None:
        raise invalid(f"{field}: dataset {dataset_id!r} not found in project {project.id!r}")
    if not dataset.is_uploaded(now):
        raise invalid(f"{field}: dataset {dataset_id!r} is still being processed")
    return dataset


def _check_length(max_new_tokens: int | None) -> None:
    if (max_new_tokens or 0) > MAX_NEW_TOKENS_LIMIT:
        raise invalid(f"max_new_tokens must be at most {MAX_NEW_TOKENS_LIMIT} on the emulator")


def _answer_id(prefix: str, data: bytes) -> str:
    return f"{prefix}-{hashlib.sha256(data, usedforsecurity=False).hexdigest()[:16]}"


_HANDLERS: dict[str, Callable[[Platform, Call], Awaitable[object]]] = {
    "base_models.list": Platform.list_base_models,
    "base_models.get": Platform.get_base_model,
    "projects.create": Platform.create_project,
    "projects.list": Platform.list_projects,
    "projects.get": Platform.get_project,
    "projects.delete": Platform.delete_project,
    "datasets.create": Platform.create_dataset,
    "datasets.list": Platform.list_datasets,
    "datasets.get": Platform.get_dataset,
    "datasets.delete": Platform.delete_dataset,
    "training_jobs.create": Platform.create_training_job,
    "training_jobs.list": Platform.list_training_jobs,
    "training_jobs.get": Platform.get_training_job,
    "training_jobs.delete": Platform.delete_training_job,
    "training_jobs.cancel": Platform.cancel_training_job,
    "training_jobs.list_checkpoints": Platform.list_checkpoints,
    "deployments.create": Platform.create_deployment,
    "deployments.list": Platform.list_deployments,
    "deployments.get": Platform.get_deployment,
    "deployments.delete": Platform.delete_deployment,
    "deployments.cancel": Platform.cancel_deployment,
    "deployments.completions.create": Platform.completions,
    "deployments.chat.completions.create": Platform.chat,
    "deployments.embeddings.create": Platform.embeddings,
    "deployments.classification.create": Platform.classification,
}
"""The handler of each operation, by the operation's name."""
