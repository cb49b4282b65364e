"""The code in README.md and docs/*.md: every ```python block passes ``mypy --strict``, and
the blocks that can run quickly run, as written.

A block that is a fragment (it uses a ``client`` or ``prompts`` made elsewhere) declares
what it assumes in an HTML comment on the line(s) just above it, which GitHub does not show::

    <!-- prelude: from emissary import EmissaryClient; client: EmissaryClient -->

The prelude is Python (imports and typed declarations) and goes before the block; nothing
else does, so a block without one must stand on its own. Each block becomes a module of its
own, laid out so that mypy's line numbers are the Markdown file's. Ray, Dask and pandas are
not in the ``test`` extra: to mypy their modules are ``Any`` here, installed or not (their
recipes run for real in ``nox -s distributed``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from emissary import EmissaryClient, errors
from emissary.testing import (
    DEFAULT_BASE_MODELS,
    VIRTUAL_EPOCH,
    DatasetScript,
    DeploymentScript,
    Emulator,
    TrainingScript,
    VirtualClock,
    instant_retries,
)

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent  # this environment's scripts: emissary, ...

# An optional prelude comment ending on the line just above a fence, then the fenced block.
_BLOCK = re.compile(
    r"(?:^<!--[ \t]*prelude:(?P<prelude>(?:(?!-->).)*)-->[ \t]*\n)?"
    r"^```(?P<lang>[\w-]*)[ \t]*\n(?P<code>.*?)^```[ \t]*$",
    re.S | re.M,
)
UNTYPED = ("ray", "dask", "distributed", "pandas")
"""Third-party frameworks the docs use that the ``test`` extra does not install."""


@dataclass(frozen=True)
class Block:
    """One fenced block of a Markdown file."""

    doc: Path
    lang: str
    code: str
    prelude: str
    line: int
    """Where it starts: its prelude comment's first line, or its opening fence's."""
    fence: int
    """The line of its opening fence (its code starts on the next one)."""

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.fence}"

    def module(self) -> str:
        """The prelude and the code as a module whose line numbers are the Markdown's."""
        prelude = textwrap.dedent(self.prelude).strip().splitlines()
        room = self.fence - self.line  # the lines of the prelude comment
        assert len(prelude) <= max(room, 0), f"{self.where}: one prelude statement per line"
        padding = [""] * (self.line - 1) + prelude + [""] * (room - len(prelude) + 1)
        return "\n".join([*padding, ""]) + self.code  # the code after its fence

    def run(self, **names: object) -> dict[str, object]:
        """Execute the block as a script (``__name__ == "__main__"``); its globals."""
        namespace: dict[str, object] = {"__name__": "__main__", **names}
        exec(compile(self.module(), str(self.doc), "exec"), namespace)
        return namespace


def blocks(doc: Path, lang: str = "python") -> list[Block]:
    """The blocks of `doc` in `lang`, in order."""
    text = doc.read_text()
    found = []
    for match in _BLOCK.finditer(text):
        if match["lang"] == lang:
            line = text.count("\n", 0, match.start()) + 1
            prelude = match["prelude"]
            fence = line + (prelude.count("\n") + 1 if prelude is not None else 0)
            found.append(Block(doc, lang, match["code"], prelude or "", line, fence))
    return found


def block_with(doc: Path, text: str, lang: str = "python") -> Block:
    """The one block of `doc` in `lang` whose code holds `text`."""
    (block,) = [b for b in blocks(doc, lang) if text in b.code]
    return block


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without Emissary or proxy settings, plus `extra`."""
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EMISSARY_") and k.lower() not in proxies
    }
    return {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", **extra}


# --- Every Python block type-checks ------------------------------------------------------


def test_every_python_block_passes_mypy_strict(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    from mypy import api

    modules: dict[str, Block] = {}
    for block in (b for doc in DOCS for b in blocks(doc)):
        name = f"{block.doc.stem.lower()}_line{block.fence}"
        (tmp_path / f"{name}.py").write_text(block.module())
        modules[name] = block
    assert len(modules) >= 15, "the docs lost their examples?"
    config = tmp_path / "mypy.ini"
    config.write_text(
        textwrap.dedent(
            f"""\
            [mypy]
            strict = True
            python_version = 3.10
            mypy_path = {ROOT}
            # A class can derive from Any only when its base comes from the modules below.
            disallow_subclassing_any = False

            [mypy-emissary.*]
            follow_imports = silent

            [mypy-{",".join(f"{name}.*" for name in UNTYPED)}]
            follow_imports = skip
            ignore_missing_imports = True
            """
        )
    )
    # Kept between runs (mypy checks the cache is fresh): a few seconds once warm.
    pytest_cache = getattr(pytestconfig, "cache", None)  # None with -p no:cacheprovider
    cache = pytest_cache.mkdir("mypy-docs") if pytest_cache else tmp_path / "mypy-cache"
    stdout, stderr, status = api.run(
        ["--config-file", str(config), "--cache-dir", str(cache), "--no-error-summary"]
        + [str(tmp_path / f"{name}.py") for name in modules]
    )
    problems = []
    for line in stdout.splitlines():  # each at its place in the Markdown file
        match = re.match(r"(?:.*[/\\])?(\w+)\.py:(\d+): (.*)", line)
        if match and match[1] in modules:
            line = f"{modules[match[1]].doc.relative_to(ROOT)}:{match[2]}: {match[3]}"
        problems.append(line)
    assert status == 0 and not problems, "\n".join(problems) + stderr


def test_a_blocks_module_keeps_the_markdown_line_numbers() -> None:
    for doc in DOCS:
        lines = doc.read_text().splitlines()
        for block in blocks(doc):
            module = block.module().splitlines()
            assert module[block.fence :] == lines[block.fence : len(module)]
            assert len(module) - block.fence == block.code.count("\n")


# --- Install commands: what works today, and extras that exist -----------------------------


def test_every_extra_named_in_an_install_command_exists() -> None:
    from importlib.metadata import metadata  # (tomllib is 3.11+)

    extras = set(metadata("emissary-python").get_all("Provides-Extra") or [])
    paths = [*DOCS, ROOT / "examples" / "ray_pipeline.py"]
    named = set()
    for path in paths:
        text = path.read_text()
        for name in re.findall(r"'(?:\.|emissary-python)\[(\w+)\]'", text):
            assert name in extras, f"{path.name}: pyproject.toml has no extra {name!r}"
            named.add(name)
        # The name it will have on PyPI always comes with the spelling that works today.
        published = set(re.findall(r"'emissary-python\[(\w+)\]'", text))
        today = set(re.findall(r"'\.\[(\w+)\]'", text))
        assert published <= today, f"{path.name}: say pip install '.[...]' (from a checkout)"
    assert {"otel", "truststore", "ray", "distributed"} <= named


# --- The README's tests pass, as written -------------------------------------------------


def test_the_readmes_tests_pass_under_pytest(tmp_path: Path) -> None:
    """Both, the async one too: anyio's plugin, the marker and the fixture are enough."""
    block = block_with(README, "async def test_my_async_feature")
    (tmp_path / "test_my_app.py").write_text(block.code)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_app.py"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=clean_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\b2 passed\b", proc.stdout), proc.stdout


