"""The waits (``training_jobs.wait``, ``deployments.wait``, ``datasets.wait``,
``create_and_wait``) against the emulator, client and emulator on one `VirtualClock`
(``instant_retries(client, clock=clock)``): a 6-hour job is waited for in milliseconds.

Each kind is waited for to success and to each failure state (`TrainingJobError`,
`DeploymentError` with ``.resource``, ``.status``, ``.elapsed``, ``.polls``; the resource
returned with ``raise_on_failure=False``); ``max_wait`` (seconds, a ``timedelta``, or None)
runs out with `WaitTimeoutError`, a `TimeoutError`, at the deadline and not past it, the job
still running on the server; polling goes on through 503 storms (with and without
``Retry-After``) up to 10 failed polls in a row, and stops at once on a 401 or a 400;
``on_progress`` hears each change once, in order, and ``progress=True`` draws a bar; a 6-hour
job with linear progress is polled a few hundred times (not the 4,320 of polling every 5 s)
and its end noticed within seconds; `PollPolicy`'s bounds and a ``Retry-After`` floor hold.
Cancelling the waiting task (real time) or Ctrl-C in a process running the sync client's wait
stops it within a second and never cancels the job on the server. ``create_and_wait`` makes
one training job or deployment and waits for it."""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

import pytest
from aiohttp import web

from emissary import AsyncEmissaryClient, EmissaryClient, models
from emissary.errors import (
    APIErrorInvalidInput,
    APIErrorUnauthorized,
    DeploymentError,
    SDKError,
    TrainingJobError,
    WaitError,
    WaitTimeoutError,
)
from emissary.testing import (
    DatasetScript,
    DeploymentScript,
    Emulator,
    RetryClock,
    TrainingScript,
    VirtualClock,
    instant_retries,
)
from emissary.utils import PollPolicy, RetryConfig

from .conftest import PROJECT
from .faults import ROOT, FaultServer

pytestmark = pytest.mark.anyio

BASE_MODEL = "Llama-3.2-1B-Instruct"
ROWS = b"".join(b'{"prompt": "q%d", "completion": "a%d"}\n' % (i, i) for i in range(100))
NO_RETRIES = RetryConfig.disabled()
HOUR = 3600.0
WAIT = 30.0
"""The bound on every real-time wait in this file (seconds)."""
BADLY = ["Failed", "TimedOut", "Cancelled"]


@pytest.fixture
async def emu(clock: VirtualClock) -> AsyncIterator[Emulator]:
    """The emulator on the test's loop and `clock`; datasets are processed at once."""
    async with Emulator(clock=clock) as emulator:
        emulator.scripts.dataset = DatasetScript(processing_s=0)
        yield emulator


@pytest.fixture
async def client(emu: Emulator, clock: VirtualClock) -> AsyncIterator[AsyncEmissaryClient]:
    """An async client whose retries and waits sleep on `clock`."""
    async with AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url) as c:
        with instant_retries(c, clock=clock):
            yield c


async def new_job(client: AsyncEmissaryClient, emu: Emulator, **script: Any) -> str:
    """A training job on a `TrainingScript` of `script`, created now."""
    emu.scripts.training = TrainingScript(**script)
    dataset = await client.datasets.upload(project_id=PROJECT, file=ROWS)
    assert dataset.id is not None
    job = await client.training_jobs.create(
        project_id=PROJECT,
        request_body={"base_model": BASE_MODEL, "train_dataset_id": dataset.id},
    )
    assert job.id is not None
    return job.id


async def new_deployment(client: AsyncEmissaryClient, emu: Emulator, **script: Any) -> str:
    """A deployment on a `DeploymentScript` of `script`, created now (of a job that
    succeeded at once)."""
    job = await new_job(client, emu, pending_s=0, running_s=0)
    emu.scripts.deployment = DeploymentScript(**script)
    deployment = await client.deployments.create(
        project_id=PROJECT, request_body={"training_job_id": job, "checkpoint": 4}
    )
    assert deployment.id is not None
    return deployment.id


def operations(emu: Emulator) -> list[str | None]:
    return [request.operation for request in emu.requests]


