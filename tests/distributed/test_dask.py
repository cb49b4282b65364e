"""The README's Dask recipe (docs/distributed.md), run as written on a
``distributed.LocalCluster`` with worker processes: its answers equal direct calls'; and
run as a script (``python recipe.py``: Dask spawns its workers, which import the script
again), whose ``if __name__ == "__main__":`` block answers its 1,000 prompts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from emissary import EmissaryClient
from emissary.testing import Emulator

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(180)


def recipe() -> str:
    """The recipe's code block."""
    doc = (ROOT / "docs" / "distributed.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "WorkerPlugin" in b]
    return str(block)


def test_the_dask_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    recipe_code = recipe()
    with Emulator(deployments=["my-project/my-deployment"]) as emu:
        # The workers read these, as a deployment's workers would read their environment.
        monkeypatch.setenv("EMISSARY_CLIENT_API_KEY", emu.api_key)
        monkeypatch.setenv("EMISSARY_SERVER_URL", emu.url)
        prompts = [f"prompt {i}" for i in range(250)]
        namespace: dict[str, object] = {"__name__": "dask_recipe"}  # not "__main__"
        exec(recipe_code, namespace)
        answers = namespace["answer_all"](prompts)  # type: ignore[operator]
        with EmissaryClient() as client:
            expected = [
                client.deployments.completions.create(
                    project_id="my-project", deployment_id="my-deployment",
                    request_body={"prompt": p},
                ).response
                for p in prompts
            ]  # fmt: skip
    assert answers == expected
    peers = {r.peer.rsplit(":", 1)[0] for r in emu.requests}
    assert peers == {"127.0.0.1"}


def test_the_dask_recipe_runs_as_a_script(tmp_path: Path) -> None:
    script = tmp_path / "recipe.py"
    script.write_text(recipe())
    with Emulator(deployments=["my-project/my-deployment"]) as emu:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMISSARY_")}
        env.update(EMISSARY_CLIENT_API_KEY=emu.api_key, EMISSARY_SERVER_URL=emu.url)
        done = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True, text=True, timeout=150, cwd=tmp_path, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout == "1000 answers\n"
        assert len(emu.requests) == 1000
