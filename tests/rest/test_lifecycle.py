"""Server lifecycle over REST: readiness while loading, failed models,
SIGTERM under load."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from server_helpers import ServerProcess, child_pids, process_exists

LIFECYCLE_REPOSITORY = Path(__file__).parent / "lifecycle_repository"
REPOSITORY = Path(__file__).parent / "repository"
X = {"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}


def _wait_for(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_readiness_follows_model_loading(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    shutil.copytree(LIFECYCLE_REPOSITORY, folder)
    server = ServerProcess(folder, "--parallel-workers", "2").start(wait_ready=False)
    try:
        # The late model sleeps 2 s in load(): not ready until it finishes.
        assert server.request("GET", "/v2/health/live")[0] == 200
        assert server.request("GET", "/v2/health/ready")[0] == 503
        status, body = server.json("POST", "/v2/models/late/infer", {"inputs": [X]})
        assert status in (503, 404)
        _wait_for(lambda: server.request("GET", "/v2/models/late/ready")[0] == 200)

        status, body = server.json("POST", "/v2/models/late/infer", {"inputs": [X]})
        assert status == 200
        assert body["outputs"][0]["data"] == [1.0, 2.0, 3.0]

        # The broken model failed to load: reported with its error, and the
        # server is not ready while it is registered.
        status, body = server.json("GET", "/v2/models/broken/ready")
        assert status == 503
        assert "No module named 'no_such_module'" in body["error"]
        status, index = server.json("POST", "/v2/repository/index")
        broken = next(item for item in index if item["name"] == "broken")
        assert broken["state"] == "UNAVAILABLE"
        assert "No module named 'no_such_module'" in broken["reason"]
        assert server.request("GET", "/v2/health/ready")[0] == 503

        assert server.request("POST", "/v2/repository/models/broken/unload")[0] == 200
        assert server.request("GET", "/v2/health/ready")[0] == 200
    finally:
        assert server.stop() == 0


def _post_slow(url: str, seconds: float) -> int:
    body = json.dumps({"inputs": [X], "parameters": {"sleep": seconds}}).encode()
    request = urllib.request.Request(
        url + "/v2/models/slow/infer", data=body, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        with error:
            return error.code


def test_sigterm_drains_in_flight_requests(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    shutil.copytree(REPOSITORY, folder)
    server = ServerProcess(folder, "--parallel-workers", "2").start()
    assert server.process is not None
    workers = child_pids(server.process.pid)
    assert len(workers) == 2

    with ThreadPoolExecutor(16) as executor:
        requests = [executor.submit(_post_slow, server.url, 1.0) for _ in range(16)]
        time.sleep(0.4)  # the requests are now in flight in the workers
        server.process.send_signal(signal.SIGTERM)
        statuses = [request.result() for request in requests]

    assert statuses == [200] * 16
    assert server.process.wait(30) == 0
    _wait_for(lambda: not any(process_exists(pid) for pid in workers), 5)
    try:
        urllib.request.urlopen(server.url + "/v2/health/live", timeout=2)
        raise AssertionError("the server still accepts connections")
    except (urllib.error.URLError, ConnectionError):
        pass
    assert "Server stopped" in server.log()
    server.stop()


def test_sigterm_during_startup_loading(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    shutil.copytree(LIFECYCLE_REPOSITORY / "late", folder / "late")
    settings = folder / "late" / "model-settings.json"
    settings.write_text(
        json.dumps(
            {
                "name": "late",
                "implementation": "late.Late",
                "parameters": {"extra": {"load_seconds": 120}},
            }
        )
    )
    server = ServerProcess(folder, "--parallel-workers", "1").start(wait_ready=False)
    assert server.process is not None
    assert server.request("GET", "/v2/health/ready")[0] == 503

    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)

    assert server.process.wait(30) == 0
    assert time.monotonic() - started < 15
    assert "Start-up interrupted" in server.log()
    server.stop()


def test_occupied_port_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    shutil.copytree(REPOSITORY, folder)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "inferpool",
                "start",
                str(folder),
                "--http-port",
                str(port),
                "--grpc-port",
                "0",
                "--metrics-port",
                "0",
                "--parallel-workers",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode == 1
    assert (
        f"Error: Cannot listen for REST on 127.0.0.1:{port}: Address already in use; choose another port with --http-port"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
