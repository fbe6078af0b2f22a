"""The REST front end against a real server process and real clients."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest
import tritonclient.http as httpclient
from server_helpers import ServerProcess, child_pids

X = {"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]}


def infer_body(*inputs: dict[str, Any], **extra: Any) -> str:
    return json.dumps({"inputs": list(inputs), **extra})


def test_infer_json(server: ServerProcess) -> None:
    status, body = server.json(
        "POST", "/v2/models/doubler/infer", {"id": "r1", "inputs": [X]}
    )

    assert status == 200
    assert body == {
        "model_name": "doubler",
        "model_version": "v1",
        "id": "r1",
        "outputs": [
            {
                "name": "doubled",
                "shape": [2, 3],
                "datatype": "FP32",
                "data": [2.0, 4.0, 6.0, 8.0, 10.0, 12.0],
                "parameters": {"content_type": "np"},
            }
        ],
    }


def test_infer_with_version_in_path(server: ServerProcess) -> None:
    status, body = server.json(
        "POST", "/v2/models/doubler/versions/v1/infer", {"inputs": [X]}
    )

    assert status == 200
    assert body["model_version"] == "v1"


@pytest.mark.parametrize("binary", [False, True])
def test_tritonclient_http(server: ServerProcess, binary: bool) -> None:
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    try:
        array = np.arange(12, dtype=np.float32).reshape(4, 3)
        infer_input = httpclient.InferInput("x", [4, 3], "FP32")
        infer_input.set_data_from_numpy(array, binary_data=binary)
        output = httpclient.InferRequestedOutput("doubled", binary_data=binary)

        result = client.infer("doubler", [infer_input], outputs=[output])

        np.testing.assert_array_equal(result.as_numpy("doubled"), array * 2)
        assert client.is_server_live()
        assert client.is_model_ready("doubler")
        assert client.get_model_metadata("doubler")["inputs"] == [
            {"name": "x", "datatype": "FP32", "shape": [-1, 3]}
        ]
    finally:
        client.close()


def test_health_and_metadata(server: ServerProcess) -> None:
    assert server.request("GET", "/v2/health/live")[0] == 200
    assert server.request("GET", "/v2/health/ready")[0] == 200
    status, metadata = server.json("GET", "/v2")
    assert status == 200
    assert metadata["name"] == "inferpool"
    assert "binary_tensor_data" in metadata["extensions"]
    status, model = server.json("GET", "/v2/models/doubler")
    assert status == 200
    assert model == {
        "name": "doubler",
        "versions": ["v1"],
        "platform": "",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}],
        "outputs": [{"name": "doubled", "datatype": "FP32", "shape": [-1, 3]}],
    }
    assert server.request("GET", "/v2/models/doubler/ready")[0] == 200
    assert server.request("GET", "/v2/models/doubler/versions/v1/ready")[0] == 200


def test_openapi_document(server: ServerProcess) -> None:
    status, document = server.json("GET", "/v2/docs/openapi.json")

    assert status == 200
    assert document["openapi"].startswith("3.")
    assert "/v2/models/{name}/infer" in document["paths"]


def test_docs_page_lists_routes(server: ServerProcess) -> None:
    status, headers, body = server.request("GET", "/v2/docs")

    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert b"/v2/models/{name}/infer" in body
    assert b"<script" not in body


def test_model_exception_is_500_with_class(server: ServerProcess) -> None:
    status, body = server.json(
        "POST",
        "/v2/models/doubler/infer",
        {"inputs": [X], "parameters": {"raise": "boom"}},
    )

    assert status == 500
    assert body == {"error": "ArithmeticError: boom"}


def test_timeout_is_504(server: ServerProcess) -> None:
    payload = {"inputs": [X], "parameters": {"sleep": 3}}

    status, body = server.json("POST", "/v2/models/slow/infer", payload)

    assert status == 504
    assert body == {"error": "Request to model 'slow' timed out after 2s"}


def test_unknown_route_is_404(server: ServerProcess) -> None:
    status, body = server.json("GET", "/v2/nothing/here")

    assert status == 404
    assert body == {"error": "Not found: GET /v2/nothing/here"}


def test_get_on_infer_is_405(server: ServerProcess) -> None:
    status, body = server.json("GET", "/v2/models/doubler/infer")

    assert status == 405
    assert body == {"error": "Method GET is not allowed on /v2/models/doubler/infer"}


def test_wrong_method_is_405(server: ServerProcess) -> None:
    status, body = server.json("DELETE", "/v2/health/live")

    assert status == 405
    assert body == {"error": "Method DELETE is not allowed on /v2/health/live"}


# Each case: a name, the path, the body, the expected status and a regex the
# error message must match.
MALFORMED = [
    ("invalid json", "/v2/models/doubler/infer", "{not json", 400, r"Invalid JSON"),
    ("empty body", "/v2/models/doubler/infer", "", 400, r"JSON"),
    ("json array", "/v2/models/doubler/infer", "[1, 2]", 400, r"object"),
    ("missing inputs", "/v2/models/doubler/infer", "{}", 400, r"inputs"),
    ("inputs not a list", "/v2/models/doubler/infer", '{"inputs": 3}', 400, r"inputs"),
    (
        "input missing name",
        "/v2/models/doubler/infer",
        infer_body({"shape": [1], "datatype": "FP32", "data": [1]}),
        400,
        r"name",
    ),
    (
        "input missing shape",
        "/v2/models/doubler/infer",
        infer_body({"name": "x", "datatype": "FP32", "data": [1]}),
        400,
        r"shape",
    ),
    (
        "input missing datatype",
        "/v2/models/doubler/infer",
        infer_body({"name": "x", "shape": [1], "data": [1]}),
        400,
        r"datatype",
    ),
    (
        "input missing data",
        "/v2/models/doubler/infer",
        infer_body({"name": "x", "shape": [1], "datatype": "FP32"}),
        400,
        r"data",
    ),
    (
        "unknown datatype",
        "/v2/models/doubler/infer",
        infer_body({**X, "datatype": "FP128"}),
        400,
        r"FP128",
    ),
    (
        "shape and data disagree",
        "/v2/models/doubler/infer",
        infer_body({**X, "shape": [2, 2]}),
        400,
        r"shape \[2, 2\] needs 4 elements but data has 6",
    ),
    (
        "negative dimension",
        "/v2/models/doubler/infer",
        infer_body({**X, "shape": [-2, -3]}),
        400,
        r"shape",
    ),
    (
        "shape not ints",
        "/v2/models/doubler/infer",
        infer_body({**X, "shape": ["2", 3]}),
        400,
        r"shape",
    ),
    (
        "string in FP32",
        "/v2/models/doubler/infer",
        infer_body({**X, "data": [1, 2, "three", 4, 5, 6]}),
        400,
        r"Input 'x'",
    ),
    (
        "float in INT64",
        "/v2/models/doubler/infer",
        infer_body({"name": "x", "shape": [2], "datatype": "INT64", "data": [1, 2.5]}),
        400,
        r"Input 'x'",
    ),
    (
        "out of range INT8",
        "/v2/models/doubler/infer",
        infer_body({"name": "x", "shape": [1], "datatype": "INT8", "data": [300]}),
        400,
        r"out of range",
    ),
    (
        "number in BOOL",
        "/v2/models/doubler/infer",
        infer_body({"name": "x", "shape": [1], "datatype": "BOOL", "data": [2]}),
        400,
        r"Input 'x'",
    ),
    (
        "number in BYTES",
        "/v2/models/doubler/infer",
        infer_body({"name": "x", "shape": [1], "datatype": "BYTES", "data": [2]}),
        400,
        r"Input 'x'",
    ),
    (
        "ragged nested data",
        "/v2/models/doubler/infer",
        infer_body({**X, "data": [[1, 2, 3], [4, 5]]}),
        400,
        r"Input 'x'",
    ),
    (
        "duplicate input names",
        "/v2/models/doubler/infer",
        infer_body(X, X),
        400,
        r"[Dd]uplicate",
    ),
    (
        "data not a list",
        "/v2/models/doubler/infer",
        infer_body({**X, "data": "abc"}),
        400,
        r"Input 'x'",
    ),
    (
        "parameters not an object",
        "/v2/models/doubler/infer",
        infer_body(X, parameters=[1]),
        400,
        r"parameters",
    ),
    (
        "outputs not a list",
        "/v2/models/doubler/infer",
        infer_body(X, outputs={"name": "y"}),
        400,
        r"outputs",
    ),
    (
        "unknown model",
        "/v2/models/nope/infer",
        infer_body(X),
        404,
        r"^Model 'nope' not found$",
    ),
    (
        "unknown version",
        "/v2/models/doubler/versions/v9/infer",
        infer_body(X),
        404,
        r"^Model 'doubler' with version 'v9' not found$",
    ),
    (
        "malformed infer path",
        "/v2/models/doubler/extra/infer",
        infer_body(X),
        404,
        r"not found",
    ),
    (
        "unknown model metadata",
        "/v2/models/nope",
        None,
        404,
        r"^Model 'nope' not found$",
    ),
    (
        "binary header longer than body",
        "/v2/models/doubler/infer",
        infer_body(X),
        400,
        r"Inference-Header-Content-Length",
    ),
    (
        "binary header not a number",
        "/v2/models/doubler/infer",
        infer_body(X),
        400,
        r"Inference-Header-Content-Length",
    ),
    ("binary size disagrees", "/v2/models/doubler/infer", None, 400, r"Input 'x'"),
    (
        "body over the limit",
        "/v2/models/doubler/infer",
        None,
        413,
        r"larger than the limit",
    ),
    (
        "number beyond float",
        "/v2/models/doubler/infer",
        '{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1e400]}]}',
        400,
        r"^Input 'x': data\[0\] is out of range for FP32",
    ),
    (
        "nesting too deep",
        "/v2/models/doubler/infer",
        '{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": '
        + "[" * 100_000
        + "]" * 100_000
        + "}]}",
        400,
        r"nested too deeply",
    ),
    (
        "repository index not an object",
        "/v2/repository/index",
        "[1]",
        400,
        r"JSON object",
    ),
    (
        "load unknown model",
        "/v2/repository/models/nope/load",
        "",
        404,
        r"^Model 'nope' not found$",
    ),
    (
        "unload unknown model",
        "/v2/repository/models/nope/unload",
        "",
        404,
        r"^Model 'nope' not found$",
    ),
]


def _request_for(
    case: tuple[Any, ...],
) -> tuple[str, str, bytes | str | None, dict[str, str]]:
    name, path, body, _, _ = case
    headers = {"Content-Type": "application/json"}
    method = "POST"
    if name == "unknown model metadata":
        method = "GET"
    elif name == "binary header longer than body":
        headers["Inference-Header-Content-Length"] = "100000"
    elif name == "binary header not a number":
        headers["Inference-Header-Content-Length"] = "ten"
    elif name == "binary size disagrees":
        header = json.dumps(
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [2, 3],
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": 24},
                    }
                ]
            }
        ).encode()
        headers["Inference-Header-Content-Length"] = str(len(header))
        body = header + np.zeros(4, dtype=np.float32).tobytes()
    elif name == "body over the limit":
        body = b" " * (1024 * 1024 + 1)
    return method, path, body, headers


@pytest.mark.parametrize("case", MALFORMED, ids=[case[0] for case in MALFORMED])
def test_malformed_request(server: ServerProcess, case: tuple[Any, ...]) -> None:
    _, _, _, expected_status, pattern = case
    method, path, body, headers = _request_for(case)

    status, response_headers, raw = server.request(method, path, body, headers)

    assert status == expected_status, raw
    assert response_headers["content-type"] == "application/json"
    error = json.loads(raw)
    assert list(error) == ["error"]
    assert isinstance(error["error"], str)
    assert re.search(pattern, error["error"]), error["error"]


def test_malformed_requests_harm_no_worker(server: ServerProcess) -> None:
    assert len(MALFORMED) >= 25
    assert server.process is not None
    workers_before = sorted(server.worker_pids)

    for case in MALFORMED:
        method, path, body, headers = _request_for(case)
        server.request(method, path, body, headers)

    assert sorted(child_pids(server.process.pid)) == workers_before
    status, body = server.json("POST", "/v2/models/doubler/infer", {"inputs": [X]})
    assert status == 200
    assert "died unexpectedly" not in server.log()
