"""The generated sync client: the async core on a private loop thread."""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import os
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from emissary import AsyncEmissaryClient, EmissaryClient, models
from emissary._loop import LoopThread, _Call, _Wakeup
from emissary.errors import APIErrorNotFound, ClientClosedError
from emissary.testing import Emulator

from .conftest import DEPLOYMENT, PROJECT
from .faults import connections_to, run_python, wait_until, without_slow_callbacks

ROOT = Path(__file__).resolve().parent.parent
IDS = {"project_id": PROJECT, "deployment_id": DEPLOYMENT}


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "emissary-loop"]


def test_sync_and_async_give_the_same_completion(
    thread_emulator: Emulator, sync_client: EmissaryClient
) -> None:
    body = {"prompt": "same", "max_new_tokens": 7}
    sync_result = sync_client.deployments.completions.create(
        project_id=PROJECT, deployment_id=DEPLOYMENT, request_body=body
    )

    async def via_async() -> models.Completion:
        async with AsyncEmissaryClient(
            api_key=thread_emulator.api_key, server_url=thread_emulator.url
        ) as client:
            return await client.deployments.completions.create(
                project_id=PROJECT, deployment_id=DEPLOYMENT, request_body=body
            )

    assert sync_result == asyncio.run(via_async())
    assert sync_result.response is not None and len(sync_result.response.split()) == 7


def test_sync_errors_are_the_same_typed_errors(sync_client: EmissaryClient) -> None:
    with pytest.raises(APIErrorNotFound) as caught:
        sync_client.deployments.completions.create(
            project_id="missing", deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
        )
    assert caught.value.data.code == "project_not_found"


def test_the_session_is_reused_across_calls(
    thread_emulator: Emulator, sync_client: EmissaryClient
) -> None:
    for _ in range(5):
        sync_client.deployments.completions.create(
            project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
        )
    assert len({r.peer for r in thread_emulator.requests}) == 1


def test_close_stops_the_loop_thread_and_later_calls_fail_clearly(
    thread_emulator: Emulator,
) -> None:
    before = len(loop_threads())
    client = EmissaryClient(api_key=thread_emulator.api_key, server_url=thread_emulator.url)
    assert len(loop_threads()) == before  # nothing starts until the first call
    client.deployments.completions.create(
        project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
    )
    assert len(loop_threads()) == before + 1
    port = thread_emulator.port
    assert connections_to(port) == 1
    client.close()
    client.close()
    assert client.closed
    assert connections_to(port) == 0
    assert len(loop_threads()) == before
    with pytest.raises(ClientClosedError, match="closed"):
        client.deployments.completions.create(
            project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
        )


@pytest.mark.parametrize("operation", ["create", "batch"])
def test_closing_the_client_under_other_threads_calls_gives_them_client_closed_error(
    operation: str,
) -> None:
    # Not asyncio.CancelledError (a BaseException a worker's `except Exception` misses,
    # and a traceback at exit from daemon threads): what the async client raises there.
    with Emulator() as emu:
        for trial in range(5):
            wait_until(lambda: emu.in_flight == 0, f"trial {trial}: the last one's requests let go")
            emu.faults.clear()
            emu.faults.hang(3)
            client = EmissaryClient(api_key=emu.api_key, server_url=emu.url)
            outcomes: list[BaseException | object] = []

            def call(client: EmissaryClient = client, outcomes: list[Any] = outcomes) -> None:
                completions = client.deployments.completions
                try:
                    if operation == "create":
                        completions.create(**IDS, request_body={"prompt": "held"})
                    else:
                        completions.batch(**IDS, requests=[{"prompt": "held"}])
                except BaseException as error:  # what the thread sees, whatever it is
                    outcomes.append(error)
                else:
                    outcomes.append("returned")

            threads = [threading.Thread(target=call, daemon=True) for _ in range(3)]
            for thread in threads:
                thread.start()
            wait_until(lambda: emu.in_flight == 3, f"trial {trial}: 3 calls in flight")
            client.close()
            for thread in threads:
                thread.join(10)
                assert not thread.is_alive()
            assert len(outcomes) == 3
            for outcome in outcomes:
                assert type(outcome) is ClientClosedError, f"trial {trial}: {outcome!r}"
                assert "closed while the call was in flight" in str(outcome)


