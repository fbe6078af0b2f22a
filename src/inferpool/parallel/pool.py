"""The inference pool: starts, watches, restarts and stops worker processes.

`InferencePool` owns the worker processes and the `Dispatcher` that feeds
them. It watches each worker through a pidfd (its own process, not a
process-wide SIGCHLD handler). So every exit is seen with its exit code, two
exits at once are two exits, and an exit with status 0 that the pool did not
ask for is a death like any other. A dead worker is replaced and the
replacement loads every registered model before it gets traffic; a worker
that keeps dying is restarted with exponential back-off.

`LocalPool` has the same interface and runs models in the calling process,
for `parallel_workers = 0`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ModelError, ModelNotFound, RequestTimeout
from ..registry import ModelRegistry
from ..settings import ModelSettings, Settings
from .dispatcher import Dispatcher, DispatcherStatistics
from .errors import PoolClosed, WorkerStartError
from .messages import (
    Message,
    ModelRequestMessage,
    ModelResponseMessage,
    ModelUpdateMessage,
    ModelUpdateType,
    WorkerReadyMessage,
)
from .transport import Connection, open_connection
from .worker import SYS_PATH_ENV

logger = logging.getLogger(__name__)

ModelKey = tuple[str, str | None]
WorkerStopCallback = Callable[["Worker", "int | None"], Any]

# A worker that stayed up this long resets its slot's back-off.
_HEALTHY_UPTIME = 10.0
_BACKOFF_START = 0.1


class Worker:
    """The front end's handle on one worker process."""

    def __init__(
        self, process: subprocess.Popen[bytes], connection: Connection
    ) -> None:
        self.process = process
        self.pid = process.pid
        self.connection = connection
        self.started_at = time.monotonic()
        self.exit_code: int | None = None
        self.stopping = False
        # Set once the worker serves traffic. A worker that dies before that
        # is retried by the loop that started it, not replaced again.
        self.joined = False

    def send(self, message: Message) -> None:
        self.connection.send(message.id, message)

    def __repr__(self) -> str:
        return f"Worker(pid={self.pid})"


@dataclass(frozen=True)
class PoolStatistics:
    """A snapshot of the pool, for metrics, logs and tests."""

    workers: int
    ready_workers: int
    restarts: int
    models: int
    dispatcher: DispatcherStatistics


async def call_with_timeout(awaitable: Any, timeout: float | None, what: str) -> Any:
    if timeout is None:
        return await awaitable
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise RequestTimeout(f"{what} timed out after {timeout:g}s") from None


