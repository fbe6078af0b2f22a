from __future__ import annotations

import json
import struct
from typing import Any

import msgspec
import numpy as np
import pytest

from inferpool.codecs.rest import (
    decode_rest_request,
    decode_rest_response,
    encode_rest_request,
    encode_rest_response,
)
from inferpool.errors import InferpoolError, InvalidRequest
from inferpool.rest.binary import (
    HEADER_LENGTH_HEADER,
    BinaryFormatError,
    pack_bytes_elements,
    split_body,
    unpack_bytes_elements,
)
from inferpool.types import (
    Datatype,
    InferenceRequest,
    InferenceResponse,
    Parameters,
    RequestInput,
    RequestOutput,
    ResponseOutput,
)

SAMPLES: dict[Datatype, np.ndarray[Any, Any]] = {
    Datatype.BOOL: np.array([[True, False, True], [False, False, True]]),
    Datatype.UINT8: np.array([[0, 1, 255], [7, 8, 9]], dtype=np.uint8),
    Datatype.UINT16: np.array([[0, 1, 65535], [7, 8, 9]], dtype=np.uint16),
    Datatype.UINT32: np.array([[0, 1, 2**32 - 1], [7, 8, 9]], dtype=np.uint32),
    Datatype.UINT64: np.array([[0, 1, 2**64 - 1], [7, 8, 9]], dtype=np.uint64),
    Datatype.INT8: np.array([[-128, 0, 127], [7, 8, 9]], dtype=np.int8),
    Datatype.INT16: np.array([[-(2**15), 0, 2**15 - 1], [7, 8, 9]], dtype=np.int16),
    Datatype.INT32: np.array([[-(2**31), 0, 2**31 - 1], [7, 8, 9]], dtype=np.int32),
    Datatype.INT64: np.array([[-(2**63), 0, 2**63 - 1], [7, 8, 9]], dtype=np.int64),
    Datatype.FP16: np.array([[-65504.0, 0.5, 65504.0], [1e-3, 2, 3]], dtype=np.float16),
    Datatype.FP32: np.array(
        [[-3.4e38, 0.1, 3.4e38], [5.1, 3.5, 1.4]], dtype=np.float32
    ),
    Datatype.FP64: np.array([[-1e308, 0.1, 1e308], [5.1, 3.5, 1.4]], dtype=np.float64),
    Datatype.BYTES: np.array(
        [[b"", b"a", "é".encode()], [b"xyz", b"0", b" "]], dtype=object
    ),
}


def request_of(
    array: np.ndarray[Any, Any], datatype: Datatype, name: str = "x"
) -> InferenceRequest:
    return InferenceRequest(
        inputs=[
            RequestInput(
                name=name, shape=list(array.shape), datatype=datatype, data=array
            )
        ]
    )


def assert_same_array(
    actual: np.ndarray[Any, Any], expected: np.ndarray[Any, Any]
) -> None:
    assert isinstance(actual, np.ndarray)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    assert actual.tolist() == expected.tolist()


def header_length_of(headers: dict[str, str]) -> int | None:
    value = headers.get(HEADER_LENGTH_HEADER)
    return None if value is None else int(value)


def test_decode_iris_request() -> None:
    body = (
        b'{"inputs":[{"name":"predict","shape":[1,4],"datatype":"FP32",'
        b'"data":[5.1,3.5,1.4,0.2]}]}'
    )
    request = decode_rest_request(body)
    assert request.id is None
    assert request.parameters is None
    assert request.outputs is None
    (request_input,) = request.inputs
    assert request_input.name == "predict"
    assert request_input.shape == [1, 4]
    assert request_input.datatype is Datatype.FP32
    expected = np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)
    assert_same_array(request_input.data, expected)


def test_decode_nested_equals_flat() -> None:
    flat = b'{"inputs":[{"name":"a","shape":[2,3],"datatype":"INT32","data":[1,2,3,4,5,6]}]}'
    nested = (
        b'{"inputs":[{"name":"a","shape":[2,3],"datatype":"INT32",'
        b'"data":[ [1,2,3], [4,5,6] ]}]}'
    )
    expected = np.arange(1, 7, dtype=np.int32).reshape(2, 3)
    assert_same_array(decode_rest_request(flat).inputs[0].data, expected)
    assert_same_array(decode_rest_request(nested).inputs[0].data, expected)


