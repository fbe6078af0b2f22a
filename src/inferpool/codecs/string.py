"""The string codec (content type "str"): BYTES tensors as lists of `str`."""

from __future__ import annotations

from typing import Any

import numpy as np

from inferpool.codecs.base import (
    InputCodec,
    SingleInputRequestCodec,
    register_input_codec,
    register_request_codec,
)
from inferpool.codecs.numpy import to_ndarray
from inferpool.errors import InvalidRequest
from inferpool.types import Datatype, Parameters, RequestInput, ResponseOutput

__all__ = ["StringCodec", "StringRequestCodec"]


def _encode_strings(payload: list[str]) -> tuple[list[int], np.ndarray[Any, Any]]:
    array = np.empty(len(payload), dtype=object)
    array[:] = [
        item.encode("utf-8") if isinstance(item, str) else item for item in payload
    ]
    # One string per row, the shape MLServer gives string tensors.
    return [len(payload), 1], array.reshape(len(payload), 1)


def _decode_strings(tensor: RequestInput | ResponseOutput) -> list[str]:
    flat = to_ndarray(tensor).ravel().tolist()
    strings: list[str] = []
    for index, item in enumerate(flat):
        if isinstance(item, bytes):
            try:
                item = item.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InvalidRequest(
                    f"Tensor {tensor.name!r}: element {index} is not valid UTF-8 "
                    f"({error.reason} at byte {error.start})"
                ) from None
        strings.append(str(item))
    return strings


@register_input_codec
class StringCodec(InputCodec):
    """Codec between a BYTES tensor and a list of `str`, in UTF-8.

    Encoding gives shape `[len(payload), 1]`. Decoding flattens any shape
    in row-major order.
    """

    ContentType = "str"
    TypeHint = list[str]

    @classmethod
    def can_encode(cls, payload: Any) -> bool:
        """Return True for a list whose elements are all `str`."""
        return isinstance(payload, list) and all(
            isinstance(item, str) for item in payload
        )

    @classmethod
    def encode_output(
        cls, name: str, payload: list[str], **kwargs: Any
    ) -> ResponseOutput:
        """Encode strings as a BYTES response output."""
        shape, data = _encode_strings(payload)
        return ResponseOutput(
            name=name,
            shape=shape,
            datatype=Datatype.BYTES,
            data=data,
            parameters=Parameters(content_type=cls.ContentType),
        )

    @classmethod
    def decode_output(cls, response_output: ResponseOutput) -> list[str]:
        """Decode a BYTES response output into strings.

        Raises `InvalidRequest` for an element that is not valid UTF-8.
        """
        return _decode_strings(response_output)

    @classmethod
    def encode_input(cls, name: str, payload: list[str], **kwargs: Any) -> RequestInput:
        """Encode strings as a BYTES request input."""
        shape, data = _encode_strings(payload)
        return RequestInput(
            name=name,
            shape=shape,
            datatype=Datatype.BYTES,
            data=data,
            parameters=Parameters(content_type=cls.ContentType),
        )

    @classmethod
    def decode_input(cls, request_input: RequestInput) -> list[str]:
        """Decode a BYTES request input into strings.

        Raises `InvalidRequest` for an element that is not valid UTF-8.
        """
        return _decode_strings(request_input)


@register_request_codec
class StringRequestCodec(SingleInputRequestCodec):
    """Request codec for models that take and return a single list of strings."""

    ContentType = StringCodec.ContentType
    TypeHint = list[str]
    InputCodec = StringCodec
