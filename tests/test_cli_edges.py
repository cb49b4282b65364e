"""The ``emissary`` command line at its edges, end to end in subprocesses against the
emulator: blank and poisoned input lines, a pipe as INPUT (read once), a custom_id without
its body, an OUTPUT that cannot be written (before the run, and mid-run: a full device, a
file size limit, a closed pipe), ``-o -``, what ``--resume`` checks before it touches
OUTPUT (the deployment, the input, the state file), the fsync timer behind a hung row, an
empty prompt and ``--version``. Every wait is bounded."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from emissary._version import __version__
from emissary.testing import Emulator

from .faults import ROOT, WAIT, run_python, wait_until
from .test_cli import TARGET, emissary, environment, keys_by_prompt, rows_of, write_input


@pytest.fixture
def emu(thread_emulator: Emulator) -> Emulator:
    """conftest's emulator on a thread, under the name tests/test_cli.py's helpers use."""
    return thread_emulator


def body(i: int) -> str:
    return json.dumps({"prompt": f"row {i}", "max_new_tokens": 3})


def one_error_line(stderr: str) -> str:
    """The stderr of a refused or stopped command: one ``emissary: error:`` line (after
    the summary of a batch that ran), never a traceback."""
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    *summary, last = stderr.splitlines()
    assert len(summary) <= 1 and all(s.startswith("emissary batch: ") for s in summary), stderr
    assert last.startswith("emissary: error: "), stderr
    return last


# --- INPUT -------------------------------------------------------------------------------


def test_blank_lines_are_not_rows(emu: Emulator, tmp_path: Path) -> None:
    text = f"{body(0)}\n\n{body(2)}\n  \t\r\n{body(4)}\n\n \n"  # blank in the middle and after
    source = tmp_path / "in.jsonl"
    source.write_text(text)
    output = tmp_path / "out.jsonl"
    result = emissary(emu, "batch", str(source), "-o", str(output), *TARGET, "--progress")
    assert result.returncode == 0, result.stderr
    assert sorted(r["index"] for r in rows_of(output)) == [0, 2, 4]  # the input's line numbers
    assert "3/3" in result.stderr and "3 rows" in result.stderr and "0 failed" in result.stderr
    piped = tmp_path / "piped.jsonl"
    from_stdin = emissary(emu, "batch", "-", "-o", str(piped), *TARGET, stdin=text)
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert sorted(r["index"] for r in rows_of(piped)) == [0, 2, 4]
    assert len(emu.requests) == 6


def test_a_pipe_as_input_is_read_once(emu: Emulator, tmp_path: Path) -> None:
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)  # as bash's <(...) gives: rows that can be read only once

    def feed() -> None:
        with fifo.open("w") as pipe:  # waits for the command to open it
            pipe.write("".join(body(i) + "\n" for i in range(5)))

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    output = tmp_path / "out.jsonl"
    result = emissary(emu, "batch", str(fifo), "-o", str(output), *TARGET, timeout=30)
    feeder.join(timeout=10)
    assert result.returncode == 0, result.stderr
    assert sorted(r["index"] for r in rows_of(output)) == list(range(5))
    assert json.loads(Path(f"{output}.emissary").read_text())["input_sha256"] is None


def test_a_poisoned_line_is_its_rows_error_and_resume_gets_past_it(
    emu: Emulator, tmp_path: Path
) -> None:
    deep = "[" * 100_000  # json.loads: RecursionError
    surrogate = '{"custom_id": "\\ud800", "body": {"prompt": "hi"}}'  # UTF-8 cannot encode it
    source = write_input(tmp_path / "in.jsonl", 5, {1: deep, 2: surrogate})
    output = tmp_path / "out.jsonl"
    first = emissary(emu, "batch", str(source), "-o", str(output), *TARGET)
    assert first.returncode == 1, first.stderr  # some rows failed; the batch went on
    assert "Traceback" not in first.stderr
    lines = output.read_bytes().decode("utf-8").splitlines()  # all of it UTF-8
    by_index = {row["index"]: row for row in map(json.loads, lines)}
    assert sorted(by_index) == [0, 1, 2, 3, 4]
    assert "line 2 cannot be read (RecursionError" in by_index[1]["error"]["message"]
    assert by_index[2]["custom_id"] == "\ud800"  # kept exactly, as JSON's escape
    assert "custom_id has a lone surrogate" in by_index[2]["error"]["message"]
    assert [line for line in lines if '"\\ud800"' in line]  # the line is ASCII-only
    assert len(emu.requests) == 3
    resumed = emissary(emu, "batch", str(source), "-o", str(output), *TARGET, "--resume")
    assert resumed.returncode == 1 and "Traceback" not in resumed.stderr, resumed.stderr
    assert "2 rows" in resumed.stderr and "3 kept from before" in resumed.stderr
    assert sorted(r["index"] for r in rows_of(output)) == [0, 1, 2, 3, 4]
    assert len(emu.requests) == 3  # the good rows were kept, not sent again


def test_a_custom_id_without_its_body_is_its_rows_error(emu: Emulator, tmp_path: Path) -> None:
    lines = {
        0: '{"custom_id": "row-7"}',
        1: '{"custom_id": "row-8", "prompt": "hi"}',  # a body's keys beside a custom_id
        2: '{"custom_id": "row-9", "body": {"prompt": "hi"}, "extra": 1}',
        3: json.dumps({"custom_id": "row-10", "body": {"prompt": "hi", "max_new_tokens": 2}}),
    }
    source = write_input(tmp_path / "in.jsonl", 4, lines)
    output = tmp_path / "out.jsonl"
    result = emissary(emu, "batch", str(source), "-o", str(output), *TARGET)
    assert result.returncode == 1, result.stderr
    by_index = {row["index"]: row for row in rows_of(output)}
    assert [by_index[i]["custom_id"] for i in range(4)] == ["row-7", "row-8", "row-9", "row-10"]
    assert 'line 1 has no "body"' in by_index[0]["error"]["message"]
    assert 'line 2 has no "body"' in by_index[1]["error"]["message"]
    assert "'prompt'" in by_index[1]["error"]["message"]
    assert "'extra' beside" in by_index[2]["error"]["message"]
    assert by_index[3]["error"] is None and by_index[3]["completion"]["response"]
    assert len(emu.requests) == 1


# --- OUTPUT ------------------------------------------------------------------------------


def test_output_in_a_missing_directory_is_refused(emu: Emulator, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 3)
    output = tmp_path / "missing" / "out.jsonl"
    result = emissary(emu, "batch", str(source), "-o", str(output), *TARGET)
    assert result.returncode == 2
    assert one_error_line(result.stderr) == (
        f"emissary: error: cannot write {output}: No such file or directory"
    )
    assert emu.requests == [] and not output.parent.exists()


SIZE_LIMITED = """
import os, resource, sys
resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))
os.execv(sys.executable, [sys.executable, "-m", "emissary", *sys.argv[1:]])
"""
"""The command under a 3000-byte file size limit: OUTPUT fills up mid-run, the write that
crosses the limit torn (as on a full disk), the next refused with EFBIG (Python ignores
SIGXFSZ)."""


def test_output_full_mid_run_stops_with_4_and_resume_finishes(
    emu: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 200)
    output = tmp_path / "out.jsonl"
    command = [sys.executable, "-c", SIZE_LIMITED, "batch", str(source), "-o", str(output)]
    full = subprocess.run(
        [*command, *TARGET, "--concurrency", "8"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=environment(emu),
    )
    assert full.returncode == 4, full.stderr
    assert one_error_line(full.stderr) == (
        f"emissary: error: cannot write {output}: File too large; "
        f"stopped: run again with --resume to finish {output}"
    )
    data = output.read_bytes()
    assert len(data) == 3000 and not data.endswith(b"\n")  # a torn last line
    written = data.count(b"\n")
    assert 0 < written < 200
    assert len(emu.requests) <= written + 16  # promptly: the rows out and in flight, no more
    resumed = emissary(emu, "batch", str(source), "-o", str(output), *TARGET, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{written} kept from before" in resumed.stderr
    rows = rows_of(output)
    assert sorted(r["index"] for r in rows) == list(range(200))  # each once, none lost
    keys = keys_by_prompt(emu)
    assert len(keys) == 200 and all(len(k) == 1 for k in keys.values())


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_output_on_a_full_device_then_resume_into_a_file(emu: Emulator, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 30)
    output = tmp_path / "out.jsonl"
    output.symlink_to("/dev/full")  # every write: ENOSPC
    full = emissary(emu, "batch", str(source), "-o", str(output), *TARGET, "--concurrency", "4")
    assert full.returncode == 4
    assert "No space left on device; stopped" in one_error_line(full.stderr)
    assert len(emu.requests) <= 8
    real = tmp_path / "real.jsonl"
    output.unlink()
    output.symlink_to(real)  # space again
    resumed = emissary(emu, "batch", str(source), "-o", str(output), *TARGET, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(r["index"] for r in rows_of(real)) == list(range(30))
    assert all(len(k) == 1 for k in keys_by_prompt(emu).values())  # re-sent: the same key


def test_output_dash_is_stdout(emu: Emulator, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 5)
    result = emissary(emu, "batch", str(source), "-o", "-", *TARGET, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["index"] for r in rows) == list(range(5))
    assert sorted(tmp_path.iterdir()) == [source]  # no file named '-', no state file
    resume = emissary(emu, "batch", str(source), "-o", "-", *TARGET, "--resume", cwd=tmp_path)
    assert resume.returncode == 2
    assert one_error_line(resume.stderr) == (
        "emissary: error: --resume needs an OUTPUT file: -o - (stdout) keeps no state"
    )
    assert len(emu.requests) == 5


def test_a_closed_stdout_stops_with_4(emu: Emulator, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 5)
    reader, writer = os.pipe()
    os.close(reader)  # whoever read the rows has gone: every write is EPIPE
    try:
        result = subprocess.run(
            [sys.executable, "-m", "emissary", "batch", str(source), "-o", "-", *TARGET],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=tmp_path,  # were '-' taken as a file name, it would be made here
            env=environment(emu),
        )
    finally:
        os.close(writer)
    assert result.returncode == 4
    assert (
        one_error_line(result.stderr)
        == "emissary: error: cannot write stdout: Broken pipe; stopped"
    )


# --- what --resume checks first ----------------------------------------------------------


def interrupted_run(emu: Emulator, tmp_path: Path) -> tuple[Path, Path]:
    """A run with failed rows and a torn last line: what --resume would rewrite."""
    source = write_input(tmp_path / "in.jsonl", 6)
    output = tmp_path / "out.jsonl"
    emu.faults.fail(2, status=400)
    first = emissary(emu, "batch", str(source), "-o", str(output), *TARGET, "--concurrency", "1")
    assert first.returncode == 1, first.stderr
    with output.open("ab") as torn:
        torn.write(b'{"index": 5, "custom_id": null, "compl')
    return source, output


def test_the_state_file_remembers_the_input(emu: Emulator, tmp_path: Path) -> None:
    source, output = interrupted_run(emu, tmp_path)
    state = json.loads(Path(f"{output}.emissary").read_text())
    assert set(state) == {"run_id", "project_id", "deployment_id", "endpoint", "input_sha256"}
    assert state["endpoint"] == "completions"
    assert state["input_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    before, sent = output.read_bytes(), len(emu.requests)
    other = write_input(tmp_path / "other.jsonl", 6, {0: body(100)})
    refused = emissary(emu, "batch", str(other), "-o", str(output), *TARGET, "--resume")
    assert refused.returncode == 2
    assert one_error_line(refused.stderr) == (
        f"emissary: error: {output} holds the run of another input than {other} (their "
        "SHA-256 differ): resume with that input, or choose another OUTPUT"
    )
    assert output.read_bytes() == before and len(emu.requests) == sent
    same = emissary(emu, "batch", str(source), "-o", str(output), *TARGET, "--resume")
    assert same.returncode == 0, same.stderr
    assert sorted(r["index"] for r in rows_of(output)) == list(range(6))
    assert all(len(k) == 1 for k in keys_by_prompt(emu).values())


def test_stdin_is_resumed_unchecked(emu: Emulator, tmp_path: Path) -> None:
    source, output = interrupted_run(emu, tmp_path)
    piped = emissary(
        emu, "batch", "-", "-o", str(output), *TARGET, "--resume", stdin=source.read_text()
    )
    assert piped.returncode == 0, piped.stderr
    assert sorted(r["index"] for r in rows_of(output)) == list(range(6))
    assert all(len(k) == 1 for k in keys_by_prompt(emu).values())


def test_a_refused_resume_leaves_output_untouched(emu: Emulator, tmp_path: Path) -> None:
    source, output = interrupted_run(emu, tmp_path)
    before, sent = output.read_bytes(), len(emu.requests)
    other = ["-p", TARGET[1], "-d", "another-deployment"]
    refused = emissary(emu, "batch", str(source), "-o", str(output), *other, "--resume")
    assert refused.returncode == 2
    assert "holds a run for demo-project/demo-deployment" in one_error_line(refused.stderr)
    assert output.read_bytes() == before and len(emu.requests) == sent


@pytest.mark.parametrize(
    "state",
    [
        "[]",
        "not json",
        '{"run_id": "not a uuid", "project_id": "p", "deployment_id": "d", "input_sha256": null}',
        '{"run_id": "7d444840-9dc0-11d1-b245-5ffdce74fad2", "project_id": "p"}',
    ],
)
def test_a_corrupt_state_file_is_refused_until_deleted(
    emu: Emulator, tmp_path: Path, state: str
) -> None:
    source, output = interrupted_run(emu, tmp_path)
    state_file = Path(f"{output}.emissary")
    state_file.write_text(state)
    before, sent, keys = output.read_bytes(), len(emu.requests), keys_by_prompt(emu)
    refused = emissary(emu, "batch", str(source), "-o", str(output), *TARGET, "--resume")
    assert refused.returncode == 2
    assert one_error_line(refused.stderr) == (
        f"emissary: error: {state_file} is not a state file of emissary batch: delete it to "
        "resume with a fresh series of Idempotency-Keys (rows sent again then get new keys)"
    )
    assert output.read_bytes() == before and len(emu.requests) == sent
    state_file.unlink()
    fresh = emissary(emu, "batch", str(source), "-o", str(output), *TARGET, "--resume")
    assert fresh.returncode == 0, fresh.stderr
    assert sorted(r["index"] for r in rows_of(output)) == list(range(6))
    resent = keys_by_prompt(emu)
    assert all(len(resent[p]) == 2 for p in ("row 0", "row 1"))  # the failed rows: new keys
    assert all(resent[p] == keys[p] for p in ("row 2", "row 3", "row 4"))  # kept: not sent


# --- durability --------------------------------------------------------------------------


def test_a_written_row_is_fsynced_while_a_slow_row_hangs(emu: Emulator, tmp_path: Path) -> None:
    emu.faults.delay(0).hang()  # row 0 is answered, then row 1 never is
    source = write_input(tmp_path / "in.jsonl", 2)
    output = tmp_path / "out.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "emissary", "batch", str(source), "-o", str(output), *TARGET,
         "--concurrency", "1"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**environment(emu), "EMISSARY_LOG": "debug"},  # logs each fsync
    )  # fmt: skip
    stderr = process.stderr
    assert stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in stderr])
    reader.start()
    try:
        wait_until(lambda: output.exists() and len(rows_of(output)) == 1, "row 0 written")
        written = time.monotonic()
        deadline = written + WAIT
        line = ""
        while "fsynced" not in line:  # the old code never synced before the hung row ended
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        # Within about a second of the write (the timer's), not at the next row's write:
        assert time.monotonic() - written < 3.0
        assert f"{output} fsynced: rows written: 1" in line
        # Synced with nothing else written: row 1 still hangs, and the run goes on.
        assert process.poll() is None and emu.in_flight == 1
        assert len(rows_of(output)) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 143
        reader.join(timeout=10)
        stderr.close()


# --- complete and --version --------------------------------------------------------------


def test_complete_refuses_an_empty_prompt(emu: Emulator) -> None:
    for args, stdin in [((), ""), (("-",), ""), (("",), None)]:
        result = emissary(emu, "complete", *TARGET, *args, stdin=stdin)
        assert result.returncode == 2
        assert one_error_line(result.stderr) == (
            "emissary: error: the prompt is empty: give a PROMPT, or pipe one in on stdin"
        )
    assert emu.requests == []


def test_version_imports_neither_aiohttp_nor_tqdm(emu: Emulator) -> None:
    result = emissary(emu, "--version")
    assert result.returncode == 0 and result.stdout == f"emissary-python {__version__}\n"
    light = run_python(
        """
        import sys
        from emissary._cli import main
        try:
            main(["--version"])
        except SystemExit as exit:
            assert exit.code == 0
        heavy = sorted(m for m in ("aiohttp", "tqdm", "msgspec", "yarl") if m in sys.modules)
        print("heavy:", heavy)
        """
    )
    assert light.returncode == 0, light.stderr
    assert f"emissary-python {__version__}\nheavy: []" in light.stdout