def test_decode_keeps_ids_parameters_outputs() -> None:
    body = json.dumps(
        {
            "id": "req-1",
            "parameters": {"content_type": "np", "custom": [1, 2]},
            "inputs": [
                {
                    "name": "s",
                    "shape": [1],
                    "datatype": "BYTES",
                    "data": ["héllo"],
                    "parameters": {"content_type": "str"},
                }
            ],
            "outputs": [{"name": "o", "parameters": {"binary_data": True}}],
        }
    ).encode()
    request = decode_rest_request(body)
    assert request.id == "req-1"
    assert isinstance(request.parameters, Parameters)
    assert request.parameters.custom == [1, 2]
    assert request.inputs[0].parameters is not None
    assert request.inputs[0].parameters.content_type == "str"
    assert request.inputs[0].data.tolist() == ["héllo".encode()]
    assert request.outputs == [
        RequestOutput(name="o", parameters=Parameters(binary_data=True))
    ]


def test_decode_scalar_and_empty_shapes() -> None:
    scalar = decode_rest_request(
        b'{"inputs":[{"name":"a","shape":[],"datatype":"FP64","data":[2.5]}]}'
    )
    assert scalar.inputs[0].data.shape == ()
    assert scalar.inputs[0].data.item() == 2.5
    empty = decode_rest_request(
        b'{"inputs":[{"name":"a","shape":[0,3],"datatype":"INT64","data":[]}]}'
    )
    assert empty.inputs[0].data.shape == (0, 3)
    nested_empty = decode_rest_request(
        b'{"inputs":[{"name":"a","shape":[2,0],"datatype":"BYTES","data":[[],[]]}]}'
    )
    assert nested_empty.inputs[0].data.shape == (2, 0)
    assert nested_empty.inputs[0].data.dtype == np.dtype(object)


@pytest.mark.parametrize("datatype", list(Datatype))
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_request_round_trip(datatype: Datatype, binary: bool) -> None:
    array = SAMPLES[datatype]
    body, headers = encode_rest_request(
        request_of(array, datatype), binary_inputs=binary
    )
    assert (HEADER_LENGTH_HEADER in headers) is binary
    request = decode_rest_request(body, header_length_of(headers))
    assert request.inputs[0].datatype is datatype
    assert_same_array(request.inputs[0].data, array)


@pytest.mark.parametrize("datatype", list(Datatype))
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_empty_tensor_round_trip(datatype: Datatype, binary: bool) -> None:
    array = SAMPLES[datatype][:0]
    assert array.shape == (0, 3)
    body, headers = encode_rest_request(
        request_of(array, datatype), binary_inputs=binary
    )
    request = decode_rest_request(body, header_length_of(headers))
    assert_same_array(request.inputs[0].data, array)


@pytest.mark.parametrize("datatype", list(Datatype))
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_response_round_trip(datatype: Datatype, binary: bool) -> None:
    array = SAMPLES[datatype]
    response = InferenceResponse(
        model_name="m",
        model_version="2",
        id="r",
        outputs=[
            ResponseOutput(
                name="y", shape=list(array.shape), datatype=datatype, data=array
            )
        ],
    )
    request = InferenceRequest(
        parameters=Parameters(binary_data_output=binary), inputs=[]
    )
    body, headers = encode_rest_response(response, request)
    decoded = decode_rest_response(body, header_length_of(headers))
    assert decoded.model_name == "m"
    assert decoded.model_version == "2"
    assert decoded.id == "r"
    assert_same_array(decoded.outputs[0].data, array)


def test_binary_arrays_are_writable_copies() -> None:
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    body, headers = encode_rest_request(
        request_of(array, Datatype.FP32), binary_inputs=True
    )
    data = decode_rest_request(body, header_length_of(headers)).inputs[0].data
    assert data.flags.writeable
    assert data.flags.aligned
    data += 1


