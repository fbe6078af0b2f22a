"""Fixtures shared by the runtime tests: model folders and requests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferpool.codecs import NumpyCodec
from inferpool.settings import ModelSettings
from inferpool.types import InferenceRequest, RequestOutput

WriteSettings = Callable[..., ModelSettings]


@pytest.fixture
def write_settings(tmp_path: Path) -> WriteSettings:
    """Return a function that writes `model-settings.json` into a model
    folder under tmp_path and reads it back with `ModelSettings.from_file`.

    Keyword arguments become top-level fields; `uri` goes to `parameters`
    and is left out when None.
    """

    def write(
        folder: Path, implementation: str, uri: str | None = None, **fields: Any
    ) -> ModelSettings:
        folder.mkdir(parents=True, exist_ok=True)
        raw: dict[str, Any] = {"name": folder.name, "implementation": implementation}
        if uri is not None:
            raw["parameters"] = {"uri": uri}
        raw.update(fields)
        path = folder / "model-settings.json"
        path.write_text(json.dumps(raw))
        return ModelSettings.from_file(path)

    return write


def make_request(
    features: np.ndarray[Any, Any], outputs: list[str] | None = None
) -> InferenceRequest:
    """Build a request with one input, `features`, asking for `outputs`."""
    return InferenceRequest(
        inputs=[NumpyCodec.encode_input("input-0", features)],
        outputs=None
        if outputs is None
        else [RequestOutput(name=name) for name in outputs],
    )


@pytest.fixture
def request_for() -> Callable[..., InferenceRequest]:
    """Return `make_request`, for building requests from arrays."""
    return make_request
