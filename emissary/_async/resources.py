"""The API's operations, as namespaces over a client: ``client.deployments.get(...)``.

Each public method is written once, in the same few lines: its signature (the generated
SDK's keyword names, typed), a docstring, and ``self._call(OPERATION, ids, body, options)``,
which builds the call from its row in `emissary._operations` (checking everything before
any I/O) and hands it to the client's one request path, which sends, retries, times, logs
and traces it. The ``with_raw_response`` twin of each namespace is derived, not written:
``get = raw(AsyncDeployments.get)`` is the same method, run on a view whose request path
returns the `models.APIResponse` (typed so by `raw`).

This module is the single source of every operation: `emissary/_sync/resources.py` is
generated from it by ``scripts/generate_sync.py``.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, cast

from .. import _operations as ops
from .. import _waiters as waiters
from .._batch import Batch, Concurrency, Progress, collect
from .._operations import Operation
from .._protocol import Request, build_request, fill_path
from .._upload import UploadFile, check_stall, progress_of
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

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .._protocol import RequestPath


P = ParamSpec("P")
R = TypeVar("R")
Body = TypeVar("Body")
"""A batch row's request body."""
Result = TypeVar("Result")
"""What a batch row's call returns."""


def raw(
    method: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, APIResponse[R]]]:
    """The ``with_raw_response`` twin of a resource method: the same method (the same
    arguments, checks and docstring), which on a raw view returns the `models.APIResponse`
    (status, headers, body, request id, retries; ``.parse()`` is what the plain method
    returns). Only its type changes here."""
    return cast("Callable[Concatenate[Any, P], Coroutine[Any, Any, APIResponse[R]]]", method)


class _Resource:
    """A namespace of operations over a client. On a raw view (``with_raw_response``) the
    same methods return the `models.APIResponse` instead of the result."""

    def __init__(self, client: RequestPath, raw: bool = False) -> None:
        self._client = client
        self._raw = raw

    async def _call(
        self,
        operation: Operation[R],
        ids: tuple[object, ...],
        body: object,
        options: Mapping[str, Any],
        **flags: Any,
    ) -> R:
        """Build the call (checked before any I/O) and send it through the request path
        (`flags`: `build_request`'s own, ``missing_ok`` and an upload's)."""
        request = build_request(operation, ids, body, options, **flags)
        get = options.get
        result = await self._client._request(
            request,
            retries=get("retries"),
            server_url=get("server_url"),
            timeout_ms=get("timeout_ms"),
            raw=self._raw,
        )
        return cast("R", result)


# --- base models ----------------------------------------------------------------------------


class AsyncBaseModels(_Resource):
    """The base models that can be fine-tuned: ``client.base_models``."""

    with_raw_response: AsyncBaseModelsWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, client: RequestPath) -> None:
        super().__init__(client)
        self.with_raw_response = AsyncBaseModelsWithRawResponse(client, raw=True)

    async def list(self, **options: Unpack[CallOptions]) -> builtins.list[BaseModelSummary]:
        """List the base models available for fine-tuning (``**options``: see
        `utils.CallOptions`)."""
        return await self._call(ops.LIST_BASE_MODELS, (), None, options)

    async def get(
        self, *, base_model_name: str, **options: Unpack[CallOptions]
    ) -> BaseModelSummary:
        """Get one base model by its name (404: `APIErrorNotFound`)."""
        return await self._call(ops.GET_BASE_MODEL, (base_model_name,), None, options)


class AsyncBaseModelsWithRawResponse(_Resource):
    """``client.base_models.with_raw_response``: each operation returns the HTTP response."""

    list = raw(AsyncBaseModels.list)
    get = raw(AsyncBaseModels.get)


# --- projects -------------------------------------------------------------------------------


