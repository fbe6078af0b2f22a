"""Helpers shared by the built-in runtimes: finding the model file, importing
the optional library, decoding the features and encoding each requested output.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from inferpool.codecs import NumpyCodec, find_request_codec, registered_content_types
from inferpool.errors import InferpoolError, InvalidRequest, ModelLoadError
from inferpool.model import MLModel
from inferpool.types import InferenceRequest, InferenceResponse, ResponseOutput

__all__ = [
    "ModelFileRuntime",
    "decode_features",
    "encode_prediction",
    "find_model_file",
    "import_library",
    "select_outputs",
]

# The content type of the request codec that builds a pandas DataFrame with
# one column per input.
PANDAS_CONTENT_TYPE = "pd"


def import_library(model: MLModel, module_name: str, extra: str) -> ModuleType:
    """Import the library that a runtime needs, at load time.

    Raises `ModelLoadError` naming the model and the extra to install when
    the import fails. LightGBM and XGBoost also fail with `OSError` when a
    shared library such as libgomp is missing.
    """
    try:
        return importlib.import_module(module_name)
    except (ImportError, OSError) as exc:
        raise ModelLoadError(
            f"Model {model.name!r} needs the Python package {module_name!r}, which "
            f"could not be imported ({type(exc).__name__}: {exc}). Install it with "
            f"pip install 'inferpool[{extra}]'"
        ) from exc


def find_model_file(model: MLModel, well_known_names: Sequence[str]) -> Path:
    """Return the model file that `parameters.uri` names.

    A relative URI is resolved against the model's folder. When the URI is a
    folder, or is unset, the first of `well_known_names` found in that folder
    (or in the model's folder) is used. Raises `ModelLoadError` naming the
    model and the path when no file is found.
    """
    settings = model.settings
    uri = settings.resolve_uri()
    location = uri if uri is not None else settings.source_dir
    if location is None:
        raise ModelLoadError(
            f"Model {model.name!r} has no parameters.uri and no model folder, so "
            f"no model file ({', '.join(well_known_names)}) can be found"
        )

    path = Path(location)
    if path.is_dir():
        for name in well_known_names:
            candidate = path / name
            if candidate.is_file():
                return candidate
        raise ModelLoadError(
            f"Model {model.name!r}: no model file in folder {str(path)!r}, "
            f"expected one of {', '.join(well_known_names)}. Set parameters.uri "
            "to the model file"
        )
    if path.is_file():
        return path
    raise ModelLoadError(
        f"Model {model.name!r}: model file {str(path)!r} not found "
        f"(parameters.uri is {settings.parameters.uri!r})"
    )


def decode_features(model: MLModel, payload: InferenceRequest) -> Any:
    """Decode a request into the features that the model predicts on.

    Without a content type, the request must have exactly one input, which
    becomes a numpy array. A content type in the request's parameters, or
    else in the model's `parameters.content_type`, selects a request codec:
    "pd" builds a pandas DataFrame with one column per input. Raises
    `InvalidRequest` naming the model and the problem.
    """
    content_type = None
    if payload.parameters is not None:
        content_type = payload.parameters.get("content_type")
    if content_type is None:
        content_type = model.settings.parameters.content_type

    if content_type is not None and content_type != NumpyCodec.ContentType:
        codec = find_request_codec(content_type)
        if codec is None:
            _, known = registered_content_types()
            raise InvalidRequest(
                f"Model {model.name!r}: unknown request content type "
                f"{content_type!r}, expected one of {', '.join(known)}"
            )
        return codec.decode_request(payload)

    if len(payload.inputs) != 1:
        names = ", ".join(repr(item.name) for item in payload.inputs) or "none"
        hint = ""
        if find_request_codec(PANDAS_CONTENT_TYPE) is not None:
            hint = (
                ". To send one input per column, set the request parameter "
                f"content_type to {PANDAS_CONTENT_TYPE!r}"
            )
        raise InvalidRequest(
            f"Model {model.name!r} expects exactly one input, received "
            f"{len(payload.inputs)} ({names}){hint}"
        )
    return NumpyCodec.decode_input(payload.inputs[0])


def is_dataframe(value: Any) -> bool:
    """Return True for a pandas DataFrame, without importing pandas."""
    return type(value).__name__ == "DataFrame" and hasattr(value, "columns")


def select_outputs(
    model: MLModel, payload: InferenceRequest, available: Sequence[str]
) -> list[str]:
    """Return the names of the outputs to compute for a request.

    These are the outputs that the request names, without repeats, or the
    first of `available` when it names none. Raises `InvalidRequest` naming
    the unknown output and the valid ones.
    """
    if not payload.outputs:
        return [available[0]]
    names = list(dict.fromkeys(output.name for output in payload.outputs))
    for name in names:
        if name not in available:
            raise InvalidRequest(
                f"Model {model.name!r} has no output {name!r}. Valid outputs: "
                f"{', '.join(available)}"
            )
    return names


def encode_prediction(model: MLModel, name: str, value: Any) -> ResponseOutput:
    """Encode what a model method returned as the response output `name`.

    Sparse matrices are made dense. Object arrays, such as string class
    labels, become BYTES tensors. Raises `InferpoolError` (a 500) when the
    array's dtype has no V2 datatype.
    """
    if hasattr(value, "toarray"):
        value = value.toarray()
    array = np.asarray(value)
    if array.dtype.kind == "O":
        array = _object_array_to_bytes(array)
    try:
        return NumpyCodec.encode_output(name, array)
    except ValueError as exc:
        raise InferpoolError(
            f"Model {model.name!r}: failed to encode output {name!r}: {exc}"
        ) from exc


def _object_array_to_bytes(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    flat = np.empty(array.size, dtype=object)
    flat[:] = [
        item if isinstance(item, bytes) else str(item).encode("utf-8")
        for item in array.ravel().tolist()
    ]
    return flat.reshape(array.shape)


Method = Callable[[Any], Any]


class ModelFileRuntime(MLModel):
    """Base of the built-in runtimes: a model loaded from one file that
    computes each requested output by calling one method on the features.

    A subclass's `load()` fills `self.methods` with the available outputs in
    order, default output first, and may override `prepare_features`.
    `predict` raises `InvalidRequest` for a malformed request, an unknown
    output name, or features that the model rejects with one of
    `request_errors`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.methods: dict[str, Method] = {}
        # Exceptions that a model method raises when the features do not fit
        # the model (wrong number of columns, a 1-D array, strings in a float
        # column). They become 400 responses instead of 500s.
        self.request_errors: tuple[type[BaseException], ...] = (ValueError, TypeError)

    def prepare_features(self, features: Any) -> Any:
        """Adapt decoded features to the model. The default returns them as is."""
        return features

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        features = self.prepare_features(decode_features(self, payload))
        outputs = []
        for name in select_outputs(self, payload, list(self.methods)):
            try:
                value = self.methods[name](features)
            except self.request_errors as exc:
                raise InvalidRequest(
                    f"Model {self.name!r} failed to compute output {name!r} for "
                    f"this input: {type(exc).__name__}: {exc}"
                ) from exc
            outputs.append(encode_prediction(self, name, value))
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            id=payload.id,
            outputs=outputs,
        )
