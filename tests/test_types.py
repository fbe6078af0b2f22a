from __future__ import annotations

import copy
import pickle

import msgspec
import numpy as np
import pytest

from inferpool.types import (
    Datatype,
    InferenceRequest,
    InferenceResponse,
    MetadataModelResponse,
    MetadataServerResponse,
    MetadataTensor,
    ModelState,
    Parameters,
    RepositoryIndexRequest,
    RepositoryIndexResponse,
    RepositoryIndexResponseItem,
    RequestInput,
    RequestOutput,
    ResponseOutput,
    State,
    decode_hook,
    encode_hook,
)


def test_parameters_attribute_access() -> None:
    params = Parameters(content_type="np", custom=3)
    assert params.content_type == "np"
    assert params.custom == 3
    assert params.headers is None
    params.extra = "x"
    assert params["extra"] == "x"
    del params.extra
    assert "extra" not in params
    with pytest.raises(AttributeError):
        del params.missing


def test_parameters_dunder_lookup_not_keys() -> None:
    params = Parameters(a=1)
    with pytest.raises(AttributeError):
        params.__wrapped__  # noqa: B018
    assert copy.deepcopy(params) == params
    assert type(copy.copy(params)) is Parameters


def test_parameters_pickle_keeps_type() -> None:
    params = Parameters(content_type="str", nested={"k": [1, 2]})
    restored = pickle.loads(pickle.dumps(params))
    assert type(restored) is Parameters
    assert restored == params
    assert restored.content_type == "str"


def test_parameters_extra_keys_reencoded() -> None:
    body = b'{"content_type":"np","binary_data_size":12,"x":{"y":[1]}}'
    params = msgspec.json.decode(body, type=Parameters, dec_hook=decode_hook)
    assert type(params) is Parameters
    assert params.binary_data_size == 12
    assert msgspec.json.decode(msgspec.json.encode(params)) == msgspec.json.decode(body)


def test_decode_hook_rejects_non_object() -> None:
    with pytest.raises(msgspec.ValidationError, match="parameters"):
        msgspec.json.decode(
            b'{"name":"o","parameters":5}', type=RequestOutput, dec_hook=decode_hook
        )


def test_request_decodes_with_hook() -> None:
    body = (
        b'{"id":"1","parameters":{"content_type":"pd"},"inputs":[{"name":"a",'
        b'"shape":[2],"datatype":"INT32","data":[1,2],"parameters":{"k":1}}]}'
    )
    request = msgspec.json.decode(body, type=InferenceRequest, dec_hook=decode_hook)
    assert request.id == "1"
    assert isinstance(request.parameters, Parameters)
    assert request.parameters.content_type == "pd"
    assert isinstance(request.inputs[0].parameters, Parameters)
    assert request.inputs[0].data == [1, 2]
    assert request.outputs is None


@pytest.mark.parametrize(
    ("datatype", "dtype"),
    [
        (Datatype.BOOL, np.bool_),
        (Datatype.UINT8, np.uint8),
        (Datatype.UINT16, np.uint16),
        (Datatype.UINT32, np.uint32),
        (Datatype.UINT64, np.uint64),
        (Datatype.INT8, np.int8),
        (Datatype.INT16, np.int16),
        (Datatype.INT32, np.int32),
        (Datatype.INT64, np.int64),
        (Datatype.FP16, np.float16),
        (Datatype.FP32, np.float32),
        (Datatype.FP64, np.float64),
    ],
)
def test_datatype_numpy_mapping(datatype: Datatype, dtype: type[np.generic]) -> None:
    assert datatype.to_numpy() == np.dtype(dtype)
    assert Datatype.from_numpy(dtype) is datatype
    assert Datatype.from_numpy(np.dtype(dtype).newbyteorder(">")) is datatype
    assert datatype.itemsize == np.dtype(dtype).itemsize
    assert datatype == datatype.value
    assert str(datatype) == datatype.value


def test_datatype_bytes_mapping() -> None:
    assert Datatype.BYTES.to_numpy() == np.dtype(object)
    assert Datatype.BYTES.itemsize is None
    assert Datatype.from_numpy(np.dtype(object)) is Datatype.BYTES
    assert Datatype.from_numpy(np.dtype("S3")) is Datatype.BYTES
    assert Datatype.from_numpy(np.dtype("U3")) is Datatype.BYTES


