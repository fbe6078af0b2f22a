"""A model that takes `parameters.extra.load_seconds` to load."""

from __future__ import annotations

import asyncio

from inferpool import MLModel
from inferpool.codecs import NumpyCodec
from inferpool.types import InferenceRequest, InferenceResponse


class Late(MLModel):
    async def load(self) -> bool:
        await asyncio.sleep(
            float(self.settings.parameters.extra.get("load_seconds", 2))
        )
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        seconds = float((payload.parameters or {}).get("sleep", 0))
        await asyncio.sleep(seconds)
        array = NumpyCodec.decode_input(payload.inputs[0])
        return InferenceResponse(
            model_name=self.name, outputs=[NumpyCodec.encode_output("same", array)]
        )
