"""The sync facade of emissary/_async/client.py: each class runs its async twin
on a private loop.

Generated from emissary/_async/client.py by scripts/generate_sync.py: do not edit by hand.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NoReturn

from .._async.client import AsyncEmissaryClient
from .._config import ApiKeySource
from .._transport import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_RESPONSE_BYTES
from .._upload import UploadFile
from ..models import FineTuneEvent, FineTuneRun
from ..utils import RetryBudget, RetryConfig
from .base import SyncClientBase
from .resources import BaseModels, Datasets, Deployments, Projects, TrainingJobs

if TYPE_CHECKING:
    from .._fine_tune import CheckpointChoice


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

    def fine_tune(
        self,
        *,
        base_model: str,
        train: UploadFile | None = None,
        test: UploadFile | None = None,
        train_dataset_id: str | None = None,
        test_dataset_id: str | None = None,
        project_id: str | None = None,
        project_name: str | None = None,
        train_test_split_ratio: float | None = None,
        parameters: dict[str, str | float | int] | None = None,
        hf_model_link: str | None = None,
        name: str | None = None,
        description: str | None = None,
        deploy: bool = True,
        checkpoint: CheckpointChoice = "last",
        server_type: str | None = None,
        state: str | os.PathLike[str] | None = None,
        progress: bool = False,
        on_event: Callable[[FineTuneEvent], object] | None = None,
    ) -> FineTuneRun:
        """From local data to a deployed model, in one call.

        Checks first, before anything is made: the base model exists (and can be
        deployed serverless, if ``server_type="serverless"``), and each local source can be
        read. Then it creates the project (unless ``project_id`` is given; named
        ``project_name``), uploads ``train`` (any `Datasets.upload` source: a path,
        bytes, a file object, ...; or ``train_dataset_id=`` for data already uploaded: a
        ``str`` given as ``train`` is always a path) and ``test`` if any, waits until
        they are processed, trains (``train_test_split_ratio``, ``parameters``,
        ``hf_model_link``, ``name``, ``description`` go to the training job) and waits,
        picks a checkpoint (``"last"``, a number, or a callable given the checkpoints),
        deploys it (unless ``deploy=False``; ``server_type``) and waits until it is
        ``Deployed``.

        ``state=PATH`` records the run in a JSON file after each step (and the name of
        what each create makes, before it): running again with the same file resumes,
        re-attaching to the job or deployment in progress; no step is made twice, nothing
        is uploaded or trained twice. A step's error is raised as it is, with the run so
        far as its ``.run``. ``on_event`` gets a `models.FineTuneEvent` as each step starts,
        progresses and ends; ``progress=True`` draws the uploads' and waits' bars.

        Returns:
            A `models.FineTuneRun`: ``project``, ``train_dataset``, ``test_dataset``,
            ``training_job``, ``checkpoint``, ``deployment``.
        """
        return self._runner.run(
            self._async_client.fine_tune,
            base_model=base_model,
            train=train,
            test=test,
            train_dataset_id=train_dataset_id,
            test_dataset_id=test_dataset_id,
            project_id=project_id,
            project_name=project_name,
            train_test_split_ratio=train_test_split_ratio,
            parameters=parameters,
            hf_model_link=hf_model_link,
            name=name,
            description=description,
            deploy=deploy,
            checkpoint=checkpoint,
            server_type=server_type,
            state=state,
            progress=progress,
            on_event=on_event,
        )