def test_datatype_unsupported_dtype_raises() -> None:
    with pytest.raises(ValueError, match="complex128 has no V2 datatype"):
        Datatype.from_numpy(np.complex128)


def test_datatype_parse() -> None:
    assert Datatype.parse("FP32") is Datatype.FP32
    with pytest.raises(ValueError, match="unknown datatype 'FLOAT'.*FP32"):
        Datatype.parse("FLOAT")


def test_model_state_names() -> None:
    assert [state.value for state in ModelState] == [
        "UNKNOWN",
        "READY",
        "UNAVAILABLE",
        "LOADING",
        "UNLOADING",
    ]
    assert State is ModelState


def test_structs_pickle_with_arrays() -> None:
    request = InferenceRequest(
        id="r",
        parameters=Parameters(content_type="np"),
        inputs=[
            RequestInput(
                name="x",
                shape=[2, 2],
                datatype=Datatype.FP32,
                data=np.arange(4, dtype=np.float32).reshape(2, 2),
                parameters=Parameters(a=1),
            )
        ],
        outputs=[RequestOutput(name="y", parameters=Parameters(binary_data=True))],
    )
    restored = pickle.loads(pickle.dumps(request, protocol=5))
    assert restored.id == "r"
    assert type(restored.parameters) is Parameters
    assert restored.inputs[0].datatype is Datatype.FP32
    np.testing.assert_array_equal(restored.inputs[0].data, request.inputs[0].data)
    assert restored.inputs[0].data.dtype == np.float32
    assert restored.outputs is not None
    assert restored.outputs[0].parameters == {"binary_data": True}


def test_response_encodes_arrays_flat() -> None:
    response = InferenceResponse(
        model_name="m",
        outputs=[
            ResponseOutput(
                name="o",
                shape=[2, 2],
                datatype=Datatype.INT64,
                data=np.array([[1, 2], [3, 4]]),
            ),
            ResponseOutput(
                name="s",
                shape=[1],
                datatype="BYTES",
                data=np.array([b"hi"], dtype=object),
            ),
        ],
    )
    encoded = msgspec.json.decode(msgspec.json.encode(response, enc_hook=encode_hook))
    assert encoded == {
        "model_name": "m",
        "outputs": [
            {"name": "o", "shape": [2, 2], "datatype": "INT64", "data": [1, 2, 3, 4]},
            {"name": "s", "shape": [1], "datatype": "BYTES", "data": ["hi"]},
        ],
    }


def test_encode_hook_numpy_scalar() -> None:
    assert msgspec.json.encode([np.float32(1.5)], enc_hook=encode_hook) == b"[1.5]"
    with pytest.raises(TypeError, match="cannot encode objects of type object"):
        msgspec.json.encode([object()], enc_hook=encode_hook)


def test_metadata_and_repository_types() -> None:
    metadata = MetadataModelResponse(
        name="iris",
        versions=["1"],
        platform="sklearn",
        inputs=[MetadataTensor(name="x", datatype="FP32", shape=[-1, 4])],
    )
    assert msgspec.json.decode(msgspec.json.encode(metadata)) == {
        "name": "iris",
        "versions": ["1"],
        "platform": "sklearn",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
    }
    server = MetadataServerResponse(name="inferpool", version="0.1.0")
    assert server.extensions == []
    index = RepositoryIndexResponse(
        [
            RepositoryIndexResponseItem(
                name="iris", version="1", state=ModelState.READY
            ),
            RepositoryIndexResponseItem(
                name="bad", state=ModelState.UNAVAILABLE, reason="load failed"
            ),
        ]
    )
    assert msgspec.json.decode(msgspec.json.encode(index)) == [
        {"name": "iris", "version": "1", "state": "READY"},
        {"name": "bad", "state": "UNAVAILABLE", "reason": "load failed"},
    ]
    decoded = msgspec.json.decode(
        b'[{"name":"a","state":"LOADING"}]', type=RepositoryIndexResponse
    )
    assert decoded[0].state is ModelState.LOADING
    assert msgspec.json.decode(b"{}", type=RepositoryIndexRequest).ready is None
