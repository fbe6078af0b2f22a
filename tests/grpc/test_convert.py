"""Unit tests of the conversion between V2 gRPC messages and inferpool types."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from inferpool.errors import InferpoolError, InvalidRequest
from inferpool.grpc import grpc_service_pb2 as pb
from inferpool.grpc.convert import (
    parameters_from_proto,
    parameters_to_proto,
    peek_model,
    request_from_proto,
    request_to_proto,
    response_from_proto,
    response_to_proto,
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

# One array per datatype, with the extreme values of the dtype where it has them.
ARRAYS: dict[str, np.ndarray[Any, Any]] = {
    "BOOL": np.array([[True, False, True], [False, False, True]]),
    "UINT8": np.array([[0, 1, 255]], dtype=np.uint8),
    "UINT16": np.array([[0, 1, 65535]], dtype=np.uint16),
    "UINT32": np.array([[0, 1, 2**32 - 1]], dtype=np.uint32),
    "UINT64": np.array([[0, 1, 2**64 - 1]], dtype=np.uint64),
    "INT8": np.array([[-128, 0, 127]], dtype=np.int8),
    "INT16": np.array([[-32768, 0, 32767]], dtype=np.int16),
    "INT32": np.array([[-(2**31), 0, 2**31 - 1]], dtype=np.int32),
    "INT64": np.array([[-(2**63), 0, 2**63 - 1]], dtype=np.int64),
    "FP16": np.array([[0.5, -1.0, 65504.0]], dtype=np.float16),
    "FP32": np.array([[1.5, -2.25], [3.0e38, 0.0]], dtype=np.float32),
    "FP64": np.array([[1e-300, -2.5, 1e300]], dtype=np.float64),
    "BYTES": np.array([[b"", b"a\x00b", "é".encode()]], dtype=object),
}


def make_request(
    datatype: str, array: np.ndarray[Any, Any], raw: bool
) -> pb.ModelInferRequest:
    request = InferenceRequest(
        inputs=[
            RequestInput(
                name="x", shape=list(array.shape), datatype=datatype, data=array
            )
        ]
    )
    return request_to_proto(request, "echo", raw_inputs=raw)


def raw_request(
    datatype: str, shape: list[int], chunk: bytes, name: str = "x"
) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name="echo")
    message.inputs.add(name=name, datatype=datatype, shape=shape)
    message.raw_input_contents.append(chunk)
    return message


# -- peek_model ----------------------------------------------------------------


def test_peek_model_name_and_version() -> None:
    body = pb.ModelInferRequest(
        model_name="iris", model_version="7"
    ).SerializeToString()
    assert peek_model(body) == ("iris", "7")


def test_peek_model_without_version() -> None:
    body = make_request("FP32", ARRAYS["FP32"], raw=True).SerializeToString()
    assert peek_model(body) == ("echo", None)


def test_peek_model_skips_large_tensor() -> None:
    message = make_request("FP32", np.zeros((1024, 1024), np.float32), raw=True)
    message.model_version = "v1"
    message.id = "request-1"
    message.parameters["deadline"].int64_param = 5
    assert peek_model(memoryview(message.SerializeToString())) == ("echo", "v1")


def test_peek_model_fields_out_of_order() -> None:
    tail = pb.ModelInferRequest(model_name="late").SerializeToString()
    head = pb.ModelInferRequest(id="abc", model_version="2").SerializeToString()
    assert peek_model(head + tail) == ("late", "2")


def test_peek_model_empty_body() -> None:
    assert peek_model(b"") == ("", None)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\x0a\x05ab", id="length past the end"),
        pytest.param(b"\x0a", id="missing length"),
        pytest.param(b"\x0b\x00", id="group wire type"),
        pytest.param(b"\x19\x00\x00", id="fixed64 past the end"),
        pytest.param(b"\x08" + b"\xff" * 11, id="varint too long"),
    ],
)
def test_peek_model_malformed(body: bytes) -> None:
    with pytest.raises(InvalidRequest, match="Malformed ModelInferRequest"):
        peek_model(body)


def test_peek_model_invalid_utf8() -> None:
    with pytest.raises(InvalidRequest, match="not valid UTF-8"):
        peek_model(b"\x0a\x02\xff\xfe")


# -- request_from_proto --------------------------------------------------------


@pytest.mark.parametrize("datatype", list(ARRAYS))
@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
def test_request_round_trip(datatype: str, raw: bool) -> None:
    array = ARRAYS[datatype]
    message = pb.ModelInferRequest.FromString(
        make_request(datatype, array, raw).SerializeToString()
    )
    decoded = request_from_proto(message).inputs[0]
    assert decoded.datatype is Datatype(datatype)
    assert decoded.shape == list(array.shape)
    assert isinstance(decoded.data, np.ndarray)
    assert decoded.data.dtype == Datatype(datatype).to_numpy()
    assert decoded.data.shape == array.shape
    assert decoded.data.tolist() == array.tolist()


@pytest.mark.parametrize("datatype", ["FP32", "BYTES", "FP16"])
@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
def test_request_empty_tensor(datatype: str, raw: bool) -> None:
    array = np.empty((0, 3), dtype=Datatype(datatype).to_numpy())
    decoded = request_from_proto(make_request(datatype, array, raw)).inputs[0]
    assert decoded.data.shape == (0, 3)
    assert decoded.data.dtype == array.dtype


def test_request_fp16_typed_uses_raw() -> None:
    message = make_request("FP16", ARRAYS["FP16"], raw=False)
    assert len(message.raw_input_contents) == 1


def test_request_raw_arrays_writable() -> None:
    message = make_request("FP32", ARRAYS["FP32"], raw=True)
    data = request_from_proto(message).inputs[0].data
    assert data.flags.writeable
    data[0, 0] = 7.0


def test_request_scalar_shape() -> None:
    message = raw_request("INT32", [], np.int32(9).tobytes())
    assert request_from_proto(message).inputs[0].data.tolist() == 9


def test_request_id_parameters_and_outputs() -> None:
    message = make_request("FP32", ARRAYS["FP32"], raw=True)
    message.id = "request-1"
    message.parameters["flag"].bool_param = True
    message.parameters["count"].int64_param = -3
    message.parameters["label"].string_param = "fast"
    message.parameters["ratio"].double_param = 0.25
    message.parameters["big"].uint64_param = 2**64 - 1
    message.inputs[0].parameters["content_type"].string_param = "np"
    message.outputs.add(name="y").parameters["classification"].int64_param = 2
    request = request_from_proto(message)
    assert request.id == "request-1"
    assert request.parameters == {
        "flag": True,
        "count": -3,
        "label": "fast",
        "ratio": 0.25,
        "big": 2**64 - 1,
    }
    assert request.inputs[0].parameters == {"content_type": "np"}
    assert request.outputs == [
        RequestOutput(name="y", parameters=Parameters(classification=2))
    ]


def test_request_without_id_or_parameters() -> None:
    request = request_from_proto(make_request("FP32", ARRAYS["FP32"], raw=True))
    assert request.id is None
    assert request.parameters is None
    assert request.inputs[0].parameters is None
    assert request.outputs is None


def typed_request(
    datatype: str, shape: list[int], **contents: Any
) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name="echo")
    tensor = message.inputs.add(name="x", datatype=datatype, shape=shape)
    for field, values in contents.items():
        getattr(tensor.contents, field).extend(values)
    return message


def two_inputs_mixed() -> pb.ModelInferRequest:
    message = typed_request("FP32", [1], fp32_contents=[1.0])
    message.inputs.add(name="y", datatype="FP32", shape=[1])
    message.raw_input_contents.extend(
        [np.float32(2).tobytes(), np.float32(3).tobytes()]
    )
    return message


def duplicate_inputs() -> pb.ModelInferRequest:
    message = typed_request("FP32", [1], fp32_contents=[1.0])
    message.inputs.add(
        name="x", datatype="FP32", shape=[1]
    ).contents.fp32_contents.append(2)
    return message


def duplicate_outputs() -> pb.ModelInferRequest:
    message = typed_request("FP32", [1], fp32_contents=[1.0])
    message.outputs.add(name="y")
    message.outputs.add(name="y")
    return message


def raw_count_mismatch() -> pb.ModelInferRequest:
    message = raw_request("FP32", [1], np.float32(1).tobytes())
    message.inputs.add(name="y", datatype="FP32", shape=[1])
    return message


INVALID_REQUESTS = {
    "unknown datatype": (
        lambda: typed_request("FP8", [1], fp32_contents=[1.0]),
        r"Input 'x': unknown datatype 'FP8', expected one of BOOL",
    ),
    "negative dimension": (
        lambda: typed_request("FP32", [2, -1], fp32_contents=[1.0]),
        r"Input 'x': shape \[2, -1\] has a negative extent -1 in dimension 1",
    ),
    "typed count": (
        lambda: typed_request("FP32", [2, 3], fp32_contents=[1.0] * 5),
        r"Input 'x': shape \[2, 3\] needs 6 elements but contents.fp32_contents has 5",
    ),
    "wrong typed field": (
        lambda: typed_request("INT64", [1], fp32_contents=[1.0]),
        r"Input 'x': datatype INT64 takes int64_contents, received fp32_contents",
    ),
    "fp16 typed": (
        lambda: typed_request("FP16", [1], fp32_contents=[1.0]),
        r"Input 'x': FP16 data must be sent as raw contents, received fp32_contents",
    ),
    "fp16 without data": (
        lambda: typed_request("FP16", [2]),
        r"Input 'x': FP16 data must be sent as raw contents, received no raw",
    ),
    "missing data": (
        lambda: typed_request("FP32", [2]),
        r"Input 'x': shape \[2\] needs 2 elements but contents.fp32_contents has 0",
    ),
    "int8 out of range": (
        lambda: typed_request("INT8", [2], int_contents=[1, 200]),
        (
            r"Input 'x': contents.int_contents\[1\] is out of range for INT8, "
            r"expected -128 to 127, received 200"
        ),
    ),
    "uint16 out of range": (
        lambda: typed_request("UINT16", [1], uint_contents=[70000]),
        r"Input 'x': contents.uint_contents\[0\] is out of range for UINT16",
    ),
    "raw length": (
        lambda: raw_request("FP32", [2, 3], b"\x00" * 20),
        (
            r"Input 'x': raw_input_contents\[0\] has 20 bytes but shape \[2, 3\] of "
            r"FP32 needs 24 bytes"
        ),
    ),
    "raw bool value": (
        lambda: raw_request("BOOL", [3], b"\x00\x01\x02"),
        r"Input 'x': raw_input_contents\[0\]: BOOL element 2 must be 0 or 1, received 2",
    ),
    "raw bytes truncated": (
        lambda: raw_request("BYTES", [1], b"\x05\x00\x00\x00ab"),
        r"Input 'x': raw_input_contents\[0\]: BYTES element 0 declares 5 bytes",
    ),
    "raw bytes count": (
        lambda: raw_request("BYTES", [2], b"\x01\x00\x00\x00a"),
        (
            r"Input 'x': raw_input_contents\[0\]: binary BYTES data contains 1 elements, "
            r"expected 2"
        ),
    ),
    "raw count": (
        raw_count_mismatch,
        r"raw_input_contents has 1 entries but the request has 2 inputs",
    ),
    "raw mixed with typed": (
        two_inputs_mixed,
        r"Input 'x': has fp32_contents but the request uses raw_input_contents",
    ),
    "duplicate input": (
        duplicate_inputs,
        r"Duplicate input name 'x' in inputs\[0\] and inputs\[1\]",
    ),
    "missing input name": (
        lambda: raw_request("FP32", [1], np.float32(1).tobytes(), name=""),
        r"Input inputs\[0\]: missing name",
    ),
    "duplicate output": (
        duplicate_outputs,
        r"Duplicate output name 'y' in outputs\[0\] and outputs\[1\]",
    ),
}


@pytest.mark.parametrize("case", list(INVALID_REQUESTS))
def test_request_invalid(case: str) -> None:
    build, pattern = INVALID_REQUESTS[case]
    with pytest.raises(InvalidRequest, match=pattern):
        request_from_proto(build())


# -- response_to_proto ---------------------------------------------------------


def make_response(datatype: str, data: Any, shape: list[int]) -> InferenceResponse:
    return InferenceResponse(
        model_name="echo",
        model_version="v1",
        id="request-1",
        outputs=[ResponseOutput(name="y", shape=shape, datatype=datatype, data=data)],
    )


@pytest.mark.parametrize("datatype", list(ARRAYS))
@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
def test_response_round_trip(datatype: str, raw: bool) -> None:
    array = ARRAYS[datatype]
    message = response_to_proto(make_response(datatype, array, list(array.shape)), raw)
    uses_raw = raw or datatype == "FP16"
    assert len(message.raw_output_contents) == (1 if uses_raw else 0)
    assert message.model_name == "echo"
    assert message.model_version == "v1"
    assert message.id == "request-1"
    decoded = response_from_proto(
        pb.ModelInferResponse.FromString(message.SerializeToString())
    )
    output = decoded.outputs[0]
    assert output.shape == list(array.shape)
    assert output.data.dtype == Datatype(datatype).to_numpy()
    assert output.data.tolist() == array.tolist()


def test_response_raw_layout() -> None:
    array = np.array([[1, 2], [3, 4]], dtype=np.int32)
    message = response_to_proto(
        make_response("INT32", array.T, [2, 2]), raw_outputs=True
    )
    assert message.raw_output_contents[0] == np.array([1, 3, 2, 4], "<i4").tobytes()


def test_response_bytes_raw_format() -> None:
    data = np.array(["ab", b"\x00"], dtype=object)
    message = response_to_proto(make_response("BYTES", data, [2]), raw_outputs=True)
    assert message.raw_output_contents[0] == b"\x02\x00\x00\x00ab\x01\x00\x00\x00\x00"


def test_response_list_data_typed() -> None:
    message = response_to_proto(
        make_response("INT64", [[1, 2], [3, 4]], [2, 2]), raw_outputs=False
    )
    assert list(message.outputs[0].contents.int64_contents) == [1, 2, 3, 4]
    assert list(message.outputs[0].shape) == [2, 2]


def test_response_fp16_forces_raw_for_all() -> None:
    response = InferenceResponse(
        model_name="echo",
        outputs=[
            ResponseOutput(name="a", shape=[1], datatype="FP32", data=[1.0]),
            ResponseOutput(name="b", shape=[1], datatype="FP16", data=[2.0]),
        ],
    )
    message = response_to_proto(response, raw_outputs=False)
    assert len(message.raw_output_contents) == 2
    assert not message.outputs[0].HasField("contents")


def test_response_parameters() -> None:
    response = make_response("FP32", [1.0], [1])
    response.parameters = Parameters(
        flag=False, count=np.int64(3), ratio=0.5, label="x", nothing=None, shape=[1, 2]
    )
    response.outputs[0].parameters = Parameters(
        content_type="np", binary_data=True, binary_data_size=4
    )
    message = response_to_proto(response, raw_outputs=True)
    assert parameters_from_proto(message.parameters) == {
        "flag": False,
        "count": 3,
        "ratio": 0.5,
        "label": "x",
        "shape": "[1,2]",
    }
    assert parameters_from_proto(message.outputs[0].parameters) == {
        "content_type": "np"
    }


def test_parameters_integer_ranges() -> None:
    message = pb.ModelInferResponse()
    parameters_to_proto({"small": -(2**63), "large": 2**64 - 1}, message.parameters)
    assert message.parameters["small"].WhichOneof("parameter_choice") == "int64_param"
    assert message.parameters["large"].WhichOneof("parameter_choice") == "uint64_param"
    with pytest.raises(
        InferpoolError, match="Parameter 'huge': integer 18446744073709551616"
    ):
        parameters_to_proto({"huge": 2**64}, message.parameters)


def test_parameters_from_empty_map() -> None:
    assert parameters_from_proto(pb.ModelInferRequest().parameters) is None


@pytest.mark.parametrize(
    ("datatype", "data", "shape", "pattern"),
    [
        (
            "FP32",
            [1.0, 2.0],
            [3],
            r"Output 'y': data has 2 elements but shape \[3\] needs 3",
        ),
        ("FP9", [1.0], [1], r"Output 'y': unknown datatype 'FP9'"),
        ("INT32", ["a"], [1], r"Output 'y': cannot convert data to INT32"),
        (
            "BYTES",
            [1],
            [1],
            r"Output 'y': BYTES element of type int is not bytes or str",
        ),
    ],
)
def test_response_invalid(
    datatype: str, data: Any, shape: list[int], pattern: str
) -> None:
    with pytest.raises(InferpoolError, match=pattern) as raised:
        response_to_proto(make_response(datatype, data, shape), raw_outputs=True)
    assert raised.value.grpc_status == "INTERNAL"


def test_response_from_proto_raw_count() -> None:
    message = pb.ModelInferResponse(model_name="echo")
    message.outputs.add(name="a", datatype="FP32", shape=[1])
    message.outputs.add(name="b", datatype="FP32", shape=[1])
    message.raw_output_contents.append(np.float32(1).tobytes())
    with pytest.raises(InvalidRequest, match="raw_output_contents has 1 entries"):
        response_from_proto(message)
