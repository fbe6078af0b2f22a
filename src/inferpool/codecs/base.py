"""Codec base classes and the registry that finds a codec by content type.

A content type is the `content_type` parameter of a request or of one of its
inputs. It names the Python type that the client's tensors represent:
"np" for a numpy array, "str" for a list of strings, "pd" for a pandas
DataFrame. The names and methods match `mlserver.codecs`, so codecs written
for MLServer need only a changed import.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from inferpool.errors import InvalidRequest
from inferpool.types import (
    InferenceRequest,
    InferenceResponse,
    Parameters,
    RequestInput,
    ResponseOutput,
)

__all__ = [
    "InputCodec",
    "RequestCodec",
    "SingleInputRequestCodec",
    "find_input_codec",
    "find_request_codec",
    "register_input_codec",
    "register_request_codec",
]


class InputCodec:
    """Converts between one tensor and a Python value.

    Subclasses set `ContentType` and override the four conversions. Every
    method is a class method, so codecs are used without instances.
    """

    ContentType: ClassVar[str] = ""
    TypeHint: ClassVar[Any] = None

    @classmethod
    def can_encode(cls, payload: Any) -> bool:
        """Return True when this codec can encode `payload`."""
        return False

    @classmethod
    def encode_output(cls, name: str, payload: Any, **kwargs: Any) -> ResponseOutput:
        """Encode `payload` as the response output `name`."""
        raise NotImplementedError(f"{cls.__name__} does not implement encode_output")

    @classmethod
    def decode_output(cls, response_output: ResponseOutput) -> Any:
        """Decode a response output into this codec's Python type."""
        raise NotImplementedError(f"{cls.__name__} does not implement decode_output")

    @classmethod
    def encode_input(cls, name: str, payload: Any, **kwargs: Any) -> RequestInput:
        """Encode `payload` as the request input `name`."""
        raise NotImplementedError(f"{cls.__name__} does not implement encode_input")

    @classmethod
    def decode_input(cls, request_input: RequestInput) -> Any:
        """Decode a request input into this codec's Python type."""
        raise NotImplementedError(f"{cls.__name__} does not implement decode_input")


class RequestCodec:
    """Converts between a whole request or response and a Python value."""

    ContentType: ClassVar[str] = ""
    TypeHint: ClassVar[Any] = None

    @classmethod
    def can_encode(cls, payload: Any) -> bool:
        """Return True when this codec can encode `payload`."""
        return False

    @classmethod
    def encode_response(
        cls,
        model_name: str,
        payload: Any,
        model_version: str | None = None,
        **kwargs: Any,
    ) -> InferenceResponse:
        """Encode `payload` as the response of `model_name`."""
        raise NotImplementedError(f"{cls.__name__} does not implement encode_response")

    @classmethod
    def decode_response(cls, response: InferenceResponse) -> Any:
        """Decode a whole response into this codec's Python type."""
        raise NotImplementedError(f"{cls.__name__} does not implement decode_response")

    @classmethod
    def encode_request(cls, payload: Any, **kwargs: Any) -> InferenceRequest:
        """Encode `payload` as an inference request."""
        raise NotImplementedError(f"{cls.__name__} does not implement encode_request")

    @classmethod
    def decode_request(cls, request: InferenceRequest) -> Any:
        """Decode a whole request into this codec's Python type."""
        raise NotImplementedError(f"{cls.__name__} does not implement decode_request")


class SingleInputRequestCodec(RequestCodec):
    """A request codec for requests and responses with exactly one tensor,
    delegating to the input codec `InputCodec`.

    Encoded tensors are named "input-1" and "output-1", as in MLServer.
    """

    InputCodec: ClassVar[type[InputCodec]]

    @classmethod
    def can_encode(cls, payload: Any) -> bool:
        """Return True when the input codec can encode `payload`."""
        return cls.InputCodec.can_encode(payload)

    @classmethod
    def encode_response(
        cls,
        model_name: str,
        payload: Any,
        model_version: str | None = None,
        **kwargs: Any,
    ) -> InferenceResponse:
        """Encode `payload` as a response whose one output is "output-1"."""
        output = cls.InputCodec.encode_output("output-1", payload, **kwargs)
        return InferenceResponse(
            model_name=model_name,
            model_version=model_version,
            parameters=Parameters(content_type=cls.ContentType),
            outputs=[output],
        )

    @classmethod
    def decode_response(cls, response: InferenceResponse) -> Any:
        """Decode the first output of `response`.

        Raises `ValueError` when the response has no outputs.
        """
        if not response.outputs:
            raise ValueError(f"{cls.__name__} cannot decode a response with no outputs")
        return cls.InputCodec.decode_output(response.outputs[0])

    @classmethod
    def encode_request(cls, payload: Any, **kwargs: Any) -> InferenceRequest:
        """Encode `payload` as a request whose one input is "input-1"."""
        request_input = cls.InputCodec.encode_input("input-1", payload, **kwargs)
        return InferenceRequest(
            parameters=Parameters(content_type=cls.ContentType),
            inputs=[request_input],
        )

    @classmethod
    def decode_request(cls, request: InferenceRequest) -> Any:
        """Decode the only input of `request`.

        Raises `InvalidRequest` when the request has more or fewer than one
        input.
        """
        if len(request.inputs) != 1:
            raise InvalidRequest(
                f"Content type {cls.ContentType!r} expects exactly one input, "
                f"received {len(request.inputs)}"
            )
        return cls.InputCodec.decode_input(request.inputs[0])


_input_codecs: dict[str, type[InputCodec]] = {}
_request_codecs: dict[str, type[RequestCodec]] = {}

_InputCodecType = TypeVar("_InputCodecType", bound=type[InputCodec])
_RequestCodecType = TypeVar("_RequestCodecType", bound=type[RequestCodec])


def register_input_codec(codec: _InputCodecType) -> _InputCodecType:
    """Register an input codec under its `ContentType`, replacing any codec
    registered under the same name. Usable as a class decorator."""
    _input_codecs[codec.ContentType] = codec
    return codec


def register_request_codec(codec: _RequestCodecType) -> _RequestCodecType:
    """Register a request codec under its `ContentType`, replacing any codec
    registered under the same name. Usable as a class decorator."""
    _request_codecs[codec.ContentType] = codec
    return codec


def _find(registry: dict[str, Any], content_type: str | None, payload: Any) -> Any:
    if content_type is not None:
        return registry.get(content_type)
    if payload is not None:
        for codec in registry.values():
            if codec.can_encode(payload):
                return codec
    return None


def find_input_codec(
    content_type: str | None = None, payload: Any = None
) -> type[InputCodec] | None:
    """Return the input codec registered for `content_type`, or else the
    first one that can encode `payload`, or None when there is no match."""
    codec: type[InputCodec] | None = _find(_input_codecs, content_type, payload)
    return codec


def find_request_codec(
    content_type: str | None = None, payload: Any = None
) -> type[RequestCodec] | None:
    """Return the request codec registered for `content_type`, or else the
    first one that can encode `payload`, or None when there is no match."""
    codec: type[RequestCodec] | None = _find(_request_codecs, content_type, payload)
    return codec


def registered_content_types() -> tuple[list[str], list[str]]:
    """Return the content types of the registered input and request codecs."""
    return sorted(_input_codecs), sorted(_request_codecs)
