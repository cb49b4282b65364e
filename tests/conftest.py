"""Shared fixtures: a clean environment, the emulator, and async test support (anyio); for
the modules that run the platform on a virtual clock, `clock` and `api` (either client,
the sync one seen through `Awaiting`) over the module's own `emu`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from emissary import AsyncEmissaryClient, EmissaryClient
from emissary.testing import Emulator, RetryClock, VirtualClock, instant_retries

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


class Awaiting:
    """A sync client seen through awaitable methods, so that one scenario drives both
    clients: ``await Awaiting(client).projects.get(...)`` calls ``client.projects.get``."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.target, name)
        if not callable(value):
            return Awaiting(value)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return value(*args, **kwargs)

        return call


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock for a module's emulator (its `emu` fixture) and clients."""
    return VirtualClock()


@pytest.fixture(params=["async", "sync"])
async def api(
    request: pytest.FixtureRequest, emu: Emulator, clock: VirtualClock
) -> AsyncIterator[Any]:
    """Either client (the sync one seen through `Awaiting`), its retries and waits on the
    emulator's clock; `emu` is the module's own (a threaded emulator on `clock`)."""
    if request.param == "async":
        async with AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url) as client:
            with instant_retries(client, clock=clock):
                yield client
    else:
        with EmissaryClient(api_key=emu.api_key, server_url=emu.url) as sync_client:
            with instant_retries(sync_client, clock=clock):
                yield Awaiting(sync_client)
