from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from inferpool import Settings
from inferpool.parallel import InferencePool

# The front end unpickles exceptions and values that the fixture models send
# back, so their module must be importable here as it is in the workers.
_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from pool_helpers import model_settings, process_exists  # noqa: E402

PoolFactory = Callable[..., Any]


@pytest.fixture
async def make_pool() -> AsyncIterator[PoolFactory]:
    """Start pools with chosen settings; every pool is closed, and every
    worker process checked gone, when the test ends."""
    pools: list[InferencePool] = []
    pids: set[int] = set()

    async def factory(**settings: Any) -> InferencePool:
        settings.setdefault("parallel_workers", 2)
        pool = InferencePool(Settings(**settings))
        pools.append(pool)
        await pool.start()
        pids.update(w.pid for w in pool.workers)
        return pool

    yield factory

    for pool in pools:
        pids.update(w.pid for w in pool.workers)
        await pool.close(drain_timeout=5)
    for pid in pids:
        assert not process_exists(pid), f"worker {pid} outlived its pool"


@pytest.fixture
async def pool(make_pool: PoolFactory) -> InferencePool:
    pool: InferencePool = await make_pool()
    await pool.load_model(model_settings("echo", "EchoModel"))
    return pool
