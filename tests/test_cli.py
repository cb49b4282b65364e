"""The ``emissary`` command line, end to end in subprocesses against the emulator: one
completion, batches (every row exactly once, bad lines, exit statuses), ``kill -9`` and
SIGINT mid-run then ``--resume`` (the same Idempotency-Key for re-sent rows), and a
``--help`` that imports neither aiohttp nor the progress bar. Every wait is bounded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emissary.testing import Emulator

from .faults import ROOT, run_python, wait_until

PROJECT, DEPLOYMENT = "demo-project", "demo-deployment"
TARGET = ["-p", PROJECT, "-d", DEPLOYMENT]


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def environment(emu: Emulator) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EMISSARY_CLIENT_API_KEY": emu.api_key,
        "EMISSARY_SERVER_URL": emu.url,
    }


def emissary(
    emu: Emulator, *args: str, stdin: str | None = None, timeout: float = 60, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emissary", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=environment(emu),
    )


def write_input(path: Path, n: int, extra: dict[int, str] | None = None) -> Path:
    lines = [json.dumps({"prompt": f"row {i}", "max_new_tokens": 3}) for i in range(n)]
    for index, text in (extra or {}).items():
        lines[index] = text
    path.write_text("".join(line + "\n" for line in lines))
    return path


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def keys_by_prompt(emu: Emulator) -> dict[str, set[str]]:
    keys: dict[str, set[str]] = {}
    for seen in emu.requests:
        prompt = json.loads(seen.body)["prompt"]
        keys.setdefault(prompt, set()).add(seen.headers["Idempotency-Key"])
    return keys


# --- complete ----------------------------------------------------------------------------


def test_complete_prints_the_text(emu: Emulator) -> None:
    result = emissary(emu, "complete", *TARGET, "hello", "--max-new-tokens", "4")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) == 4
    assert json.loads(emu.requests[0].body) == {"prompt": "hello", "max_new_tokens": 4}


def test_complete_reads_stdin_and_prints_json(emu: Emulator) -> None:
    result = emissary(emu, "complete", *TARGET, "--json", "--temperature", "0.5", stdin="hi\n")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"id", "response", "request_id"}
    assert document["request_id"] == emu.requests[0].request_id
    assert json.loads(emu.requests[0].body)["prompt"] == "hi\n"


def test_complete_exit_statuses(emu: Emulator) -> None:
    missing = emissary(emu, "complete", "-p", PROJECT, "-d", "nope", "hi")
    assert missing.returncode == 1
    assert "APIErrorNotFound" in missing.stderr and "request id req-" in missing.stderr
    env_less = subprocess.run(
        [sys.executable, "-m", "emissary", "complete", *TARGET, "hi"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**environment(emu), "EMISSARY_CLIENT_API_KEY": ""},
    )
    assert env_less.returncode == 2
    assert "no API key" in env_less.stderr and "EMISSARY_CLIENT_API_KEY" in env_less.stderr
    usage = emissary(emu, "complete", "hi")  # no -p / -d
    assert usage.returncode == 2 and "required" in usage.stderr


def test_help_is_fast_and_imports_neither_aiohttp_nor_tqdm() -> None:
    result = run_python(
        """
        import sys
        from emissary._cli import main
        try:
            main(["--help"])
        except SystemExit as exit:
            assert exit.code == 0
        heavy = sorted(m for m in ("aiohttp", "tqdm", "msgspec", "yarl") if m in sys.modules)
        print("heavy:", heavy)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "heavy: []" in result.stdout
    assert "complete" in result.stdout and "batch" in result.stdout


def test_the_emulator_command(emu: Emulator) -> None:
    result = emissary(emu, "emulator", "--help")
    assert result.returncode == 0
    assert "--capacity" in result.stdout and "--latency-ms" in result.stdout


# --- batch -------------------------------------------------------------------------------


def test_batch_answers_every_line_once_bad_lines_included(emu: Emulator, tmp_path: Path) -> None:
    custom = json.dumps({"custom_id": "mine-3", "body": {"prompt": "custom", "max_new_tokens": 2}})
    bad_lines = {5: "not json", 9: "[1, 2]", 12: "{"}
    source = write_input(tmp_path / "in.jsonl", 40, {3: custom, 11: "", **bad_lines})
    output = tmp_path / "out.jsonl"
    result = emissary(emu, "batch", str(source), "-o", str(output), *TARGET, "--concurrency", "8")
    assert result.returncode == 1, result.stderr  # some rows failed
    rows = rows_of(output)
    assert sorted(r["index"] for r in rows) == [i for i in range(40) if i != 11]  # 11: blank
    by_index = {r["index"]: r for r in rows}
    assert by_index[3]["custom_id"] == "mine-3" and by_index[3]["completion"]["response"]
    for bad in bad_lines:
        assert by_index[bad]["completion"] is None
        assert by_index[bad]["error"]["type"] == "RequestValidationError"
        assert f"line {bad + 1}" in by_index[bad]["error"]["message"]
    good = [r for r in rows if r["error"] is None]
    assert len(good) == 36 == len(emu.requests)
    assert {r["request_id"] for r in good} == {seen.request_id for seen in emu.requests}
    assert "39 rows" in result.stderr and "36 succeeded, 3 failed" in result.stderr


