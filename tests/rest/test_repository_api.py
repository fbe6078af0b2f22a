"""The repository API while serving: versions, reload and unload under load."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from server_helpers import ServerProcess, copy_repository, raw_request

VERSIONED_REPOSITORY = Path(__file__).parent / "versioned_repository"
BODY = json.dumps(
    {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}
).encode()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    folder = tmp_path / "models"
    copy_repository(
        VERSIONED_REPOSITORY, folder, Path(__file__).parent / "versioned_model.py"
    )
    process = ServerProcess(folder, "--parallel-workers", "2").start()
    yield process
    assert process.stop() == 0


def _outputs(body: bytes) -> dict[str, list]:  # type: ignore[type-arg]
    return {o["name"]: o["data"] for o in json.loads(body)["outputs"]}


def test_default_version_is_highest(server: ServerProcess) -> None:
    status, _, body = server.request("POST", "/v2/models/counter/infer", BODY)
    assert status == 200
    assert _outputs(body)["version"] == ["v2"]
    status, _, body = server.request(
        "POST", "/v2/models/counter/versions/v1/infer", BODY
    )
    assert status == 200
    assert _outputs(body)["version"] == ["v1"]
    status, index = server.json("POST", "/v2/repository/index")
    assert [(i["name"], i.get("version"), i["state"]) for i in index] == [
        ("counter", "v1", "READY"),
        ("counter", "v2", "READY"),
        ("steady", None, "READY"),
        ("victim", None, "READY"),
    ]


def test_reload_and_unload_under_load(server: ServerProcess) -> None:
    paths = [
        "/v2/models/counter/infer",
        "/v2/models/counter/versions/v1/infer",
        "/v2/models/steady/infer",
    ]

    async def run() -> tuple[Counter[tuple[str, int]], list[int]]:
        outcomes: Counter[tuple[str, int]] = Counter()
        generations: list[int] = []
        stop = asyncio.Event()

        async def client(index: int) -> None:
            path = paths[index % len(paths)]
            while not stop.is_set():
                status, _, body = await raw_request(
                    server.http_port, "POST", path, BODY
                )
                outcomes[(path, status)] += 1
                if status == 200 and path == paths[0]:
                    generations.append(_outputs(body)["generation"][0])

        clients = [asyncio.ensure_future(client(i)) for i in range(32)]
        await asyncio.sleep(0.5)
        reload_status, _, _ = await raw_request(
            server.http_port, "POST", "/v2/repository/models/counter/load"
        )
        unload_status, _, _ = await raw_request(
            server.http_port, "POST", "/v2/repository/models/victim/unload"
        )
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*clients)
        assert reload_status == 200
        assert unload_status == 200
        return outcomes, generations

    outcomes, generations = asyncio.run(run())

    assert {status for (_, status) in outcomes} == {200}, outcomes
    for path in paths:
        assert outcomes[(path, 200)] > 10
    # The reload swapped new instances in while requests kept succeeding.
    assert max(generations) > min(generations)

    status, body = server.json("POST", "/v2/models/victim/infer", json.loads(BODY))
    assert status == 404
    assert body == {"error": "Model 'victim' not found"}
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    try:
        infer_input = grpcclient.InferInput("x", [1], "FP32")
        infer_input.set_data_from_numpy(np.ones(1, dtype=np.float32))
        with pytest.raises(Exception) as raised:
            client.infer("victim", [infer_input])
        assert raised.value.status() == f"StatusCode.{grpc.StatusCode.NOT_FOUND.name}"
    finally:
        client.close()


def test_failed_reload_keeps_model_serving(server: ServerProcess) -> None:
    settings_file = Path(server.folder) / "counter_v1" / "model-settings.json"
    good = settings_file.read_text()

    settings_file.write_text(
        '{"name": "counter", "implementation": "no_such_module.Nope", "parameters": {"version": "v1"}}'
    )
    status, body = server.json("POST", "/v2/repository/models/counter/load")
    assert status == 500
    assert "No module named 'no_such_module'" in body["error"]
    assert "the previous version keeps serving" in body["error"]
    status, _, response = server.request(
        "POST", "/v2/models/counter/versions/v1/infer", BODY
    )
    assert status == 200
    assert _outputs(response)["version"] == ["v1"]

    settings_file.write_text(good)
    steady_file = Path(server.folder) / "steady" / "model-settings.json"
    steady_file.write_text("{not json")
    status, body = server.json("POST", "/v2/repository/models/steady/load")
    assert status == 400
    assert body["error"].startswith("Invalid model settings file")
    for _ in range(6):
        assert server.request("POST", "/v2/models/steady/infer", BODY)[0] == 200
    assert server.request("GET", "/v2/health/ready")[0] == 200
