"""The platform's commands: ``emissary RESOURCE VERB`` for every resource (one function,
`resource_command`, runs any row of `emissary._cli._parser.RESOURCES`), the creates that
need more than one call, ``fine-tune``, and inference (``chat``, ``embed``, ``classify``,
``complete``).

Each command checks what it can before the client is made (files to upload, ``--yes``,
``--param``), so that a usage error sends nothing; then makes its calls with an
`AsyncEmissaryClient` and prints the result with `emissary._cli._output.emit`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ._common import (
    EXIT_OK,
    NotDone,
    Running,
    UsageError,
    bars,
    check_file,
    client,
    read_text,
    report,
    run,
)
from ._output import emit, key, resolve
from ._parser import Resource

_DONE = {"delete": "deleted", "cancel": "cancelled"}


def main(options: argparse.Namespace) -> int:
    """Run the command `options` names (any but ``batch`` and ``emulator``); its exit
    status."""
    running = Running(options)
    command: Callable[[argparse.Namespace, Running], Coroutine[Any, Any, int]]
    if options.command == "fine-tune":
        command = fine_tune
    elif options.command in INFERENCE:
        command = INFERENCE[options.command]
    else:
        command = resource_command
    try:
        return run(command(options, running), running)
    except Exception as exc:  # one line; anything but a usage or SDK error is a bug: raised
        return report(exc, running)


# --- any resource, any verb ----------------------------------------------------------------


async def resource_command(options: argparse.Namespace, running: Running) -> int:
    """``emissary RESOURCE VERB``: the verb's method on the resource's namespace, with the
    ids given (a create or an upload: the resource's own function, `CREATES`)."""
    from ._parser import VERBS

    resource: Resource = options.resource
    verb = options.verb
    method = VERBS[verb].method
    ids = {"project_id": options.project} if resource.scoped else {}
    if VERBS[verb].takes_id:
        ids[resource.id_keyword] = options.id
    if verb == "delete":
        _confirm(resource, options)
        ids["missing_ok"] = options.missing_ok
    create = CREATES.get(resource.command) if method is None else None
    if create is not None:
        _check_create(resource, options)
    async with client(options) as sdk:
        namespace = getattr(sdk, resource.namespace)
        if create is not None:
            result = await create(sdk, options, running)
        elif verb == "wait":
            running.watch(resource.command, resource.noun, options.project, options.id)
            wait_options = _wait_options(options, running, resource)
            result = await namespace.wait(**ids, **wait_options)
            running.done()
        else:
            assert method is not None
            result = await getattr(namespace, method)(**ids)
    if result is None:  # a delete or cancel: what was done, to what
        result = {"id": options.id, _DONE[verb]: True}
    emit(result, options)
    return EXIT_OK


def _confirm(resource: Resource, options: argparse.Namespace) -> None:
    """Ask before deleting, on a terminal; elsewhere ``--yes`` is needed."""
    if options.yes:
        return
    what = f"{resource.noun} {options.id}"
    if not sys.stdin.isatty():
        raise UsageError(f"deleting {what} needs --yes (stdin is not a terminal to ask on)")
    print(f"Delete {what}? [y/N] ", end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise NotDone(f"{what} not deleted")


def _wait_options(
    options: argparse.Namespace, running: Running, resource: Resource
) -> dict[str, Any]:
    """A wait's keywords: ``--max-wait`` (when given), a bar on a terminal (nothing
    elsewhere: stderr is for the failure, in one line), and the id of what is waited for
    noted as soon as it is known (a create's)."""
    keywords: dict[str, Any] = {"progress": bars(options)}
    if "max_wait" in options:  # given (argparse leaves it out otherwise)
        keywords["max_wait"] = options.max_wait

    def on_progress(detail: Any) -> None:
        if running.id is None:
            running.watch(resource.command, resource.noun, running.project, detail.id)

    keywords["on_progress"] = on_progress
    return keywords


def _status(detail: Any) -> str:
    """A resource's status as a wait sees it (a dataset's: processing, processed)."""
    if hasattr(detail, "is_uploaded"):
        return "processed" if detail.is_uploaded else "processing"
    return str(getattr(detail, "status", None))


# --- creates ---------------------------------------------------------------------------------


def _parameters(options: argparse.Namespace) -> dict[str, Any] | None:
    """``--param KEY=VALUE ...`` as a dict; a key given twice is a `UsageError`."""
    given: list[tuple[str, Any]] | None = getattr(options, "param", None)
    if not given:
        return None
    parameters: dict[str, Any] = {}
    for name, value in given:
        if name in parameters:
            raise UsageError(f"--param {name} is given twice")
        parameters[name] = value
    return parameters


def _training_body(options: argparse.Namespace, dataset_id: str) -> dict[str, Any]:
    body = {
        "base_model": options.base_model,
        "train_dataset_id": dataset_id,
        "test_dataset_id": options.test_dataset,
        "train_test_split_ratio": options.split_ratio,
        "parameters": _parameters(options),
        "hf_model_link": options.hf_model_link,
        "name": options.name,
        "description": options.description,
    }
    return {k: v for k, v in body.items() if v is not None}


def _deployment_body(options: argparse.Namespace, checkpoint: int) -> dict[str, Any]:
    body = {
        "training_job_id": options.training_job,
        "checkpoint": checkpoint,
        "server_type": options.server_type,
        "name": options.name,
        "description": options.description,
    }
    return {k: v for k, v in body.items() if v is not None}


def _check_create(resource: Resource, options: argparse.Namespace) -> None:
    """Everything a create can check before anything is sent: its file, its body (with
    stand-ins for what other calls will tell)."""
    from .. import _operations as ops
    from .._protocol import build_request
    from ..errors import RequestValidationError

    if resource.command == "datasets":
        check_file(options.path)
        return
    scope = (options.project,) if resource.scoped else ()
    try:
        if resource.command == "training-jobs":
            if options.train is not None:
                check_file(options.train)
            body = _training_body(options, options.train_dataset or "ds-checked")
            build_request(ops.CREATE_TRAINING_JOB, scope, body, {})
        elif resource.command == "deployments":
            checkpoint = 0 if options.checkpoint == "last" else options.checkpoint
            build_request(ops.CREATE_DEPLOYMENT, scope, _deployment_body(options, checkpoint), {})
    except RequestValidationError as exc:
        raise UsageError(str(exc)) from None


async def _upload(sdk: Any, options: argparse.Namespace, path: str, name: str | None) -> Any:
    """Upload `path` (``-``: stdin) into the project; the dataset."""
    stdin = path == "-"
    return await sdk.datasets.upload(
        project_id=options.project,
        file=sys.stdin.buffer if stdin else path,
        name=name,
        filename=getattr(options, "filename", None) or ("data" if stdin else None),
        content_type=getattr(options, "content_type", None),
        progress=bars(options),
    )


async def create_project(sdk: Any, options: argparse.Namespace, running: Running) -> Any:
    """``projects create [--name N]``."""
    name = options.name
    return await sdk.projects.create(request=None if name is None else {"name": name})


async def upload_dataset(sdk: Any, options: argparse.Namespace, running: Running) -> Any:
    """``datasets upload -p P PATH|- [--wait]``: the dataset (processed, with ``--wait``)."""
    dataset = await _upload(sdk, options, options.path, options.name)
    if not options.wait:
        return dataset
    running.watch("datasets", "dataset", options.project, dataset.id)
    datasets = _resource("datasets")
    return await sdk.datasets.wait(
        project_id=options.project,
        dataset_id=dataset.id,
        **_wait_options(options, running, datasets),
    )


async def create_training_job(sdk: Any, options: argparse.Namespace, running: Running) -> Any:
    """``training-jobs create``: uploads ``--train`` first (and waits until it is
    processed), then creates the job, and with ``--wait`` waits for its end."""
    dataset_id = options.train_dataset
    if dataset_id is None:
        dataset = await _upload(sdk, options, options.train, None)
        if not options.quiet:
            print(f"emissary: uploaded {options.train} as dataset {dataset.id}", file=sys.stderr)
        running.watch("datasets", "dataset", options.project, dataset.id)
        await sdk.datasets.wait(project_id=options.project, dataset_id=dataset.id)
        running.done()
        dataset_id = dataset.id
    body = _training_body(options, dataset_id)
    if not options.wait:
        return await sdk.training_jobs.create(project_id=options.project, request_body=body)
    jobs = _resource("training-jobs")
    running.watch(jobs.command, jobs.noun, options.project, None)
    return await sdk.training_jobs.create_and_wait(
        project_id=options.project, request_body=body, **_wait_options(options, running, jobs)
    )


async def create_deployment(sdk: Any, options: argparse.Namespace, running: Running) -> Any:
    """``deployments create``: ``--checkpoint last`` is the highest one the job saved."""
    number = options.checkpoint
    if number == "last":
        saved = await sdk.training_jobs.list_checkpoints(
            project_id=options.project, training_job_id=options.training_job
        )
        numbers = [c.checkpoint for c in saved if c.checkpoint is not None]
        if not numbers:
            raise NotDone(
                f"the training job {options.training_job} has saved no checkpoint yet: "
                "nothing deployed"
            )
        number = max(numbers)
    body = _deployment_body(options, number)
    if not options.wait:
        return await sdk.deployments.create(project_id=options.project, request_body=body)
    deployments = _resource("deployments")
    running.watch(deployments.command, deployments.noun, options.project, None)
    return await sdk.deployments.create_and_wait(
        project_id=options.project,
        request_body=body,
        **_wait_options(options, running, deployments),
    )


CREATES: dict[str, Callable[[Any, argparse.Namespace, Running], Awaitable[Any]]] = {
    "projects": create_project,
    "datasets": upload_dataset,
    "training-jobs": create_training_job,
    "deployments": create_deployment,
}
"""Each resource's ``create`` (``upload`` for datasets)."""


def _resource(command: str) -> Resource:
    from ._parser import RESOURCES

    (found,) = [r for r in RESOURCES if r.command == command]
    return found


# --- fine-tune -------------------------------------------------------------------------------


async def fine_tune(options: argparse.Namespace, running: Running) -> int:
    """``emissary fine-tune``: `AsyncEmissaryClient.fine_tune`, its steps told on stderr,
    and what an interruption leaves running (and how to resume, with ``--state``)."""
    for path in (options.train, options.test):
        if path is not None:
            check_file(path)
    parameters = _parameters(options)
    if options.state is not None:
        running.resume = "run the same command again to resume (--state " + options.state + ")"
    project: list[str | None] = [options.project]
    progress = bars(options)
    seen: set[tuple[str, str]] = set()

    def on_event(event: Any) -> None:
        resource = event.resource
        if event.step == "project" and event.state == "done":
            project[0] = resource.id
        if event.step in ("training", "deployment"):
            command = "training-jobs" if event.step == "training" else "deployments"
            if event.state == "done":
                running.done()
            elif running.command != command or running.id is None:
                noun = event.step.replace("training", "training job")
                running.watch(command, noun, project[0], getattr(resource, "id", None))
        if options.quiet:
            return
        if event.state != "progress":
            what = f" {key(resource)}" if resource is not None else ""
            print(f"emissary: {event.step}: {event.state}{what}", file=sys.stderr)
        elif not progress and (event.step, status := _status(resource)) not in seen:
            seen.add((event.step, status))  # without bars: each status of a step, once
            print(f"emissary: {event.step}: {resource.id} {status}", file=sys.stderr)

    async with client(options) as sdk:
        result = await sdk.fine_tune(
            base_model=options.base_model,
            train=None if options.train is None else _source(options.train),
            test=None if options.test is None else _source(options.test),
            train_dataset_id=options.train_dataset,
            project_id=options.project,
            project_name=options.project_name,
            train_test_split_ratio=options.split_ratio,
            parameters=parameters,
            hf_model_link=options.hf_model_link,
            name=options.name,
            description=options.description,
            deploy=options.deploy,
            checkpoint=options.checkpoint,
            server_type=options.server_type,
            state=options.state,
            progress=progress,
            on_event=on_event,
        )
    last = result.deployment if options.deploy else result.training_job
    emit(result, options, ids=[result.project.id, last.id])
    return EXIT_OK


def _source(path: str) -> Any:
    return sys.stdin.buffer if path == "-" else path


# --- inference -------------------------------------------------------------------------------


def _sampling(options: argparse.Namespace) -> dict[str, Any]:
    names = ("max_new_tokens", "temperature", "top_p", "top_k", "no_repeat_ngram_size")
    body = {name: getattr(options, name) for name in names if getattr(options, name) is not None}
    if options.do_sample:
        body["do_sample"] = True
    return body


async def _infer(options: argparse.Namespace, namespace: str, body: dict[str, Any]) -> Any:
    """One inference call (a body the SDK refuses is a usage error: exit 2, nothing sent);
    its result and request id, as a dict (for ``--format json``)."""
    async with client(options) as sdk:
        target: Any = sdk.deployments
        for name in namespace.split("."):
            target = getattr(target, name)
        raw = await target.with_raw_response.create(
            project_id=options.project, deployment_id=options.deployment, request_body=body
        )
    answer = raw.parse()
    return {"id": answer.id, "response": answer.response, "request_id": raw.request_id}


async def chat(options: argparse.Namespace, running: Running) -> int:
    """``emissary chat``: the reply's text (or the JSON object)."""
    messages = [{"role": "user", "content": read_text(options.prompt, "PROMPT")}]
    if options.system is not None:
        messages.insert(0, {"role": "system", "content": options.system})
    answer = await _infer(options, "chat.completions", {"messages": messages, **_sampling(options)})
    _print_text(answer, options)
    return EXIT_OK


async def classify(options: argparse.Namespace, running: Running) -> int:
    """``emissary classify``: the class (or the JSON object)."""
    body = {"source_sentence": read_text(options.prompt, "TEXT")}
    _print_text(await _infer(options, "classification", body), options)
    return EXIT_OK


async def embed(options: argparse.Namespace, running: Running) -> int:
    """``emissary embed``: the comparisons (all three unless some are named) and vectors."""
    measures = ("cosine", "manhattan", "euclidean")
    asked = [m for m in measures if getattr(options, m)] or list(measures)
    body = {"source_sentence": options.source, "target_sentence": options.target}
    answer = await _infer(options, "embeddings", {**body, **dict.fromkeys(asked, True)})
    if resolve(options) == "json":
        emit(answer, options)
        return EXIT_OK
    response = answer["response"]
    vectors = getattr(response, "embeddings", None)
    shown = {
        "id": answer["id"],
        "cosine_score": getattr(response, "cosine_score", None),
        "manhattan_distance": getattr(response, "manhattan_distance", None),
        "euclidean_distance": getattr(response, "euclidean_distance", None),
        "source": getattr(vectors, "text1", None),
        "target": getattr(vectors, "text2", None),
        "request_id": answer["request_id"],
    }
    emit(shown, options)
    return EXIT_OK


def _print_text(answer: dict[str, Any], options: argparse.Namespace) -> None:
    """The text alone, unless ``--format json``."""
    if options.format == "json":
        emit(answer, options)
    else:
        print(answer["response"] or "")


async def complete(options: argparse.Namespace, running: Running) -> int:
    """``emissary complete``: the completion's text (or, with ``--json``, the object)."""
    body = {"prompt": read_text(options.prompt, "PROMPT"), **_sampling(options)}
    answer = await _infer(options, "completions", body)
    if options.json:
        print(json.dumps(answer, ensure_ascii=False))
    else:
        print(answer["response"] or "")
    return EXIT_OK


INFERENCE: dict[str, Callable[[argparse.Namespace, Running], Coroutine[Any, Any, int]]] = {
    "complete": complete,
    "chat": chat,
    "embed": embed,
    "classify": classify,
}
"""The inference commands, by name."""
