"""The pool under failure: dying workers, failing loads, bad results."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from pool_helpers import FIXTURES_DIR, model_settings, process_exists, wait_until

from inferpool import (
    ModelError,
    ModelLoadError,
    ModelNotFound,
    RequestTimeout,
    ServerOverloaded,
    Settings,
)
from inferpool.parallel import InferencePool, LocalPool, WorkerStop


async def test_sigkill_fails_only_in_flight_requests(make_pool) -> None:
    pool = await make_pool()
    await pool.load_model(model_settings("sleep", "SleepModel"))
    requests = [
        asyncio.ensure_future(pool.call("sleep", None, "sleep", 0.05))
        for _ in range(64)
    ]
    await wait_until(lambda: pool.dispatcher.statistics().outstanding == 16)
    victim = pool.workers[0]
    in_flight_on_victim = pool.dispatcher.statistics().in_flight[victim.pid]

    os.kill(victim.pid, signal.SIGKILL)
    results = await asyncio.wait_for(
        asyncio.gather(*requests, return_exceptions=True), 30
    )

    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == in_flight_on_victim
    for failure in failures:
        assert isinstance(failure, WorkerStop)
        assert (
            str(failure)
            == f"Worker with PID {victim.pid} stopped unexpectedly with exit code -9"
        )
    successes = [r for r in results if not isinstance(r, BaseException)]
    assert len(successes) == 64 - in_flight_on_victim
    await wait_until(lambda: pool.statistics().restarts == 1)
    pids = await asyncio.gather(
        *(pool.call("sleep", None, "sleep", 0) for _ in range(20))
    )
    assert victim.pid not in pids
    assert len(set(pids)) == 2


async def test_exit_code_zero_counts_as_death(make_pool) -> None:
    pool = await make_pool(parallel_workers=1)
    await pool.load_model(model_settings("bad", "MisbehavingModel"))
    pid = pool.workers[0].pid

    with pytest.raises(
        WorkerStop,
        match=rf"^Worker with PID {pid} stopped unexpectedly with exit code 0$",
    ):
        await pool.call("bad", None, "exit_worker", 0)

    await wait_until(lambda: pool.statistics().restarts == 1)
    assert await pool.call("bad", None, "ok") == "ok"


async def test_two_workers_dying_together(make_pool) -> None:
    pool = await make_pool()
    await pool.load_model(model_settings("echo", "EchoModel"))
    victims = pool.workers

    for worker in victims:
        os.kill(worker.pid, signal.SIGKILL)

    await wait_until(
        lambda: pool.statistics().restarts == 2 and pool.statistics().ready_workers == 2
    )
    assert await pool.call("echo", None, "echo", 5) == 5


async def test_load_failing_on_one_worker_loads_nowhere(
    make_pool, tmp_path: Path
) -> None:
    pool = await make_pool()
    marker = tmp_path / "failed-once"
    settings = model_settings(
        "flaky", "FailOnceLoadModel", parameters={"extra": {"marker": str(marker)}}
    )

    with pytest.raises(ModelLoadError) as raised:
        await pool.load_model(settings)

    message = str(raised.value)
    assert message.startswith("Model 'flaky' failed to load on worker ")
    failed_pid = int(message.split("on worker ")[1].split(":")[0])
    assert failed_pid in {w.pid for w in pool.workers}
    assert f"RuntimeError: disk on fire in worker {failed_pid}" in message
    for _ in range(4):
        with pytest.raises(ModelNotFound, match=r"^Model 'flaky' not found$"):
            await pool.call("flaky", None, "pid")


async def test_custom_exception_reaches_caller(make_pool) -> None:
    pool = await make_pool(parallel_workers=1)
    await pool.load_model(model_settings("bad", "MisbehavingModel"))

    with pytest.raises(Exception, match=r"^I am a teapot$") as raised:
        await pool.call("bad", None, "custom_error")

    assert type(raised.value).__name__ == "TeapotError"
    assert await pool.call("bad", None, "ok") == "ok"


async def test_unpicklable_exception_reaches_caller(make_pool) -> None:
    pool = await make_pool(parallel_workers=1)
    await pool.load_model(model_settings("bad", "MisbehavingModel"))

    with pytest.raises(
        ModelError,
        match=r"^ValueError: \('holds a lock', <unlocked _thread\.lock object at 0x[0-9a-f]+>\)$",
    ):
        await pool.call("bad", None, "unpicklable_error")

    assert await pool.call("bad", None, "ok") == "ok"


async def test_unrebuildable_exception_reaches_caller(make_pool) -> None:
    pool = await make_pool(parallel_workers=1)
    await pool.load_model(model_settings("bad", "MisbehavingModel"))

    with pytest.raises(
        ModelError,
        match=r"^fixture_models\.NeedsTwoArgumentsError: code 418: short and stout$",
    ):
        await pool.call("bad", None, "unrebuildable_error")

    assert await pool.call("bad", None, "ok") == "ok"


async def test_unpicklable_result_reaches_caller(make_pool) -> None:
    pool = await make_pool(parallel_workers=1)
    await pool.load_model(model_settings("bad", "MisbehavingModel"))

    with pytest.raises(
        TypeError,
        match=r"^The return value of unpicklable_result\(\) of model 'bad' cannot be sent to the front end: TypeError: cannot pickle '_thread\.lock' object$",
    ):
        await pool.call("bad", None, "unpicklable_result")

    assert await pool.call("bad", None, "ok") == "ok"


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("SystemExit", "SystemExit: 3"),
        ("KeyboardInterrupt", "KeyboardInterrupt"),
        ("CancelledError", "asyncio.exceptions.CancelledError: from the model"),
        ("GeneratorExit", "GeneratorExit"),
    ],
)
async def test_base_exception_fails_only_request(
    make_pool, kind: str, message: str
) -> None:
    pool = await make_pool(parallel_workers=1)
    await pool.load_model(model_settings("bad", "MisbehavingModel"))

    with pytest.raises(ModelError) as raised:
        await asyncio.wait_for(pool.call("bad", None, "raise_base_exception", kind), 10)

    assert str(raised.value) == message
    assert await pool.call("bad", None, "ok") == "ok"
    assert pool.statistics().restarts == 0


async def test_unknown_method_is_rejected(pool: InferencePool) -> None:
    with pytest.raises(Exception, match=r"^Model 'echo' has no method 'nope'$"):
        await pool.call("echo", None, "nope")
    with pytest.raises(
        Exception, match=r"^Method '_settings' of model 'echo' is private$"
    ):
        await pool.call("echo", None, "_settings")


async def test_late_response_is_logged_and_dropped(
    make_pool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="inferpool.parallel.dispatcher")
    pool = await make_pool(parallel_workers=1)
    await pool.load_model(model_settings("sleep", "SleepModel"))

    with pytest.raises(
        RequestTimeout, match=r"^Request to model 'sleep' timed out after 0\.05s$"
    ):
        await pool.call("sleep", None, "block", 0.3, timeout=0.05)

    await wait_until(lambda: "Dropping response" in caplog.text)
    stats = pool.dispatcher.statistics()
    assert stats.outstanding == 0
    assert stats.queued == {}
    assert sum(stats.in_flight.values()) == 0


async def test_cancelled_requests_leave_no_entries(make_pool) -> None:
    pool = await make_pool()
    await pool.load_model(model_settings("sleep", "SleepModel"))

    requests = [
        asyncio.ensure_future(pool.call("sleep", None, "sleep", 0.01))
        for _ in range(10_000)
    ]
    await wait_until(lambda: pool.dispatcher.statistics().outstanding > 0)
    for request in requests:
        request.cancel()
    await asyncio.gather(*requests, return_exceptions=True)
    # Workers acknowledge each cancellation; the slots are free after that.
    await wait_until(lambda: pool.dispatcher.statistics().overdue == 0)

    stats = pool.dispatcher.statistics()
    assert stats.outstanding == 0
    assert stats.queued == {}
    assert sum(stats.in_flight.values()) == 0
    assert pool.dispatcher._model_in_flight == {}
    assert await pool.call("sleep", None, "sleep", 0) in {w.pid for w in pool.workers}


async def test_close_finishes_in_flight_requests(make_pool) -> None:
    pool = await make_pool()
    await pool.load_model(model_settings("sleep", "SleepModel"))
    processes = [w.process for w in pool.workers]
    requests = [
        asyncio.ensure_future(pool.call("sleep", None, "sleep", 0.2)) for _ in range(8)
    ]
    await wait_until(lambda: pool.dispatcher.statistics().outstanding == 8)

    await pool.close()

    assert all(isinstance(pid, int) for pid in await asyncio.gather(*requests))
    assert all(p.poll() is not None for p in processes)


_FRONT_END_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    sys.path.insert(0, {fixtures!r})
    from inferpool import Settings
    from inferpool.parallel import InferencePool
    from pool_helpers import model_settings

    async def main():
        pool = InferencePool(Settings(parallel_workers=2))
        await pool.start()
        await pool.load_model(model_settings("sleep", "SleepModel"))
        # Keep one worker stuck in blocking code, so only the kernel can stop it.
        asyncio.ensure_future(pool.call("sleep", None, "block", 60))
        await asyncio.sleep(0.2)
        print(json.dumps([w.pid for w in pool.workers]), flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
    """
)


