"""The worker process: a registry of real models served over one socket.

The pool starts each worker as `python -m inferpool.parallel` with its
end of a socket pair, so a worker is a fresh interpreter (as with
multiprocessing's `spawn`) that imports nothing of the front end's
`__main__`. The worker runs each request as a task on its own event loop and
sends back the result or the error. It exits when its connection closes,
which is also what happens when the front-end process dies.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import logging
import os
import pickle
import signal
import socket
import sys
import traceback
from typing import Any

from ..registry import ModelRegistry
from .messages import (
    CancelMessage,
    ExceptionInfo,
    ModelRequestMessage,
    ModelResponseMessage,
    ModelUpdateMessage,
    ModelUpdateType,
    WorkerReadyMessage,
)
from .transport import Connection, open_connection

logger = logging.getLogger(__name__)

# The variable through which the pool passes its `sys.path` to the worker,
# so that modules importable in the front end are importable here too.
SYS_PATH_ENV = "INFERPOOL_WORKER_SYS_PATH"


def exception_info(exc: BaseException) -> ExceptionInfo:
    """Describe `exc` so that it crosses to the front end whatever it holds.

    The exception is pickled, and unpickled again here as a check, so an
    exception whose constructor cannot be replayed from its args still
    arrives, as a `ModelError` naming its class and message.
    """
    cls = type(exc)
    type_path = f"{cls.__module__}.{cls.__qualname__}"
    pickled: bytes | None = None
    # Only Exception subclasses are re-raised as themselves in the front
    # end: SystemExit, KeyboardInterrupt or CancelledError raised there
    # would stop the server or cancel the wrong task.
    if isinstance(exc, Exception):
        try:
            pickled = pickle.dumps(exc, protocol=5)
            pickle.loads(pickled)
        except Exception:
            pickled = None
    tb = "".join(traceback.format_exception(cls, exc, exc.__traceback__))
    return ExceptionInfo(type_path, str(exc), pickled, tb)


class WorkerServer:
    """Serves the messages of one connection with one `ModelRegistry`."""

    def __init__(self) -> None:
        self.registry = ModelRegistry()
        self._connection: Connection | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Requests cancelled at the front end's request, as opposed to a
        # model raising CancelledError itself.
        self._cancelled: set[str] = set()
        self._closed = asyncio.Event()

    async def serve(self, sock: socket.socket) -> None:
        self._connection = await open_connection(
            sock, self._on_message, self._on_decode_error, self._on_lost
        )
        self._connection.send("ready", WorkerReadyMessage(os.getpid()))
        await self._closed.wait()

        # The front end closed the connection, or died: stop serving and
        # unload what is loaded, so models can release their resources.
        for task in list(self._tasks.values()):
            task.cancel()
        await self.registry.unload_all()

    def _on_lost(self, exc: Exception | None) -> None:
        self._closed.set()

    def _on_message(self, message: Any) -> None:
        if isinstance(message, ModelRequestMessage):
            task = asyncio.ensure_future(self._process_request(message))
        elif isinstance(message, ModelUpdateMessage):
            task = asyncio.ensure_future(self._process_update(message))
        elif isinstance(message, CancelMessage):
            running = self._tasks.get(message.id)
            if running is not None:
                self._cancelled.add(message.id)
                running.cancel()
            return
        else:
            logger.error(
                "Worker %d received an unknown message %r", os.getpid(), message
            )
            return
        message_id = message.id
        self._tasks[message_id] = task

        def forget(_: asyncio.Future[None]) -> None:
            self._tasks.pop(message_id, None)

        task.add_done_callback(forget)

    def _on_decode_error(self, message_id: str, exc: Exception) -> None:
        self._reply(ModelResponseMessage(message_id, exception=exception_info(exc)))

    async def _process_request(self, message: ModelRequestMessage) -> None:
        try:
            result = await self.registry.call(
                message.model_name,
                message.model_version,
                message.method_name,
                message.method_args,
                message.method_kwargs,
            )
        except asyncio.CancelledError as exc:
            if message.id in self._cancelled:
                # The caller gave up. The reply only shows the front end that
                # this worker is not stuck, and no caller reads its content.
                self._cancelled.discard(message.id)
                self._reply(
                    ModelResponseMessage(message.id, exception=exception_info(exc))
                )
                return
            # The model raised CancelledError itself: an error like any other.
            self._reply(ModelResponseMessage(message.id, exception=exception_info(exc)))
            return
        except BaseException as exc:
            self._reply(ModelResponseMessage(message.id, exception=exception_info(exc)))
            return
        self._reply(ModelResponseMessage(message.id, return_value=result), message)

    async def _process_update(self, message: ModelUpdateMessage) -> None:
        settings = message.model_settings
        try:
            if message.update_type == ModelUpdateType.Load:
                await self.registry.load(settings)
            else:
                await self.registry.unload(settings.name, settings.version)
        except asyncio.CancelledError:
            return
        except BaseException as exc:
            self._reply(ModelResponseMessage(message.id, exception=exception_info(exc)))
            return
        self._reply(ModelResponseMessage(message.id))

    def _reply(
        self, response: ModelResponseMessage, request: ModelRequestMessage | None = None
    ) -> None:
        connection = self._connection
        if connection is None or connection.closed:
            return
        try:
            connection.send(response.id, response)
        except Exception as exc:
            if request is None:
                raise
            error = TypeError(
                f"The return value of {request.method_name}() of model "
                f"{request.model_name!r} cannot be sent to the front end: "
                f"{type(exc).__name__}: {exc}"
            )
            connection.send(
                response.id,
                ModelResponseMessage(response.id, exception=exception_info(error)),
            )


def _exit_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process when the front end dies, even while
    a model blocks the event loop; the closed socket covers other systems."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # pragma: no cover - exotic libc
            pass
    if os.getppid() != parent_pid:
        # The parent died before prctl took effect.
        os._exit(1)


def _install_event_loop_policy() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="inferpool-worker")
    parser.add_argument("--fd", type=int, required=True, help="socket to the front end")
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)

    _exit_with_parent(args.parent_pid)
    # Ctrl-C, `timeout` and systemd signal the whole process group at once.
    # Shutdown is the front end's decision, taken by closing the socket after
    # in-flight requests finish, so the worker ignores both signals; SIGKILL
    # and the parent-death signal still end it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    extra_path = os.environ.get(SYS_PATH_ENV)
    if extra_path:
        for entry in json.loads(extra_path):
            if entry not in sys.path:
                sys.path.append(entry)

    logging.basicConfig(
        level=args.log_level.upper(),
        format=f"%(asctime)s [worker {os.getpid()}] %(levelname)s %(name)s: %(message)s",
    )
    # Protocol methods (REST and gRPC decoding) register themselves on import.
    import inferpool.protocol  # noqa: F401

    sock = socket.socket(fileno=args.fd)
    _install_event_loop_policy()
    asyncio.run(WorkerServer().serve(sock))
