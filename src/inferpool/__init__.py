"""inferpool: a V2 inference protocol server for Python models, running them
in a pool of worker processes."""

from __future__ import annotations

from .errors import (
    InferpoolError,
    InvalidRequest,
    ModelError,
    ModelLoadError,
    ModelNotFound,
    ModelNotReady,
    PayloadTooLarge,
    RequestTimeout,
    ServerOverloaded,
)
from .model import MLModel
from .settings import ModelParameters, ModelSettings, Settings

__version__ = "0.1.0"

__all__ = [
    "InferpoolError",
    "InvalidRequest",
    "MLModel",
    "ModelError",
    "ModelLoadError",
    "ModelNotFound",
    "ModelNotReady",
    "ModelParameters",
    "ModelSettings",
    "PayloadTooLarge",
    "RequestTimeout",
    "ServerOverloaded",
    "Settings",
    "__version__",
]
