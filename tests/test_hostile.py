"""Generated malformed requests against a real server: no server error, no
hang, no worker lost.

A short form of benchmarks/hostile.py: schemathesis on the OpenAPI
document, hypothesis on bodies of Triton's binary tensor extension and on
gRPC ModelInferRequest messages, all against one server with 2 workers on
the echo test model. The seed is fixed, so a run is repeatable. The tests
at the end replay, exactly, the requests of bugs that these runs found."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

BENCHMARKS = str(Path(__file__).resolve().parent.parent / "benchmarks")
if BENCHMARKS not in sys.path:
    sys.path.insert(0, BENCHMARKS)

from hostile import (  # noqa: E402
    HEADER_LENGTH_HEADER,
    HostileReport,
    ServerProcess,
    echo_server,
    run_hostile,
)

from inferpool.grpc import grpc_service_pb2 as pb  # noqa: E402
from inferpool.grpc import grpc_service_pb2_grpc as pb_grpc  # noqa: E402

SEED = 20260
# A shape with no elements whose other extents overflow numpy's limits.
EMPTY_HUGE_SHAPE = [0, 2**62, 2**62]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with echo_server() as process:
        yield process
    assert process.process is not None
    assert process.process.returncode == 0


@pytest.fixture(scope="module")
def report(server: ServerProcess) -> HostileReport:
    return run_hostile(
        server,
        schema_examples=15,
        binary_examples=700,
        grpc_examples=700,
        seed=SEED,
        timeout=20.0,
    )


def phase(report: HostileReport, name: str) -> dict:
    return next(item for item in report.phases if item["name"] == name)


@pytest.mark.parametrize(
    "name", ["schemathesis", "REST binary extension", "gRPC ModelInfer"]
)
def test_hostile_phase_has_no_findings(report: HostileReport, name: str) -> None:
    result = phase(report, name)
    assert result["cases"] >= 100
    assert result["finding_count"] == 0, result["findings"]


def test_hostile_phases_reach_the_model(report: HostileReport) -> None:
    # Some generated requests must be valid, or the decoders were not passed.
    assert phase(report, "REST binary extension")["outcomes"].get("200", 0) > 0
    assert phase(report, "gRPC ModelInfer")["outcomes"].get("OK", 0) > 0
    assert phase(report, "schemathesis")["outcomes"].get("200", 0) > 0


def test_hostile_server_survives(report: HostileReport) -> None:
    assert report.live_after
    assert report.worker_pids_after == report.worker_pids_before
    assert report.restarts == 0


def test_hostile_log_has_no_errors(report: HostileReport) -> None:
    assert report.log_errors == {}


def rest_infer(server: ServerProcess, header: dict, binary: bool) -> tuple[int, bytes]:
    body = json.dumps(header)
    headers = {"Content-Type": "application/json"}
    if binary:
        headers[HEADER_LENGTH_HEADER] = str(len(body))
    status, _, payload = server.request("POST", "/v2/models/echo/infer", body, headers)
    return status, payload


@pytest.mark.parametrize("binary", [False, True])
def test_empty_huge_shape_rest_is_400(server: ServerProcess, binary: bool) -> None:
    tensor = {"name": "x", "shape": EMPTY_HUGE_SHAPE, "datatype": "FP32"}
    if binary:
        tensor["parameters"] = {"binary_data_size": 0}
    else:
        tensor["data"] = []

    status, payload = rest_infer(server, {"inputs": [tensor]}, binary)

    assert status == 400, payload


@pytest.mark.parametrize("raw", [False, True])
def test_empty_huge_shape_grpc_is_invalid_argument(
    server: ServerProcess, raw: bool
) -> None:
    message = pb.ModelInferRequest(model_name="echo")
    message.inputs.add(name="x", datatype="FP32", shape=EMPTY_HUGE_SHAPE)
    if raw:
        message.raw_input_contents.append(b"")
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.ModelInfer(message, timeout=20)

    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT, (
        raised.value.details()
    )


def test_unknown_model_logs_no_traceback(server: ServerProcess) -> None:
    marker = "no-such-model-for-log-check"
    status, _, _ = server.request("GET", f"/v2/models/{marker}")
    # uvicorn logs the traceback right after it sends the 404, so once a
    # second request has its response, the log record, if any, is written.
    live, _, _ = server.request("GET", "/v2/health/live")
    lines = [line for line in server.log().splitlines() if marker in line]

    assert status == 404
    assert live == 200
    assert lines == []
