"""A model whose cost is per call, not per row, as with a GPU kernel launch
or a vectorised numpy step: each predict() blocks its worker for 2 ms
whatever the batch size, then doubles the input."""

from __future__ import annotations

import time

from inferpool import MLModel
from inferpool.codecs import NumpyCodec
from inferpool.types import InferenceRequest, InferenceResponse

CALL_SECONDS = 0.002


class PerCallModel(MLModel):
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        array = NumpyCodec.decode_input(payload.inputs[0])
        time.sleep(CALL_SECONDS)
        return InferenceResponse(
            model_name=self.name,
            outputs=[NumpyCodec.encode_output("doubled", array * 2)],
        )
