"""The dispatcher's contract, on real worker processes."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from pathlib import Path

import pytest
from pool_helpers import model_settings, wait_until

from inferpool import ServerOverloaded
from inferpool.parallel import (
    AsyncResponses,
    InferencePool,
    ModelRequestMessage,
    ModelResponseMessage,
    WorkerStop,
)


async def test_requests_spread_over_workers(pool: InferencePool) -> None:
    pids = await asyncio.gather(*(pool.call("echo", None, "pid") for _ in range(40)))

    assert set(pids) == {w.pid for w in pool.workers}


async def test_round_robin_alternates_workers(make_pool) -> None:
    pool = await make_pool(dispatch_policy="round_robin")
    await pool.load_model(model_settings("echo", "EchoModel"))

    pids = [await pool.call("echo", None, "pid") for _ in range(6)]

    assert pids[0] != pids[1]
    assert pids[::2] == [pids[0]] * 3
    assert pids[1::2] == [pids[1]] * 3


async def test_least_loaded_avoids_busy_worker(make_pool) -> None:
    pool = await make_pool()
    await pool.load_model(model_settings("sleep", "SleepModel"))
    slow = asyncio.ensure_future(pool.call("sleep", None, "sleep", 1.0))
    await wait_until(lambda: pool.dispatcher.statistics().outstanding == 1)
    busy_pid = next(
        pid for pid, n in pool.dispatcher.statistics().in_flight.items() if n
    )

    quick = [await pool.call("sleep", None, "sleep", 0) for _ in range(5)]

    assert busy_pid not in quick
    assert await slow == busy_pid


async def test_resolve_returns_result_to_waiter(pool: InferencePool) -> None:
    responses = AsyncResponses()
    worker = pool.workers[0]
    message = ModelRequestMessage("echo", None, "echo", (1,))
    waiting = asyncio.ensure_future(responses.schedule_and_wait(message, worker))
    await asyncio.sleep(0)
    assert responses.in_flight(worker.pid) == 1

    responses.resolve(ModelResponseMessage(message.id, return_value=7))

    assert (await waiting).return_value == 7
    assert len(responses) == 0
    assert responses.in_flight(worker.pid) == 0


async def test_resolve_raises_exception_in_waiter(pool: InferencePool) -> None:
    responses = AsyncResponses()
    message = ModelRequestMessage("echo", None, "echo", (1,))
    waiting = asyncio.ensure_future(
        responses.schedule_and_wait(message, pool.workers[0])
    )
    await asyncio.sleep(0)

    responses.resolve(ModelResponseMessage(message.id, exception=KeyError("gone")))

    with pytest.raises(KeyError, match="gone"):
        await waiting


async def test_resolve_drops_unknown_response(caplog: pytest.LogCaptureFixture) -> None:
    responses = AsyncResponses()
    caplog.set_level(logging.DEBUG, logger="inferpool.parallel.dispatcher")

    responses.resolve(ModelResponseMessage("nobody-waits", return_value=1))

    assert "Dropping response 'nobody-waits'" in caplog.text
    assert len(responses) == 0


async def test_cancel_fails_in_flight_with_exit_code(pool: InferencePool) -> None:
    responses = AsyncResponses()
    worker, other = pool.workers
    on_worker = [ModelRequestMessage("echo", None, "echo", (i,)) for i in range(3)]
    on_other = ModelRequestMessage("echo", None, "echo", (9,))
    waiting = [
        asyncio.ensure_future(responses.schedule_and_wait(m, worker)) for m in on_worker
    ]
    spared = asyncio.ensure_future(responses.schedule_and_wait(on_other, other))
    await asyncio.sleep(0)

    responses.cancel(worker, -9)

    for future in waiting:
        with pytest.raises(
            WorkerStop,
            match=rf"^Worker with PID {worker.pid} stopped unexpectedly with exit code -9$",
        ):
            await future
    assert not spared.done()
    responses.resolve(ModelResponseMessage(on_other.id, return_value=9))
    assert (await spared).return_value == 9


async def test_load_reaches_every_worker(make_pool, tmp_path: Path) -> None:
    log = tmp_path / "loads.log"
    pool = await make_pool(parallel_workers=3)

    await pool.load_model(
        model_settings(
            "counter", "LoadCounterModel", parameters={"extra": {"log": str(log)}}
        )
    )

    loads = Counter(line.split()[1] for line in log.read_text().splitlines())
    assert sorted(int(pid) for pid in loads) == sorted(w.pid for w in pool.workers)
    assert set(loads.values()) == {1}


async def test_unload_reaches_every_worker(make_pool, tmp_path: Path) -> None:
    log = tmp_path / "loads.log"
    pool = await make_pool()
    settings = model_settings(
        "counter", "LoadCounterModel", parameters={"extra": {"log": str(log)}}
    )
    await pool.load_model(settings)

    await pool.unload_model(settings)

    unloads = [
        line.split()[1]
        for line in log.read_text().splitlines()
        if line.startswith("unload")
    ]
    assert sorted(int(pid) for pid in unloads) == sorted(w.pid for w in pool.workers)


async def test_restarted_worker_loads_models_before_traffic(
    make_pool, tmp_path: Path
) -> None:
    log = tmp_path / "loads.log"
    pool = await make_pool()
    await pool.load_model(
        model_settings(
            "counter", "LoadCounterModel", parameters={"extra": {"log": str(log)}}
        )
    )
    await pool.load_model(model_settings("echo", "EchoModel"))
    victim, survivor = pool.workers

    victim.process.kill()
    await wait_until(lambda: pool.statistics().restarts == 1)

    ready_pids = {w.pid for w in pool.dispatcher.ready_workers}
    assert victim.pid not in ready_pids
    assert survivor.pid in ready_pids
    (replacement_pid,) = ready_pids - {survivor.pid}
    loaded = [int(line.split()[1]) for line in log.read_text().splitlines()]
    assert loaded.count(replacement_pid) == 1
    pids = await asyncio.gather(*(pool.call("counter", None, "pid") for _ in range(20)))
    assert set(pids) == ready_pids


async def test_queue_full_raises_overloaded(make_pool) -> None:
    pool = await make_pool(max_concurrency=1, max_queue_size=2)
    await pool.load_model(model_settings("sleep", "SleepModel"))
    running = [
        asyncio.ensure_future(pool.call("sleep", None, "sleep", 0.5)) for _ in range(4)
    ]
    await wait_until(lambda: pool.dispatcher.statistics().queued.get("sleep") == 2)

    with pytest.raises(
        ServerOverloaded,
        match=r"^Model 'sleep' is overloaded: 2 requests are queued, the limit is 2; retry later$",
    ):
        await pool.call("sleep", None, "sleep", 0)

    assert len(set(await asyncio.gather(*running))) == 2


async def test_model_setting_overrides_concurrency(make_pool) -> None:
    pool = await make_pool(parallel_workers=1, max_concurrency=8)
    await pool.load_model(model_settings("sleep", "SleepModel", max_concurrency=2))
    running = [
        asyncio.ensure_future(pool.call("sleep", None, "sleep", 0.3)) for _ in range(5)
    ]

    await wait_until(lambda: pool.dispatcher.statistics().queued.get("sleep") == 3)

    assert pool.dispatcher.statistics().outstanding == 2
    await asyncio.gather(*running)


async def test_queued_requests_survive_worker_death(make_pool) -> None:
    pool = await make_pool(max_concurrency=1)
    await pool.load_model(model_settings("sleep", "SleepModel"))
    requests = [
        asyncio.ensure_future(pool.call("sleep", None, "sleep", 0.3)) for _ in range(6)
    ]
    await wait_until(lambda: pool.dispatcher.statistics().queued.get("sleep") == 4)
    victim = pool.workers[0]

    victim.process.kill()
    results = await asyncio.gather(*requests, return_exceptions=True)

    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1
    assert isinstance(failures[0], WorkerStop)
    assert all(isinstance(r, int) for r in results if not isinstance(r, BaseException))
