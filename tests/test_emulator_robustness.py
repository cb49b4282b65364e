"""The emulator holds up as a server: bad bytes, slow or idle clients, heavy requests.

Checked over raw sockets (and `http.client`), to send what no polite HTTP client would.
Every wait is bounded (`WAIT`), far longer than any setting a test chooses.
"""

from __future__ import annotations

import http.client
import itertools
import json
import logging
import os
import random
import re
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import trustme

from emissary.testing import (
    CANDIDATES_PER_WORD,
    DEFAULT_API_KEY,
    VOCABULARY_SIZE,
    Emulator,
    choose_words,
)

from .conftest import DEPLOYMENT, PROJECT
from .faults import WAIT, wait_until
from .tls import server_context

ROOT = Path(__file__).resolve().parent.parent
PATH = f"/v1/projects/{PROJECT}/deployments/{DEPLOYMENT}/completions"
IDLE = 0.5
"""A short idle timeout that still gives a client sending at once ample time, on a busy
machine, to have its request (or TLS handshake) heard before it runs out."""
BODY = b'{"prompt": "hi", "max_new_tokens": 3}'


def client_hello() -> bytes:
    """The first bytes a TLS client sends: its ClientHello."""
    outgoing = ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(
        ssl.MemoryBIO(), outgoing, server_hostname="localhost"
    )
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


BAD_HEADER = b"GET / HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n"
GARBAGE = b"\x00\x01\x02 not http at all\r\n\r\n"
STATUS_400 = re.compile(rb"HTTP/1\.[01] 400 ")


