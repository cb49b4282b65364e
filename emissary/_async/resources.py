"""The API's operations, as namespaces over a client: ``client.deployments.completions``.

Each operation is a short method: it describes its call (`emissary._protocol`) and hands it
to the client's one request path, which sends, retries, times, logs and traces it. This
module is the single source of every operation: `emissary/_sync/resources.py` is generated
from it by ``scripts/generate_sync.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload

from .._batch import Batch, Concurrency, Progress, collect
from .._protocol import Request, completion_path, completion_request
from ..models import (
    APIResponse,
    BatchOutcome,
    CompletionRequest,
    CompletionRequestDict,
    GetCompletionsFromDeploymentResponseBody,
)
from ..utils import RetryConfig

if TYPE_CHECKING:
    from .._batch import Pacer
    from .._retry import RetryRuntime

    T = TypeVar("T")

    class _Client(Protocol):
        """What resources need of a client: its request path (and, for batches, the
        clock and sleep its retries use)."""

        _retry_runtime: RetryRuntime

        @overload
        async def _request(
            self,
            request: Request[T],
            *,
            retries: RetryConfig | None,
            server_url: str | None,
            timeout_ms: float | None,
            raw: Literal[False] = False,
            pacer: Pacer | None = None,
        ) -> T: ...

        @overload
        async def _request(
            self,
            request: Request[T],
            *,
            retries: RetryConfig | None,
            server_url: str | None,
            timeout_ms: float | None,
            raw: Literal[True],
            pacer: Pacer | None = None,
        ) -> APIResponse[T]: ...


class AsyncCompletions:
    """Completions from a deployment: ``client.deployments.completions``."""

    with_raw_response: AsyncCompletionsWithRawResponse
    """The same operations, returning the HTTP response (`models.APIResponse`)."""

    def __init__(self, client: _Client) -> None:
        self._client = client
        self.with_raw_response = AsyncCompletionsWithRawResponse(client)

    async def create(
        self,
        *,
        project_id: str,
        deployment_id: str,
        request_body: CompletionRequest | CompletionRequestDict,
        retries: RetryConfig | None = None,
        server_url: str | None = None,
        timeout_ms: float | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
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
            retries: retry settings for this call, overriding the client's.
            server_url: the base URL for this call, overriding the client's.
            timeout_ms: the limit for each attempt of this call, in milliseconds.
            extra_headers: headers sent on every attempt, over the SDK's own.
            extra_query: query parameters added to the URL (percent-encoded).
            extra_body: fields merged into the JSON body at the top level, for fields the
                server knows and the SDK does not yet (not checked against the schema).
            idempotency_key: the ``Idempotency-Key`` of the call instead of a fresh UUID.

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
        return await self._client._request(
            completion_request(
                project_id=project_id,
                deployment_id=deployment_id,
                request_body=request_body,
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=extra_body,
                idempotency_key=idempotency_key,
            ),
            retries=retries,
            server_url=server_url,
            timeout_ms=timeout_ms,
        )

    async def batch(
        self,
        *,
        project_id: str,
        deployment_id: str,
        requests: Iterable[CompletionRequest | CompletionRequestDict]
        | AsyncIterable[CompletionRequest | CompletionRequestDict],
        concurrency: Concurrency = "auto",
        max_concurrency: int = 64,
        requests_per_minute: float | None = None,
        retries: RetryConfig | None = None,
        timeout_ms: float | None = None,
        progress: Progress = False,
    ) -> list[BatchOutcome[GetCompletionsFromDeploymentResponseBody]]:
        """Get a completion for every request body in `requests`, many at once.

        Arguments:
            project_id, deployment_id: as for `create`, for every row.
            requests: the request bodies (dicts or Structs): any iterable (a list, a
                generator) or async iterable.
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
            One `models.BatchResult` per input, in input order: ``.completion`` or
            ``.error`` (a row's failure, bad input included, never aborts the batch).

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
        requests: Iterable[CompletionRequest | CompletionRequestDict]
        | AsyncIterable[CompletionRequest | CompletionRequestDict],
        concurrency: Concurrency = "auto",
        max_concurrency: int = 64,
        requests_per_minute: float | None = None,
        retries: RetryConfig | None = None,
        timeout_ms: float | None = None,
        progress: Progress = False,
        ordered: bool = False,
    ) -> AsyncIterator[BatchOutcome[GetCompletionsFromDeploymentResponseBody]]:
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
    ) -> Batch[GetCompletionsFromDeploymentResponseBody]:
        completion_path(project_id, deployment_id)  # bad ids fail here, not in every row

        def describe(body: Any) -> Request[GetCompletionsFromDeploymentResponseBody]:
            return completion_request(
                project_id=project_id, deployment_id=deployment_id, request_body=body
            )

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


class AsyncCompletionsWithRawResponse:
    """``client.deployments.completions.with_raw_response``: each operation returns the
    `models.APIResponse` (status, headers, body, request id, retries), whose ``.parse()``
    gives what the plain operation returns."""

    def __init__(self, client: _Client) -> None:
        self._client = client

    async def create(
        self,
        *,
        project_id: str,
        deployment_id: str,
        request_body: CompletionRequest | CompletionRequestDict,
        retries: RetryConfig | None = None,
        server_url: str | None = None,
        timeout_ms: float | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> APIResponse[GetCompletionsFromDeploymentResponseBody]:
        """`AsyncCompletions.create`, returning the HTTP response: ``.parse()`` is the
        completion. Errors are raised as by ``create`` (with ``.request_id`` on them)."""
        return await self._client._request(
            completion_request(
                project_id=project_id,
                deployment_id=deployment_id,
                request_body=request_body,
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=extra_body,
                idempotency_key=idempotency_key,
            ),
            retries=retries,
            server_url=server_url,
            timeout_ms=timeout_ms,
            raw=True,
        )


class AsyncDeployments:
    """Operations on deployments: ``client.deployments``."""

    completions: AsyncCompletions
    """Completions from a deployment."""

    def __init__(self, client: _Client) -> None:
        self.completions = AsyncCompletions(client)