def test_batch_exit_0_and_the_server_errors_in_rows(emu: Emulator, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 10)
    output = tmp_path / "out.jsonl"
    ok = emissary(emu, "batch", str(source), "-o", str(output), *TARGET, "--no-progress")
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr.count("\n") == 1  # the summary line alone: no bar
    emu.faults.fail(status=404)
    failed_output = tmp_path / "failed.jsonl"
    failed = emissary(
        emu, "batch", str(source), "-o", str(failed_output), *TARGET, "--concurrency", "1"
    )
    assert failed.returncode == 1
    (row,) = [r for r in rows_of(failed_output) if r["error"]]
    assert row["error"]["status_code"] == 404 and row["error"]["type"] == "APIErrorNotFound"


def test_batch_never_overwrites_an_output_without_resume(emu: Emulator, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 3)
    output = tmp_path / "out.jsonl"
    output.write_text("precious\n")
    result = emissary(emu, "batch", str(source), "-o", str(output), *TARGET)
    assert result.returncode == 2
    assert "pass --resume" in result.stderr
    assert output.read_text() == "precious\n" and emu.requests == []


def test_batch_progress_bar_on_request(emu: Emulator, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 5)
    result = emissary(
        emu, "batch", str(source), "-o", str(tmp_path / "o.jsonl"), *TARGET, "--progress"
    )
    assert result.returncode == 0
    assert "5/5" in result.stderr and "row" in result.stderr


def test_batch_usage_errors(emu: Emulator, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 2)
    for args, message in [
        (["--concurrency", "many"], "--concurrency must be auto or a number"),
        (["--concurrency", "0"], "concurrency must be 'auto' or an integer >= 1"),
        (["--rpm", "-1"], "requests_per_minute must be a positive number"),
    ]:
        result = emissary(emu, "batch", str(source), "-o", str(tmp_path / "o"), *TARGET, *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    missing = emissary(emu, "batch", str(tmp_path / "nope"), "-o", str(tmp_path / "o"), *TARGET)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def start_batch(emu: Emulator, source: Path, output: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "emissary", "batch", str(source), "-o", str(output), *TARGET,
         "--concurrency", "8", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=environment(emu),
    )  # fmt: skip


def wait_for_lines(output: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        if output.exists() and output.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"the batch wrote fewer than {count} lines in time")


def test_kill_9_mid_run_then_resume_runs_every_row_exactly_once(tmp_path: Path) -> None:
    with Emulator(latency_ms=5) as emu:
        # 30 rows are answered, then the 8 in flight hang: the kill comes while they wait.
        emu.faults.delay(0, 30).hang(8)
        source = write_input(tmp_path / "in.jsonl", 200)
        output = tmp_path / "out.jsonl"
        process = start_batch(emu, source, output)
        wait_for_lines(output, 30, process)
        wait_until(lambda: emu.in_flight == 8, "8 rows in flight")
        process.kill()  # SIGKILL: no cleanup at all
        process.communicate(timeout=10)
        first_run = len(emu.requests)
        with output.open("ab") as torn:
            torn.write(b'{"index": 199, "custom_id": null, "compl')  # as a crash mid-write
        resumed = emissary(emu, "batch", str(source), "-o", str(output), *TARGET, "--resume")
        assert resumed.returncode == 0, resumed.stderr
        assert "kept from before" in resumed.stderr
    rows = rows_of(output)
    assert sorted(r["index"] for r in rows) == list(range(200))  # each once, none lost
    assert all(r["error"] is None for r in rows)
    keys = keys_by_prompt(emu)
    assert len(keys) == 200
    assert all(len(k) == 1 for k in keys.values())  # re-sent rows kept their keys
    resent = len(emu.requests) - 200
    assert resent == 8  # the rows in flight at the kill, sent again (with their keys)
    assert first_run == 38


def test_sigint_exits_130_and_leaves_a_resumable_output(tmp_path: Path) -> None:
    with Emulator(latency_ms=40) as emu:
        source = write_input(tmp_path / "in.jsonl", 150)
        output = tmp_path / "out.jsonl"
        process = start_batch(emu, source, output)
        wait_for_lines(output, 20, process)
        interrupted_at = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
        assert process.returncode == 130, stderr
        assert time.monotonic() - interrupted_at < 2
        assert "interrupted: run again with --resume" in stderr
        assert output.read_bytes().endswith(b"\n")  # no torn line after a clean stop
        partial = len(rows_of(output))
        resumed = emissary(emu, "batch", str(source), "-o", str(output), *TARGET, "--resume")
        assert resumed.returncode == 0, resumed.stderr
    rows = rows_of(output)
    assert sorted(r["index"] for r in rows) == list(range(150))
    assert partial < 150
    assert all(len(k) == 1 for k in keys_by_prompt(emu).values())


def test_resume_reruns_failed_rows_with_their_keys(emu: Emulator, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 6)
    output = tmp_path / "out.jsonl"
    emu.faults.fail(2, status=400)
    first = emissary(emu, "batch", str(source), "-o", str(output), *TARGET, "--concurrency", "1")
    assert first.returncode == 1
    again = emissary(emu, "batch", str(source), "-o", str(output), *TARGET, "--resume")
    assert again.returncode == 0, again.stderr
    rows = rows_of(output)
    assert sorted(r["index"] for r in rows) == list(range(6))
    assert all(r["error"] is None for r in rows)
    assert len(emu.requests) == 8
    assert all(len(k) == 1 for k in keys_by_prompt(emu).values())
