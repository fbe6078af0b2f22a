"""Bodies built and parsed by tritonclient's HTTP client, without a server:
`generate_request_body` and `parse_response_body` are the functions that
`InferenceServerClient.infer` uses around its HTTP call."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from inferpool.codecs.rest import decode_rest_request, encode_rest_response
from inferpool.rest.binary import HEADER_LENGTH_HEADER
from inferpool.types import InferenceResponse, ResponseOutput

httpclient = pytest.importorskip("tritonclient.http")

ARRAYS: dict[str, np.ndarray[Any, Any]] = {
    "BOOL": np.array([[True, False], [False, True]]),
    "UINT8": np.array([[0, 255], [1, 2]], dtype=np.uint8),
    "UINT16": np.array([[0, 65535], [1, 2]], dtype=np.uint16),
    "UINT32": np.array([[0, 2**32 - 1], [1, 2]], dtype=np.uint32),
    "UINT64": np.array([[0, 2**64 - 1], [1, 2]], dtype=np.uint64),
    "INT8": np.array([[-128, 127], [1, 2]], dtype=np.int8),
    "INT16": np.array([[-(2**15), 2**15 - 1], [1, 2]], dtype=np.int16),
    "INT32": np.array([[-(2**31), 2**31 - 1], [1, 2]], dtype=np.int32),
    "INT64": np.array([[-(2**63), 2**63 - 1], [1, 2]], dtype=np.int64),
    "FP16": np.array([[-65504, 0.333], [1e-4, 2]], dtype=np.float16),
    "FP32": np.array([[5.1, 3.5], [1.4, 0.2]], dtype=np.float32),
    "FP64": np.array([[5.1, 3.5], [1.4, 1e-300]], dtype=np.float64),
    "BYTES": np.array([[b"ab", b""], ["é".encode(), b"z"]], dtype=object),
}


def build_body(binary_data: bool) -> tuple[bytes, int | None]:
    inputs = []
    for datatype, array in ARRAYS.items():
        infer_input = httpclient.InferInput(
            datatype.lower(), list(array.shape), datatype
        )
        infer_input.set_data_from_numpy(array, binary_data=binary_data)
        inputs.append(infer_input)
    body, header_length = httpclient.InferenceServerClient.generate_request_body(
        inputs, request_id="req-7"
    )
    return body, header_length


@pytest.mark.parametrize("binary_data", [False, True], ids=["json", "binary"])
def test_decode_tritonclient_request(binary_data: bool) -> None:
    body, header_length = build_body(binary_data)
    assert (header_length is not None) is binary_data
    request = decode_rest_request(body, header_length)
    assert request.id == "req-7"
    assert [item.name for item in request.inputs] == [name.lower() for name in ARRAYS]
    for request_input in request.inputs:
        expected = ARRAYS[request_input.datatype]
        data = request_input.data
        assert isinstance(data, np.ndarray)
        assert data.shape == expected.shape
        assert data.dtype == expected.dtype
        assert data.tolist() == expected.tolist()


def test_decode_tritonclient_requested_outputs() -> None:
    infer_input = httpclient.InferInput("x", [1, 4], "FP32")
    infer_input.set_data_from_numpy(np.ones((1, 4), np.float32), binary_data=False)
    outputs = [
        httpclient.InferRequestedOutput("a", binary_data=True),
        httpclient.InferRequestedOutput("b", binary_data=False),
    ]
    body, header_length = httpclient.InferenceServerClient.generate_request_body(
        [infer_input], outputs=outputs
    )
    request = decode_rest_request(body, header_length)
    assert request.outputs is not None
    assert [output.name for output in request.outputs] == ["a", "b"]
    assert request.outputs[0].parameters is not None
    assert request.outputs[0].parameters.binary_data is True


def response_of_arrays() -> InferenceResponse:
    return InferenceResponse(
        model_name="all-types",
        id="req-7",
        outputs=[
            ResponseOutput(
                name=datatype.lower(),
                shape=list(array.shape),
                datatype=datatype,
                data=array,
            )
            for datatype, array in ARRAYS.items()
        ],
    )


@pytest.mark.parametrize("binary_data", [False, True], ids=["json", "binary"])
def test_tritonclient_parses_response(binary_data: bool) -> None:
    # The client asks for the outputs with its default request parameters,
    # which set binary_data_output, or per output.
    request_inputs = []
    infer_input = httpclient.InferInput("x", [1], "INT8")
    infer_input.set_data_from_numpy(np.array([1], np.int8), binary_data=False)
    request_inputs.append(infer_input)
    outputs = [
        httpclient.InferRequestedOutput(name.lower(), binary_data=binary_data)
        for name in ARRAYS
    ]
    request_body, request_header_length = (
        httpclient.InferenceServerClient.generate_request_body(
            request_inputs, outputs=outputs
        )
    )
    request = decode_rest_request(request_body, request_header_length)

    body, headers = encode_rest_response(response_of_arrays(), request)
    assert (HEADER_LENGTH_HEADER in headers) is binary_data
    header_length = headers.get(HEADER_LENGTH_HEADER)
    result = httpclient.InferenceServerClient.parse_response_body(
        body, header_length=None if header_length is None else int(header_length)
    )
    assert result.get_response()["model_name"] == "all-types"
    for datatype, expected in ARRAYS.items():
        actual = result.as_numpy(datatype.lower())
        assert actual is not None
        assert actual.shape == expected.shape
        if datatype == "BYTES" and binary_data:
            assert actual.tolist() == expected.tolist()
        elif datatype == "BYTES":
            # tritonclient returns JSON BYTES elements as the strings it read.
            expected_text = [[item.decode() for item in row] for row in expected]
            assert actual.tolist() == expected_text
        else:
            assert actual.dtype == expected.dtype
            np.testing.assert_array_equal(actual, expected)
