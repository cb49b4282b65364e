"""Pickling, for multiprocessing, Ray and Dask: clients travel as their settings and open
their own connections where they land (in-process, ``spawn`` and ``fork`` children);
results and errors come back through a pool; what travels with the API key."""

from __future__ import annotations

import collections.abc
import datetime
import enum
import multiprocessing
import os
import pickle
import ssl
import types
import typing
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from emissary import AsyncEmissaryClient, EmissaryClient, errors, models
from emissary.testing import Emulator
from emissary.utils import RetryBudget, RetryConfig

from .conftest import DEPLOYMENT, PROJECT
from .faults import run_python

pytestmark = pytest.mark.anyio

ARGS: dict[str, Any] = {
    "project_id": PROJECT,
    "deployment_id": DEPLOYMENT,
    "request_body": {"prompt": "pickled", "max_new_tokens": 3},
}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(deployments=[f"{PROJECT}/{DEPLOYMENT}"]) as emulator:
        yield emulator


def test_a_sync_client_round_trips_with_its_settings(emu: Emulator) -> None:
    config = RetryConfig.disabled()
    original = EmissaryClient(
        api_key=emu.api_key,
        server_url=emu.url,
        retry_config=config,
        timeout_ms=1234,
        default_headers={"X-Team": "search"},
        retry_budget=RetryBudget.unlimited(),
    )
    expected = original.deployments.completions.create(**ARGS)
    copy = pickle.loads(pickle.dumps(original))
    original.close()  # the copy has its own pool and loop thread
    with copy:
        assert copy.server_url == emu.url
        assert copy.deployments.completions.create(**ARGS) == expected
    assert emu.requests[-1].headers["X-Team"] == "search"
    assert pickle.loads(pickle.dumps(copy)).server_url == emu.url  # a closed one too


async def test_an_async_client_round_trips_onto_another_loop(emu: Emulator) -> None:
    async with AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url) as original:
        await original.deployments.completions.create(**ARGS)
        data = pickle.dumps(original)
    copy = pickle.loads(data)
    async with copy:
        assert (await copy.deployments.completions.create(**ARGS)).response


def test_a_with_options_client_pickles_as_a_client_of_its_own(emu: Emulator) -> None:
    with EmissaryClient(api_key=emu.api_key, server_url=emu.url) as parent:
        child = parent.with_options(default_headers={"X-Child": "1"}, timeout_ms=999)
        copy = pickle.loads(pickle.dumps(child))
    with copy:
        copy.deployments.completions.create(**ARGS)
    assert emu.requests[-1].headers["X-Child"] == "1"