class AsyncProjects(_Resource):
    """Projects, the workspaces that hold datasets, training jobs and deployments:
    ``client.projects``."""

    with_raw_response: AsyncProjectsWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, client: RequestPath) -> None:
        super().__init__(client)
        self.with_raw_response = AsyncProjectsWithRawResponse(client, raw=True)

    async def create(
        self,
        *,
        request: CreateProjectRequestBody | CreateProjectRequestBodyTypedDict | None = None,
        **options: Unpack[JSONPostOptions],
    ) -> ProjectSummary:
        """Create a project (``request``: its ``name``, if you want to choose it).

        A create is retried only when it provably did not take effect (a refused connection,
        a 429 or 503), unless ``idempotency_key`` is given; otherwise its error has
        ``maybe_committed`` set: look before you create again."""
        return await self._call(ops.CREATE_PROJECT, (), request, options)

    async def list(self, **options: Unpack[CallOptions]) -> builtins.list[ProjectSummary]:
        """List the projects."""
        return await self._call(ops.LIST_PROJECTS, (), None, options)

    async def get(self, *, project_id: str, **options: Unpack[CallOptions]) -> ProjectDetail:
        """Get a project, with its datasets, training jobs and deployments."""
        return await self._call(ops.GET_PROJECT, (project_id,), None, options)

    async def delete(
        self, *, project_id: str, missing_ok: bool = False, **options: Unpack[CallOptions]
    ) -> None:
        """Delete a project. A retry that finds it gone succeeds (an earlier attempt deleted
        it); ``missing_ok=True`` also makes a first 404 a success."""
        return await self._call(
            ops.DELETE_PROJECT, (project_id,), None, options, missing_ok=missing_ok
        )


class AsyncProjectsWithRawResponse(_Resource):
    """``client.projects.with_raw_response``: each operation returns the HTTP response."""

    create = raw(AsyncProjects.create)
    list = raw(AsyncProjects.list)
    get = raw(AsyncProjects.get)
    delete = raw(AsyncProjects.delete)


# --- datasets -------------------------------------------------------------------------------