def seconds(delta: datetime.timedelta | None) -> float:
    assert delta is not None
    return delta.total_seconds()


# --- To success -----------------------------------------------------------------------------


async def test_a_training_job_is_waited_for_until_success(
    client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    job_id = await new_job(client, emu, pending_s=30, running_s=600)
    created = clock.now()
    job = await client.training_jobs.wait(project_id=PROJECT, training_job_id=job_id)
    assert isinstance(job, models.TrainingJobDetail)
    assert job.id == job_id and job.status == "Success" and job.progress == 100
    assert clock.now() - created >= 630  # not before it ended


async def test_a_deployment_is_waited_for_until_deployed(
    client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    deployment_id = await new_deployment(client, emu, pending_s=5, deploying_s=60)
    created = clock.now()
    deployment = await client.deployments.wait(project_id=PROJECT, deployment_id=deployment_id)
    assert isinstance(deployment, models.DeploymentDetail)
    assert deployment.id == deployment_id and deployment.status == "Deployed"
    assert clock.now() - created >= 65


async def test_a_dataset_is_waited_for_until_processed(
    client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    emu.scripts.dataset = DatasetScript(processing_s=120)
    dataset = await client.datasets.upload(project_id=PROJECT, file=ROWS)
    assert dataset.id is not None and dataset.is_uploaded is False
    created = clock.now()
    with pytest.raises(WaitTimeoutError) as caught:
        await client.datasets.wait(project_id=PROJECT, dataset_id=dataset.id, max_wait=60)
    assert caught.value.resource.is_uploaded is False
    done = await client.datasets.wait(project_id=PROJECT, dataset_id=dataset.id)
    assert isinstance(done, models.DatasetDetail)
    assert done.id == dataset.id and done.is_uploaded is True
    assert clock.now() - created >= 120


async def test_a_dataset_wait_reports_when_the_dataset_is_processed(
    client: AsyncEmissaryClient, emu: Emulator
) -> None:
    # A dataset has no status: being processed (is_uploaded) is its change of state, and
    # on_progress is called "when its status or progress changes".
    emu.scripts.dataset = DatasetScript(processing_s=120)
    dataset = await client.datasets.upload(project_id=PROJECT, file=ROWS)
    assert dataset.id is not None
    seen: list[bool | None] = []
    await client.datasets.wait(
        project_id=PROJECT,
        dataset_id=dataset.id,
        on_progress=lambda detail: seen.append(detail.is_uploaded),
    )
    assert seen == [False, True]


# --- To failure -----------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", BADLY)
async def test_a_training_job_that_ends_badly_raises_training_job_error(
    outcome: str, client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    job_id = await new_job(client, emu, pending_s=30, running_s=600, outcome=outcome)
    began = clock.now()
    with pytest.raises(TrainingJobError) as caught:
        await client.training_jobs.wait(project_id=PROJECT, training_job_id=job_id)
    error = caught.value
    assert isinstance(error, WaitError) and not isinstance(error, TimeoutError)
    assert error.status == outcome and outcome in str(error) and job_id in str(error)
    assert isinstance(error.resource, models.TrainingJobDetail)
    assert error.resource.id == job_id and error.resource.status == outcome
    assert seconds(error.elapsed) == pytest.approx(clock.now() - began)
    assert seconds(error.elapsed) >= 630
    assert error.polls == len(emu.polls("training_jobs.get", job_id))
    assert "training_jobs.cancel" not in operations(emu)

    polls = error.polls
    job = await client.training_jobs.wait(
        project_id=PROJECT, training_job_id=job_id, raise_on_failure=False
    )
    assert isinstance(job, models.TrainingJobDetail) and job.status == outcome
    assert len(emu.polls("training_jobs.get", job_id)) == polls + 1  # one poll: it had ended


@pytest.mark.parametrize("outcome", BADLY)
async def test_a_deployment_that_ends_badly_raises_deployment_error(
    outcome: str, client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    deployment_id = await new_deployment(client, emu, pending_s=5, deploying_s=60, outcome=outcome)
    began = clock.now()
    with pytest.raises(DeploymentError) as caught:
        await client.deployments.wait(project_id=PROJECT, deployment_id=deployment_id)
    error = caught.value
    assert error.status == outcome and outcome in str(error)
    assert isinstance(error.resource, models.DeploymentDetail)
    assert error.resource.id == deployment_id and error.resource.status == outcome
    assert seconds(error.elapsed) == pytest.approx(clock.now() - began)
    assert error.polls == len(emu.polls("deployments.get", deployment_id))

    deployment = await client.deployments.wait(
        project_id=PROJECT, deployment_id=deployment_id, raise_on_failure=False
    )
    assert isinstance(deployment, models.DeploymentDetail) and deployment.status == outcome


# --- max_wait --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "max_wait", [600, 600.0, datetime.timedelta(minutes=10)], ids=["int", "float", "timedelta"]
)
async def test_max_wait_ends_the_wait_at_its_deadline_and_the_job_goes_on(
    max_wait: Any, client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    job_id = await new_job(client, emu, pending_s=0, running_s=2 * HOUR)
    began = clock.now()
    with pytest.raises(WaitTimeoutError) as caught:
        await client.training_jobs.wait(
            project_id=PROJECT, training_job_id=job_id, max_wait=max_wait
        )
    error = caught.value
    assert isinstance(error, TimeoutError) and isinstance(error, WaitError)
    assert "max_wait" in str(error) and "Running" in str(error)
    # The last poll is made at the deadline itself, and the wait ends there: not one
    # second past it (a poll takes no virtual time).
    assert clock.now() - began == pytest.approx(600, abs=1e-6)
    assert seconds(error.elapsed) == pytest.approx(600, abs=1e-6)
    assert error.status == "Running" and isinstance(error.resource, models.TrainingJobDetail)
    assert 0 < (error.resource.progress or 0) < 100
    assert error.polls == len(emu.polls("training_jobs.get", job_id))
    # The job goes on: nothing cancelled it, and it ends as its script says.
    assert "training_jobs.cancel" not in operations(emu)
    job = await client.training_jobs.get(project_id=PROJECT, training_job_id=job_id)
    assert job.status == "Running"
    done = await client.training_jobs.wait(project_id=PROJECT, training_job_id=job_id)
    assert done.status == "Success"


@pytest.mark.parametrize("retry_after", [7, 30])
async def test_failing_polls_retry_only_until_the_deadline(
    retry_after: int, client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    # Every poll answered 503 with a Retry-After: a poll's own retries (up to a minute of
    # them) stop at the wait's deadline, and the poll made at the deadline is one attempt.
    # (Before, max_wait=10 ended after 56 s with Retry-After 7, and 30 s with 30.)
    job_id = await new_job(client, emu, pending_s=0, running_s=2 * HOUR)
    emu.faults.fail(1_000, status=503, retry_after=retry_after)
    began = clock.now()
    with pytest.raises(WaitTimeoutError) as caught:
        await client.training_jobs.wait(project_id=PROJECT, training_job_id=job_id, max_wait=10)
    assert clock.now() - began == pytest.approx(10, abs=1e-6)
    assert "no poll was answered" in str(caught.value) and caught.value.polls == 0
    # The first poll's retry after 7 s fits before the deadline, one after 30 s does not;
    # then the poll at 10 s.
    assert len(emu.polls("training_jobs.get", job_id)) == (3 if retry_after == 7 else 2)


async def test_failing_polls_end_at_max_wait_in_real_time(
    client: AsyncEmissaryClient, emu: Emulator
) -> None:
    # The same on the real clock, with the client's own retries (no test switches).
    job_id = await new_job(client, emu, pending_s=0, running_s=2 * HOUR)
    emu.faults.fail(1_000, status=503, retry_after=3)
    async with AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url) as real:
        began = time.monotonic()
        with pytest.raises(WaitTimeoutError):
            await real.training_jobs.wait(project_id=PROJECT, training_job_id=job_id, max_wait=1)
        took = time.monotonic() - began
    # One poll at once (its retry in 3 s would pass the deadline: not made), one at 1 s.
    assert 1.0 <= took < 2.5, took  # (before: 57 s)
    assert len(emu.polls("training_jobs.get", job_id)) == 2


async def test_max_wait_none_waits_past_the_default_day_until_the_end(
    client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    job_id = await new_job(client, emu, pending_s=0, running_s=30 * HOUR)
    began = clock.now()
    with pytest.raises(WaitTimeoutError):  # the default max_wait: a day
        await client.training_jobs.wait(project_id=PROJECT, training_job_id=job_id)
    assert clock.now() - began == pytest.approx(24 * HOUR, abs=1e-6)
    job = await client.training_jobs.wait(project_id=PROJECT, training_job_id=job_id, max_wait=None)
    assert job.status == "Success" and clock.now() - began >= 30 * HOUR


# --- Failing polls ---------------------------------------------------------------------------


@pytest.mark.parametrize("retry_after", [None, 7], ids=["no Retry-After", "Retry-After 7"])
async def test_polling_goes_on_through_a_503_storm(
    retry_after: int | None, client: AsyncEmissaryClient, emu: Emulator
) -> None:
    # 25 answers 503 in a row: without Retry-After, 8 polls fail after their 3 attempts
    # each; with it, the server paces the client and each poll waits as asked, for up to
    # its own 60 s budget (8 attempts), so 3 polls fail. Either way fewer than 10 polls
    # fail in a row: the wait goes on, and ends with the job.
    job_id = await new_job(client, emu, pending_s=30, running_s=600)
    emu.faults.fail(25, status=503, retry_after=retry_after)
    job = await client.training_jobs.wait(project_id=PROJECT, training_job_id=job_id)
    assert job.status == "Success"
    polls = emu.polls("training_jobs.get", job_id)
    assert sum(poll.fault == "fail" for poll in polls) == 25  # all of them met by polls
    assert polls[-1].fault is None


@pytest.mark.parametrize("failing", [10, 11])
async def test_more_than_ten_failing_polls_in_a_row_end_the_wait(
    failing: int, client: AsyncEmissaryClient, emu: Emulator
) -> None:
    # Each poll one attempt (retries off), so that each failing request is a failed poll.
    job_id = await new_job(client, emu, pending_s=0, running_s=60)
    emu.faults.fail(failing, status=503)
    if failing <= 10:
        job = await client.training_jobs.wait(
            project_id=PROJECT, training_job_id=job_id, retries=NO_RETRIES
        )
        assert job.status == "Success"
    else:
        with pytest.raises(SDKError) as caught:
            await client.training_jobs.wait(
                project_id=PROJECT, training_job_id=job_id, retries=NO_RETRIES
            )
        assert caught.value.status_code == 503
        assert len(emu.polls("training_jobs.get", job_id)) == 11


@pytest.mark.parametrize(
    ("status", "error"), [(401, APIErrorUnauthorized), (400, APIErrorInvalidInput)]
)
async def test_a_401_or_a_400_ends_the_wait_at_once(
    status: int, error: type[Exception], client: AsyncEmissaryClient, emu: Emulator
) -> None:
    job_id = await new_job(client, emu, pending_s=0, running_s=600)
    emu.faults.fail(1, status=status)
    with pytest.raises(error):
        await client.training_jobs.wait(project_id=PROJECT, training_job_id=job_id)
    assert len(emu.polls("training_jobs.get", job_id)) == 1


async def test_a_503_poll_answers_retry_after_is_a_floor(
    client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    job_id = await new_job(client, emu, pending_s=600, running_s=600)
    emu.faults.fail(2, status=503, retry_after=300)
    first = len(clock.sleeps)
    await client.training_jobs.wait(project_id=PROJECT, training_job_id=job_id, retries=NO_RETRIES)
    sleeps = clock.sleeps[first:]
    assert sleeps[0] >= 300 and sleeps[1] >= 300  # not the policy's 2 s
    assert sleeps[2] < 300


async def test_a_retry_after_on_a_polls_answer_is_a_floor() -> None:
    # The emulator's answers carry no Retry-After: a small server's do (300 s on the first
    # three answers, while the job runs), far above PollPolicy's 2 s.
    answered: list[int] = []

    async def job(request: web.Request) -> web.StreamResponse:
        answered.append(1)
        if len(answered) <= 3:
            body = {"id": "tr-1", "status": "Running", "progress": 10 * len(answered)}
            return web.json_response(body, headers={"Retry-After": "300"})
        return web.json_response({"id": "tr-1", "status": "Success", "progress": 100})

    async with FaultServer(job) as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            with instant_retries(client) as retry_clock:
                assert isinstance(retry_clock, RetryClock)
                done = await client.training_jobs.wait(project_id="p", training_job_id="tr-1")
    assert done.status == "Success" and len(answered) == 4
    assert len(retry_clock.sleeps) == 3 and all(s >= 300 for s in retry_clock.sleeps)


# --- Progress -------------------------------------------------------------------------------


async def test_on_progress_hears_each_change_once_in_order(
    client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    job_id = await new_job(client, emu, pending_s=30, running_s=600)
    script = emu.scripts.training
    created = clock.now()
    first = len(clock.sleeps)
    seen: list[models.TrainingJobDetail] = []
    await client.training_jobs.wait(
        project_id=PROJECT, training_job_id=job_id, on_progress=seen.append
    )
    # What each poll saw, from its virtual time (polls take none; the sleeps are all the
    # wait's own): the states on_progress must hear, each change once.
    times = [created]
    for pause in clock.sleeps[first:]:
        times.append(times[-1] + pause)
    assert len(times) == len(emu.polls("training_jobs.get", job_id))
    phases = [script.at(t - created) for t in times]
    changes: list[tuple[str, int]] = []
    for phase in phases:
        if not changes or changes[-1] != (phase.status, phase.progress):
            changes.append((phase.status, phase.progress))
    heard = [(detail.status, detail.progress) for detail in seen]
    assert heard == changes
    assert len(set(heard)) == len(heard)  # never twice the same state
    assert heard[0] == ("Pending", 0) and heard[-1] == ("Success", 100)
    progress = [p or 0 for _, p in heard]
    assert progress == sorted(progress)


async def test_progress_true_draws_a_bar_on_stderr(
    client: AsyncEmissaryClient, emu: Emulator, capsys: Any
) -> None:
    job_id = await new_job(client, emu, pending_s=30, running_s=600)
    capsys.readouterr()
    await client.training_jobs.wait(project_id=PROJECT, training_job_id=job_id, progress=True)
    err = capsys.readouterr().err
    assert "training job" in err and "100%" in err and "Success" in err


# --- The schedule ---------------------------------------------------------------------------


SEEDS = range(10)
"""Jitter streams: a user's wait meets any, so a bound must hold for each."""


async def six_hour_jobs(
    client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> list[tuple[int, float]]:
    """Wait for jobs that run 6 hours with linear progress, one per jitter stream of
    `SEEDS`: for each, (polls, the virtual seconds between its end and the wait's
    return)."""
    measured = []
    for seed in SEEDS:
        clock.install(client, seed=seed)  # the fixture puts the client's own back after
        job_id = await new_job(client, emu, pending_s=60, running_s=6 * HOUR)
        ends = clock.now() + 60 + 6 * HOUR
        job = await client.training_jobs.wait(project_id=PROJECT, training_job_id=job_id)
        assert job.status == "Success"
        measured.append((len(emu.polls("training_jobs.get", job_id)), clock.now() - ends))
    return measured


async def test_a_six_hour_job_is_polled_a_few_hundred_times(
    client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    # Polling every 5 s would be 4,332 polls. With max_interval 120 s, 6 h need at least
    # 180 polls (about 200 with the jitter taking up to a fifth off), plus the pending
    # phase's backoff and the approach to the end: 209 to 212 measured. 400 leaves room
    # for a schedule that polls more often near the end.
    polls = [count for count, _ in await six_hour_jobs(client, emu, clock)]
    assert max(polls) < 400, polls


async def test_the_end_of_a_six_hour_job_is_noticed_within_30_s(
    client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    lags = [round(lag, 1) for _, lag in await six_hour_jobs(client, emu, clock)]
    assert all(0 <= lag < 30 for lag in lags), f"lags (s): {lags}"


@pytest.mark.parametrize("kind", ["deployment", "training job with progress"])
async def test_poll_policy_bounds_every_pause(
    kind: str, client: AsyncEmissaryClient, emu: Emulator, clock: VirtualClock
) -> None:
    # No two polls closer than min_interval but the last (made at the deadline), none
    # farther apart than max_interval. The sleeps are all the wait's (no faults, no retries).
    policy = PollPolicy(min_interval=10.0, max_interval=40.0)
    wait: Coroutine[Any, Any, object]
    if kind == "deployment":
        deployment_id = await new_deployment(client, emu, pending_s=HOUR, deploying_s=HOUR)
        wait = client.deployments.wait(
            project_id=PROJECT, deployment_id=deployment_id, poll=policy, max_wait=1_234
        )
    else:
        job_id = await new_job(client, emu, pending_s=0, running_s=HOUR)
        wait = client.training_jobs.wait(
            project_id=PROJECT, training_job_id=job_id, poll=policy, max_wait=1_234
        )
    first = len(clock.sleeps)
    with pytest.raises(WaitTimeoutError):
        await wait
    sleeps = clock.sleeps[first:]
    assert sum(sleeps) == pytest.approx(1_234)
    assert all(pause <= 40.0 for pause in sleeps)
    assert all(pause >= 10.0 for pause in sleeps[:-1]), f"pauses (s): {sleeps}"


# --- Cancelled, interrupted -----------------------------------------------------------------


async def test_cancelling_the_waiting_task_stops_it_at_once_and_the_job_goes_on(
    emu: Emulator, clock: VirtualClock
) -> None:
    # The client on real time, sleeping 48 s or more between polls (min_interval 60 s, less
    # the jitter): cancelled in its first sleep, it must end at once.
    async with AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
        with instant_retries(client, clock=clock):
            job_id = await new_job(client, emu, pending_s=0, running_s=600)
        polled = asyncio.Event()
        waiting = asyncio.create_task(
            client.training_jobs.wait(
                project_id=PROJECT,
                training_job_id=job_id,
                poll=PollPolicy(min_interval=60, max_interval=120),
                on_progress=lambda _: polled.set(),
            )
        )
        await asyncio.wait_for(polled.wait(), WAIT)  # it went on to its sleep, no await between
        cancelled = time.monotonic()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiting, WAIT)
        took = time.monotonic() - cancelled
        assert took < 1.0
        assert len(emu.polls("training_jobs.get", job_id)) == 1
        assert "training_jobs.cancel" not in operations(emu)
        clock.advance(600)
        job = await client.training_jobs.get(project_id=PROJECT, training_job_id=job_id)
        assert job.status == "Success"  # it went on, untouched


CHILD = """
import sys, time
from emissary import EmissaryClient
from emissary.utils import PollPolicy

url, key, project, job = sys.argv[1:]
with EmissaryClient(api_key=key, server_url=url) as client:
    try:
        client.training_jobs.wait(
            project_id=project, training_job_id=job,
            poll=PollPolicy(min_interval=60, max_interval=120),
            on_progress=lambda detail: print("polled", detail.status, flush=True),
        )
    except KeyboardInterrupt:
        print("interrupted at", time.monotonic(), flush=True)
    else:
        print("returned", flush=True)
"""


def read_line(process: subprocess.Popen[bytes], deadline: float) -> str:
    """The child's next line of stdout, waited for until `deadline` (time.monotonic)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise AssertionError(f"no line from the child in time; got {data!r}")
            chunk = os.read(fd, 1)
            if not chunk:
                raise AssertionError(f"the child ended; got {data!r}")
            data += chunk
    return data.decode()


@pytest.fixture
def child_emulator() -> Iterator[Emulator]:
    """An emulator on real time, on a thread (the child process polls it)."""
    with Emulator() as emulator:
        emulator.scripts.dataset = DatasetScript(processing_s=0)
        emulator.scripts.training = TrainingScript(pending_s=0, running_s=HOUR)
        yield emulator


def test_ctrl_c_stops_a_sync_wait_within_a_second_and_the_job_goes_on(
    child_emulator: Emulator,
) -> None:
    emu = child_emulator
    with EmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
        dataset = client.datasets.upload(project_id=PROJECT, file=ROWS)
        assert dataset.id is not None
        job = client.training_jobs.create(
            project_id=PROJECT,
            request_body={"base_model": BASE_MODEL, "train_dataset_id": dataset.id},
        )
        assert job.id is not None
        child = subprocess.Popen(
            [sys.executable, "-X", "dev", "-c", CHILD, emu.url, emu.api_key, PROJECT, job.id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            assert read_line(child, time.monotonic() + WAIT).startswith("polled Running")
            interrupted = time.monotonic()
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=WAIT)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(WAIT)
        text = out.decode()
        found = re.search(r"interrupted at (\S+)", text)
        assert found, (text, err.decode())
        # CLOCK_MONOTONIC is one clock for every process of the machine (Linux).
        assert float(found.group(1)) - interrupted < 1.0
        assert child.returncode == 0 and b"Traceback" not in err, err.decode()
        assert len(emu.polls("training_jobs.get", job.id)) == 1
        assert "training_jobs.cancel" not in operations(emu)
        after = client.training_jobs.get(project_id=PROJECT, training_job_id=job.id)
        assert after.status == "Running"  # it goes on


# --- create_and_wait, and the sync client ---------------------------------------------------


@pytest.mark.parametrize("name", [None, "my job"])
async def test_create_and_wait_makes_one_training_job_and_waits_for_it(
    name: str | None, client: AsyncEmissaryClient, emu: Emulator
) -> None:
    emu.scripts.training = TrainingScript(pending_s=30, running_s=600)
    dataset = await client.datasets.upload(project_id=PROJECT, file=ROWS)
    assert dataset.id is not None
    body: Any = {"base_model": BASE_MODEL, "train_dataset_id": dataset.id}
    if name is not None:
        body["name"] = name
    job = await client.training_jobs.create_and_wait(project_id=PROJECT, request_body=body)
    assert job.status == "Success" and job.progress == 100
    assert operations(emu).count("training_jobs.create") == 1
    assert job.name == name if name else (job.name or "").startswith("emissary-")
    assert "name" not in body or body["name"] == name  # the caller's body left as it was
    assert len(emu.polls("training_jobs.get", job.id or "")) > 1


async def test_create_and_wait_makes_one_deployment_and_waits_for_it(
    client: AsyncEmissaryClient, emu: Emulator
) -> None:
    job = await new_job(client, emu, pending_s=0, running_s=0)
    emu.scripts.deployment = DeploymentScript(pending_s=5, deploying_s=60)
    deployment = await client.deployments.create_and_wait(
        project_id=PROJECT, request_body={"training_job_id": job, "checkpoint": 4}
    )
    assert deployment.status == "Deployed"
    assert operations(emu).count("deployments.create") == 1
    assert len(emu.polls("deployments.get", deployment.id or "")) > 1


def test_the_sync_client_waits_on_the_virtual_clock() -> None:
    clock = VirtualClock()
    with Emulator(clock=clock) as emu:
        emu.scripts.dataset = DatasetScript(processing_s=60)
        emu.scripts.training = TrainingScript(pending_s=30, running_s=HOUR)
        with EmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
            with instant_retries(client, clock=clock):
                dataset = client.datasets.upload(project_id=PROJECT, file=ROWS)
                assert dataset.id is not None
                assert client.datasets.wait(project_id=PROJECT, dataset_id=dataset.id).is_uploaded
                began = clock.now()
                job = client.training_jobs.create_and_wait(
                    project_id=PROJECT,
                    request_body={"base_model": BASE_MODEL, "train_dataset_id": dataset.id},
                )
                assert job.status == "Success" and clock.now() - began >= 30 + HOUR
