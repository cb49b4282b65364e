"""The sync facade of emissary/_async/resources.py: each class runs its async twin
on a private loop.

Generated from emissary/_async/resources.py by scripts/generate_sync.py: do not edit by hand.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Generic

from .._async.resources import (
    AsyncBaseModels,
    AsyncBaseModelsWithRawResponse,
    AsyncChat,
    AsyncChatCompletions,
    AsyncChatCompletionsWithRawResponse,
    AsyncClassification,
    AsyncClassificationWithRawResponse,
    AsyncCompletions,
    AsyncCompletionsWithRawResponse,
    AsyncDatasets,
    AsyncDatasetsWithRawResponse,
    AsyncDeployments,
    AsyncDeploymentsWithRawResponse,
    AsyncEmbeddings,
    AsyncEmbeddingsWithRawResponse,
    AsyncProjects,
    AsyncProjectsWithRawResponse,
    AsyncTrainingJobs,
    AsyncTrainingJobsWithRawResponse,
    Body,
    Result,
    _AsyncBatches,
)
from .._batch import Concurrency, Progress
from .._upload import UploadFile
from .._waiters import Duration
from ..models import (
    APIResponse,
    BaseModelSummary,
    BatchOutcome,
    CompletionRequest,
    CompletionRequestDict,
    CreateDatasetRequestBody,
    CreateDatasetRequestBodyTypedDict,
    CreateDeploymentRequestBody,
    CreateDeploymentRequestBodyTypedDict,
    CreateProjectRequestBody,
    CreateProjectRequestBodyTypedDict,
    CreateTrainingJobRequestBody,
    CreateTrainingJobRequestBodyTypedDict,
    DatasetDetail,
    DatasetSummary,
    DeploymentDetail,
    DeploymentSummary,
    GetChatCompletionsFromDeploymentRequestBody,
    GetChatCompletionsFromDeploymentRequestBodyTypedDict,
    GetChatCompletionsFromDeploymentResponseBody,
    GetClassificationFromDeploymentRequestBody,
    GetClassificationFromDeploymentRequestBodyTypedDict,
    GetClassificationFromDeploymentResponseBody,
    GetCompletionsFromDeploymentResponseBody,
    GetEmbeddingsFromDeploymentRequestBody,
    GetEmbeddingsFromDeploymentRequestBodyTypedDict,
    GetEmbeddingsFromDeploymentResponseBody,
    ProjectDetail,
    ProjectSummary,
    TrainingJobCheckpoint,
    TrainingJobDetail,
    TrainingJobSummary,
    UploadProgress,
)
from ..utils import CallOptions, JSONPostOptions, PollPolicy, PostOptions, RetryConfig
from .base import SyncClientBase

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .._loop import LoopThread


class _Batches(Generic[Body, Result]):
    """``batch`` and ``iter_batch`` of an inference endpoint (completions, chat,
    embeddings, classification), written once: each endpoint's class names its row in
    `emissary._operations` (`_operation`) and its request and result types.
    """

    _inner: _AsyncBatches[Body, Result]
    _runner: LoopThread

    def batch(
        self,
        *,
        project_id: str,
        deployment_id: str,
        requests: Iterable[Body],
        concurrency: Concurrency = "auto",
        max_concurrency: int = 64,
        requests_per_minute: float | None = None,
        retries: RetryConfig | None = None,
        timeout_ms: float | None = None,
        progress: Progress = False,
    ) -> list[BatchOutcome[Result]]:
        """Call the endpoint for every request body in `requests`, many at once.

        Arguments:
            project_id, deployment_id: as for `create`, for every row.
            requests: the request bodies (dicts or Structs, as `create` takes them): any
                iterable (a list, a generator) or async iterable.
            concurrency: ``"auto"`` (default) adapts the requests in flight to what the
                server takes: more while it answers, fewer on 429, 503 and timeouts; or a
                fixed number never exceeded.
            max_concurrency: the most requests in flight under ``"auto"`` (default 64).
            requests_per_minute: a cap on the rate of requests (retries included).
            retries, timeout_ms: as for `create`, for every row's call.
            progress: True draws a progress bar on stderr; a callable is called with
                (done, failed, total) as rows finish (total is None for a generator).

        Each row is one call with its own ``Idempotency-Key`` and the client's retries,
        retry budget and deadlines; a 429 or 503 carrying ``Retry-After`` holds every new
        request of the batch until then.

        Returns:
            One `models.BatchResult` per input, in input order: ``.result`` (what `create`
            returns; ``.completion`` too) or ``.error`` (a row's failure, bad input
            included, never aborts the batch). ``if result.ok:`` tells them apart.

        Raises:
            ConfigurationError: an option is invalid. RequestValidationError: a bad id
            (before any I/O).
        """
        return self._runner.run(
            self._inner.batch,
            project_id=project_id,
            deployment_id=deployment_id,
            requests=requests,
            concurrency=concurrency,
            max_concurrency=max_concurrency,
            requests_per_minute=requests_per_minute,
            retries=retries,
            timeout_ms=timeout_ms,
            progress=progress,
        )

    def iter_batch(
        self,
        *,
        project_id: str,
        deployment_id: str,
        requests: Iterable[Body],
        concurrency: Concurrency = "auto",
        max_concurrency: int = 64,
        requests_per_minute: float | None = None,
        retries: RetryConfig | None = None,
        timeout_ms: float | None = None,
        progress: Progress = False,
        ordered: bool = False,
    ) -> Iterator[BatchOutcome[Result]]:
        """`batch`, lazily: yields each `models.BatchResult` as its row finishes (in input
        order with `ordered`), pulling inputs only as rows finish, so memory stays bounded
        for any input. Stopping early (leaving the loop, then closing or dropping the
        iterator) cancels the rows in flight.
        """
        return self._runner.iterate(
            self._inner.iter_batch(
                project_id=project_id,
                deployment_id=deployment_id,
                requests=requests,
                concurrency=concurrency,
                max_concurrency=max_concurrency,
                requests_per_minute=requests_per_minute,
                retries=retries,
                timeout_ms=timeout_ms,
                progress=progress,
                ordered=ordered,
            )
        )


class BaseModels:
    """The base models that can be fine-tuned: ``client.base_models``."""

    with_raw_response: BaseModelsWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, inner: AsyncBaseModels, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner
        self.with_raw_response = BaseModelsWithRawResponse(inner.with_raw_response, client)

    def list(
        self,
        **options: Unpack[CallOptions],
    ) -> builtins.list[BaseModelSummary]:
        """List the base models available for fine-tuning (``**options``: see
        `utils.CallOptions`).
        """
        return self._runner.run(self._inner.list, **options)

    def get(
        self,
        *,
        base_model_name: str,
        **options: Unpack[CallOptions],
    ) -> BaseModelSummary:
        """Get one base model by its name (404: `APIErrorNotFound`)."""
        return self._runner.run(self._inner.get, base_model_name=base_model_name, **options)


class BaseModelsWithRawResponse:
    """``client.base_models.with_raw_response``: each operation returns the HTTP response."""

    def __init__(self, inner: AsyncBaseModelsWithRawResponse, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner

    def list(
        self,
        **options: Unpack[CallOptions],
    ) -> APIResponse[builtins.list[BaseModelSummary]]:
        """List the base models available for fine-tuning (``**options``: see
        `utils.CallOptions`).
        """
        return self._runner.run(self._inner.list, **options)

    def get(
        self,
        *,
        base_model_name: str,
        **options: Unpack[CallOptions],
    ) -> APIResponse[BaseModelSummary]:
        """Get one base model by its name (404: `APIErrorNotFound`)."""
        return self._runner.run(self._inner.get, base_model_name=base_model_name, **options)


class Projects:
    """Projects, the workspaces that hold datasets, training jobs and deployments:
    ``client.projects``.
    """

    with_raw_response: ProjectsWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, inner: AsyncProjects, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner
        self.with_raw_response = ProjectsWithRawResponse(inner.with_raw_response, client)

    def create(
        self,
        *,
        request: CreateProjectRequestBody | CreateProjectRequestBodyTypedDict | None = None,
        **options: Unpack[JSONPostOptions],
    ) -> ProjectSummary:
        """Create a project (``request``: its ``name``, if you want to choose it).

        A create is retried only when it provably did not take effect (a refused connection,
        a 429 or 503), unless ``idempotency_key`` is given; otherwise its error has
        ``maybe_committed`` set: look before you create again.
        """
        return self._runner.run(self._inner.create, request=request, **options)

    def list(
        self,
        **options: Unpack[CallOptions],
    ) -> builtins.list[ProjectSummary]:
        """List the projects."""
        return self._runner.run(self._inner.list, **options)

    def get(
        self,
        *,
        project_id: str,
        **options: Unpack[CallOptions],
    ) -> ProjectDetail:
        """Get a project, with its datasets, training jobs and deployments."""
        return self._runner.run(self._inner.get, project_id=project_id, **options)

    def delete(
        self,
        *,
        project_id: str,
        missing_ok: bool = False,
        **options: Unpack[CallOptions],
    ) -> None:
        """Delete a project. A retry that finds it gone succeeds (an earlier attempt deleted
        it); ``missing_ok=True`` also makes a first 404 a success.
        """
        return self._runner.run(
            self._inner.delete, project_id=project_id, missing_ok=missing_ok, **options
        )


class ProjectsWithRawResponse:
    """``client.projects.with_raw_response``: each operation returns the HTTP response."""

    def __init__(self, inner: AsyncProjectsWithRawResponse, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner

    def create(
        self,
        *,
        request: CreateProjectRequestBody | CreateProjectRequestBodyTypedDict | None = None,
        **options: Unpack[JSONPostOptions],
    ) -> APIResponse[ProjectSummary]:
        """Create a project (``request``: its ``name``, if you want to choose it).

        A create is retried only when it provably did not take effect (a refused connection,
        a 429 or 503), unless ``idempotency_key`` is given; otherwise its error has
        ``maybe_committed`` set: look before you create again.
        """
        return self._runner.run(self._inner.create, request=request, **options)

    def list(
        self,
        **options: Unpack[CallOptions],
    ) -> APIResponse[builtins.list[ProjectSummary]]:
        """List the projects."""
        return self._runner.run(self._inner.list, **options)

    def get(
        self,
        *,
        project_id: str,
        **options: Unpack[CallOptions],
    ) -> APIResponse[ProjectDetail]:
        """Get a project, with its datasets, training jobs and deployments."""
        return self._runner.run(self._inner.get, project_id=project_id, **options)

    def delete(
        self,
        *,
        project_id: str,
        missing_ok: bool = False,
        **options: Unpack[CallOptions],
    ) -> APIResponse[None]:
        """Delete a project. A retry that finds it gone succeeds (an earlier attempt deleted
        it); ``missing_ok=True`` also makes a first 404 a success.
        """
        return self._runner.run(
            self._inner.delete, project_id=project_id, missing_ok=missing_ok, **options
        )


class Datasets:
    """A project's datasets: ``client.datasets``."""

    with_raw_response: DatasetsWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, inner: AsyncDatasets, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner
        self.with_raw_response = DatasetsWithRawResponse(inner.with_raw_response, client)

    def create(
        self,
        *,
        project_id: str,
        request_body: CreateDatasetRequestBody | CreateDatasetRequestBodyTypedDict,
        **options: Unpack[PostOptions],
    ) -> DatasetSummary:
        """Upload a dataset: ``request_body={"file": {"file_name": ..., "content": ...,
        "content_type": ...}, "name": ...}``, streamed as multipart form data.

        ``content`` is bytes or a binary file object, sent from its current position and
        left there (never closed); a retry re-sends the same bytes (a file that cannot seek
        is sent once). Not retried when it may have been committed (see
        `Projects.create`). 413: `PayloadTooLargeError`.
        """
        return self._runner.run(
            self._inner.create, project_id=project_id, request_body=request_body, **options
        )

    def list(
        self,
        *,
        project_id: str,
        **options: Unpack[CallOptions],
    ) -> builtins.list[DatasetSummary]:
        """List a project's datasets."""
        return self._runner.run(self._inner.list, project_id=project_id, **options)

    def get(
        self,
        *,
        project_id: str,
        dataset_id: str,
        **options: Unpack[CallOptions],
    ) -> DatasetDetail:
        """Get a dataset (``is_uploaded`` is True once the upload has been processed)."""
        return self._runner.run(
            self._inner.get, project_id=project_id, dataset_id=dataset_id, **options
        )

    def delete(
        self,
        *,
        project_id: str,
        dataset_id: str,
        missing_ok: bool = False,
        **options: Unpack[CallOptions],
    ) -> None:
        """Delete a dataset (a retry that finds it gone succeeds; see `Projects.delete`)."""
        return self._runner.run(
            self._inner.delete,
            project_id=project_id,
            dataset_id=dataset_id,
            missing_ok=missing_ok,
            **options,
        )

    def upload(
        self,
        *,
        project_id: str,
        file: UploadFile,
        name: str | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        progress: bool | Callable[[UploadProgress], object] = False,
        stall_timeout_ms: float = 60000,
        **options: Unpack[PostOptions],
    ) -> DatasetSummary:
        """Upload a dataset from a path (a `str` or `os.PathLike` is always a path), bytes,
        a binary file object or an iterable of bytes, streamed in flat memory with a known
        Content-Length where the size can be known.

        A retry re-sends the same bytes (a path is opened again, a file object rewound to
        where it was and left there); a source that can be read once only (a pipe, an
        iterable) is sent once. A missing path, a directory, an empty source, or a file
        whose size changes while it is sent: `UploadSourceError`. An attempt fails after
        `stall_timeout_ms` with no byte sent (not after a total time); ``timeout_ms`` then
        bounds the answer once the server's side has the last byte. ``progress=True``
        draws a bar on stderr; a callable gets a `models.UploadProgress` (``sent`` of
        ``total`` bytes of the file, in ``attempt``). ``filename``: the name sent
        (default: the path's or file's name, else ``data``); ``content_type``: default
        ``application/octet-stream``.
        """
        return self._runner.run(
            self._inner.upload,
            project_id=project_id,
            file=file,
            name=name,
            filename=filename,
            content_type=content_type,
            progress=progress,
            stall_timeout_ms=stall_timeout_ms,
            **options,
        )

    def wait(
        self,
        *,
        project_id: str,
        dataset_id: str,
        max_wait: Duration | None = 1800.0,
        poll: PollPolicy | None = None,
        on_progress: Callable[[DatasetDetail], object] | None = None,
        progress: bool = False,
        raise_on_failure: bool = True,
        **options: Unpack[CallOptions],
    ) -> DatasetDetail:
        """Wait until a dataset has been processed (``is_uploaded``) and return it; see
        `TrainingJobs.wait`.
        """
        return self._runner.run(
            self._inner.wait,
            project_id=project_id,
            dataset_id=dataset_id,
            max_wait=max_wait,
            poll=poll,
            on_progress=on_progress,
            progress=progress,
            raise_on_failure=raise_on_failure,
            **options,
        )


