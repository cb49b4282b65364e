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
from emissary._async.resources import (
    AsyncCompletions,
)
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
    import datetime

    ended = errors.APIHostNotFoundError("the host 'x' does not exist")
    ended.retries_taken, ended.elapsed = 2, datetime.timedelta(seconds=1.5)
    clone = pickle.loads(pickle.dumps(ended))
    assert isinstance(clone, errors.ConfigurationError)
    assert (clone.retries_taken, clone.elapsed) == (2, datetime.timedelta(seconds=1.5))
    assert str(clone) == "the host 'x' does not exist [3 attempts over 1.5 s]"


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


def _frame_self(error: BaseException, cls: type) -> object:
    """The half-built `self` that a failing ``cls.__init__`` left on the traceback."""
    tb = error.__traceback__
    found = None
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("self")
        if isinstance(candidate, cls):
            found = candidate
        tb = tb.tb_next
    assert found is not None
    return found


@pytest.mark.parametrize("cls", [AsyncEmissaryClient, EmissaryClient])
def test_a_client_whose_constructor_raised_still_has_a_repr(cls: type) -> None:
    # Tracebacks that show locals (rich, Sentry, capture_locals) call repr(self) there.
    with pytest.raises(errors.ConfigurationError) as caught:
        cls(api_key="k")  # no server URL
    half_built = _frame_self(caught.value, cls)
    assert repr(half_built) == f"{cls.__name__}(<not initialised>)"


@pytest.mark.parametrize("cls", [AsyncEmissaryClient, EmissaryClient])
def test_userinfo_in_the_server_url_is_redacted_in_reprs_and_messages(cls: type) -> None:
    client = cls(api_key="k", server_url="https://bob:hunter2@api.example.com")
    assert (
        repr(client)
        == f"{cls.__name__}(server_url='https://***@api.example.com', api_key=<redacted>)"
    )
    assert "hunter2" not in repr(vars(client))
    for bad in ("ftp://bob:hunter2@host", "https://bob:hunter2@host/?q=1"):
        with pytest.raises(errors.ConfigurationError) as caught:
            cls(api_key="k", server_url=bad)
        assert "hunter2" not in str(caught.value) and "***@" in str(caught.value)


def test_type_checkers_catch_a_misspelt_or_mistyped_body_field(tmp_path: Path) -> None:
    from mypy import api

    snippet = tmp_path / "user_code.py"
    snippet.write_text(
        "from emissary import EmissaryClient\n"
        "from emissary.models import CompletionRequestDict\n"
        "client = EmissaryClient(api_key='k', server_url='http://127.0.0.1:1')\n"
        "create = client.deployments.completions.create\n"
        "create(project_id='p', deployment_id='d', request_body={'prompt': 'ok', 'top_k': 5})\n"
        "body: CompletionRequestDict = {'prompt': 'ok'}\n"
        "create(project_id='p', deployment_id='d', request_body=body)\n"
        "create(project_id='p', deployment_id='d', request_body={'promt': 'typo'})\n"
        "create(project_id='p', deployment_id='d', request_body={'prompt': 1})\n"
    )
    out, _, status = api.run(
        ["--strict", "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", str(snippet)]
    )
    errors_by_line = sorted(
        {int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line}
    )
    assert status == 1
    assert errors_by_line == [8, 9], out  # the typo and the wrong type; the rest type-checks


