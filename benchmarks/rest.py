"""Compare REST serving of inferpool and MLServer 1.7.1 on an iris model.

    .venv/bin/python benchmarks/rest.py [--duration 15] [--json]

For each server it starts `inferpool start` or `mlserver start` on a model
repository with one `iris` model, first with 2 worker processes and then
with none (models run in the server process), one server at a time, on
127.0.0.1 ports only. It drives each with `loadgen.py` (closed loop, one
keep-alive connection per concurrent client) and prints requests/s, p50 and
p99 per server and concurrency, with the ratio inferpool/MLServer.

The model is a scikit-learn LogisticRegression fitted on scikit-learn's
bundled iris data by `examples/train_iris.py`. A pickled scikit-learn model
should be loaded by the version that wrote it, and the two environments pin
different scikit-learn versions, so the script trains the model once per
server, with that server's python. Both files come from the same code and
data, and both repositories use the same `model-settings.json`.

Every server started here gets SIGTERM when its measurements end, or on an
error or Ctrl-C, and the script checks that the server and all of its worker
processes have exited. Scratch files (models, settings, server logs) live in
a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from servers import (
    HERE,
    HOST,
    ROOT,
    Interrupted,
    Server,
    cpu_seconds,
    descendants,
    inferpool_server,
    log,
    mlserver_python,
    mlserver_server,
    raise_interrupted,
    source_state,
)

MODEL_NAME = "iris"
BODY = (
    '{"inputs":[{"name":"predict","shape":[1,4],"datatype":"FP32",'
    '"data":[5.1,3.5,1.4,0.2]}]}'
)
MODEL_SETTINGS = {
    "name": MODEL_NAME,
    # inferpool maps this name to its own scikit-learn runtime.
    "implementation": "mlserver_sklearn.SKLearnModel",
    "parameters": {"uri": "./model.joblib"},
}
# Targets for the runs with workers at concurrency 16.
THROUGHPUT_TARGET_RATIO = 3.0
P99_TARGET_RATIO = 1 / 3


def make_repository(folder: Path, python: str) -> None:
    """Write a repository with one iris model trained by `python`."""
    model_folder = folder / MODEL_NAME
    model_folder.mkdir(parents=True)
    (model_folder / "model-settings.json").write_text(json.dumps(MODEL_SETTINGS, indent=2))
    subprocess.run(
        [
            python,
            str(ROOT / "examples" / "train_iris.py"),
            "--output",
            str(model_folder / "model.joblib"),
            "--force",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    version = subprocess.run(
        [python, "-c", "import sklearn; print(sklearn.__version__)"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout.strip()
    log(f"trained {model_folder / 'model.joblib'} with scikit-learn {version}")


def run_loadgen(server: Server, concurrency: int, args: argparse.Namespace) -> dict:
    url = f"http://{HOST}:{server.http_port}/v2/models/{MODEL_NAME}/infer"
    command = [
        sys.executable,
        str(HERE / "loadgen.py"),
        "--url", url,
        "--body", BODY,
        "--concurrency", str(concurrency),
        "--duration", str(args.duration),
        "--warmup", str(args.warmup),
    ]  # fmt: skip
    assert server.process is not None
    front_end = server.process.pid
    workers = descendants(front_end)
    front_end_before = cpu_seconds(front_end)
    workers_before = sum(cpu_seconds(pid) for pid in workers)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        output, _ = process.communicate()
        wall = time.perf_counter() - started
        front_end_cpu = cpu_seconds(front_end) - front_end_before
        workers_cpu = sum(cpu_seconds(pid) for pid in workers) - workers_before
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"loadgen.py failed with exit code {process.returncode}")
    result = json.loads(output)
    if not result["requests"]:
        raise RuntimeError(f"{server.label}: no request completed at concurrency {concurrency}")
    # CPU use over the whole load, warm-up included, in percent of one core.
    result["front_end_cpu_percent"] = round(100 * front_end_cpu / wall, 1)
    result["workers_cpu_percent"] = round(100 * workers_cpu / wall, 1)
    log(
        f"{server.label}: concurrency {concurrency:>3}: {result['requests_per_s']:8.1f} requests/s, "
        f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, errors {result['errors']}, "
        f"CPU front end {result['front_end_cpu_percent']}%, workers {result['workers_cpu_percent']}%"
    )
    return result


def profile_front_end(server: Server, args: argparse.Namespace) -> subprocess.Popen:
    """Start py-spy on the server's front end for the measured part of a load."""
    assert server.process is not None
    py_spy = Path(sys.executable).parent / "py-spy"
    raw = Path(args.profile_dir) / "profile.txt"
    command = [
        str(py_spy), "record",
        "--pid", str(server.process.pid),
        "--duration", str(int(args.duration)),
        "--format", "raw",
        "--output", str(raw),
    ]  # fmt: skip
    # The recording starts after the load generator's warm-up.
    return subprocess.Popen(
        ["sh", "-c", f'sleep {args.warmup} && exec "$@"', "sh", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def top_self_frames(raw_path: Path, count: int) -> list[dict]:
    """Return the frames with the most self samples in a py-spy raw profile."""
    self_samples: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw_path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        total += int(samples)
        self_samples[stack.split(";")[-1]] += int(samples)
    return [
        {"frame": frame, "samples": samples, "percent": round(100 * samples / total, 1)}
        for frame, samples in self_samples.most_common(count)
    ]


def measure(server: Server, concurrencies: list[int], args: argparse.Namespace) -> dict:
    results = {}
    server.start()
    try:
        server.wait_ready(MODEL_NAME, BODY.encode())
        for concurrency in concurrencies:
            profiler = None
            if (
                args.profile_dir
                and server.label.startswith("inferpool")
                and concurrency == args.profile_concurrency
                and "workers=0" not in server.label
            ):
                profiler = profile_front_end(server, args)
            try:
                results[str(concurrency)] = run_loadgen(server, concurrency, args)
            finally:
                if profiler is not None:
                    _, errors = profiler.communicate()
                    if profiler.returncode != 0:
                        log(f"py-spy failed with exit code {profiler.returncode}: {errors.strip()}")
    finally:
        server.stop()
    return results


def print_table(results: dict, args: argparse.Namespace) -> None:
    print(f"\nREST, iris one row, {args.duration:g} s per point after {args.warmup:g} s warm-up")
    header = (
        f"{'workers':>7} {'conc':>4} | {'inferpool req/s':>15} {'p50 ms':>7} {'p99 ms':>7} | "
        f"{'MLServer req/s':>14} {'p50 ms':>7} {'p99 ms':>7} | {'req/s ratio':>11} {'p99 ratio':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in results["rows"]:
        ours, theirs = row["inferpool"], row["mlserver"]
        print(
            f"{row['workers']:>7} {row['concurrency']:>4} | "
            f"{ours['requests_per_s']:>15.1f} {ours['p50_ms']:>7.2f} {ours['p99_ms']:>7.2f} | "
            f"{theirs['requests_per_s']:>14.1f} {theirs['p50_ms']:>7.2f} {theirs['p99_ms']:>7.2f} | "
            f"{row['requests_per_s_ratio']:>10.2f}x {row['p99_ratio']:>8.2f}x"
        )
    print("ratios are inferpool / MLServer: requests/s higher is better, p99 lower is better")
    for row in results["rows"]:
        if row["workers"] > 0 and row["concurrency"] == 16:
            throughput_met = row["requests_per_s_ratio"] >= THROUGHPUT_TARGET_RATIO
            p99_met = row["p99_ratio"] <= P99_TARGET_RATIO
            print(
                f"Target at {row['workers']} workers, concurrency 16: requests/s >= "
                f"{THROUGHPUT_TARGET_RATIO:g}x MLServer's: {'met' if throughput_met else 'NOT met'}; "
                f"p99 <= 1/3 of MLServer's: {'met' if p99_met else 'NOT met'}"
            )
    if results.get("profile"):
        print("\nTop frames by self time in inferpool's front end:")
        for frame in results["profile"]:
            print(f"{frame['percent']:6.1f}%  {frame['frame']}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration", type=float, default=15.0,
        help="seconds measured per server and concurrency (default: 15)",
    )  # fmt: skip
    parser.add_argument(
        "--warmup", type=float, default=2.0,
        help="seconds of load before each measurement, not counted (default: 2)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=2,
        help="worker processes of each server in the main runs (default: 2)",
    )  # fmt: skip
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 16, 64],
        help="concurrent connections with workers (default: 1 16 64)",
    )  # fmt: skip
    parser.add_argument(
        "--no-worker-concurrency", type=int, nargs="*", default=[16],
        help="concurrent connections with 0 workers; give none to skip those runs "
        "(default: 16)",
    )  # fmt: skip
    parser.add_argument(
        "--mlserver-python",
        help="python of an environment with MLServer 1.7.1 "
        "(default: the one mlserver_env.sh creates or reuses)",
    )
    parser.add_argument(
        "--profile-dir",
        help="record inferpool's front end with py-spy (from this environment) "
        "during one load and write profile.txt (collapsed stacks) here",
    )
    parser.add_argument(
        "--profile-concurrency", type=int, default=16,
        help="concurrency of the load that --profile-dir records (default: 16)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be above 0 and --warmup 0 or more")
    if args.workers < 1:
        parser.error("--workers must be at least 1; the runs with 0 workers are always added")
    if min(args.concurrency + args.no_worker_concurrency) < 1:
        parser.error("every concurrency must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, raise_interrupted)
    python = mlserver_python(args.mlserver_python)
    if args.profile_dir:
        Path(args.profile_dir).mkdir(parents=True, exist_ok=True)

    results: dict = {
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "body": BODY,
        "source": source_state(),
        "rows": [],
    }
    with tempfile.TemporaryDirectory(prefix="rest-bench-") as scratch_name:
        scratch = Path(scratch_name)
        inferpool_repository = scratch / "inferpool-models"
        mlserver_repository = scratch / "mlserver-models"
        make_repository(inferpool_repository, sys.executable)
        make_repository(mlserver_repository, python)

        plan = [(args.workers, args.concurrency)]
        if args.no_worker_concurrency:
            plan.append((0, args.no_worker_concurrency))
        try:
            for workers, concurrencies in plan:
                ours = measure(inferpool_server(inferpool_repository, workers, scratch), concurrencies, args)
                theirs = measure(mlserver_server(mlserver_repository, workers, python, scratch), concurrencies, args)
                for concurrency in concurrencies:
                    a, b = ours[str(concurrency)], theirs[str(concurrency)]
                    results["rows"].append(
                        {
                            "workers": workers,
                            "concurrency": concurrency,
                            "inferpool": a,
                            "mlserver": b,
                            "requests_per_s_ratio": round(a["requests_per_s"] / b["requests_per_s"], 2),
                            "p99_ratio": round(a["p99_ms"] / b["p99_ms"], 2),
                        }
                    )
        except (KeyboardInterrupt, Interrupted) as error:
            sys.exit(f"rest.py: stopped ({error or 'Ctrl-C'}); every server it started has exited")

    if args.profile_dir:
        raw = Path(args.profile_dir) / "profile.txt"
        if raw.exists():
            results["profile"] = top_self_frames(raw, 15)

    if args.json:
        json.dump(results, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_table(results, args)


if __name__ == "__main__":
    main()
