"""The examples run as shipped (against the bundled emulator)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .faults import without_slow_callbacks

ROOT = Path(__file__).resolve().parent.parent


def run_example(*script: str) -> subprocess.CompletedProcess[str]:
    """Run an example as a user would, with no EMISSARY_ variable (so on the bundled
    emulator), in dev mode: every warning shows on stderr, less asyncio's slow-callback
    reports, which measure the machine's load (see `tests.faults.run_python`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMISSARY_")}
    proc = subprocess.run(
        [sys.executable, "-X", "dev", *script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
    )
    proc.stderr = without_slow_callbacks(proc.stderr)
    return proc


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (["examples/quickstart.py"], "completion cmpl-"),
        (["examples/async_service.py", "--requests", "100"], "100/100 completions"),
        (["examples/see_and_steer.py"], "retries 1, key greeting-1"),
    ],
)
def test_example_runs(script: list[str], expected: str) -> None:
    proc = run_example(*script)
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout
    assert proc.stderr == ""


def test_the_fine_tuning_example_tells_each_step_and_chats() -> None:
    """From local data to a chat with the deployed model, each step shown in order."""
    import re

    proc = run_example("examples/fine_tune.py")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("No EMISSARY_SERVER_URL set: using the bundled emulator at ")
    steps = [re.sub(r"^\[ *[\d.]+ s\] ", "", line) for line in lines[1:-2]]
    assert steps[:5] == [
        "project started",
        f"project done: {steps[1].split()[-1]}",
        "upload started",
        "upload: processed",
        f"upload done: {steps[4].split()[-1]}",
    ]
    assert re.fullmatch(r"project done: proj-[0-9a-f]+", steps[1])
    training = steps[5 : steps.index("checkpoint done: 4")]
    assert training[:2] == ["training started", "training: Pending 0 %"]
    assert training[-2] == "training: Success 100 %"
    assert re.fullmatch(r"training done: tr-[0-9a-f]+", training[-1])
    running = [int(s.split()[2]) for s in training if s.startswith("training: Running")]
    assert running == sorted(running)  # its progress, as polls saw it
    assert steps[-3:-1] == ["deployment started", "deployment: Deployed"]
    deployment = steps[-1].removeprefix("deployment done: ")
    assert lines[-2] == f"{deployment} (Llama-3.2-1B-Instruct, checkpoint 4) says:"
    assert len(lines[-1].split()) == 16  # the emulator's answer


def test_the_readmes_testing_example_runs() -> None:
    import re

    readme = (ROOT / "README.md").read_text()
    (code,) = [
        b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "test_my_feature" in b
    ]
    namespace: dict[str, object] = {}
    exec(code, namespace)
    namespace["test_my_feature"]()  # type: ignore[operator]


def test_every_python_block_of_the_readme_is_valid_python() -> None:
    import ast
    import re

    for block in re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S):
        ast.parse(block)
