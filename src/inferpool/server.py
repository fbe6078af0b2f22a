"""The server: the pool, the model repository and the front ends, started
and stopped in order.

Shutdown runs in order. The server stops accepting connections and reports
not ready. The front ends finish the requests they have. The pool drains,
unloads the models and stops the workers. Then the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Generator
from typing import Any

import uvicorn

from .metrics import MetricsServer, ServerMetrics, start_metrics_server
from .parallel import InferencePool, LocalPool
from .repository import ModelRepository
from .rest.app import RestApp
from .settings import Settings

logger = logging.getLogger(__name__)


class StartupError(Exception):
    """The server could not start, for a reason the message explains."""


class _UvicornServer(uvicorn.Server):
    """uvicorn's server without its own signal handlers: the inferpool
    server handles SIGINT and SIGTERM for every front end at once."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class InferpoolServer:
    """Serves the models of `settings.model_repository_root`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: InferencePool | LocalPool
        if settings.parallel_workers > 0:
            self.pool = InferencePool(settings)
            pool = self.pool

            def pool_problem() -> str | None:
                if pool.dispatcher.ready_workers:
                    return None
                if pool.last_restart_error:
                    return f"no worker is ready; the last restart failed: {pool.last_restart_error}"
                return "no worker is ready"
        else:
            self.pool = LocalPool(settings)

            def pool_problem() -> str | None:
                return None

        statistics = (
            self.pool.statistics if isinstance(self.pool, InferencePool) else None
        )
        self.metrics = ServerMetrics(statistics)
        self.repository = ModelRepository(
            settings,
            self.pool,
            pool_problem,
            on_load=self._on_model_load,
            on_batch=self._on_batch,
        )
        self._shutting_down = False
        self._stop = asyncio.Event()
        self.rest_app = RestApp(
            self.repository, settings, lambda: self._shutting_down, self.metrics
        )
        self._metrics_server: MetricsServer | None = None
        self._http: _UvicornServer | None = None
        self._http_task: asyncio.Future[None] | None = None
        self._grpc: Any = None
        self.http_port: int | None = None
        self.grpc_port: int | None = None

    def _on_model_load(self, name: str, seconds: float) -> None:
        self.metrics.model_load_seconds.labels(name).observe(seconds)

    def _on_batch(self, name: str, size: int) -> None:
        self.metrics.batch_size.labels(name).observe(size)

    def request_shutdown(self) -> None:
        """Begin the orderly shutdown; safe to call more than once."""
        if not self._shutting_down:
            logger.info("Shutting down: no new requests are accepted")
        self._shutting_down = True
        self._stop.set()

    async def start(self) -> None:
        """Start the workers and the front ends, then load the models.

        The front ends accept requests from the start, so liveness is true
        while the models load, and readiness turns true once all are loaded.
        """
        await self.pool.start()
        await self._start_http()
        await self._start_grpc()
        try:
            self._metrics_server = await start_metrics_server(
                self.metrics, self.settings.host, self.settings.metrics_port
            )
        except OSError as exc:
            raise StartupError(
                f"Cannot listen for metrics on {self.settings.host}:{self.settings.metrics_port}: "
                f"{exc.strerror or exc}; choose another port with --metrics-port"
            ) from None
        if self.settings.load_models_at_startup:
            await self.repository.load_all()
        self.repository.startup_complete = True
        logger.info(
            "Server ready: %d model version(s) loaded",
            sum(1 for v in self.repository.versions() if v.state == "READY"),
        )

    async def _start_http(self) -> None:
        config = uvicorn.Config(
            self.rest_app,
            host=self.settings.host,
            port=self.settings.http_port,
            http="httptools",
            loop="none",
            lifespan="off",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=int(self.settings.drain_timeout) or None,
            timeout_keep_alive=30,
        )
        sock = socket.socket(
            socket.AF_INET6 if ":" in self.settings.host else socket.AF_INET
        )
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.settings.host, self.settings.http_port))
        except OSError as exc:
            sock.close()
            raise StartupError(
                f"Cannot listen for REST on {self.settings.host}:{self.settings.http_port}: "
                f"{exc.strerror or exc}; choose another port with --http-port"
            ) from None
        self._http = _UvicornServer(config)
        self.http_port = sock.getsockname()[1]
        self._http_task = asyncio.ensure_future(self._http.serve(sockets=[sock]))
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()
                raise RuntimeError("The REST server stopped while starting")
            await asyncio.sleep(0.01)
        logger.info(
            "REST server listening on http://%s:%d", self.settings.host, self.http_port
        )

    async def _start_grpc(self) -> None:
        from .grpc.server import start_grpc_server

        try:
            self._grpc = await start_grpc_server(
                self.repository,
                self.settings,
                lambda: self._shutting_down,
                self.metrics,
            )
        except (OSError, RuntimeError) as exc:
            raise StartupError(
                f"Cannot listen for gRPC on {self.settings.host}:{self.settings.grpc_port}: "
                f"{exc}; choose another port with --grpc-port"
            ) from None
        self.grpc_port = self._grpc.port
        logger.info(
            "gRPC server listening on %s:%d", self.settings.host, self.grpc_port
        )

    async def serve_until_stopped(self) -> None:
        """Run until SIGINT or SIGTERM, or `request_shutdown`, then shut
        down in order."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_shutdown)
        try:
            # A signal during start-up (a model may take minutes to load)
            # cancels it and goes straight to the shutdown.
            starting = asyncio.ensure_future(self.start())
            stopping = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait(
                {starting, stopping}, return_when=asyncio.FIRST_COMPLETED
            )
            if starting.done():
                starting.result()
                await stopping
            else:
                logger.info("Start-up interrupted: cancelling the model loads")
                starting.cancel()
                try:
                    await starting
                except asyncio.CancelledError:
                    pass
        finally:
            await self.shutdown()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    async def shutdown(self) -> None:
        """Stop the front ends after their requests finish, then the pool."""
        self._shutting_down = True
        grpc_stopped = None
        if self._grpc is not None:
            # Stops accepting at once and lets in-flight calls finish within
            # the drain timeout, alongside the REST server below.
            grpc_stopped = asyncio.ensure_future(
                self._grpc.stop(self.settings.drain_timeout)
            )
            self._grpc = None
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            try:
                await asyncio.wait_for(self._http_task, self.settings.drain_timeout + 5)
            except asyncio.TimeoutError:
                logger.warning("The REST server did not stop within the drain timeout")
                self._http.force_exit = True
            self._http = None
        if grpc_stopped is not None:
            await grpc_stopped
        await self.pool.close()
        if self._metrics_server is not None:
            await self._metrics_server.stop()
            self._metrics_server = None
        logger.info("Server stopped")


def run(settings: Settings) -> None:
    """Run the server on a new event loop (uvloop when installed) until a
    signal stops it."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(InferpoolServer(settings).serve_until_stopped())
        return
    runner: Any = getattr(uvloop, "run", None)
    if runner is not None:
        runner(InferpoolServer(settings).serve_until_stopped())
    else:  # pragma: no cover - uvloop < 0.18
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        asyncio.run(InferpoolServer(settings).serve_until_stopped())
