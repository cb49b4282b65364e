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

import logging
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emissary import EmissaryClient, errors
from emissary.testing import Emulator

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


# --- docs/testing.md ---------------------------------------------------------------------

TESTING = ROOT / "docs" / "testing.md"


@pytest.mark.parametrize(
    "marker", ["emu.faults.drip(", "emu.faults.at_random(", "capacity=8", "trustme.CA()"]
)
def test_the_testing_guides_examples_run(marker: str) -> None:
    block = block_with(TESTING, marker)
    assert not block.prelude
    block.run()  # each checks itself with assert


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
