"""Errors of the worker pool."""

from __future__ import annotations

from ..errors import InferpoolError


class WorkerStop(InferpoolError):
    """The worker serving a request exited before it replied.

    Raised for each request that was in flight on that worker, whatever the
    exit code (0 included, since the pool did not ask the worker to exit).
    Requests still waiting in the dispatcher's queue are not affected: they
    go to another worker.
    """

    status_code = 503
    grpc_status = "UNAVAILABLE"

    def __init__(self, pid: int, exit_code: int | None) -> None:
        super().__init__(
            f"Worker with PID {pid} stopped unexpectedly with exit code {exit_code}"
        )
        self.pid = pid
        self.exit_code = exit_code


class WorkerStartError(InferpoolError):
    """A worker process did not start, or did not report ready in time."""


class PoolClosed(InferpoolError):
    """The pool is closing or closed and accepts no new work."""

    status_code = 503
    grpc_status = "UNAVAILABLE"
