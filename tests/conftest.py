"""Shared fixtures: a clean environment, the emulator, and async test support (anyio)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme

from emissary import AsyncEmissaryClient, EmissaryClient
from emissary.testing import Emulator, RetryClock

from .tls import write_ca

PROJECT = "demo-project"
DEPLOYMENT = "demo-deployment"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own Emissary or proxy settings."""
    monkeypatch.delenv("EMISSARY_CLIENT_API_KEY", raising=False)
    monkeypatch.delenv("EMISSARY_SERVER_URL", raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """The emulator, serving on the test's own event loop."""
    async with Emulator(deployments=[f"{PROJECT}/{DEPLOYMENT}", "p2/d2"]) as emu:
        yield emu


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[AsyncEmissaryClient]:
    """An async client pointed at the emulator."""
    async with AsyncEmissaryClient(api_key=emulator.api_key, server_url=emulator.url) as c:
        yield c


@pytest.fixture
def thread_emulator() -> Iterator[Emulator]:
    """The emulator on a background thread, for sync clients."""
    with Emulator(deployments=[f"{PROJECT}/{DEPLOYMENT}"]) as emu:
        yield emu


@pytest.fixture
def sync_client(thread_emulator: Emulator) -> Iterator[EmissaryClient]:
    """A sync client pointed at the threaded emulator."""
    with EmissaryClient(api_key=thread_emulator.api_key, server_url=thread_emulator.url) as c:
        yield c


def fake_time(client: AsyncEmissaryClient | EmissaryClient, **options: float) -> RetryClock:
    """Make `client`'s retries instant, on a virtual clock (for the test's life)."""
    return RetryClock(seed=7, **options).install(client)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A private certificate authority (``trustme``), one per test module."""
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    """That CA's certificate as a PEM file."""
    return write_ca(ca, tmp_path)
