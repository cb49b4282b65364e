"""Users migrating from the generated `emissary-client-sdk`: its constructor arguments that
mean nothing here are errors that say what to use instead, and ``debug_logger=`` works
(without ever logging the key, which the generated SDK did)."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import pytest

from emissary import AsyncEmissaryClient, EmissaryClient
from emissary.errors import ConfigurationError
from emissary.testing import Emulator, instant_retries

from .conftest import DEPLOYMENT, PROJECT

IDS = {"project_id": PROJECT, "deployment_id": DEPLOYMENT}


@pytest.mark.parametrize("cls", [EmissaryClient, AsyncEmissaryClient])
@pytest.mark.parametrize(
    ("argument", "value", "words"),
    [
        ("server_idx", 0, ["server_idx=", "server_url="]),
        ("url_params", {"region": "eu"}, ["url_params=", "server_url="]),
        ("client", object(), ["client=", "proxy=", "ssl_context=", "timeout_ms="]),
        ("async_client", object(), ["async_client=", "proxy=", "max_connections="]),
        ("timout_ms", 5, ["timout_ms=", "did you mean 'timeout_ms'"]),
        ("nonsense_option", 1, ["nonsense_option=", "the arguments: api_key"]),
    ],
)
def test_the_generated_sdks_arguments_say_what_to_use_instead(
    cls: Any, argument: str, value: object, words: list[str]
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        cls(api_key="k", server_url="http://127.0.0.1:9", **{argument: value})
    for word in words:
        assert word in str(caught.value)


def test_type_checkers_flag_those_arguments_too(tmp_path: Path) -> None:
    from mypy import api

    snippet = tmp_path / "user_code.py"
    snippet.write_text(
        "import logging\n"
        "from emissary import EmissaryClient\n"
        "EmissaryClient(api_key='k', debug_logger=logging.getLogger('mine'))\n"
        "EmissaryClient(api_key='k', server_idx=0)\n"
    )
    out, _, status = api.run(
        ["--strict", "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", str(snippet)]
    )
    lines = sorted({int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line})
    assert status == 1 and lines == [4], out


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_debug_logger_gets_the_clients_records_and_never_the_key() -> None:
    mine, theirs = _Records(), _Records()
    debug_logger = logging.getLogger("tests.migration.debug_logger")
    debug_logger.setLevel(logging.DEBUG)
    debug_logger.addHandler(mine)
    emissary_logger = logging.getLogger("emissary")
    emissary_logger.addHandler(theirs)
    level = emissary_logger.level
    emissary_logger.setLevel(logging.DEBUG)
    try:
        with Emulator() as emu:
            client = EmissaryClient(
                api_key=emu.api_key, server_url=emu.url, debug_logger=debug_logger
            )
            emu.faults.fail(status=503)
            with client, instant_retries(client):
                client.deployments.completions.create(**IDS, request_body={"prompt": "secret"})
            key = emu.api_key
    finally:
        debug_logger.removeHandler(mine)
        emissary_logger.removeHandler(theirs)
        emissary_logger.setLevel(level)
    messages = [record.getMessage() for record in mine.records]
    assert [record.levelno for record in mine.records] == [
        logging.DEBUG,  # attempt 1: 503
        logging.INFO,  # the retry
        logging.DEBUG,  # attempt 2: 200
    ], messages
    assert "attempt 1: 503" in messages[0] and "attempt 2: 200" in messages[2]
    assert all(key not in m and "secret" not in m for m in messages)
    assert theirs.records == []  # this client's records went to its own logger


def test_debug_logger_must_be_a_logger_and_a_client_with_one_pickles() -> None:
    with pytest.raises(ConfigurationError, match=r"debug_logger must be a logging\.Logger"):
        EmissaryClient(api_key="k", server_url="http://127.0.0.1:9", debug_logger=print)  # type: ignore[arg-type]
    client = EmissaryClient(
        api_key="k", server_url="http://127.0.0.1:9", debug_logger=logging.getLogger("x.y")
    )
    assert repr(pickle.loads(pickle.dumps(client))) == repr(client)


def test_the_package_names_every_model_as_the_generated_sdks_does() -> None:
    # Its examples write ``emissary_client_sdk.ServerType.ON_DEMAND``: after
    # ``import emissary as emissary_client_sdk`` that must still work.
    import emissary_client_sdk.models

    import emissary
    from emissary import models

    missing = {n for n in emissary_client_sdk.models.__all__ if not hasattr(emissary, n)}
    assert missing == set(), sorted(missing)
    missing = {n for n in emissary_client_sdk.models.__all__ if not hasattr(models, n)}
    assert missing == set(), sorted(missing)
    assert emissary.ServerType.ON_DEMAND == "on-demand"
    assert emissary.DeploymentDetail is models.DeploymentDetail
    with pytest.raises(AttributeError):
        emissary.NoSuchModel  # noqa: B018
