"""The protocol method that serves a gRPC ModelInfer call next to the model.

The front end hands the serialised `ModelInferRequest` to a worker as raw
bytes; `grpc_infer` parses it, converts it, runs `predict`, and returns the
serialised `ModelInferResponse`. So protobuf parsing and tensor conversion
run on every worker's core instead of the front end's one.
"""

from __future__ import annotations

import pickle

from google.protobuf.message import DecodeError

from ..errors import InvalidRequest
from ..model import MLModel
from ..parallel.transport import OUT_OF_BAND_MIN_BYTES
from ..protocol import _complete_response
from ..registry import protocol_method
from ..types import InferenceRequest
from . import grpc_service_pb2 as pb
from .convert import request_from_proto, response_to_proto

GRPC_INFER = "v2:grpc_infer"


def decode_infer_request(
    body: bytes | memoryview | pickle.PickleBuffer,
) -> tuple[InferenceRequest, bool]:
    """Parse and validate a serialised `ModelInferRequest`; return it as an
    `InferenceRequest` and whether it used raw input contents.

    Raises `InvalidRequest` for bytes that are not a valid request and for
    every problem that `request_from_proto` rejects.
    """
    message = pb.ModelInferRequest()
    try:
        message.ParseFromString(memoryview(body))
    except DecodeError as error:
        raise InvalidRequest(f"Invalid ModelInferRequest: {error}") from None
    return request_from_proto(message), len(message.raw_input_contents) > 0


@protocol_method(GRPC_INFER)
async def grpc_infer(
    model: MLModel, body: bytes | memoryview | pickle.PickleBuffer
) -> bytes | pickle.PickleBuffer:
    """Parse a serialised `ModelInferRequest`, run `predict`, and return the
    serialised `ModelInferResponse`.

    The response carries raw output contents when the request used raw input
    contents (as tritonclient always does), typed contents otherwise. A
    response of `OUT_OF_BAND_MIN_BYTES` or more is wrapped in a
    `pickle.PickleBuffer`, so it crosses back to the front end outside the
    pickle stream.

    Raises `InvalidRequest` for bytes that are not a valid
    `ModelInferRequest` and for every problem that `request_from_proto`
    rejects; whatever `predict` raises passes through.
    """
    request, raw_outputs = decode_infer_request(body)
    response = _complete_response(model, request, await model.predict(request))
    encoded: bytes = response_to_proto(response, raw_outputs).SerializeToString()
    if len(encoded) >= OUT_OF_BAND_MIN_BYTES:
        return pickle.PickleBuffer(encoded)
    return encoded
