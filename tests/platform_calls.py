"""One example call per operation of `emissary._operations.OPERATIONS`, shared by the
contract, differential and lifecycle tests: the ids (awkward on purpose: each must travel as
one percent-encoded path segment), a request body per operation that has one (with ``0``,
``False`` and ``""`` set, and optional fields left unset), a field to merge with
``extra_body``, and the emulator world in which every example call succeeds.

`EXAMPLES` is keyed by operation name; a row of `OPERATIONS` without an entry fails the
tests that use it (see `example`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emissary import EmissaryClient
from emissary._operations import MULTIPART, Operation
from emissary.models import BaseModelSummary
from emissary.testing import DEFAULT_BASE_MODELS, Emulator, VirtualClock

BASE_MODEL = "org/Llama 3 ü"
"""A base model whose name needs encoding (added to the emulator's catalog)."""
PROJECT = "team/東 1?"
DEPLOYMENT = "dep #1%"
"""A pre-made project and its deployment (``Deployed`` from the start), their ids awkward."""
TRAINED_ON = "Llama-3.2-1B-Instruct"
"""The base model of the world's training job."""
ENCODED = {
    BASE_MODEL: "org%2FLlama%203%20%C3%BC",
    PROJECT: "team%2F%E6%9D%B1%201%3F",
    DEPLOYMENT: "dep%20%231%25",
}
"""Each awkward id as it must appear in the path, written out by hand (not computed with the
SDK's own quoting)."""
API_KEY = "contract-key"

UPLOAD = b"".join(b'{"prompt": "q%d", "completion": "a"}\n' % i for i in range(200))
UPLOAD_NAME = 'train "v1" é.jsonl'
UPLOAD_NAME_SENT = "train %22v1%22 é.jsonl"
"""`UPLOAD_NAME` as a multipart ``filename``: RFC 7578's escape of ``"`` only."""
UPLOAD_SHA256 = hashlib.sha256(UPLOAD).hexdigest()


@dataclass(frozen=True)
class Example:
    """An example call of one operation: its body keyword and body (strings may name the
    world's ids as ``{dataset_id}``), and `extra_body`, fields to merge into a JSON body
    (known fields, so the emulator still takes the body)."""

    keyword: str | None = None
    body: Any = None
    extra_body: Mapping[str, Any] = field(default_factory=dict)


_JOB_BODY = {
    "base_model": TRAINED_ON,
    "train_dataset_id": "{dataset_id}",
    "train_test_split_ratio": 0.25,
    "name": "job",
    "description": "",
    "parameters": {"epochs": 0, "learning_rate": 0.00002, "scheduler": "cosine"},
}
EXAMPLES: dict[str, Example] = {
    "base_models.list": Example(),
    "base_models.get": Example(),
    "projects.create": Example(
        "request", {"name": "Grüße"}, extra_body={"name": "named by extra_body"}
    ),
    "projects.list": Example(),
    "projects.get": Example(),
    "projects.delete": Example(),
    "datasets.create": Example(
        "request_body",
        {
            "file": {
                "file_name": UPLOAD_NAME,
                "content": UPLOAD,
                "content_type": "application/jsonl",
            },
            "name": "train",
        },
    ),
    "datasets.list": Example(),
    "datasets.get": Example(),
    "datasets.delete": Example(),
    "training_jobs.create": Example(
        "request_body", _JOB_BODY, extra_body={"description": "from extra_body"}
    ),
    "training_jobs.list": Example(),
    "training_jobs.get": Example(),
    "training_jobs.delete": Example(),
    "training_jobs.cancel": Example(),
    "training_jobs.list_checkpoints": Example(),
    "deployments.create": Example(
        "request_body",
        {"training_job_id": "{training_job_id}", "checkpoint": 2, "server_type": "on-demand"},
        extra_body={"name": "from extra_body"},
    ),
    "deployments.list": Example(),
    "deployments.get": Example(),
    "deployments.delete": Example(),
    "deployments.cancel": Example(),
    "deployments.completions.create": Example(
        "request_body",
        {"prompt": "Hi", "temperature": 0, "top_k": 0, "do_sample": False, "max_new_tokens": 3},
        extra_body={"top_p": 0.5},
    ),
    "deployments.chat.completions.create": Example(
        "request_body",
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ],
            "streaming": False,
            "temperature": 0,
            "max_new_tokens": 3,
        },
        extra_body={"top_p": 0.5},
    ),
    "deployments.embeddings.create": Example(
        "request_body",
        {"source_sentence": "a", "target_sentence": "b", "cosine": True, "manhattan": False},
        extra_body={"euclidean": True},
    ),
    "deployments.classification.create": Example(
        "request_body",
        {"source_sentence": "great"},
        extra_body={"source_sentence": "from extra_body"},
    ),
}


