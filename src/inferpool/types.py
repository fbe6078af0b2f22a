"""Types of the V2 inference protocol (KServe Open Inference Protocol).

The names and fields follow `mlserver.types`, so model code written for
MLServer imports them from here unchanged. Every type is a `msgspec.Struct`,
because requests are decoded and encoded on the hot path and msgspec does that
several times faster than pydantic. Structs pickle, so they can be sent to
worker processes.

`RequestInput.data` and `ResponseOutput.data` contain either a numpy array or
a plain (flat or nested) list. Requests decoded by `inferpool.codecs.rest`
always contain an array of the input's dtype and shape. BYTES tensors are
object arrays whose elements are `bytes`.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec
import numpy as np

__all__ = [
    "Datatype",
    "InferenceRequest",
    "InferenceResponse",
    "MetadataModelResponse",
    "MetadataServerResponse",
    "MetadataTensor",
    "ModelState",
    "Parameters",
    "RepositoryIndexRequest",
    "RepositoryIndexResponse",
    "RepositoryIndexResponseItem",
    "RequestInput",
    "RequestOutput",
    "ResponseOutput",
    "State",
    "decode_hook",
    "encode_hook",
]


class Parameters(dict[str, Any]):
    """Parameters of a request, a tensor or a response: a dict with attribute
    access.

    `params.content_type` returns the value of the key ``"content_type"``, or
    None when the key is missing. Any key is allowed and is kept when the
    parameters are encoded again. Names that start with two underscores are
    not looked up as keys, so copy and pickle see an ordinary dict.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"Parameters({dict.__repr__(self)})"


class Datatype(str, enum.Enum):
    """Tensor datatypes of the V2 protocol.

    A member compares equal to its name as a string, so
    `request_input.datatype == "FP32"` is true whether the field contains the
    member or the plain string.
    """

    BOOL = "BOOL"
    UINT8 = "UINT8"
    UINT16 = "UINT16"
    UINT32 = "UINT32"
    UINT64 = "UINT64"
    INT8 = "INT8"
    INT16 = "INT16"
    INT32 = "INT32"
    INT64 = "INT64"
    FP16 = "FP16"
    FP32 = "FP32"
    FP64 = "FP64"
    BYTES = "BYTES"

    def __str__(self) -> str:
        return self.value

    def to_numpy(self) -> np.dtype[Any]:
        """Return the native numpy dtype of this datatype (object for BYTES)."""
        return _DATATYPE_TO_DTYPE[self]

    @property
    def itemsize(self) -> int | None:
        """Size of one element in bytes in the binary tensor format, or None
        for BYTES, whose elements have variable length."""
        if self is Datatype.BYTES:
            return None
        return _DATATYPE_TO_DTYPE[self].itemsize

    @classmethod
    def from_numpy(cls, dtype: np.dtype[Any] | type[Any]) -> Datatype:
        """Return the datatype of a numpy dtype.

        Object, `bytes_` and `str_` dtypes map to BYTES. Raises `ValueError`
        for dtypes that the V2 protocol cannot carry, such as complex numbers
        or datetimes.
        """
        dtype = np.dtype(dtype)
        if dtype.kind in "OSU":
            return cls.BYTES
        try:
            return _DTYPE_TO_DATATYPE[dtype.newbyteorder("=")]
        except KeyError:
            raise ValueError(
                f"numpy dtype {dtype} has no V2 datatype, expected bool, an "
                "integer, a float, bytes, str or object"
            ) from None

    @classmethod
    def parse(cls, name: str) -> Datatype:
        """Return the member called `name`.

        Raises `ValueError` naming the valid datatypes when there is none.
        """
        member = _DATATYPE_BY_NAME.get(name)
        if member is None:
            raise ValueError(
                f"unknown datatype {name!r}, expected one of "
                + ", ".join(_DATATYPE_BY_NAME)
            )
        return member


