"""The base64 codec (content type "base64"): binary blobs sent as base64 text
in BYTES tensors."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from inferpool.codecs.base import InputCodec, register_input_codec
from inferpool.codecs.numpy import to_ndarray
from inferpool.errors import InvalidRequest
from inferpool.types import Datatype, Parameters, RequestInput, ResponseOutput

__all__ = ["Base64Codec"]


def _encode_blobs(payload: list[bytes]) -> tuple[list[int], np.ndarray[Any, Any]]:
    array = np.empty(len(payload), dtype=object)
    array[:] = [base64.b64encode(item) for item in payload]
    return [len(payload), 1], array.reshape(len(payload), 1)


def _decode_blobs(tensor: RequestInput | ResponseOutput) -> list[bytes]:
    blobs: list[bytes] = []
    for index, item in enumerate(to_ndarray(tensor).ravel().tolist()):
        try:
            blobs.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError) as error:
            raise InvalidRequest(
                f"Tensor {tensor.name!r}: element {index} is not valid base64: {error}"
            ) from None
    return blobs


@register_input_codec
class Base64Codec(InputCodec):
    """Codec between a BYTES tensor of base64 text and a list of `bytes`.

    Encoding gives shape `[len(payload), 1]`. Decoding flattens any shape in
    row-major order and rejects characters outside the base64 alphabet.
    """

    ContentType = "base64"
    TypeHint = list[bytes]

    @classmethod
    def can_encode(cls, payload: Any) -> bool:
        """Return True for a list whose elements are all `bytes`."""
        return isinstance(payload, list) and all(
            isinstance(item, bytes) for item in payload
        )

    @classmethod
    def encode_output(
        cls, name: str, payload: list[bytes], **kwargs: Any
    ) -> ResponseOutput:
        """Encode blobs as a BYTES response output of base64 text."""
        shape, data = _encode_blobs(payload)
        return ResponseOutput(
            name=name,
            shape=shape,
            datatype=Datatype.BYTES,
            data=data,
            parameters=Parameters(content_type=cls.ContentType),
        )

    @classmethod
    def decode_output(cls, response_output: ResponseOutput) -> list[bytes]:
        """Decode a BYTES response output of base64 text.

        Raises `InvalidRequest` for an element that is not valid base64.
        """
        return _decode_blobs(response_output)

    @classmethod
    def encode_input(
        cls, name: str, payload: list[bytes], **kwargs: Any
    ) -> RequestInput:
        """Encode blobs as a BYTES request input of base64 text."""
        shape, data = _encode_blobs(payload)
        return RequestInput(
            name=name,
            shape=shape,
            datatype=Datatype.BYTES,
            data=data,
            parameters=Parameters(content_type=cls.ContentType),
        )

    @classmethod
    def decode_input(cls, request_input: RequestInput) -> list[bytes]:
        """Decode a BYTES request input of base64 text.

        Raises `InvalidRequest` for an element that is not valid base64.
        """
        return _decode_blobs(request_input)
