"""The sync facade of emissary/_async/client.py: each class runs its async twin
on a private loop.

Generated from emissary/_async/client.py by scripts/generate_sync.py: do not edit by hand.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping
from typing import NoReturn

from .._async.client import AsyncEmissaryClient
from .._config import ApiKeySource
from .._transport import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_RESPONSE_BYTES
from ..utils import RetryBudget, RetryConfig
from .base import SyncClientBase
from .resources import BaseModels, Datasets, Deployments, Projects, TrainingJobs


class EmissaryClient(SyncClientBase):
    """Client for the Emissary API; use it as ``with EmissaryClient() as c:``.

    Arguments:
        api_key: the API key, or a zero-argument callable returning it (called per request);
            defaults to the ``EMISSARY_CLIENT_API_KEY`` environment variable.
        server_url: the API's base URL; defaults to ``EMISSARY_SERVER_URL``.
        retry_config: how calls are retried; defaults to `emissary.utils.DEFAULT_RETRY_CONFIG`.
        timeout_ms: the limit for each attempt, connect to last body byte (default 60 s).
        max_connections: the size of the keep-alive connection pool (default 100).
        max_response_bytes: the largest success body accepted (default 16 MiB).
        retry_budget: the client-wide cap on retries (default `utils.RetryBudget()`: at most
            20 retries in a total outage, refilled by successes).
        default_headers: headers sent on every request, over the SDK's own.
        tracing: make an OpenTelemetry span for every call when ``opentelemetry-api`` is
            installed (default True); False turns it off.
        proxy: the proxy for every request, ``http://user:password@host:port`` (an
            ``https://`` proxy needs Python 3.11+); credentials go to the proxy alone.
        trust_env: when no `proxy` is given, read ``HTTPS_PROXY`` / ``HTTP_PROXY`` /
            ``ALL_PROXY`` / ``NO_PROXY``, and trust ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``,
            as they are when the client is built (default True). ``~/.netrc`` is never read.
        ca_bundle: a PEM file or a directory of CA certificates, trusted instead of the
            defaults (a private CA, a TLS-inspecting gateway).
        ssl_context: the `ssl.SSLContext` to use as given (mutual TLS: load a client
            certificate into it with ``load_cert_chain``).
        native_tls: trust the operating system's certificate store, through ``truststore``
            (``pip install truststore``, or the extra ``truststore``).
        debug_logger: a `logging.Logger` that gets this client's records (DEBUG per
            attempt, INFO per retry) instead of the ``emissary`` logger; never the key.

    Arguments of the generated SDK that have no meaning here (``server_idx``,
    ``url_params``, ``client``, ``async_client``) raise `ConfigurationError` naming what
    to use instead (type checkers flag them too).

    The HTTP session is created on first use, on the event loop that uses it. Proxy and TLS
    settings belong to the connection pool: clients made by `with_options` share them.
    """

    base_models: BaseModels
    """The base models that can be fine-tuned: ``client.base_models.list()``."""

    projects: Projects
    """Projects: ``client.projects.create(...)``."""

    datasets: Datasets
    """A project's datasets: ``client.datasets.create(...)``."""

    training_jobs: TrainingJobs
    """Training jobs: ``client.training_jobs.create(...)``."""

    deployments: Deployments
    """Deployments, and inference on them: ``client.deployments.completions.create(...)``."""

    def __init__(
        self,
        api_key: ApiKeySource | None = None,
        server_url: str | None = None,
        retry_config: RetryConfig | None = None,
        timeout_ms: float | None = None,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        retry_budget: RetryBudget | None = None,
        default_headers: Mapping[str, str] | None = None,
        tracing: bool = True,
        proxy: str | None = None,
        trust_env: bool = True,
        ca_bundle: str | os.PathLike[str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        native_tls: bool = False,
        debug_logger: logging.Logger | None = None,
        **unsupported: NoReturn,
    ) -> None:
        super().__init__(
            AsyncEmissaryClient(
                api_key,
                server_url,
                retry_config,
                timeout_ms,
                max_connections=max_connections,
                max_response_bytes=max_response_bytes,
                retry_budget=retry_budget,
                default_headers=default_headers,
                tracing=tracing,
                proxy=proxy,
                trust_env=trust_env,
                ca_bundle=ca_bundle,
                ssl_context=ssl_context,
                native_tls=native_tls,
                debug_logger=debug_logger,
                **unsupported,
            )
        )

    def _bind(self) -> None:
        self.base_models = BaseModels(self._async_client.base_models, self)
        self.projects = Projects(self._async_client.projects, self)
        self.datasets = Datasets(self._async_client.datasets, self)
        self.training_jobs = TrainingJobs(self._async_client.training_jobs, self)
        self.deployments = Deployments(self._async_client.deployments, self)
