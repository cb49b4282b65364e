"""The public names users and migrating code rely on, and the generated sync facade."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import emissary
from emissary import AsyncEmissaryClient, EmissaryClient, errors, models, utils
from emissary._async.resources import AsyncCompletions
from emissary._sync.resources import Completions

ROOT = Path(__file__).resolve().parent.parent


def test_generated_sync_code_is_fresh() -> None:
    proc = subprocess.run(
        [sys.executable, "scripts/generate_sync.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("sync", "async_"),
    [
        (EmissaryClient.__init__, AsyncEmissaryClient.__init__),
        (Completions.create, AsyncCompletions.create),
    ],
)
def test_sync_signatures_and_docs_match_the_async_ones(sync: object, async_: object) -> None:
    assert str(inspect.signature(sync)).replace("Async", "") == str(  # type: ignore[arg-type]
        inspect.signature(async_)  # type: ignore[arg-type]
    ).replace("Async", "")
    assert inspect.getdoc(sync) == inspect.getdoc(async_)
    assert not inspect.iscoroutinefunction(sync)


def test_migration_names_exist() -> None:
    for name in (
        "GetCompletionsFromDeploymentRequestBody",
        "GetCompletionsFromDeploymentResponseBody",
        "APIErrorInvalidInput",
        "APIErrorUnauthorized",
        "APIErrorNotFound",
        "SDKError",
    ):
        assert hasattr(models, name), name
    assert models.APIErrorNotFound is errors.APIErrorNotFound
    strategy = utils.BackoffStrategy(500, 5000, 1.5, 30000)
    config = utils.RetryConfig("backoff", strategy, False)
    assert config.backoff.exponent == 1.5 and not config.retry_connection_errors
    assert emissary.__version__


def test_error_tree() -> None:
    assert issubclass(errors.APITimeoutError, errors.APIConnectionError)
    for cls in (
        errors.SDKError,
        errors.APIConnectionError,
        errors.RequestValidationError,
        errors.ConfigurationError,
        errors.ClientClosedError,
    ):
        assert issubclass(cls, errors.EmissaryError)
    for cls in (
        errors.APIErrorInvalidInput,
        errors.APIErrorUnauthorized,
        errors.APIErrorNotFound,
        errors.ResponseValidationError,
    ):
        assert issubclass(cls, errors.SDKError)
    assert issubclass(errors.RequestValidationError, ValueError)
    assert issubclass(errors.RequestTypeError, TypeError)
    assert "EmissaryError" in (errors.__doc__ or "") and "APITimeoutError" in (errors.__doc__ or "")


def test_errors_and_settings_pickle() -> None:
    error = errors.RequestValidationError("bad", field="request_body.top_p")
    clone = pickle.loads(pickle.dumps(error))
    assert clone.field == "request_body.top_p" and str(clone) == "bad"
    sdk_error = errors.SDKError("API error occurred", 500, "body")
    assert pickle.loads(pickle.dumps(sdk_error)).status_code == 500
    assert pickle.loads(pickle.dumps(utils.DEFAULT_RETRY_CONFIG)) == utils.DEFAULT_RETRY_CONFIG


def test_public_things_have_docstrings() -> None:
    for module in (emissary, errors, models, utils):
        assert module.__doc__
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert obj.__doc__, f"{module.__name__}.{name}"
    for cls in (EmissaryClient, AsyncEmissaryClient, Completions, AsyncCompletions):
        for name, member in inspect.getmembers(cls):
            if not name.startswith("_") and callable(member):
                assert member.__doc__, f"{cls.__name__}.{name}"


def test_typed_package_marker() -> None:
    assert (Path(emissary.__file__).parent / "py.typed").exists()