class InferencePool:
    """A pool of `settings.parallel_workers` worker processes serving models.

    `on_worker_stop(worker, exit_code)` is called after each unexpected exit,
    before the replacement starts.
    """

    def __init__(
        self, settings: Settings, on_worker_stop: WorkerStopCallback | None = None
    ) -> None:
        if settings.parallel_workers < 1:
            raise ValueError(
                "InferencePool needs parallel_workers >= 1; use LocalPool for 0"
            )
        self._settings = settings
        self._on_worker_stop = on_worker_stop
        self._dispatcher = Dispatcher(
            policy=settings.dispatch_policy,
            max_concurrency=settings.max_concurrency,
            max_queue_size=settings.max_queue_size,
            no_worker_timeout=settings.no_worker_timeout,
            stuck_worker_timeout=settings.stuck_worker_timeout,
        )
        self._models: dict[ModelKey, ModelSettings] = {}
        self._workers: dict[int, Worker] = {}
        self._restarts = 0
        self._failures_in_a_row = 0
        # Why the last attempt to replace a dead worker failed, until one
        # succeeds; readiness messages report it.
        self.last_restart_error: str | None = None
        self._closing = False
        self._background: set[asyncio.Task[Any]] = set()
        self._restart_tasks: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.Future[None] | None = None

    @property
    def dispatcher(self) -> Dispatcher:
        return self._dispatcher

    @property
    def workers(self) -> list[Worker]:
        return list(self._workers.values())

    # -- starting workers ----------------------------------------------------------

    async def start(self) -> None:
        """Start every worker and wait until each is ready for traffic.

        Raises `WorkerStartError` if a worker does not start in time.
        """
        self._dispatcher.start()
        self._watchdog = asyncio.ensure_future(self._kill_stuck_workers())
        workers = await asyncio.gather(
            *(self._start_worker() for _ in range(self._settings.parallel_workers)),
            return_exceptions=True,
        )
        errors = [w for w in workers if isinstance(w, BaseException)]
        if errors:
            await self.close()
            raise errors[0]
        for worker in workers:
            assert isinstance(worker, Worker)
            worker.joined = True
            self._dispatcher.on_worker_start(worker)
            self._dispatcher.on_worker_ready(worker)

    async def _start_worker(self) -> Worker:
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        env[SYS_PATH_ENV] = json.dumps([p for p in sys.path if p])
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "inferpool.parallel",
                    "--fd",
                    str(child_sock.fileno()),
                    "--parent-pid",
                    str(os.getpid()),
                    "--log-level",
                    self._settings.log_level,
                ],
                pass_fds=(child_sock.fileno(),),
                env=env,
                close_fds=True,
            )
        finally:
            child_sock.close()

        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        holder: list[Worker] = []

        def on_message(message: Any) -> None:
            if isinstance(message, ModelResponseMessage):
                self._dispatcher.resolve(message)
            elif isinstance(message, WorkerReadyMessage):
                if not ready.done():
                    ready.set_result(None)
            else:
                logger.error(
                    "Unexpected message from worker %d: %r", process.pid, message
                )

        def on_decode_error(message_id: str, exc: Exception) -> None:
            logger.error(
                "Worker %d sent a response that cannot be read: %s", process.pid, exc
            )
            self._dispatcher.fail(message_id, exc)

        def on_lost(exc: Exception | None) -> None:
            if not ready.done():
                ready.set_exception(
                    WorkerStartError(
                        f"Worker {process.pid} closed its connection while starting"
                    )
                )
            if holder and not holder[0].stopping and process.poll() is None:
                # The process lives on without its socket: it cannot serve.
                process.kill()

        connection = await open_connection(
            parent_sock, on_message, on_decode_error, on_lost
        )
        worker = Worker(process, connection)
        holder.append(worker)
        self._workers[worker.pid] = worker
        self._watch(worker)
        try:
            await asyncio.wait_for(ready, self._settings.worker_start_timeout)
        except (asyncio.TimeoutError, WorkerStartError) as exc:
            worker.stopping = True
            process.kill()
            raise WorkerStartError(
                f"Worker {worker.pid} did not start within {self._settings.worker_start_timeout:g}s"
                if isinstance(exc, asyncio.TimeoutError)
                else str(exc)
            ) from None
        logger.info("Worker %d started", worker.pid)
        return worker

    # -- watching workers --------------------------------------------------------

    async def _kill_stuck_workers(self) -> None:
        """Kill workers that leave a cancelled request unanswered, such as a
        model blocked forever, so that the pool replaces them."""
        loop = asyncio.get_running_loop()
        while not self._closing:
            await asyncio.sleep(0.5)
            for worker in self._dispatcher.overdue_workers(loop.time()):
                if worker.stopping or worker.process.poll() is not None:
                    continue
                logger.warning(
                    "Worker %d did not reply to a cancelled request or update in time; "
                    "killing it so that it is replaced",
                    worker.pid,
                )
                worker.process.kill()

    def _watch(self, worker: Worker) -> None:
        loop = asyncio.get_running_loop()
        try:
            pidfd = os.pidfd_open(worker.pid)
        except (AttributeError, OSError):  # pragma: no cover - Linux < 5.3
            task = loop.create_task(self._poll_exit(worker))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return

        def on_exit() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            self._handle_exit(worker)

        loop.add_reader(pidfd, on_exit)

    async def _poll_exit(self, worker: Worker) -> None:  # pragma: no cover - no pidfd
        while worker.process.poll() is None:
            await asyncio.sleep(0.1)
        self._handle_exit(worker)

    def _handle_exit(self, worker: Worker) -> None:
        exit_code = worker.process.wait()
        worker.exit_code = exit_code
        worker.connection.close()
        self._workers.pop(worker.pid, None)
        if worker.stopping:
            logger.info("Worker %d stopped with exit code %d", worker.pid, exit_code)
            return

        logger.error(
            "Worker %d died unexpectedly with exit code %d", worker.pid, exit_code
        )
        self._dispatcher.on_worker_stop(worker, exit_code)
        if self._on_worker_stop is not None:
            try:
                self._on_worker_stop(worker, exit_code)
            except Exception:
                logger.exception(
                    "on_worker_stop callback failed for worker %d", worker.pid
                )
        if time.monotonic() - worker.started_at >= _HEALTHY_UPTIME:
            self._failures_in_a_row = 0
        if not self._closing and worker.joined:
            task = asyncio.get_running_loop().create_task(self._replace_worker())
            self._restart_tasks.add(task)
            task.add_done_callback(self._restart_tasks.discard)

    async def _replace_worker(self) -> None:
        while not self._closing:
            delay = 0.0
            if self._failures_in_a_row:
                delay = min(
                    _BACKOFF_START * 2 ** (self._failures_in_a_row - 1),
                    self._settings.restart_backoff_max,
                )
                logger.warning(
                    "Restarting a worker in %.2fs after %d failures in a row",
                    delay,
                    self._failures_in_a_row,
                )
            self._failures_in_a_row += 1
            if delay:
                await asyncio.sleep(delay)
            if self._closing:
                return
            try:
                worker = await self._start_worker()
                await self._join(worker)
            except Exception as exc:
                self.last_restart_error = f"{type(exc).__name__}: {exc}"
                logger.error("Restarting a worker failed: %s", self.last_restart_error)
                continue
            self.last_restart_error = None
            self._restarts += 1
            logger.info("Worker %d replaced a dead worker and is ready", worker.pid)
            return

    async def _join(self, worker: Worker) -> None:
        """Load every registered model into a new worker, then give it traffic."""
        dispatcher = self._dispatcher
        async with dispatcher.update_lock:
            dispatcher.on_worker_start(worker)
            try:
                for settings in list(self._models.values()):
                    update = ModelUpdateMessage(ModelUpdateType.Load, settings)
                    await dispatcher.dispatch_update_to_worker(
                        worker, update, timeout=self._settings.model_load_timeout
                    )
            except BaseException:
                dispatcher.on_worker_stop(worker, None)
                await self._stop_worker(worker, timeout=1.0)
                raise
        worker.joined = True
        dispatcher.on_worker_ready(worker)

    # -- models ------------------------------------------------------------------

    async def load_model(self, settings: ModelSettings) -> None:
        """Load a model on every worker; on failure it is loaded on none.

        Raises `ModelLoadError` naming the worker and the cause.
        """
        self._check_open()
        update = ModelUpdateMessage(ModelUpdateType.Load, settings)
        key = (settings.name, settings.version)
        await self._dispatcher.dispatch_update(
            update,
            timeout=self._settings.model_load_timeout,
            previous=self._models.get(key),
        )
        self._models[key] = settings

    async def unload_model(self, settings: ModelSettings) -> None:
        """Unload one version of a model from every worker."""
        self._models.pop((settings.name, settings.version), None)
        update = ModelUpdateMessage(ModelUpdateType.Unload, settings)
        await self._dispatcher.dispatch_update(
            update, timeout=self._settings.model_unload_timeout
        )

    async def call(
        self,
        model_name: str,
        model_version: str | None,
        method_name: str,
        *args: Any,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run `method_name` of a model in a worker and return its result.

        Raises what the model raised, `RequestTimeout` after `timeout`
        seconds, `ServerOverloaded`, `WorkerStop` or `PoolClosed`.
        """
        message = ModelRequestMessage(
            model_name, model_version, method_name, args, kwargs
        )
        if timeout is None:
            response = await self._dispatcher.dispatch_request(message)
        else:
            response = await call_with_timeout(
                self._dispatcher.dispatch_request(message),
                timeout,
                f"Request to model {model_name!r}",
            )
        return response.return_value

    def _check_open(self) -> None:
        if self._closing:
            raise PoolClosed("The inference pool is closing")

    # -- closing -----------------------------------------------------------------

    async def close(self, drain_timeout: float | None = None) -> None:
        """Let in-flight requests finish (up to `drain_timeout` seconds),
        then stop every worker. No worker process is left afterwards."""
        if drain_timeout is None:
            drain_timeout = self._settings.drain_timeout
        self._closing = True
        for task in list(self._restart_tasks):
            task.cancel()
        if self._watchdog is not None:
            self._watchdog.cancel()

        if not await self._dispatcher.wait_idle(drain_timeout):
            logger.warning(
                "Closing the pool with requests still in flight after %.1fs",
                drain_timeout,
            )
        await self._dispatcher.stop()
        await asyncio.gather(
            *(self._stop_worker(w) for w in list(self._workers.values()))
        )
        logger.info("Inference pool closed")

    async def _stop_worker(self, worker: Worker, timeout: float = 10.0) -> None:
        """Close the worker's socket, which makes it unload and exit; kill it
        if it has not exited after `timeout` seconds."""
        worker.stopping = True
        worker.connection.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while worker.process.poll() is None:
            if loop.time() >= deadline:
                logger.warning(
                    "Worker %d did not exit within %.1fs; killing it",
                    worker.pid,
                    timeout,
                )
                worker.process.send_signal(signal.SIGKILL)
                await loop.run_in_executor(None, worker.process.wait)
                break
            await asyncio.sleep(0.02)
        # Let the pidfd callback log and forget the worker.
        self._workers.pop(worker.pid, None)

    def statistics(self) -> PoolStatistics:
        return PoolStatistics(
            workers=len(self._workers),
            ready_workers=len(self._dispatcher.ready_workers),
            restarts=self._restarts,
            models=len(self._models),
            dispatcher=self._dispatcher.statistics(),
        )


class LocalPool:
    """Runs models in the calling process, with `InferencePool`'s interface,
    for `parallel_workers = 0`. A synchronous model blocks the caller's
    event loop while it runs."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.registry = ModelRegistry()
        self._closing = False
        self._in_flight = 0

    async def start(self) -> None:
        import inferpool.protocol  # noqa: F401 - registers the protocol methods

    async def load_model(self, settings: ModelSettings) -> None:
        if self._closing:
            raise PoolClosed("The inference pool is closing")
        await self.registry.load(settings)

    async def unload_model(self, settings: ModelSettings) -> None:
        try:
            await self.registry.unload(settings.name, settings.version)
        except ModelNotFound:
            pass

    async def call(
        self,
        model_name: str,
        model_version: str | None,
        method_name: str,
        *args: Any,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        if self._closing:
            raise PoolClosed("The inference pool is closing")
        self._in_flight += 1
        try:
            return await call_with_timeout(
                self.registry.call(
                    model_name, model_version, method_name, args, kwargs
                ),
                timeout,
                f"Request to model {model_name!r}",
            )
        except (SystemExit, KeyboardInterrupt, GeneratorExit) as exc:
            # Raised by the model: it fails this request, not the server.
            raise ModelError(type(exc).__qualname__, str(exc)) from None
        finally:
            self._in_flight -= 1

    async def close(self, drain_timeout: float | None = None) -> None:
        self._closing = True
        if drain_timeout is None:
            drain_timeout = self._settings.drain_timeout
        deadline = time.monotonic() + drain_timeout
        while self._in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await self.registry.unload_all()