def _package_imports() -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports when it runs (imports
    under ``if TYPE_CHECKING:`` left out, imports inside functions counted)."""
    import ast

    package = Path(emissary.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        skipped = {
            id(child)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for child in ast.walk(node)
        }
        edges: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped or not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name.startswith("emissary")}
                continue
            base = here
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = (
                (base + "." + node.module if node.module else base)
                if node.level
                else (node.module or "")
            )
            if not module.startswith("emissary"):
                continue
            for alias in node.names:  # `from . import errors` names a module
                candidate = f"{module}.{alias.name}"
                submodule = package.parent / Path(*candidate.split("."))
                edges.add(
                    candidate
                    if submodule.with_suffix(".py").exists() or submodule.is_dir()
                    else module
                )
        graph[name] = edges - {name}
    return graph


def test_errors_imports_nothing_and_the_package_has_no_import_cycle() -> None:
    graph = _package_imports()
    assert graph["emissary.errors"] == set()
    # The resources see a client only through a Protocol: not even for typing do they
    # import it.
    resources = (Path(emissary.__file__).parent / "_async" / "resources.py").read_text()
    assert "from .client import" not in resources and "._async.client" not in resources
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, emissary.errors; print(sorted(sys.modules))"],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    loaded = [m for m in proc.stdout.strip()[1:-1].replace("'", "").split(", ") if m]
    assert [m for m in loaded if m.startswith("emissary")] == [
        "emissary",
        "emissary._version",
        "emissary.errors",
    ]
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in done:
            return
        assert module not in visiting, "import cycle: " + " -> ".join([*visiting, module])
        visiting.append(module)
        for target in sorted(graph.get(module, ())):
            visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def _twins() -> list[tuple[type, type]]:
    """Every generated sync class and the async class it comes from."""
    from emissary._async import resources as async_resources
    from emissary._sync import resources as sync_resources

    pairs: list[tuple[type, type]] = [(EmissaryClient, AsyncEmissaryClient)]
    for name, cls in vars(sync_resources).items():
        if isinstance(cls, type) and cls.__module__ == sync_resources.__name__:
            private = "_" if name.startswith("_") else ""  # a generic base: _Batches
            pairs.append((cls, getattr(async_resources, f"{private}Async{name[len(private) :]}")))
    return pairs


@pytest.mark.parametrize(("sync_cls", "async_cls"), _twins(), ids=lambda cls: cls.__name__)
def test_the_sync_facade_has_every_public_member_of_the_async_core(
    sync_cls: type, async_cls: type
) -> None:
    def public(cls: type) -> dict[str, object]:
        names = {n for n in dir(cls) if not n.startswith("_")}
        names |= {n for n in getattr(cls, "__annotations__", {}) if not n.startswith("_")}
        return {n: inspect.getattr_static(cls, n, None) for n in names}

    def union(annotation: object) -> str:
        """The annotation with "Async" dropped and its repeated union members once
        (``Iterable[X] | AsyncIterable[X]`` is ``Iterable[X]`` in the sync facade)."""
        text, members, depth, start = str(annotation).replace("Async", ""), [], 0, 0
        for at, char in enumerate(text + " | "):
            depth += {"[": 1, "]": -1}.get(char, 0)
            if (depth == 0 and text[at : at + 3] == " | ") or at == len(text):
                member = text[start:at].strip()
                if member and member not in members:
                    members.append(member)
                start = at + 3
        return " | ".join(members)

    def shape(function: object) -> list[tuple[str, object, object, str]]:
        signature = inspect.signature(function)  # type: ignore[arg-type]
        params = [
            (p.name, p.kind, p.default, union(p.annotation))
            for p in signature.parameters.values()
            if p.name != "self"
        ]
        returns = str(signature.return_annotation).replace("Async", "").replace("_Client", "")
        if function in raw_methods and not returns.startswith("APIResponse["):
            returns = f"APIResponse[{returns}]"  # raw(...) changes only the type
        return [*params, ("return", None, None, returns.replace(sync_cls.__name__, ""))]

    raw_methods = {
        member
        for member in vars(async_cls).values()
        if async_cls.__name__.endswith("WithRawResponse") and inspect.isfunction(member)
    }

    sync_members, async_members = public(sync_cls), public(async_cls)
    assert set(sync_members) == set(async_members)
    for name, member in async_members.items():
        twin = sync_members[name]
        if inspect.isfunction(member):
            assert shape(twin) == shape(member), name
            assert not inspect.iscoroutinefunction(twin), name
        else:
            assert isinstance(twin, property) == isinstance(member, property), name


def test_type_checkers_see_the_exact_result_of_plain_raw_and_sync_calls(tmp_path: Path) -> None:
    from mypy import api

    snippet = tmp_path / "user_code.py"
    snippet.write_text(
        "from emissary import AsyncEmissaryClient, EmissaryClient\n"
        "client = EmissaryClient(api_key='k', server_url='http://127.0.0.1:1')\n"
        "reveal_type(client.deployments.get(project_id='p', deployment_id='d'))\n"
        "reveal_type(client.deployments.with_raw_response.get(project_id='p', deployment_id='d'))\n"
        "reveal_type(client.training_jobs.list(project_id='p'))\n"
        "reveal_type(client.projects.delete(project_id='p', missing_ok=True))\n"
        "async def main(a: AsyncEmissaryClient) -> None:\n"
        "    reveal_type(await a.deployments.get(project_id='p', deployment_id='d'))\n"
        "    reveal_type(await a.datasets.with_raw_response.list(project_id='p'))\n"
        "    await a.deployments.get(project_id='p', deployment_id='d', extra_body={})\n"
    )
    out, _, status = api.run(
        ["--strict", "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", str(snippet)]
    )
    revealed = [
        line.split('Revealed type is "')[1][:-1] for line in out.splitlines() if "Revealed" in line
    ]
    assert revealed == [
        "emissary.models._platform.DeploymentDetail",
        "emissary.models._results.APIResponse[emissary.models._platform.DeploymentDetail]",
        "list[emissary.models._platform.TrainingJobSummary]",
        "None",
        "emissary.models._platform.DeploymentDetail",
        "emissary.models._results.APIResponse[list[emissary.models._platform.DatasetSummary]]",
    ], out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert status == 1 and len(errors) == 1 and '"extra_body"' in errors[0], out
