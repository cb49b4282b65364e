"""The examples run as shipped (against the bundled emulator)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (["examples/quickstart.py"], "completion cmpl-"),
        (["examples/async_service.py", "--requests", "100"], "100/100 completions"),
        (["examples/see_and_steer.py"], "retries 1, key greeting-1"),
    ],
)
def test_example_runs(script: list[str], expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMISSARY_")}
    proc = subprocess.run(
        [sys.executable, "-X", "dev", *script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout
    assert proc.stderr == ""


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
