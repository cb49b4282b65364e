"""The README's Dask recipe (docs/distributed.md), run as written on a
``distributed.LocalCluster`` with worker processes: its answers equal direct calls'."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from emissary import EmissaryClient
from emissary.testing import Emulator

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(180)


def test_the_dask_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = (ROOT / "docs" / "distributed.md").read_text()
    (recipe,) = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "WorkerPlugin" in b]
    with Emulator(deployments=["my-project/my-deployment"]) as emu:
        # The workers read these, as a deployment's workers would read their environment.
        monkeypatch.setenv("EMISSARY_CLIENT_API_KEY", emu.api_key)
        monkeypatch.setenv("EMISSARY_SERVER_URL", emu.url)
        prompts = [f"prompt {i}" for i in range(250)]
        namespace: dict[str, object] = {"__name__": "dask_recipe"}  # not "__main__"
        exec(recipe, namespace)
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
