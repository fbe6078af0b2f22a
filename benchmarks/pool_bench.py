"""Closed-loop driver shared by the pool benchmarks of both servers.

`dispatch.py` (inferpool, in the project's environment) and
`mlserver_dispatch.py` (MLServer 1.7.1, in its own environment) drive their
pools through these functions, so both sides send the same requests in the
same pattern and count time the same way. This module imports neither
server: each caller passes a `predict(request)` coroutine function and the
request objects of its own server's types.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import Any

import numpy as np

SMALL_ROW = [5.1, 3.5, 1.4, 0.2]

Predict = Callable[[Any], Awaitable[Any]]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_large_array(size_bytes: int) -> np.ndarray:
    count = size_bytes // np.dtype(np.float32).itemsize
    return np.random.default_rng(0).random(count, dtype=np.float32)


async def run_closed_loop(
    predict: Predict, request: Any, requests: int, concurrency: int
) -> float:
    """Send `requests` predicts from `concurrency` tasks and return the seconds.

    Each task sends its next request when the previous one returns, and the
    requests are split as evenly as possible between the tasks.
    """
    per_task = [requests // concurrency] * concurrency
    for index in range(requests % concurrency):
        per_task[index] += 1

    async def caller(count: int) -> None:
        for _ in range(count):
            await predict(request)

    started = time.perf_counter()
    await asyncio.gather(*(caller(count) for count in per_task))
    return time.perf_counter() - started


async def measure_small(
    predict: Predict, request: Any, args: argparse.Namespace, label: str
) -> dict:
    """Return microseconds per request of a small request at each concurrency."""
    await run_closed_loop(predict, request, args.warmup, max(args.concurrency))

    results = {}
    for concurrency in args.concurrency:
        elapsed = await run_closed_loop(predict, request, args.requests, concurrency)
        us_per_request = elapsed / args.requests * 1e6
        results[str(concurrency)] = {
            "requests": args.requests,
            "seconds": round(elapsed, 4),
            "us_per_request": round(us_per_request, 1),
            "requests_per_s": round(args.requests / elapsed, 1),
        }
        log(
            f"{label}: small FP32[1,4], concurrency {concurrency:>3}: "
            f"{us_per_request:8.1f} us/request "
            f"({args.requests / elapsed:8.0f} requests/s)"
        )
    return results


async def measure_large(
    predict: Predict,
    request: Any,
    array: np.ndarray,
    output_array: Callable[[Any], np.ndarray],
    args: argparse.Namespace,
    label: str,
) -> dict:
    """Return the echo throughput of a large array at each concurrency.

    `output_array(response)` extracts the echoed array, which is checked
    against `array` once before measuring.
    """
    size_bytes = array.nbytes
    response = await predict(request)
    if not np.array_equal(output_array(response), array):
        raise RuntimeError("NoopModel returned a different array than it was sent")

    await run_closed_loop(
        predict, request, args.large_warmup, max(args.large_concurrency)
    )

    results = {}
    for concurrency in args.large_concurrency:
        elapsed = await run_closed_loop(
            predict, request, args.large_requests, concurrency
        )
        requests_per_s = args.large_requests / elapsed
        mb_per_s = requests_per_s * size_bytes / 10**6
        results[str(concurrency)] = {
            "requests": args.large_requests,
            "seconds": round(elapsed, 4),
            "requests_per_s": round(requests_per_s, 2),
            "mb_per_s": round(mb_per_s, 1),
        }
        log(
            f"{label}: large FP32 {args.large_mb} MB, concurrency {concurrency:>3}: "
            f"{mb_per_s:8.1f} MB/s ({requests_per_s:6.2f} requests/s)"
        )
    return results


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options that set the load, the same for both servers."""
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes in the pool"
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=5000,
        help="small requests measured at each concurrency",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1000,
        help="small requests sent before measuring, not counted",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[1, 64],
        help="concurrent callers for the small requests",
    )
    parser.add_argument(
        "--large-mb",
        type=int,
        default=10,
        help="size of the echoed float32 array in MB (10**6 bytes)",
    )
    parser.add_argument(
        "--large-requests",
        type=int,
        default=40,
        help="large requests measured at each concurrency",
    )
    parser.add_argument(
        "--large-warmup",
        type=int,
        default=4,
        help="large requests sent before measuring, not counted",
    )
    parser.add_argument(
        "--large-concurrency",
        type=int,
        nargs="+",
        default=[1, 4],
        help="concurrent callers for the large requests",
    )


def check_load_arguments(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> None:
    for name in ("workers", "requests", "large_mb", "large_requests"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0 or args.large_warmup < 0:
        parser.error("--warmup and --large-warmup must be 0 or more")
    if min(args.concurrency + args.large_concurrency) < 1:
        parser.error("every concurrency must be at least 1")


def load_arguments_as_flags(args: argparse.Namespace) -> list[str]:
    """Return the load options of `args` as command-line flags."""
    return [
        "--workers", str(args.workers),
        "--requests", str(args.requests),
        "--warmup", str(args.warmup),
        "--concurrency", *map(str, args.concurrency),
        "--large-mb", str(args.large_mb),
        "--large-requests", str(args.large_requests),
        "--large-warmup", str(args.large_warmup),
        "--large-concurrency", *map(str, args.large_concurrency),
    ]  # fmt: skip


def describe_machine(packages: list[str]) -> dict:
    """Return the CPU, Python and installed versions of `packages`."""
    cpu_model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None

    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        **versions,
    }
