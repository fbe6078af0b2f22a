"""Protocol methods: request decoding, `predict` and response encoding, run
wherever the model runs.

The front end sends a REST body to a worker as raw bytes; the worker decodes
and validates it, calls the model, and encodes the response. That spreads
the JSON work over every worker instead of one front-end core, which is what
decides throughput for small models. A malformed body fails in the worker
with `InvalidRequest`, which reaches the client as a 400 and leaves the
worker serving.
"""

from __future__ import annotations

from typing import Any

from .codecs.rest import decode_rest_request, encode_rest_response
from .errors import InferpoolError
from .model import MLModel
from .registry import protocol_method
from .types import InferenceRequest, InferenceResponse

REST_INFER = "v2:rest_infer"
INFER = "v2:infer"


def _complete_response(
    model: MLModel, request: InferenceRequest, response: Any
) -> InferenceResponse:
    if not isinstance(response, InferenceResponse):
        raise InferpoolError(
            f"Model {model.name!r} returned {type(response).__name__} from predict(), "
            "expected InferenceResponse"
        )
    if not response.model_name:
        response.model_name = model.name
    if response.model_version is None and model.version:
        response.model_version = model.version
    if response.id is None and request.id is not None:
        response.id = request.id
    return response


@protocol_method(INFER)
async def infer(model: MLModel, request: InferenceRequest) -> InferenceResponse:
    """Run `predict` on a decoded request and fill in the response's model
    name, version and request id where the model left them out."""
    response = await model.predict(request)
    return _complete_response(model, request, response)


@protocol_method(REST_INFER)
async def rest_infer(
    model: MLModel, body: bytes | memoryview, header_length: int | None
) -> tuple[bytes, dict[str, str]]:
    """Decode a REST inference body, run `predict` and encode the response.

    Returns the response body and the headers it needs (content type and,
    for binary outputs, `Inference-Header-Content-Length`). Raises
    `InvalidRequest` for a malformed body.
    """
    request = decode_rest_request(body, header_length)
    response = await model.predict(request)
    response = _complete_response(model, request, response)
    return encode_rest_response(response, request)


import inferpool.grpc.methods  # noqa: E402, F401 - registers "v2:grpc_infer" (gRPC ModelInfer)