class AsyncDatasets(_Resource):
    """A project's datasets: ``client.datasets``."""

    with_raw_response: AsyncDatasetsWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, client: RequestPath) -> None:
        super().__init__(client)
        self.with_raw_response = AsyncDatasetsWithRawResponse(client, raw=True)

    async def create(
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
        `AsyncProjects.create`). 413: `PayloadTooLargeError`."""
        return await self._call(ops.CREATE_DATASET, (project_id,), request_body, options)

    async def list(
        self, *, project_id: str, **options: Unpack[CallOptions]
    ) -> builtins.list[DatasetSummary]:
        """List a project's datasets."""
        return await self._call(ops.LIST_DATASETS, (project_id,), None, options)

    async def get(
        self, *, project_id: str, dataset_id: str, **options: Unpack[CallOptions]
    ) -> DatasetDetail:
        """Get a dataset (``is_uploaded`` is True once the upload has been processed)."""
        return await self._call(ops.GET_DATASET, (project_id, dataset_id), None, options)

    async def delete(
        self,
        *,
        project_id: str,
        dataset_id: str,
        missing_ok: bool = False,
        **options: Unpack[CallOptions],
    ) -> None:
        """Delete a dataset (a retry that finds it gone succeeds; see `AsyncProjects.delete`)."""
        ids = (project_id, dataset_id)
        return await self._call(ops.DELETE_DATASET, ids, None, options, missing_ok=missing_ok)

    async def upload(
        self,
        *,
        project_id: str,
        file: UploadFile,
        name: str | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        progress: bool | Callable[[UploadProgress], object] = False,
        stall_timeout_ms: float = 60_000,
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
        ``application/octet-stream``."""
        return await _upload(
            self, project_id, file, name, filename, content_type, progress, stall_timeout_ms,
            options,
        )  # fmt: skip

    async def wait(
        self,
        *,
        project_id: str,
        dataset_id: str,
        max_wait: Duration | None = 1_800.0,
        poll: PollPolicy | None = None,
        on_progress: Callable[[DatasetDetail], object] | None = None,
        progress: bool = False,
        raise_on_failure: bool = True,
        **options: Unpack[CallOptions],
    ) -> DatasetDetail:
        """Wait until a dataset has been processed (``is_uploaded``) and return it; see
        `AsyncTrainingJobs.wait`."""
        return await waiters.wait(
            self._client, waiters.DATASET, (project_id, dataset_id), max_wait=max_wait,
            poll=poll, on_progress=on_progress, progress=progress,
            raise_on_failure=raise_on_failure, options=options,
        )  # fmt: skip


class AsyncDatasetsWithRawResponse(_Resource):
    """``client.datasets.with_raw_response``: each operation returns the HTTP response."""

    create = raw(AsyncDatasets.create)
    upload = raw(AsyncDatasets.upload)
    list = raw(AsyncDatasets.list)
    get = raw(AsyncDatasets.get)
    delete = raw(AsyncDatasets.delete)


# --- training jobs --------------------------------------------------------------------------


class AsyncTrainingJobs(_Resource):
    """A project's training jobs and their checkpoints: ``client.training_jobs``."""

    with_raw_response: AsyncTrainingJobsWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, client: RequestPath) -> None:
        super().__init__(client)
        self.with_raw_response = AsyncTrainingJobsWithRawResponse(client, raw=True)

    async def create(
        self,
        *,
        project_id: str,
        request_body: CreateTrainingJobRequestBody | CreateTrainingJobRequestBodyTypedDict,
        **options: Unpack[JSONPostOptions],
    ) -> TrainingJobSummary:
        """Start a training job: fine-tune ``base_model`` on ``train_dataset_id`` (both
        required; a split ratio strictly between 0 and 1; ``parameters`` strings or
        numbers). Not retried when it may have been committed (see `AsyncProjects.create`):
        a second job would cost GPU hours."""
        return await self._call(ops.CREATE_TRAINING_JOB, (project_id,), request_body, options)

    async def list(
        self, *, project_id: str, **options: Unpack[CallOptions]
    ) -> builtins.list[TrainingJobSummary]:
        """List a project's training jobs."""
        return await self._call(ops.LIST_TRAINING_JOBS, (project_id,), None, options)

    async def get(
        self, *, project_id: str, training_job_id: str, **options: Unpack[CallOptions]
    ) -> TrainingJobDetail:
        """Get a training job: its ``status`` (open: a new value decodes as itself),
        ``progress``, datasets, loss curve and hyper-parameters."""
        ids = (project_id, training_job_id)
        return await self._call(ops.GET_TRAINING_JOB, ids, None, options)

    async def delete(
        self,
        *,
        project_id: str,
        training_job_id: str,
        missing_ok: bool = False,
        **options: Unpack[CallOptions],
    ) -> None:
        """Delete a training job (a retry that finds it gone succeeds)."""
        ids = (project_id, training_job_id)
        return await self._call(ops.DELETE_TRAINING_JOB, ids, None, options, missing_ok=missing_ok)

    async def cancel(
        self, *, project_id: str, training_job_id: str, **options: Unpack[PostOptions]
    ) -> None:
        """Cancel a training job (its status becomes ``Cancelled``)."""
        ids = (project_id, training_job_id)
        return await self._call(ops.CANCEL_TRAINING_JOB, ids, None, options)

    async def list_checkpoints(
        self, *, project_id: str, training_job_id: str, **options: Unpack[CallOptions]
    ) -> builtins.list[TrainingJobCheckpoint]:
        """List the checkpoints a training job saved (deploy one by its ``checkpoint``)."""
        ids = (project_id, training_job_id)
        return await self._call(ops.LIST_CHECKPOINTS, ids, None, options)

    async def wait(
        self,
        *,
        project_id: str,
        training_job_id: str,
        max_wait: Duration | None = 86_400.0,
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
        wait at once and never cancels the job."""
        return await waiters.wait(
            self._client, waiters.TRAINING_JOB, (project_id, training_job_id),
            max_wait=max_wait, poll=poll, on_progress=on_progress, progress=progress,
            raise_on_failure=raise_on_failure, options=options,
        )  # fmt: skip

    async def create_and_wait(
        self,
        *,
        project_id: str,
        request_body: CreateTrainingJobRequestBody | CreateTrainingJobRequestBodyTypedDict,
        max_wait: Duration | None = 86_400.0,
        poll: PollPolicy | None = None,
        on_progress: Callable[[TrainingJobDetail], object] | None = None,
        progress: bool = False,
        raise_on_failure: bool = True,
        **options: Unpack[JSONPostOptions],
    ) -> TrainingJobDetail:
        """`create`, then `wait`. A create that fails after it may have been made is never
        made again: the job it made is found (by its ``name``: yours, or one the SDK gives
        it) and waited for; several that could be it raise `AmbiguousCreateError`."""
        return await waiters.create_and_wait(
            self._client, ops.CREATE_TRAINING_JOB, ops.LIST_TRAINING_JOBS, waiters.TRAINING_JOB,
            project_id, request_body, options, max_wait=max_wait, poll=poll,
            on_progress=on_progress, progress=progress, raise_on_failure=raise_on_failure,
        )  # fmt: skip


class AsyncTrainingJobsWithRawResponse(_Resource):
    """``client.training_jobs.with_raw_response``: each operation returns the HTTP response."""

    create = raw(AsyncTrainingJobs.create)
    list = raw(AsyncTrainingJobs.list)
    get = raw(AsyncTrainingJobs.get)
    delete = raw(AsyncTrainingJobs.delete)
    cancel = raw(AsyncTrainingJobs.cancel)
    list_checkpoints = raw(AsyncTrainingJobs.list_checkpoints)


# --- inference on a deployment --------------------------------------------------------------


class _AsyncBatches(_Resource, Generic[Body, Result]):
    """``batch`` and ``iter_batch`` of an inference endpoint (completions, chat,
    embeddings, classification), written once: each endpoint's class names its row in
    `emissary._operations` (`_operation`) and its request and result types."""

    _operation: Operation[Any]

    async def batch(
        self,
        *,
        project_id: str,
        deployment_id: str,
        requests: Iterable[Body] | AsyncIterable[Body],
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
        return await collect(
            self._batch(
                project_id, deployment_id, requests, concurrency, max_concurrency,
                requests_per_minute, retries, timeout_ms, progress, ordered=False,
            )
        )  # fmt: skip

    def iter_batch(
        self,
        *,
        project_id: str,
        deployment_id: str,
        requests: Iterable[Body] | AsyncIterable[Body],
        concurrency: Concurrency = "auto",
        max_concurrency: int = 64,
        requests_per_minute: float | None = None,
        retries: RetryConfig | None = None,
        timeout_ms: float | None = None,
        progress: Progress = False,
        ordered: bool = False,
    ) -> AsyncIterator[BatchOutcome[Result]]:
        """`batch`, lazily: yields each `models.BatchResult` as its row finishes (in input
        order with `ordered`), pulling inputs only as rows finish, so memory stays bounded
        for any input. Stopping early (leaving the loop, then closing or dropping the
        iterator) cancels the rows in flight."""
        return self._batch(
            project_id, deployment_id, requests, concurrency, max_concurrency,
            requests_per_minute, retries, timeout_ms, progress, ordered=ordered,
        )  # fmt: skip

    def _batch(
        self,
        project_id: str,
        deployment_id: str,
        requests: Iterable[Any] | AsyncIterable[Any],
        concurrency: Concurrency,
        max_concurrency: int,
        requests_per_minute: float | None,
        retries: RetryConfig | None,
        timeout_ms: float | None,
        progress: Progress,
        *,
        ordered: bool,
    ) -> Batch[Result]:
        ids = (project_id, deployment_id)
        operation = self._operation
        fill_path(operation, ids)  # bad ids fail here, not in every row

        def describe(body: Any) -> Request:
            return build_request(operation, ids, body, _NO_OPTIONS)

        return Batch(
            self._client,
            describe,
            requests,
            concurrency=concurrency,
            max_concurrency=max_concurrency,
            requests_per_minute=requests_per_minute,
            retries=retries,
            timeout_ms=timeout_ms,
            progress=progress,
            ordered=ordered,
        )


class AsyncCompletions(
    _AsyncBatches[
        CompletionRequest | CompletionRequestDict, GetCompletionsFromDeploymentResponseBody
    ]
):
    """Completions from a deployment: ``client.deployments.completions``."""

    _operation = ops.COMPLETIONS

    with_raw_response: AsyncCompletionsWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, client: RequestPath) -> None:
        super().__init__(client)
        self.with_raw_response = AsyncCompletionsWithRawResponse(client, raw=True)

    async def create(
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
        ids = (project_id, deployment_id)
        return await self._call(ops.COMPLETIONS, ids, request_body, options)


class AsyncCompletionsWithRawResponse(_Resource):
    """``client.deployments.completions.with_raw_response``: each operation returns the
    `models.APIResponse` (status, headers, body, request id, retries), whose ``.parse()``
    gives what the plain operation returns."""

    create = raw(AsyncCompletions.create)


class AsyncChatCompletions(
    _AsyncBatches[
        GetChatCompletionsFromDeploymentRequestBody
        | GetChatCompletionsFromDeploymentRequestBodyTypedDict,
        GetChatCompletionsFromDeploymentResponseBody,
    ]
):
    """Chat completions from a deployment: ``client.deployments.chat.completions``."""

    _operation = ops.CHAT

    with_raw_response: AsyncChatCompletionsWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, client: RequestPath) -> None:
        super().__init__(client)
        self.with_raw_response = AsyncChatCompletionsWithRawResponse(client, raw=True)

    async def create(
        self,
        *,
        project_id: str,
        deployment_id: str,
        request_body: (
            GetChatCompletionsFromDeploymentRequestBody
            | GetChatCompletionsFromDeploymentRequestBodyTypedDict
        ),
        **options: Unpack[JSONPostOptions],
    ) -> GetChatCompletionsFromDeploymentResponseBody:
        """Get a deployment's reply to a conversation: ``request_body={"messages": [{"role":
        "user", "content": ...}], ...}`` (roles ``system``, ``user``, ``assistant``) and the
        generation settings of completions. ``streaming=True`` is refused: the API defines
        no streaming response format."""
        ids = (project_id, deployment_id)
        return await self._call(ops.CHAT, ids, request_body, options)


class AsyncChatCompletionsWithRawResponse(_Resource):
    """``client.deployments.chat.completions.with_raw_response``."""

    create = raw(AsyncChatCompletions.create)


class AsyncChat(_Resource):
    """Chat with a deployment: ``client.deployments.chat``."""

    completions: AsyncChatCompletions
    """``client.deployments.chat.completions.create(...)``."""

    def __init__(self, client: RequestPath) -> None:
        super().__init__(client)
        self.completions = AsyncChatCompletions(client)


class AsyncEmbeddings(
    _AsyncBatches[
        GetEmbeddingsFromDeploymentRequestBody | GetEmbeddingsFromDeploymentRequestBodyTypedDict,
        GetEmbeddingsFromDeploymentResponseBody,
    ]
):
    """Embeddings from a deployment: ``client.deployments.embeddings``."""

    _operation = ops.EMBEDDINGS

    with_raw_response: AsyncEmbeddingsWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, client: RequestPath) -> None:
        super().__init__(client)
        self.with_raw_response = AsyncEmbeddingsWithRawResponse(client, raw=True)

    async def create(
        self,
        *,
        project_id: str,
        deployment_id: str,
        request_body: (
            GetEmbeddingsFromDeploymentRequestBody | GetEmbeddingsFromDeploymentRequestBodyTypedDict
        ),
        **options: Unpack[JSONPostOptions],
    ) -> GetEmbeddingsFromDeploymentResponseBody:
        """Embed ``source_sentence`` and ``target_sentence`` (``response.embeddings.text1``
        and ``.text2``, lists of floats) and compare them if asked (``cosine``,
        ``manhattan``, ``euclidean``)."""
        ids = (project_id, deployment_id)
        return await self._call(ops.EMBEDDINGS, ids, request_body, options)


class AsyncEmbeddingsWithRawResponse(_Resource):
    """``client.deployments.embeddings.with_raw_response``."""

    create = raw(AsyncEmbeddings.create)


class AsyncClassification(
    _AsyncBatches[
        GetClassificationFromDeploymentRequestBody
        | GetClassificationFromDeploymentRequestBodyTypedDict,
        GetClassificationFromDeploymentResponseBody,
    ]
):
    """Classification by a deployment: ``client.deployments.classification``."""

    _operation = ops.CLASSIFICATION

    with_raw_response: AsyncClassificationWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, client: RequestPath) -> None:
        super().__init__(client)
        self.with_raw_response = AsyncClassificationWithRawResponse(client, raw=True)

    async def create(
        self,
        *,
        project_id: str,
        deployment_id: str,
        request_body: (
            GetClassificationFromDeploymentRequestBody
            | GetClassificationFromDeploymentRequestBodyTypedDict
        ),
        **options: Unpack[JSONPostOptions],
    ) -> GetClassificationFromDeploymentResponseBody:
        """Classify ``source_sentence`` (the class is ``response``)."""
        ids = (project_id, deployment_id)
        return await self._call(ops.CLASSIFICATION, ids, request_body, options)


class AsyncClassificationWithRawResponse(_Resource):
    """``client.deployments.classification.with_raw_response``."""

    create = raw(AsyncClassification.create)


# --- deployments ----------------------------------------------------------------------------


class AsyncDeployments(_Resource):
    """A project's deployments, and inference on them: ``client.deployments``."""

    completions: AsyncCompletions
    """Completions from a deployment."""
    chat: AsyncChat
    """Chat completions from a deployment (``chat.completions``)."""
    embeddings: AsyncEmbeddings
    """Embeddings from a deployment."""
    classification: AsyncClassification
    """Classification by a deployment."""
    with_raw_response: AsyncDeploymentsWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, client: RequestPath) -> None:
        super().__init__(client)
        self.completions = AsyncCompletions(client)
        self.chat = AsyncChat(client)
        self.embeddings = AsyncEmbeddings(client)
        self.classification = AsyncClassification(client)
        self.with_raw_response = AsyncDeploymentsWithRawResponse(client, raw=True)

    async def create(
        self,
        *,
        project_id: str,
        request_body: CreateDeploymentRequestBody | CreateDeploymentRequestBodyTypedDict,
        **options: Unpack[JSONPostOptions],
    ) -> DeploymentSummary:
        """Deploy a training job's checkpoint: ``training_job_id`` and an integer
        ``checkpoint`` (required), ``server_type`` ``"serverless"`` or ``"on-demand"``. Not
        retried when it may have been committed (see `AsyncProjects.create`)."""
        return await self._call(ops.CREATE_DEPLOYMENT, (project_id,), request_body, options)

    async def list(
        self, *, project_id: str, **options: Unpack[CallOptions]
    ) -> builtins.list[DeploymentSummary]:
        """List a project's deployments."""
        return await self._call(ops.LIST_DEPLOYMENTS, (project_id,), None, options)

    async def get(
        self, *, project_id: str, deployment_id: str, **options: Unpack[CallOptions]
    ) -> DeploymentDetail:
        """Get a deployment: its ``status`` (open: a new value decodes as itself), the
        training job and checkpoint it serves."""
        ids = (project_id, deployment_id)
        return await self._call(ops.GET_DEPLOYMENT, ids, None, options)

    async def delete(
        self,
        *,
        project_id: str,
        deployment_id: str,
        missing_ok: bool = False,
        **options: Unpack[CallOptions],
    ) -> None:
        """Delete a deployment (a retry that finds it gone succeeds)."""
        ids = (project_id, deployment_id)
        return await self._call(ops.DELETE_DEPLOYMENT, ids, None, options, missing_ok=missing_ok)

    async def cancel(
        self, *, project_id: str, deployment_id: str, **options: Unpack[PostOptions]
    ) -> None:
        """Cancel a deployment that is still being deployed."""
        ids = (project_id, deployment_id)
        return await self._call(ops.CANCEL_DEPLOYMENT, ids, None, options)

    async def wait(
        self,
        *,
        project_id: str,
        deployment_id: str,
        max_wait: Duration | None = 3_600.0,
        poll: PollPolicy | None = None,
        on_progress: Callable[[DeploymentDetail], object] | None = None,
        progress: bool = False,
        raise_on_failure: bool = True,
        **options: Unpack[CallOptions],
    ) -> DeploymentDetail:
        """Wait until a deployment is ``Deployed`` and return it (`DeploymentError` for
        ``Failed``, ``TimedOut`` or ``Cancelled``); see `AsyncTrainingJobs.wait`."""
        return await waiters.wait(
            self._client, waiters.DEPLOYMENT, (project_id, deployment_id), max_wait=max_wait,
            poll=poll, on_progress=on_progress, progress=progress,
            raise_on_failure=raise_on_failure, options=options,
        )  # fmt: skip

    async def create_and_wait(
        self,
        *,
        project_id: str,
        request_body: CreateDeploymentRequestBody | CreateDeploymentRequestBodyTypedDict,
        max_wait: Duration | None = 3_600.0,
        poll: PollPolicy | None = None,
        on_progress: Callable[[DeploymentDetail], object] | None = None,
        progress: bool = False,
        raise_on_failure: bool = True,
        **options: Unpack[JSONPostOptions],
    ) -> DeploymentDetail:
        """`create`, then `wait`; an ambiguous create is adopted, never made twice (see
        `AsyncTrainingJobs.create_and_wait`)."""
        return await waiters.create_and_wait(
            self._client, ops.CREATE_DEPLOYMENT, ops.LIST_DEPLOYMENTS, waiters.DEPLOYMENT,
            project_id, request_body, options, max_wait=max_wait, poll=poll,
            on_progress=on_progress, progress=progress, raise_on_failure=raise_on_failure,
        )  # fmt: skip


