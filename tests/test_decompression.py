"""Compressed bodies: the size caps bound the *decoded* bytes, so a small bomb stays small.

A 200 KB gzip body of zeros inflates to 200 MB. The client must stop reading once the
decoded body passes ``max_response_bytes`` (success) or 1 MiB (errors), for every encoding
aiohttp decodes, and memory must stay near the cap, on every retry too.
"""

from __future__ import annotations

import functools
import json
import textwrap
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

from emissary import AsyncEmissaryClient
from emissary.errors import ResponseValidationError, SDKError
from emissary.testing import RetryClock
from emissary.utils import RetryConfig

from .faults import FaultServer, RawServer, run_python

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20


def _zlib(size: int, wbits: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(MiB)
    return b"".join([packer.compress(zeros) for _ in range(size // MiB)] + [packer.flush()])


def _brotli(size: int) -> bytes:
    import brotli

    return bytes(brotli.compress(bytes(size), quality=5))


def _zstd(size: int) -> bytes:
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        from backports import zstd  # type: ignore[no-redef]
    return bytes(zstd.compress(bytes(size)))


ENCODERS: dict[str, Callable[[int], bytes]] = {
    "gzip": lambda size: _zlib(size, 31),
    "deflate": lambda size: _zlib(size, 15),
    "br": _brotli,
    "zstd": _zstd,
}


@functools.cache
def bomb(encoding: str, size: int) -> bytes:
    """`size` zero bytes, compressed with `encoding` (made once per test run)."""
    return ENCODERS[encoding](size)


def bomb_handler(status: int, encoding: str, size: int) -> Callable[..., object]:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = bomb(encoding, size)
        return web.Response(
            status=status,
            body=body,
            headers={"Content-Type": "application/json", "Content-Encoding": encoding},
        )

    return handle


def test_every_encoding_aiohttp_decodes_is_covered() -> None:
    # brotli and zstd are decoded only when their packages are installed (the test extra
    # installs both), and then aiohttp advertises them: make sure the tests see them.
    from aiohttp import compression_utils

    assert compression_utils.HAS_BROTLI
    assert compression_utils.HAS_ZSTD


@pytest.mark.parametrize("encoding", list(ENCODERS))
async def test_a_compressed_completion_is_decoded(encoding: str) -> None:
    payload = json.dumps({"id": "c1", "response": "word " * 20_000}).encode()
    if encoding in ("gzip", "deflate"):
        packer = zlib.compressobj(6, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
        body = packer.compress(payload) + packer.flush()
    elif encoding == "br":
        import brotli

        body = brotli.compress(payload)
    else:
        try:
            from compression import zstd
        except ImportError:
            from backports import zstd
        body = zstd.compress(payload)

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, headers={"Content-Encoding": encoding})

    async with FaultServer(handle) as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            result = await client.deployments.completions.create(
                project_id="p", deployment_id="d", request_body={"prompt": "p"}
            )
    assert result.response == "word " * 20_000
    assert encoding in server.requests[0].headers["Accept-Encoding"]


@pytest.mark.parametrize("encoding", list(ENCODERS))
async def test_a_success_bomb_is_cut_at_max_response_bytes_while_decoding(encoding: str) -> None:
    size = 64 * MiB
    bomb(encoding, size)  # made before memory is traced
    async with FaultServer(bomb_handler(200, encoding, size)) as server:
        async with AsyncEmissaryClient(
            api_key="k", server_url=server.url, max_response_bytes=MiB
        ) as client:
            tracemalloc.start()
            try:
                with pytest.raises(ResponseValidationError, match="max_response_bytes") as caught:
                    await client.deployments.completions.create(
                        project_id="p", deployment_id="d", request_body={"prompt": "p"}
                    )
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    assert len(caught.value.body) == MiB  # decoded bytes, cut at the cap
    assert peak < 12 * MiB, f"peak traced memory {peak / MiB:.1f} MiB for a 64 MiB bomb"


@pytest.mark.parametrize("encoding", list(ENCODERS))
async def test_an_error_bomb_is_read_up_to_1_mib_decoded_on_every_retry(encoding: str) -> None:
    size = 64 * MiB
    bomb(encoding, size)
    async with FaultServer(bomb_handler(500, encoding, size)) as server:
        async with AsyncEmissaryClient(api_key="k", server_url=server.url) as client:
            RetryClock().install(client)
            tracemalloc.start()
            try:
                with pytest.raises(SDKError) as caught:
                    await client.deployments.completions.create(
                        project_id="p", deployment_id="d", request_body={"prompt": "p"}
                    )
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    assert caught.value.status_code == 500
    assert len(server.requests) == 3  # retried, each time cut at 1 MiB
    assert len(caught.value.body) == MiB
    assert peak < 12 * MiB, f"peak traced memory {peak / MiB:.1f} MiB"


def test_a_1_gib_gzip_bomb_leaves_the_process_small() -> None:
    # Peak RSS of a fresh client process, measured before and after the bomb: the whole
    # process, C buffers included (200 KB became 200 MB and 459 MB of RSS before the fix).
    body = bomb("gzip", 1024 * MiB)
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )

    def answer(conn: object) -> None:
        conn.sendall(head + body)  # type: ignore[attr-defined]

    script = textwrap.dedent(
        """
        import json, resource, sys
        from emissary import EmissaryClient
        from emissary.errors import ResponseValidationError
        from emissary.utils import RetryConfig

        def peak_mb():
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        with EmissaryClient(api_key="k", server_url=sys.argv[1],
                            retry_config=RetryConfig.disabled()) as client:
            create = client.deployments.completions.create
            try:
                create(project_id="p", deployment_id="d", request_body={"prompt": "warm"},
                       timeout_ms=30_000)
            except ResponseValidationError as error:
                outcome = len(error.body)
            print(json.dumps({"peak_mb": peak_mb(), "body": outcome}))
        """
    )
    with RawServer(answer) as server:
        baseline = run_python(
            "import resource, emissary, aiohttp;"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)",
            dev=False,
        )
        proc = run_python(script, server.url, timeout=120, dev=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["body"] == 16 * MiB  # cut at the default max_response_bytes, decoded
    growth = out["peak_mb"] - float(baseline.stdout)
    print(
        f"\n1 GiB gzip bomb ({len(body) / MiB:.1f} MiB on the wire): peak RSS "
        f"{out['peak_mb']:.0f} MB, {growth:.0f} MB over a bare import"
    )
    assert growth < 96, f"peak RSS grew by {growth:.0f} MB"


async def test_the_cap_counts_decoded_bytes_not_wire_bytes() -> None:
    # 300 KiB of zeros compress to a few hundred bytes: far under the cap on the wire,
    # over it once decoded.
    body = zlib.compress(bytes(300 * 1024))

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, headers={"Content-Encoding": "deflate"})

    async with FaultServer(handle) as server:
        async with AsyncEmissaryClient(
            api_key="k",
            server_url=server.url,
            max_response_bytes=256 * 1024,
            retry_config=RetryConfig.disabled(),
        ) as client:
            with pytest.raises(ResponseValidationError, match="max_response_bytes"):
                await client.deployments.completions.create(
                    project_id="p", deployment_id="d", request_body={"prompt": "p"}
                )
    assert len(body) < 1024
