"""Returns its version and a load counter; loading takes 0.3 s so that a
reload has a window in which requests must keep succeeding."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np

from inferpool import MLModel
from inferpool.codecs import NumpyCodec, StringCodec
from inferpool.types import InferenceRequest, InferenceResponse

_loads = itertools.count(1)


class Versioned(MLModel):
    async def load(self) -> bool:
        await asyncio.sleep(
            float(self.settings.parameters.extra.get("load_seconds", 0))
        )
        self.generation = next(_loads)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        array = NumpyCodec.decode_input(payload.inputs[0])
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                NumpyCodec.encode_output("same", array),
                StringCodec.encode_output("version", [self.version or ""]),
                NumpyCodec.encode_output(
                    "generation", np.array([self.generation], dtype=np.int64)
                ),
            ],
        )
