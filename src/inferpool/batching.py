"""The adaptive batcher: merges concurrent requests of one model into one
call of `predict`, then splits the response back.

Design notes
------------
Requests wait in a list until it contains `max_batch_size` requests or the
oldest has waited `max_batch_time` seconds, whichever comes first; then the
list is flushed. A flush groups the requests by a compatibility key (each
input's name, datatype, trailing dimensions and parameters, and the request's
outputs and parameters), so requests that cannot be concatenated are never
merged: each group becomes one `InferenceRequest` whose inputs are the
requests' inputs concatenated along the first axis, and one pool call.

The response is split by the rows each request contributed: an output whose
first dimension equals the batch's row count is sliced, any other output
(a scalar summary, say) is copied to every request. An error fails every
request of the group.

The batcher runs in the front end, where requests from every client arrive,
so it fills batches faster than a per-worker batcher could. The price is
that batched models decode requests in the front end. The clock is injectable, so
tests drive time by hand instead of sleeping.

Open question: a group that exceeds `max_batch_size` rows because requests
carry several rows each is sent whole, as MLServer does.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .codecs.numpy import to_ndarray
from .types import InferenceRequest, InferenceResponse, RequestInput, ResponseOutput

logger = logging.getLogger(__name__)

PredictCall = Callable[[InferenceRequest], Awaitable[InferenceResponse]]


class Clock(Protocol):
    """Source of time for the batcher: schedules a callback after a delay."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> Any: ...


class LoopClock:
    """The running event loop's clock."""

    def call_later(
        self, delay: float, callback: Callable[[], None]
    ) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback)


@dataclass
class _Pending:
    request: InferenceRequest
    future: asyncio.Future[InferenceResponse]
    rows: int


@dataclass
class BatcherStatistics:
    """Counters of one batcher, for tests and metrics."""

    batches: int = 0
    requests: int = 0
    sizes: list[int] = field(default_factory=list)


class AdaptiveBatcher:
    """Batches the requests of one model version.

    `call(request)` runs a merged request (through the pool); `on_batch(n)`
    receives the size of each batch sent.
    """

    def __init__(
        self,
        max_batch_size: int,
        max_batch_time: float,
        call: PredictCall,
        on_batch: Callable[[int], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if max_batch_size < 2:
            raise ValueError(
                f"max_batch_size must be at least 2 to batch, got {max_batch_size}"
            )
        self._max_batch_size = max_batch_size
        self._max_batch_time = max(max_batch_time, 0.0)
        self._call = call
        self._on_batch = on_batch
        self._clock = clock or LoopClock()
        self._pending: list[_Pending] = []
        self._timer: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.statistics = BatcherStatistics()

    async def predict(self, request: InferenceRequest) -> InferenceResponse:
        """Queue `request` for the next batch and return its own response.

        Raises what the batched call raised; the request is removed from the
        batch if the caller is cancelled before the batch is sent.
        """
        rows = _rows_of(request)
        future: asyncio.Future[InferenceResponse] = (
            asyncio.get_running_loop().create_future()
        )
        pending = _Pending(request, future, rows)
        self._pending.append(pending)
        if len(self._pending) >= self._max_batch_size:
            self.flush()
        elif self._timer is None:
            self._timer = self._clock.call_later(self._max_batch_time, self.flush)
        try:
            return await future
        finally:
            if not future.done():
                # Cancelled while still waiting for its batch.
                try:
                    self._pending.remove(pending)
                except ValueError:
                    pass

    def flush(self) -> None:
        """Send every waiting request now, grouped into compatible batches."""
        if self._timer is not None:
            cancel = getattr(self._timer, "cancel", None)
            if cancel is not None:
                cancel()
            self._timer = None
        pending, self._pending = self._pending, []
        groups: dict[Any, list[_Pending]] = {}
        for item in pending:
            if not item.future.done():
                groups.setdefault(_batch_key(item.request), []).append(item)
        for group in groups.values():
            task = asyncio.ensure_future(self._run(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, group: list[_Pending]) -> None:
        self.statistics.batches += 1
        self.statistics.requests += len(group)
        self.statistics.sizes.append(len(group))
        if self._on_batch is not None:
            self._on_batch(len(group))
        try:
            if len(group) == 1:
                responses = [await self._call(group[0].request)]
            else:
                merged = _merge([item.request for item in group])
                response = await self._call(merged)
                responses = _split(response, [item.rows for item in group])
        except BaseException as exc:
            for item in group:
                if not item.future.done():
                    item.future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for item, response in zip(group, responses):
            if item.request.id is not None:
                response.id = item.request.id
            if not item.future.done():
                item.future.set_result(response)


def _rows_of(request: InferenceRequest) -> int:
    shapes = [list(i.shape) for i in request.inputs]
    if not shapes or any(not s for s in shapes):
        return 1
    return int(shapes[0][0])


def _parameters_key(parameters: Any) -> str:
    if not parameters:
        return ""
    return json.dumps(dict(parameters), sort_keys=True, default=str)


def _batch_key(request: InferenceRequest) -> Any:
    inputs = tuple(
        (
            i.name,
            str(i.datatype),
            tuple(i.shape[1:]) if i.shape else None,
            _parameters_key(i.parameters),
        )
        for i in request.inputs
    )
    outputs = tuple(
        (o.name, _parameters_key(o.parameters)) for o in request.outputs or ()
    )
    rows = {i.shape[0] if i.shape else None for i in request.inputs}
    # Inputs that disagree on their row count cannot be split back.
    return (inputs, outputs, _parameters_key(request.parameters), len(rows) == 1)


def _merge(requests: list[InferenceRequest]) -> InferenceRequest:
    first = requests[0]
    inputs = []
    for index, template in enumerate(first.inputs):
        arrays = [to_ndarray(request.inputs[index]) for request in requests]
        data = np.concatenate(arrays, axis=0)
        inputs.append(
            RequestInput(
                name=template.name,
                shape=list(data.shape),
                datatype=template.datatype,
                data=data,
                parameters=template.parameters,
            )
        )
    return InferenceRequest(
        inputs=inputs, outputs=first.outputs, parameters=first.parameters
    )


def _split(response: InferenceResponse, rows: list[int]) -> list[InferenceResponse]:
    total = sum(rows)
    responses = [
        InferenceResponse(
            model_name=response.model_name,
            model_version=response.model_version,
            parameters=response.parameters,
            outputs=[],
        )
        for _ in rows
    ]
    for output in response.outputs:
        array = to_ndarray(output)
        if array.ndim and array.shape[0] == total:
            start = 0
            for response_part, count in zip(responses, rows):
                part = array[start : start + count]
                start += count
                response_part.outputs.append(
                    ResponseOutput(
                        name=output.name,
                        shape=list(part.shape),
                        datatype=output.datatype,
                        data=part,
                        parameters=output.parameters,
                    )
                )
        else:
            for response_part in responses:
                response_part.outputs.append(output)
    return responses
