"""One `AsyncEmissaryClient` on several event loops: at once (threads each running
``asyncio.run``) or one after another; and clients never closed. Each case runs in a fresh
interpreter in dev mode, so any warning (aiohttp's "Unclosed client session", asyncio's
"unclosed transport") shows on stderr, which must stay empty.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from .faults import run_python

ROOT = Path(__file__).resolve().parent.parent

PRELUDE = """
import asyncio, gc, json, threading
from emissary import AsyncEmissaryClient
from emissary.errors import EmissaryError
from emissary.testing import Emulator
from tests.faults import connections_to

ARGS = dict(project_id="demo-project", deployment_id="demo-deployment")

async def calls(client, n, tag):
    outcomes = []
    for i in range(n):
        try:
            result = await client.deployments.completions.create(
                **ARGS, request_body={"prompt": f"{tag} {i}", "max_new_tokens": 3})
            outcomes.append("ok" if result.response else "empty")
        except EmissaryError as error:
            outcomes.append(type(error).__name__)
        except Exception as error:  # a foreign exception: the defect
            outcomes.append("FOREIGN " + repr(error))
    return outcomes
"""


def run(code: str) -> dict[str, object]:
    proc = run_python(PRELUDE + textwrap.dedent(code))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr  # no warning of any kind
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_threads_each_running_their_own_loop_share_one_client() -> None:
    out = run(
        """
        with Emulator() as emu:
            client = AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url)
            results = {}
            def worker(n):
                results[n] = asyncio.run(calls(client, 50, f"thread {n}"))
            threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
            for t in threads: t.start()
            for t in threads: t.join()
            outcomes = [o for r in results.values() for o in r]
            open_after_runs = connections_to(emu.port)
            asyncio.run(client.close())
            print(json.dumps({"outcomes": sorted(set(outcomes)), "count": len(outcomes),
                              "open_after_runs": open_after_runs,
                              "requests": len(emu.requests)}))
        """
    )
    assert out == {"outcomes": ["ok"], "count": 400, "open_after_runs": 0, "requests": 400}


def test_one_loop_after_another_each_gets_a_session_closed_with_its_loop() -> None:
    out = run(
        """
        with Emulator() as emu:
            client = AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url)
            rounds = []
            for n in range(5):
                outcomes = asyncio.run(calls(client, 3, f"run {n}"))
                rounds.append([outcomes, connections_to(emu.port)])
            asyncio.run(client.close())
            peers = len({r.peer for r in emu.requests})
            print(json.dumps({"rounds": rounds, "peers": peers}))
        """
    )
    assert out["rounds"] == [[["ok"] * 3, 0]] * 5  # each loop's connection closed as it ended
    assert out["peers"] == 5  # one connection per loop, reused within it


def test_a_client_used_on_a_loop_thread_while_another_loop_closes_it() -> None:
    out = run(
        """
        with Emulator() as emu:
            client = AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url)
            other = asyncio.new_event_loop()
            thread = threading.Thread(target=other.run_forever)
            thread.start()
            first = asyncio.run_coroutine_threadsafe(calls(client, 2, "other"), other).result(10)
            asyncio.run(calls(client, 2, "main"))
            asyncio.run(client.close())  # closes the other loop's session there, too
            after = asyncio.run_coroutine_threadsafe(calls(client, 1, "late"), other).result(10)
            other.call_soon_threadsafe(other.stop)
            thread.join()
            other.close()
            print(json.dumps({"first": first, "after": after,
                              "open": connections_to(emu.port)}))
        """
    )
    assert out == {"first": ["ok", "ok"], "after": ["ClientClosedError"], "open": 0}


def test_an_async_client_never_closed_is_quiet_when_collected() -> None:
    out = run(
        """
        async def main(emu):
            client = AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url)
            outcomes = await calls(client, 2, "forgotten")
            del client
            gc.collect()
            for _ in range(500):  # the loop closes the dropped client's session
                if connections_to(emu.port) == 0:
                    break
                await asyncio.sleep(0.001)
            return outcomes, connections_to(emu.port)

        with Emulator() as emu:
            outcomes, open_after = asyncio.run(main(emu))
            client = AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url)
            asyncio.run(calls(client, 1, "left open at the end of a run"))
            del client
            gc.collect()
            print(json.dumps({"outcomes": outcomes, "open_after_gc": open_after,
                              "open_at_end": connections_to(emu.port)}))
        """
    )
    assert out == {"outcomes": ["ok", "ok"], "open_after_gc": 0, "open_at_end": 0}


@pytest.mark.parametrize("closer", ["asyncio.Runner", "run_until_complete"])
def test_loops_run_by_hand_are_served_too(closer: str) -> None:
    code = {
        "asyncio.Runner": """
            with asyncio.Runner() as runner:
                outcomes = runner.run(calls(client, 2, "runner"))
                outcomes += runner.run(calls(client, 2, "runner again"))
            """,
        "run_until_complete": """
            loop = asyncio.new_event_loop()
            outcomes = loop.run_until_complete(calls(client, 2, "by hand"))
            outcomes += loop.run_until_complete(calls(client, 2, "by hand again"))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            """,
    }[closer]
    if closer == "asyncio.Runner" and sys.version_info < (3, 11):
        pytest.skip("asyncio.Runner is new in Python 3.11")
    body = textwrap.indent(textwrap.dedent(code), "    ")
    out = run(
        "with Emulator() as emu:\n"
        "    client = AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url)\n"
        + body
        + "    print(json.dumps({'outcomes': outcomes, 'open': connections_to(emu.port),\n"
        "                      'peers': len({r.peer for r in emu.requests})}))\n"
    )
    assert out == {"outcomes": ["ok"] * 4, "open": 0, "peers": 1}


def test_a_loop_that_runs_on_after_shutdown_asyncgens_gets_a_new_session() -> None:
    out = run(
        """
        with Emulator() as emu:
            client = AsyncEmissaryClient(api_key=emu.api_key, server_url=emu.url)
            loop = asyncio.new_event_loop()
            outcomes = loop.run_until_complete(calls(client, 2, "before"))
            loop.run_until_complete(loop.shutdown_asyncgens())  # closes the session
            outcomes += loop.run_until_complete(calls(client, 2, "after"))
            loop.run_until_complete(client.close())
            loop.close()
            print(json.dumps({"outcomes": outcomes, "requests": len(emu.requests),
                              "open": connections_to(emu.port)}))
        """
    )
    assert out == {"outcomes": ["ok"] * 4, "requests": 4, "open": 0}
