"""Codecs between V2 tensors and Python values, keyed by content type.

The content types and class names are MLServer's: "np" (`NumpyCodec`,
`NumpyRequestCodec`), "str" (`StringCodec`, `StringRequestCodec`),
"base64" (`Base64Codec`) and "pd" (`PandasCodec`, which needs pandas only
when used). REST bodies are handled by `inferpool.codecs.rest`.
"""

from __future__ import annotations

from typing import Any

from inferpool.codecs.base import (
    InputCodec,
    RequestCodec,
    SingleInputRequestCodec,
    find_input_codec,
    find_request_codec,
    register_input_codec,
    register_request_codec,
    registered_content_types,
)
from inferpool.codecs.base64 import Base64Codec
from inferpool.codecs.numpy import NumpyCodec, NumpyRequestCodec, to_datatype, to_dtype
from inferpool.codecs.pandas import PandasCodec
from inferpool.codecs.string import StringCodec, StringRequestCodec
from inferpool.errors import InvalidRequest
from inferpool.types import InferenceRequest, RequestInput

__all__ = [
    "Base64Codec",
    "InputCodec",
    "NumpyCodec",
    "NumpyRequestCodec",
    "PandasCodec",
    "RequestCodec",
    "SingleInputRequestCodec",
    "StringCodec",
    "StringRequestCodec",
    "decode_inference_request",
    "decode_request_input",
    "find_input_codec",
    "find_request_codec",
    "register_input_codec",
    "register_request_codec",
    "registered_content_types",
    "to_datatype",
    "to_dtype",
]


def decode_request_input(
    request_input: RequestInput, default_codec: type[InputCodec] | None = None
) -> Any:
    """Decode one input with the codec of its `content_type` parameter.

    Without a content type, uses `default_codec`, else `NumpyCodec`. Raises
    `InvalidRequest` when the content type names no registered input codec.
    """
    parameters = request_input.parameters
    content_type = None if parameters is None else parameters.content_type
    if content_type is None:
        return (default_codec or NumpyCodec).decode_input(request_input)
    codec = find_input_codec(content_type)
    if codec is None:
        known, _ = registered_content_types()
        raise InvalidRequest(
            f"Input {request_input.name!r}: unknown content type "
            f"{content_type!r}, expected one of {', '.join(known)}"
        )
    return codec.decode_input(request_input)


def decode_inference_request(
    request: InferenceRequest, default_codec: type[RequestCodec] | None = None
) -> Any:
    """Decode a whole request with the codec of its `content_type` parameter.

    Without a content type, uses `default_codec`. Without either, returns a
    dict from input name to that input decoded by `decode_request_input`.
    Raises `InvalidRequest` when the content type names no registered
    request codec.
    """
    parameters = request.parameters
    content_type = None if parameters is None else parameters.content_type
    if content_type is not None:
        codec = find_request_codec(content_type)
        if codec is None:
            _, known = registered_content_types()
            raise InvalidRequest(
                f"Unknown request content type {content_type!r}, expected one "
                f"of {', '.join(known)}"
            )
        return codec.decode_request(request)
    if default_codec is not None:
        return default_codec.decode_request(request)
    return {item.name: decode_request_input(item) for item in request.inputs}
