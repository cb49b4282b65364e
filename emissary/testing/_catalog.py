"""The emulator's base models: what ``GET /v1/models`` lists and training jobs start from.

Two of each type (completion, chat, embeddings, classification); the first of each
supports ``server_type="serverless"``, the second does not. ``Emulator(base_models=[...])``
replaces the catalog.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..models import BaseModelSummary

_GENERATIVE = {"epochs": 3, "learning_rate": 0.0002, "batch_size": 8, "lora_rank": 16}
_ENCODER = {"epochs": 3, "learning_rate": 0.00002, "batch_size": 32}


def _model(name: str, kind: str, serverless: bool) -> BaseModelSummary:
    template = _GENERATIVE if kind in ("completion", "chat") else _ENCODER
    return BaseModelSummary(
        name=name, type=kind, parameter_template=dict(template), support_serverless=serverless
    )


DEFAULT_BASE_MODELS: tuple[BaseModelSummary, ...] = (
    _model("Llama-3.2-1B", "completion", True),
    _model("Mistral-7B-v0.3", "completion", False),
    _model("Llama-3.2-1B-Instruct", "chat", True),
    _model("Qwen2.5-7B-Instruct", "chat", False),
    _model("bge-small-en-v1.5", "embeddings", True),
    _model("e5-large-v2", "embeddings", False),
    _model("deberta-v3-base", "classification", True),
    _model("roberta-large", "classification", False),
)
"""The default catalog (see the module docstring)."""


def catalog(models: Iterable[BaseModelSummary]) -> dict[str, BaseModelSummary]:
    """The base models by name, in the order given; ValueError for a model without a name
    or a name given twice."""
    by_name: dict[str, BaseModelSummary] = {}
    for model in models:
        if (
            not isinstance(model, BaseModelSummary)
            or not isinstance(model.name, str)
            or not model.name
        ):
            raise ValueError(f"a base model is a BaseModelSummary with a name, got {model!r}")
        if model.name in by_name:
            raise ValueError(f"base model {model.name!r} is given twice")
        by_name[model.name] = model
    return by_name
