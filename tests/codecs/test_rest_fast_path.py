"""The single-pass decoder of flat float requests must agree with the
general decoder on every body: the same request, or an error from both."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferpool.codecs import rest
from inferpool.errors import InvalidRequest

FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(-(2**70), 2**70),
    st.sampled_from([65504.0, 65519.0, 65520.0, 3.4028235e38, 3.5e38, -1e300]),
)
ELEMENTS = st.one_of(FLOATS, st.booleans(), st.text(max_size=3), st.none())


@st.composite
def tensors(draw: Any) -> dict[str, Any]:
    rows = draw(st.integers(0, 3))
    columns = draw(st.integers(1, 3))
    shape = draw(
        st.sampled_from([[rows, columns], [rows * columns], [rows, columns + 1]])
    )
    values = draw(
        st.lists(
            draw(st.sampled_from([FLOATS, ELEMENTS])),
            min_size=rows * columns,
            max_size=rows * columns,
        )
    )
    data: Any = values
    if draw(st.booleans()) and rows and len(shape) == 2:
        data = [values[i * columns : (i + 1) * columns] for i in range(rows)]
    tensor: dict[str, Any] = {
        "name": draw(st.sampled_from(["x", "y", "INT8"])),
        "shape": shape,
        "datatype": draw(st.sampled_from(["FP16", "FP32", "FP64", "INT32", "fp32"])),
        "data": data,
    }
    if draw(st.booleans()):
        tensor["parameters"] = {"content_type": "np"}
    return tensor


@st.composite
def bodies(draw: Any) -> bytes:
    request: dict[str, Any] = {
        "inputs": draw(st.lists(tensors(), min_size=1, max_size=2))
    }
    if draw(st.booleans()):
        request["id"] = draw(st.sampled_from(["r1", 7]))
    if draw(st.booleans()):
        request["outputs"] = [
            {"name": name}
            for name in draw(st.lists(st.sampled_from(["a", "b"]), max_size=2))
        ]
    return json.dumps(request).encode()


def general(body: bytes) -> Any:
    original = rest._decode_flat_float_request
    rest._decode_flat_float_request = lambda header: None  # type: ignore[assignment]
    try:
        return rest.decode_rest_request(body)
    finally:
        rest._decode_flat_float_request = original  # type: ignore[assignment]


def outcome(decode: Any, body: bytes) -> Any:
    try:
        request = decode(body)
    except InvalidRequest:
        return "InvalidRequest"
    return (
        [
            (
                i.name,
                i.shape,
                str(i.datatype),
                i.data.dtype.str,
                i.data.tobytes(),
                dict(i.parameters or {}),
            )
            for i in request.inputs
        ],
        request.id,
        [(o.name, o.parameters) for o in request.outputs or []],
        request.parameters,
    )


@settings(max_examples=400, deadline=None)
@given(bodies())
def test_fast_path_agrees_with_general_decoder(body: bytes) -> None:
    assert outcome(rest.decode_rest_request, body) == outcome(general, body)


def test_fast_path_taken_for_flat_fp32() -> None:
    body = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2, 2],
                    "datatype": "FP32",
                    "data": [1, 2.5, -3, 4],
                }
            ]
        }
    ).encode()

    request = rest._decode_flat_float_request(body)

    assert request is not None
    np.testing.assert_array_equal(
        request.inputs[0].data, np.array([[1, 2.5], [-3, 4]], dtype=np.float32)
    )


@pytest.mark.parametrize(
    "tensor",
    [
        {"name": "x", "shape": [1], "datatype": "FP16", "data": [65519.0]},
        {"name": "x", "shape": [1], "datatype": "FP32", "data": [True]},
        {"name": "x", "shape": [2, 1], "datatype": "FP32", "data": [[1], [2]]},
        {"name": "x", "shape": [1], "datatype": "INT64", "data": [1]},
    ],
    ids=["fp16 above max", "bool", "nested", "integer datatype"],
)
def test_fast_path_declines(tensor: dict[str, Any]) -> None:
    body = json.dumps({"inputs": [tensor]}).encode()

    assert rest._decode_flat_float_request(body) is None
