"""A test model whose predict always raises an exception of its own class."""

from __future__ import annotations

from inferpool import MLModel
from inferpool.types import InferenceRequest, InferenceResponse


class CalibrationError(Exception):
    """Raised by the failing test model."""


class Failing(MLModel):
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        raise CalibrationError("sensor offset is not calibrated")
