"""The API's operations, as namespaces over a client: ``client.deployments.completions``.

This module is the single source of every operation: `emissary/_sync/resources.py` is
generated from it by ``scripts/generate_sync.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._config import check_retry_config, check_timeout_ms, parse_server_url
from .._protocol import ATTEMPT_HEADER, parse_completion_response
from .._retry import first_attempt_timeout, retry_after_failure
from .._validation import encode_request_body
from ..errors import APIConnectionError, SDKError
from ..models import (
    Completion,
    CompletionRequest,
    CompletionRequestDict,
    GetCompletionsFromDeploymentResponseBody,
)
from ..utils import RetryConfig

if TYPE_CHECKING:
    from yarl import URL

    from .._retry import RetryRuntime
    from .._transport import Transport
    from .client import AsyncEmissaryClient


class AsyncCompletions:
    """Completions from a deployment: ``client.deployments.completions``."""

    def __init__(self, client: AsyncEmissaryClient) -> None:
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

        Every attempt of the call carries the same ``Idempotency-Key`` header (a fresh UUID
        per call) and an ``X-Emissary-Attempt`` header (1, 2, ...). Retries follow the
        client's (or this call's) `RetryConfig`; see `emissary.utils`.

        Returns:
            The completion, with ``.id`` and ``.response``.

        Raises:
            RequestValidationError: an argument is invalid (before any I/O).
            APIErrorInvalidInput: 400. APIErrorUnauthorized: 401. APIErrorNotFound: 404.
            SDKError: any other non-success response, or a 2XX body that is not a completion.
            APIConnectionError: no response (APITimeoutError when out of time).
        """
        client = self._client
        settings = client._settings
        base = settings.server_url if server_url is None else parse_server_url(server_url)
        url = client._urls.get(base, project_id, deployment_id)
        body = encode_request_body(request_body)
        if retries is None and timeout_ms is None:
            config, timeout_s = settings.retry_config, settings.timeout_s
            first_timeout_s = settings.first_attempt_timeout_s
        else:
            config = settings.retry_config if retries is None else check_retry_config(retries)
            timeout_s = settings.timeout_s if timeout_ms is None else check_timeout_ms(timeout_ms)
            first_timeout_s = first_attempt_timeout(config, timeout_s)
        # One Idempotency-Key for the logical call, the same on every attempt.
        headers = settings.call_headers()
        transport = client._transport
        max_bytes = settings.max_response_bytes
        runtime = client._retry_runtime
        started = runtime.clock()
        # The first attempt: a call that succeeds never enters the retry loop. Its send and
        # parse are written out here, as in `_retry`'s attempts, to save a coroutine a call.
        try:
            status, response_headers, data, truncated = await transport.send(
                url, headers, body, timeout_s=first_timeout_s, max_response_bytes=max_bytes
            )
            completion = parse_completion_response(status, response_headers, data, url, truncated)
        except (SDKError, APIConnectionError) as error:
            return await _retry(
                error, transport, url, headers, body, max_bytes, config, timeout_s, runtime, started
            )
        runtime.bucket.deposit()
        return completion


async def _retry(
    error: SDKError | APIConnectionError,
    transport: Transport,
    url: URL,
    headers: dict[str, str],
    body: bytes,
    max_response_bytes: int,
    config: RetryConfig,
    timeout_s: float,
    runtime: RetryRuntime,
    started: float,
) -> Completion:
    """Carry on a call whose first attempt failed: every later attempt sends the same body
    and headers, but for its number in ``X-Emissary-Attempt``.

    (Its own function so that `create` holds no closure: variables a nested function uses
    become cells, made on every call, retried or not.)
    """

    async def attempt(attempt_timeout_s: float, number: int) -> Completion:
        headers[ATTEMPT_HEADER] = str(number)
        status, response_headers, data, truncated = await transport.send(
            url, headers, body, timeout_s=attempt_timeout_s, max_response_bytes=max_response_bytes
        )
        return parse_completion_response(status, response_headers, data, url, truncated)

    return await retry_after_failure(error, attempt, config, timeout_s, runtime, started)


class AsyncDeployments:
    """Operations on deployments: ``client.deployments``."""

    completions: AsyncCompletions
    """Completions from a deployment."""

    def __init__(self, client: AsyncEmissaryClient) -> None:
        self.completions = AsyncCompletions(client)
