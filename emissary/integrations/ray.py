"""Completions for Ray Data: ``dataset.map_batches(Completions, fn_constructor_kwargs=...)``.

    import ray
    from emissary.integrations.ray import Completions

    results = ray.data.from_items([{"prompt": p} for p in prompts]).map_batches(
        Completions,
        fn_constructor_kwargs={"project_id": "my-project", "deployment_id": "my-deployment"},
        compute=ray.data.ActorPoolStrategy(size=4),  # 4 actors (not concurrency=4: deprecated)
        batch_size=64,
    )

Each actor builds one `emissary.EmissaryClient` and reuses it for every batch it gets; the
rows of a batch go through ``completions.batch`` (concurrent, bounded, adaptive, Retry-After
honoured), never one at a time. The output batch is the input batch plus the columns
``response``, ``completion_id``, ``request_id`` and ``error`` (None for a row that
succeeded, else ``"TypeName: message"``): a failing row never fails the job.

Budgets are per actor: to keep a deployment's total under N requests in flight (or R a
minute) with A actors, give each ``max_concurrency=N // A`` (``requests_per_minute=R / A``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from .. import EmissaryClient
from .._batch import Concurrency
from ..utils import RetryConfig

__all__ = ["SETTING_COLUMNS", "Completions"]

SETTING_COLUMNS = (
    "max_new_tokens",
    "temperature",
    "top_p",
    "top_k",
    "no_repeat_ngram_size",
    "do_sample",
)
"""Generation settings a batch may carry as columns (a row's value wins over the
constructor's ``settings``; a missing or null value leaves the setting out)."""
OUTPUT_COLUMNS = ("response", "completion_id", "request_id", "error")


class Completions:
    """A callable class for ``Dataset.map_batches``: a completion for every row.

    Arguments:
        project_id, deployment_id: where the completions come from.
        prompt_column: the column holding each row's prompt (default ``prompt``).
        settings: generation settings for every row (``{"max_new_tokens": 64}``); columns
            named as in `SETTING_COLUMNS` override them row by row.
        concurrency, max_concurrency, requests_per_minute, retries, timeout_ms: as for
            ``completions.batch``, for each actor (see the module's note on budgets).
        **client_options: given to `emissary.EmissaryClient` (``api_key``, ``server_url``,
            ``proxy``, ...); by default each actor reads ``EMISSARY_CLIENT_API_KEY`` and
            ``EMISSARY_SERVER_URL`` from its own environment (Ray's ``runtime_env`` sets
            them cluster-wide). A key passed here travels to the actors in Ray's pickles.

    Works with Ray's ``numpy`` (a dict of arrays) and ``pandas`` batch formats.
    """

    def __init__(
        self,
        project_id: str,
        deployment_id: str,
        *,
        prompt_column: str = "prompt",
        settings: Mapping[str, Any] | None = None,
        concurrency: Concurrency = "auto",
        max_concurrency: int = 64,
        requests_per_minute: float | None = None,
        retries: RetryConfig | None = None,
        timeout_ms: float | None = None,
        **client_options: Any,
    ) -> None:
        self.project_id = project_id
        self.deployment_id = deployment_id
        self.prompt_column = prompt_column
        self.settings = dict(settings or {})
        self.options: dict[str, Any] = {
            "concurrency": concurrency,
            "max_concurrency": max_concurrency,
            "requests_per_minute": requests_per_minute,
            "retries": retries,
            "timeout_ms": timeout_ms,
        }
        self.client = EmissaryClient(**client_options)
        """The actor's client, reused across its batches."""

    def __call__(self, batch: Any) -> Any:
        """The batch with the completion columns added (same format as given)."""
        is_frame = hasattr(batch, "columns") and hasattr(batch, "assign")
        columns: Mapping[str, Sequence[Any]] = (
            {name: batch[name].tolist() for name in batch.columns} if is_frame else batch
        )
        if self.prompt_column not in columns:
            raise KeyError(
                f"the batch has no {self.prompt_column!r} column (its columns: "
                f"{', '.join(map(str, columns))}); pass prompt_column= to name it"
            )
        prompts = list(columns[self.prompt_column])
        overrides = [name for name in SETTING_COLUMNS if name in columns]
        bodies: list[Any] = []
        for row, prompt in enumerate(prompts):
            body: dict[str, Any] = {**self.settings, "prompt": _plain(prompt)}
            for name in overrides:
                value = _plain(columns[name][row])
                if value is not None and value == value:  # NaN: a missing value in pandas
                    body[name] = value
            bodies.append(body)
        results = self.client.deployments.completions.batch(
            project_id=self.project_id,
            deployment_id=self.deployment_id,
            requests=bodies,
            **self.options,
        )
        added = {
            "response": [r.completion.response if r.completion else None for r in results],
            "completion_id": [r.completion.id if r.completion else None for r in results],
            "request_id": [r.request_id for r in results],
            "error": [None if r.ok else f"{type(r.error).__name__}: {r.error}" for r in results],
        }
        if is_frame:
            return batch.assign(**added)
        numpy = importlib.import_module("numpy")  # Ray Data's own dependency

        output = dict(batch)
        for name, values in added.items():
            output[name] = numpy.array(values, dtype=object)
        return output

    def __del__(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (msgspec takes only the latter)."""
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, str | bytes) else value