_DATATYPE_TO_DTYPE: dict[Datatype, np.dtype[Any]] = {
    Datatype.BOOL: np.dtype(np.bool_),
    Datatype.UINT8: np.dtype(np.uint8),
    Datatype.UINT16: np.dtype(np.uint16),
    Datatype.UINT32: np.dtype(np.uint32),
    Datatype.UINT64: np.dtype(np.uint64),
    Datatype.INT8: np.dtype(np.int8),
    Datatype.INT16: np.dtype(np.int16),
    Datatype.INT32: np.dtype(np.int32),
    Datatype.INT64: np.dtype(np.int64),
    Datatype.FP16: np.dtype(np.float16),
    Datatype.FP32: np.dtype(np.float32),
    Datatype.FP64: np.dtype(np.float64),
    Datatype.BYTES: np.dtype(object),
}
_DTYPE_TO_DATATYPE: dict[np.dtype[Any], Datatype] = {
    dtype: datatype
    for datatype, dtype in _DATATYPE_TO_DTYPE.items()
    if datatype is not Datatype.BYTES
}
_DATATYPE_BY_NAME: dict[str, Datatype] = {member.value: member for member in Datatype}


class ModelState(str, enum.Enum):
    """State of a model version in the repository index."""

    UNKNOWN = "UNKNOWN"
    READY = "READY"
    UNAVAILABLE = "UNAVAILABLE"
    LOADING = "LOADING"
    UNLOADING = "UNLOADING"

    def __str__(self) -> str:
        return self.value


# MLServer's name for the same enum.
State = ModelState


class RequestInput(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An input tensor of an inference request.

    `data` contains a numpy array after decoding, or whatever list or array
    the caller passed when building the input by hand.
    """

    name: str
    shape: list[int]
    datatype: str
    data: Any
    parameters: Parameters | None = None


class RequestOutput(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An output that the client requests, with per-output parameters such
    as Triton's `binary_data`."""

    name: str
    parameters: Parameters | None = None


class InferenceRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An inference request: its id, parameters, inputs and requested outputs."""

    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


class ResponseOutput(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An output tensor of an inference response.

    `data` is a numpy array or a list. The REST encoder writes an array as a
    flat list in row-major order.
    """

    name: str
    shape: list[int]
    datatype: str
    data: Any
    parameters: Parameters | None = None


class InferenceResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An inference response for one model version."""

    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class MetadataTensor(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Name, datatype and shape of a model input or output in its metadata.

    A dimension of -1 means that the model accepts any size there.
    """

    name: str
    datatype: str
    shape: list[int]
    parameters: Parameters | None = None


class MetadataModelResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Model metadata: name, versions, platform and tensor signatures."""

    name: str
    versions: list[str] | None = None
    # Required by the V2 protocol, so it has no default to omit.
    platform: str
    inputs: list[MetadataTensor] | None = None
    outputs: list[MetadataTensor] | None = None
    parameters: Parameters | None = None


class MetadataServerResponse(msgspec.Struct, kw_only=True):
    """Server metadata: name, version and the protocol extensions it supports."""

    name: str
    version: str
    extensions: list[str] = msgspec.field(default_factory=list)


class RepositoryIndexRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Body of a repository index request. `ready=True` lists only models
    that are ready to serve."""

    ready: bool | None = None


class RepositoryIndexResponseItem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One model version in the repository index, with its state and, when
    it is not ready, the reason."""

    name: str
    version: str | None = None
    state: ModelState
    reason: str = ""


# MLServer defines this as a root model around a list. A plain list type
# encodes to the same JSON array, and `RepositoryIndexResponse(items)` builds one.
RepositoryIndexResponse = list[RepositoryIndexResponseItem]


def encode_hook(obj: Any) -> Any:
    """Convert values that msgspec cannot encode: numpy arrays and scalars.

    Pass as `enc_hook` to a msgspec encoder. An array becomes a flat list in
    row-major order. `bytes` elements of an object array become `str`
    (UTF-8), because JSON has no byte strings. Raises `TypeError` for any
    other type.
    """
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "OS":
            return [_bytes_to_str(item) for item in obj.ravel().tolist()]
        return obj.ravel().tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode objects of type {type(obj).__name__}")


def decode_hook(type_: type[Any], obj: Any) -> Any:
    """Build `Parameters` from a decoded JSON object.

    Pass as `dec_hook` to a msgspec decoder of any type in this module.
    Raises `TypeError` when the value is not a JSON object, which msgspec
    reports as a `ValidationError` naming the field.
    """
    if type_ is Parameters:
        if not isinstance(obj, dict):
            raise TypeError(f"Expected `object`, got `{type(obj).__name__}`")
        return Parameters(obj)
    raise NotImplementedError(f"cannot decode type {type_!r}")


def _bytes_to_str(item: Any) -> Any:
    if isinstance(item, bytes):
        return item.decode("utf-8")
    return item
