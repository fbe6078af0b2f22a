"""Wire compatibility of inferpool's V2 gRPC stubs with tritonclient's.

Both sides must agree on every field number, type and label, or a message
that one side serialises parses into the wrong fields on the other side
without any error.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator, Iterable, Iterator

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from google.protobuf import descriptor, descriptor_pb2, json_format
from grpc_tools import protoc
from tritonclient.grpc import service_pb2 as triton_pb2
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from inferpool.grpc import grpc_service_pb2 as ours_pb2
from inferpool.grpc import grpc_service_pb2_grpc as ours_pb2_grpc

PROTO_PATH = pathlib.Path(ours_pb2_grpc.__file__).with_name("grpc_service.proto")

FieldDescriptorProto = descriptor_pb2.FieldDescriptorProto

# The calls that the inferpool server must offer: the V2 core calls and the
# model repository calls of tritonclient.
EXPECTED_METHODS = {
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelInfer",
    "RepositoryIndex",
    "RepositoryModelLoad",
    "RepositoryModelUnload",
}


def iter_messages(
    containers: list[descriptor.Descriptor],
) -> Iterator[descriptor.Descriptor]:
    """Yield each message descriptor and, depth first, all its nested ones."""
    for message in containers:
        yield message
        yield from iter_messages(list(message.nested_types))


def all_messages(file: descriptor.FileDescriptor) -> dict[str, descriptor.Descriptor]:
    top_level = list(file.message_types_by_name.values())
    return {message.full_name: message for message in iter_messages(top_level)}


OUR_MESSAGES = all_messages(ours_pb2.DESCRIPTOR)
TRITON_MESSAGES = all_messages(triton_pb2.DESCRIPTOR)


def field_layout(message: descriptor.Descriptor) -> dict[str, tuple[object, ...]]:
    """Map each field name to its number, type, label, message type and oneof.

    The layout is read from the DescriptorProto because FieldDescriptor.label
    is missing from protobuf 7.36.
    """
    message_proto = descriptor_pb2.DescriptorProto()
    message.CopyToProto(message_proto)
    oneof_names = [oneof.name for oneof in message_proto.oneof_decl]
    layout: dict[str, tuple[object, ...]] = {}
    for field in message_proto.field:
        oneof = (
            oneof_names[field.oneof_index] if field.HasField("oneof_index") else None
        )
        layout[field.name] = (
            field.number,
            FieldDescriptorProto.Type.Name(field.type),
            FieldDescriptorProto.Label.Name(field.label),
            field.type_name,
            oneof,
        )
    return layout


def test_messages_all_defined_by_tritonclient() -> None:
    missing = sorted(set(OUR_MESSAGES) - set(TRITON_MESSAGES))
    assert missing == []


@pytest.mark.parametrize("full_name", sorted(OUR_MESSAGES))
def test_message_layout_matches_tritonclient(full_name: str) -> None:
    if full_name not in TRITON_MESSAGES:
        pytest.fail(f"{full_name} is not defined by tritonclient")
    ours = OUR_MESSAGES[full_name]
    theirs = TRITON_MESSAGES[full_name]

    assert field_layout(ours) == field_layout(theirs)
    assert ours.GetOptions().map_entry == theirs.GetOptions().map_entry


def test_service_offers_expected_methods() -> None:
    service = ours_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert service.full_name == "inference.GRPCInferenceService"
    assert {method.name for method in service.methods} == EXPECTED_METHODS


@pytest.mark.parametrize("method_name", sorted(EXPECTED_METHODS))
def test_method_matches_tritonclient(method_name: str) -> None:
    ours = ours_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    theirs = triton_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    our_method = ours.methods_by_name[method_name]
    their_method = theirs.methods_by_name[method_name]

    assert our_method.input_type.full_name == their_method.input_type.full_name
    assert our_method.output_type.full_name == their_method.output_type.full_name
    assert our_method.client_streaming == their_method.client_streaming
    assert our_method.server_streaming == their_method.server_streaming


def clear_json_names(messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
    for message in messages:
        for field in message.field:
            field.ClearField("json_name")
        clear_json_names(message.nested_type)


def test_stubs_match_proto_file(tmp_path: pathlib.Path) -> None:
    """Fail when grpc_service.proto was edited without regenerating the stubs."""
    descriptor_set_path = tmp_path / "grpc_service.pb"
    exit_code = protoc.main(
        [
            "grpc_tools.protoc",
            f"--proto_path={PROTO_PATH.parent}",
            f"--descriptor_set_out={descriptor_set_path}",
            PROTO_PATH.name,
        ]
    )
    assert exit_code == 0
    compiled = descriptor_pb2.FileDescriptorSet.FromString(
        descriptor_set_path.read_bytes()
    )
    committed = descriptor_pb2.FileDescriptorProto()
    ours_pb2.DESCRIPTOR.CopyToProto(committed)

    assert len(compiled.file) == 1
    fresh = compiled.file[0]
    # protoc's Python generator drops json_name from the descriptor that it
    # embeds, so drop it from the fresh one too.
    clear_json_names(fresh.message_type)
    assert fresh == committed, "run scripts/generate_grpc.sh"


def set_parameters(parameters: object, values: dict[str, object]) -> None:
    """Set InferParameter map entries, picking the oneof member by value type."""
    for key, value in values.items():
        entry = parameters[key]  # type: ignore[index]
        if isinstance(value, bool):
            entry.bool_param = value
        elif isinstance(value, int) and value >= 2**63:
            entry.uint64_param = value
        elif isinstance(value, int):
            entry.int64_param = value
        elif isinstance(value, float):
            entry.double_param = value
        else:
            entry.string_param = value


REQUEST_PARAMETERS: dict[str, object] = {
    "flag": True,
    "priority": -3,
    "trace_id": "abc-123",
    "threshold": 0.25,
    "big": 2**64 - 1,
}


def build_triton_request() -> triton_pb2.ModelInferRequest:
    features = np.arange(12, dtype=np.float32).reshape(3, 4)
    names = np.array([b"setosa", b"", "versicolor \u00e9".encode()], dtype=np.object_)

    request = triton_pb2.ModelInferRequest(
        model_name="iris", model_version="2", id="request-1"
    )
    set_parameters(request.parameters, REQUEST_PARAMETERS)

    features_input = request.inputs.add(name="features", datatype="FP32", shape=[3, 4])
    set_parameters(features_input.parameters, {"binary_data_size": 48})
    request.raw_input_contents.append(features.tobytes())

    request.inputs.add(name="names", datatype="BYTES", shape=[3])
    request.raw_input_contents.append(serialize_byte_tensor(names).item())

    output = request.outputs.add(name="predict")
    set_parameters(output.parameters, {"classification": 2})
    return request


def test_triton_request_parses_with_ours() -> None:
    triton_request = build_triton_request()

    request = ours_pb2.ModelInferRequest.FromString(triton_request.SerializeToString())

    assert request.model_name == "iris"
    assert request.model_version == "2"
    assert request.id == "request-1"
    assert request.parameters["flag"].bool_param is True
    assert request.parameters["priority"].int64_param == -3
    assert request.parameters["trace_id"].string_param == "abc-123"
    assert request.parameters["threshold"].double_param == 0.25
    assert request.parameters["big"].uint64_param == 2**64 - 1
    assert request.parameters["big"].WhichOneof("parameter_choice") == "uint64_param"
    assert [tensor.name for tensor in request.inputs] == ["features", "names"]
    assert list(request.inputs[0].shape) == [3, 4]
    assert request.inputs[0].datatype == "FP32"
    assert request.inputs[0].parameters["binary_data_size"].int64_param == 48
    assert not request.inputs[0].HasField("contents")
    assert request.inputs[1].datatype == "BYTES"
    assert list(request.raw_input_contents) == list(triton_request.raw_input_contents)
    features = np.frombuffer(request.raw_input_contents[0], dtype="<f4")
    np.testing.assert_array_equal(features, np.arange(12, dtype=np.float32))
    names = deserialize_bytes_tensor(request.raw_input_contents[1])
    assert list(names) == [b"setosa", b"", "versicolor \u00e9".encode()]
    assert request.outputs[0].name == "predict"
    assert request.outputs[0].parameters["classification"].int64_param == 2
    assert json_format.MessageToDict(request) == json_format.MessageToDict(
        triton_request
    )


def test_typed_contents_parse_with_ours() -> None:
    triton_request = triton_pb2.ModelInferRequest(model_name="typed")
    contents = triton_request.inputs.add(name="all", datatype="FP64").contents
    contents.bool_contents.extend([True, False])
    contents.int_contents.extend([-(2**31), 2**31 - 1])
    contents.int64_contents.extend([-(2**63), 2**63 - 1])
    contents.uint_contents.extend([0, 2**32 - 1])
    contents.uint64_contents.extend([0, 2**64 - 1])
    contents.fp32_contents.extend([1.5, -0.0])
    contents.fp64_contents.extend([1e300, -2.5])
    contents.bytes_contents.extend([b"\x00\xff", b""])

    request = ours_pb2.ModelInferRequest.FromString(triton_request.SerializeToString())

    parsed = request.inputs[0].contents
    assert list(parsed.bool_contents) == [True, False]
    assert list(parsed.int_contents) == [-(2**31), 2**31 - 1]
    assert list(parsed.int64_contents) == [-(2**63), 2**63 - 1]
    assert list(parsed.uint_contents) == [0, 2**32 - 1]
    assert list(parsed.uint64_contents) == [0, 2**64 - 1]
    assert list(parsed.fp32_contents) == [1.5, -0.0]
    assert list(parsed.fp64_contents) == [1e300, -2.5]
    assert list(parsed.bytes_contents) == [b"\x00\xff", b""]
    assert request.SerializeToString() == triton_request.SerializeToString()


def build_our_response() -> ours_pb2.ModelInferResponse:
    response = ours_pb2.ModelInferResponse(
        model_name="iris", model_version="2", id="request-1"
    )
    set_parameters(response.parameters, {"sequence_end": True})

    predict = response.outputs.add(name="predict", datatype="INT64", shape=[3])
    set_parameters(predict.parameters, {"binary_data_size": 24})
    response.raw_output_contents.append(np.array([0, 2, 1], dtype="<i8").tobytes())

    response.outputs.add(name="labels", datatype="BYTES", shape=[3])
    label_array = np.array([b"setosa", b"virginica", b"versicolor"], dtype=np.object_)
    response.raw_output_contents.append(serialize_byte_tensor(label_array).item())
    return response


def test_our_response_parses_with_triton() -> None:
    response = build_our_response()

    triton_response = triton_pb2.ModelInferResponse.FromString(
        response.SerializeToString()
    )

    assert triton_response.model_name == "iris"
    assert triton_response.model_version == "2"
    assert triton_response.id == "request-1"
    assert triton_response.parameters["sequence_end"].bool_param is True
    assert [tensor.name for tensor in triton_response.outputs] == ["predict", "labels"]
    assert list(triton_response.outputs[0].shape) == [3]
    assert triton_response.outputs[0].parameters["binary_data_size"].int64_param == 24
    assert list(triton_response.raw_output_contents) == list(
        response.raw_output_contents
    )
    assert json_format.MessageToDict(triton_response) == json_format.MessageToDict(
        response
    )

    # InferResult is what tritonclient's infer() returns to its callers.
    result = triton_grpc.InferResult(triton_response)
    np.testing.assert_array_equal(result.as_numpy("predict"), [0, 2, 1])
    labels = result.as_numpy("labels")
    assert labels is not None
    assert list(labels) == [b"setosa", b"virginica", b"versicolor"]


def test_repository_messages_round_trip() -> None:
    load = triton_pb2.RepositoryModelLoadRequest(model_name="iris")
    load.parameters["config"].string_param = '{"backend": "python"}'
    load.parameters["file:1/model.joblib"].bytes_param = b"\x80\x04model"

    parsed_load = ours_pb2.RepositoryModelLoadRequest.FromString(
        load.SerializeToString()
    )

    assert parsed_load.model_name == "iris"
    assert parsed_load.parameters["config"].string_param == '{"backend": "python"}'
    assert parsed_load.parameters["file:1/model.joblib"].bytes_param == b"\x80\x04model"

    index = ours_pb2.RepositoryIndexResponse()
    index.models.add(
        name="iris", version="2", state="UNAVAILABLE", reason="load failed"
    )

    parsed_index = triton_pb2.RepositoryIndexResponse.FromString(
        index.SerializeToString()
    )

    assert len(parsed_index.models) == 1
    assert parsed_index.models[0].name == "iris"
    assert parsed_index.models[0].version == "2"
    assert parsed_index.models[0].state == "UNAVAILABLE"
    assert parsed_index.models[0].reason == "load failed"


class EchoServicer(ours_pb2_grpc.GRPCInferenceServiceServicer):
    """Servicer that reports itself live and echoes inputs back as outputs."""

    async def ServerLive(
        self, request: ours_pb2.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> ours_pb2.ServerLiveResponse:
        return ours_pb2.ServerLiveResponse(live=True)

    async def ModelInfer(
        self, request: ours_pb2.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> ours_pb2.ModelInferResponse:
        response = ours_pb2.ModelInferResponse(
            model_name=request.model_name, id=request.id
        )
        for tensor in request.inputs:
            response.outputs.add(
                name=tensor.name, datatype=tensor.datatype, shape=tensor.shape
            )
        response.raw_output_contents.extend(request.raw_input_contents)
        return response


@pytest.fixture
async def server_address() -> AsyncIterator[str]:
    server = grpc.aio.server()
    ours_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(EchoServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    assert port > 0
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


@pytest.fixture
def triton_client(server_address: str) -> Iterator[triton_grpc.InferenceServerClient]:
    client = triton_grpc.InferenceServerClient(url=server_address)
    try:
        yield client
    finally:
        client.close()


# tritonclient.grpc.InferenceServerClient blocks its calling thread, and the
# server runs on this test's event loop, so each call runs in a worker thread.


async def test_live_server_live(
    triton_client: triton_grpc.InferenceServerClient,
) -> None:
    live = await asyncio.to_thread(triton_client.is_server_live)
    assert live is True


async def test_live_unimplemented_call_fails(
    triton_client: triton_grpc.InferenceServerClient,
) -> None:
    with pytest.raises(triton_grpc.InferenceServerException) as raised:
        await asyncio.to_thread(triton_client.is_server_ready)
    assert raised.value.status() == "StatusCode.UNIMPLEMENTED"


async def test_live_infer_raw_tensors(
    triton_client: triton_grpc.InferenceServerClient,
) -> None:
    features = np.linspace(0.0, 1.0, 8, dtype=np.float32).reshape(2, 4)
    infer_input = triton_grpc.InferInput("features", [2, 4], "FP32")
    infer_input.set_data_from_numpy(features)

    result = await asyncio.to_thread(
        triton_client.infer, "echo", [infer_input], request_id="live-1"
    )

    response = result.get_response()
    assert response.model_name == "echo"
    assert response.id == "live-1"
    np.testing.assert_array_equal(result.as_numpy("features"), features)
