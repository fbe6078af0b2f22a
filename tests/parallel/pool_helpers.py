"""Helpers shared by the pool's tests; importable because conftest puts this
folder on `sys.path`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inferpool import ModelSettings

FIXTURES_DIR = str(Path(__file__).parent)


def model_settings(name: str, cls: str, **fields: Any) -> ModelSettings:
    """Settings for a model class of `fixture_models`."""
    return ModelSettings(
        name=name,
        implementation=f"fixture_models.{cls}",
        source_dir=FIXTURES_DIR,
        **fields,
    )


def process_exists(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except FileNotFoundError:
        return False
    return True


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `condition` until it holds; fail the test after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)