def test_response_json_is_flat_list() -> None:
    response = InferenceResponse(
        model_name="iris",
        outputs=[
            ResponseOutput(
                name="predict",
                shape=[2, 2],
                datatype="INT64",
                data=np.eye(2, dtype=np.int64),
            )
        ],
    )
    body, headers = encode_rest_response(response)
    assert headers == {"Content-Type": "application/json"}
    assert json.loads(body) == {
        "model_name": "iris",
        "outputs": [
            {
                "name": "predict",
                "shape": [2, 2],
                "datatype": "INT64",
                "data": [1, 0, 0, 1],
            }
        ],
    }


def test_response_binary_choice_per_output() -> None:
    response = InferenceResponse(
        model_name="m",
        outputs=[
            ResponseOutput(
                name="a", shape=[1], datatype="INT32", data=np.array([1], np.int32)
            ),
            ResponseOutput(
                name="b", shape=[1], datatype="INT32", data=np.array([2], np.int32)
            ),
            ResponseOutput(
                name="c",
                shape=[1],
                datatype="INT32",
                data=[3],
                parameters=Parameters(binary_data=True),
            ),
        ],
    )
    request = InferenceRequest(
        inputs=[],
        outputs=[
            RequestOutput(name="a", parameters=Parameters(binary_data=True)),
            RequestOutput(name="b"),
        ],
    )
    body, headers = encode_rest_response(response, request)
    header_length = int(headers[HEADER_LENGTH_HEADER])
    assert headers["Content-Type"] == "application/octet-stream"
    header = json.loads(body[:header_length])
    assert header["outputs"][0] == {
        "name": "a",
        "shape": [1],
        "datatype": "INT32",
        "parameters": {"binary_data_size": 4},
    }
    assert header["outputs"][1]["data"] == [2]
    assert header["outputs"][2]["parameters"] == {"binary_data_size": 4}
    assert body[header_length:] == struct.pack("<ii", 1, 3)


def test_response_request_overrides_output_flag() -> None:
    response = InferenceResponse(
        model_name="m",
        outputs=[
            ResponseOutput(
                name="a",
                shape=[1],
                datatype="FP32",
                data=[1.5],
                parameters=Parameters(binary_data=True, content_type="np"),
            )
        ],
    )
    request = InferenceRequest(
        inputs=[],
        outputs=[RequestOutput(name="a", parameters=Parameters(binary_data=False))],
    )
    body, headers = encode_rest_response(response, request)
    assert HEADER_LENGTH_HEADER not in headers
    assert json.loads(body)["outputs"][0]["parameters"] == {"content_type": "np"}


def test_response_shape_mismatch_raises() -> None:
    response = InferenceResponse(
        model_name="m",
        outputs=[
            ResponseOutput(name="y", shape=[3], datatype="FP32", data=np.zeros(2))
        ],
    )
    with pytest.raises(
        InferpoolError, match=r"Output 'y': data has 2 elements but shape \[3\] needs 3"
    ):
        encode_rest_response(response)


@pytest.mark.parametrize(
    ("data", "count"),
    [([1.0, 2.0], 2), ([[1.0, 2.0], [3.0]], 3)],
    ids=["flat", "nested"],
)
def test_response_list_shape_mismatch_raises(data: list, count: int) -> None:  # type: ignore[type-arg]
    response = InferenceResponse(
        model_name="m",
        outputs=[ResponseOutput(name="y", shape=[5], datatype="FP32", data=data)],
    )
    with pytest.raises(
        InferpoolError,
        match=rf"^Output 'y': data has {count} elements but shape \[5\] needs 5$",
    ):
        encode_rest_response(response)


def test_response_non_utf8_bytes_json_raises() -> None:
    response = InferenceResponse(
        model_name="m",
        outputs=[
            ResponseOutput(
                name="y",
                shape=[1],
                datatype="BYTES",
                data=np.array([b"\xff"], dtype=object),
            )
        ],
    )
    with pytest.raises(
        InferpoolError, match="Output 'y': BYTES element is not valid UTF-8"
    ):
        encode_rest_response(response)
    request = InferenceRequest(
        inputs=[], parameters=Parameters(binary_data_output=True)
    )
    body, headers = encode_rest_response(response, request)
    decoded = decode_rest_response(body, header_length_of(headers))
    assert decoded.outputs[0].data.tolist() == [b"\xff"]