def test_a_call_racing_the_close_of_its_client_never_hangs() -> None:
    # Calls made from other threads as the client closes: each returns, or raises
    # ClientClosedError, within its bound (none waits forever on a loop that stopped).
    with Emulator() as emu:
        for _ in range(20):
            client = EmissaryClient(api_key=emu.api_key, server_url=emu.url)
            client.deployments.completions.create(**IDS, request_body={"prompt": "warm"})
            outcomes: list[str] = []

            def call(client: EmissaryClient = client, outcomes: list[str] = outcomes) -> None:
                try:
                    client.deployments.completions.create(**IDS, request_body={"prompt": "x"})
                    outcomes.append("returned")
                except ClientClosedError:
                    outcomes.append("closed")

            threads = [threading.Thread(target=call, daemon=True) for _ in range(4)]
            for thread in threads:
                thread.start()
            client.close()
            for thread in threads:
                thread.join(10)
                assert not thread.is_alive()
            assert len(outcomes) == 4


def test_with_block_closes(thread_emulator: Emulator) -> None:
    with EmissaryClient(api_key=thread_emulator.api_key, server_url=thread_emulator.url) as c:
        c.deployments.completions.create(
            project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
        )
    assert c.closed


def test_a_client_dropped_without_close_is_cleaned_up(thread_emulator: Emulator) -> None:
    before = len(loop_threads())
    client = EmissaryClient(api_key=thread_emulator.api_key, server_url=thread_emulator.url)
    client.deployments.completions.create(
        project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
    )
    assert connections_to(thread_emulator.port) == 1
    del client
    gc.collect()
    assert connections_to(thread_emulator.port) == 0
    assert len(loop_threads()) == before


def test_chained_construction_works(thread_emulator: Emulator) -> None:
    result = EmissaryClient(
        api_key=thread_emulator.api_key, server_url=thread_emulator.url
    ).deployments.completions.create(
        project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
    )
    assert result.response
    gc.collect()


def test_many_threads_share_one_client(
    thread_emulator: Emulator, sync_client: EmissaryClient
) -> None:
    def work(i: int) -> str | None:
        return sync_client.deployments.completions.create(
            project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": f"t{i}"}
        ).response

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(work, range(200)))
    assert all(results)
    assert len(set(results)) == 200
    assert len(thread_emulator.requests) == 200
    assert len(loop_threads()) == 1


@pytest.mark.anyio
async def test_works_when_the_calling_thread_runs_an_event_loop(
    thread_emulator: Emulator, sync_client: EmissaryClient
) -> None:
    # As in a notebook cell or an async framework's handler: a loop is running right here.
    asyncio.get_running_loop()
    result = sync_client.deployments.completions.create(
        project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
    )
    assert result.response