def test_a_key_from_the_environment_is_read_again_where_the_copy_lands(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMISSARY_CLIENT_API_KEY", "key-of-the-parent")
    monkeypatch.setenv("EMISSARY_SERVER_URL", emu.url)
    data = pickle.dumps(EmissaryClient())
    assert b"key-of-the-parent" not in data and emu.url.encode() not in data
    monkeypatch.setenv("EMISSARY_CLIENT_API_KEY", emu.api_key)  # the worker's own key
    with pickle.loads(data) as copy:
        copy.deployments.completions.create(**ARGS)
    assert emu.requests[-1].headers["X-API-Key"] == emu.api_key


def test_a_key_given_as_an_argument_travels_in_the_pickle() -> None:
    data = pickle.dumps(EmissaryClient(api_key="given-key-123", server_url="https://h"))
    assert b"given-key-123" in data  # documented: a string key is part of the settings
    assert repr(pickle.loads(data)) == "EmissaryClient(server_url='https://h', api_key=<redacted>)"


def test_a_client_with_an_ssl_context_says_why_it_cannot_pickle() -> None:
    client = AsyncEmissaryClient(
        api_key="k", server_url="https://h", ssl_context=ssl.create_default_context()
    )
    with pytest.raises(TypeError, match=r"ssl_context= cannot be pickled.*ca_bundle=") as caught:
        pickle.dumps(client)
    assert isinstance(caught.value, errors.ClientNotPicklableError)
    assert isinstance(caught.value, errors.EmissaryError)


# --- into other processes ----------------------------------------------------------------


def _call_in_child(client: EmissaryClient, deployment: str) -> Any:
    """Runs in a pool worker: the pickled client, used there."""
    try:
        return client.deployments.completions.create(
            project_id=PROJECT, deployment_id=deployment, request_body={"prompt": "x"}
        )
    except errors.EmissaryError as error:
        return error
    finally:
        client.close()


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_clients_results_and_errors_cross_a_process_pool(emu: Emulator, method: str) -> None:
    client = EmissaryClient(api_key=emu.api_key, server_url=emu.url)
    client.deployments.completions.create(**ARGS)  # a live pool and loop thread, then fork
    context = multiprocessing.get_context(method)
    with context.Pool(2) as pool:
        jobs = [pool.apply_async(_call_in_child, (client, d)) for d in (DEPLOYMENT, "nope")]
        found, missing = (job.get(timeout=60) for job in jobs)
    assert isinstance(found, models.Completion) and found.response
    assert isinstance(missing, errors.APIErrorNotFound)
    assert missing.status_code == 404 and missing.request_id
    assert missing.data.code == "deployment_not_found"
    client.deployments.completions.create(**ARGS)  # the parent's client still works
    client.close()
    assert {r.peer for r in emu.requests[1:3]} & {r.peer for r in emu.requests[:1]} == set()


def test_a_pickled_client_works_in_a_fresh_interpreter(emu: Emulator, tmp_path: Any) -> None:
    path = tmp_path / "client.pickle"
    path.write_bytes(pickle.dumps(EmissaryClient(api_key=emu.api_key, server_url=emu.url)))
    result = run_python(
        f"""
        import pickle
        with open({str(path)!r}, "rb") as f:
            client = pickle.load(f)
        with client:
            print(client.deployments.completions.create(
                project_id={PROJECT!r}, deployment_id={DEPLOYMENT!r},
                request_body={{"prompt": "x"}}).response is not None)
        """
    )
    assert result.returncode == 0 and result.stdout.strip() == "True", result.stderr


# --- every model and error ---------------------------------------------------------------


def every_error() -> list[errors.EmissaryError]:
    raw = models.RawResponse(500, {"X-Request-Id": "r-1"}, b"{}", "https://h/v1")
    made: list[errors.EmissaryError] = []
    for name in errors.__all__:
        cls = getattr(errors, name)
        if issubclass(cls, errors.SDKError):
            data: Any = None
            if cls is errors.APIErrorInvalidInput:
                data = models.APIErrorInvalidInputData(status=400, error="bad")
            elif cls is errors.APIErrorUnauthorized:
                data = models.APIErrorUnauthorizedData(status=401, error="who")
            elif cls is errors.APIErrorNotFound:
                data = models.APIErrorNotFoundData(status=404, error="gone", code="x")
            error: errors.EmissaryError = (
                cls(data, 500, "{}", raw)
                if data is not None
                else cls("API error occurred", 500, "{}", raw)
            )
            error.request_id, error.retry_after = "r-1", 1.5  # type: ignore[attr-defined]
        elif issubclass(cls, errors.RequestValidationError):
            error = cls("bad field", field="request_body.prompt")
        else:
            error = cls("it failed")
        if isinstance(error, errors.SDKError | errors.APIConnectionError):
            error.retries_taken, error.elapsed = 2, datetime.timedelta(seconds=1.5)
            error.maybe_committed = True
        made.append(error)
    return made


@pytest.mark.parametrize("error", every_error(), ids=lambda e: type(e).__name__)
def test_every_error_pickles_with_its_attributes(error: errors.EmissaryError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)
    assert {k: repr(v) for k, v in vars(copy).items()} == {
        k: repr(v) for k, v in vars(error).items()
    }


def sample(kind: Any) -> Any:
    """A value of the type `kind` (a model field's), for `filled`."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Annotated:
        return sample(args[0])
    if origin is typing.Literal:
        return args[0]
    if origin in (typing.Union, types.UnionType):
        return sample(next(arg for arg in args if arg is not type(None)))
    if origin in (list, collections.abc.Sequence):
        return [sample(args[0])] if args else []
    if origin in (dict, collections.abc.Mapping):
        return {"k": sample(args[1])} if args else {}
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return next(iter(kind))
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return filled(kind)
    if isinstance(kind, type) and issubclass(kind, BaseException):
        return kind("x")
    simple = {str: "x", bool: True, int: 1, float: 0.5, bytes: b"x"}
    return simple.get(kind, "x")  # Any, object


def filled(cls: type[msgspec.Struct]) -> msgspec.Struct:
    """An instance of `cls` with each of its required fields given a value of its type."""
    fields = msgspec.structs.fields(cls)
    return cls(**{f.name: sample(f.type) for f in fields if f.required})


def test_every_model_pickles() -> None:
    seen = {models.BatchSuccess, models.BatchFailure, models.BatchResult, models.RawResponse}
    completion = models.Completion(id="c", response="r")
    values: list[Any] = [
        completion,
        models.CompletionRequest(prompt="p", max_new_tokens=3),
        models.RawResponse(200, {"a": "b"}, b"x", "https://h"),
        models.BatchSuccess(index=1, result=completion, request_id="r", retries_taken=1),
        models.BatchFailure(index=2, error=errors.APITimeoutError("slow")),
        models.APIResponse(
            status_code=200,
            headers={"X-Request-Id": "r"},
            content=b"{}",
            url="https://h/v1",
            idempotency_key="k",
            retries_taken=0,
            elapsed_s=0.1,
            parsed=completion,
        ),
    ]
    for name in models.__all__:  # every Struct (its required fields filled), every enum
        cls = getattr(models, name)
        if isinstance(cls, type) and issubclass(cls, msgspec.Struct) and cls not in seen:
            values.append(filled(cls))
        elif isinstance(cls, type) and issubclass(cls, enum.Enum):
            values += list(cls)
    values += [
        models.GetChatCompletionsFromDeploymentRequestBody(
            messages=[models.Messages(role="user", content="hi")], temperature=0.1
        ),
        models.CreateTrainingJobRequestBody(
            base_model="m", train_dataset_id="d", parameters={"a": 1}
        ),
        models.CreateDeploymentRequestBody(training_job_id="t", checkpoint=2),
        models.TrainingJobDetail(
            status="Queued", progress=3, train_dataset=models.DatasetSummary()
        ),
        models.GetEmbeddingsFromDeploymentResponseBody(
            id="e", response=models.Response(cosine_score=0.5)
        ),
    ]
    for value in values:
        copy = pickle.loads(pickle.dumps(value))
        assert repr(copy) == repr(value), type(value)
    assert os.environ.get("EMISSARY_CLIENT_API_KEY") is None  # the fixture keeps it clean
