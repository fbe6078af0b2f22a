"""Compare the inference pools of inferpool and MLServer 1.7.1, side by side.

    .venv/bin/python benchmarks/dispatch.py [--rounds 3] [--json]

Each round measures both pools, one after the other, and the order flips
from one round to the next so that drift in the machine's load hits both
sides alike. The table shows the median over the rounds and the ratio
MLServer/inferpool of each figure.

- inferpool runs here, in this interpreter, on uvloop:
  `inferpool.parallel.InferencePool` with `bench_models.NoopModel`, called
  through `pool.call("noop", None, "predict", request)`.
- MLServer runs `mlserver_dispatch.py` as a subprocess, with the python of
  the environment that `mlserver_env.sh` creates (MLServer 1.7.1 needs pins
  that differ from this project's).

Both sides use the same driver (`pool_bench.py`) and the same model code.
Each sends an `InferenceRequest` object of its own server with the same
input: one FP32 [1, 4] row for the per-request figures, and a 10 MB float32
numpy array for the throughput figures. Neither side goes through HTTP or
JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import uvloop

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# Workers import bench_models too, and this makes them pick inferpool's
# classes even where mlserver is importable.
os.environ["BENCH_MODELS_SERVER"] = "inferpool"

from inferpool.parallel import InferencePool  # noqa: E402
from inferpool.settings import ModelSettings, Settings  # noqa: E402
from inferpool.types import InferenceRequest, RequestInput  # noqa: E402
from pool_bench import (  # noqa: E402
    SMALL_ROW,
    add_load_arguments,
    check_load_arguments,
    describe_machine,
    load_arguments_as_flags,
    log,
    make_large_array,
    measure_large,
    measure_small,
)

MODEL_NAME = "noop"
# Factor by which inferpool's per-request overhead must be lower than MLServer's.
OVERHEAD_TARGET_RATIO = 3.0


def make_small_request() -> InferenceRequest:
    tensor = RequestInput(name="input-0", shape=[1, 4], datatype="FP32", data=SMALL_ROW)
    return InferenceRequest(inputs=[tensor])


def make_large_request(size_bytes: int) -> tuple[InferenceRequest, np.ndarray]:
    # The array stays an array inside the request, as on MLServer's side, so
    # both pools pickle the same kind of object.
    array = make_large_array(size_bytes)
    tensor = RequestInput(name="input-0", shape=[array.size], datatype="FP32", data=array)
    return InferenceRequest(inputs=[tensor]), array


def output_array(response) -> np.ndarray:
    return np.asarray(response.outputs[0].data)


async def measure_inferpool(args: argparse.Namespace) -> dict:
    """Start a pool, measure it with the shared driver and close it."""
    pool = InferencePool(Settings(parallel_workers=args.workers, log_level="WARNING"))
    await pool.start()
    worker_pids = sorted(worker.pid for worker in pool.workers)
    processes = [worker.process for worker in pool.workers]
    log(f"inferpool InferencePool started, worker pids {worker_pids}")
    try:
        started = time.perf_counter()
        await pool.load_model(
            ModelSettings(
                name=MODEL_NAME,
                implementation="bench_models.NoopModel",
                source_dir=str(HERE),
            )
        )
        log(f"NoopModel loaded on every worker in {time.perf_counter() - started:.2f} s")

        async def predict(request: InferenceRequest):
            return await pool.call(MODEL_NAME, None, "predict", request)

        small = await measure_small(predict, make_small_request(), args, "inferpool")
        large_request, array = make_large_request(args.large_mb * 10**6)
        large = await measure_large(
            predict, large_request, array, output_array, args, "inferpool"
        )
    finally:
        await pool.close()

    left = [process.pid for process in processes if process.poll() is None]
    if left:
        raise RuntimeError(f"inferpool worker processes still running after close: {left}")
    log(f"pool closed, no worker process left (was {worker_pids})")
    return {
        "server": "inferpool",
        "workers": args.workers,
        "worker_pids": worker_pids,
        "small_us_per_request": small,
        "large_echo": {"array_mb": args.large_mb, "by_concurrency": large},
        "machine": describe_machine(["inferpool", "uvloop", "numpy", "msgspec"]),
    }


def measure_mlserver(python: str, args: argparse.Namespace) -> dict:
    """Run mlserver_dispatch.py with MLServer's python and return its JSON."""
    env = {**os.environ, "BENCH_MODELS_SERVER": "mlserver"}
    with tempfile.TemporaryDirectory(prefix="dispatch-") as scratch:
        output = os.path.join(scratch, "mlserver.json")
        command = [
            python,
            str(HERE / "mlserver_dispatch.py"),
            *load_arguments_as_flags(args),
            "--output",
            output,
        ]
        # MLServer's workers print log lines on stdout, so they go to
        # stderr here, with the script's progress lines, and the result
        # comes back through a file.
        completed = subprocess.run(command, stdout=sys.stderr, env=env, check=False)
        if completed.returncode != 0:
            raise RuntimeError(
                f"mlserver_dispatch.py failed with exit code {completed.returncode}, "
                "see its messages above"
            )
        with open(output) as result:
            return json.load(result)


