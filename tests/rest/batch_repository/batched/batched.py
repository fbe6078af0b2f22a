"""Doubles its input and reports how many rows each predict() call saw."""

from __future__ import annotations

import asyncio

import numpy as np

from inferpool import MLModel
from inferpool.codecs import NumpyCodec
from inferpool.types import InferenceRequest, InferenceResponse


class Batched(MLModel):
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        array = NumpyCodec.decode_input(payload.inputs[0])
        await asyncio.sleep(0.002)
        rows = np.full(array.shape[0], array.shape[0], dtype=np.int64)
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                NumpyCodec.encode_output("doubled", array * 2),
                NumpyCodec.encode_output("rows_in_call", rows),
            ],
        )
