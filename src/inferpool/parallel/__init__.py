"""The worker pool: messages, transport, dispatcher, worker and pool."""

from __future__ import annotations

from .dispatcher import AsyncResponses, Dispatcher, DispatcherStatistics
from .errors import PoolClosed, WorkerStartError, WorkerStop
from .messages import (
    ModelRequestMessage,
    ModelResponseMessage,
    ModelUpdateMessage,
    ModelUpdateType,
)
from .pool import InferencePool, LocalPool, PoolStatistics, Worker

__all__ = [
    "AsyncResponses",
    "Dispatcher",
    "DispatcherStatistics",
    "InferencePool",
    "LocalPool",
    "ModelRequestMessage",
    "ModelResponseMessage",
    "ModelUpdateMessage",
    "ModelUpdateType",
    "PoolClosed",
    "PoolStatistics",
    "Worker",
    "WorkerStartError",
    "WorkerStop",
]