def mlserver_python(explicit: str | None) -> str:
    """Return MLServer's python, creating its environment when needed."""
    if explicit:
        return explicit
    completed = subprocess.run(
        [str(HERE / "mlserver_env.sh")], stdout=subprocess.PIPE, text=True, check=True
    )
    return completed.stdout.strip().splitlines()[-1]


def figures(result: dict) -> dict[str, float]:
    """Flatten one side's result into {figure name: value}."""
    flat = {}
    for concurrency, row in result["small_us_per_request"].items():
        flat[f"small us/request, c={concurrency}"] = row["us_per_request"]
    mb = result["large_echo"]["array_mb"]
    for concurrency, row in result["large_echo"]["by_concurrency"].items():
        flat[f"{mb} MB echo MB/s, c={concurrency}"] = row["mb_per_s"]
    return flat


def summarize(rounds: list[dict]) -> list[dict]:
    """Return one row per figure: each side's median and the ratio."""
    names = list(figures(rounds[0]["inferpool"]))
    rows = []
    for name in names:
        ours = [figures(r["inferpool"])[name] for r in rounds]
        theirs = [figures(r["mlserver"])[name] for r in rounds]
        inferpool_median = statistics.median(ours)
        mlserver_median = statistics.median(theirs)
        rows.append(
            {
                "figure": name,
                "lower_is_better": "us/request" in name,
                "inferpool_median": round(inferpool_median, 1),
                "inferpool_range": [min(ours), max(ours)],
                "mlserver_median": round(mlserver_median, 1),
                "mlserver_range": [min(theirs), max(theirs)],
                "mlserver_over_inferpool": round(mlserver_median / inferpool_median, 2),
            }
        )
    return rows


def print_table(rows: list[dict], rounds: int) -> None:
    print(f"\nMedian of {rounds} round(s); ratio = MLServer / inferpool")
    header = f"{'figure':<28} {'inferpool':>10} {'MLServer':>10} {'ratio':>7}  better"
    print(header)
    print("-" * len(header))
    for row in rows:
        better = "lower" if row["lower_is_better"] else "higher"
        print(
            f"{row['figure']:<28} {row['inferpool_median']:>10.1f} "
            f"{row['mlserver_median']:>10.1f} {row['mlserver_over_inferpool']:>6.2f}x  {better}"
        )
    overhead = [r for r in rows if r["lower_is_better"]]
    met = all(r["mlserver_over_inferpool"] >= OVERHEAD_TARGET_RATIO for r in overhead)
    print(
        f"\nTarget: per-request overhead at least {OVERHEAD_TARGET_RATIO:g}x lower "
        f"than MLServer's pool: {'met' if met else 'NOT met'}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(parser)
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of both sides (default: 3)"
    )
    parser.add_argument(
        "--mlserver-python",
        help="python of an environment with MLServer 1.7.1 "
        "(default: the one mlserver_env.sh creates or reuses)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print every round and the summary as JSON"
    )
    args = parser.parse_args()
    check_load_arguments(parser, args)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    python = mlserver_python(args.mlserver_python)

    rounds = []
    for index in range(args.rounds):
        order = ["inferpool", "mlserver"]
        if index % 2:
            order.reverse()
        log(f"--- round {index + 1} of {args.rounds}: {' then '.join(order)}")
        result = {}
        for side in order:
            if side == "inferpool":
                result[side] = uvloop.run(measure_inferpool(args))
            else:
                result[side] = measure_mlserver(python, args)
        rounds.append(result)

    rows = summarize(rounds)
    if args.json:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=HERE, stdout=subprocess.PIPE, text=True, check=False
        ).stdout.strip()
        json.dump({"summary": rows, "commit": commit, "rounds": rounds}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_table(rows, args.rounds)


if __name__ == "__main__":
    main()