def exchange(port: int, data: bytes) -> bytes:
    """Send `data` on a new connection; all the emulator sends back until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(data)
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything `sock` receives until the peer closes (a reset counts as closing)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def completion_status(port: int) -> int:
    """The status of a plain completion request on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        connection.request("POST", PATH, BODY, {"X-API-Key": DEFAULT_API_KEY})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def json_answer(answer: bytes) -> tuple[int, dict[str, object]]:
    """The status and JSON body of a raw HTTP answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


# 1. Bytes that are not HTTP


def shrink_pipe(pipe: IO[str]) -> None:
    """Make `pipe` hold one page (on Linux): a few tracebacks would fill it."""
    try:
        import fcntl
    except ImportError:  # not on this platform: the pipe keeps its 64 KiB
        return
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, 4096)


def test_bad_bytes_get_400_without_a_traceback_even_when_stderr_is_never_read() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "emissary.testing", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,  # never read while it serves
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        shrink_pipe(proc.stderr)
        port = int(re.findall(r":(\d+) ", proc.stdout.readline())[0])
        hello = client_hello()
        for _ in range(20):  # far more tracebacks than the pipe holds
            assert STATUS_400.match(exchange(port, BAD_HEADER))
            assert STATUS_400.match(exchange(port, GARBAGE))
            answer = exchange(port, hello)
            assert answer == b"" or STATUS_400.match(answer), answer  # a close is fine too
        assert completion_status(port) == 200  # still serving
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=WAIT)
    assert "Traceback" not in stderr
    assert stderr == ""  # bad input is logged at INFO, which the command line does not show


def test_bad_bytes_are_logged_in_one_line_each_without_a_traceback(
    thread_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad_gzip = (
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\nX-API-Key: {DEFAULT_API_KEY}\r\n"
        "Content-Encoding: gzip\r\nContent-Length: 8\r\n\r\nnot gzip"
    ).encode()
    requests = [BAD_HEADER, GARBAGE, client_hello(), bad_gzip]
    for data in requests:  # each answered and closed, so whatever it logs is logged now
        assert exchange(thread_emulator.port, data)
    assert [r for r in caplog.records if r.exc_info and r.exc_info[0]] == []
    emulator_lines = [r for r in caplog.records if r.name.startswith("emissary.testing")]
    assert len(emulator_lines) <= len(requests)
    for record in emulator_lines:
        assert record.levelno <= logging.INFO
        assert "\n" not in record.getMessage()
    assert not [r for r in caplog.records if r.name == "aiohttp.server"]


# 2. A body that does not match its Content-Encoding


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_body_that_does_not_decode_is_400_with_the_contract_json(
    thread_emulator: Emulator, encoding: str
) -> None:
    request = (
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\nX-API-Key: {DEFAULT_API_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Encoding: {encoding}\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY  # plain JSON, not compressed
    answer = exchange(thread_emulator.port, request)
    status, payload = json_answer(answer)
    assert status == 400
    assert payload["status"] == 400
    assert encoding in str(payload["error"])
    (recorded,) = thread_emulator.requests
    assert f"X-Request-Id: {recorded.request_id}".encode() in answer
    assert completion_status(thread_emulator.port) == 200


# 3. The cost of generating text


def counted(candidates: Iterator[int], drawn: list[int]) -> Iterator[int]:
    """`candidates`, counting each one drawn in ``drawn[0]``."""
    for candidate in candidates:
        drawn[0] += 1
        yield candidate


def assert_no_repeated_ngram(words: list[int], n: int) -> None:
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    assert len(grams) == len(set(grams))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 50, 4096, 2**63 - 1])
def test_generation_draws_at_most_k_candidates_per_word_whatever_the_settings(n: int) -> None:
    # The worst case: every candidate is the same word, so from the start (n = 1) each
    # position would repeat an n-gram, however many candidates it examined.
    drawn = [0]
    words = choose_words(counted(itertools.repeat(0), drawn), 4096, n)
    assert len(words) == 4096
    assert drawn[0] <= CANDIDATES_PER_WORD * 4096
    if 0 < n <= 50:
        assert_no_repeated_ngram(words, n)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("vocabulary", [2, 5, VOCABULARY_SIZE])
def test_generated_words_never_repeat_an_ngram(n: int, vocabulary: int) -> None:
    rng = random.Random(n * 1000 + vocabulary)
    draws = iter(lambda: rng.randrange(vocabulary), None)
    words = choose_words(draws, 3000, n)
    assert len(words) == 3000
    assert_no_repeated_ngram(words, n)


# 4. Bookkeeping bounded by the requests in flight


def request_bytes(body: bytes = BODY, *, close: bool = False) -> bytes:
    """A completion request on the wire; it asks to close the connection after if `close`."""
    connection = "Connection: close\r\n" if close else ""
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\nX-API-Key: {DEFAULT_API_KEY}\r\n{connection}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_in_flight_bookkeeping_ends_with_each_request_of_any_kind() -> None:
    with Emulator(capacity=1, latency_ms=1) as emu:
        emu.faults.fail().drop().truncate().delay(0)
        for _ in range(4):
            exchange(emu.port, request_bytes(close=True))
        emu.faults.hang()
        with socket.create_connection(("127.0.0.1", emu.port), timeout=WAIT) as hung:
            hung.sendall(request_bytes())
            wait_until(lambda: emu.in_flight == 1)
            assert completion_status(emu.port) == 429  # over capacity while it hangs
        wait_until(lambda: emu.in_flight == 0)  # its client left: it is over
        assert [r.fault for r in emu.requests] == [
            "fail",
            "drop",
            "truncate",
            "delay",
            "hang",
            "over_capacity",
        ]
        emu.requests.clear()
        for _ in range(100):
            assert completion_status(emu.port) == 200
        # `in_flight` is the size of the bookkeeping (when each request in progress should
        # be done, for 429s' retry-after-ms), not a counter kept beside it: nothing is left.
        assert emu.in_flight == 0
        assert len(emu.requests) == 100  # the user's record, until they clear it


# 5. Idle and slow clients


def test_an_idle_keep_alive_connection_is_closed() -> None:
    with Emulator(idle_timeout_s=IDLE) as emu:
        with socket.create_connection(("127.0.0.1", emu.port), timeout=WAIT) as sock:
            sock.sendall(request_bytes())
            response = http.client.HTTPResponse(sock)
            response.begin()
            response.read()
            assert response.status == 200 and not response.will_close
            assert read_until_closed(sock) == b""  # then nothing more comes: it is closed
            response.close()


@pytest.mark.parametrize(
    "sent", [b"", b"POST /v1/projects/demo-pro", request_bytes()[: -len(BODY) - 2]]
)
def test_a_connection_without_a_whole_request_head_is_closed(sent: bytes) -> None:
    with Emulator(idle_timeout_s=0.2) as emu:
        assert exchange(emu.port, sent) == b""  # closed without an answer


def test_a_tls_connection_without_a_request_is_closed(ca: trustme.CA) -> None:
    # (One that never finishes its handshake is closed by asyncio after 60 s.)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    with Emulator(idle_timeout_s=IDLE, ssl_context=server_context(ca)) as emu:
        with socket.create_connection(("127.0.0.1", emu.port), timeout=WAIT) as sock:
            with client.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
                assert read_until_closed(tls) == b""


def test_a_body_slower_than_the_read_timeout_is_408() -> None:
    with Emulator(read_timeout_s=0.2) as emu:
        with socket.create_connection(("127.0.0.1", emu.port), timeout=WAIT) as sock:
            sock.sendall(request_bytes()[:-5])  # the body's last 5 bytes never come
            response = http.client.HTTPResponse(sock)
            response.begin()
            payload = json.loads(response.read())
            response.close()
        assert response.status == 408 and response.will_close
        assert payload["status"] == 408 and payload["error"]
        assert completion_status(emu.port) == 200


def test_the_timeouts_do_not_cut_a_request_in_progress() -> None:
    with Emulator(idle_timeout_s=IDLE, read_timeout_s=0.2, latency_ms=IDLE * 1000 + 100) as emu:
        assert completion_status(emu.port) == 200


@pytest.mark.parametrize("option", ["idle_timeout_s", "read_timeout_s"])
@pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan"), True, "5"])
def test_timeouts_must_be_positive_seconds(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option):
        Emulator(**{option: value})  # type: ignore[arg-type]
