"""The sync facade: `Completions`, `Deployments`, each running its async twin on a private loop.

Generated from emissary/_async/resources.py by scripts/generate_sync.py: do not edit by hand.
"""

from __future__ import annotations

from .._async.resources import AsyncCompletions, AsyncDeployments
from ..models import (
    CompletionRequest,
    CompletionRequestDict,
    GetCompletionsFromDeploymentResponseBody,
)
from ..utils import RetryConfig
from .base import SyncClientBase


class Completions:
    """Completions from a deployment: ``client.deployments.completions``."""

    def __init__(self, inner: AsyncCompletions, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner

    def create(
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
        return self._runner.run(
            self._inner.create(
                project_id=project_id,
                deployment_id=deployment_id,
                request_body=request_body,
                retries=retries,
                server_url=server_url,
                timeout_ms=timeout_ms,
            )
        )


class Deployments:
    """Operations on deployments: ``client.deployments``."""

    completions: Completions
    """Completions from a deployment."""

    def __init__(self, inner: AsyncDeployments, client: SyncClientBase) -> None:
        self._inner = inner
        self._client = client  # keeps the client (and its loop) alive
        self._runner = client._runner
        self.completions = Completions(inner.completions, client)
