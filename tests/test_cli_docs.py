"""docs/cli.md agrees with the command line: its tour (and the README's) runs as written
(bash, against the emulator), its exit-status table is the code's, and every command has
its section."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from emissary._cli import _common
from emissary._cli._parser import COMMANDS, RESOURCES
from emissary.testing import DatasetScript, DeploymentScript, Emulator, TrainingScript

from .test_cli_platform import TRAIN
from .test_docs import README, ROOT, block_with, clean_env

CLI = ROOT / "docs" / "cli.md"
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("document", [CLI, README], ids=["docs/cli.md", "README.md"])
def test_the_tour_runs_as_written(document: Path, tmp_path: Path) -> None:
    tour = block_with(document, "P=$(emissary projects create", "bash").code
    (tmp_path / "train.jsonl").write_bytes(TRAIN)
    with Emulator(time_scale=0.001) as emu:
        emu.scripts.dataset = DatasetScript(processing_s=0)
        emu.scripts.training = TrainingScript(pending_s=0, running_s=0)
        emu.scripts.deployment = DeploymentScript(pending_s=0, deploying_s=0)
        env = clean_env(EMISSARY_CLIENT_API_KEY=emu.api_key, EMISSARY_SERVER_URL=emu.url)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", tour],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        (project,) = [p for p in emu.projects if p != "demo-project"]
        assert emu.projects[project] == set()  # deployed, chatted with, deleted
        assert [u.name for u in emu.uploads] == ["tickets"]
    listed = result.stdout  # not a terminal: JSON for the lists, the chat's text last
    assert '"name": "Llama-3.2-1B-Instruct"' in listed and '"checkpoint": 4' in listed
    assert '"deleted": true' in listed


def test_the_exit_status_table_is_the_codes() -> None:
    table = CLI.read_text().split("## Exit status", 1)[1].split("\n## ", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", table, re.M)}
    codes = {v for k, v in vars(_common).items() if k.startswith("EXIT_")}
    assert documented == codes


def test_every_command_has_its_section() -> None:
    text = CLI.read_text()
    sections = set(re.findall(r"^### (.+)$", text, re.M))
    names = {r.command for r in RESOURCES} | set(COMMANDS)
    covered = {name for section in sections for name in section.split(", ")}
    assert names <= covered, names - covered
    for resource in RESOURCES:
        for verb in resource.verbs:
            assert f"emissary {resource.command} {verb}" in text, (resource.command, verb)
