"""The fine-tuning platform: base models, projects, datasets, training jobs, checkpoints and
deployments.

Results are lenient: every field may be absent, unknown fields are ignored, and **statuses
are open**: ``status`` is a plain string, so a value the spec does not list (a new
``"Queued"``) decodes as itself instead of failing. `TrainingJobStatus` and
`DeploymentStatus` name the values known today; the generated SDK's ``str`` enums
(`TrainingJobDetailStatus`, `DeploymentDetailStatus`, ...) compare equal to them
(``DeploymentDetailStatus.DEPLOYED == "Deployed"``).

Request bodies are strict, as the inference ones: unknown fields refused, each checked
before anything is sent. Each may also be a plain dict, typed by its ``...TypedDict``.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Annotated, Any, Literal, TypedDict

import msgspec

from ._inference import INT64_MAX, _Input, _Output

if TYPE_CHECKING:
    from ._compat import ServerType

TrainingJobStatus = Literal["Pending", "Running", "Success", "Failed", "TimedOut", "Cancelled"]
"""A training job's statuses known today (``status`` may hold others: it is open)."""
DeploymentStatus = Literal["Pending", "Deploying", "Deployed", "Failed", "Cancelled", "TimedOut"]
"""A deployment's statuses known today (``status`` may hold others: it is open)."""
ServerTypeName = Literal["serverless", "on-demand"]

ParameterValue = str | float | int
"""A training parameter's value: a string or a number (not a bool, not nested)."""
ParameterTemplate = ParameterValue
Parameters = ParameterValue
HyperParameters = ParameterValue


# --- results ------------------------------------------------------------------------------


class BaseModelSummary(_Output):
    """A base model that can be fine-tuned."""

    name: str | None = None
    """Its name, e.g. ``"Llama-3.2-1B-Instruct"``."""
    type: str | None = None
    """``"completion"``, ``"classification"``, ``"embeddings"`` or ``"chat"`` (open)."""
    parameter_template: dict[str, Any] | None = None
    """The training parameters it takes, with their defaults."""
    support_serverless: bool | None = None
    """Whether it can be deployed with ``server_type="serverless"``."""


class ProjectSummary(_Output):
    """A project (a fine-tuning workspace)."""

    id: str | None = None
    name: str | None = None


class DatasetSummary(_Output):
    """A dataset."""

    id: str | None = None
    name: str | None = None
    created_at: int | None = None
    """A UNIX timestamp."""
    is_uploaded: bool | None = None
    """True once the upload has been processed (until then it cannot be trained on)."""


class DatasetDetail(_Output):
    """A dataset, with where to download it and who uploaded it."""

    id: str | None = None
    name: str | None = None
    is_uploaded: bool | None = None
    """True once the upload has been processed."""
    dataset_download_url: str | None = None
    upload_by: str | None = None
    created_at: int | None = None
    updated_at: int | None = None


class TrainingJobSummary(_Output):
    """A training job."""

    id: str | None = None
    name: str | None = None
    base_model: str | None = None
    status: str | None = None
    """One of `TrainingJobStatus`, or a value this SDK does not know yet."""
    progress: int | None = None
    """Percent done, 0 to 100."""
    created_by: str | None = None
    created_at: int | None = None
    updated_at: int | None = None


class TrainingLoss(_Output):
    """One point of a training job's loss curve."""

    timestamp: float | None = None
    loss: float | None = None


class TrainingJobDetail(_Output):
    """A training job, with its datasets, loss curve and hyper-parameters."""

    id: str | None = None
    name: str | None = None
    description: str | None = None
    base_model: str | None = None
    status: str | None = None
    """One of `TrainingJobStatus`, or a value this SDK does not know yet."""
    progress: int | None = None
    """Percent done, 0 to 100."""
    train_dataset: DatasetSummary | None = None
    test_dataset: DatasetSummary | None = None
    training_loss: list[TrainingLoss] | None = None
    hyper_parameters: dict[str, Any] | None = None
    created_by: str | None = None
    created_at: int | None = None
    updated_at: int | None = None


class TestResults(_Output):
    """A checkpoint's evaluation."""

    __test__ = False  # not a pytest test class

    general_test_result: str | None = None
    aggregated_test_result: dict[str, str] | None = None


class TrainingJobCheckpoint(_Output):
    """A checkpoint a training job saved (deploy one by its number)."""

    checkpoint: int | None = None
    """Its number."""
    model_download_url: str | None = None
    test_results: TestResults | None = None
    created_at: int | None = None
    updated_at: int | None = None


