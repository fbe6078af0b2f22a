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
``dispatch.py`` runs this script and drives inferpool's pool with the same
driver (``pool_bench.py``) for the side-by-side table.

Reported figures (one JSON object on stdout or in ``--output``, readable
lines on stderr):
- ``small``: microseconds of wall time per request for a one-row FP32 [1, 4]
  request, with 1 and with 64 concurrent callers.
- ``large``: requests/s and MB/s (10**6 bytes of array per second, counted
  once although the echo carries it both ways) for a float32 array of 10 MB,
  with 1 and with 4 concurrent callers.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time

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
from pool_bench import (
    SMALL_ROW,
    add_load_arguments,
    check_load_arguments,
    describe_machine,
    log,
    make_large_array,
    measure_large,
    measure_small,
)


def make_small_request() -> InferenceRequest:
    tensor = RequestInput(name="input-0", shape=[1, 4], datatype="FP32", data=SMALL_ROW)
    return InferenceRequest(inputs=[tensor])


def make_large_request(size_bytes: int) -> tuple[InferenceRequest, np.ndarray]:
    # RequestInput.data is a pydantic root model over List or Any, so the
    # array is pickled to the worker as an array, never turned into a list.
    array = make_large_array(size_bytes)
    tensor = RequestInput(name="input-0", shape=[array.size], datatype="FP32", data=array)
    return InferenceRequest(inputs=[tensor]), array


def output_array(response) -> np.ndarray:
    return np.asarray(response.outputs[0].data.root)


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

        small = await measure_small(
            model.predict, make_small_request(), args, "mlserver"
        )
        large_request, array = make_large_request(args.large_mb * 10**6)
        large = await measure_large(
            model.predict, large_request, array, output_array, args, "mlserver"
        )
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
        "machine": describe_machine(["mlserver", "uvloop", "numpy"]),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(parser)
    parser.add_argument(
        "--output",
        help="file to write the JSON result to (default: stdout, where "
        "MLServer's workers also print their log lines)",
    )
    args = parser.parse_args()
    check_load_arguments(parser, args)
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
    if args.output is None:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        with open(args.output, "w") as output:
            json.dump(result, output, indent=2)


if __name__ == "__main__":
    main()
