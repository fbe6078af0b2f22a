"""A model that sleeps for `parameters.sleep` seconds, for drain tests."""

from __future__ import annotations

import asyncio

from inferpool import MLModel
from inferpool.codecs import NumpyCodec
from inferpool.types import InferenceRequest, InferenceResponse


class Slow(MLModel):
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        seconds = float((payload.parameters or {}).get("sleep", 0.5))
        await asyncio.sleep(seconds)
        array = NumpyCodec.decode_input(payload.inputs[0])
        return InferenceResponse(
            model_name=self.name, outputs=[NumpyCodec.encode_output("same", array)]
        )
