"""A slow model: each predict() blocks its worker for 200 ms."""

from __future__ import annotations

import time

from inferpool import MLModel
from inferpool.codecs import NumpyCodec
from inferpool.types import InferenceRequest, InferenceResponse


class Sleeper(MLModel):
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        time.sleep(0.2)
        array = NumpyCodec.decode_input(payload.inputs[0])
        return InferenceResponse(
            model_name=self.name, outputs=[NumpyCodec.encode_output("same", array)]
        )
