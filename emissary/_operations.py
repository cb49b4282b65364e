"""The platform's operations, as data: one row per operation of the spec.

A row says how an operation goes on the wire (method, path template, body, success status),
what it returns (a type, decoded by a `msgspec.json.Decoder` built once) and how it may be
retried (`Operation.kind`). The resource methods (`emissary._async.resources`), the
emulator's routes (`emissary.testing`) and the contract tests are all driven by these rows,
and a test checks them against the spec (``tests/spec/openapi.yaml``): an operation is added
here, once.

No I/O here, and nothing but the models is imported.
"""

from __future__ import annotations

import re
from typing import Any, Generic, Literal, TypeVar

import msgspec

from . import models as m

R = TypeVar("R")

Kind = Literal["read", "create", "delete", "cancel", "inference"]
"""How an operation may be retried: ``read``, ``delete``, ``cancel`` and ``inference`` as
any call (a DELETE retried into a 404 succeeded); ``create`` only when the request provably
did not take effect, unless the caller gave an ``idempotency_key``."""
MULTIPART: Literal["multipart/form-data"] = "multipart/form-data"
"""`Operation.body` of an upload: the body is a `models.CreateDatasetRequestBody`, sent as
multipart form data."""

_PARAMETER = re.compile(r"\{(\w+)\}")


class Operation(Generic[R]):
    """One operation of the API (see the module docstring)."""

    __slots__ = (
        "_decoder",
        "body",
        "gen_ai",
        "kind",
        "method",
        "name",
        "parameters",
        "path",
        "result",
        "status",
    )

    def __init__(
        self,
        name: str,
        method: Literal["GET", "POST", "DELETE"],
        path: str,
        result: type[R] | None,
        *,
        body: type[msgspec.Struct] | Literal["multipart/form-data"] | None = None,
        status: int = 200,
        kind: Kind = "read",
        gen_ai: str | None = None,
    ) -> None:
        self.name = name
        """The public name, ``namespace.method`` (``"deployments.get"``)."""
        self.method = method
        self.path = path
        """The path template, ``/v1/projects/{project_id}``: each ``{name}`` one segment."""
        self.parameters: tuple[str, ...] = tuple(_PARAMETER.findall(path))
        """The path's parameters, in order (the method's keyword arguments)."""
        self.result = result
        """What a success returns (None: nothing, a 204)."""
        self._decoder: msgspec.json.Decoder[R] | None = None
        self.body = body
        """The request body's Struct (JSON), `MULTIPART`, or None (no body)."""
        self.status = status
        """The spec's success status (any 2XX is taken as success)."""
        self.kind: Kind = kind
        self.gen_ai = gen_ai
        """The GenAI operation name of an inference call (``"chat"``), for its trace span."""

    @property
    def decoder(self) -> msgspec.json.Decoder[R] | None:
        """The result's JSON decoder (None for a 204), built on first use: most programs
        call a few of the operations, and a decoder costs its type's analysis."""
        decoder = self._decoder
        if decoder is None and self.result is not None:
            decoder = self._decoder = msgspec.json.Decoder(self.result)
        return decoder

    def __repr__(self) -> str:
        return f"Operation({self.name!r}: {self.method} {self.path})"


# --- base models ----------------------------------------------------------------------------
LIST_BASE_MODELS = Operation("base_models.list", "GET", "/v1/models", list[m.BaseModelSummary])
GET_BASE_MODEL = Operation(
    "base_models.get", "GET", "/v1/models/{base_model_name}", m.BaseModelSummary
)

# --- projects -------------------------------------------------------------------------------
CREATE_PROJECT = Operation(
    "projects.create", "POST", "/v1/projects", m.ProjectSummary,
    body=m.CreateProjectRequestBody, status=201, kind="create",
)  # fmt: skip
LIST_PROJECTS = Operation("projects.list", "GET", "/v1/projects", list[m.ProjectSummary])
GET_PROJECT = Operation("projects.get", "GET", "/v1/projects/{project_id}", m.ProjectDetail)
DELETE_PROJECT: Operation[None] = Operation(
    "projects.delete", "DELETE", "/v1/projects/{project_id}", None, status=204, kind="delete"
)

# --- datasets -------------------------------------------------------------------------------
_DATASETS = "/v1/projects/{project_id}/datasets"
CREATE_DATASET = Operation(
    "datasets.create", "POST", _DATASETS, m.DatasetSummary,
    body=MULTIPART, status=201, kind="create",
)  # fmt: skip
LIST_DATASETS = Operation("datasets.list", "GET", _DATASETS, list[m.DatasetSummary])
GET_DATASET = Operation("datasets.get", "GET", _DATASETS + "/{dataset_id}", m.DatasetDetail)
DELETE_DATASET: Operation[None] = Operation(
    "datasets.delete", "DELETE", _DATASETS + "/{dataset_id}", None, status=204, kind="delete"
)

