"""Batching, metrics and overload protection on a real server."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from server_helpers import ServerProcess, raw_request, rss_bytes

BATCH_REPOSITORY = Path(__file__).parent / "batch_repository"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("batching") / "models"
    shutil.copytree(BATCH_REPOSITORY, folder)
    process = ServerProcess(folder, "--parallel-workers", "2").start()
    yield process
    assert process.stop() == 0


def _metrics(
    server: ServerProcess,
) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Scrape /metrics and parse it with prometheus_client's parser."""
    import urllib.request

    with urllib.request.urlopen(
        f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10
    ) as response:
        text = response.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[
                tuple(sorted(sample.labels.items()))
            ] = sample.value
    return samples


def _row_body(value: int) -> bytes:
    return json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1, 3],
                    "datatype": "FP32",
                    "data": [value, value + 0.5, -value],
                }
            ]
        }
    ).encode()


def test_batching_merges_and_splits(server: ServerProcess) -> None:
    async def client(value: int) -> tuple[int, dict]:  # type: ignore[type-arg]
        status, _, body = await raw_request(
            server.http_port, "POST", "/v2/models/batched/infer", _row_body(value)
        )
        return status, json.loads(body)

    async def run() -> list[tuple[int, dict]]:  # type: ignore[type-arg]
        return await asyncio.gather(*(client(i) for i in range(64)))

    results = asyncio.run(run())

    rows_in_calls = []
    for value, (status, body) in enumerate(results):
        assert status == 200, body
        outputs = {o["name"]: o for o in body["outputs"]}
        assert outputs["doubled"]["shape"] == [1, 3]
        assert outputs["doubled"]["data"] == [2 * value, 2 * value + 1, -2 * value]
        rows_in_calls.append(outputs["rows_in_call"]["data"][0])
    assert max(rows_in_calls) > 1
    metrics = _metrics(server)
    batches = metrics["inferpool_batch_size_count"][(("model", "batched"),)]
    requests = metrics["inferpool_batch_size_sum"][(("model", "batched"),)]
    assert requests == 64
    assert batches < 64


def test_metrics_count_requests(server: ServerProcess) -> None:
    before = _metrics(server)
    key = (("model", "batched"), ("protocol", "rest"), ("status", "200"))
    not_found = (("model", "missing"), ("protocol", "rest"), ("status", "404"))
    count_before = before.get("inferpool_requests_total", {}).get(key, 0)

    for value in range(7):
        assert (
            server.request("POST", "/v2/models/batched/infer", _row_body(value))[0]
            == 200
        )
    for _ in range(3):
        assert (
            server.request("POST", "/v2/models/missing/infer", _row_body(1))[0] == 404
        )

    after = _metrics(server)
    assert after["inferpool_requests_total"][key] - count_before == 7
    assert (
        after["inferpool_requests_total"][not_found]
        - before.get("inferpool_requests_total", {}).get(not_found, 0)
        == 3
    )
    assert (
        after["inferpool_request_duration_seconds_count"][key]
        - before.get("inferpool_request_duration_seconds_count", {}).get(key, 0)
        == 7
    )
    assert after["inferpool_workers"][()] == 2
    assert after["inferpool_workers_ready"][()] == 2
    assert (("model", "batched"),) in after[
        "inferpool_model_load_duration_seconds_count"
    ]


def test_overload_rejects_excess_and_recovers(server: ServerProcess) -> None:
    assert server.process is not None
    rss_before = rss_bytes(server.process.pid)
    body = json.dumps(
        {
            "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],
            "parameters": {"sleep": 0.05},
        }
    ).encode()

    async def run() -> tuple[list[tuple[int, dict[str, str], float]], list[int]]:
        live_statuses: list[int] = []
        done = asyncio.Event()

        async def probe_liveness() -> None:
            while not done.is_set():
                status, _, _ = await raw_request(
                    server.http_port, "GET", "/v2/health/live"
                )
                live_statuses.append(status)
                await asyncio.sleep(0.05)

        async def one() -> tuple[int, dict[str, str], float]:
            started = time.perf_counter()
            status, headers, _ = await raw_request(
                server.http_port, "POST", "/v2/models/sleeper/infer", body, timeout=120
            )
            return status, headers, time.perf_counter() - started

        probe = asyncio.ensure_future(probe_liveness())
        results = await asyncio.gather(*(one() for _ in range(2000)))
        done.set()
        await probe
        return results, live_statuses

    results, live_statuses = asyncio.run(run())

    statuses = Counter(status for status, _, _ in results)
    assert set(statuses) == {200, 503}
    # 2 workers run one request each, 100 wait in the queue: the rest are
    # rejected at once.
    assert statuses[200] >= 102
    assert statuses[503] >= 2000 - 102 - 50
    rejected = [
        (headers, seconds) for status, headers, seconds in results if status == 503
    ]
    assert all(headers.get("retry-after") == "1" for headers, _ in rejected)
    assert live_statuses
    assert set(live_statuses) == {200}
    rss_after = rss_bytes(server.process.pid)
    assert rss_after - rss_before < 64 * 1024 * 1024
    # The server's own latency histogram: every rejection was sent within
    # 50 ms of the request reaching the application.
    metrics = _metrics(server)
    key = (
        ("le", "0.05"),
        ("model", "sleeper"),
        ("protocol", "rest"),
        ("status", "503"),
    )
    total = (
        ("le", "+Inf"),
        ("model", "sleeper"),
        ("protocol", "rest"),
        ("status", "503"),
    )
    assert metrics["inferpool_request_duration_seconds_bucket"][key] == statuses[503]
    assert metrics["inferpool_request_duration_seconds_bucket"][total] == statuses[503]
    # Normal service resumes.
    status, _, _ = server.request("POST", "/v2/models/sleeper/infer", body)
    assert status == 200