# --- The README's tour: base models to a deployed model, on virtual time ------------------


def on_the_clock(monkeypatch: pytest.MonkeyPatch, clock: VirtualClock) -> None:
    """``from emissary import EmissaryClient`` in a script gets a client whose retries and
    waits sleep on `clock` (the emulator's): hours of work take no time."""
    import emissary

    class OnTheClock(EmissaryClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            clock.install(self)

    monkeypatch.setattr(emissary, "EmissaryClient", OnTheClock)


def test_the_readmes_tour_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The script, configured from the environment, against an emulator whose training
    takes 10 minutes: its client's waits sleep on the emulator's virtual clock."""
    block = block_with(README, "client.base_models.list()")
    assert not block.prelude
    clock = VirtualClock()
    (tmp_path / "train.jsonl").write_bytes(TRAIN)
    monkeypatch.chdir(tmp_path)
    on_the_clock(monkeypatch, clock)
    with Emulator(clock=clock) as emu:
        emu.scripts.dataset = DatasetScript(processing_s=20)
        emu.scripts.training = TrainingScript(pending_s=30, running_s=600, checkpoints=4)
        emu.scripts.deployment = DeploymentScript(pending_s=5, deploying_s=60)
        monkeypatch.setenv("EMISSARY_SERVER_URL", emu.url)
        monkeypatch.setenv("EMISSARY_CLIENT_API_KEY", emu.api_key)
        block.run()
        assert [r.operation for r in emu.requests if r.method == "POST"] == [
            "projects.create",
            "datasets.create",
            "training_jobs.create",
            "deployments.create",
            "deployments.chat.completions.create",
        ]
        (project,) = [p for p in emu.projects if p != "demo-project"]
        (upload,) = emu.uploads
        assert (upload.filename, upload.size) == ("train.jsonl", len(TRAIN))
        polled = [r for r in emu.requests if r.operation == "training_jobs.get"]
        job = polled[0].path_params["training_job_id"]
        assert len(emu.polls("datasets.get", upload.dataset_id)) <= 8  # 20 s: from every 2 s
        assert len(emu.polls("training_jobs.get", job)) <= 25  # 630 s: not every 2 s
        (deployment,) = emu.projects[project]
        assert len(emu.polls("deployments.get", deployment)) <= 12  # 65 s
    # Each wait ends within a poll interval (at most 2 minutes) of the end of its work.
    assert 20 + 630 + 65 <= clock.now() - VIRTUAL_EPOCH < 20 + 630 + 65 + 3 * 120
    models, reply = capsys.readouterr().out.splitlines()
    assert models == str([model.name for model in DEFAULT_BASE_MODELS])
    assert reply and len(reply.split()) == 16  # the emulator's default length


def test_the_readmes_fine_tune_runs_as_written_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One call, a 6-hour job; run again with its state file, it makes nothing anew."""
    import json

    block = block_with(README, "client.fine_tune(")
    assert not block.prelude
    clock = VirtualClock()
    (tmp_path / "train.jsonl").write_bytes(TRAIN)
    monkeypatch.chdir(tmp_path)
    on_the_clock(monkeypatch, clock)
    with Emulator(clock=clock) as emu:
        emu.scripts.training = TrainingScript(pending_s=60, running_s=6 * 3600, checkpoints=4)
        monkeypatch.setenv("EMISSARY_SERVER_URL", emu.url)
        monkeypatch.setenv("EMISSARY_CLIENT_API_KEY", emu.api_key)
        block.run()
        state = json.loads((tmp_path / "support-bot.json").read_text())
        sent = len(emu.requests)
        block.run()  # again: it resumes, re-attaching to what is done
        assert not [r for r in emu.requests[sent:] if r.method == "POST"]
        (upload,) = emu.uploads
        assert (upload.filename, upload.size) == ("train.jsonl", len(TRAIN))
    assert clock.now() - VIRTUAL_EPOCH > 6 * 3600
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{state['deployment_id']} 4"] * 2
    assert "training job" in err and "100%" in err  # the bars


# --- docs/testing.md ---------------------------------------------------------------------

TESTING = ROOT / "docs" / "testing.md"


@pytest.mark.parametrize(
    "marker",
    [
        "emu.faults.drip(",
        "emu.faults.at_random(",
        "emu.faults.commit_then_drop()",
        "capacity=8",
        "trustme.CA()",
        "clock.sleeps == [30.0]",
        "tiny-gpt",
        "max_upload_bytes=1024",
    ],
)
def test_the_testing_guides_examples_run(marker: str) -> None:
    block = block_with(TESTING, marker)
    assert not block.prelude
    block.run()  # each checks itself with assert


def test_the_testing_guides_polling_test_passes() -> None:
    block = block_with(TESTING, "def test_wait_deployed")
    assert not block.prelude
    test: Any = block.run()["test_wait_deployed"]
    test()


def test_the_emulator_from_a_shell() -> None:
    """The commands as written (on a free port instead of 8000), and what they print."""
    serve = block_with(TESTING, "emissary emulator", "bash").code
    argv = shlex.split(serve.replace("\\\n", " "))
    assert argv[argv.index("--port") + 1] == "8000"
    argv[argv.index("--port") + 1] = "0"
    env = clean_env(PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the emulator said nothing in 30 s"
        line = proc.stdout.readline().rstrip("\n")
        port = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert port, line
        (shown,) = [
            b.code.strip() for b in blocks(TESTING, "text") if "Emissary emulator" in b.code
        ]
        assert line == shown.replace(":8000", f":{port[1]}")
        use = block_with(TESTING, "emissary complete", "bash").code
        answer = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", use.replace(":8000", f":{port[1]}")],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert answer.returncode == 0, answer.stderr
        assert len(answer.stdout.split()) == 16  # the emulator's default length
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == 0


def test_the_emulators_options_and_defaults_are_those_documented() -> None:
    help_text = subprocess.run(
        [str(BIN / "emissary"), "emulator", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=clean_env(COLUMNS="300"),
    ).stdout
    helps = {  # each option's entry, its help text on one line
        m[1]: " ".join(m[0].split())
        for m in re.finditer(r"^  (--[\w-]+).*?(?=^  -|\Z)", help_text, re.M | re.S)
    }
    rows = re.findall(r"^\| `(--[\w-]+)[^`]*` \| (.+?) \|", TESTING.read_text(), re.M)
    assert {option for option, _ in rows} == set(helps) - {"--help"}
    for option, default in rows:
        value = default.strip("`")
        assert value in helps[option] or f"default: {value}" in helps[option], option


# --- docs/distributed.md: the multiprocessing recipe, as a script -----------------------------


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_the_multiprocessing_recipe_runs_as_a_script(tmp_path: Path, method: str) -> None:
    script = tmp_path / "recipe.py"
    script.write_text(block_with(ROOT / "docs" / "distributed.md", "ProcessPoolExecutor").code)
    # The script as `python recipe.py` runs it, with the start method chosen first.
    run = (
        "import multiprocessing, runpy, sys; "
        f"multiprocessing.set_start_method({method!r}); "
        "runpy.run_path(sys.argv[1], run_name='__main__')"
    )
    with Emulator(deployments=["my-project/my-deployment"]) as emu:
        proc = subprocess.run(
            [sys.executable, "-c", run, str(script)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env=clean_env(EMISSARY_SERVER_URL=emu.url, EMISSARY_CLIENT_API_KEY=emu.api_key),
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "100 answers\n"
        assert proc.stderr == ""
        assert len(emu.requests) == 100


# --- docs/migrating.md: both columns are true ----------------------------------------------

MIGRATING = ROOT / "docs" / "migrating.md"


def test_the_migration_guides_examples_run() -> None:
    for block in blocks(MIGRATING):
        block.run()


def test_the_migration_guide_quotes_the_errors_as_raised() -> None:
    text = MIGRATING.read_text()
    with (
        Emulator() as emu,
        EmissaryClient(api_key=emu.api_key, server_url=emu.url) as client,
    ):
        completions = client.deployments.completions
        call = {"project_id": "demo-project", "deployment_id": "demo-deployment"}
        with pytest.raises(errors.RequestTypeError) as strict:
            completions.create(**call, request_body={"prompt": "Hi", "max_new_tokens": "3"})
        assert f"`{strict.value}`" in text
        with pytest.raises(errors.RequestValidationError) as unknown:
            completions.create(**call, request_body={"prompt": "Hi", "max_tokens": 3})
        assert "did you mean 'max_new_tokens'?" in str(unknown.value)
        assert "`did you mean 'max_new_tokens'?`" in text
        assert not emu.requests  # both refused before any I/O
        completions.create(**call, request_body={"prompt": "Hi"})
        assert emu.requests[0].headers["User-Agent"].startswith("emissary-python/")


class Collect(logging.Handler):
    """Keeps the messages of the records it gets."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_the_migration_guide_describes_the_old_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The left column, checked against emissary-client-sdk 0.4.4 (in the test extra)."""
    import contextlib

    import emissary_client_sdk as old
    import httpx

    doc = MIGRATING.read_text()
    call = {"project_id": "demo-project", "deployment_id": "demo-deployment"}
    with Emulator() as emu, contextlib.ExitStack() as stack:

        def completions(**options: Any) -> Any:
            """An old client's completions (its httpx client closed at the end: it never
            closes it itself)."""
            http = stack.enter_context(httpx.Client())
            options.setdefault("server_url", emu.url)
            return old.EmissaryClient(client=http, **options).deployments.completions

        # Lax types, and unknown keys dropped.
        lax = completions(api_key=emu.api_key)
        for value in ("3", 3.0, True):
            lax.create(**call, request_body={"prompt": "Hi", "max_new_tokens": value})
        lax.create(**call, request_body={"prompt": "Hi", "max_tokens": 3})
        assert [request.body for request in emu.requests] == [
            b'{"max_new_tokens":3,"prompt":"Hi"}',
            b'{"max_new_tokens":3,"prompt":"Hi"}',
            b'{"max_new_tokens":1,"prompt":"Hi"}',
            b'{"prompt":"Hi"}',
        ]
        assert emu.requests[-1].headers["User-Agent"] in doc
        # No retries by default; a 401 is an SDKError; a 404 is not an SDKError at all.
        emu.faults.fail(status=503)
        with pytest.raises(old.models.SDKError):
            lax.create(**call, request_body={"prompt": "Hi"})
        with pytest.raises(old.models.SDKError) as unauthorized:
            completions(api_key="wrong").create(**call, request_body={"prompt": "Hi"})
        assert unauthorized.value.status_code == 401
        with pytest.raises(old.models.APIErrorNotFound) as not_found:
            lax.create(project_id="nope", deployment_id="d", request_body={"prompt": "Hi"})
        assert not isinstance(not_found.value, old.models.SDKError)
        # Without api_key=, no key is sent, even with EMISSARY_CLIENT_API_KEY set.
        monkeypatch.setenv("EMISSARY_CLIENT_API_KEY", emu.api_key)
        with pytest.raises(old.models.SDKError) as keyless:
            completions().create(**call, request_body={"prompt": "Hi"})
        assert keyless.value.status_code == 401
        assert "X-API-Key" not in emu.requests[-1].headers
        # Its debug_logger gets the headers, the key included.
        logger = logging.getLogger("test_docs.old_sdk")
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        collect = Collect()
        logger.addHandler(collect)
        try:
            logged = completions(api_key=emu.api_key, debug_logger=logger)
            logged.create(**call, request_body={"prompt": "Hi"})
        finally:
            logger.removeHandler(collect)
        assert any(emu.api_key in message for message in collect.messages)
    # Its default server, when given none.
    http = httpx.Client()
    server = old.EmissaryClient(api_key="k", client=http).sdk_configuration.get_server_details()
    http.close()
    assert f"`{server[0]}`" in doc


# --- docs/platform.md: every example, against a platform with one of everything --------------

PLATFORM = ROOT / "docs" / "platform.md"
TRAIN = b'{"prompt": "Why?", "completion": "Because."}\n'


@contextlib.contextmanager
def a_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """An emulator on a virtual clock holding a project, a processed dataset, a training
    job that succeeded and a deployment of its last checkpoint; a client of it; and a
    ``train.jsonl`` in the working directory. The names the examples' preludes declare."""
    clock = VirtualClock()
    (tmp_path / "train.jsonl").write_bytes(TRAIN)
    monkeypatch.chdir(tmp_path)
    with (
        Emulator(clock=clock) as emu,
        EmissaryClient(api_key=emu.api_key, server_url=emu.url) as client,
    ):
        project = client.projects.create(request={"name": "docs"})
        assert project.id is not None
        file = {"file_name": "train.jsonl", "content": TRAIN}
        dataset = client.datasets.create(project_id=project.id, request_body={"file": file})
        assert dataset.id is not None
        clock.advance(60)
        job = client.training_jobs.create(
            project_id=project.id,
            request_body={"base_model": "Llama-3.2-1B-Instruct", "train_dataset_id": dataset.id},
        )
        assert job.id is not None
        clock.advance(3600)
        deployment = client.deployments.create(
            project_id=project.id, request_body={"training_job_id": job.id, "checkpoint": 4}
        )
        assert deployment.id is not None
        clock.advance(3600)
        yield {
            "emu": emu,
            "client": client,
            "project_id": project.id,
            "dataset_id": dataset.id,
            "training_job_id": job.id,
            "deployment_id": deployment.id,
        }


def test_the_platform_reference_lists_the_25_operations() -> None:
    from emissary._operations import OPERATIONS

    rows = re.findall(r"^\| `([\w.]+)\(", PLATFORM.read_text(), re.M)
    assert rows == [operation.name for operation in OPERATIONS]


@pytest.mark.parametrize("block", blocks(PLATFORM), ids=lambda block: block.where)
def test_the_platform_references_examples_run(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with a_platform(tmp_path, monkeypatch) as names:
        emu = names.pop("emu")
        block.run(**names)
        assert all(request.operation is not None for request in emu.requests)


def test_the_platform_reference_quotes_the_errors_as_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = PLATFORM.read_text()
    with a_platform(tmp_path, monkeypatch) as names:
        client, project_id = names["client"], names["project_id"]
        body: Any = {"base_model": "m", "train_dataset_id": "d", "train_test_split": 0.2}
        with pytest.raises(errors.RequestValidationError) as typo:
            client.training_jobs.create(project_id=project_id, request_body=body)
        quoted = str(typo.value).split(" Allowed fields")[0]
        assert f"`{quoted}`" in " ".join(text.split())
        with pytest.raises(errors.RequestTypeError) as option:
            client.projects.get(project_id=project_id, idempotency_key="k")
        assert f"`{option.value}`" in " ".join(text.split())


def test_a_create_that_may_have_been_committed_is_found_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The example of docs/platform.md, when the create's answer is cut short after the
    job was made: one job, found by its name."""
    block = block_with(PLATFORM, "maybe_committed")
    with a_platform(tmp_path, monkeypatch) as names:
        emu = names.pop("emu")
        emu.faults.truncate()  # the job is created, its answer cut short
        block.run(**names)
        client, project_id = names["client"], names["project_id"]
        jobs = client.training_jobs.list(project_id=project_id)
        (made,) = [job for job in jobs if job.name == "nightly-2026-01-01"]
        creates = [r for r in emu.requests if r.operation == "training_jobs.create"]
        assert creates[-1].fault == "truncate"  # sent once, not retried
    assert capsys.readouterr().out == f"training job {made.id}\n"


def test_the_migration_guide_maps_every_call_one_to_one() -> None:
    """The table names every operation, on the generated SDK (with its ``_async`` twin)
    and here (on both clients)."""
    import emissary_client_sdk as old
    import httpx

    from emissary import AsyncEmissaryClient
    from emissary._operations import OPERATIONS

    rows = re.findall(r"^\| `s\.([\w.]+)\(.*?\| `client\.([\w.]+)\(", MIGRATING.read_text(), re.M)
    assert [theirs for theirs, _ in rows] == [operation.name for operation in OPERATIONS]
    assert all(theirs == ours for theirs, ours in rows)
    http = httpx.Client()
    try:
        generated = old.EmissaryClient(api_key="k", server_url="http://127.0.0.1:9", client=http)
        for name, _ in rows:
            *path, method = name.split(".")
            for client in (
                generated,
                EmissaryClient(api_key="k", server_url="http://127.0.0.1:9"),
                AsyncEmissaryClient(api_key="k", server_url="http://127.0.0.1:9"),
            ):
                namespace: Any = client
                for part in path:
                    namespace = getattr(namespace, part)
                assert callable(getattr(namespace, method)), (client, name)
            namespace = generated
            for part in path:
                namespace = getattr(namespace, part)
            assert callable(getattr(namespace, f"{method}_async")), name
    finally:
        http.close()


class _Queued(BaseHTTPRequestHandler):
    """Answers every GET with a training job (or deployment) in a status the spec does not
    list."""

    def do_GET(self) -> None:
        body = b'{"id": "tr-1", "status": "Queued", "progress": 0}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


def test_the_migration_guide_describes_the_old_sdk_on_the_platform(tmp_path: Path) -> None:
    """The platform rows' left column, checked against emissary-client-sdk 0.4.4."""
    import contextlib
    import io
    import threading
    from http.server import ThreadingHTTPServer

    import emissary_client_sdk as old
    import httpx
    import pydantic
    from emissary_client_sdk import utils as old_utils

    doc = MIGRATING.read_text()
    with contextlib.ExitStack() as stack:

        def sdk(url: str, **options: Any) -> Any:
            http = stack.enter_context(httpx.Client())
            return old.EmissaryClient(client=http, server_url=url, **options)

        clock = VirtualClock()
        emu = stack.enter_context(Emulator(clock=clock, max_upload_bytes=1000))
        s = sdk(emu.url, api_key=emu.api_key)
        project = s.projects.create(request={"name": "old"})
        pid = project.id
        # Lax types: "4" for a checkpoint, True as a training parameter.
        with pytest.raises(old.models.APIErrorInvalidInput):
            s.deployments.create(
                project_id=pid, request_body={"training_job_id": "tr-x", "checkpoint": "4"}
            )
        assert b'"checkpoint":4' in emu.requests[-1].body
        job = {"base_model": "Llama-3.2-1B", "train_dataset_id": "ds-x"}
        with pytest.raises(old.models.APIErrorInvalidInput):
            s.training_jobs.create(project_id=pid, request_body={**job, "parameters": {"a": True}})
        assert b'"parameters":{"a":1.0}' in emu.requests[-1].body
        assert "`True` as a training parameter as `1.0`" in doc
        # Bad values: a pydantic.ValidationError for some, sent for others.
        for bad in (
            lambda: s.deployments.create(
                project_id=pid,
                request_body={"training_job_id": "t", "checkpoint": 1, "server_type": "big"},
            ),
            lambda: s.training_jobs.create(
                project_id=pid, request_body={**job, "parameters": {"a": {"b": 1}}}
            ),
            lambda: s.deployments.chat.completions.create(
                project_id="demo-project",
                deployment_id="demo-deployment",
                request_body={"messages": [{"role": "robot", "content": "Hi"}]},
            ),
        ):
            with pytest.raises(pydantic.ValidationError):
                bad()
        with pytest.raises(old.models.APIErrorInvalidInput):
            s.training_jobs.create(
                project_id=pid, request_body={**job, "train_test_split_ratio": 1.5}
            )
        assert b'"train_test_split_ratio":1.5' in emu.requests[-1].body
        with pytest.raises(old.models.APIErrorInvalidInput):
            s.deployments.chat.completions.create(
                project_id="demo-project",
                deployment_id="demo-deployment",
                request_body={"messages": [{"role": "user", "content": "Hi"}], "streaming": True},
            )
        assert b'"streaming":true' in emu.requests[-1].body
        with pytest.raises(old.models.APIErrorNotFound):
            s.base_models.get(base_model_name="org/model")
        assert emu.requests[-1].raw_path == "/v1/models/org/model"
        assert (old.ServerType.ON_DEMAND, old.Role.USER) == ("on-demand", "user")

        # Creates retried after a 500, 502 or 504; a delete retried into a 404 fails.
        retrying = sdk(
            emu.url,
            api_key=emu.api_key,
            retry_config=old_utils.RetryConfig(
                "backoff", old_utils.BackoffStrategy(1, 2, 1.1, 1000), False
            ),
        )
        for status in (500, 502, 504):
            emu.faults.fail(status=status)
            sent = len(emu.requests)
            retrying.projects.create(request={"name": "twice?"})
            assert [r.method for r in emu.requests[sent:]] == ["POST", "POST"]
        emu.faults.fail(status=500)
        with pytest.raises(old.models.APIErrorNotFound):
            retrying.projects.delete(project_id="proj-gone")

        # Uploads.
        upload = {"file_name": "train.csv", "content": io.BytesIO(b"a,b\n")}
        with pytest.raises(pydantic.ValidationError):
            s.datasets.create(project_id=pid, request_body={"file": upload})
        path = tmp_path / "train.csv"
        path.write_bytes(b"0123456789")
        with open(path, "rb") as file:
            file.read(4)
            s.datasets.create(
                project_id=pid, request_body={"file": {"file_name": "train.csv", "content": file}}
            )
            assert (file.tell(), file.closed) == (10, False)
        assert (emu.uploads[-1].size, emu.uploads[-1].content_type) == (10, "text/csv")
        assert "(`train.csv` is sent as `text/csv`)" in doc
        with pytest.raises(old.models.APIErrorInvalidInput):
            s.datasets.create(project_id=pid, request_body={"name": "no file"})
        with pytest.raises(old.models.SDKError) as too_large:
            s.datasets.create(
                project_id=pid, request_body={"file": {"file_name": "big", "content": b"x" * 2000}}
            )
        assert too_large.value.status_code == 413

        # Results are pydantic models; statuses and types are enums.
        clock.advance(60)  # the datasets are processed
        made = s.training_jobs.create(
            project_id=pid,
            request_body={
                "base_model": "Llama-3.2-1B",
                "train_dataset_id": emu.uploads[-1].dataset_id,
            },
        )
        detail = s.training_jobs.get(project_id=pid, training_job_id=made.id)
        assert isinstance(detail, pydantic.BaseModel) and detail.status.value == "Pending"
        assert isinstance(s.training_jobs.list(project_id=pid)[0], pydantic.BaseModel)
        assert isinstance(s.base_models.list()[0].type, old.models.Type)

        # Errors: only the statuses each operation's spec lists are mapped.
        stranger = sdk(emu.url, api_key="wrong")
        for call in (
            lambda: stranger.projects.get(project_id=pid),
            lambda: stranger.projects.create(request={}),
            lambda: stranger.projects.delete(project_id=pid),
            lambda: stranger.training_jobs.cancel(project_id=pid, training_job_id="t"),
        ):
            with pytest.raises(old.models.SDKError) as unauthorized:
                call()
            assert unauthorized.value.status_code == 401
        with pytest.raises(old.models.APIErrorUnauthorized) as listed:
            stranger.projects.list()
        assert not isinstance(listed.value, old.models.SDKError)
        for call in (
            lambda: s.datasets.list(project_id="nope"),
            lambda: s.training_jobs.create(project_id="nope", request_body=job),
        ):
            with pytest.raises(old.models.SDKError) as not_found:
                call()
            assert not_found.value.status_code == 404
        emu.faults.fail(status=400)
        with pytest.raises(old.models.SDKError) as invalid:
            s.projects.get(project_id=pid)
        assert invalid.value.status_code == 400

        server = ThreadingHTTPServer(("127.0.0.1", 0), _Queued)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        stack.callback(server.server_close)
        stack.callback(server.shutdown)
        queued = sdk(f"http://127.0.0.1:{server.server_port}", api_key="k")
        with pytest.raises(pydantic.ValidationError):
            queued.training_jobs.get(project_id="p", training_job_id="tr-1")
        with pytest.raises(pydantic.ValidationError):
            queued.deployments.get(project_id="p", deployment_id="dp-1")
        with EmissaryClient(api_key="k", server_url=queued.sdk_configuration.server_url) as ours:
            assert ours.training_jobs.get(project_id="p", training_job_id="tr-1").status == "Queued"


def test_the_migration_guide_describes_this_sdk_on_the_platform(tmp_path: Path) -> None:
    """The platform rows' right column."""
    import io

    from emissary import models

    doc = MIGRATING.read_text()
    clock = VirtualClock()
    with (
        Emulator(clock=clock, max_upload_bytes=1000) as emu,
        EmissaryClient(api_key=emu.api_key, server_url=emu.url) as client,
        EmissaryClient(api_key="wrong", server_url=emu.url) as stranger,
    ):
        project = client.projects.create(request={"name": "new"})
        assert project.id is not None
        pid = project.id
        job: Any = {"base_model": "Llama-3.2-1B", "train_dataset_id": "ds-x"}
        refused: list[tuple[type[Exception], Any]] = [
            (
                errors.RequestTypeError,
                lambda: client.deployments.create(
                    project_id=pid, request_body={"training_job_id": "t", "checkpoint": "4"}
                ),
            ),
            (
                errors.RequestTypeError,
                lambda: client.training_jobs.create(
                    project_id=pid, request_body={**job, "parameters": {"a": True}}
                ),
            ),
            (
                errors.RequestValidationError,
                lambda: client.training_jobs.create(
                    project_id=pid, request_body={**job, "train_test_split_ratio": 1.5}
                ),
            ),
            (
                errors.RequestValidationError,
                lambda: client.deployments.chat.completions.create(
                    project_id="demo-project",
                    deployment_id="demo-deployment",
                    request_body={
                        "messages": [{"role": "user", "content": "Hi"}],
                        "streaming": True,
                    },
                ),
            ),
            (
                errors.RequestValidationError,
                lambda: client.datasets.create(project_id=pid, request_body={"name": "no file"}),
            ),
        ]
        sent = len(emu.requests)
        for kind, call in refused:
            with pytest.raises(kind) as caught:
                call()
            assert not caught.value.maybe_committed  # type: ignore[attr-defined]
        assert "request_body.file is required" in str(caught.value)
        assert len(emu.requests) == sent  # all before any I/O
        with pytest.raises(errors.APIErrorNotFound):
            client.base_models.get(base_model_name="org/model")
        assert emu.requests[-1].raw_path == "/v1/models/org%2Fmodel"
        assert "`/v1/models/org%2Fmodel`" in doc

        # Creates are not retried after a 500; a delete retried into a 404 succeeded.
        emu.faults.fail(status=500)
        with pytest.raises(errors.SDKError) as ambiguous:
            client.projects.create(request={"name": "once"})
        assert ambiguous.value.maybe_committed and ambiguous.value.retries_taken == 0
        emu.faults.fail(status=503)
        with instant_retries(client):
            client.projects.create(request={"name": "retried"})
        assert [r.fault for r in emu.requests[-2:]] == ["fail", None]
        emu.faults.fail(status=500)
        with instant_retries(client):
            assert client.projects.delete(project_id="proj-gone") is None
        client.projects.delete(project_id="proj-gone", missing_ok=True)

        # Uploads.
        client.datasets.create(
            project_id=pid,
            request_body={"file": {"file_name": "train.csv", "content": io.BytesIO(b"a,b\n")}},
        )
        assert (emu.uploads[-1].size, emu.uploads[-1].content_type) == (
            4,
            "application/octet-stream",
        )
        path = tmp_path / "train.csv"
        path.write_bytes(b"0123456789")
        with open(path, "rb") as file:
            file.read(4)
            client.datasets.create(
                project_id=pid, request_body={"file": {"file_name": "train.csv", "content": file}}
            )
            assert (file.tell(), file.closed) == (4, False)
        assert emu.uploads[-1].size == 6
        with pytest.raises(errors.PayloadTooLargeError) as too_large:
            client.datasets.create(
                project_id=pid, request_body={"file": {"file_name": "big", "content": b"x" * 2000}}
            )
        assert too_large.value.status_code == 413 and too_large.value.retries_taken == 0

        # Statuses are strings; the enums compare equal.
        clock.advance(60)
        made = client.training_jobs.create(
            project_id=pid,
            request_body={
                "base_model": "Llama-3.2-1B",
                "train_dataset_id": emu.uploads[-1].dataset_id,
            },
        )
        assert made.id is not None
        detail = client.training_jobs.get(project_id=pid, training_job_id=made.id)
        assert type(detail.status) is str
        assert detail.status == models.TrainingJobDetailStatus.PENDING
        with pytest.raises(AttributeError):
            detail.status.value  # type: ignore[attr-defined]  # noqa: B018

        # Errors: 400, 401 and 404 are mapped on every operation.
        with pytest.raises(errors.APIErrorUnauthorized):
            stranger.projects.get(project_id=pid)
        with pytest.raises(errors.APIErrorUnauthorized):
            stranger.training_jobs.cancel(project_id=pid, training_job_id="t")
        with pytest.raises(errors.APIErrorNotFound):
            client.datasets.list(project_id="nope")
        with pytest.raises(errors.APIErrorNotFound):
            client.training_jobs.create(project_id="nope", request_body=job)
        emu.faults.fail(status=400)
        with pytest.raises(errors.APIErrorInvalidInput):
            client.projects.get(project_id=pid)


# --- docs/lifecycle.md: waits, uploads, creates, fine_tune, on virtual time ------------------

LIFECYCLE = ROOT / "docs" / "lifecycle.md"
TEST_SET = b'{"prompt": "How?", "completion": "Thus."}\n'


@contextlib.contextmanager
def a_training_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: TrainingScript
) -> Iterator[dict[str, Any]]:
    """An emulator on a virtual clock holding a project and a processed dataset, with a
    training job of `script` just created; a client whose waits sleep on that clock;
    ``train.jsonl`` and ``test.jsonl`` in the working directory. The names the examples'
    preludes declare."""
    clock = VirtualClock()
    (tmp_path / "train.jsonl").write_bytes(TRAIN)
    (tmp_path / "test.jsonl").write_bytes(TEST_SET)
    monkeypatch.chdir(tmp_path)
    with (
        Emulator(clock=clock) as emu,
        EmissaryClient(api_key=emu.api_key, server_url=emu.url) as client,
        instant_retries(client, clock=clock),
    ):
        project = client.projects.create(request={"name": "docs"})
        assert project.id is not None
        dataset = client.datasets.upload(project_id=project.id, file=TRAIN)
        assert dataset.id is not None
        client.datasets.wait(project_id=project.id, dataset_id=dataset.id)
        emu.scripts.training = script
        job = client.training_jobs.create(
            project_id=project.id,
            request_body={"base_model": "Llama-3.2-1B-Instruct", "train_dataset_id": dataset.id},
        )
        assert job.id is not None
        yield {
            "emu": emu,
            "clock": clock,
            "client": client,
            "project_id": project.id,
            "dataset_id": dataset.id,
            "training_job_id": job.id,
        }


SIX_HOURS = TrainingScript(pending_s=60, running_s=6 * 3600)


@pytest.mark.parametrize(
    ("script", "printed"),
    [
        (SIX_HOURS, r"trained: tr-[0-9a-f]+"),
        (
            TrainingScript(pending_s=60, running_s=3600, outcome="Failed"),
            r"Failed after 1:0\d:\d\d\.\d+, at 100 %",
        ),
        (TrainingScript(pending_s=60, running_s=24 * 3600), r"still Running after \d+ polls"),
    ],
    ids=["success", "failure", "max_wait"],
)
def test_the_lifecycle_guides_wait_ends_each_way(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    script: TrainingScript,
    printed: str,
) -> None:
    block = block_with(LIFECYCLE, "PollPolicy(min_interval=5.0")
    with a_training_job(tmp_path, monkeypatch, script) as names:
        names.pop("emu")
        clock: VirtualClock = names.pop("clock")
        began = clock.now()
        block.run(**names)
        waited = clock.now() - began
    *changes, last = capsys.readouterr().out.splitlines()
    assert re.fullmatch(printed, last), last
    assert changes[0] == "Pending 0" and changes[1].startswith("Running ")
    assert waited <= 12 * 3600 + 1  # max_wait, overrun by a poll's own time at most


def test_the_lifecycle_guides_uploads_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib
    import json

    block = block_with(LIFECYCLE, "def rows()")
    with a_training_job(tmp_path, monkeypatch, SIX_HOURS) as names:
        emu = names.pop("emu")
        names.pop("clock")
        block.run(**names)
        _, from_file, generated = emu.uploads
    rows = b"".join(
        json.dumps({"prompt": f"q{i}", "completion": f"a{i}"}).encode() + b"\n" for i in range(1000)
    )
    assert (from_file.filename, from_file.content_type, from_file.name) == (
        "train.jsonl",
        "application/jsonl",
        "support-tickets",
    )
    assert from_file.sha256 == hashlib.sha256(TRAIN).hexdigest()
    assert (generated.filename, generated.sha256) == ("gen.jsonl", hashlib.sha256(rows).hexdigest())
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"train.jsonl: 0 of {len(TRAIN)} bytes, attempt 1",
        f"train.jsonl: {len(TRAIN)} of {len(TRAIN)} bytes, attempt 1",
        "True",
    ]


def test_the_lifecycle_guides_create_adopts_what_a_lost_answer_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    block = block_with(LIFECYCLE, "AmbiguousCreateError")
    with a_training_job(tmp_path, monkeypatch, SIX_HOURS) as names:
        emu = names.pop("emu")
        names.pop("clock")
        emu.faults.commit_then_drop(operation="training_jobs.create")  # made, answer lost
        block.run(**names)
        client, project_id = names["client"], names["project_id"]
        jobs = client.training_jobs.list(project_id=project_id)
        (made,) = [job for job in jobs if job.name == "nightly-2026-01-01"]
        sent = [r.fault for r in emu.requests if r.operation == "training_jobs.create"]
    assert sent == [None, "commit_then_drop"]  # the fixture's job, then this one: once
    assert capsys.readouterr().out == f"{made.id} Success\n"


def test_the_lifecycle_guides_fine_tune_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    block = block_with(LIFECYCLE, "def lowest_loss(")
    with a_training_job(tmp_path, monkeypatch, SIX_HOURS) as names:
        emu = names.pop("emu")
        block.run(client=names["client"])
        state = json.loads((tmp_path / "support-bot-v2.json").read_text())
        project_id = state["project_id"]
        (body,) = [r.body for r in emu.requests if r.operation == "deployments.create"]
        assert json.loads(body)["server_type"] == "serverless"
        *_, train, test = emu.uploads
        assert (train.name, test.name) == ("support-bot-v2-train", "support-bot-v2-test")
        job = names["client"].training_jobs.get(
            project_id=project_id, training_job_id=state["training_job_id"]
        )
        assert job.hyper_parameters is not None and job.hyper_parameters["epochs"] == 3
    *steps, last = capsys.readouterr().out.splitlines()
    assert steps == [
        "project started",
        "project done",
        "upload started",
        "upload done",
        "upload started",
        "upload done",
        "training started",
        "training done",
        "checkpoint done",  # the lowest loss: the emulator's last checkpoint
        "deployment started",
        "deployment done",
    ]
    assert last == f"{state['deployment_id']} serves checkpoint 4"


def test_the_lifecycle_guides_day_of_training_takes_milliseconds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    block = block_with(LIFECYCLE, "24 * 3600")
    assert not block.prelude
    block.run()
    printed = capsys.readouterr().out
    assert re.fullmatch(
        r"24\.[45] h of platform time in \d\.\d\d s; the job was polled \d+ times\n", printed
    )
