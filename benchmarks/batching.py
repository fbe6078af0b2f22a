"""Measure what adaptive batching gains: the same per-call-cost model served
with and without `max_batch_size`, under 64 concurrent single-row clients.

    .venv/bin/python benchmarks/batching.py [--duration 10] [--json]

Each configuration runs in its own `inferpool start` with 2 workers on
127.0.0.1, driven by loadgen.py; every server is stopped and checked gone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODEL_FOLDER = HERE / "batching_models" / "per_call"
BODY = json.dumps(
    {
        "inputs": [
            {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
        ]
    }
)

CONFIGURATIONS = {
    "no batching": {},
    "max_batch_size 32, max_batch_time 5 ms": {
        "max_batch_size": 32,
        "max_batch_time": 0.005,
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(
                url + "/v2/health/ready", timeout=1
            ) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError("server not ready in time")


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
        except FileNotFoundError:
            pass
    return found


def batch_histogram(metrics_port: int) -> tuple[float, float]:
    """Return (batches, requests in them) from the server's metrics."""
    with urllib.request.urlopen(
        f"http://127.0.0.1:{metrics_port}/metrics", timeout=10
    ) as response:
        text = response.read().decode()
    count = total = 0.0
    for line in text.splitlines():
        if line.startswith("inferpool_batch_size_count{"):
            count = float(line.rsplit(" ", 1)[1])
        elif line.startswith("inferpool_batch_size_sum{"):
            total = float(line.rsplit(" ", 1)[1])
    return count, total


def run_configuration(
    settings: dict[str, Any], duration: float, concurrency: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "models" / "per_call"
        shutil.copytree(MODEL_FOLDER, folder)
        (folder / "model-settings.json").write_text(
            json.dumps(
                {
                    "name": "per_call",
                    "implementation": "per_call.PerCallModel",
                    **settings,
                }
            )
        )
        http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
        log = open(Path(scratch) / "server.log", "wb")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "inferpool",
                "start",
                str(folder.parent),
                "--http-port",
                str(http_port),
                "--grpc-port",
                str(grpc_port),
                "--metrics-port",
                str(metrics_port),
                "--parallel-workers",
                "2",
                "--log-level",
                "WARNING",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        workers: list[int] = []
        try:
            url = f"http://127.0.0.1:{http_port}"
            wait_ready(url, server)
            workers = children_of(server.pid)
            load = subprocess.run(
                [
                    sys.executable,
                    str(HERE / "loadgen.py"),
                    "--url",
                    url + "/v2/models/per_call/infer",
                    "--body",
                    BODY,
                    "--concurrency",
                    str(concurrency),
                    "--duration",
                    str(duration),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(load.stdout)
            result["batches"], result["batched_requests"] = batch_histogram(
                metrics_port
            )
            return result
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(60)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
            log.close()
            left = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
            for pid in left:
                os.kill(pid, signal.SIGKILL)
            if left:
                raise RuntimeError(f"workers {left} outlived the server")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="seconds of measured load per configuration",
    )
    parser.add_argument(
        "--concurrency", type=int, default=64, help="concurrent single-row clients"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    results = {
        name: run_configuration(settings, args.duration, args.concurrency)
        for name, settings in CONFIGURATIONS.items()
    }
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    baseline = results["no batching"]["requests_per_s"]
    print(
        f"{'configuration':42} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'mean batch':>10} {'gain':>6}"
    )
    for name, result in results.items():
        mean_batch = (
            result["batched_requests"] / result["batches"] if result["batches"] else 1.0
        )
        print(
            f"{name:42} {result['requests_per_s']:8.1f} {result['p50_ms']:8.2f} {result['p99_ms']:8.2f} "
            f"{result['errors']:7d} {mean_batch:10.1f} {result['requests_per_s'] / baseline:5.1f}x"
        )


if __name__ == "__main__":
    main()
