"""Models used by the pool's tests. Worker processes import this module by
name, with this folder as the model's `source_dir`."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import numpy as np

from inferpool import MLModel


class EchoModel(MLModel):
    """Returns what it is given, and the pid of the worker that served it."""

    async def echo(self, value: Any) -> Any:
        return value

    async def pid(self) -> int:
        return os.getpid()

    def sync_echo(self, value: Any) -> Any:
        return value


class SleepModel(MLModel):
    """Sleeps asynchronously, then returns the serving worker's pid."""

    async def sleep(self, seconds: float) -> int:
        await asyncio.sleep(seconds)
        return os.getpid()

    def block(self, seconds: float) -> int:
        time.sleep(seconds)
        return os.getpid()


class FailOnceLoadModel(MLModel):
    """Fails to load in exactly one process: the first to create the marker
    file named by `parameters.extra["marker"]`."""

    async def load(self) -> bool:
        marker = self.settings.parameters.extra["marker"]
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return True
        os.close(fd)
        raise RuntimeError(f"disk on fire in worker {os.getpid()}")

    async def pid(self) -> int:
        return os.getpid()


class LoadCounterModel(MLModel):
    """Appends the loading pid to the file `parameters.extra["log"]`."""

    async def load(self) -> bool:
        with open(self.settings.parameters.extra["log"], "a") as log:
            log.write(f"load {os.getpid()}\n")
        return True

    async def unload(self) -> bool:
        with open(self.settings.parameters.extra["log"], "a") as log:
            log.write(f"unload {os.getpid()}\n")
        return True

    async def pid(self) -> int:
        return os.getpid()


class TeapotError(Exception):
    """A custom exception class of the model's own."""


class NeedsTwoArgumentsError(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"code {code}: {detail}")
        self.code = code


class MisbehavingModel(MLModel):
    async def custom_error(self) -> None:
        raise TeapotError("I am a teapot")

    async def unpicklable_error(self) -> None:
        raise ValueError("holds a lock", threading.Lock())

    async def unrebuildable_error(self) -> None:
        raise NeedsTwoArgumentsError(418, "short and stout")

    async def unpicklable_result(self) -> Any:
        return threading.Lock()

    async def raise_base_exception(self, kind: str) -> None:
        errors: dict[str, BaseException] = {
            "SystemExit": SystemExit(3),
            "KeyboardInterrupt": KeyboardInterrupt(),
            "CancelledError": asyncio.CancelledError("from the model"),
            "GeneratorExit": GeneratorExit(),
        }
        raise errors[kind]

    async def exit_worker(self, code: int) -> None:
        os._exit(code)

    async def ok(self) -> str:
        return "ok"


class ArrayModel(MLModel):
    """Round-trips numpy arrays and reports what it received."""

    async def double(self, array: np.ndarray) -> np.ndarray:
        return array * 2

    async def echo(self, array: np.ndarray) -> np.ndarray:
        return array

    async def checksum(self, array: np.ndarray) -> float:
        return float(array.sum(dtype=np.float64))


class CrashOnReloadModel(MLModel):
    """Loads in the first process only; every later load exits the process,
    as a model whose weights crash the interpreter would."""

    async def load(self) -> bool:
        marker = self.settings.parameters.extra["marker"]
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            os._exit(3)
        os.close(fd)
        return True

    async def pid(self) -> int:
        return os.getpid()