def example(operation: Operation[Any]) -> Example:
    """The example of `operation`, checked against its row: a body exactly where the row
    has one (a new row without an entry fails here, naming it)."""
    found = EXAMPLES.get(operation.name)
    assert found is not None, f"tests/platform_calls.py has no example for {operation.name}"
    assert (found.body is None) == (operation.body is None), operation.name
    assert bool(found.extra_body) == isinstance(operation.body, type), operation.name
    return found


def fill(value: Any, ids: Mapping[str, str]) -> Any:
    """`value` with each ``{name}`` in its strings replaced by ``ids[name]``."""
    if isinstance(value, str):
        return value.format_map(ids) if "{" in value else value
    if isinstance(value, dict):
        return {key: fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, ids) for item in value]
    return value


def arguments(operation: Operation[Any], ids: Mapping[str, str]) -> dict[str, Any]:
    """The keyword arguments of `operation`'s example call: its path's ids and its body."""
    kwargs: dict[str, Any] = {name: ids[name] for name in operation.parameters}
    found = example(operation)
    if found.keyword is not None:
        kwargs[found.keyword] = fill(found.body, ids)
    return kwargs


def sent_json(operation: Operation[Any], ids: Mapping[str, str]) -> Any:
    """The JSON the server must get for the example (the body as given), or None."""
    if operation.body is None or operation.body == MULTIPART:
        return None
    return fill(example(operation).body, ids)


def encoded_path(operation: Operation[Any], ids: Mapping[str, str]) -> str:
    """The path the example must be sent to, each id encoded as `ENCODED` says (the
    world's own ids, ``ds-...``, need no encoding)."""
    return operation.path.format_map(
        {name: ENCODED.get(ids[name], ids[name]) for name in operation.parameters}
    )


def method_of(client: Any, operation: Operation[Any], *, raw: bool = False) -> Any:
    """The public method of `operation` on `client` (or its ``with_raw_response`` twin)."""
    *namespaces, name = operation.name.split(".")
    target = client
    for namespace in namespaces:
        target = getattr(target, namespace)
    if raw:
        target = target.with_raw_response
    return getattr(target, name)


def emulator(clock: VirtualClock | None = None) -> Emulator:
    """An emulator (not started) with the awkward base model, project and deployment."""
    catalog = (*DEFAULT_BASE_MODELS, BaseModelSummary(name=BASE_MODEL, type="chat"))
    return Emulator(
        api_key=API_KEY,
        clock=clock,
        base_models=catalog,
        deployments=[(PROJECT, DEPLOYMENT)],
    )


def build_world(emu: Emulator, clock: VirtualClock) -> dict[str, str]:
    """Make every example call succeed on `emu` (started, on `clock`): a processed dataset
    and a training job that succeeded (4 checkpoints) in `PROJECT`; the ids of it all.
    The requests made are cleared from ``emu.requests``."""
    with EmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
        dataset = client.datasets.create(
            project_id=PROJECT,
            request_body={"file": {"file_name": "seed.jsonl", "content": b'{"x": 1}\n'}},
        )
        clock.advance(emu.scripts.dataset.processing_s)
        assert dataset.id is not None
        job = client.training_jobs.create(
            project_id=PROJECT,
            request_body={"base_model": TRAINED_ON, "train_dataset_id": dataset.id},
        )
        script = emu.scripts.training
        clock.advance(script.pending_s + script.running_s)
        assert job.id is not None
    emu.requests.clear()
    return {
        "base_model_name": BASE_MODEL,
        "project_id": PROJECT,
        "deployment_id": DEPLOYMENT,
        "dataset_id": dataset.id,
        "training_job_id": job.id,
    }


def same_json(sent: Any, expected: Any) -> bool:
    """Whether two parsed JSON values are equal, a bool never equal to a number (Python's
    ``False == 0`` would hide a ``false`` sent as ``0``)."""
    if isinstance(sent, bool) or isinstance(expected, bool):
        return type(sent) is type(expected) and sent == expected
    if isinstance(sent, dict):
        return (
            isinstance(expected, dict)
            and sent.keys() == expected.keys()
            and all(same_json(sent[key], expected[key]) for key in sent)
        )
    if isinstance(sent, list):
        return (
            isinstance(expected, list)
            and len(sent) == len(expected)
            and all(map(same_json, sent, expected))
        )
    return bool(sent == expected)