# --- training jobs --------------------------------------------------------------------------
_JOBS = "/v1/projects/{project_id}/training-jobs"
_JOB = _JOBS + "/{training_job_id}"
CREATE_TRAINING_JOB = Operation(
    "training_jobs.create", "POST", _JOBS, m.TrainingJobSummary,
    body=m.CreateTrainingJobRequestBody, status=201, kind="create",
)  # fmt: skip
LIST_TRAINING_JOBS = Operation("training_jobs.list", "GET", _JOBS, list[m.TrainingJobSummary])
GET_TRAINING_JOB = Operation("training_jobs.get", "GET", _JOB, m.TrainingJobDetail)
DELETE_TRAINING_JOB: Operation[None] = Operation(
    "training_jobs.delete", "DELETE", _JOB, None, status=204, kind="delete"
)
CANCEL_TRAINING_JOB: Operation[None] = Operation(
    "training_jobs.cancel", "POST", _JOB + "/cancel", None, status=204, kind="cancel"
)
LIST_CHECKPOINTS = Operation(
    "training_jobs.list_checkpoints", "GET", _JOB + "/checkpoints", list[m.TrainingJobCheckpoint]
)

# --- deployments ----------------------------------------------------------------------------
_DEPLOYMENTS = "/v1/projects/{project_id}/deployments"
_DEPLOYMENT = _DEPLOYMENTS + "/{deployment_id}"
CREATE_DEPLOYMENT = Operation(
    "deployments.create", "POST", _DEPLOYMENTS, m.DeploymentSummary,
    body=m.CreateDeploymentRequestBody, status=201, kind="create",
)  # fmt: skip
LIST_DEPLOYMENTS = Operation("deployments.list", "GET", _DEPLOYMENTS, list[m.DeploymentSummary])
GET_DEPLOYMENT = Operation("deployments.get", "GET", _DEPLOYMENT, m.DeploymentDetail)
DELETE_DEPLOYMENT: Operation[None] = Operation(
    "deployments.delete", "DELETE", _DEPLOYMENT, None, status=204, kind="delete"
)
CANCEL_DEPLOYMENT: Operation[None] = Operation(
    "deployments.cancel", "POST", _DEPLOYMENT + "/cancel", None, status=204, kind="cancel"
)

# --- inference on a deployment --------------------------------------------------------------
COMPLETIONS = Operation(
    "deployments.completions.create", "POST", _DEPLOYMENT + "/completions",
    m.GetCompletionsFromDeploymentResponseBody,
    body=m.GetCompletionsFromDeploymentRequestBody, kind="inference", gen_ai="text_completion",
)  # fmt: skip
CHAT = Operation(
    "deployments.chat.completions.create", "POST", _DEPLOYMENT + "/chat/completions",
    m.GetChatCompletionsFromDeploymentResponseBody,
    body=m.GetChatCompletionsFromDeploymentRequestBody, kind="inference", gen_ai="chat",
)  # fmt: skip
EMBEDDINGS = Operation(
    "deployments.embeddings.create", "POST", _DEPLOYMENT + "/embeddings",
    m.GetEmbeddingsFromDeploymentResponseBody,
    body=m.GetEmbeddingsFromDeploymentRequestBody, kind="inference", gen_ai="embeddings",
)  # fmt: skip
CLASSIFICATION = Operation(
    "deployments.classification.create", "POST", _DEPLOYMENT + "/classification",
    m.GetClassificationFromDeploymentResponseBody,
    body=m.GetClassificationFromDeploymentRequestBody, kind="inference",
    gen_ai="classification",
)  # fmt: skip

OPERATIONS: tuple[Operation[Any], ...] = (
    LIST_BASE_MODELS,
    GET_BASE_MODEL,
    CREATE_PROJECT,
    LIST_PROJECTS,
    GET_PROJECT,
    DELETE_PROJECT,
    CREATE_DATASET,
    LIST_DATASETS,
    GET_DATASET,
    DELETE_DATASET,
    CREATE_TRAINING_JOB,
    LIST_TRAINING_JOBS,
    GET_TRAINING_JOB,
    DELETE_TRAINING_JOB,
    CANCEL_TRAINING_JOB,
    LIST_CHECKPOINTS,
    CREATE_DEPLOYMENT,
    LIST_DEPLOYMENTS,
    GET_DEPLOYMENT,
    DELETE_DEPLOYMENT,
    CANCEL_DEPLOYMENT,
    COMPLETIONS,
    CHAT,
    EMBEDDINGS,
    CLASSIFICATION,
)
"""Every operation, in the spec's order."""
BY_NAME: dict[str, Operation[Any]] = {operation.name: operation for operation in OPERATIONS}
