from __future__ import annotations

import base64
import pickle
from typing import Any

import numpy as np
import pytest

from inferpool.codecs import (
    Base64Codec,
    NumpyCodec,
    NumpyRequestCodec,
    PandasCodec,
    StringCodec,
    StringRequestCodec,
    decode_inference_request,
    decode_request_input,
    find_input_codec,
    find_request_codec,
    to_datatype,
    to_dtype,
)
from inferpool.codecs.rest import decode_rest_request, encode_rest_response
from inferpool.errors import InvalidRequest
from inferpool.types import (
    Datatype,
    InferenceRequest,
    InferenceResponse,
    Parameters,
    RequestInput,
    ResponseOutput,
)

DTYPES = [
    np.bool_,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.float16,
    np.float32,
    np.float64,
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_codec_output_round_trip(dtype: type[np.generic]) -> None:
    array = (np.arange(6) % 2).astype(dtype).reshape(3, 2)
    output = NumpyCodec.encode_output("y", array)
    assert output.name == "y"
    assert output.shape == [3, 2]
    assert output.datatype == Datatype.from_numpy(dtype)
    assert output.parameters == {"content_type": "np"}
    decoded = NumpyCodec.decode_output(output)
    assert decoded.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(decoded, array)


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_codec_input_through_rest(dtype: type[np.generic]) -> None:
    array = np.zeros((2, 0, 3), dtype=dtype)
    request_input = NumpyCodec.encode_input("x", array)
    response = InferenceResponse(
        model_name="m",
        outputs=[
            ResponseOutput(
                name="x",
                shape=request_input.shape,
                datatype=request_input.datatype,
                data=request_input.data,
            )
        ],
    )
    body, _ = encode_rest_response(response)
    assert b'"data":[]' in body


def test_numpy_codec_decode_input_no_copy() -> None:
    body = b'{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP16","data":[1,2,3,4]}]}'
    request_input = decode_rest_request(body).inputs[0]
    decoded = NumpyCodec.decode_input(request_input)
    assert decoded is request_input.data
    assert decoded.dtype == np.float16


def test_numpy_codec_decode_user_lists() -> None:
    request_input = RequestInput(
        name="x", shape=[2, 2], datatype="INT32", data=[[1, 2], [3, 4]]
    )
    decoded = NumpyCodec.decode_input(request_input)
    assert decoded.dtype == np.int32
    assert decoded.tolist() == [[1, 2], [3, 4]]
    flat = RequestInput(name="x", shape=[2, 2], datatype="FP32", data=[1, 2, 3, 4])
    assert NumpyCodec.decode_input(flat).shape == (2, 2)


def test_numpy_codec_decode_size_mismatch() -> None:
    request_input = RequestInput(name="x", shape=[3], datatype="INT32", data=[1, 2])
    with pytest.raises(
        InvalidRequest, match=r"Tensor 'x': shape \[3\] needs 3 elements"
    ):
        NumpyCodec.decode_input(request_input)


def test_numpy_codec_decode_bad_values() -> None:
    request_input = RequestInput(name="x", shape=[1], datatype="FP32", data=["a"])
    with pytest.raises(
        InvalidRequest, match="Tensor 'x': data cannot be converted to FP32"
    ):
        NumpyCodec.decode_input(request_input)
    unknown = RequestInput(name="x", shape=[1], datatype="FLOAT", data=[1])
    with pytest.raises(InvalidRequest, match="Tensor 'x': unknown datatype 'FLOAT'"):
        NumpyCodec.decode_input(unknown)


def test_numpy_codec_bytes_and_strings() -> None:
    output = NumpyCodec.encode_output("s", np.array(["a", "é"]))
    assert output.datatype == Datatype.BYTES
    assert output.data.dtype == np.dtype(object)
    assert output.data.tolist() == [b"a", "é".encode()]
    from_list = RequestInput(name="s", shape=[2], datatype="BYTES", data=["a", b"b"])
    assert NumpyCodec.decode_input(from_list).tolist() == [b"a", b"b"]
    wrong = RequestInput(name="s", shape=[1], datatype="BYTES", data=[1])
    with pytest.raises(
        InvalidRequest, match="BYTES element 0 must be bytes or str, received int"
    ):
        NumpyCodec.decode_input(wrong)


def test_to_dtype_and_to_datatype() -> None:
    output = ResponseOutput(name="y", shape=[1], datatype="UINT16", data=[1])
    assert to_dtype(output) == np.uint16
    assert to_datatype(np.dtype(np.int8)) is Datatype.INT8
    with pytest.raises(ValueError, match="has no V2 datatype"):
        NumpyCodec.encode_output("c", np.array([1j]))


def test_string_codec_round_trip() -> None:
    strings = ["héllo", "", "world"]
    request_input = StringCodec.encode_input("s", strings)
    assert request_input.shape == [3, 1]
    assert request_input.datatype == "BYTES"
    assert StringCodec.decode_input(request_input) == strings
    output = StringCodec.encode_output("s", strings)
    assert StringCodec.decode_output(output) == strings
    assert StringCodec.can_encode(strings)
    assert not StringCodec.can_encode([b"x"])


def test_string_codec_invalid_utf8() -> None:
    request_input = RequestInput(
        name="s",
        shape=[2],
        datatype="BYTES",
        data=np.array([b"ok", b"\xff"], dtype=object),
    )
    with pytest.raises(
        InvalidRequest, match="Tensor 's': element 1 is not valid UTF-8"
    ):
        StringCodec.decode_input(request_input)


def test_base64_codec_round_trip() -> None:
    blobs = [b"\x00\xff", b"", b"abc"]
    request_input = Base64Codec.encode_input("b", blobs)
    assert request_input.data.tolist() == [[base64.b64encode(blob)] for blob in blobs]
    assert Base64Codec.decode_input(request_input) == blobs
    output = Base64Codec.encode_output("b", blobs)
    assert Base64Codec.decode_output(output) == blobs


def test_base64_codec_invalid_text() -> None:
    request_input = RequestInput(
        name="b", shape=[1], datatype="BYTES", data=["not base64!"]
    )
    with pytest.raises(
        InvalidRequest, match="Tensor 'b': element 0 is not valid base64"
    ):
        Base64Codec.decode_input(request_input)


def test_registry_by_content_type() -> None:
    assert find_input_codec("np") is NumpyCodec
    assert find_input_codec("str") is StringCodec
    assert find_input_codec("base64") is Base64Codec
    assert find_input_codec("nope") is None
    assert find_request_codec("np") is NumpyRequestCodec
    assert find_request_codec("str") is StringRequestCodec
    assert find_request_codec("pd") is PandasCodec
    assert find_input_codec(payload=np.zeros(1)) is NumpyCodec
    assert find_input_codec(payload=["a"]) is StringCodec


def test_decode_request_input_honours_content_type() -> None:
    body = (
        b'{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","data":["hi"],'
        b'"parameters":{"content_type":"str"}},'
        b'{"name":"n","shape":[1],"datatype":"INT8","data":[3]}]}'
    )
    request = decode_rest_request(body)
    assert decode_request_input(request.inputs[0]) == ["hi"]
    assert decode_request_input(request.inputs[1]).tolist() == [3]
    decoded = decode_inference_request(request)
    assert decoded["s"] == ["hi"]
    assert decoded["n"].dtype == np.int8


def test_decode_request_input_unknown_content_type() -> None:
    request_input = RequestInput(
        name="x",
        shape=[1],
        datatype="INT8",
        data=[1],
        parameters=Parameters(content_type="weird"),
    )
    with pytest.raises(InvalidRequest, match="Input 'x': unknown content type 'weird'"):
        decode_request_input(request_input)
    request = InferenceRequest(parameters=Parameters(content_type="weird"), inputs=[])
    with pytest.raises(InvalidRequest, match="Unknown request content type 'weird'"):
        decode_inference_request(request)


def test_numpy_request_codec() -> None:
    array = np.arange(4, dtype=np.float32).reshape(2, 2)
    request = NumpyRequestCodec.encode_request(array)
    assert request.parameters == {"content_type": "np"}
    assert request.inputs[0].name == "input-1"
    np.testing.assert_array_equal(NumpyRequestCodec.decode_request(request), array)
    response = NumpyRequestCodec.encode_response("m", array, model_version="1")
    assert response.model_version == "1"
    assert response.outputs[0].name == "output-1"
    np.testing.assert_array_equal(NumpyRequestCodec.decode_response(response), array)
    assert decode_inference_request(request).shape == (2, 2)


def test_single_input_codec_rejects_two_inputs() -> None:
    request = InferenceRequest(
        inputs=[
            RequestInput(name="a", shape=[1], datatype="BYTES", data=["x"]),
            RequestInput(name="b", shape=[1], datatype="BYTES", data=["y"]),
        ]
    )
    with pytest.raises(InvalidRequest, match="expects exactly one input, received 2"):
        StringRequestCodec.decode_request(request)


def test_codec_output_pickles() -> None:
    output: Any = StringCodec.encode_output("s", ["a"])
    restored = pickle.loads(pickle.dumps(output))
    assert StringCodec.decode_output(restored) == ["a"]