class DatasetsWithRawResponse:
    """``client.datasets.with_raw_response``: each operation returns the HTTP response."""

    def __init__(self, inner: AsyncDatasetsWithRawResponse, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner

    def create(
        self,
        *,
        project_id: str,
        request_body: CreateDatasetRequestBody | CreateDatasetRequestBodyTypedDict,
        **options: Unpack[PostOptions],
    ) -> APIResponse[DatasetSummary]:
        """Upload a dataset: ``request_body={"file": {"file_name": ..., "content": ...,
        "content_type": ...}, "name": ...}``, streamed as multipart form data.

        ``content`` is bytes or a binary file object, sent from its current position and
        left there (never closed); a retry re-sends the same bytes (a file that cannot seek
        is sent once). Not retried when it may have been committed (see
        `Projects.create`). 413: `PayloadTooLargeError`.
        """
        return self._runner.run(
            self._inner.create, project_id=project_id, request_body=request_body, **options
        )

    def upload(
        self,
        *,
        project_id: str,
        file: UploadFile,
        name: str | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        progress: bool | Callable[[UploadProgress], object] = False,
        stall_timeout_ms: float = 60000,
        **options: Unpack[PostOptions],
    ) -> APIResponse[DatasetSummary]:
        """Upload a dataset from a path (a `str` or `os.PathLike` is always a path), bytes,
        a binary file object or an iterable of bytes, streamed in flat memory with a known
        Content-Length where the size can be known.

        A retry re-sends the same bytes (a path is opened again, a file object rewound to
        where it was and left there); a source that can be read once only (a pipe, an
        iterable) is sent once. A missing path, a directory, an empty source, or a file
        whose size changes while it is sent: `UploadSourceError`. An attempt fails after
        `stall_timeout_ms` with no byte sent (not after a total time); ``timeout_ms`` then
        bounds the answer once the server's side has the last byte. ``progress=True``
        draws a bar on stderr; a callable gets a `models.UploadProgress` (``sent`` of
        ``total`` bytes of the file, in ``attempt``). ``filename``: the name sent
        (default: the path's or file's name, else ``data``); ``content_type``: default
        ``application/octet-stream``.
        """
        return self._runner.run(
            self._inner.upload,
            project_id=project_id,
            file=file,
            name=name,
            filename=filename,
            content_type=content_type,
            progress=progress,
            stall_timeout_ms=stall_timeout_ms,
            **options,
        )

    def list(
        self,
        *,
        project_id: str,
        **options: Unpack[CallOptions],
    ) -> APIResponse[builtins.list[DatasetSummary]]:
        """List a project's datasets."""
        return self._runner.run(self._inner.list, project_id=project_id, **options)

    def get(
        self,
        *,
        project_id: str,
        dataset_id: str,
        **options: Unpack[CallOptions],
    ) -> APIResponse[DatasetDetail]:
        """Get a dataset (``is_uploaded`` is True once the upload has been processed)."""
        return self._runner.run(
            self._inner.get, project_id=project_id, dataset_id=dataset_id, **options
        )

    def delete(
        self,
        *,
        project_id: str,
        dataset_id: str,
        missing_ok: bool = False,
        **options: Unpack[CallOptions],
    ) -> APIResponse[None]:
        """Delete a dataset (a retry that finds it gone succeeds; see `Projects.delete`)."""
        return self._runner.run(
            self._inner.delete,
            project_id=project_id,
            dataset_id=dataset_id,
            missing_ok=missing_ok,
            **options,
        )


class TrainingJobs:
    """A project's training jobs and their checkpoints: ``client.training_jobs``."""

    with_raw_response: TrainingJobsWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, inner: AsyncTrainingJobs, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner
        self.with_raw_response = TrainingJobsWithRawResponse(inner.with_raw_response, client)

    def create(
        self,
        *,
        project_id: str,
        request_body: CreateTrainingJobRequestBody | CreateTrainingJobRequestBodyTypedDict,
        **options: Unpack[JSONPostOptions],
    ) -> TrainingJobSummary:
        """Start a training job: fine-tune ``base_model`` on ``train_dataset_id`` (both
        required; a split ratio strictly between 0 and 1; ``parameters`` strings or
        numbers). Not retried when it may have been committed (see `Projects.create`):
        a second job would cost GPU hours.
        """
        return self._runner.run(
            self._inner.create, project_id=project_id, request_body=request_body, **options
        )

    def list(
        self,
        *,
        project_id: str,
        **options: Unpack[CallOptions],
    ) -> builtins.list[TrainingJobSummary]:
        """List a project's training jobs."""
        return self._runner.run(self._inner.list, project_id=project_id, **options)

    def get(
        self,
        *,
        project_id: str,
        training_job_id: str,
        **options: Unpack[CallOptions],
    ) -> TrainingJobDetail:
        """Get a training job: its ``status`` (open: a new value decodes as itself),
        ``progress``, datasets, loss curve and hyper-parameters.
        """
        return self._runner.run(
            self._inner.get, project_id=project_id, training_job_id=training_job_id, **options
        )

    def delete(
        self,
        *,
        project_id: str,
        training_job_id: str,
        missing_ok: bool = False,
        **options: Unpack[CallOptions],
    ) -> None:
        """Delete a training job (a retry that finds it gone succeeds)."""
        return self._runner.run(
            self._inner.delete,
            project_id=project_id,
            training_job_id=training_job_id,
            missing_ok=missing_ok,
            **options,
        )

    def cancel(
        self,
        *,
        project_id: str,
        training_job_id: str,
        **options: Unpack[PostOptions],
    ) -> None:
        """Cancel a training job (its status becomes ``Cancelled``)."""
        return self._runner.run(
            self._inner.cancel, project_id=project_id, training_job_id=training_job_id, **options
        )

    def list_checkpoints(
        self,
        *,
        project_id: str,
        training_job_id: str,
        **options: Unpack[CallOptions],
    ) -> builtins.list[TrainingJobCheckpoint]:
        """List the checkpoints a training job saved (deploy one by its ``checkpoint``)."""
        return self._runner.run(
            self._inner.list_checkpoints,
            project_id=project_id,
            training_job_id=training_job_id,
            **options,
        )

    def wait(
        self,
        *,
        project_id: str,
        training_job_id: str,
        max_wait: Duration | None = 86400.0,
        poll: PollPolicy | None = None,
        on_progress: Callable[[TrainingJobDetail], object] | None = None,
        progress: bool = False,
        raise_on_failure: bool = True,
        **options: Unpack[CallOptions],
    ) -> TrainingJobDetail:
        """Wait until a training job ends and return it: ``Success``, or (with
        ``raise_on_failure``, the default) `TrainingJobError` for ``Failed``, ``TimedOut``
        or ``Cancelled`` (``.resource``, ``.status``, ``.elapsed``, ``.polls``).

        ``max_wait`` (seconds, or a `datetime.timedelta`; None waits until it ends) runs
        out with `WaitTimeoutError` (a `TimeoutError` too): the job goes on. Polls are cheap
        and prompt (`utils.PollPolicy`: backoff between its bounds, and while the job
        reports ``progress``, half its estimated time left); a poll that fails is retried
        (up to 10 in a row), an unknown status is not an end, a 404 just after the job was
        made is "not visible yet". ``on_progress(detail)`` is called when its status or
        progress changes; ``progress=True`` draws a bar. Cancelling (or Ctrl-C) stops the
        wait at once and never cancels the job.
        """
        return self._runner.run(
            self._inner.wait,
            project_id=project_id,
            training_job_id=training_job_id,
            max_wait=max_wait,
            poll=poll,
            on_progress=on_progress,
            progress=progress,
            raise_on_failure=raise_on_failure,
            **options,
        )

    def create_and_wait(
        self,
        *,
        project_id: str,
        request_body: CreateTrainingJobRequestBody | CreateTrainingJobRequestBodyTypedDict,
        max_wait: Duration | None = 86400.0,
        poll: PollPolicy | None = None,
        on_progress: Callable[[TrainingJobDetail], object] | None = None,
        progress: bool = False,
        raise_on_failure: bool = True,
        **options: Unpack[JSONPostOptions],
    ) -> TrainingJobDetail:
        """`create`, then `wait`. A create that fails after it may have been made is never
        made again: the job it made is found (by its ``name``: yours, or one the SDK gives
        it) and waited for; several that could be it raise `AmbiguousCreateError`.
        """
        return self._runner.run(
            self._inner.create_and_wait,
            project_id=project_id,
            request_body=request_body,
            max_wait=max_wait,
            poll=poll,
            on_progress=on_progress,
            progress=progress,
            raise_on_failure=raise_on_failure,
            **options,
        )


class TrainingJobsWithRawResponse:
    """``client.training_jobs.with_raw_response``: each operation returns the HTTP response."""

    def __init__(self, inner: AsyncTrainingJobsWithRawResponse, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner

    def create(
        self,
        *,
        project_id: str,
        request_body: CreateTrainingJobRequestBody | CreateTrainingJobRequestBodyTypedDict,
        **options: Unpack[JSONPostOptions],
    ) -> APIResponse[TrainingJobSummary]:
        """Start a training job: fine-tune ``base_model`` on ``train_dataset_id`` (both
        required; a split ratio strictly between 0 and 1; ``parameters`` strings or
        numbers). Not retried when it may have been committed (see `Projects.create`):
        a second job would cost GPU hours.
        """
        return self._runner.run(
            self._inner.create, project_id=project_id, request_body=request_body, **options
        )

    def list(
        self,
        *,
        project_id: str,
        **options: Unpack[CallOptions],
    ) -> APIResponse[builtins.list[TrainingJobSummary]]:
        """List a project's training jobs."""
        return self._runner.run(self._inner.list, project_id=project_id, **options)

    def get(
        self,
        *,
        project_id: str,
        training_job_id: str,
        **options: Unpack[CallOptions],
    ) -> APIResponse[TrainingJobDetail]:
        """Get a training job: its ``status`` (open: a new value decodes as itself),
        ``progress``, datasets, loss curve and hyper-parameters.
        """
        return self._runner.run(
            self._inner.get, project_id=project_id, training_job_id=training_job_id, **options
        )

    def delete(
        self,
        *,
        project_id: str,
        training_job_id: str,
        missing_ok: bool = False,
        **options: Unpack[CallOptions],
    ) -> APIResponse[None]:
        """Delete a training job (a retry that finds it gone succeeds)."""
        return self._runner.run(
            self._inner.delete,
            project_id=project_id,
            training_job_id=training_job_id,
            missing_ok=missing_ok,
            **options,
        )

    def cancel(
        self,
        *,
        project_id: str,
        training_job_id: str,
        **options: Unpack[PostOptions],
    ) -> APIResponse[None]:
        """Cancel a training job (its status becomes ``Cancelled``)."""
        return self._runner.run(
            self._inner.cancel, project_id=project_id, training_job_id=training_job_id, **options
        )

    def list_checkpoints(
        self,
        *,
        project_id: str,
        training_job_id: str,
        **options: Unpack[CallOptions],
    ) -> APIResponse[builtins.list[TrainingJobCheckpoint]]:
        """List the checkpoints a training job saved (deploy one by its ``checkpoint``)."""
        return self._runner.run(
            self._inner.list_checkpoints,
            project_id=project_id,
            training_job_id=training_job_id,
            **options,
        )


class Completions(
    _Batches[CompletionRequest | CompletionRequestDict, GetCompletionsFromDeploymentResponseBody]
):
    """Completions from a deployment: ``client.deployments.completions``."""

    _inner: AsyncCompletions

    with_raw_response: CompletionsWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, inner: AsyncCompletions, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner
        self.with_raw_response = CompletionsWithRawResponse(inner.with_raw_response, client)

    def create(
        self,
        *,
        project_id: str,
        deployment_id: str,
        request_body: CompletionRequest | CompletionRequestDict,
        **options: Unpack[JSONPostOptions],
    ) -> GetCompletionsFromDeploymentResponseBody:
        """Get a completion from a deployment for the given prompt.

        Arguments:
            project_id: the project's id (sent as one percent-encoded path segment).
            deployment_id: the deployment's id (likewise).
            request_body: the prompt and generation settings, as a dict (typed by
                `models.CompletionRequestDict`, long name
                ``GetCompletionsFromDeploymentRequestBodyTypedDict``) or a
                `models.CompletionRequest` (``GetCompletionsFromDeploymentRequestBody``);
                unset fields are not sent.
            **options: ``retries``, ``server_url``, ``timeout_ms``, ``extra_headers``,
                ``extra_query``, ``extra_body``, ``idempotency_key`` (see
                `utils.JSONPostOptions`).

        Every attempt of the call carries the same ``Idempotency-Key`` header (a fresh UUID
        per call unless given) and an ``X-Emissary-Attempt`` header (1, 2, ...). Retries
        follow the client's (or this call's) `RetryConfig`; see `emissary.utils`.

        Returns:
            The completion, with ``.id`` and ``.response``.

        Raises:
            RequestValidationError: an argument is invalid (before any I/O).
            APIErrorInvalidInput: 400. APIErrorUnauthorized: 401. APIErrorNotFound: 404.
            SDKError: any other non-success response, or a 2XX body that is not a completion.
            APIConnectionError: no response (APITimeoutError when out of time).
        """
        return self._runner.run(
            self._inner.create,
            project_id=project_id,
            deployment_id=deployment_id,
            request_body=request_body,
            **options,
        )


class CompletionsWithRawResponse:
    """``client.deployments.completions.with_raw_response``: each operation returns the
    `models.APIResponse` (status, headers, body, request id, retries), whose ``.parse()``
    gives what the plain operation returns.
    """

    def __init__(self, inner: AsyncCompletionsWithRawResponse, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner

    def create(
        self,
        *,
        project_id: str,
        deployment_id: str,
        request_body: CompletionRequest | CompletionRequestDict,
        **options: Unpack[JSONPostOptions],
    ) -> APIResponse[GetCompletionsFromDeploymentResponseBody]:
        """Get a completion from a deployment for the given prompt.

        Arguments:
            project_id: the project's id (sent as one percent-encoded path segment).
            deployment_id: the deployment's id (likewise).
            request_body: the prompt and generation settings, as a dict (typed by
                `models.CompletionRequestDict`, long name
                ``GetCompletionsFromDeploymentRequestBodyTypedDict``) or a
                `models.CompletionRequest` (``GetCompletionsFromDeploymentRequestBody``);
                unset fields are not sent.
            **options: ``retries``, ``server_url``, ``timeout_ms``, ``extra_headers``,
                ``extra_query``, ``extra_body``, ``idempotency_key`` (see
                `utils.JSONPostOptions`).

        Every attempt of the call carries the same ``Idempotency-Key`` header (a fresh UUID
        per call unless given) and an ``X-Emissary-Attempt`` header (1, 2, ...). Retries
        follow the client's (or this call's) `RetryConfig`; see `emissary.utils`.

        Returns:
            The completion, with ``.id`` and ``.response``.

        Raises:
            RequestValidationError: an argument is invalid (before any I/O).
            APIErrorInvalidInput: 400. APIErrorUnauthorized: 401. APIErrorNotFound: 404.
            SDKError: any other non-success response, or a 2XX body that is not a completion.
            APIConnectionError: no response (APITimeoutError when out of time).
        """
        return self._runner.run(
            self._inner.create,
            project_id=project_id,
            deployment_id=deployment_id,
            request_body=request_body,
            **options,
        )


class ChatCompletions(
    _Batches[
        GetChatCompletionsFromDeploymentRequestBody
        | GetChatCompletionsFromDeploymentRequestBodyTypedDict,
        GetChatCompletionsFromDeploymentResponseBody,
    ]
):
    """Chat completions from a deployment: ``client.deployments.chat.completions``."""

    _inner: AsyncChatCompletions

    with_raw_response: ChatCompletionsWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, inner: AsyncChatCompletions, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner
        self.with_raw_response = ChatCompletionsWithRawResponse(inner.with_raw_response, client)

    def create(
        self,
        *,
        project_id: str,
        deployment_id: str,
        request_body: GetChatCompletionsFromDeploymentRequestBody
        | GetChatCompletionsFromDeploymentRequestBodyTypedDict,
        **options: Unpack[JSONPostOptions],
    ) -> GetChatCompletionsFromDeploymentResponseBody:
        """Get a deployment's reply to a conversation: ``request_body={"messages": [{"role":
        "user", "content": ...}], ...}`` (roles ``system``, ``user``, ``assistant``) and the
        generation settings of completions. ``streaming=True`` is refused: the API defines
        no streaming response format.
        """
        return self._runner.run(
            self._inner.create,
            project_id=project_id,
            deployment_id=deployment_id,
            request_body=request_body,
            **options,
        )


class ChatCompletionsWithRawResponse:
    """``client.deployments.chat.completions.with_raw_response``."""

    def __init__(self, inner: AsyncChatCompletionsWithRawResponse, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner

    def create(
        self,
        *,
        project_id: str,
        deployment_id: str,
        request_body: GetChatCompletionsFromDeploymentRequestBody
        | GetChatCompletionsFromDeploymentRequestBodyTypedDict,
        **options: Unpack[JSONPostOptions],
    ) -> APIResponse[GetChatCompletionsFromDeploymentResponseBody]:
        """Get a deployment's reply to a conversation: ``request_body={"messages": [{"role":
        "user", "content": ...}], ...}`` (roles ``system``, ``user``, ``assistant``) and the
        generation settings of completions. ``streaming=True`` is refused: the API defines
        no streaming response format.
        """
        return self._runner.run(
            self._inner.create,
            project_id=project_id,
            deployment_id=deployment_id,
            request_body=request_body,
            **options,
        )


class Chat:
    """Chat with a deployment: ``client.deployments.chat``."""

    completions: ChatCompletions
    """``client.deployments.chat.completions.create(...)``."""

    def __init__(self, inner: AsyncChat, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner
        self.completions = ChatCompletions(inner.completions, client)


class Embeddings(
    _Batches[
        GetEmbeddingsFromDeploymentRequestBody | GetEmbeddingsFromDeploymentRequestBodyTypedDict,
        GetEmbeddingsFromDeploymentResponseBody,
    ]
):
    """Embeddings from a deployment: ``client.deployments.embeddings``."""

    _inner: AsyncEmbeddings

    with_raw_response: EmbeddingsWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, inner: AsyncEmbeddings, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner
        self.with_raw_response = EmbeddingsWithRawResponse(inner.with_raw_response, client)

    def create(
        self,
        *,
        project_id: str,
        deployment_id: str,
        request_body: GetEmbeddingsFromDeploymentRequestBody
        | GetEmbeddingsFromDeploymentRequestBodyTypedDict,
        **options: Unpack[JSONPostOptions],
    ) -> GetEmbeddingsFromDeploymentResponseBody:
        """Embed ``source_sentence`` and ``target_sentence`` (``response.embeddings.text1``
        and ``.text2``, lists of floats) and compare them if asked (``cosine``,
        ``manhattan``, ``euclidean``).
        """
        return self._runner.run(
            self._inner.create,
            project_id=project_id,
            deployment_id=deployment_id,
            request_body=request_body,
            **options,
        )


class EmbeddingsWithRawResponse:
    """``client.deployments.embeddings.with_raw_response``."""

    def __init__(self, inner: AsyncEmbeddingsWithRawResponse, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner

    def create(
        self,
        *,
        project_id: str,
        deployment_id: str,
        request_body: GetEmbeddingsFromDeploymentRequestBody
        | GetEmbeddingsFromDeploymentRequestBodyTypedDict,
        **options: Unpack[JSONPostOptions],
    ) -> APIResponse[GetEmbeddingsFromDeploymentResponseBody]:
        """Embed ``source_sentence`` and ``target_sentence`` (``response.embeddings.text1``
        and ``.text2``, lists of floats) and compare them if asked (``cosine``,
        ``manhattan``, ``euclidean``).
        """
        return self._runner.run(
            self._inner.create,
            project_id=project_id,
            deployment_id=deployment_id,
            request_body=request_body,
            **options,
        )


class Classification(
    _Batches[
        GetClassificationFromDeploymentRequestBody
        | GetClassificationFromDeploymentRequestBodyTypedDict,
        GetClassificationFromDeploymentResponseBody,
    ]
):
    """Classification by a deployment: ``client.deployments.classification``."""

    _inner: AsyncClassification

    with_raw_response: ClassificationWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, inner: AsyncClassification, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner
        self.with_raw_response = ClassificationWithRawResponse(inner.with_raw_response, client)

    def create(
        self,
        *,
        project_id: str,
        deployment_id: str,
        request_body: GetClassificationFromDeploymentRequestBody
        | GetClassificationFromDeploymentRequestBodyTypedDict,
        **options: Unpack[JSONPostOptions],
    ) -> GetClassificationFromDeploymentResponseBody:
        """Classify ``source_sentence`` (the class is ``response``)."""
        return self._runner.run(
            self._inner.create,
            project_id=project_id,
            deployment_id=deployment_id,
            request_body=request_body,
            **options,
        )


class ClassificationWithRawResponse:
    """``client.deployments.classification.with_raw_response``."""

    def __init__(self, inner: AsyncClassificationWithRawResponse, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner

    def create(
        self,
        *,
        project_id: str,
        deployment_id: str,
        request_body: GetClassificationFromDeploymentRequestBody
        | GetClassificationFromDeploymentRequestBodyTypedDict,
        **options: Unpack[JSONPostOptions],
    ) -> APIResponse[GetClassificationFromDeploymentResponseBody]:
        """Classify ``source_sentence`` (the class is ``response``)."""
        return self._runner.run(
            self._inner.create,
            project_id=project_id,
            deployment_id=deployment_id,
            request_body=request_body,
            **options,
        )


class Deployments:
    """A project's deployments, and inference on them: ``client.deployments``."""

    completions: Completions
    """Completions from a deployment."""

    chat: Chat
    """Chat completions from a deployment (``chat.completions``)."""

    embeddings: Embeddings
    """Embeddings from a deployment."""

    classification: Classification
    """Classification by a deployment."""

    with_raw_response: DeploymentsWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, inner: AsyncDeployments, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner
        self.completions = Completions(inner.completions, client)
        self.chat = Chat(inner.chat, client)
        self.embeddings = Embeddings(inner.embeddings, client)
        self.classification = Classification(inner.classification, client)
        self.with_raw_response = DeploymentsWithRawResponse(inner.with_raw_response, client)

    def create(
        self,
        *,
        project_id: str,
        request_body: CreateDeploymentRequestBody | CreateDeploymentRequestBodyTypedDict,
        **options: Unpack[JSONPostOptions],
    ) -> DeploymentSummary:
        """Deploy a training job's checkpoint: ``training_job_id`` and an integer
        ``checkpoint`` (required), ``server_type`` ``"serverless"`` or ``"on-demand"``. Not
        retried when it may have been committed (see `Projects.create`).
        """
        return self._runner.run(
            self._inner.create, project_id=project_id, request_body=request_body, **options
        )

    def list(
        self,
        *,
        project_id: str,
        **options: Unpack[CallOptions],
    ) -> builtins.list[DeploymentSummary]:
        """List a project's deployments."""
        return self._runner.run(self._inner.list, project_id=project_id, **options)

    def get(
        self,
        *,
        project_id: str,
        deployment_id: str,
        **options: Unpack[CallOptions],
    ) -> DeploymentDetail:
        """Get a deployment: its ``status`` (open: a new value decodes as itself), the
        training job and checkpoint it serves.
        """
        return self._runner.run(
            self._inner.get, project_id=project_id, deployment_id=deployment_id, **options
        )

    def delete(
        self,
        *,
        project_id: str,
        deployment_id: str,
        missing_ok: bool = False,
        **options: Unpack[CallOptions],
    ) -> None:
        """Delete a deployment (a retry that finds it gone succeeds)."""
        return self._runner.run(
            self._inner.delete,
            project_id=project_id,
            deployment_id=deployment_id,
            missing_ok=missing_ok,
            **options,
        )

    def cancel(
        self,
        *,
        project_id: str,
        deployment_id: str,
        **options: Unpack[PostOptions],
    ) -> None:
        """Cancel a deployment that is still being deployed."""
        return self._runner.run(
            self._inner.cancel, project_id=project_id, deployment_id=deployment_id, **options
        )

    def wait(
        self,
        *,
        project_id: str,
        deployment_id: str,
        max_wait: Duration | None = 3600.0,
        poll: PollPolicy | None = None,
        on_progress: Callable[[DeploymentDetail], object] | None = None,
        progress: bool = False,
        raise_on_failure: bool = True,
        **options: Unpack[CallOptions],
    ) -> DeploymentDetail:
        """Wait until a deployment is ``Deployed`` and return it (`DeploymentError` for
        ``Failed``, ``TimedOut`` or ``Cancelled``); see `TrainingJobs.wait`.
        """
        return self._runner.run(
            self._inner.wait,
            project_id=project_id,
            deployment_id=deployment_id,
            max_wait=max_wait,
            poll=poll,
            on_progress=on_progress,
            progress=progress,
            raise_on_failure=raise_on_failure,
            **options,
        )

    def create_and_wait(
        self,
        *,
        project_id: str,
        request_body: CreateDeploymentRequestBody | CreateDeploymentRequestBodyTypedDict,
        max_wait: Duration | None = 3600.0,
        poll: PollPolicy | None = None,
        on_progress: Callable[[DeploymentDetail], object] | None = None,
        progress: bool = False,
        raise_on_failure: bool = True,
        **options: Unpack[JSONPostOptions],
    ) -> DeploymentDetail:
        """`create`, then `wait`; an ambiguous create is adopted, never made twice (see
        `TrainingJobs.create_and_wait`).
        """
        return self._runner.run(
            self._inner.create_and_wait,
            project_id=project_id,
            request_body=request_body,
            max_wait=max_wait,
            poll=poll,
            on_progress=on_progress,
            progress=progress,
            raise_on_failure=raise_on_failure,
            **options,
        )


class DeploymentsWithRawResponse:
    """``client.deployments.with_raw_response``: each operation returns the HTTP response."""

    def __init__(self, inner: AsyncDeploymentsWithRawResponse, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner

    def create(
        self,
        *,
        project_id: str,
        request_body: CreateDeploymentRequestBody | CreateDeploymentRequestBodyTypedDict,
        **options: Unpack[JSONPostOptions],
    ) -> APIResponse[DeploymentSummary]:
        """Deploy a training job's checkpoint: ``training_job_id`` and an integer
        ``checkpoint`` (required), ``server_type`` ``"serverless"`` or ``"on-demand"``. Not
        retried when it may have been committed (see `Projects.create`).
        """
        return self._runner.run(
            self._inner.create, project_id=project_id, request_body=request_body, **options
        )

    def list(
        self,
        *,
        project_id: str,
        **options: Unpack[CallOptions],
    ) -> APIResponse[builtins.list[DeploymentSummary]]:
        """List a project's deployments."""
        return self._runner.run(self._inner.list, project_id=project_id, **options)

    def get(
        self,
        *,
        project_id: str,
        deployment_id: str,
        **options: Unpack[CallOptions],
    ) -> APIResponse[DeploymentDetail]:
        """Get a deployment: its ``status`` (open: a new value decodes as itself), the
        training job and checkpoint it serves.
        """
        return self._runner.run(
            self._inner.get, project_id=project_id, deployment_id=deployment_id, **options
        )

    def delete(
        self,
        *,
        project_id: str,
        deployment_id: str,
        missing_ok: bool = False,
        **options: Unpack[CallOptions],
    ) -> APIResponse[None]:
        """Delete a deployment (a retry that finds it gone succeeds)."""
        return self._runner.run(
            self._inner.delete,
            project_id=project_id,
            deployment_id=deployment_id,
            missing_ok=missing_ok,
            **options,
        )

    def cancel(
        self,
        *,
        project_id: str,
        deployment_id: str,
        **options: Unpack[PostOptions],
    ) -> APIResponse[None]:
        """Cancel a deployment that is still being deployed."""
        return self._runner.run(
            self._inner.cancel, project_id=project_id, deployment_id=deployment_id, **options
        )