def test_workers_exit_when_front_end_is_killed() -> None:
    script = _FRONT_END_SCRIPT.format(fixtures=FIXTURES_DIR)
    front_end = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    )
    try:
        assert front_end.stdout is not None
        pids = json.loads(front_end.stdout.readline())
        assert len(pids) == 2
        assert all(process_exists(pid) for pid in pids)

        front_end.kill()
        front_end.wait()
        deadline = time.monotonic() + 5
        while any(process_exists(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)

        assert not [pid for pid in pids if process_exists(pid)]
    finally:
        if front_end.poll() is None:
            front_end.kill()
            front_end.wait()
        if front_end.stdout is not None:
            front_end.stdout.close()


async def test_large_array_travels_out_of_band(make_pool) -> None:
    pool = await make_pool(parallel_workers=1)
    await pool.load_model(model_settings("arrays", "ArrayModel"))
    array = np.random.default_rng(0).random(10 * 1024 * 1024 // 8)
    assert array.nbytes == 10 * 1024 * 1024
    connection = pool.workers[0].connection
    before = connection.statistics()

    doubled = await pool.call("arrays", None, "double", array)

    after = connection.statistics()
    np.testing.assert_array_equal(doubled, array * 2)
    assert after.bytes_sent_out_of_band - before.bytes_sent_out_of_band == array.nbytes
    assert after.bytes_sent_in_band - before.bytes_sent_in_band < 4096
    assert doubled.base is not None  # a view of the received frame, not a copy


async def test_local_pool_behaves_like_workers(tmp_path: Path) -> None:
    pool = LocalPool(Settings(parallel_workers=0))
    await pool.start()
    await pool.load_model(model_settings("echo", "EchoModel"))
    await pool.load_model(model_settings("bad", "MisbehavingModel"))

    assert await pool.call("echo", None, "echo", [1, 2]) == [1, 2]
    assert await pool.call("echo", None, "pid") == os.getpid()
    with pytest.raises(Exception, match=r"^I am a teapot$"):
        await pool.call("bad", None, "custom_error")
    with pytest.raises(ModelNotFound, match=r"^Model 'missing' not found$"):
        await pool.call("missing", None, "echo", 1)

    await pool.close()


async def test_thousand_timeouts_leave_no_entries(make_pool) -> None:
    pool = await make_pool()
    await pool.load_model(
        model_settings("sleep", "SleepModel", max_concurrency=64, max_queue_size=2000)
    )
    loop = asyncio.get_running_loop()
    started = loop.time()

    results = await asyncio.gather(
        *(pool.call("sleep", None, "sleep", 0.5, timeout=0.1) for _ in range(1000)),
        return_exceptions=True,
    )

    elapsed = loop.time() - started
    assert all(isinstance(r, RequestTimeout) for r in results)
    assert elapsed < 2.0, f"1,000 timeouts of 0.1 s took {elapsed:.2f}s"
    await wait_until(lambda: pool.dispatcher.statistics().overdue == 0)
    stats = pool.dispatcher.statistics()
    assert stats.outstanding == 0
    assert stats.queued == {}
    assert sum(stats.in_flight.values()) == 0
    assert pool.dispatcher._model_in_flight == {}
    assert await pool.call("sleep", None, "sleep", 0) in {w.pid for w in pool.workers}


async def test_no_worker_requests_fail_in_bounded_time(
    make_pool, tmp_path: Path
) -> None:
    pool = await make_pool(
        parallel_workers=1, no_worker_timeout=0.5, restart_backoff_max=0.2
    )
    marker = tmp_path / "loaded-once"
    await pool.load_model(
        model_settings(
            "fragile",
            "CrashOnReloadModel",
            parameters={"extra": {"marker": str(marker)}},
        )
    )
    os.kill(pool.workers[0].pid, signal.SIGKILL)
    await wait_until(lambda: pool.last_restart_error is not None)

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(
        ServerOverloaded,
        match=r"^No worker is ready to serve model 'fragile' after 0\.5s; retry later$",
    ):
        await pool.call("fragile", None, "pid")

    assert loop.time() - started < 2.0
    assert pool.statistics().ready_workers == 0
    assert pool.dispatcher.statistics().queued == {}
    assert "WorkerStop" in pool.last_restart_error
    assert "exit code 3" in pool.last_restart_error


async def test_stuck_worker_is_killed_and_replaced(make_pool) -> None:
    pool = await make_pool(stuck_worker_timeout=0.5)
    await pool.load_model(model_settings("sleep", "SleepModel"))
    first_pid = await pool.call("sleep", None, "sleep", 0)

    with pytest.raises(RequestTimeout):
        await pool.call("sleep", None, "block", 30, timeout=0.2)

    # The blocked worker still counts as loaded, so the next requests go to
    # the other one while it is stuck.
    stuck = next(pid for pid, count in pool.dispatcher._overdue_count.items() if count)
    others = await asyncio.gather(
        *(pool.call("sleep", None, "sleep", 0) for _ in range(4))
    )
    assert stuck not in others
    await wait_until(lambda: pool.statistics().restarts == 1, timeout=10)
    assert stuck not in {w.pid for w in pool.workers}
    assert pool.dispatcher.statistics().overdue == 0
    assert first_pid in {w.pid for w in pool.workers} | {stuck}
