"""Inference for Ray Data: ``dataset.map_batches(Completions, fn_constructor_kwargs=...)``.

    import ray
    from emissary.integrations.ray import Completions

    results = ray.data.from_items([{"prompt": p} for p in prompts]).map_batches(
        Completions,
        fn_constructor_kwargs={"project_id": "my-project", "deployment_id": "my-deployment"},
        compute=ray.data.ActorPoolStrategy(size=4),  # 4 actors (not concurrency=4: deprecated)
        batch_size=64,
    )

One class per inference endpoint, each used the same way:

==================  ==========================  ===========================================
class               input columns               output columns added
==================  ==========================  ===========================================
`Completions`       ``prompt`` (or              ``response``, ``completion_id``
                    ``prompt_column=``), and
                    the generation settings
`ChatCompletions`   ``messages`` (a list of     ``response``, ``completion_id``
                    ``{role, content}``) or
                    ``prompt`` (one user
                    message), and the settings
`Embeddings`        ``source_sentence``,        ``source_embedding``, ``target_embedding``
                    ``target_sentence``,        (lists of floats), ``cosine_score``,
                    ``cosine``, ``manhattan``,  ``manhattan_distance``,
                    ``euclidean``               ``euclidean_distance`` (None unless asked
                                                for), ``embedding_id``
`Classifications`   ``source_sentence``         ``predicted_class``, ``classification_id``
==================  ==========================  ===========================================

and every class adds ``request_id`` and ``error`` after them.

A column named as a field of the endpoint's request body gives that field, row by row (over
the constructor's ``settings``); a missing, null or NaN value leaves the field out, and
numpy values become Python ones. Each actor builds one `emissary.EmissaryClient` and reuses
it for every batch it gets; the rows of a batch go through the endpoint's ``batch``
(concurrent, bounded, adaptive, Retry-After honoured), never one at a time. The output
batch is the input batch (in the same format, every column kept) plus the columns above:
``error`` is None for a row that succeeded, else ``"TypeName: message"`` (and the result
columns None). A failing row, bad input included, never fails the job. Other column names?
``Dataset.rename_columns`` first.

Budgets are per actor: to keep a deployment's total under N requests in flight (or R a
minute) with A actors, give each ``max_concurrency=N // A`` (``requests_per_minute=R / A``).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from .. import EmissaryClient
from .._batch import Concurrency
from ..errors import RequestValidationError
from ..models import (
    BatchFailure,
    BatchResult,
    GetChatCompletionsFromDeploymentRequestBody,
    GetClassificationFromDeploymentRequestBody,
    GetEmbeddingsFromDeploymentRequestBody,
)
from ..utils import RetryConfig

__all__ = ["SETTING_COLUMNS", "ChatCompletions", "Classifications", "Completions", "Embeddings"]

SETTING_COLUMNS = (
    "max_new_tokens",
    "temperature",
    "top_p",
    "top_k",
    "no_repeat_ngram_size",
    "do_sample",
)
"""Generation settings a batch may carry as columns, for `Completions` and
`ChatCompletions` (a row's value wins over the constructor's ``settings``; a missing or
null value leaves the setting out)."""

_BatchCall = Callable[..., Sequence[BatchResult[Any]]]
"""An endpoint's ``batch`` method."""


