from __future__ import annotations

import numpy as np
import pytest

from inferpool.codecs import PandasCodec, decode_inference_request
from inferpool.codecs.rest import decode_rest_request, encode_rest_request
from inferpool.errors import InvalidRequest
from inferpool.types import InferenceRequest, RequestInput

pd = pytest.importorskip("pandas")


def test_pandas_request_round_trip_through_rest() -> None:
    frame = pd.DataFrame(
        {
            "sepal_length": np.array([5.1, 4.9], dtype=np.float32),
            "count": np.array([1, 2], dtype=np.int64),
            "label": ["setosa", "versicolor"],
        }
    )
    request = PandasCodec.encode_request(frame)
    assert request.parameters == {"content_type": "pd"}
    assert [item.shape for item in request.inputs] == [[2, 1], [2, 1], [2, 1]]
    body, _ = encode_rest_request(request)
    decoded = decode_inference_request(decode_rest_request(body))
    assert isinstance(decoded, pd.DataFrame)
    assert list(decoded.columns) == ["sepal_length", "count", "label"]
    assert decoded["sepal_length"].dtype == np.float32
    assert decoded["count"].tolist() == [1, 2]
    assert decoded["label"].tolist() == ["setosa", "versicolor"]


def test_pandas_response_round_trip() -> None:
    frame = pd.DataFrame({"predict": np.array([0, 2], dtype=np.int64)})
    response = PandasCodec.encode_response("iris", frame, model_version="1")
    assert response.model_name == "iris"
    assert response.outputs[0].datatype == "INT64"
    decoded = PandasCodec.decode_response(response)
    assert decoded["predict"].tolist() == [0, 2]


def test_pandas_multi_column_tensor_rows() -> None:
    request = InferenceRequest(
        inputs=[
            RequestInput(name="x", shape=[2, 2], datatype="FP64", data=[1, 2, 3, 4]),
            RequestInput(name="y", shape=[2], datatype="INT8", data=[5, 6]),
        ]
    )
    frame = PandasCodec.decode_request(request)
    assert frame["x"][1].tolist() == [3.0, 4.0]
    assert frame["y"].tolist() == [5, 6]


def test_pandas_unequal_lengths_raise() -> None:
    request = InferenceRequest(
        inputs=[
            RequestInput(name="x", shape=[3], datatype="FP64", data=[1, 2, 3]),
            RequestInput(name="y", shape=[2], datatype="INT8", data=[5, 6]),
        ]
    )
    with pytest.raises(InvalidRequest, match="tensors of equal length"):
        PandasCodec.decode_request(request)


def test_pandas_can_encode() -> None:
    assert PandasCodec.can_encode(pd.DataFrame({"a": [1]}))
    assert not PandasCodec.can_encode(np.zeros(1))
