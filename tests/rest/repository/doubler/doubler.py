"""A custom model for the REST tests: doubles its FP32 input."""

from __future__ import annotations

import asyncio

from inferpool import MLModel
from inferpool.codecs import NumpyCodec
from inferpool.types import InferenceRequest, InferenceResponse


class Doubler(MLModel):
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        array = NumpyCodec.decode_input(payload.inputs[0])
        if payload.parameters and payload.parameters.get("sleep"):
            await asyncio.sleep(float(payload.parameters["sleep"]))
        if payload.parameters and payload.parameters.get("raise"):
            raise ArithmeticError(str(payload.parameters["raise"]))
        return InferenceResponse(
            model_name=self.name,
            outputs=[NumpyCodec.encode_output("doubled", array * 2)],
        )
