"""The adaptive batcher, with a clock the tests advance by hand."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from inferpool.batching import AdaptiveBatcher
from inferpool.codecs import NumpyCodec
from inferpool.types import InferenceRequest, InferenceResponse, RequestInput


class ManualClock:
    """Records scheduled callbacks; `advance` runs those that are due."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, Callable[[], None], list[bool]]] = []

    def call_later(self, delay: float, callback: Callable[[], None]) -> Any:
        cancelled = [False]
        self.timers.append((self.now + delay, callback, cancelled))

        class Handle:
            def cancel(self) -> None:
                cancelled[0] = True

        return Handle()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [t for t in self.timers if t[0] <= self.now]
        self.timers = [t for t in self.timers if t[0] > self.now]
        for _, callback, cancelled in due:
            if not cancelled[0]:
                callback()


def request(
    rows: list[list[float]], datatype: str = "FP32", **parameters: Any
) -> InferenceRequest:
    array = np.array(rows, dtype=np.float32 if datatype == "FP32" else np.float64)
    return InferenceRequest(
        id=f"r{rows[0][0]:g}",
        inputs=[
            RequestInput(
                name="x", shape=list(array.shape), datatype=datatype, data=array
            )
        ],
        parameters=parameters or None,
    )


class Recorder:
    """A predict call that doubles its input and records each batch."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[InferenceRequest] = []
        self.fail = fail

    async def __call__(self, merged: InferenceRequest) -> InferenceResponse:
        self.calls.append(merged)
        if self.fail:
            raise ArithmeticError("batch failed")
        array = NumpyCodec.decode_input(merged.inputs[0])
        return InferenceResponse(
            model_name="m",
            outputs=[
                NumpyCodec.encode_output("doubled", array * 2),
                NumpyCodec.encode_output("total", np.array([array.sum()])),
            ],
        )


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_batch_flushes_when_full() -> None:
    recorder, clock = Recorder(), ManualClock()
    batcher = AdaptiveBatcher(3, 10.0, recorder, clock=clock)

    responses = await asyncio.gather(
        *(batcher.predict(request([[i, i]])) for i in range(3))
    )

    assert len(recorder.calls) == 1
    assert recorder.calls[0].inputs[0].shape == [3, 2]
    for i, response in enumerate(responses):
        assert response.id == f"r{i}"
        np.testing.assert_array_equal(
            NumpyCodec.decode_output(response.outputs[0]), [[2 * i, 2 * i]]
        )


async def test_batch_flushes_after_max_time() -> None:
    recorder, clock = Recorder(), ManualClock()
    batcher = AdaptiveBatcher(8, 0.005, recorder, clock=clock)
    pending = [
        asyncio.ensure_future(batcher.predict(request([[i, i]]))) for i in range(2)
    ]
    await settle()
    assert recorder.calls == []

    clock.advance(0.005)
    responses = await asyncio.gather(*pending)

    assert len(recorder.calls) == 1
    assert [r.id for r in responses] == ["r0", "r1"]


async def test_multi_row_requests_split_by_rows() -> None:
    recorder, clock = Recorder(), ManualClock()
    batcher = AdaptiveBatcher(2, 1.0, recorder, clock=clock)

    first, second = await asyncio.gather(
        batcher.predict(request([[1, 1], [2, 2]])), batcher.predict(request([[3, 3]]))
    )

    np.testing.assert_array_equal(
        NumpyCodec.decode_output(first.outputs[0]), [[2, 2], [4, 4]]
    )
    np.testing.assert_array_equal(NumpyCodec.decode_output(second.outputs[0]), [[6, 6]])
    # An output that is not per row is copied to every request.
    assert first.outputs[1].shape == [1]
    assert second.outputs[1].shape == [1]


@pytest.mark.parametrize(
    "other",
    [
        request([[9, 9, 9]]),
        request([[9, 9]], datatype="FP64"),
        request([[9, 9]], mode="fast"),
    ],
    ids=["trailing dimensions", "datatype", "parameters"],
)
async def test_incompatible_requests_not_merged(other: InferenceRequest) -> None:
    recorder, clock = Recorder(), ManualClock()
    batcher = AdaptiveBatcher(2, 1.0, recorder, clock=clock)

    await asyncio.gather(batcher.predict(request([[1, 1]])), batcher.predict(other))

    assert len(recorder.calls) == 2
    assert sorted(call.inputs[0].shape[0] for call in recorder.calls) == [1, 1]


async def test_batch_error_reaches_every_request() -> None:
    batcher = AdaptiveBatcher(2, 1.0, Recorder(fail=True), clock=ManualClock())

    results = await asyncio.gather(
        batcher.predict(request([[1, 1]])),
        batcher.predict(request([[2, 2]])),
        return_exceptions=True,
    )

    assert all(isinstance(r, ArithmeticError) for r in results)


async def test_cancelled_request_leaves_batch() -> None:
    recorder, clock = Recorder(), ManualClock()
    batcher = AdaptiveBatcher(4, 1.0, recorder, clock=clock)
    cancelled = asyncio.ensure_future(batcher.predict(request([[1, 1]])))
    kept = asyncio.ensure_future(batcher.predict(request([[2, 2]])))
    await settle()

    cancelled.cancel()
    await settle()
    clock.advance(1.0)
    response = await kept

    assert recorder.calls[0].inputs[0].shape == [1, 2]
    np.testing.assert_array_equal(
        NumpyCodec.decode_output(response.outputs[0]), [[4, 4]]
    )
    assert batcher.statistics.sizes == [1]