class AsyncDeploymentsWithRawResponse(_Resource):
    """``client.deployments.with_raw_response``: each operation returns the HTTP response."""

    create = raw(AsyncDeployments.create)
    list = raw(AsyncDeployments.list)
    get = raw(AsyncDeployments.get)
    delete = raw(AsyncDeployments.delete)
    cancel = raw(AsyncDeployments.cancel)


_NO_OPTIONS: Mapping[str, Any] = {}


async def _upload(
    resource: _Resource,
    project_id: str,
    file: object,
    name: str | None,
    filename: str | None,
    content_type: str | None,
    progress: object,
    stall_timeout_ms: float,
    options: Mapping[str, Any],
) -> DatasetSummary:
    """``datasets.upload``: its source checked (before any I/O), sent as ``datasets.create``
    with a stall watchdog instead of a total limit, and its progress shown."""
    from .._upload import upload_source

    stall = check_stall(stall_timeout_ms)
    source = upload_source(file)
    body = {
        "file": {
            "file_name": filename or source.name or "data",
            "content": source,
            "content_type": content_type,
        },
        "name": name,
    }
    report, bar = progress_of(progress, source.size)
    try:
        return await resource._call(
            ops.CREATE_DATASET, (project_id,), body, options,
            stall_timeout_s=stall, on_progress=report,
        )  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
