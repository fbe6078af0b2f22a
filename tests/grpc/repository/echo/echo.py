"""A test model that returns every input unchanged as an output of the same
name, and the request's parameters as the response's."""

from __future__ import annotations

from inferpool import MLModel
from inferpool.types import InferenceRequest, InferenceResponse, ResponseOutput


class Echo(MLModel):
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        return InferenceResponse(
            model_name=self.name,
            parameters=payload.parameters,
            outputs=[
                ResponseOutput(
                    name=tensor.name,
                    shape=tensor.shape,
                    datatype=tensor.datatype,
                    data=tensor.data,
                )
                for tensor in payload.inputs
            ],
        )
