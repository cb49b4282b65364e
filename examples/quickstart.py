"""A completion from a script, no async needed.

    python examples/quickstart.py

With EMISSARY_SERVER_URL and EMISSARY_CLIENT_API_KEY set it calls that server; otherwise it
starts the bundled emulator (`emissary.testing.Emulator`) on 127.0.0.1 and calls it.
"""

from __future__ import annotations

import contextlib
import os
import sys

from emissary import EmissaryClient, models
from emissary.errors import EmissaryError
from emissary.testing import Emulator


def main() -> int:
    """Create one completion and print it."""
    with contextlib.ExitStack() as stack:
        if os.environ.get("EMISSARY_SERVER_URL"):
            client = EmissaryClient()  # settings from the environment
            project, deployment = (
                os.environ.get("EMISSARY_PROJECT_ID", "demo-project"),
                os.environ.get("EMISSARY_DEPLOYMENT_ID", "demo-deployment"),
            )
        else:
            emulator = stack.enter_context(Emulator())
            print(f"No EMISSARY_SERVER_URL set: using the bundled emulator at {emulator.url}")
            client = EmissaryClient(api_key=emulator.api_key, server_url=emulator.url)
            project, deployment = "demo-project", "demo-deployment"
        stack.enter_context(client)
        try:
            completion = client.deployments.completions.create(
                project_id=project,
                deployment_id=deployment,
                request_body=models.GetCompletionsFromDeploymentRequestBody(
                    prompt="What is the capital of France?",
                    temperature=0.7,
                    max_new_tokens=12,
                    top_p=0.9,
                    top_k=50,
                    no_repeat_ngram_size=2,
                    do_sample=True,
                ),
            )
        except EmissaryError as error:
            print(f"request failed: {error}", file=sys.stderr)
            return 1
    print(f"completion {completion.id}: {completion.response}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
