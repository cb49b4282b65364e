"""The whole platform from a shell (issue #23): every ``emissary`` command in a subprocess,
over real HTTP on loopback, against the bundled emulator on sped-up time.

Each command's JSON (parsed), its table (``--format table``, and by default on a terminal,
a pty, where progress bars draw on stderr too) and ``--quiet``; the exit
statuses (0 done, 1 an API error or a failed wait, 2 usage found before anything is sent,
3 ``--max-wait`` ran out, 130 Ctrl-C in any wait, ``fine-tune`` included, with the command
that cancels what goes on); deletes of each kind that need ``--yes`` without a terminal and
ask on one (a pty); ``--missing-ok``;
``--param`` types; ``fine-tune --state`` killed with SIGKILL mid-training, then resumed
(one project, one upload, one training job); ``batch --endpoint`` killed with SIGKILL
mid-run, then resumed (every row once, re-sent rows with their keys); and the help that
imports no SDK. Every wait is bounded; nothing sleeps to wait out a race.

Lifecycles are instant unless a test says otherwise (scripts of zero seconds): a wait's
first poll sees the end, so no test waits for the SDK's 2-second poll interval.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import shlex
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emissary import EmissaryClient
from emissary.testing import (
    DatasetScript,
    DeploymentScript,
    Emulator,
    TrainingScript,
)

from .faults import ROOT, run_python

BIN = Path(sys.executable).parent
DEMO = ["-p", "demo-project", "-d", "demo-deployment"]
TRAIN = b"".join(b'{"prompt": "q%d", "completion": "a%d"}\n' % (i, i) for i in range(20))


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """An emulator (1000 times faster than real time) whose lifecycles end at once."""
    with Emulator(time_scale=0.001) as emulator:
        emulator.scripts.dataset = DatasetScript(processing_s=0)
        emulator.scripts.training = TrainingScript(pending_s=0, running_s=0)
        emulator.scripts.deployment = DeploymentScript(pending_s=0, deploying_s=0)
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[EmissaryClient]:
    """A client of the test's own, to set things up and look at them."""
    with EmissaryClient(api_key=emu.api_key, server_url=emu.url) as sdk:
        yield sdk


def environment(emu: Emulator) -> dict[str, str]:
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EMISSARY_") and k.lower() not in proxies
    }
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "EMISSARY_CLIENT_API_KEY": emu.api_key,
        "EMISSARY_SERVER_URL": emu.url,
    }


def argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "emissary._cli", *args]


