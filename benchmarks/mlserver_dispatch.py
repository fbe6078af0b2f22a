"""Measure MLServer 1.7.1's inference pool without HTTP, as a baseline.

Run it with the python that ``benchmarks/mlserver_env.sh`` prints:

    PY=$(benchmarks/mlserver_env.sh)
    $PY benchmarks/mlserver_dispatch.py > mlserver-dispatch.json

It starts ``mlserver.parallel.pool.InferencePool`` with 2 worker processes,
loads ``bench_models.NoopModel`` through the pool and calls the returned
``ParallelModel.predict`` from asyncio tasks, as MLServer's REST and gRPC
handlers do. The model echoes its input, so the figures are the cost of the
pool itself: building the request message, pickling it through the worker's
``multiprocessing.Queue``, the worker's dispatch, and the way back.

Reported figures (one JSON object on stdout, readable lines on stderr):
- ``small``: microseconds of wall time per request for a one-row FP32 [1, 4]
  request, with 1 and with 64 concurrent callers.
- ``large``: requests/s and MB/s (10**6 bytes of array per second, counted
  once although the echo carries it both ways) for a float32 array of 10 MB,
  with 1 and with 4 concurrent callers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from importlib import metadata

import numpy as np
import uvloop

# The workers import the model as "bench_models.NoopModel". They are started
# with "spawn", which copies this process's sys.path, so this folder must be
# on it before the pool starts.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_models import SERVER, NoopModel
from mlserver.parallel.pool import InferencePool
from mlserver.settings import ModelSettings, Settings
from mlserver.types import InferenceRequest, RequestInput

SMALL_ROW = [5.1, 3.5, 1.4, 0.2]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_small_request() -> InferenceRequest:
    tensor = RequestInput(name="input-0", shape=[1, 4], datatype="FP32", data=SMALL_ROW)
    return InferenceRequest(inputs=[tensor])


def make_large_request(size_bytes: int) -> tuple[InferenceRequest, np.ndarray]:
    # RequestInput.data is a pydantic root model over List or Any, so the
    # array is pickled to the worker as an array, never turned into a list.
    count = size_bytes // np.dtype(np.float32).itemsize
    array = np.random.default_rng(0).random(count, dtype=np.float32)
    tensor = RequestInput(name="input-0", shape=[count], datatype="FP32", data=array)
    return InferenceRequest(inputs=[tensor]), array


async def run_closed_loop(
    model, request: InferenceRequest, requests: int, concurrency: int
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
            await model.predict(request)

    started = time.perf_counter()
    await asyncio.gather(*(caller(count) for count in per_task))
    return time.perf_counter() - started


async def measure_small(model, args) -> dict:
    request = make_small_request()
    await run_closed_loop(model, request, args.warmup, max(args.concurrency))

    results = {}
    for concurrency in args.concurrency:
        elapsed = await run_closed_loop(model, request, args.requests, concurrency)
        us_per_request = elapsed / args.requests * 1e6
        results[str(concurrency)] = {
            "requests": args.requests,
            "seconds": round(elapsed, 4),
            "us_per_request": round(us_per_request, 1),
            "requests_per_s": round(args.requests / elapsed, 1),
        }
        log(
            f"small FP32[1,4], concurrency {concurrency:>3}: "
            f"{us_per_request:8.1f} us/request "
            f"({args.requests / elapsed:8.0f} requests/s)"
        )
    return results


async def measure_large(model, args) -> dict:
    size_bytes = args.large_mb * 10**6
    request, array = make_large_request(size_bytes)

    response = await model.predict(request)
    echoed = np.asarray(response.outputs[0].data.root)
    if not np.array_equal(echoed, array):
        raise RuntimeError("NoopModel returned a different array than it was sent")

    await run_closed_loop(
        model, request, args.large_warmup, max(args.large_concurrency)
    )

    results = {}
    for concurrency in args.large_concurrency:
        elapsed = await run_closed_loop(
            model, request, args.large_requests, concurrency
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
            f"large FP32 {args.large_mb} MB, concurrency {concurrency:>3}: "
            f"{mb_per_s:8.1f} MB/s ({requests_per_s:6.2f} requests/s)"
        )
    return results


def describe_machine() -> dict:
    cpu_model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "mlserver": metadata.version("mlserver"),
        "uvloop": metadata.version("uvloop"),
        "numpy": np.__version__,
    }


async def benchmark(args, scratch: str) -> dict:
    # metrics_dir and environments_dir default to folders in the current
    # directory, which MLServer creates, so keep them in a scratch folder.
    settings = Settings(
        parallel_workers=args.workers,
        debug=False,
        metrics_dir=os.path.join(scratch, "metrics"),
        environments_dir=os.path.join(scratch, "envs"),
    )
    model_settings = ModelSettings(name="noop", implementation=NoopModel)

    pool = InferencePool(settings)
    worker_pids = sorted(child.pid for child in multiprocessing.active_children())
    log(f"MLServer InferencePool started, worker pids {worker_pids}")
    try:
        started = time.perf_counter()
        model = await pool.load_model(NoopModel(model_settings))
        log(
            f"NoopModel loaded on every worker in {time.perf_counter() - started:.2f} s"
        )

        small = await measure_small(model, args)
        large = await measure_large(model, args)
    finally:
        await pool.close()

    left = [child.pid for child in multiprocessing.active_children()]
    if left:
        raise RuntimeError(f"worker processes still running after close: {left}")
    log(f"pool closed, no worker process left (was {worker_pids})")

    return {
        "server": "mlserver",
        "workers": args.workers,
        "worker_pids": worker_pids,
        "small_us_per_request": small,
        "large_echo": {"array_mb": args.large_mb, "by_concurrency": large},
        "machine": describe_machine(),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    args = parser.parse_args()

    for name in ("workers", "requests", "large_mb", "large_requests"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if min(args.concurrency + args.large_concurrency) < 1:
        parser.error("every concurrency must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    if SERVER != "mlserver":
        sys.exit(
            f"bench_models chose {SERVER!r}; run this script with the python "
            "of benchmarks/mlserver_env.sh, where mlserver is installed"
        )

    with tempfile.TemporaryDirectory(prefix="mlserver-dispatch-") as scratch:
        # MLServer's own `mlserver start` runs on uvloop too.
        result = uvloop.run(benchmark(args, scratch))
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
