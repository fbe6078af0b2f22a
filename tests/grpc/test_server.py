"""End-to-end tests of the gRPC front end: a real `inferpool start` process,
driven by tritonclient.grpc and checked against tritonclient.http on the
same server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from server_helpers import ServerProcess
from tritonclient.utils import InferenceServerException, triton_to_np_dtype

from inferpool.grpc import grpc_service_pb2 as pb
from inferpool.grpc import grpc_service_pb2_grpc as pb_grpc

# Max gRPC message size of the `small_server` fixture, in bytes.
SMALL_MAX_MESSAGE = 64 * 1024

# One array per V2 datatype, with the extreme values of the dtype where it
# has them. BYTES elements are UTF-8, so REST can return them as JSON too.
ARRAYS: dict[str, np.ndarray[Any, Any]] = {
    "BOOL": np.array([[True, False, True], [False, False, True]]),
    "UINT8": np.array([[0, 1, 255], [2, 3, 4]], dtype=np.uint8),
    "UINT16": np.array([[0, 1, 65535], [2, 3, 4]], dtype=np.uint16),
    "UINT32": np.array([[0, 1, 2**32 - 1], [2, 3, 4]], dtype=np.uint32),
    "UINT64": np.array([[0, 1, 2**64 - 1], [2, 3, 4]], dtype=np.uint64),
    "INT8": np.array([[-128, 0, 127], [2, 3, 4]], dtype=np.int8),
    "INT16": np.array([[-32768, 0, 32767], [2, 3, 4]], dtype=np.int16),
    "INT32": np.array([[-(2**31), 0, 2**31 - 1], [2, 3, 4]], dtype=np.int32),
    "INT64": np.array([[-(2**63), 0, 2**63 - 1], [2, 3, 4]], dtype=np.int64),
    "FP16": np.array([[0.5, -1.0, 65504.0], [2, 3, 4]], dtype=np.float16),
    "FP32": np.array([[1.5, -2.25, 3.0e38], [0.0, 1e-30, 4]], dtype=np.float32),
    "FP64": np.array([[1e-300, -2.5, 1e300], [2, 3, 4]], dtype=np.float64),
    "BYTES": np.array([[b"", b"ab", "é".encode()], [b"c", b"d", b"e"]], dtype=object),
}


@pytest.fixture(scope="module")
def small_server(start_server: Any) -> ServerProcess:
    """A server whose max gRPC message size is `SMALL_MAX_MESSAGE` bytes."""
    return start_server({"INFERPOOL_GRPC_MAX_MESSAGE_LENGTH": str(SMALL_MAX_MESSAGE)})


@pytest.fixture(scope="module")
def grpc_client(server: ServerProcess) -> Iterator[triton_grpc.InferenceServerClient]:
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def http_client(server: ServerProcess) -> Iterator[triton_http.InferenceServerClient]:
    client = triton_http.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def stub(server: ServerProcess) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    """inferpool's own stub, for requests that tritonclient cannot build."""
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def grpc_infer(
    client: triton_grpc.InferenceServerClient,
    array: np.ndarray[Any, Any],
    datatype: str,
    model: str = "echo",
) -> triton_grpc.InferResult:
    tensor = triton_grpc.InferInput("x", list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return client.infer(model, [tensor])


def http_infer(
    client: triton_http.InferenceServerClient,
    array: np.ndarray[Any, Any],
    datatype: str,
    binary: bool,
) -> np.ndarray[Any, Any]:
    """Send `array` to the echo model over REST and return the output as
    tritonclient.http decodes it, with two of its client-side conversions
    undone: it returns JSON BYTES elements as str (sent as UTF-8 here), and
    an empty binary output as float64 whatever its datatype (given the
    datatype the server sent here)."""
    tensor = triton_http.InferInput("x", list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    requested = triton_http.InferRequestedOutput("x", binary_data=binary)
    result = client.infer("echo", [tensor], outputs=[requested])
    output = result.as_numpy("x")
    sent_datatype = result.get_output("x")["datatype"]
    assert sent_datatype == datatype
    if output.size == 0:
        dtype = object if datatype == "BYTES" else triton_to_np_dtype(datatype)
        return output.astype(dtype)
    if datatype == "BYTES" and not binary:
        encoded = [item.encode() for item in output.ravel().tolist()]
        return np.array(encoded, dtype=object).reshape(output.shape)
    return output


def assert_serves(client: triton_grpc.InferenceServerClient) -> None:
    """Check that the server is live and still answers an inference."""
    assert client.is_server_live()
    result = grpc_infer(client, ARRAYS["FP32"], "FP32")
    np.testing.assert_array_equal(result.as_numpy("x"), ARRAYS["FP32"])


def assert_status(
    raised: pytest.ExceptionInfo[InferenceServerException], code: str
) -> None:
    assert raised.value.status() == f"StatusCode.{code}"


# -- health and metadata -------------------------------------------------------


def test_server_live_and_ready(grpc_client: triton_grpc.InferenceServerClient) -> None:
    assert grpc_client.is_server_live()
    assert grpc_client.is_server_ready()


def test_model_ready(grpc_client: triton_grpc.InferenceServerClient) -> None:
    assert grpc_client.is_model_ready("echo")
    assert grpc_client.is_model_ready("echo", "v1")


def test_server_metadata(
    grpc_client: triton_grpc.InferenceServerClient,
    http_client: triton_http.InferenceServerClient,
) -> None:
    metadata = grpc_client.get_server_metadata()
    from_rest = http_client.get_server_metadata()
    assert metadata.name == from_rest["name"]
    assert metadata.version == from_rest["version"]
    assert list(metadata.extensions) == ["model_repository"]


def test_model_metadata(
    grpc_client: triton_grpc.InferenceServerClient,
    http_client: triton_http.InferenceServerClient,
) -> None:
    metadata = grpc_client.get_model_metadata("echo")
    from_rest = http_client.get_model_metadata("echo")
    assert metadata.name == "echo"
    assert list(metadata.versions) == from_rest["versions"]
    assert metadata.platform == from_rest["platform"]
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [
        ("x", "FP32", [-1, 3])
    ]
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.outputs] == [
        ("x", "FP32", [-1, 3])
    ]


# -- inference -----------------------------------------------------------------


@pytest.mark.parametrize("datatype", list(ARRAYS))
def test_infer_matches_rest(
    datatype: str,
    grpc_client: triton_grpc.InferenceServerClient,
    http_client: triton_http.InferenceServerClient,
) -> None:
    array = ARRAYS[datatype]
    result = grpc_infer(grpc_client, array, datatype)
    output = result.as_numpy("x")
    assert result.get_output("x").datatype == datatype
    assert output.dtype == array.dtype
    assert output.shape == array.shape
    np.testing.assert_array_equal(output, array)
    for binary in (True, False):
        from_rest = http_infer(http_client, array, datatype, binary)
        assert from_rest.dtype == output.dtype, f"binary_data={binary}"
        assert from_rest.shape == output.shape, f"binary_data={binary}"
        np.testing.assert_array_equal(
            from_rest, output, err_msg=f"binary_data={binary}"
        )


def test_infer_response_fields(grpc_client: triton_grpc.InferenceServerClient) -> None:
    tensor = triton_grpc.InferInput("x", [1, 3], "FP32")
    tensor.set_data_from_numpy(np.ones((1, 3), np.float32))
    response = grpc_client.infer(
        "echo", [tensor], request_id="request-7", parameters={"mode": "fast", "n": 3}
    ).get_response()
    assert response.model_name == "echo"
    assert response.model_version == "v1"
    assert response.id == "request-7"
    assert response.parameters["mode"].string_param == "fast"
    assert response.parameters["n"].int64_param == 3


def test_infer_arbitrary_bytes(grpc_client: triton_grpc.InferenceServerClient) -> None:
    array = np.array([b"\x00\xff", b"", b"\x80" * 1000], dtype=object)
    output = grpc_infer(grpc_client, array, "BYTES").as_numpy("x")
    assert output.tolist() == array.tolist()


@pytest.mark.parametrize("datatype", ["FP32", "BYTES", "BOOL", "FP16"])
def test_infer_empty_tensor(
    datatype: str,
    grpc_client: triton_grpc.InferenceServerClient,
    http_client: triton_http.InferenceServerClient,
) -> None:
    dtype = object if datatype == "BYTES" else ARRAYS[datatype].dtype
    array = np.empty((0, 3), dtype=dtype)
    output = grpc_infer(grpc_client, array, datatype).as_numpy("x")
    assert output.shape == (0, 3)
    from_rest = http_infer(http_client, array, datatype, binary=True)
    assert from_rest.shape == output.shape
    assert from_rest.dtype == output.dtype


def test_infer_large_fp32(
    grpc_client: triton_grpc.InferenceServerClient,
    http_client: triton_http.InferenceServerClient,
) -> None:
    array = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
    assert array.nbytes == 4 * 1024 * 1024
    output = grpc_infer(grpc_client, array, "FP32").as_numpy("x")
    np.testing.assert_array_equal(output, array)
    np.testing.assert_array_equal(http_infer(http_client, array, "FP32", True), output)


def test_infer_typed_contents(
    server: ServerProcess, stub: pb_grpc.GRPCInferenceServiceStub
) -> None:
    request = pb.ModelInferRequest(model_name="echo", id="typed")
    a = request.inputs.add(name="a", datatype="INT16", shape=[3])
    a.contents.int_contents.extend([-5, 0, 300])
    b = request.inputs.add(name="b", datatype="BYTES", shape=[1, 2])
    b.contents.bytes_contents.extend([b"p", b"q"])
    request.parameters["flag"].bool_param = True
    response = stub.ModelInfer(request)
    assert len(response.raw_output_contents) == 0
    assert list(response.outputs[0].contents.int_contents) == [-5, 0, 300]
    assert list(response.outputs[1].contents.bytes_contents) == [b"p", b"q"]
    assert list(response.outputs[1].shape) == [1, 2]
    assert response.id == "typed"
    assert response.parameters["flag"].bool_param is True


# -- repository ----------------------------------------------------------------


def test_repository_index(grpc_client: triton_grpc.InferenceServerClient) -> None:
    index = grpc_client.get_model_repository_index()
    models = {(m.name, m.version): (m.state, m.reason) for m in index.models}
    assert models[("echo", "v1")] == ("READY", "")
    assert models[("failing", "")] == ("READY", "")


def test_repository_unload_and_load(
    grpc_client: triton_grpc.InferenceServerClient,
) -> None:
    grpc_client.unload_model("echo")
    with pytest.raises(InferenceServerException) as raised:
        grpc_infer(grpc_client, ARRAYS["FP32"], "FP32")
    assert_status(raised, "NOT_FOUND")
    ready_only = grpc_client.get_model_repository_index()
    assert [m.name for m in ready_only.models if m.state == "READY"] == ["failing"]

    grpc_client.load_model("echo")
    assert grpc_client.is_model_ready("echo")
    assert_serves(grpc_client)


def test_repository_load_unknown(
    grpc_client: triton_grpc.InferenceServerClient,
) -> None:
    with pytest.raises(InferenceServerException) as raised:
        grpc_client.load_model("no-such-model")
    assert_status(raised, "NOT_FOUND")
    assert "no-such-model" in raised.value.message()


def test_repository_load_with_config(
    grpc_client: triton_grpc.InferenceServerClient,
) -> None:
    with pytest.raises(InferenceServerException) as raised:
        grpc_client.load_model("echo", config="{}")
    assert_status(raised, "INVALID_ARGUMENT")
    assert "parameters are not supported, received ['config']" in raised.value.message()


def test_repository_unload_unknown(
    grpc_client: triton_grpc.InferenceServerClient,
) -> None:
    with pytest.raises(InferenceServerException) as raised:
        grpc_client.unload_model("no-such-model")
    assert_status(raised, "NOT_FOUND")


# -- errors --------------------------------------------------------------------


@pytest.mark.parametrize("call", ["infer", "is_model_ready", "get_model_metadata"])
def test_unknown_model_not_found(
    call: str, grpc_client: triton_grpc.InferenceServerClient
) -> None:
    with pytest.raises(InferenceServerException) as raised:
        if call == "infer":
            grpc_infer(grpc_client, ARRAYS["FP32"], "FP32", model="no-such-model")
        else:
            getattr(grpc_client, call)("no-such-model")
    assert_status(raised, "NOT_FOUND")
    assert raised.value.message() == "Model 'no-such-model' not found"
    assert_serves(grpc_client)


def test_unknown_version_not_found(
    grpc_client: triton_grpc.InferenceServerClient,
) -> None:
    tensor = triton_grpc.InferInput("x", [1], "FP32")
    tensor.set_data_from_numpy(np.ones(1, np.float32))
    with pytest.raises(InferenceServerException) as raised:
        grpc_client.infer("echo", [tensor], model_version="v9")
    assert_status(raised, "NOT_FOUND")
    assert raised.value.message() == "Model 'echo' with version 'v9' not found"


def test_model_raises_internal(grpc_client: triton_grpc.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException) as raised:
        grpc_infer(grpc_client, ARRAYS["FP32"], "FP32", model="failing")
    assert_status(raised, "INTERNAL")
    assert raised.value.message() == (
        "failing.CalibrationError: sensor offset is not calibrated"
    )
    assert_serves(grpc_client)


def test_raw_length_invalid_argument(
    grpc_client: triton_grpc.InferenceServerClient,
    stub: pb_grpc.GRPCInferenceServiceStub,
) -> None:
    request = pb.ModelInferRequest(model_name="echo")
    request.inputs.add(name="pixels", datatype="FP32", shape=[2, 3])
    request.raw_input_contents.append(b"\x00" * 20)
    with pytest.raises(grpc.RpcError) as raised:
        stub.ModelInfer(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == (
        "Input 'pixels': raw_input_contents[0] has 20 bytes but shape [2, 3] of "
        "FP32 needs 24 bytes"
    )
    assert_serves(grpc_client)


def test_mixed_contents_invalid_argument(
    stub: pb_grpc.GRPCInferenceServiceStub,
) -> None:
    request = pb.ModelInferRequest(model_name="echo")
    request.inputs.add(name="a", datatype="FP32", shape=[1])
    typed = request.inputs.add(name="b", datatype="FP32", shape=[1])
    typed.contents.fp32_contents.append(1.0)
    request.raw_input_contents.extend([b"\x00" * 4, b"\x00" * 4])
    with pytest.raises(grpc.RpcError) as raised:
        stub.ModelInfer(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Input 'b': has fp32_contents but the request uses raw_input_contents" in (
        raised.value.details()
    )


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (b"\x0a\x40echo", "Malformed ModelInferRequest"),
        (b"", "ModelInferRequest: missing model_name"),
        # A valid name followed by a field that protobuf cannot parse.
        (b"\x0a\x04echo\x2a\x03\x0a\x05a", "Invalid ModelInferRequest"),
    ],
)
def test_malformed_bytes_invalid_argument(
    body: bytes,
    details: str,
    server: ServerProcess,
    grpc_client: triton_grpc.InferenceServerClient,
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        with pytest.raises(grpc.RpcError) as raised:
            call(body)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details in raised.value.details()
    assert_serves(grpc_client)


def test_message_over_max_resource_exhausted(small_server: ServerProcess) -> None:
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{small_server.grpc_port}")
    try:
        array = np.zeros(SMALL_MAX_MESSAGE // 4, np.float32)
        with pytest.raises(InferenceServerException) as raised:
            grpc_infer(client, array, "FP32")
        assert_status(raised, "RESOURCE_EXHAUSTED")
        assert_serves(client)
    finally:
        client.close()


def test_response_over_max_resource_exhausted(small_server: ServerProcess) -> None:
    # The largest request within the max size, whose response is over it
    # because the response adds the model version (4 bytes).
    def request_of(size: int) -> pb.ModelInferRequest:
        request = pb.ModelInferRequest(model_name="echo")
        request.inputs.add(name="x", datatype="UINT8", shape=[size])
        request.raw_input_contents.append(b"\x01" * size)
        return request

    size = SMALL_MAX_MESSAGE - 64
    while request_of(size + 1).ByteSize() <= SMALL_MAX_MESSAGE:
        size += 1
    request = request_of(size)
    assert request.ByteSize() > SMALL_MAX_MESSAGE - 4
    with grpc.insecure_channel(f"127.0.0.1:{small_server.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.ModelInfer(request)
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        smaller = request_of(size - 64)
        assert stub.ModelInfer(smaller).raw_output_contents[0] == b"\x01" * (size - 64)


def test_server_serves_after_errors(
    grpc_client: triton_grpc.InferenceServerClient, server: ServerProcess
) -> None:
    assert grpc_client.is_server_ready()
    assert_serves(grpc_client)
    status, _ = server.json("GET", "/v2/health/ready")
    assert status == 200


@pytest.mark.parametrize(
    "method",
    [
        "ServerLive",
        "ServerReady",
        "ModelReady",
        "ServerMetadata",
        "ModelMetadata",
        "ModelInfer",
        "RepositoryIndex",
        "RepositoryModelLoad",
        "RepositoryModelUnload",
    ],
)
def test_garbage_bytes_are_invalid_argument(
    server: ServerProcess, grpc_client: triton_grpc.InferenceServerClient, method: str
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = channel.unary_unary(f"/inference.GRPCInferenceService/{method}")
        with pytest.raises(grpc.RpcError) as raised:
            call(b"\xff\xff\xff\xff\xff", timeout=10)

    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT, (
        raised.value.details()
    )
    assert_serves(grpc_client)
