"""Timeouts, gRPC deadlines and client disconnects cancel requests."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from prometheus_client.parser import text_string_to_metric_families
from server_helpers import ServerProcess, copy_repository

TIMEOUT_REPOSITORY = Path(__file__).parent / "timeout_repository"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("timeouts") / "models"
    copy_repository(
        TIMEOUT_REPOSITORY, folder, Path(__file__).parent / "napper_model.py"
    )
    process = ServerProcess(
        folder, "--parallel-workers", "2", env={"INFERPOOL_BODY_TIMEOUT": "1"}
    ).start()
    yield process
    assert process.stop() == 0


def _body(sleep: float) -> bytes:
    return json.dumps(
        {
            "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],
            "parameters": {"sleep": sleep},
        }
    ).encode()


def _in_flight(server: ServerProcess) -> float:
    with urllib.request.urlopen(
        f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10
    ) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "inferpool_worker_requests_in_flight"
        for sample in family.samples
    )


def _wait_for_in_flight(server: ServerProcess, expected: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _in_flight(server) != expected:
        assert time.monotonic() < deadline, (
            f"in-flight requests did not reach {expected} within {timeout}s"
        )
        time.sleep(0.05)


def _grpc_input() -> grpcclient.InferInput:
    infer_input = grpcclient.InferInput("x", [1], "FP32")
    infer_input.set_data_from_numpy(np.ones(1, dtype=np.float32))
    return infer_input


def test_rest_timeout_is_504_on_time(server: ServerProcess) -> None:
    started = time.monotonic()

    status, _, body = server.request("POST", "/v2/models/napper/infer", _body(5))

    elapsed = time.monotonic() - started
    assert status == 504
    assert json.loads(body) == {
        "error": "Request to model 'napper' timed out after 1.5s"
    }
    assert 1.5 <= elapsed < 2.5
    _wait_for_in_flight(server, 0, 2)


def test_grpc_timeout_is_deadline_exceeded(server: ServerProcess) -> None:
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    try:
        with pytest.raises(Exception) as raised:
            client.infer("napper", [_grpc_input()], parameters={"sleep": 5})
        assert raised.value.status() == "StatusCode.DEADLINE_EXCEEDED"
        assert (
            raised.value.message() == "Request to model 'napper' timed out after 1.5s"
        )
    finally:
        client.close()


def test_grpc_client_deadline_cancels_request(server: ServerProcess) -> None:
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    try:
        with pytest.raises(Exception) as raised:
            client.infer(
                "sleepy", [_grpc_input()], parameters={"sleep": 30}, client_timeout=0.5
            )
        assert raised.value.status() == "StatusCode.DEADLINE_EXCEEDED"
    finally:
        client.close()
    _wait_for_in_flight(server, 0, 5)


def test_rest_disconnect_cancels_request(server: ServerProcess) -> None:
    body = _body(30)
    with socket.create_connection(("127.0.0.1", server.http_port)) as connection:
        connection.sendall(
            b"POST /v2/models/sleepy/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        _wait_for_in_flight(server, 1, 5)

    _wait_for_in_flight(server, 0, 5)
    status, _, _ = server.request("POST", "/v2/models/sleepy/infer", _body(0))
    assert status == 200


def test_half_sent_body_times_out_with_408(server: ServerProcess) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.http_port)) as connection:
        connection.sendall(
            b"POST /v2/models/sleepy/infer HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            b'{"inputs":'
        )
        connection.settimeout(10)
        response = b""
        while chunk := connection.recv(65536):
            response += chunk

    elapsed = time.monotonic() - started
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert json.loads(body) == {
        "error": "The request body did not arrive in full within 1s"
    }
    assert 1.0 <= elapsed < 5.0
    assert server.request("POST", "/v2/models/sleepy/infer", _body(0))[0] == 200
