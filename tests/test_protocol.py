"""The I/O-free half: paths, headers and response parsing."""

from __future__ import annotations

import pickle
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import yarl

from emissary import models
from emissary._operations import COMPLETIONS
from emissary._protocol import (
    Response,
    fill_path,
    new_idempotency_key,
    parse,
    path_segment,
    session_headers,
)
from emissary.errors import (
    APIErrorInvalidInput,
    APIErrorNotFound,
    APIErrorUnauthorized,
    ResponseValidationError,
    SDKError,
)

URL = yarl.URL("http://127.0.0.1:1/v1/projects/p/deployments/d/completions")


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("plain-id_1.2~x", "plain-id_1.2~x"),
        ("a/b", "a%2Fb"),
        ("a?b#c", "a%3Fb%23c"),
        ("100%", "100%25"),
        ("two words", "two%20words"),
        ("café", "caf%C3%A9"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("...", "%2E%2E%2E"),
        ("%2E%2E", "%252E%252E"),
        ("a..b", "a..b"),
    ],
)
def test_ids_are_one_encoded_segment(raw: str, encoded: str) -> None:
    assert path_segment(raw) == encoded


def test_a_path_has_each_id_as_one_segment() -> None:
    path = fill_path(COMPLETIONS, ("p/1", ".."))
    assert path == "/v1/projects/p%2F1/deployments/%2E%2E/completions"


def test_session_headers() -> None:
    assert "X-API-Key" not in session_headers(None)
    headers = session_headers("key")
    assert headers["X-API-Key"] == "key"
    assert "Content-Type" not in headers  # a request's own: JSON, multipart or none
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"].startswith("emissary-python/")


def test_success_is_decoded_and_unknown_fields_ignored() -> None:
    body = b'{"id": "c1", "response": "hi", "usage": {"tokens": 3}}'
    assert parse(COMPLETIONS, Response(200, {}, body, URL)) == models.Completion(
        id="c1", response="hi"
    )


def test_success_fields_may_be_absent() -> None:
    assert parse(COMPLETIONS, Response(200, {}, b"{}", URL)) == models.Completion()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"id": 5}',
        b'"text"',
        b"null",
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_a_2xx_body_that_is_not_a_completion_raises_with_the_body(body: bytes) -> None:
    with pytest.raises(ResponseValidationError) as caught:
        parse(COMPLETIONS, Response(200, {"Content-Type": "application/json"}, body, URL))
    error = caught.value
    assert isinstance(error, SDKError)
    assert error.status_code == 200
    assert error.body == body.decode()
    assert error.raw_response is not None and error.raw_response.content == body


@pytest.mark.parametrize(
    ("status", "body", "kind", "data"),
    [
        (
            400,
            b'{"status": 400, "error": "bad"}',
            APIErrorInvalidInput,
            models.APIErrorInvalidInputData(status=400, error="bad"),
        ),
        (
            401,
            b'{"status": 401, "error": "no"}',
            APIErrorUnauthorized,
            models.APIErrorUnauthorizedData(status=401, error="no"),
        ),
        (
            404,
            b'{"status": 404, "error": "nf", "code": "x", "more": 1}',
            APIErrorNotFound,
            models.APIErrorNotFoundData(status=404, error="nf", code="x"),
        ),
    ],
)
def test_documented_errors_carry_data(status: int, body: bytes, kind: type, data: object) -> None:
    with pytest.raises(kind) as caught:
        parse(COMPLETIONS, Response(status, {"X-Request-Id": "r1"}, body, URL))
    error = caught.value
    assert error.data == data
    assert error.status_code == status
    assert error.body == body.decode()
    assert error.headers["x-request-id"] == "r1"
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is kind and clone.data == data and clone.status_code == status


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, b"<html>bad</html>"),
        (404, b'{"status": 404, "error": "nf"}'),
        (401, b""),
        (500, b"oops"),
        (503, b"{}"),
        (307, b""),
        (418, b"teapot"),
    ],
)
def test_other_errors_are_plain_sdk_errors(status: int, body: bytes) -> None:
    with pytest.raises(SDKError) as caught:
        parse(COMPLETIONS, Response(status, {}, body, URL))
    assert type(caught.value) is SDKError
    assert caught.value.status_code == status
    assert caught.value.body == body.decode()
    assert f"Status {status}" in str(caught.value)


def test_truncated_success_is_refused() -> None:
    with pytest.raises(ResponseValidationError, match="max_response_bytes"):
        parse(COMPLETIONS, Response(200, {}, b'{"id": "x", "resp', URL, truncated=True))


def test_idempotency_keys_are_random_uuid4s() -> None:
    keys = {new_idempotency_key() for _ in range(1000)}
    assert len(keys) == 1000
    for key in keys:
        parsed = uuid.UUID(key)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == key
    assert {key[19] for key in keys} == set("89ab")  # the variant's free bit is random


def test_every_free_digit_of_an_idempotency_key_is_random() -> None:
    keys = [new_idempotency_key() for _ in range(4000)]
    for position in range(36):
        if position in (8, 13, 18, 23, 14, 19):  # dashes, version, variant: checked above
            continue
        assert {key[position] for key in keys} == set("0123456789abcdef"), position


def test_idempotency_keys_are_unique_across_threads() -> None:
    def draw() -> list[str]:
        return [new_idempotency_key() for _ in range(5000)]

    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(lambda _: draw(), range(8)))
    keys = [key for batch in batches for key in batch]
    assert len(set(keys)) == len(keys) == 40000
