"""A test model that blocks its worker for 5 ms per request, standing in for
a model that holds the GIL, and returns its first input unchanged."""

from __future__ import annotations

import time

from inferpool import MLModel
from inferpool.types import InferenceRequest, InferenceResponse, ResponseOutput

PREDICT_SECONDS = 0.005


class Sleeper(MLModel):
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        time.sleep(PREDICT_SECONDS)
        tensor = payload.inputs[0]
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                ResponseOutput(
                    name="y",
                    shape=tensor.shape,
                    datatype=tensor.datatype,
                    data=tensor.data,
                )
            ],
        )
