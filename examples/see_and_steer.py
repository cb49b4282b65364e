"""Seeing and steering a call: raw responses, request ids, extras, derived clients, logs.

    python examples/see_and_steer.py

Runs against the bundled emulator. (For traces, install ``emissary-python[otel]`` and set
up an OpenTelemetry SDK: every call then makes one span, with no code here.)
"""

from __future__ import annotations

import logging
import sys

from emissary import EmissaryClient, errors
from emissary.testing import Emulator, instant_retries


def main() -> int:
    """Show each feature once, printing what it gives."""
    logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("emissary").setLevel(logging.DEBUG)  # a record per attempt and retry
    with (
        Emulator() as emu,
        EmissaryClient(
            api_key=emu.api_key, server_url=emu.url, default_headers={"X-Team": "search"}
        ) as client,
    ):
        emu.faults.fail(status=503, retry_after=1)  # the first attempt is turned away
        with instant_retries(client):  # (the emulator's demo: no real wait)
            raw = client.deployments.completions.with_raw_response.create(
                project_id="demo-project",
                deployment_id="demo-deployment",
                request_body={"prompt": "Hello", "max_new_tokens": 4},
                extra_headers={"X-Trace": "t-123"},
                idempotency_key="greeting-1",
            )
        print(
            f"status {raw.status_code}, request id {raw.request_id}, "
            f"retries {raw.retries_taken}, key {raw.idempotency_key}"
        )
        print(f"completion: {raw.parse().response}")

        patient = client.with_options(timeout_ms=120_000)  # same pool, other settings
        try:
            patient.deployments.completions.create(
                project_id="demo-project", deployment_id="gone", request_body={"prompt": "?"}
            )
        except errors.APIErrorNotFound as error:
            print(f"not found ({error.data.code}); quote request id {error.request_id}")
        sent = emu.requests[0].headers
        print(f"sent X-Team={sent['X-Team']}, X-Trace={sent['X-Trace']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