def test_response_list_bytes_json() -> None:
    response = InferenceResponse(
        model_name="m",
        outputs=[
            ResponseOutput(name="y", shape=[2], datatype="BYTES", data=[b"ab", "cd"])
        ],
    )
    body, _ = encode_rest_response(response)
    assert json.loads(body)["outputs"][0]["data"] == ["ab", "cd"]


def test_encode_does_not_mutate_response() -> None:
    parameters = Parameters(binary_data=True)
    output = ResponseOutput(
        name="y",
        shape=[1],
        datatype="INT8",
        data=np.array([1], np.int8),
        parameters=parameters,
    )
    response = InferenceResponse(model_name="m", outputs=[output])
    encode_rest_response(response)
    assert response.outputs[0] is output
    assert output.parameters == {"binary_data": True}


def test_pack_unpack_bytes_elements() -> None:
    packed = pack_bytes_elements([b"ab", "é", b""])
    assert packed == b"\x02\x00\x00\x00ab\x02\x00\x00\x00\xc3\xa9\x00\x00\x00\x00"
    assert unpack_bytes_elements(packed, 3) == [b"ab", "é".encode(), b""]
    with pytest.raises(
        BinaryFormatError, match="contains more than 2 elements, expected 2"
    ):
        unpack_bytes_elements(packed, 2)
    with pytest.raises(BinaryFormatError, match="contains 3 elements, expected 4"):
        unpack_bytes_elements(packed, 4)


def test_split_body_bounds() -> None:
    header, rest = split_body(b"{}abc", 2)
    assert bytes(header) == b"{}"
    assert bytes(rest) == b"abc"
    with pytest.raises(
        BinaryFormatError, match="between 0 and the body length 5, received 6"
    ):
        split_body(b"{}abc", 6)


def input_json(**fields: Any) -> bytes:
    tensor: dict[str, Any] = {
        "name": "x",
        "shape": [2],
        "datatype": "FP32",
        "data": [1, 2],
    }
    tensor.update(fields)
    tensor = {key: value for key, value in tensor.items() if value is not ...}
    return json.dumps({"inputs": [tensor]}).encode()


def binary_body(tensors: list[dict[str, Any]], payload: bytes) -> tuple[bytes, int]:
    header = json.dumps({"inputs": tensors}).encode()
    return header + payload, len(header)


def fp32_binary(
    size: int, payload: bytes, shape: list[int] | None = None
) -> tuple[bytes, int]:
    tensor = {
        "name": "x",
        "shape": shape or [2],
        "datatype": "FP32",
        "parameters": {"binary_data_size": size},
    }
    return binary_body([tensor], payload)


def bytes_binary(payload: bytes, shape: list[int]) -> tuple[bytes, int]:
    tensor = {
        "name": "s",
        "shape": shape,
        "datatype": "BYTES",
        "parameters": {"binary_data_size": len(payload)},
    }
    return binary_body([tensor], payload)


