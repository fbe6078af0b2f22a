"""A test model that returns every input unchanged as an output of the same
name, whatever its datatype and shape, so that malformed input reaches only
the server's decoders and encoders, never a model error."""

from __future__ import annotations

from inferpool import MLModel
from inferpool.types import InferenceRequest, InferenceResponse, ResponseOutput


class Echo(MLModel):
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        return InferenceResponse(
            model_name=self.name,
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
