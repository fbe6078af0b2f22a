"""A custom model: the smallest complete example of `inferpool.MLModel`.

inferpool imports this module because `model-settings.json` beside it names
`doubler_model.DoublerModel`, and the model's folder is on the import path.
"""

from __future__ import annotations

from inferpool import MLModel
from inferpool.codecs import NumpyCodec, StringCodec
from inferpool.errors import InvalidRequest
from inferpool.types import InferenceRequest, InferenceResponse


class DoublerModel(MLModel):
    """Doubles a numeric tensor and describes what it did.

    Input: one numeric tensor of any name and shape. Outputs: `doubled`, the
    input times two with the same shape and datatype, and `summary`, one
    string. Raises `InvalidRequest` (a 400) for any other request.
    """

    async def load(self) -> bool:
        # A real model reads its weights here, for example from
        # self.settings.resolve_uri(). This one has none.
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        if len(payload.inputs) != 1:
            raise InvalidRequest(
                f"Model {self.name!r} expects one input, received {len(payload.inputs)}"
            )
        request_input = payload.inputs[0]
        numbers = NumpyCodec.decode_input(request_input)
        # Booleans and strings (BYTES) cannot be doubled.
        if numbers.dtype.kind not in "iuf":
            raise InvalidRequest(
                f"Model {self.name!r}: input {request_input.name!r} must be "
                f"numeric, received {request_input.datatype}"
            )

        # A Python int keeps the array's dtype, so FP32 in gives FP32 out.
        doubled = numbers * 2
        summary = f"doubled {numbers.size} values of input {request_input.name!r}"
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            id=payload.id,
            outputs=[
                NumpyCodec.encode_output("doubled", doubled),
                StringCodec.encode_output("summary", [summary]),
            ],
        )