class DeploymentSummary(_Output):
    """A deployment."""

    id: str | None = None
    name: str | None = None
    status: str | None = None
    """One of `DeploymentStatus`, or a value this SDK does not know yet."""
    created_at: int | None = None


class DeploymentDetail(_Output):
    """A deployment, with the training job and checkpoint it serves."""

    id: str | None = None
    name: str | None = None
    description: str | None = None
    base_model: str | None = None
    status: str | None = None
    """One of `DeploymentStatus`, or a value this SDK does not know yet."""
    training_id: str | None = None
    checkpoint: int | None = None
    created_at: int | None = None
    updated_at: int | None = None


class ProjectDetail(_Output):
    """A project and what it holds."""

    id: str | None = None
    name: str | None = None
    datasets: list[DatasetSummary] | None = None
    training_jobs: list[TrainingJobSummary] | None = None
    deployments: list[DeploymentSummary] | None = None


# --- request bodies -----------------------------------------------------------------------

SplitRatio = Annotated[float, msgspec.Meta(gt=0, lt=1, description="strictly between 0 and 1")]
Checkpoint = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX, description="a checkpoint number")]


class CreateProjectRequestBody(_Input):
    """A new project: its name, if you want to choose it."""

    name: str | None = None


class CreateProjectRequestBodyTypedDict(TypedDict, total=False):
    """A new project as a dict."""

    name: str | None


class File(msgspec.Struct, kw_only=True):
    """A dataset's file: its name, its bytes (or a binary file object, read from where it
    is, never closed) and its media type (default ``application/octet-stream``)."""

    file_name: str
    content: bytes | bytearray | memoryview | IO[bytes]
    content_type: str | None = None


class FileTypedDict(TypedDict, total=False):
    """A dataset's file as a dict: ``file_name`` and ``content`` are required."""

    file_name: str
    content: bytes | bytearray | memoryview | IO[bytes]
    content_type: str | None


class CreateDatasetRequestBody(msgspec.Struct, kw_only=True):
    """A new dataset: its `file` (required) and, if you want to choose it, its `name`."""

    file: File | FileTypedDict | None = None
    """Required: a dataset cannot be created without its file."""
    name: str | None = None


class CreateDatasetRequestBodyTypedDict(TypedDict, total=False):
    """A new dataset as a dict: ``file`` is required."""

    file: FileTypedDict | File
    name: str | None


class CreateTrainingJobRequestBody(_Input):
    """A new training job: what to fine-tune (`base_model`) on which data."""

    base_model: str
    """The base model to fine-tune (see ``base_models.list()``)."""
    train_dataset_id: str
    """The dataset to train on."""
    test_dataset_id: str | None = None
    """A dataset to test on; else `train_test_split_ratio` of the training data is."""
    train_test_split_ratio: SplitRatio | None = None
    """The share of the training data held out for testing, strictly between 0 and 1."""
    name: str | None = None
    description: str | None = None
    parameters: dict[str, ParameterValue] | None = None
    """Training parameters (strings or numbers): see the base model's template."""
    hf_model_link: str | None = None
    """A Hugging Face model to fine-tune, with the ``HF_MODEL`` base model."""


class _TrainingJobDict(TypedDict):
    base_model: str
    train_dataset_id: str


class CreateTrainingJobRequestBodyTypedDict(_TrainingJobDict, total=False):
    """A new training job as a dict: ``base_model`` and ``train_dataset_id`` are required."""

    test_dataset_id: str | None
    train_test_split_ratio: float | None
    name: str | None
    description: str | None
    parameters: dict[str, ParameterValue] | None
    hf_model_link: str | None


class CreateDeploymentRequestBody(_Input):
    """A new deployment: a training job's checkpoint, served."""

    training_job_id: str
    """The training job whose checkpoint is deployed."""
    checkpoint: Checkpoint
    """The checkpoint's number (see ``training_jobs.list_checkpoints``)."""
    server_type: ServerTypeName | None = None
    """``"serverless"`` or ``"on-demand"`` (or a `ServerType`)."""
    name: str | None = None
    description: str | None = None


class _DeploymentDict(TypedDict):
    training_job_id: str
    checkpoint: int


class CreateDeploymentRequestBodyTypedDict(_DeploymentDict, total=False):
    """A new deployment as a dict: ``training_job_id`` and ``checkpoint`` are required."""

    server_type: ServerTypeName | ServerType | None
    name: str | None
    description: str | None
