"""The numpy codec (content type "np"): tensors as numpy arrays."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from inferpool.codecs.base import (
    InputCodec,
    SingleInputRequestCodec,
    register_input_codec,
    register_request_codec,
)
from inferpool.errors import InvalidRequest
from inferpool.types import Datatype, Parameters, RequestInput, ResponseOutput

__all__ = ["NumpyCodec", "NumpyRequestCodec", "to_datatype", "to_dtype", "to_ndarray"]


def to_dtype(tensor: RequestInput | ResponseOutput) -> np.dtype[Any]:
    """Return the numpy dtype of a tensor's datatype (object for BYTES).

    Raises `InvalidRequest` naming the tensor when the datatype is unknown.
    """
    return _datatype_of(tensor).to_numpy()


def to_datatype(dtype: np.dtype[Any] | type[Any]) -> Datatype:
    """Return the V2 datatype of a numpy dtype.

    Object, `bytes_` and `str_` dtypes map to BYTES. Raises `ValueError` for
    dtypes the protocol cannot carry, such as complex numbers.
    """
    return Datatype.from_numpy(dtype)


def _datatype_of(tensor: RequestInput | ResponseOutput) -> Datatype:
    if isinstance(tensor.datatype, Datatype):
        return tensor.datatype
    try:
        return Datatype.parse(tensor.datatype)
    except ValueError as error:
        raise InvalidRequest(f"Tensor {tensor.name!r}: {error}") from None


def to_ndarray(tensor: RequestInput | ResponseOutput) -> np.ndarray[Any, Any]:
    """Return a tensor's data as an array of its datatype and shape.

    Data that is already such an array, as after `decode_rest_request`, is
    returned as is without a copy. Other arrays and (flat or nested) lists
    are converted. BYTES data becomes an object array of `bytes`, with `str`
    elements encoded as UTF-8.

    Raises `InvalidRequest` naming the tensor when the data cannot be
    converted to the datatype or has a different number of elements than
    the shape.
    """
    datatype = _datatype_of(tensor)
    shape = tuple(tensor.shape)
    data = tensor.data
    if (
        isinstance(data, np.ndarray)
        and data.shape == shape
        and (data.dtype == datatype.to_numpy())
    ):
        return data

    if datatype is Datatype.BYTES:
        array = _to_bytes_array(tensor.name, data)
    else:
        try:
            array = np.asarray(data, dtype=datatype.to_numpy())
        except (TypeError, ValueError, OverflowError) as error:
            raise InvalidRequest(
                f"Tensor {tensor.name!r}: data cannot be converted to "
                f"{datatype.value}: {error}"
            ) from None

    count = math.prod(shape)
    if array.size != count:
        raise InvalidRequest(
            f"Tensor {tensor.name!r}: shape {list(shape)} needs {count} elements "
            f"but data has {array.size}"
        )
    return array.reshape(shape)


def _to_bytes_array(name: str, data: Any) -> np.ndarray[Any, Any]:
    try:
        flat = np.asarray(data, dtype=object).ravel()
    except ValueError as error:
        raise InvalidRequest(f"Tensor {name!r}: invalid BYTES data: {error}") from None
    array = np.empty(flat.size, dtype=object)
    for index, item in enumerate(flat.tolist()):
        if isinstance(item, str):
            item = item.encode("utf-8")
        elif not isinstance(item, bytes):
            raise InvalidRequest(
                f"Tensor {name!r}: BYTES element {index} must be bytes or str, "
                f"received {type(item).__name__}"
            )
        array[index] = item
    return array


def _to_wire_array(payload: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Return `payload` with `str_` and `bytes_` arrays turned into object
    arrays of `bytes`, the form every BYTES tensor takes in inferpool."""
    if payload.dtype.kind not in "SU":
        return payload
    flat = payload.ravel().tolist()
    array = np.empty(len(flat), dtype=object)
    array[:] = [
        item.encode("utf-8") if isinstance(item, str) else item for item in flat
    ]
    return array.reshape(payload.shape)


@register_input_codec
class NumpyCodec(InputCodec):
    """Codec between one tensor and a numpy array of the same shape.

    Encoding keeps the array itself as the tensor's data, without flattening
    or copying, except that `str_` and `bytes_` arrays become object arrays
    of `bytes` with datatype BYTES.
    """

    ContentType = "np"
    TypeHint = np.ndarray

    @classmethod
    def can_encode(cls, payload: Any) -> bool:
        """Return True for numpy arrays."""
        return isinstance(payload, np.ndarray)

    @classmethod
    def encode_output(
        cls, name: str, payload: np.ndarray[Any, Any], **kwargs: Any
    ) -> ResponseOutput:
        """Encode an array as a response output.

        Raises `ValueError` for dtypes the protocol cannot carry.
        """
        return ResponseOutput(
            name=name,
            shape=list(payload.shape),
            datatype=to_datatype(payload.dtype),
            data=_to_wire_array(payload),
            parameters=Parameters(content_type=cls.ContentType),
        )

    @classmethod
    def decode_output(cls, response_output: ResponseOutput) -> np.ndarray[Any, Any]:
        """Decode a response output into an array of its datatype and shape.

        Raises `InvalidRequest` when the data disagrees with the shape or
        the datatype.
        """
        return to_ndarray(response_output)

    @classmethod
    def encode_input(
        cls, name: str, payload: np.ndarray[Any, Any], **kwargs: Any
    ) -> RequestInput:
        """Encode an array as a request input.

        Raises `ValueError` for dtypes the protocol cannot carry.
        """
        return RequestInput(
            name=name,
            shape=list(payload.shape),
            datatype=to_datatype(payload.dtype),
            data=_to_wire_array(payload),
            parameters=Parameters(content_type=cls.ContentType),
        )

    @classmethod
    def decode_input(cls, request_input: RequestInput) -> np.ndarray[Any, Any]:
        """Decode a request input into an array of its datatype and shape.

        Returns the input's own array, without a copy, when it already has
        the right dtype and shape. Raises `InvalidRequest` when the data
        disagrees with the shape or the datatype.
        """
        return to_ndarray(request_input)


@register_request_codec
class NumpyRequestCodec(SingleInputRequestCodec):
    """Request codec for models that take and return a single numpy array."""

    ContentType = NumpyCodec.ContentType
    TypeHint = np.ndarray
    InputCodec = NumpyCodec