MALFORMED: list[tuple[str, bytes, int | None, str]] = [
    ("not json", b'{"inputs": [', None, "Invalid JSON in request body"),
    ("empty body", b"", None, "Invalid JSON in request body"),
    ("top level array", b"[]", None, "Invalid request body: expected `object`, got `array`"),
    ("missing inputs", b"{}", None, "missing required field `inputs`"),
    ("inputs not list", b'{"inputs": {}}', None, "Invalid request field 'inputs': expected `array`"),
    ("missing name", b'{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}', None, r"inputs\[0\]: object missing required field `name`"),
    ("missing datatype", b'{"inputs":[{"name":"x","shape":[1],"data":[1]}]}', None, r"Input 'x' \(inputs\[0\]\): object missing required field `datatype`"),
    ("missing shape", b'{"inputs":[{"name":"x","datatype":"FP32","data":[1]}]}', None, "missing required field `shape`"),
    ("missing data", input_json(data=...), None, "Input 'x': missing data"),
    ("data null", input_json(data=None), None, "Input 'x': data must be a JSON array, received null"),
    ("duplicate names", json.dumps({"inputs": [json.loads(input_json())["inputs"][0]] * 2}).encode(), None, r"Duplicate input name 'x' in inputs\[0\] and inputs\[1\]"),
    ("duplicate outputs", b'{"inputs":[],"outputs":[{"name":"o"},{"name":"o"}]}', None, "Duplicate output name 'o'"),
    ("unknown datatype", input_json(datatype="FLOAT32"), None, "Input 'x': unknown datatype 'FLOAT32', expected one of BOOL"),
    ("negative dim", input_json(shape=[-2]), None, r"Input 'x' \(inputs\[0\]\): invalid field 'shape\[0\]': expected `int` >= 0, received -2"),
    ("float dim", input_json(shape=[2.0]), None, r"invalid field 'shape\[0\]': expected `int`, got `float`, received 2.0"),
    ("shape not list", input_json(shape=2), None, "invalid field 'shape': expected `array`, got `int`, received 2"),
    ("bool dim", input_json(shape=[True]), None, r"invalid field 'shape\[0\]': expected `int`, got `bool`"),
    ("too few elements", input_json(shape=[3]), None, r"Input 'x': shape \[3\] needs 3 elements but data has 2"),
    ("too many elements", input_json(shape=[1]), None, r"Input 'x': shape \[1\] needs 1 elements but data has 2"),
    ("ragged", input_json(shape=[2, 2], data=[[1, 2], [3]]), None, r"Input 'x': data\[1\] has 1 elements but shape \[2, 2\] needs 2 in dimension 1"),
    ("nested wrong shape", input_json(shape=[2, 3], data=[[1, 2], [3, 4], [5, 6]]), None, r"data has 3 elements but shape \[2, 3\] needs 2 in dimension 0"),
    ("half nested", input_json(shape=[2, 2], data=[[1, 2], 3]), None, r"data\[1\]: expected `array`, got `int`, so data does not match shape \[2, 2\]"),
    ("too deep", input_json(shape=[2], data=[[1], [2]]), None, r"data\[0\]: expected `float`, got `array`"),
    ("string in FP32", input_json(data=[1, "2"]), None, r"Input 'x': data\[1\]: expected `float`, got `str` for datatype FP32, received \"2\""),
    ("float in INT64", input_json(datatype="INT64", data=[1, 2.5]), None, r"data\[1\]: expected `int`, got `float` for datatype INT64, received 2.5"),
    ("integral float in INT32", input_json(datatype="INT32", data=[1.0, 2]), None, r"data\[0\]: expected `int`, got `float`"),
    ("bool in FP32", input_json(data=[True, 1.0]), None, r"data\[0\]: expected `float`, got `bool`"),
    ("INT8 overflow", input_json(datatype="INT8", data=[1, 128]), None, r"data\[1\] is out of range for INT8 \(expected `int` <= 127\), received 128"),
    ("UINT8 negative", input_json(datatype="UINT8", data=[-1, 0]), None, r"data\[0\] is out of range for UINT8"),
    ("UINT64 overflow", input_json(datatype="UINT64", data=[0, 2**64]), None, r"data\[1\] is out of range for UINT64, expected at most 18446744073709551615"),
    ("INT64 overflow", input_json(datatype="INT64", data=[0, 2**63]), None, r"data\[1\] is out of range for INT64"),
    ("FP16 overflow", input_json(datatype="FP16", data=[0, 70000]), None, r"data\[1\] is out of range for FP16"),
    ("FP32 overflow", input_json(data=[0, 1e39]), None, r"data\[1\] is out of range for FP32"),
    ("number in BOOL", input_json(datatype="BOOL", data=[1, 0]), None, r"data\[0\]: expected `bool`, got `int` for datatype BOOL"),
    ("number in BYTES", input_json(datatype="BYTES", data=["a", 1]), None, r"data\[1\]: expected `str`, got `int` for datatype BYTES"),
    ("null element", input_json(data=[1, None]), None, r"data\[1\]: expected `float`, got `null`"),
    ("id not string", b'{"id": 5, "inputs": []}', None, r"Invalid request field 'id': expected `str \| null`, got `int`, received 5"),
    ("parameters not object", b'{"parameters": [1], "inputs": []}', None, r"Invalid request field 'parameters': expected `object \| null`, got `array`, received \[1\]"),
    ("header length beyond body", b'{"inputs":[]}', 99, "Invalid Inference-Header-Content-Length: .* received 99"),
    ("negative header length", b'{"inputs":[]}', -1, "Invalid Inference-Header-Content-Length"),
    ("binary without header", input_json(data=..., parameters={"binary_data_size": 8}), None, "Input 'x': parameters.binary_data_size is set but the request has no Inference-Header-Content-Length header"),
    ("binary and data", *binary_body([{"name": "x", "shape": [1], "datatype": "FP32", "data": [1], "parameters": {"binary_data_size": 4}}], b"\0" * 4), "Input 'x': has both data and parameters.binary_data_size"),
    ("binary size vs shape", *fp32_binary(4, b"\0" * 4), r"Input 'x': parameters.binary_data_size is 4 but shape \[2\] of FP32 needs 8 bytes"),
    ("binary size beyond body", *fp32_binary(8, b"\0" * 6), "Input 'x': parameters.binary_data_size is 8 but only 6 bytes of binary data remain"),
    ("binary bytes left over", *fp32_binary(8, b"\0" * 12), "Binary section of the body has 12 bytes but the inputs' parameters.binary_data_size add up to 8"),
    ("binary size negative", *fp32_binary(-8, b"\0" * 8), "binary_data_size must be a non-negative integer, received -8"),
    ("binary size string", *fp32_binary("8", b"\0" * 8), "binary_data_size must be a non-negative integer, received '8'"),  # type: ignore[arg-type]
    ("binary bool not 0 or 1", *binary_body([{"name": "b", "shape": [2], "datatype": "BOOL", "parameters": {"binary_data_size": 2}}], b"\x01\x02"), "Input 'b': binary BOOL element 1 must be 0 or 1, received 2"),
    ("bytes truncated prefix", *bytes_binary(b"\x01\x00\x00\x00a\x01\x00", [2]), "Input 's': BYTES element 1 has a truncated length prefix"),
    ("bytes element too long", *bytes_binary(b"\x05\x00\x00\x00abc", [1]), "Input 's': BYTES element 0 declares 5 bytes but only 3 remain"),
    ("bytes too few elements", *bytes_binary(pack_bytes_elements([b"a"]), [2]), "Input 's': binary BYTES data contains 1 elements, expected 2"),
    ("bytes too many elements", *bytes_binary(pack_bytes_elements([b"a", b"b", b"c"]), [2]), "Input 's': binary BYTES data contains more than 2 elements, expected 2"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "header_length", "message"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_request_rejected(
    body: bytes, header_length: int | None, message: str
) -> None:
    assert len(MALFORMED) >= 25
    with pytest.raises(InvalidRequest, match=message) as caught:
        decode_rest_request(body, header_length)
    assert caught.value.status_code == 400
    assert not str(caught.value).endswith(".")


def test_invalid_request_survives_pickle() -> None:
    import pickle

    with pytest.raises(InvalidRequest) as caught:
        decode_rest_request(input_json(data=[1, "a"]))
    restored = pickle.loads(pickle.dumps(caught.value))
    assert type(restored) is InvalidRequest
    assert str(restored) == str(caught.value)


def test_error_value_quote_truncated() -> None:
    long_text = "a" * 500
    with pytest.raises(InvalidRequest) as caught:
        decode_rest_request(input_json(data=[1, long_text]))
    assert len(str(caught.value)) < 200
    assert str(caught.value).endswith("...")


def test_decode_accepts_memoryview_and_bytearray() -> None:
    body = input_json()
    for buffer in (memoryview(body), bytearray(body)):
        request = decode_rest_request(buffer)
        assert request.inputs[0].data.tolist() == [1.0, 2.0]


def test_wire_request_unknown_fields_ignored() -> None:
    body = b'{"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[1],"extra":1}],"z":2}'
    assert decode_rest_request(body).inputs[0].data.tolist() == [1]


def test_encode_request_binary_then_json_strips_size() -> None:
    array = np.array([1, 2], dtype=np.int16)
    body, headers = encode_rest_request(
        request_of(array, Datatype.INT16), binary_inputs=True
    )
    decoded = decode_rest_request(body, header_length_of(headers))
    assert decoded.inputs[0].parameters == {"binary_data_size": 4}
    json_body, json_headers = encode_rest_request(decoded)
    assert HEADER_LENGTH_HEADER not in json_headers
    assert msgspec.json.decode(json_body)["inputs"][0] == {
        "name": "x",
        "shape": [2],
        "datatype": "INT16",
        "data": [1, 2],
    }
