"""Sleeps asynchronously for `parameters.sleep` seconds, then echoes."""

from __future__ import annotations

import asyncio

from inferpool import MLModel
from inferpool.codecs import NumpyCodec
from inferpool.types import InferenceRequest, InferenceResponse


class Napper(MLModel):
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        await asyncio.sleep(float((payload.parameters or {}).get("sleep", 0)))
        array = NumpyCodec.decode_input(payload.inputs[0])
        return InferenceResponse(
            model_name=self.name, outputs=[NumpyCodec.encode_output("same", array)]
        )
