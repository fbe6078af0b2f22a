"""Flood a slow model and measure how fast the excess is rejected.

    .venv/bin/python benchmarks/overload.py [--requests 2000] [--json]

Starts `inferpool start` with 2 workers on a model that takes 200 ms per
request, with `max_concurrency` 1 and `max_queue_size` 100. It opens
`--requests` connections, then sends one inference request on each at once.
It reports the status counts, the latency of the 503 responses, the latency
of `/v2/health/live` probes during the flood, and the front end's memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from batching import children_of, free_port, wait_ready

HERE = Path(__file__).resolve().parent
BODY = json.dumps(
    {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}
).encode()


async def request(
    port: int, method: str, path: str, body: bytes = b""
) -> tuple[int, float]:
    """Send one request on a new connection; return the status and the
    seconds from connecting to the end of the response."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await send(reader, writer, method, path, body, started)
    finally:
        writer.close()


async def send(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    method: str,
    path: str,
    body: bytes,
    started: float | None = None,
) -> tuple[int, float]:
    """Send one request on an open connection; return the status and the
    seconds from sending (or from `started`) to the end of the response."""
    if started is None:
        started = time.perf_counter()
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 120)
    await reader.read()
    return int(status_line.split()[1]), time.perf_counter() - started


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(pid)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
        if ordered
        else float("nan")
    )


async def flood(port: int, count: int) -> dict[str, Any]:
    # Open every connection first, so the figures time the server's
    # handling of the requests, not the set-up of 2,000 connections.
    connections = await asyncio.gather(
        *(asyncio.open_connection("127.0.0.1", port) for _ in range(count))
    )
    live: list[tuple[int, float]] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            live.append(await request(port, "GET", "/v2/health/live"))
            await asyncio.sleep(0.02)

    prober = asyncio.ensure_future(probe())
    try:
        results = await asyncio.gather(
            *(
                send(reader, writer, "POST", "/v2/models/sleeper/infer", BODY)
                for reader, writer in connections
            )
        )
    finally:
        done.set()
        await prober
        for _, writer in connections:
            writer.close()
    rejected = [seconds * 1000 for status, seconds in results if status == 503]
    live_ms = [seconds * 1000 for _, seconds in live]
    return {
        "statuses": dict(Counter(status for status, _ in results)),
        "rejected_p50_ms": round(percentile(rejected, 0.5), 1),
        "rejected_p99_ms": round(percentile(rejected, 0.99), 1),
        "rejected_max_ms": round(max(rejected), 1) if rejected else None,
        "rejected_within_50_ms": sum(1 for ms in rejected if ms <= 50),
        "live_probes": len(live),
        "live_statuses": dict(Counter(status for status, _ in live)),
        "live_p99_ms": round(percentile(live_ms, 0.99), 1),
    }


def server_side_rejections(metrics_port: int) -> dict[str, float]:
    """Read the server's own latency histogram of the 503 responses: the time
    from the request reaching the application to the response."""
    with urllib.request.urlopen(
        f"http://127.0.0.1:{metrics_port}/metrics", timeout=10
    ) as response:
        text = response.read().decode()
    buckets: dict[str, float] = {}
    for line in text.splitlines():
        if (
            line.startswith("inferpool_request_duration_seconds_bucket{")
            and 'status="503"' in line
        ):
            bound = line.split('le="')[1].split('"')[0]
            buckets[bound] = float(line.rsplit(" ", 1)[1])
    total = buckets.get("+Inf", 0.0)
    return {
        "server_rejections": total,
        "server_rejections_within_5_ms": buckets.get("0.005", 0.0),
        "server_rejections_within_50_ms": buckets.get("0.05", 0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=2000, help="concurrent requests in the flood"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "models"
        shutil.copytree(HERE / "overload_models", folder)
        http_port, metrics_port = free_port(), free_port()
        log = open(Path(scratch) / "server.log", "wb")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "inferpool",
                "start",
                str(folder),
                "--http-port",
                str(http_port),
                "--grpc-port",
                str(free_port()),
                "--metrics-port",
                str(metrics_port),
                "--parallel-workers",
                "2",
                "--log-level",
                "WARNING",
            ],
            stdout=log,
            stderr=log,
        )
        workers: list[int] = []
        try:
            wait_ready(f"http://127.0.0.1:{http_port}", server)
            workers = children_of(server.pid)
            rss_before = rss_mib(server.pid)
            result = asyncio.run(flood(http_port, args.requests))
            result.update(server_side_rejections(metrics_port))
            result["rss_before_mib"] = round(rss_before, 1)
            result["rss_after_mib"] = round(rss_mib(server.pid), 1)
            result["status_after"] = asyncio.run(
                request(http_port, "POST", "/v2/models/sleeper/infer", BODY)
            )[0]
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
                server.wait(60)
            log.close()
            for pid in workers:
                if Path(f"/proc/{pid}").exists():
                    os.kill(pid, signal.SIGKILL)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for key, value in result.items():
            print(f"{key:24} {value}")


if __name__ == "__main__":
    main()
