"""A local emulator of the whole Emissary platform, for tests, examples and offline work.

    from emissary import EmissaryClient
    from emissary.testing import Emulator

    with Emulator() as emu:  # serves on 127.0.0.1, a free port, in a background thread
        client = EmissaryClient(api_key=emu.api_key, server_url=emu.url)
        completion = client.deployments.completions.create(
            project_id="demo-project", deployment_id="demo-deployment",
            request_body={"prompt": "Hi", "max_new_tokens": 5},
        )

It serves every operation of the API: base models (a small catalog, `DEFAULT_BASE_MODELS`,
or ``Emulator(base_models=...)``), projects, dataset uploads, training jobs and their
checkpoints, deployments, and the four kinds of inference (completions, chat, embeddings,
classification) on any ``Deployed`` deployment, with deterministic toy answers. A
pre-made ``demo-project/demo-deployment`` is ``Deployed`` from the start.

Lifecycles, deterministic: a resource's state is computed from a clock at request time,
following the script it was created with.

    clock = VirtualClock()
    with Emulator(clock=clock) as emu:
        emu.scripts.training = TrainingScript(pending_s=30, running_s=600, outcome="Failed")
        ...                   # create a training job
        clock.advance(630)    # now it has failed, with its 4 checkpoints saved

``instant_retries(client, clock=clock)`` makes the client's retries and waits sleep on the
same clock (each sleep advances it); ``Emulator(time_scale=0.001)`` (or
``python -m emissary.testing --time-scale 0.001``) runs real time 1000 times faster, for
an emulator in another process. ``Emulator(conflicts="refuse")`` answers 400 where the spec
is silent (cancelling what ended, deleting what runs or a project that holds resources);
the default ``"allow"`` goes ahead.

Inject faults into the next requests with ``emu.faults`` (`FaultPlan`): ``fail``, ``drop``,
``truncate``, ``delay``, ``hang``, ``drip``, and ``commit_then_drop`` (the request is
carried out, then its connection dropped: an ambiguous create), each for the next request
or, with ``operation="training_jobs.create"``, the next of that operation; and into the
next resources created: ``not_found_for(seconds)`` (404 to gets and left out of lists, for
its first seconds) and ``unknown_status("Queued", for_s)``. Check what arrived in
``emu.requests`` (each `RecordedRequest` names its ``operation`` and the fault it met),
``emu.uploads`` (`Upload`: each dataset file's name, type, size and SHA-256) and
``emu.polls("training_jobs.get", job_id)``.

In async tests use ``async with Emulator() as emu:``, which serves on the running loop.
From a shell: ``python -m emissary.testing --port 8000`` (see ``--help``).

Retries without waiting: ``with instant_retries(client) as clock:`` runs the client's
retries on a virtual clock (`RetryClock`); ``clock.sleeps`` lists the waits it chose.
"""

from ._catalog import DEFAULT_BASE_MODELS
from ._clock import VIRTUAL_EPOCH, Clock, RetryClock, ScaledClock, VirtualClock, instant_retries
from ._faults import Fault, FaultPlan
from ._generator import (
    CANDIDATES_PER_WORD,
    CLASSIFICATION_LABELS,
    DEFAULT_MAX_NEW_TOKENS,
    EMBEDDING_SIZE,
    MAX_NEW_TOKENS_LIMIT,
    VOCABULARY_SIZE,
    choose_words,
    classify,
    compare,
    embed,
    generate_chat_completion,
    generate_completion,
)
from ._platform import Conflicts
from ._scripts import (
    DatasetScript,
    DeploymentOutcome,
    DeploymentScript,
    Scripts,
    TrainingOutcome,
    TrainingPhase,
    TrainingScript,
)
from ._server import (
    DEFAULT_API_KEY,
    DEFAULT_DEPLOYMENTS,
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_READ_TIMEOUT_S,
    Emulator,
    RecordedRequest,
)
from ._uploads import DEFAULT_MAX_UPLOAD_BYTES, Upload

__all__ = [
    "CANDIDATES_PER_WORD",
    "CLASSIFICATION_LABELS",
    "DEFAULT_API_KEY",
    "DEFAULT_BASE_MODELS",
    "DEFAULT_DEPLOYMENTS",
    "DEFAULT_IDLE_TIMEOUT_S",
    "DEFAULT_MAX_NEW_TOKENS",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "DEFAULT_READ_TIMEOUT_S",
    "EMBEDDING_SIZE",
    "MAX_NEW_TOKENS_LIMIT",
    "VIRTUAL_EPOCH",
    "VOCABULARY_SIZE",
    "Clock",
    "Conflicts",
    "DatasetScript",
    "DeploymentOutcome",
    "DeploymentScript",
    "Emulator",
    "Fault",
    "FaultPlan",
    "RecordedRequest",
    "RetryClock",
    "ScaledClock",
    "Scripts",
    "TrainingOutcome",
    "TrainingPhase",
    "TrainingScript",
    "Upload",
    "VirtualClock",
    "choose_words",
    "classify",
    "compare",
    "embed",
    "generate_chat_completion",
    "generate_completion",
    "instant_retries",
]