def cli(
    emu: Emulator, *args: str, stdin: str | None = None, cwd: Path = ROOT, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``emissary ARGS`` to its end; stdin is empty (not a terminal) unless given."""
    return subprocess.run(
        argv(*args),
        input=stdin or "",
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=environment(emu),
    )


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a command that succeeded printed."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command printed on stderr (no traceback)."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def fields(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """A one-resource table (a field per line) as a dict."""
    assert result.returncode == 0, result.stderr
    return dict(line.split(None, 1) for line in result.stdout.splitlines())


def usage_error(result: subprocess.CompletedProcess[str]) -> str:
    """A usage error found by argparse: exit 2, its usage block, then one line."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.startswith("usage: emissary ")
    *_, last = result.stderr.splitlines()
    assert ": error: " in last, result.stderr
    return last


def sent(emu: Emulator, operation: str) -> list[Any]:
    """The requests of `operation` the emulator has seen."""
    return [r for r in emu.requests if r.operation == operation]


def bounded(check: Callable[[], bool], what: str, seconds: float = 20) -> None:
    """Until `check()` holds (polled every 10 ms), for `seconds` at most."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not in {seconds} s: {what}"
        time.sleep(0.01)


def project_with_job(client: EmissaryClient) -> tuple[str, str]:
    """A project, a processed dataset and a training job (as the scripts make it)."""
    project = client.projects.create(request={"name": "cli"})
    assert project.id is not None
    dataset = client.datasets.upload(project_id=project.id, file=TRAIN, filename="t.jsonl")
    assert dataset.id is not None
    client.datasets.wait(project_id=project.id, dataset_id=dataset.id)
    job = client.training_jobs.create(
        project_id=project.id,
        request_body={"base_model": "Llama-3.2-1B", "train_dataset_id": dataset.id},
    )
    assert job.id is not None
    return project.id, job.id


# --- models and projects -------------------------------------------------------------------


def test_models_as_json_table_and_ids(emu: Emulator) -> None:
    names = [m.name for m in emu.base_models]
    listed = ok(cli(emu, "models", "list"))  # not a terminal: JSON
    assert [m["name"] for m in listed] == names
    assert set(listed[0]) == {"name", "type", "parameter_template", "support_serverless"}
    table = cli(emu, "models", "list", "--format", "table").stdout.splitlines()
    assert table[0].split() == ["NAME", "TYPE", "SERVERLESS"]
    assert table[1].split() == ["Llama-3.2-1B", "completion", "yes"]
    assert cli(emu, "models", "list", "-q").stdout.split() == names
    one = ok(cli(emu, "models", "get", "bge-small-en-v1.5"))
    assert one["type"] == "embeddings" and one["parameter_template"]["epochs"] == 3
    shown = fields(cli(emu, "models", "get", "bge-small-en-v1.5", "--format", "table"))
    assert shown["parameter_template"] == "epochs=3 learning_rate=2e-05 batch_size=32"
    assert shown["support_serverless"] == "yes"
    missing = cli(emu, "models", "get", "gpt-9")
    assert missing.returncode == 1
    assert one_line(missing).startswith("emissary: APIErrorNotFound: base model 'gpt-9' ")
    assert "request id req-" in missing.stderr


def test_projects_create_list_get_delete(emu: Emulator) -> None:
    made = ok(cli(emu, "projects", "create", "--name", "support-bot"))
    pid = made["id"]
    assert made["name"] == "support-bot" and pid in emu.projects
    assert pid in cli(emu, "projects", "list", "-q").stdout.split()
    table = cli(emu, "projects", "list", "--format", "table").stdout.splitlines()
    assert table[0].split() == ["ID", "NAME"] and [pid, "support-bot"] in [
        row.split() for row in table
    ]
    detail = ok(cli(emu, "projects", "get", pid))
    assert detail["id"] == pid and detail["datasets"] == []
    shown = fields(cli(emu, "projects", "get", pid, "--format", "table"))
    assert shown == {"id": pid, "name": "support-bot", "datasets": "0", "training_jobs": "0",
                     "deployments": "0"}  # fmt: skip
    unnamed = cli(emu, "projects", "create", "-q")
    assert unnamed.stdout.strip() in emu.projects  # --quiet: the id alone

    # A delete needs --yes when stdin is not a terminal: refused before anything is sent.
    emu.requests.clear()
    refused = cli(emu, "projects", "delete", pid)
    assert refused.returncode == 2 and "pass --yes" not in refused.stdout
    assert one_line(refused) == (
        f"emissary: error: deleting project {pid} needs --yes (stdin is not a terminal to ask on)"
    )
    assert emu.requests == [] and pid in emu.projects
    assert ok(cli(emu, "projects", "delete", pid, "--yes")) == {"id": pid, "deleted": True}
    assert pid not in emu.projects
    again = cli(emu, "projects", "delete", pid, "--yes")  # gone already: an API error
    assert again.returncode == 1 and "APIErrorNotFound" in one_line(again)
    gone = cli(emu, "projects", "delete", pid, "--yes", "--missing-ok", "-q")
    assert gone.returncode == 0 and gone.stdout == f"{pid}\n"
    missing = cli(emu, "projects", "get", pid)
    assert missing.returncode == 1 and one_line(missing).startswith("emissary: APIErrorNotFound")


@pytest.mark.parametrize(("answer", "deleted"), [("y\n", True), ("n\n", False), ("\n", False)])
def test_a_delete_asks_on_a_terminal(emu: Emulator, answer: str, deleted: bool) -> None:
    pid = cli(emu, "projects", "create", "-q").stdout.strip()
    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer.encode())  # typed ahead: read once it asks
        result = subprocess.run(
            argv("projects", "delete", pid),
            stdin=terminal,
            capture_output=True,
            text=True,
            timeout=60,
            env=environment(emu),
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert result.stderr.startswith(f"Delete project {pid}? [y/N] "), result.stderr
    assert (pid not in emu.projects) is deleted
    if deleted:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 1
        assert result.stderr.endswith(f"emissary: project {pid} not deleted\n")
        assert sent(emu, "projects.delete") == []


# --- datasets ------------------------------------------------------------------------------


def test_datasets_upload_from_a_file_and_stdin(emu: Emulator, tmp_path: Path) -> None:
    pid = cli(emu, "projects", "create", "-q").stdout.strip()
    (tmp_path / "train.jsonl").write_bytes(TRAIN)
    uploaded = ok(
        cli(emu, "datasets", "upload", "-p", pid, "train.jsonl", "--name", "t", "--wait",
            cwd=tmp_path)
    )  # fmt: skip
    assert uploaded["is_uploaded"] is True and uploaded["name"] == "t"
    (upload,) = emu.uploads
    assert upload.filename == "train.jsonl" and upload.name == "t"
    assert upload.sha256 == hashlib.sha256(TRAIN).hexdigest()
    piped = cli(emu, "datasets", "upload", "-p", pid, "-", "-q", stdin=TRAIN.decode())
    assert piped.returncode == 0, piped.stderr
    assert emu.uploads[1].filename == "data" and emu.uploads[1].size == len(TRAIN)
    ids = cli(emu, "datasets", "list", "-p", pid, "-q").stdout.split()
    assert ids == [uploaded["id"], piped.stdout.strip()]
    table = cli(emu, "datasets", "list", "-p", pid, "--format", "table").stdout.splitlines()
    assert table[0].split() == ["ID", "NAME", "UPLOADED", "CREATED"]
    assert table[1].split()[:3] == [uploaded["id"], "t", "yes"]
    detail = ok(cli(emu, "datasets", "get", "-p", pid, uploaded["id"]))
    assert detail["dataset_download_url"]
    deleted = cli(emu, "datasets", "delete", "-p", pid, uploaded["id"], "--yes", "-q")
    assert deleted.stdout == f"{uploaded['id']}\n"
    assert cli(emu, "datasets", "list", "-p", pid, "-q").stdout.split() == ids[1:]


def test_a_missing_input_file_is_a_usage_error_before_anything_is_sent(
    emu: Emulator, tmp_path: Path
) -> None:
    missing = str(tmp_path / "nope.jsonl")
    for args, message in [
        (["datasets", "upload", "-p", "demo-project", missing], f"cannot read {missing}: "),
        (["training-jobs", "create", "-p", "demo-project", "--base-model", "Llama-3.2-1B",
          "--train", missing], f"cannot read {missing}: "),
        (["fine-tune", "--base-model", "Llama-3.2-1B", "--train", missing],
         f"cannot read {missing}: "),
        (["datasets", "upload", "-p", "demo-project", str(tmp_path)],
         f"cannot upload {tmp_path}: it is a directory"),
    ]:  # fmt: skip
        result = cli(emu, *args)
        assert result.returncode == 2, result.stderr
        assert one_line(result).startswith(f"emissary: error: {message}")
    assert emu.requests == []


# --- training jobs -------------------------------------------------------------------------


def test_training_jobs_create_uploads_trains_and_sends_params_as_numbers(
    emu: Emulator, tmp_path: Path
) -> None:
    pid = cli(emu, "projects", "create", "-q").stdout.strip()
    (tmp_path / "train.jsonl").write_bytes(TRAIN)
    job = ok(
        cli(emu, "training-jobs", "create", "-p", pid, "--base-model", "Llama-3.2-1B",
            "--train", "train.jsonl", "--param", "epochs=2", "--param", "learning_rate=2e-4",
            "--param", "batch_size=8.0", "--param", 'tag="3"', "--param", "packing=true",
            "--param", "note=a=b", "--name", "nightly", "--wait", cwd=tmp_path)
    )  # fmt: skip
    assert job["status"] == "Success" and job["name"] == "nightly" and job["progress"] == 100
    (create,) = sent(emu, "training_jobs.create")
    body = json.loads(create.body)
    assert body["parameters"] == {
        "epochs": 2, "learning_rate": 0.0002, "batch_size": 8.0, "tag": "3",
        "packing": "true", "note": "a=b",
    }  # fmt: skip
    assert type(body["parameters"]["epochs"]) is int
    assert type(body["parameters"]["batch_size"]) is float
    assert body["train_dataset_id"] == emu.uploads[0].dataset_id
    jid = job["id"]
    assert cli(emu, "training-jobs", "list", "-p", pid, "-q").stdout.split() == [jid]
    table = cli(emu, "training-jobs", "list", "-p", pid, "--format", "table").stdout
    header, row = table.splitlines()
    assert header.split() == ["ID", "NAME", "BASE", "MODEL", "STATUS", "PROGRESS", "CREATED"]
    assert row.split()[:5] == [jid, "nightly", "Llama-3.2-1B", "Success", "100%"]
    detail = fields(cli(emu, "training-jobs", "get", "-p", pid, jid, "--format", "table"))
    assert detail["status"] == "Success" and detail["progress"] == "100%"
    assert detail["train_dataset"] == emu.uploads[0].dataset_id
    assert cli(emu, "training-jobs", "checkpoints", "-p", pid, jid, "-q").stdout.split() == [
        "1", "2", "3", "4",
    ]  # fmt: skip
    saved = ok(cli(emu, "training-jobs", "checkpoints", "-p", pid, jid))
    assert [c["checkpoint"] for c in saved] == [1, 2, 3, 4]
    waited = ok(cli(emu, "training-jobs", "wait", "-p", pid, jid, "--max-wait", "1h30m"))
    assert waited["status"] == "Success"
    assert ok(cli(emu, "training-jobs", "delete", "-p", pid, jid, "--yes")) == {
        "id": jid, "deleted": True,
    }  # fmt: skip


def test_training_jobs_from_a_dataset_without_waiting_then_cancel(
    emu: Emulator, client: EmissaryClient
) -> None:
    emu.scripts.training = TrainingScript(pending_s=3600, running_s=3600)
    pid, first = project_with_job(client)
    dataset = client.training_jobs.get(project_id=pid, training_job_id=first).train_dataset
    assert dataset is not None and dataset.id is not None
    job = ok(
        cli(emu, "training-jobs", "create", "-p", pid, "--base-model", "Llama-3.2-1B",
            "--train-dataset", dataset.id, "--split-ratio", "0.9")
    )  # fmt: skip
    assert job["status"] == "Pending"
    assert json.loads(sent(emu, "training_jobs.create")[-1].body) == {
        "base_model": "Llama-3.2-1B", "train_dataset_id": dataset.id,
        "train_test_split_ratio": 0.9,
    }  # fmt: skip
    cancel = ["training-jobs", "cancel", "-p", pid, job["id"], "--format", "table"]
    assert fields(cli(emu, *cancel)) == {"id": job["id"], "cancelled": "yes"}
    status = client.training_jobs.get(project_id=pid, training_job_id=job["id"]).status
    assert status == "Cancelled"
    failed = cli(emu, "training-jobs", "wait", "-p", pid, job["id"])  # a failure: exit 1
    assert failed.returncode == 1
    assert one_line(failed) == (
        f"emissary: TrainingJobError: the training job {job['id']} ended Cancelled at 0 %"
    )


def test_a_failed_wait_exits_1_and_one_out_of_time_3(emu: Emulator, client: EmissaryClient) -> None:
    emu.scripts.training = TrainingScript(pending_s=0, running_s=0, outcome="Failed")
    pid, failed = project_with_job(client)
    result = cli(emu, "training-jobs", "wait", "-p", pid, failed)
    assert result.returncode == 1
    assert "ended Failed" in one_line(result)
    emu.scripts.training = TrainingScript(pending_s=0, running_s=6 * 3600)  # 21.6 s here
    pid, running = project_with_job(client)
    started = time.monotonic()
    timed_out = cli(emu, "training-jobs", "wait", "-p", pid, running, "--max-wait", "0.3s")
    assert time.monotonic() - started < 30
    assert timed_out.returncode == 3
    line = one_line(timed_out)
    assert line.startswith(f"emissary: WaitTimeoutError: the training job {running} was not ")
    assert line.endswith(
        f"; wait again: emissary training-jobs wait -p {pid} {running}; or cancel it: "
        f"emissary training-jobs cancel -p {pid} {running}"
    )
    assert ok(cli(emu, "training-jobs", "cancel", "-p", pid, running))["cancelled"] is True
    assert client.training_jobs.get(project_id=pid, training_job_id=running).status == "Cancelled"


def interrupted(emu: Emulator, args: list[str], polled: str, cwd: Path = ROOT) -> str:
    """``emissary ARGS`` sent SIGINT once it has made its first `polled` request: it exits
    130 with nothing on stdout and no traceback; its stderr."""
    process = subprocess.Popen(
        argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=environment(emu), cwd=cwd,
    )  # fmt: skip
    try:
        bounded(lambda: len(sent(emu, polled)) >= 1, f"the first {polled} of {args[:2]}")
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 130, stderr
    assert stdout == "" and "Traceback" not in stderr
    return stderr


def test_ctrl_c_during_a_wait_exits_130_and_names_the_cancel_command(
    emu: Emulator, client: EmissaryClient
) -> None:
    emu.scripts.training = TrainingScript(pending_s=0, running_s=24 * 3600)  # 86 s here
    pid, job = project_with_job(client)
    stderr = interrupted(emu, ["training-jobs", "wait", "-p", pid, job], "training_jobs.get")
    command = f"emissary training-jobs cancel -p {pid} {job}"
    assert stderr.splitlines()[-1] == (
        f"emissary: interrupted: the training job {job} keeps running on the server; "
        f"cancel it with: {command}"
    )
    assert client.training_jobs.get(project_id=pid, training_job_id=job).status == "Running"
    words = shlex.split(command)  # as printed, with this environment's emissary script
    cancelled = subprocess.run(
        [str(BIN / words[0]), *words[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(emu),
    )
    assert cancelled.returncode == 0, cancelled.stderr
    assert client.training_jobs.get(project_id=pid, training_job_id=job).status == "Cancelled"


@pytest.mark.parametrize("command", ["deployments wait", "fine-tune"])
def test_ctrl_c_in_a_deployment_wait_or_a_fine_tune_exits_130_naming_what_to_cancel(
    command: str, emu: Emulator, client: EmissaryClient, tmp_path: Path
) -> None:
    if command == "deployments wait":
        emu.scripts.deployment = DeploymentScript(pending_s=0, deploying_s=24 * 3600)
        pid, job = project_with_job(client)
        deployment = client.deployments.create(
            project_id=pid, request_body={"training_job_id": job, "checkpoint": 4}
        )
        assert deployment.id is not None
        args = ["deployments", "wait", "-p", pid, deployment.id]
        polled = "deployments.get"
    else:
        emu.scripts.training = TrainingScript(pending_s=0, running_s=24 * 3600)
        (tmp_path / "train.jsonl").write_bytes(TRAIN)
        args = ["fine-tune", "--base-model", "Llama-3.2-1B", "--train", "train.jsonl",
                "--project-name", "bot"]  # fmt: skip
        polled = "training_jobs.get"
    stderr = interrupted(emu, args, polled, cwd=tmp_path)
    params = sent(emu, polled)[0].path_params
    pid = params["project_id"]
    noun, kind = (
        ("deployment", "deployments")
        if polled == "deployments.get"
        else ("training job", "training-jobs")
    )
    rid = params["deployment_id" if noun == "deployment" else "training_job_id"]
    assert stderr.splitlines()[-1] == (
        f"emissary: interrupted: the {noun} {rid} keeps running on the server; "
        f"cancel it with: emissary {kind} cancel -p {pid} {rid}"
    )
    assert sent(emu, polled.replace(".get", ".cancel")) == []  # nothing cancelled


@pytest.mark.parametrize("kind", ["datasets", "training-jobs", "deployments"])
def test_a_delete_that_cannot_ask_needs_yes(
    kind: str, emu: Emulator, client: EmissaryClient
) -> None:
    pid, job = project_with_job(client)
    if kind == "datasets":
        (dataset,) = client.datasets.list(project_id=pid)
        rid = dataset.id
    elif kind == "training-jobs":
        rid = job
    else:
        rid = client.deployments.create(
            project_id=pid, request_body={"training_job_id": job, "checkpoint": 4}
        ).id
    assert rid is not None
    refused = cli(emu, kind, "delete", "-p", pid, rid)  # stdin: not a terminal
    assert refused.returncode == 2
    assert one_line(refused).endswith("needs --yes (stdin is not a terminal to ask on)")
    assert [r for r in emu.requests if r.method == "DELETE"] == []
    assert ok(cli(emu, kind, "delete", "-p", pid, rid, "--yes"))["deleted"] is True


def on_a_terminal(emu: Emulator, *args: str, stream: str, cwd: Path = ROOT) -> tuple[str, str]:
    """``emissary ARGS`` with its `stream` (stdout or stderr) on an 80-column terminal and
    the other piped: (what the terminal showed, what the pipe got)."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    shown = bytearray()
    try:
        result = subprocess.run(
            argv(*args), stdin=subprocess.DEVNULL, timeout=60, env=environment(emu), cwd=cwd,
            stdout=terminal if stream == "stdout" else subprocess.PIPE,
            stderr=terminal if stream == "stderr" else subprocess.PIPE,
        )  # fmt: skip
        os.close(terminal)
        terminal = -1
        while True:  # what the terminal holds, to its end (EIO once no one has it open)
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if terminal != -1:
            os.close(terminal)
        os.close(controller)
    assert result.returncode == 0, (result.stderr, bytes(shown))
    piped = result.stderr if stream == "stdout" else result.stdout
    return shown.decode(), piped.decode()


def test_a_terminal_gets_tables_and_progress_bars_a_pipe_json_alone(
    emu: Emulator, tmp_path: Path
) -> None:
    table, _ = on_a_terminal(emu, "models", "list", stream="stdout")
    assert table.splitlines()[0].split()[:2] == ["NAME", "TYPE"], table
    assert not table.lstrip().startswith("[")  # not JSON
    pid = cli(emu, "projects", "create", "-q").stdout.strip()
    (tmp_path / "train.jsonl").write_bytes(TRAIN)
    upload = ["datasets", "upload", "-p", pid, "train.jsonl", "--wait"]
    bars, printed = on_a_terminal(emu, *upload, stream="stderr", cwd=tmp_path)
    assert "100%" in bars and "\r" in bars, bars  # tqdm's bar, redrawn in place
    assert json.loads(printed)["is_uploaded"] is True  # stdout piped: JSON
    quiet = cli(emu, *upload, cwd=tmp_path)  # stderr piped: no bar
    assert quiet.returncode == 0 and quiet.stderr == ""


# --- deployments ---------------------------------------------------------------------------


def test_deployments_create_list_get_wait_cancel_delete(
    emu: Emulator, client: EmissaryClient
) -> None:
    pid, job = project_with_job(client)
    deployed = ok(
        cli(emu, "deployments", "create", "-p", pid, "--training-job", job, "--name", "prod",
            "--wait")
    )  # fmt: skip
    assert deployed["status"] == "Deployed" and deployed["checkpoint"] == 4  # the last
    (create,) = sent(emu, "deployments.create")
    assert json.loads(create.body) == {"training_job_id": job, "checkpoint": 4, "name": "prod"}
    second = ok(
        cli(emu, "deployments", "create", "-p", pid, "--training-job", job, "--checkpoint", "2",
            "--server-type", "serverless")
    )  # fmt: skip
    assert json.loads(sent(emu, "deployments.create")[1].body)["checkpoint"] == 2
    ids = cli(emu, "deployments", "list", "-p", pid, "-q").stdout.split()
    assert ids == [deployed["id"], second["id"]]
    table = cli(emu, "deployments", "list", "-p", pid, "--format", "table").stdout.splitlines()
    assert table[0].split() == ["ID", "NAME", "STATUS", "CREATED"]
    assert table[1].split()[:3] == [deployed["id"], "prod", "Deployed"]
    assert ok(cli(emu, "deployments", "get", "-p", pid, second["id"]))["checkpoint"] == 2
    assert ok(cli(emu, "deployments", "wait", "-p", pid, second["id"]))["status"] == "Deployed"
    chat = cli(emu, "chat", "-p", pid, "-d", deployed["id"], "Hello")
    assert chat.returncode == 0 and chat.stdout.strip()
    cancelled = cli(emu, "deployments", "cancel", "-p", pid, second["id"], "-q")
    assert cancelled.stdout == f"{second['id']}\n"
    deleted = ok(cli(emu, "deployments", "delete", "-p", pid, deployed["id"], "-y"))
    assert deleted == {"id": deployed["id"], "deleted": True}
    assert emu.projects[pid] == {second["id"]}
    missing = cli(emu, "deployments", "create", "-p", pid, "--training-job", "tr-nope")
    assert missing.returncode == 1 and "APIErrorNotFound" in one_line(missing)


def test_a_failed_deployment_wait_names_its_status(emu: Emulator, client: EmissaryClient) -> None:
    emu.scripts.deployment = DeploymentScript(pending_s=0, deploying_s=0, outcome="Failed")
    pid, job = project_with_job(client)
    result = cli(emu, "deployments", "create", "-p", pid, "--training-job", job, "--wait")
    assert result.returncode == 1 and result.stdout == ""
    assert one_line(result).startswith("emissary: DeploymentError: the deployment dp-")
    assert "ended Failed" in result.stderr


# --- fine-tune -----------------------------------------------------------------------------


def test_fine_tune_prints_the_run(emu: Emulator, tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_bytes(TRAIN)
    run = ok(
        cli(emu, "fine-tune", "--base-model", "Llama-3.2-1B-Instruct", "--train", "train.jsonl",
            "--project-name", "bot", "--param", "epochs=1", cwd=tmp_path)
    )  # fmt: skip
    assert run["project"]["name"] == "bot"
    assert run["training_job"]["status"] == "Success"
    assert run["checkpoint"]["checkpoint"] == 4
    assert run["deployment"]["status"] == "Deployed"
    body = json.loads(sent(emu, "training_jobs.create")[0].body)
    assert body["parameters"] == {"epochs": 1}
    quiet = cli(emu, "fine-tune", "--base-model", "Llama-3.2-1B", "--train", "train.jsonl",
                "-p", run["project"]["id"], "--no-deploy", "-q", cwd=tmp_path)  # fmt: skip
    assert quiet.returncode == 0, quiet.stderr
    project_id, job_id = quiet.stdout.split()
    assert project_id == run["project"]["id"] and job_id.startswith("tr-")
    assert quiet.stderr == ""  # --quiet: no step lines
    assert len(sent(emu, "deployments.create")) == 1  # --no-deploy
    table = cli(emu, "fine-tune", "--base-model", "Llama-3.2-1B", "--train-dataset",
                run["train_dataset"]["id"], "-p", project_id, "--format", "table")  # fmt: skip
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["project", project_id]
    assert any(line.split()[:1] == ["deployment"] and "(Deployed)" in line for line in lines)
    assert "emissary: training: done tr-" in table.stderr
    assert len(emu.uploads) == 2  # the dataset given by id was not uploaded again


def test_fine_tune_killed_mid_training_resumes_with_its_state_file(
    emu: Emulator, client: EmissaryClient, tmp_path: Path
) -> None:
    emu.scripts.training = TrainingScript(pending_s=0, running_s=900)  # 0.9 s here
    (tmp_path / "train.jsonl").write_bytes(TRAIN)
    state = tmp_path / "run.json"
    args = ("fine-tune", "--base-model", "Llama-3.2-1B", "--train", "train.jsonl",
            "--project-name", "resumed", "--state", "run.json")  # fmt: skip
    process = subprocess.Popen(
        argv(*args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=environment(emu),
    )
    try:

        def recorded() -> bool:
            return state.exists() and "training_job_id" in json.loads(state.read_text())

        bounded(recorded, "the training job in the state file")
        process.kill()  # SIGKILL: no cleanup at all
        process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    saved = json.loads(state.read_text())
    pid, job = saved["project_id"], saved["training_job_id"]
    at_kill = client.training_jobs.get(project_id=pid, training_job_id=job).status
    assert at_kill in ("Pending", "Running")  # killed mid-training
    resumed = cli(emu, *args, cwd=tmp_path)
    run = ok(resumed)
    assert "emissary: training: resumed" in resumed.stderr
    assert run["project"]["id"] == pid and run["training_job"]["id"] == job
    assert run["deployment"]["status"] == "Deployed"
    assert len(sent(emu, "projects.create")) == 1
    assert len(emu.uploads) == 1 and len(sent(emu, "datasets.create")) == 1
    assert len(sent(emu, "training_jobs.create")) == 1
    assert len(sent(emu, "deployments.create")) == 1
    other = cli(emu, *args[:-2], "--state", "run.json", "--no-deploy", cwd=tmp_path)
    assert other.returncode == 2 and "records a run with other settings" in one_line(other)


# --- inference -----------------------------------------------------------------------------


def test_chat_prints_the_reply_or_json(emu: Emulator) -> None:
    text = cli(emu, "chat", *DEMO, "-s", "Be brief.", "Hi there", "--max-new-tokens", "5")
    assert text.returncode == 0, text.stderr
    assert len(text.stdout.split()) == 5 and text.stdout.count("\n") == 1
    assert json.loads(emu.requests[0].body) == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi there"},
        ],
        "max_new_tokens": 5,
    }
    answer = ok(cli(emu, "chat", *DEMO, "--format", "json", stdin="From stdin\n"))
    assert set(answer) == {"id", "response", "request_id"}
    assert answer["request_id"] == emu.requests[1].request_id
    assert json.loads(emu.requests[1].body)["messages"][0]["content"] == "From stdin\n"
    table = cli(emu, "chat", *DEMO, "Hi", "--format", "table")
    assert table.returncode == 0 and "id " not in table.stdout  # the text, on a terminal too
    empty = cli(emu, "chat", *DEMO)
    assert empty.returncode == 2
    assert one_line(empty).startswith("emissary: error: the prompt is empty")


def test_classify_prints_the_class_or_json(emu: Emulator) -> None:
    label = cli(emu, "classify", *DEMO, "I love it")
    assert label.returncode == 0 and label.stdout.strip() in ("positive", "negative", "neutral")
    answer = ok(cli(emu, "classify", *DEMO, "-", "--format", "json", stdin="I love it"))
    assert answer["response"] == label.stdout.strip()
    assert json.loads(emu.requests[1].body) == {"source_sentence": "I love it"}


def test_embed_as_json_and_table(emu: Emulator) -> None:
    answer = ok(cli(emu, "embed", *DEMO, "a cat", "a dog"))
    response = answer["response"]
    assert len(response["embeddings"]["text1"]) == len(response["embeddings"]["text2"]) > 0
    assert {"cosine_score", "manhattan_distance", "euclidean_distance"} <= set(response)
    assert json.loads(emu.requests[0].body) == {
        "source_sentence": "a cat", "target_sentence": "a dog",
        "cosine": True, "manhattan": True, "euclidean": True,
    }  # fmt: skip
    rows = fields(cli(emu, "embed", *DEMO, "a cat", "a dog", "--cosine", "--format", "table"))
    size = len(response["embeddings"]["text1"])
    assert rows["source"] == rows["target"] == f"{size} numbers"
    assert float(rows["cosine_score"]) == pytest.approx(response["cosine_score"])
    assert "manhattan_distance" not in rows
    assert json.loads(emu.requests[1].body)["cosine"] is True


# --- batch --endpoint ----------------------------------------------------------------------

BODIES: dict[str, Callable[[int], dict[str, Any]]] = {
    "chat": lambda i: {"messages": [{"role": "user", "content": f"row {i}"}],
                       "max_new_tokens": 3},
    "embeddings": lambda i: {"source_sentence": f"row {i}", "target_sentence": "other"},
    "classification": lambda i: {"source_sentence": f"row {i}"},
}  # fmt: skip
KEYS = {"chat": "completion", "embeddings": "embedding", "classification": "classification"}


def row_of(body: bytes) -> str:
    """Which input row a request body came from (``row N``)."""
    document = json.loads(body)
    text = document.get("source_sentence") or document["messages"][0]["content"]
    assert isinstance(text, str)
    return text


@pytest.mark.parametrize("endpoint", ["chat", "embeddings", "classification"])
def test_batch_endpoint_killed_then_resumed_answers_every_row_once(
    endpoint: str, tmp_path: Path
) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [json.dumps(BODIES[endpoint](i)) for i in range(100)]
    lines[7] = json.dumps({"custom_id": "seven", "body": BODIES[endpoint](7)})
    source.write_text("".join(line + "\n" for line in lines))
    args = ("batch", str(source), "-o", str(output), *DEMO, "--endpoint", endpoint,
            "--concurrency", "8")  # fmt: skip
    with Emulator() as emu:
        emu.faults.delay(0, 30).hang(8)  # 30 rows answered, then the 8 in flight hang
        process = subprocess.Popen(
            argv(*args),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=environment(emu),
        )
        try:
            bounded(lambda: output.exists() and output.read_bytes().count(b"\n") >= 30,
                    "30 rows written")  # fmt: skip
            bounded(lambda: emu.in_flight == 8, "8 rows in flight")
            process.kill()  # SIGKILL, mid-run
            process.communicate(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=10)
        first_run = len(emu.requests)
        state = json.loads(Path(f"{output}.emissary").read_text())
        assert state["endpoint"] == endpoint
        other = "classification" if endpoint != "classification" else "chat"
        refused = cli(emu, *args[:-4], "--endpoint", other, "--resume")
        assert refused.returncode == 2
        assert one_line(refused) == (
            f"emissary: error: {output} holds a run of the {endpoint} endpoint, not {other}: "
            "resume with that --endpoint, or choose another OUTPUT"
        )
        resumed = cli(emu, *args, "--resume")
        assert resumed.returncode == 0, resumed.stderr
        assert "30 kept from before" in resumed.stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(r["index"] for r in rows) == list(range(100))  # each once, none lost
    key = KEYS[endpoint]
    assert all(r["error"] is None and r[key]["id"] for r in rows)
    assert {r["index"]: r["custom_id"] for r in rows}[7] == "seven"
    if endpoint == "embeddings":
        assert {"embeddings", "cosine_score"} <= set(rows[0][key]["response"])
    else:
        assert isinstance(rows[0][key]["response"], str)
    keys: dict[str, set[str]] = {}
    for seen in emu.requests:
        keys.setdefault(row_of(seen.body), set()).add(seen.headers["Idempotency-Key"])
    assert len(keys) == 100 and all(len(k) == 1 for k in keys.values())
    assert first_run == 38 and len(emu.requests) == 108  # the 8 in flight, sent again


def test_batch_endpoint_rows_are_checked_as_that_endpoints_bodies(
    emu: Emulator, tmp_path: Path
) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(
        json.dumps({"source_sentence": "fine"}) + "\n" + json.dumps({"prompt": "wrong"}) + "\n"
    )
    result = cli(emu, "batch", str(source), "-o", str(output), *DEMO, "--endpoint",
                 "classification")  # fmt: skip
    assert result.returncode == 1  # a row failed
    good, bad = sorted((json.loads(x) for x in output.read_text().splitlines()),
                       key=lambda r: r["index"])  # fmt: skip
    assert good["classification"]["response"] and good["error"] is None
    assert bad["classification"] is None and bad["error"]["type"] == "RequestValidationError"
    assert len(emu.requests) == 1  # the bad row was never sent


# --- usage ---------------------------------------------------------------------------------


def test_usage_errors_are_one_line_after_the_usage_block(emu: Emulator) -> None:
    create = ["training-jobs", "create", "-p", "p", "--base-model", "M"]
    assert usage_error(cli(emu, *create)).endswith(
        "error: one of the arguments --train --train-dataset is required"
    )
    assert usage_error(cli(emu, *create, "--train-dataset", "d", "--param", "epochs")).endswith(
        "argument --param: 'epochs' is not KEY=VALUE"
    )
    wait = ["training-jobs", "wait", "-p", "p", "j", "--max-wait"]
    assert "'6 hours' is not a duration" in usage_error(cli(emu, *wait, "6 hours"))
    assert "is not a checkpoint" in usage_error(
        cli(emu, "deployments", "create", "-p", "p", "--training-job", "j", "--checkpoint", "x")
    )
    assert "invalid choice" in usage_error(cli(emu, "projects", "rename", "x"))
    assert "the following arguments are required: VERB" in usage_error(cli(emu, "projects"))
    both = cli(emu, "fine-tune", "--base-model", "M", "--train", "x", "-p", "p",
               "--project-name", "n")  # fmt: skip
    assert "not allowed with argument" in usage_error(both)
    # Found by the command itself, still before anything is sent: one line, exit 2.
    twice = cli(emu, *create, "--train-dataset", "d", "--param", "a=1", "--param", "a=2")
    assert twice.returncode == 2 and one_line(twice) == "emissary: error: --param a is given twice"
    ratio = cli(emu, *create, "--train-dataset", "d", "--split-ratio", "1.5")
    assert ratio.returncode == 2 and "strictly between 0 and 1" in one_line(ratio)
    keyless = subprocess.run(
        argv("projects", "list"),
        capture_output=True,
        text=True,
        timeout=60,
        env={**environment(emu), "EMISSARY_CLIENT_API_KEY": ""},
    )
    assert keyless.returncode == 2
    assert one_line(keyless).startswith("emissary: error: no API key: set EMISSARY_CLIENT_API_KEY")
    assert emu.requests == []


def test_an_api_key_never_shows_in_a_failure(emu: Emulator) -> None:
    secret = "sk-very-secret-key"
    result = subprocess.run(
        argv("projects", "list"),
        capture_output=True,
        text=True,
        timeout=60,
        env={**environment(emu), "EMISSARY_CLIENT_API_KEY": secret},
    )
    assert result.returncode == 1
    assert one_line(result).startswith("emissary: APIErrorUnauthorized: ")
    assert secret not in result.stderr + result.stdout


@pytest.mark.parametrize(
    "args", [["--help"], ["projects", "list", "--help"], ["training-jobs", "create", "--help"]]
)
def test_help_imports_no_sdk(args: list[str]) -> None:
    result = run_python(
        f"""
        import sys
        from emissary._cli import main
        try:
            main({args!r})
        except SystemExit as exit:
            assert exit.code == 0
        heavy = sorted(
            m for m in ("aiohttp", "tqdm", "msgspec", "yarl", "emissary._async", "asyncio")
            if m in sys.modules
        )
        print("heavy:", heavy)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "heavy: []" in result.stdout and "usage: emissary" in result.stdout
