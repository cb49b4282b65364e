"""Waiting for a training job: polls made and how late the end is noticed, by strategy.

    python benchmarks/polling.py           # 4 durations x 4 strategies x 8 starts (~1 min)
    python benchmarks/polling.py --quick   # 2 starts each

On a virtual clock shared by the emulator and the client (`emissary.testing.VirtualClock`),
so a 24-hour job takes a fraction of a second of real time and every figure is exact for
its seed: a training job of 10 min, 1 h, 6 h and 24 h whose progress is not linear
(pending first, with no progress; then an S-curve; then finalizing at 100 for the last
5 %, at most 10 min, before ``Success``), and a 24 h job whose progress is a straight
line to its end (the emulator's default shape: no finalizing, and each whole percent
lasts 14 minutes), waited for by:

- ``emissary``: ``client.training_jobs.wait(...)`` with the default `PollPolicy`;
- ``backoff 2..30 s``: plain exponential backoff from 2 s, x1.5, capped at 30 s (jittered,
  as the SDK's);
- ``fixed 5 s`` and ``fixed 120 s``: polling at a fixed interval (botocore's SageMaker
  waiter polls every 120 s).

Each strategy starts at a random offset (0 to 120 s, seeded) after the create, polls with
``training_jobs.get`` through the emulator (real HTTP on loopback), and the emulator counts
the polls (``emu.polls``). Detection lag: from the job's end (its script says when) to the
poll that saw it. Targets (issue: "From data to a deployed model"): for the 6 h job, a mean
lag ≤ 15 s with at most a third of the polls of the 2..30 s backoff.

Writes ``benchmarks/results/polling.json`` and ``polling.png`` (``--quick``:
``polling-quick.*``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DURATIONS = {"10 min": 600.0, "1 h": 3_600.0, "6 h": 21_600.0, "24 h": 86_400.0}
LINEAR = "24 h, linear"
"""A job whose progress grows linearly to 100 and ends there (the emulator's default
shape): whole percents last 14 minutes, and nothing finalizes."""
JOBS = {**DURATIONS, LINEAR: 86_400.0}
STRATEGIES = ["emissary", "backoff 2..30 s", "fixed 5 s", "fixed 120 s"]
TARGET_DURATION = "6 h"
LIMITS = {"lag_s": 15.0, "polls_share": 1 / 3}


def script_for(duration: float, linear: bool = False) -> dict[str, Any]:
    """The training script of a job of `duration` seconds: pending 2 % (at least 30 s),
    running the rest, its progress an S-curve that reaches 100 when 5 % (at most 10 min)
    of the job is left: it finalizes at 100 (`linear`: a straight line to the end)."""
    pending = max(30.0, 0.02 * duration)
    if linear:
        return {"pending_s": pending, "running_s": duration - pending}
    finalizing = min(600.0, 0.05 * duration)
    running = duration - pending
    growing = (running - finalizing) / running

    def progress(fraction: float) -> float:
        f = min(1.0, fraction / growing)
        return 100.0 * f * f * (3 - 2 * f)

    return {"pending_s": pending, "running_s": running, "progress": progress}


async def one_wait(job: str, strategy: str, seed: int) -> tuple[int, float]:
    """(polls, detection lag in seconds) of one wait."""
    from emissary import AsyncEmissaryClient
    from emissary.testing import Emulator, TrainingScript, VirtualClock, instant_retries

    duration = JOBS[job]
    clock = VirtualClock()
    rng = random.Random(seed)
    async with Emulator(clock=clock) as emu:
        emu.scripts.training = TrainingScript(**script_for(duration, job == LINEAR), checkpoints=1)
        async with AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
            with instant_retries(client, clock=clock):
                project = await client.projects.create()
                assert project.id is not None
                dataset = await client.datasets.upload(project_id=project.id, file=b"{}\n")
                assert dataset.id is not None
                await client.datasets.wait(project_id=project.id, dataset_id=dataset.id)
                job = await client.training_jobs.create(
                    project_id=project.id,
                    request_body={"base_model": "Llama-3.2-1B", "train_dataset_id": dataset.id},
                )
                assert job.id is not None
                ends_at = clock.now() + duration
                await clock.sleep(rng.uniform(0, 120))  # a random phase
                ids = {"project_id": project.id, "training_job_id": job.id}
                await STRATEGY[strategy](client, ids, clock, rng)
                lag = clock.now() - ends_at
        polls = len(emu.polls("training_jobs.get", job.id))
    return polls, lag


async def emissary_wait(client: Any, ids: dict[str, str], clock: Any, rng: Any) -> None:
    await client.training_jobs.wait(**ids, max_wait=None)


def fixed(step: float) -> Callable[..., Awaitable[None]]:
    async def poll(client: Any, ids: dict[str, str], clock: Any, rng: Any) -> None:
        while (await client.training_jobs.get(**ids)).status != "Success":
            await clock.sleep(step)

    return poll


async def backoff(client: Any, ids: dict[str, str], clock: Any, rng: Any) -> None:
    interval = 2.0
    while (await client.training_jobs.get(**ids)).status != "Success":
        await clock.sleep(interval * rng.uniform(0.8, 1.0))
        interval = min(30.0, interval * 1.5)


STRATEGY: dict[str, Callable[..., Awaitable[None]]] = {
    "emissary": emissary_wait,
    "backoff 2..30 s": backoff,
    "fixed 5 s": fixed(5.0),
    "fixed 120 s": fixed(120.0),
}


def measure(starts: int) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for name in JOBS:
        table[name] = {}
        for strategy in STRATEGIES:
            runs = [asyncio.run(one_wait(name, strategy, seed)) for seed in range(starts)]
            table[name][strategy] = {
                "polls": statistics.mean(p for p, _ in runs),
                "lag_s": statistics.mean(lag for _, lag in runs),
                "max_lag_s": max(lag for _, lag in runs),
                "runs": runs,
            }
            print(f"{name} {strategy}: {table[name][strategy]['polls']:.0f} polls", file=sys.stderr)
    return table


def chart(table: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib  # type: ignore[import-not-found, unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]

    fig, (polls_ax, lag_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.2
    names = list(table)
    for index, strategy in enumerate(STRATEGIES):
        xs = [i + (index - 1.5) * width for i in range(len(names))]
        polls_ax.bar(xs, [table[n][strategy]["polls"] for n in names], width, label=strategy)
        lag_ax.bar(xs, [table[n][strategy]["lag_s"] for n in names], width, label=strategy)
    polls_ax.set_yscale("log")
    polls_ax.set_ylabel("polls (log scale)")
    lag_ax.set_ylabel("mean detection lag, s")
    lag_ax.axhline(LIMITS["lag_s"], color="grey", linestyle="--", linewidth=1)
    for ax in (polls_ax, lag_ax):
        ax.set_xticks(range(len(names)), [f"job of {n}" for n in names])
    polls_ax.legend(fontsize=8)
    fig.suptitle("Waiting for a training job (virtual clock, emulator over loopback HTTP)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2 starts per cell, not 8")
    options = parser.parse_args()
    table = measure(2 if options.quick else 8)
    ours = table[TARGET_DURATION]["emissary"]
    base = table[TARGET_DURATION]["backoff 2..30 s"]
    share = ours["polls"] / base["polls"]
    name = "polling-quick" if options.quick else "polling"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(table, indent=1))
    chart(table, RESULTS / f"{name}.png")
    print("| job | " + " | ".join(STRATEGIES) + " |")
    print("|---|" + "---|" * len(STRATEGIES))
    for job, row in table.items():
        cells = [f"{row[s]['polls']:,.0f} polls, {row[s]['lag_s']:.1f} s" for s in STRATEGIES]
        print(f"| {job} | " + " | ".join(cells) + " |")
    for what, value, limit, holds in (
        ("6 h: emissary's mean lag, s", ours["lag_s"], LIMITS["lag_s"], ours["lag_s"] <= 15),
        ("6 h: emissary's polls / backoff's", share, LIMITS["polls_share"], share <= 1 / 3),
    ):
        print(f"{'PASS' if holds else 'MISS'}  {what}: {value:.3f} (limit {limit:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
