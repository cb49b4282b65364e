"""The generated SDK's ``str`` enums and per-operation request objects, kept so that code
naming them still imports (and compares) after migrating. emissary's statuses are open
strings, which these enums compare equal to, and its methods take their fields as keywords
(``client.deployments.get(project_id=..., deployment_id=...)``), not these objects.
Loaded on first use: `emissary.models` imports this module only when one of its names is
asked for."""

from __future__ import annotations

import enum
from typing import Any, TypeAlias, TypedDict

import msgspec

from ._inference import (
    GetChatCompletionsFromDeploymentRequestBody,
    GetClassificationFromDeploymentRequestBody,
    GetCompletionsFromDeploymentRequestBody,
    GetEmbeddingsFromDeploymentRequestBody,
)
from ._platform import (
    CreateDatasetRequestBody,
    CreateDeploymentRequestBody,
    CreateTrainingJobRequestBody,
)


class _Statuses(str, enum.Enum):
    """Compares equal to its value, like the generated SDK's enums."""

    def __str__(self) -> str:
        return str(self.value)


class Status(_Statuses):
    """A training job's status in a `TrainingJobSummary` (the generated SDK's enum)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCESS = "Success"
    FAILED = "Failed"
    TIMED_OUT = "TimedOut"
    CANCELLED = "Cancelled"


class TrainingJobDetailStatus(_Statuses):
    """A training job's status in a `TrainingJobDetail` (the generated SDK's enum)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCESS = "Success"
    FAILED = "Failed"
    TIMED_OUT = "TimedOut"
    CANCELLED = "Cancelled"


class DeploymentSummaryStatus(_Statuses):
    """A deployment's status in a `DeploymentSummary` (the generated SDK's enum)."""

    PENDING = "Pending"
    DEPLOYING = "Deploying"
    DEPLOYED = "Deployed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    TIMED_OUT = "TimedOut"


class DeploymentDetailStatus(_Statuses):
    """A deployment's status in a `DeploymentDetail` (the generated SDK's enum)."""

    PENDING = "Pending"
    DEPLOYING = "Deploying"
    DEPLOYED = "Deployed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    TIMED_OUT = "TimedOut"


class ServerType(_Statuses):
    """Where a deployment runs (the generated SDK's enum; plain strings work too)."""

    SERVERLESS = "serverless"
    ON_DEMAND = "on-demand"


class Type(_Statuses):
    """What a base model does (the generated SDK's enum)."""

    COMPLETION = "completion"
    CLASSIFICATION = "classification"
    EMBEDDINGS = "embeddings"
    CHAT = "chat"


class Role(_Statuses):
    """Who wrote a chat message (the generated SDK's enum; plain strings work too)."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class _Ids(msgspec.Struct, kw_only=True):
    """A generated SDK request object (see the module docstring)."""


class Security(_Ids):
    """The generated SDK's security scheme: the key, sent as ``X-API-Key``."""

    api_key: str | None = None


class RetrieveBaseModelByNameRequest(_Ids):
    """The generated SDK\'s request object of ``base_models.get``."""

    base_model_name: str


class RetrieveProjectByIDRequest(_Ids):
    """The generated SDK\'s request object of ``projects.get``."""

    project_id: str


class DeleteProjectByIDRequest(_Ids):
    """The generated SDK\'s request object of ``projects.delete``."""

    project_id: str


class ListDatasetsRequest(_Ids):
    """The generated SDK\'s request object of ``datasets.list``."""

    project_id: str


class ListTrainingJobsRequest(_Ids):
    """The generated SDK\'s request object of ``training_jobs.list``."""

    project_id: str


class ListDeploymentsRequest(_Ids):
    """The generated SDK\'s request object of ``deployments.list``."""

    project_id: str


class RetrieveDatasetByIDRequest(_Ids):
    """The generated SDK\'s request object of ``datasets.get``."""

    project_id: str
    dataset_id: str


class DeleteDatasetByIDRequest(_Ids):
    """The generated SDK\'s request object of ``datasets.delete``."""

    project_id: str
    dataset_id: str


class RetrieveTrainingJobByIDRequest(_Ids):
    """The generated SDK\'s request object of ``training_jobs.get``."""

    project_id: str
    training_job_id: str


class DeleteTrainingJobByIDRequest(_Ids):
    """The generated SDK\'s request object of ``training_jobs.delete``."""

    project_id: str
    training_job_id: str


class CancelTrainingJobByIDRequest(_Ids):
    """The generated SDK\'s request object of ``training_jobs.cancel``."""

    project_id: str
    training_job_id: str


class ListCheckpointsRequest(_Ids):
    """The generated SDK\'s request object of ``training_jobs.list_checkpoints``."""

    project_id: str
    training_job_id: str


class RetrieveDeploymentByIDRequest(_Ids):
    """The generated SDK\'s request object of ``deployments.get``."""

    project_id: str
    deployment_id: str


class DeleteDeploymentByIDRequest(_Ids):
    """The generated SDK\'s request object of ``deployments.delete``."""

    project_id: str
    deployment_id: str


class CancelDeploymentByIDRequest(_Ids):
    """The generated SDK\'s request object of ``deployments.cancel``."""

    project_id: str
    deployment_id: str


class CreateDatasetRequest(_Ids):
    """The generated SDK\'s request object of ``datasets.create``."""

    project_id: str
    request_body: CreateDatasetRequestBody


