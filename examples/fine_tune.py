"""From local data to a deployed model in one call, then a chat with it.

    python examples/fine_tune.py [--train PATH] [--state PATH]

`client.fine_tune(...)` checks the base model, creates a project, uploads the data, trains,
picks the last checkpoint, deploys it and waits until it is deployed, printing each step as
it goes. Without ``--train`` it writes a small sample dataset to a temporary directory.

With EMISSARY_SERVER_URL and EMISSARY_CLIENT_API_KEY set it fine-tunes on that server (real
GPU hours), and ``--state run.json`` makes it resumable: run the same command again after a
crash and it picks up where it was (the training job it started keeps running meanwhile).
Otherwise it starts the bundled emulator (which lives as long as the script), 1000 times
faster than real time: the hour of training its script takes is over in about 4 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from emissary import EmissaryClient, models
from emissary.errors import EmissaryError
from emissary.testing import DatasetScript, DeploymentScript, Emulator, TrainingScript

BASE_MODEL = os.environ.get("EMISSARY_BASE_MODEL", "Llama-3.2-1B-Instruct")
SAMPLE = [
    ("Where is my order?", "It left our warehouse yesterday; here is the tracking link."),
    ("Can I return a gift?", "Yes, within 30 days, with the gift receipt."),
    ("Do you ship abroad?", "To 40 countries; the checkout page lists them."),
]


def sample(folder: Path) -> Path:
    """A tiny chat dataset in JSON Lines, for a demonstration only."""
    path = folder / "train.jsonl"
    with path.open("w") as file:
        for question, answer in SAMPLE:
            messages = [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
            file.write(json.dumps({"messages": messages}) + "\n")
    return path


class Show:
    """``on_event``: one line per step started, resumed or done, and per change seen while
    a step waits (a dataset being processed, a training job's status and progress, a
    deployment's status)."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, event: models.FineTuneEvent) -> None:
        resource = event.resource
        what = f"{event.step} {event.state}"
        if event.state == "progress" and getattr(resource, "status", None) is not None:
            what = f"{event.step}: {resource.status}"
            if getattr(resource, "progress", None) is not None:
                what += f" {resource.progress} %"
        elif event.state == "progress" and getattr(resource, "is_uploaded", None) is not None:
            what = f"{event.step}: {'processed' if resource.is_uploaded else 'processing'}"
        elif event.state == "done" and getattr(resource, "id", None) is not None:
            what += f": {resource.id}"
        elif event.state == "done" and event.step == "checkpoint":
            what += f": {resource.checkpoint}"
        print(f"[{time.monotonic() - self.start:5.1f} s] {what}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, help="a JSON Lines file (default: a sample)")
    parser.add_argument("--state", type=Path, help="a state file, to resume after a crash")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if os.environ.get("EMISSARY_SERVER_URL"):
            client = EmissaryClient()  # settings from the environment
        else:
            emulator = stack.enter_context(Emulator(time_scale=0.001))
            emulator.scripts.dataset = DatasetScript(processing_s=0)
            emulator.scripts.training = TrainingScript(pending_s=300, running_s=3600)
            emulator.scripts.deployment = DeploymentScript(pending_s=0, deploying_s=0)
            print(f"No EMISSARY_SERVER_URL set: using the bundled emulator at {emulator.url}")
            client = EmissaryClient(api_key=emulator.api_key, server_url=emulator.url)
        stack.enter_context(client)
        try:
            run = client.fine_tune(
                base_model=BASE_MODEL,
                train=args.train or sample(folder),
                project_name="support-bot",
                state=args.state,
                on_event=Show(),
            )
            reply = client.deployments.chat.completions.create(
                project_id=run.project.id,
                deployment_id=run.deployment.id,
                request_body={"messages": [{"role": "user", "content": "Where is my order?"}]},
            )
        except EmissaryError as error:
            print(f"fine-tuning failed: {error}", file=sys.stderr)
            if error.run is not None:
                print(f"made so far: {error.run}", file=sys.stderr)
            return 1
    print(f"{run.deployment.id} ({BASE_MODEL}, checkpoint {run.checkpoint.checkpoint}) says:")
    print(f"  {reply.response}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
