"""Sleeps for `parameters.sleep` seconds (default 0.2) in a blocking call."""

from __future__ import annotations

import time

from inferpool import MLModel
from inferpool.codecs import NumpyCodec
from inferpool.types import InferenceRequest, InferenceResponse


class Sleeper(MLModel):
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        time.sleep(float((payload.parameters or {}).get("sleep", 0.2)))
        array = NumpyCodec.decode_input(payload.inputs[0])
        return InferenceResponse(
            model_name=self.name, outputs=[NumpyCodec.encode_output("same", array)]
        )