class CreateTrainingJobRequest(_Ids):
    """The generated SDK\'s request object of ``training_jobs.create``."""

    project_id: str
    request_body: CreateTrainingJobRequestBody


class CreateDeploymentRequest(_Ids):
    """The generated SDK\'s request object of ``deployments.create``."""

    project_id: str
    request_body: CreateDeploymentRequestBody


class GetCompletionsFromDeploymentRequest(_Ids):
    """The generated SDK\'s request object of ``deployments.completions.create``."""

    project_id: str
    deployment_id: str
    request_body: GetCompletionsFromDeploymentRequestBody


class GetChatCompletionsFromDeploymentRequest(_Ids):
    """The generated SDK\'s request object of ``deployments.chat.completions.create``."""

    project_id: str
    deployment_id: str
    request_body: GetChatCompletionsFromDeploymentRequestBody


class GetEmbeddingsFromDeploymentRequest(_Ids):
    """The generated SDK\'s request object of ``deployments.embeddings.create``."""

    project_id: str
    deployment_id: str
    request_body: GetEmbeddingsFromDeploymentRequestBody


class GetClassificationFromDeploymentRequest(_Ids):
    """The generated SDK\'s request object of ``deployments.classification.create``."""

    project_id: str
    deployment_id: str
    request_body: GetClassificationFromDeploymentRequestBody


class SecurityTypedDict(TypedDict, total=False):
    """`Security` as a dict."""

    api_key: str


# The generated SDK's dict forms of its results and request objects: results here are
# Structs (``msgspec.to_builtins(result)`` gives the dict), so these are plain dicts.
BaseModelSummaryTypedDict: TypeAlias = dict[str, Any]
CancelDeploymentByIDRequestTypedDict: TypeAlias = dict[str, Any]
CancelTrainingJobByIDRequestTypedDict: TypeAlias = dict[str, Any]
CreateDatasetRequestTypedDict: TypeAlias = dict[str, Any]
CreateDeploymentRequestTypedDict: TypeAlias = dict[str, Any]
CreateTrainingJobRequestTypedDict: TypeAlias = dict[str, Any]
DatasetDetailTypedDict: TypeAlias = dict[str, Any]
DatasetSummaryTypedDict: TypeAlias = dict[str, Any]
DeleteDatasetByIDRequestTypedDict: TypeAlias = dict[str, Any]
DeleteDeploymentByIDRequestTypedDict: TypeAlias = dict[str, Any]
DeleteProjectByIDRequestTypedDict: TypeAlias = dict[str, Any]
DeleteTrainingJobByIDRequestTypedDict: TypeAlias = dict[str, Any]
DeploymentDetailTypedDict: TypeAlias = dict[str, Any]
DeploymentSummaryTypedDict: TypeAlias = dict[str, Any]
GetChatCompletionsFromDeploymentRequestTypedDict: TypeAlias = dict[str, Any]
GetChatCompletionsFromDeploymentResponseBodyTypedDict: TypeAlias = dict[str, Any]
GetClassificationFromDeploymentRequestTypedDict: TypeAlias = dict[str, Any]
GetClassificationFromDeploymentResponseBodyTypedDict: TypeAlias = dict[str, Any]
GetCompletionsFromDeploymentRequestTypedDict: TypeAlias = dict[str, Any]
GetCompletionsFromDeploymentResponseBodyTypedDict: TypeAlias = dict[str, Any]
GetEmbeddingsFromDeploymentEmbeddingsTypedDict: TypeAlias = dict[str, Any]
GetEmbeddingsFromDeploymentRequestTypedDict: TypeAlias = dict[str, Any]
GetEmbeddingsFromDeploymentResponseBodyTypedDict: TypeAlias = dict[str, Any]
ListCheckpointsRequestTypedDict: TypeAlias = dict[str, Any]
ListDatasetsRequestTypedDict: TypeAlias = dict[str, Any]
ListDeploymentsRequestTypedDict: TypeAlias = dict[str, Any]
ListTrainingJobsRequestTypedDict: TypeAlias = dict[str, Any]
ProjectDetailTypedDict: TypeAlias = dict[str, Any]
ProjectSummaryTypedDict: TypeAlias = dict[str, Any]
ResponseTypedDict: TypeAlias = dict[str, Any]
RetrieveBaseModelByNameRequestTypedDict: TypeAlias = dict[str, Any]
RetrieveDatasetByIDRequestTypedDict: TypeAlias = dict[str, Any]
RetrieveDeploymentByIDRequestTypedDict: TypeAlias = dict[str, Any]
RetrieveProjectByIDRequestTypedDict: TypeAlias = dict[str, Any]
RetrieveTrainingJobByIDRequestTypedDict: TypeAlias = dict[str, Any]
TestResultsTypedDict: TypeAlias = dict[str, Any]
TrainingJobCheckpointTypedDict: TypeAlias = dict[str, Any]
TrainingJobDetailTypedDict: TypeAlias = dict[str, Any]
TrainingJobSummaryTypedDict: TypeAlias = dict[str, Any]
TrainingLossTypedDict: TypeAlias = dict[str, Any]
ParameterTemplateTypedDict: TypeAlias = str | float | int
ParametersTypedDict: TypeAlias = str | float | int
HyperParametersTypedDict: TypeAlias = str | float | int