def test_forked_child_makes_a_working_call() -> None:
    proc = run_python(
        """
        import json, os
        from emissary import EmissaryClient
        from emissary.testing import Emulator

        with Emulator() as emu:
            client = EmissaryClient(api_key=emu.api_key, server_url=emu.url)
            create = client.deployments.completions.create
            args = dict(project_id="demo-project", deployment_id="demo-deployment",
                        request_body={"prompt": "fork"})
            parent = create(**args).response
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:
                try:
                    text = create(**args).response
                    client.close()
                    os.write(write, json.dumps({"child": text}).encode())
                finally:
                    os._exit(0)
            os.close(write)
            child = json.loads(os.read(read, 65536))["child"]
            os.waitpid(pid, 0)
            again = create(**args).response  # the parent's client still works
            client.close()
            keys = [r.headers["Idempotency-Key"] for r in emu.requests]
            print(json.dumps({"parent": parent, "child": child, "again": again, "keys": keys}))
        """
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["parent"] == out["child"] == out["again"]
    assert out["parent"]
    # Keys are drawn in batches: the child must not reuse the parent's batch.
    assert len(out["keys"]) == 3
    assert len(set(out["keys"])) == 3, out["keys"]


def test_ctrl_c_interrupts_a_call_and_cancels_the_request() -> None:
    proc = run_python(
        """
        import json, signal, threading, time
        from emissary import EmissaryClient
        from tests.faults import RawServer

        server = RawServer(lambda conn: server.wait_for_peer_close(conn))
        with server:
            client = EmissaryClient(api_key="k", server_url=server.url, timeout_ms=60_000)
            main = threading.main_thread().ident

            def interrupt():
                server.accepted.wait(10)
                signal.pthread_kill(main, signal.SIGINT)

            threading.Thread(target=interrupt, daemon=True).start()
            start = time.monotonic()
            outcome = "returned"
            try:
                client.deployments.completions.create(
                    project_id="p", deployment_id="d", request_body={"prompt": "p"})
            except KeyboardInterrupt:
                outcome = "KeyboardInterrupt"
            elapsed = time.monotonic() - start
            closed = server.closed_by_peer.wait(5)
            client.close()
            print(json.dumps({"outcome": outcome, "elapsed": elapsed, "closed": closed,
                              "connections": server.connections}))
        """
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["outcome"] == "KeyboardInterrupt"
    assert out["elapsed"] < 10
    assert out["closed"] is True  # the request's connection was closed, not left hanging
    assert out["connections"] == 1  # and no further attempt was started
    assert "Unclosed" not in proc.stderr


def test_a_client_never_closed_is_quiet_at_exit() -> None:
    proc = run_python(
        """
        from emissary import EmissaryClient
        from emissary.testing import Emulator

        emu = Emulator().__enter__()
        client = EmissaryClient(api_key=emu.api_key, server_url=emu.url)
        print(client.deployments.completions.create(
            project_id="demo-project", deployment_id="demo-deployment",
            request_body={"prompt": "bye"}).response)
        emu.__exit__(None, None, None)
        # no client.close(): interpreter exit must be quiet and prompt
        """,
        timeout=20,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    assert proc.stderr == ""


def test_calling_from_the_clients_own_loop_thread_is_refused(sync_client: EmissaryClient) -> None:
    # A batch's progress callback runs on the client's loop thread: a call of the sync
    # client from there would wait on its own thread forever, so it is refused.
    refused: list[BaseException] = []

    def progress(done: int, failed: int, total: int | None) -> None:
        try:
            sync_client.deployments.completions.create(
                project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
            )
        except BaseException as error:
            refused.append(error)

    results = sync_client.deployments.completions.batch(
        project_id=PROJECT, deployment_id=DEPLOYMENT, requests=[{"prompt": "p"}],
        concurrency=1, progress=progress,
    )  # fmt: skip
    assert [r.ok for r in results] == [True]
    (error,) = refused
    assert isinstance(error, RuntimeError) and "AsyncEmissaryClient" in str(error), error


def test_a_call_waits_for_its_own_end_whatever_bytes_its_wakeup_holds() -> None:
    # An interrupted call's late wake-up byte may still sit in the thread's pipe: the next
    # call must wait for its own task all the same, and get its own result.
    runner = LoopThread()
    started = threading.Event()
    results: list[int] = []
    outcome: asyncio.Future[int] | None = None
    loop: asyncio.AbstractEventLoop | None = None

    async def slow() -> int:
        nonlocal outcome, loop
        loop = asyncio.get_running_loop()
        outcome = loop.create_future()
        started.set()
        return await outcome

    def caller() -> None:
        wakeup = _Wakeup.of_this_thread()
        assert wakeup is not None
        for _ in range(3):
            wakeup.ring()  # leftovers
        results.append(runner.run(slow))

    thread = threading.Thread(target=caller)
    thread.start()
    assert started.wait(10)
    thread.join(0.1)
    assert thread.is_alive()  # still waiting: the leftover bytes did not end the call
    future = outcome
    assert loop is not None and future is not None
    loop.call_soon_threadsafe(future.set_result, 42)
    thread.join(10)
    assert results == [42]
    runner.stop()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd")
def test_threads_that_call_and_end_leave_no_descriptor_open(sync_client: EmissaryClient) -> None:
    def call() -> None:
        sync_client.deployments.completions.create(
            project_id=PROJECT, deployment_id=DEPLOYMENT, request_body={"prompt": "p"}
        )

    call()  # the pooled connection is open from here on
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(10):
        thread = threading.Thread(target=call)
        thread.start()
        thread.join()
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == before  # each thread's wake-up pipe is closed


def test_a_forked_child_does_not_share_its_parents_wakeup_pipe() -> None:
    proc = run_python(
        """
        import json, os
        from emissary._loop import _Wakeup

        parent = _Wakeup.of_this_thread()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            child = _Wakeup.of_this_thread()
            os.write(write, json.dumps(child is not parent).encode())
            os._exit(0)
        os.waitpid(pid, 0)
        print(os.read(read, 100).decode())
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "true"


def test_a_call_cancelled_as_it_starts_ends_cancelled_and_closes_its_coroutine() -> None:
    # Ctrl-C can land between the hand-off and the task's first step. From Python 3.12 the
    # task starts at once and is cancelled inside the work; before 3.12 it is cancelled
    # before it began, and the work's coroutine must still be closed, never left pending.
    async def work() -> int:
        await asyncio.sleep(3600)
        return 1

    made: list[Coroutine[Any, Any, int]] = []

    def make() -> Coroutine[Any, Any, int]:
        made.append(work())
        return made[-1]

    call: _Call[int] = _Call(make, (), {})
    loop = asyncio.new_event_loop()
    try:
        loop.call_soon(call.start, loop)
        loop.call_soon(call.cancel)
        for _ in range(100):
            if not call.done.locked():
                break
            loop.run_until_complete(asyncio.sleep(0))
    finally:
        loop.close()
    assert not call.done.locked()
    with pytest.raises(asyncio.CancelledError):
        call.outcome()
    assert all(inspect.getcoroutinestate(coro) == "CORO_CLOSED" for coro in made)  # or none


def test_the_coroutine_of_a_call_is_made_on_the_loop_thread() -> None:
    # Ctrl-C lands only on the main thread: a coroutine made there could be orphaned by an
    # interrupt between its making and the hand-off ("never awaited"); made on the loop
    # thread, an interrupted caller leaves none behind.
    made_on: list[threading.Thread] = []

    async def work(value: int, *, plus: int) -> int:
        return value + plus

    def make(value: int, *, plus: int) -> Coroutine[Any, Any, int]:
        made_on.append(threading.current_thread())
        return work(value, plus=plus)

    loop = LoopThread()
    try:
        assert loop.run(make, 40, plus=2) == 42
        assert made_on and made_on[0] is not threading.current_thread()
        assert made_on[0].name == "emissary-loop"
    finally:
        loop.stop()


def test_a_call_that_fails_at_once_reports_its_own_error() -> None:
    # A coroutine that raises before its first suspension (bad input, say) ends inside
    # the task's first step, which from Python 3.12 runs within the hand-off itself.
    async def fail() -> int:
        raise ValueError("request_body.prompt is required")

    loop = LoopThread()
    try:
        with pytest.raises(ValueError, match="prompt is required"):
            loop.run(fail)
        assert loop.run(asyncio.sleep, 0, result=7) == 7
    finally:
        loop.stop()


STORM = """
import json, os, random, signal, sys, threading, time
from emissary import EmissaryClient
from emissary.testing import Emulator

PACKAGE = os.path.dirname(__import__("emissary").__file__) + os.sep

def inside_the_sdk(frame):
    while frame is not None:
        if frame.f_code.co_filename.startswith(PACKAGE):
            return True
        frame = frame.f_back
    return False

def ctrl_c(signum, frame):
    # Ctrl-C as Python's own handler raises it, but only while the SDK is on the stack:
    # every bytecode of the hand-off is a candidate, the test's own loop is never hit.
    if inside_the_sdk(frame):
        raise KeyboardInterrupt

def descriptors(kind):
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(kind)
        except OSError:
            pass
    return count

from tests.faults import connections_to

with Emulator() as emu:
    client = EmissaryClient(api_key=emu.api_key, server_url=emu.url)
    def create():
        return client.deployments.completions.create(
            project_id="demo-project", deployment_id="demo-deployment",
            request_body={"prompt": "storm", "max_new_tokens": 2})
    create()
    pipes, threads = descriptors("pipe:"), threading.active_count()
    signal.signal(signal.SIGINT, ctrl_c)
    stop = threading.Event()
    main = threading.main_thread().ident
    rng = random.Random(int(sys.argv[1]))

    def storm():
        while not stop.is_set():
            signal.pthread_kill(main, signal.SIGINT)
            time.sleep(rng.uniform(0, 0.003))

    storm_thread = threading.Thread(target=storm, daemon=True)
    storm_thread.start()
    done = interrupted = 0
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        try:
            create()
            done += 1
        except KeyboardInterrupt:
            interrupted += 1
    stop.set()
    storm_thread.join()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    after = [create().response for _ in range(20)]  # the client still works
    settled = time.monotonic() + 10  # calls cancelled by the storm finish unwinding on the loop
    while connections_to(emu.port) > 2 and time.monotonic() < settled:
        time.sleep(0.01)
    import gc; gc.collect()
    print(json.dumps({
        "done": done, "interrupted": interrupted, "after": len([a for a in after if a]),
        "pipes": [pipes, descriptors("pipe:")], "threads": [threads, threading.active_count()],
        "sockets": descriptors("socket:"), "connections": connections_to(emu.port),
    }))
    client.close()
"""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd")
@pytest.mark.parametrize("seed", [1, 2])
def test_a_storm_of_ctrl_c_leaks_no_pipe_thread_or_socket(seed: int) -> None:
    proc = run_python(STORM, str(seed), "2.5")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["interrupted"] > 100, out  # a real storm
    assert out["after"] == 20
    assert out["pipes"][1] == out["pipes"][0], out  # the thread's one wake-up pipe, no more
    assert out["threads"][1] == out["threads"][0], out  # no second loop thread
    assert out["connections"] <= 2, out  # interrupted calls closed their connections
    assert out["sockets"] < 20, out
    # Dev mode shows every warning: no "never awaited", "Unclosed" or destroyed task.
    for word in ("Warning", "never awaited", "Unclosed", "destroyed", "leaked"):
        assert word not in proc.stderr, proc.stderr
    assert not foreign_lines(proc.stderr), proc.stderr


def foreign_lines(stderr: str) -> list[str]:
    """The lines of `stderr` that are not a report of the storm's own KeyboardInterrupt.

    An interrupt that lands in a weak-reference callback, run by a garbage collection the
    main thread happened to trigger, is reported by Python as "Exception ignored in: ...";
    a second one may land in `sys.unraisablehook` while it prints the first ("Exception
    ignored in sys.unraisablehook", on the same line), or cut the report short, its last
    line then ending the line of carets under the code ("    ^^KeyboardInterrupt: ") or
    the code itself ("    self = selfref()KeyboardInterrupt: "). Any
    Python program can see those. Anything else (another exception, a warning) is the SDK's
    and fails the test.
    """
    own = ("Exception ignored", "Traceback (most recent call last):", "  ", "KeyboardInterrupt")
    foreign = [line for line in stderr.splitlines() if line and not line.startswith(own)]
    tracebacks = stderr.count("Traceback (most recent call last):")
    interrupts = sum(  # the report's last line, or the end of the line it cut short
        line.lstrip(" ^~").startswith("KeyboardInterrupt") or line.endswith("KeyboardInterrupt: ")
        for line in stderr.splitlines()
    )
    if tracebacks != interrupts:  # every traceback ends in the storm's interrupt
        foreign.append(f"{tracebacks} tracebacks, {interrupts} KeyboardInterrupts")
    return foreign


def test_only_the_storms_own_interrupts_pass_the_storm_check() -> None:
    own = (
        "Exception ignored in: <function WeakValueDictionary.__init__.<locals>.remove at 0x1>"
        "Exception ignored in sys.unraisablehook: <built-in function unraisablehook>\n"
        'Traceback (most recent call last):\n  File "<string>", line 19, in ctrl_c\n'
        "KeyboardInterrupt: \n"
    )
    assert foreign_lines(own) == []
    assert foreign_lines("") == []
    cut_short = (  # the interrupt landed while Python printed the carets under the code
        "Exception ignored in: <function WeakValueDictionary.__init__.<locals>.remove at 0x1>\n"
        'Traceback (most recent call last):\n  File "weakref.py", line 106, in remove\n'
        "    self = selfref()\n           ^^KeyboardInterrupt: \n"
    )
    assert foreign_lines(cut_short) == []
    cut_shorter = cut_short.replace("\n           ^^", "")  # landed before the carets
    assert "selfref()KeyboardInterrupt: " in cut_shorter
    assert foreign_lines(cut_shorter) == []
    assert foreign_lines(cut_shorter.replace("KeyboardInterrupt: ", "RuntimeError: x")) == [
        "1 tracebacks, 0 KeyboardInterrupts"
    ]
    assert foreign_lines(cut_short.replace("KeyboardInterrupt: ", "RuntimeError: x")) == [
        "1 tracebacks, 0 KeyboardInterrupts"
    ]
    other = own.replace("KeyboardInterrupt: ", "RuntimeError: Event loop is closed")
    assert foreign_lines(other) == [
        "RuntimeError: Event loop is closed",
        "1 tracebacks, 0 KeyboardInterrupts",
    ]
    assert foreign_lines("Exception ignored in: <coroutine object create>\nRuntimeError: x\n")


def test_a_dev_mode_child_keeps_every_line_of_stderr_but_asyncios_slow_callback_reports() -> None:
    """The storm loads both cores, so a callback may hold a loop past asyncio's 0.1 s:
    that report says how busy the machine was, and `run_python` leaves it out, only it."""
    proc = run_python(
        """
        import asyncio, logging, sys, time, warnings
        for stream in (sys.stdout, sys.stderr):  # asyncio's report, on both streams
            logging.getLogger("asyncio").addHandler(logging.StreamHandler(stream))
        async def main():
            asyncio.get_running_loop().call_soon(time.sleep, 0.3)  # a callback past 0.1 s
            await asyncio.sleep(0.4)
        asyncio.run(main())
        warnings.warn("kept")
        print("Executing <not asyncio's> took long", file=sys.stderr)
        """,
        dev=True,
    )
    assert proc.returncode == 0, proc.stderr
    (report,) = proc.stdout.splitlines()
    assert report.startswith("Executing <Handle sleep(0.3)") and report.endswith(" seconds")
    lines = proc.stderr.splitlines()  # 3.13 adds the warning's source line; 3.10-3.12 do not
    assert lines[0] == "<string>:9: UserWarning: kept"
    assert lines[-1] == "Executing <not asyncio's> took long"
    assert "Executing <Handle" not in proc.stderr
    assert without_slow_callbacks(report + "\n" + proc.stderr) == proc.stderr