class _Endpoint:
    """What every class here shares: the constructor's arguments, and one `__call__` that
    makes a request body of each row, calls the endpoint's ``batch`` and adds the output
    columns. A subclass says which endpoint (`_batch`), which columns are body fields
    (`_fields`) and how else a row makes its body (`_body`), and which columns the result
    gives (`_outputs`, `_values`)."""

    _fields: ClassVar[tuple[str, ...]]
    """The body fields read from columns of the same name."""
    _outputs: ClassVar[tuple[str, ...]]
    """The columns added from a row's result, before ``request_id`` and ``error``."""

    def __init__(
        self,
        project_id: str,
        deployment_id: str,
        *,
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

    def _batch(self) -> _BatchCall:
        raise NotImplementedError

    def _check(self, columns: Mapping[str, Sequence[Any]]) -> None:
        """Refuse a batch that cannot be used at all (by default, none)."""

    def _body(
        self, body: dict[str, Any], columns: Mapping[str, Sequence[Any]], row: int
    ) -> dict[str, Any]:
        """Row `row`'s body, given the fields its columns gave (`body`); a
        `RequestValidationError` is that row's error."""
        return body

    def _values(self, result: Any) -> tuple[Any, ...]:
        """The `_outputs` columns' values from a row's result."""
        raise NotImplementedError

    def __call__(self, batch: Any) -> Any:
        """The batch with the output columns added (same format as given)."""
        is_frame = hasattr(batch, "columns") and hasattr(batch, "assign")
        columns: Mapping[str, Sequence[Any]] = (
            {name: batch[name].tolist() for name in batch.columns} if is_frame else batch
        )
        self._check(columns)
        size = len(next(iter(columns.values()), ()))
        fields = [name for name in self._fields if name in columns]
        results: list[BatchResult[Any] | None] = [None] * size
        sent: list[int] = []
        bodies: list[dict[str, Any]] = []
        for row in range(size):
            body = dict(self.settings)
            for name in fields:
                value = _plain(columns[name][row])
                if not _missing(value):
                    body[name] = value
            try:
                bodies.append(self._body(body, columns, row))
            except RequestValidationError as refused:
                results[row] = BatchFailure(index=row, error=refused)
            else:
                sent.append(row)
        answers = self._batch()(
            project_id=self.project_id,
            deployment_id=self.deployment_id,
            requests=bodies,
            **self.options,
        )
        for row, answer in zip(sent, answers, strict=True):
            results[row] = answer
        names = (*self._outputs, "request_id", "error")
        added: dict[str, list[Any]] = {name: [] for name in names}
        for result in results:
            assert result is not None  # every row was sent or refused
            if result.ok:
                row_values = (*self._values(result.result), result.request_id, None)
            else:
                error = f"{type(result.error).__name__}: {result.error}"
                row_values = (*(None for _ in self._outputs), result.request_id, error)
            for name, value in zip(names, row_values, strict=True):
                added[name].append(value)
        if is_frame:
            return batch.assign(**{name: _objects(column) for name, column in added.items()})
        output = dict(batch)
        for name, column in added.items():
            output[name] = _objects(column)
        return output

    def __del__(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()


class Completions(_Endpoint):
    """A callable class for ``Dataset.map_batches``: a completion for every row.

        results = dataset.map_batches(  # rows {"prompt": ..., "max_new_tokens": ...}
            Completions,
            fn_constructor_kwargs={
                "project_id": "my-project",
                "deployment_id": "my-deployment",
                "settings": {"temperature": 0.2},
            },
            compute=ray.data.ActorPoolStrategy(size=2),
        )  # rows {"prompt", "max_new_tokens", "response", "completion_id", "request_id", "error"}

    Arguments:
        project_id, deployment_id: where the completions come from.
        prompt_column: the column holding each row's prompt (default ``prompt``; a batch
            without it fails the job, a null prompt is its row's error).
        settings: generation settings for every row (``{"max_new_tokens": 64}``); columns
            named as in `SETTING_COLUMNS` override them row by row.
        concurrency, max_concurrency, requests_per_minute, retries, timeout_ms: as for
            ``completions.batch``, for each actor (see the module's note on budgets).
        **client_options: given to `emissary.EmissaryClient` (``api_key``, ``server_url``,
            ``proxy``, ...); by default each actor reads ``EMISSARY_CLIENT_API_KEY`` and
            ``EMISSARY_SERVER_URL`` from its own environment (Ray's ``runtime_env`` sets
            them cluster-wide). A key passed here travels to the actors in Ray's pickles.

    Adds ``response`` (the text), ``completion_id``, ``request_id`` and ``error``. Works
    with Ray's ``numpy`` (a dict of arrays) and ``pandas`` batch formats.
    """

    _fields = SETTING_COLUMNS
    _outputs = ("response", "completion_id")

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
        super().__init__(
            project_id,
            deployment_id,
            settings=settings,
            concurrency=concurrency,
            max_concurrency=max_concurrency,
            requests_per_minute=requests_per_minute,
            retries=retries,
            timeout_ms=timeout_ms,
            **client_options,
        )
        self.prompt_column = prompt_column

    def _batch(self) -> _BatchCall:
        return self.client.deployments.completions.batch

    def _check(self, columns: Mapping[str, Sequence[Any]]) -> None:
        if self.prompt_column not in columns:
            raise KeyError(
                f"the batch has no {self.prompt_column!r} column (its columns: "
                f"{', '.join(map(str, columns))}); pass prompt_column= to name it"
            )

    def _body(
        self, body: dict[str, Any], columns: Mapping[str, Sequence[Any]], row: int
    ) -> dict[str, Any]:
        return {**body, "prompt": _plain(columns[self.prompt_column][row])}

    def _values(self, result: Any) -> tuple[Any, ...]:
        return result.response, result.id


class ChatCompletions(_Endpoint):
    """A callable class for ``Dataset.map_batches``: a chat reply for every row.

        results = dataset.map_batches(  # rows {"messages": [{"role": ..., "content": ...}]}
            ChatCompletions,            # or {"prompt": ...}: one user message
            fn_constructor_kwargs={
                "project_id": "my-project",
                "deployment_id": "my-deployment",
                "settings": {"max_new_tokens": 64},
            },
            compute=ray.data.ActorPoolStrategy(size=2),
        )  # the input columns and "response", "completion_id", "request_id", "error"

    A row's conversation is its ``messages`` value (a list of ``{"role": "system" | "user"
    | "assistant", "content": ...}``, oldest first), or else its ``prompt`` value as one
    user message; a row with neither is its own error (the job goes on). The generation
    settings (`SETTING_COLUMNS`) and ``streaming`` come from ``settings`` and same-named
    columns, as for `Completions`.

    Arguments: those of `Completions` but ``prompt_column``.

    Adds ``response`` (the reply), ``completion_id`` (the chat completion's id),
    ``request_id`` and ``error``.
    """

    _fields = GetChatCompletionsFromDeploymentRequestBody.__struct_fields__
    _outputs = ("response", "completion_id")

    def _batch(self) -> _BatchCall:
        return self.client.deployments.chat.completions.batch

    def _body(
        self, body: dict[str, Any], columns: Mapping[str, Sequence[Any]], row: int
    ) -> dict[str, Any]:
        if "messages" in body:
            return body
        prompt = _plain(columns["prompt"][row]) if "prompt" in columns else None
        if _missing(prompt):
            raise RequestValidationError(
                "the row has no conversation: neither a 'messages' nor a 'prompt' value",
                field="request_body.messages",
            )
        return {**body, "messages": [{"role": "user", "content": prompt}]}

    def _values(self, result: Any) -> tuple[Any, ...]:
        return result.response, result.id


class Embeddings(_Endpoint):
    """A callable class for ``Dataset.map_batches``: the embeddings of every row's two
    sentences, and how close they are if asked.

        results = dataset.map_batches(  # rows {"source_sentence": ..., "target_sentence": ...}
            Embeddings,
            fn_constructor_kwargs={
                "project_id": "my-project",
                "deployment_id": "my-deployment",
                "settings": {"cosine": True},
            },
            compute=ray.data.ActorPoolStrategy(size=2),
        )  # the input columns and "source_embedding", "target_embedding", "cosine_score", ...

    Body fields from ``settings`` and same-named columns: ``source_sentence``,
    ``target_sentence`` (both required: a row without one is its own error), ``cosine``,
    ``manhattan``, ``euclidean`` (True asks for that comparison).

    Arguments: those of `Completions` but ``prompt_column``.

    Adds ``source_embedding`` and ``target_embedding`` (each sentence's vector, a list of
    floats), ``cosine_score``, ``manhattan_distance`` and ``euclidean_distance`` (None
    unless asked for), ``embedding_id``, ``request_id`` and ``error``: the same columns
    for every row, whatever it asked.
    """

    _fields = GetEmbeddingsFromDeploymentRequestBody.__struct_fields__
    _outputs = (
        "source_embedding",
        "target_embedding",
        "cosine_score",
        "manhattan_distance",
        "euclidean_distance",
        "embedding_id",
    )

    def _batch(self) -> _BatchCall:
        return self.client.deployments.embeddings.batch

    def _values(self, result: Any) -> tuple[Any, ...]:
        response = result.response
        vectors = response.embeddings if response is not None else None
        return (
            vectors.text1 if vectors is not None else None,
            vectors.text2 if vectors is not None else None,
            response.cosine_score if response is not None else None,
            response.manhattan_distance if response is not None else None,
            response.euclidean_distance if response is not None else None,
            result.id,
        )


class Classifications(_Endpoint):
    """A callable class for ``Dataset.map_batches``: the class of every row's sentence.

        results = dataset.map_batches(  # rows {"source_sentence": ...}
            Classifications,
            fn_constructor_kwargs={"project_id": "my-project", "deployment_id": "my-deployment"},
            compute=ray.data.ActorPoolStrategy(size=2),
        )  # the input columns and "predicted_class", "classification_id", "request_id", "error"

    The body is the ``source_sentence`` column (required: a row without one is its own
    error). A ``label`` column, say the expected class, is kept as it is.

    Arguments: those of `Completions` but ``prompt_column``.

    Adds ``predicted_class`` (the deployment's answer), ``classification_id``,
    ``request_id`` and ``error``.
    """

    _fields = GetClassificationFromDeploymentRequestBody.__struct_fields__
    _outputs = ("predicted_class", "classification_id")

    def _batch(self) -> _BatchCall:
        return self.client.deployments.classification.batch

    def _values(self, result: Any) -> tuple[Any, ...]:
        return result.response, result.id


def _plain(value: Any) -> Any:
    """`value` as plain Python values (msgspec encodes only those): numpy scalars and
    arrays (``messages`` from Ray arrives as an array of dicts) become Python scalars and
    lists, within dicts and lists too."""
    if isinstance(value, str):
        return value if type(value) is str else str(value)  # numpy.str_ too
    if isinstance(value, Mapping):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    tolist = getattr(value, "tolist", None)  # a numpy array or scalar (numpy.float64 too)
    if callable(tolist):
        plain = tolist()
        return plain if plain is value else _plain(plain)
    return value


def _missing(value: Any) -> bool:
    """No value: None, NaN (pandas' missing number) or pandas' NA and NaT."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")


def _objects(values: list[Any]) -> Any:
    """A one-dimensional numpy array of `values` as they are (lists stay elements, never a
    second dimension)."""
    numpy = importlib.import_module("numpy")  # Ray Data's own dependency
    array = numpy.empty(len(values), dtype=object)
    for index, value in enumerate(values):
        array[index] = value
    return array
