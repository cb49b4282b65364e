"""Property tests (hypothesis, derandomized): whatever goes in or comes back, the SDK
answers with a result or one of its own typed errors, never a foreign exception."""

from __future__ import annotations

import math
from typing import Any

import yarl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emissary import EmissaryClient, models
from emissary._operations import COMPLETIONS
from emissary._protocol import Response, parse
from emissary.errors import RequestValidationError, SDKError
from emissary.testing import Emulator

FUZZ = settings(
    derandomize=True,
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow],
)

# Text with everything Python strings can hold: lone surrogates, NUL, non-BMP characters.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=20)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**6000), max_value=10**6000)
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text
    | st.binary(max_size=8)
)
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8,
)
field_names = (
    st.sampled_from(
        [
            "prompt",
            "temperature",
            "max_new_tokens",
            "top_p",
            "top_k",
            "no_repeat_ngram_size",
            "do_sample",
            "max_tokens",
            "promt",
        ]
    )
    | any_text
    | st.integers()
)
bodies = (
    st.dictionaries(field_names, json_like, max_size=5)
    | st.fixed_dictionaries({"prompt": json_like}, optional={"top_k": json_like})
    | json_like
)
ids = st.sampled_from(["demo-project", "demo-deployment"]) | any_text | json_like


def test_any_call_arguments_give_a_result_or_a_typed_error() -> None:
    with Emulator() as emu, EmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
        create = client.deployments.completions.create

        @FUZZ
        @given(project_id=ids, deployment_id=ids, request_body=bodies)
        def check(project_id: Any, deployment_id: Any, request_body: Any) -> None:
            sent = len(emu.requests)
            try:
                result = create(
                    project_id=project_id, deployment_id=deployment_id, request_body=request_body
                )
            except RequestValidationError as error:
                assert len(emu.requests) == sent  # before any I/O
                assert error.field and str(error)
                str(error).encode("utf-8")
            except SDKError:  # the emulator's 400 or 404: the arguments were sendable
                assert len(emu.requests) == sent + 1
            else:
                assert isinstance(result, models.Completion)

        check()


statuses = st.sampled_from([200, 201, 204, 400, 401, 404, 429, 500, 503]) | st.integers(100, 599)
response_bodies = (
    st.binary(max_size=64)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=6,
    ).map(lambda v: repr(v).encode("utf-8", "surrogatepass"))
    | st.sampled_from(
        [
            b'{"id": "c", "response": "ok"}',
            b'{"status": 404, "error": "x", "code": "y"}',
            b'{"status": "x"}',
            b"[" * 10_000,
            b'{"id": 1}',
            b"\xff\xfe",
        ]
    )
)
headers = st.dictionaries(
    st.sampled_from(["retry-after", "retry-after-ms", "content-type", "x-request-id"]),
    st.text(max_size=30),
    max_size=3,
)


@FUZZ
@given(status=statuses, body=response_bodies, response_headers=headers, truncated=st.booleans())
def test_any_response_gives_a_completion_or_an_sdk_error(
    status: int, body: bytes, response_headers: dict[str, str], truncated: bool
) -> None:
    try:
        result = parse(
            COMPLETIONS, Response(status, response_headers, body, yarl.URL("http://h/x"), truncated)
        )
    except SDKError as error:
        assert error.status_code == status
        str(error)
        retry_after = error.retry_after
        assert retry_after is None or (math.isfinite(retry_after) and retry_after >= 0)
    else:
        assert 200 <= status < 300 and not truncated
        assert isinstance(result, models.Completion)
