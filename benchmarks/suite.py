"""Compare inferpool and MLServer 1.7.1 side by side on REST and gRPC.

    .venv/bin/python benchmarks/suite.py [--cases iris rows1000 tensor10mb cpu]
        [--duration 10] [--warmup 2] [--json]

Both servers serve the same model repository (`suite_models/`, copied to a
scratch folder per server), one server at a time, on 127.0.0.1 ports only.
Cases:

- `iris`: the iris LogisticRegression with one FP32 row, on REST (JSON) and
  gRPC (typed `fp32_contents`).
- `rows1000`: the same model with 1,000 rows per request, on REST (JSON)
  and gRPC (typed contents).
- `tensor10mb`: a 10 MB FP32 tensor through the echo model
  (`bench_models.NoopModel`). gRPC sends it in `raw_input_contents` to both
  servers. MLServer 1.7.1's REST server does not implement Triton's binary
  tensor extension, so on REST inferpool gets the extension and MLServer
  JSON. inferpool is also measured with JSON.
- `cpu`: about 2 ms of pure-Python work per request
  (`bench_models.CpuBoundModel`) on REST, with 1 and with 2 workers.

The first three cases run on a server with 2 workers. `loadgen.py` (HTTP)
and `grpc_loadgen.py` drive each point as a closed loop in a subprocess,
which reports its own CPU time. The script also records the CPU time of the
server's front end and workers from /proc, and the CPU time of the whole
machine from /proc/stat, whose remainder is other processes' load.

Every server started here gets SIGTERM when its measurements end, or on an
error, SIGTERM or Ctrl-C, and the script checks that the server and all of
its worker processes have exited.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import grpc
import numpy as np
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

from inferpool.grpc import grpc_service_pb2 as pb

SUITE_MODELS = HERE / "suite_models"
SERVERS = ("inferpool", "mlserver")
CASES = ("iris", "rows1000", "tensor10mb", "cpu")
# 2,621,440 float32 values are 10 MiB.
TENSOR_VALUES = 10 * 1024 * 1024 // 4
# Largest gRPC message and REST body both servers accept here: inferpool's
# defaults, also set in MLServer's settings.json.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# Seconds one request may take before the load generator counts an error.
SMALL_TIMEOUT = 10.0
LARGE_TIMEOUT = 120.0

THROUGHPUT_TARGETS = {"iris": 3.0, "rows1000": 5.0, "tensor10mb": 5.0}
GRPC_IRIS_TARGET = 2.0
P99_TARGET_RATIO = 1 / 3
CPU_SCALING_TARGET = 1.7


@dataclass
class Payload:
    """One request as a load generator sends it."""

    protocol: str  # "rest" or "grpc"
    encoding: str  # "json", "binary", "contents" or "raw"
    model: str
    body: bytes
    headers: list[str] = field(default_factory=list)
    content_type: str = "application/json"
    # Output shape of a valid response, up to dimensions of size 1.
    output_shape: list[int] = field(default_factory=list)


@dataclass
class Point:
    """One measured load: a payload at one concurrency on one server."""

    case: str
    payload: Payload
    concurrency: int
    workers: int
    timeout: float


# Payloads


def iris_features(rows: int) -> list[float]:
    """Return `rows` rows of scikit-learn's iris features, repeated as needed, flat.

    The values stay float64, as the dataset has them (5.1, 3.5, ...), so JSON
    carries them as short decimals, as in rest.py's body. Converted to
    float32 first, each would print as 17 digits (5.099999904632568).
    """
    from sklearn.datasets import load_iris

    features = load_iris().data
    repeats = -(-rows // len(features))
    return np.tile(features, (repeats, 1))[:rows].ravel().tolist()


def json_body(name: str, shape: list[int], values: list[float]) -> bytes:
    tensor = {"name": name, "shape": shape, "datatype": "FP32", "data": values}
    return json.dumps({"inputs": [tensor]}, separators=(",", ":")).encode()


def grpc_body(
    model: str, name: str, shape: list[int], array: np.ndarray, raw: bool
) -> bytes:
    """Serialize one ModelInferRequest with FP32 typed contents or raw contents."""
    tensor = pb.ModelInferRequest.InferInputTensor(
        name=name, datatype="FP32", shape=shape
    )
    request = pb.ModelInferRequest(model_name=model, inputs=[tensor])
    if raw:
        request.raw_input_contents.append(array.astype("<f4").tobytes())
    else:
        request.inputs[0].contents.fp32_contents.extend(array.ravel().tolist())
    return request.SerializeToString()


def iris_payloads(rows: int) -> list[Payload]:
    values = iris_features(rows)
    shape = [rows, 4]
    return [
        Payload(
            "rest",
            "json",
            "iris",
            json_body("predict", shape, values),
            output_shape=[rows],
        ),
        Payload(
            "grpc",
            "contents",
            "iris",
            grpc_body(
                "iris", "predict", shape, np.array(values, dtype=np.float32), raw=False
            ),
            output_shape=[rows],
        ),
    ]


def tensor_payloads() -> list[Payload]:
    array = np.random.default_rng(0).random(TENSOR_VALUES, dtype=np.float32)
    shape = [TENSOR_VALUES]
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": shape,
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": array.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        },
        separators=(",", ":"),
    ).encode()
    return [
        Payload(
            "rest",
            "binary",
            "echo",
            header + array.tobytes(),
            headers=[f"Inference-Header-Content-Length: {len(header)}"],
            content_type="application/octet-stream",
            output_shape=shape,
        ),
        # json.dumps writes each float32 value as the shortest repr of its
        # float64 value, as a client that calls ndarray.tolist() does.
        Payload(
            "rest",
            "json",
            "echo",
            json_body("x", shape, array.tolist()),
            output_shape=shape,
        ),
        Payload(
            "grpc",
            "raw",
            "echo",
            grpc_body("echo", "x", shape, array, raw=True),
            output_shape=shape,
        ),
    ]


def cpu_payload() -> Payload:
    return Payload(
        "rest", "json", "cpu", json_body("x", [1, 1], [0.0]), output_shape=[1]
    )


def plan_points(args: argparse.Namespace) -> dict[str, list[Point]]:
    """Return the points of each server configuration: "main" (2 workers) and "one-worker"."""
    plan: dict[str, list[Point]] = {"main": [], "one-worker": []}
    for case in args.cases:
        if case in ("iris", "rows1000"):
            for payload in iris_payloads(1 if case == "iris" else 1000):
                for concurrency in args.concurrency:
                    plan["main"].append(
                        Point(case, payload, concurrency, 2, SMALL_TIMEOUT)
                    )
        elif case == "tensor10mb":
            for payload in tensor_payloads():
                for concurrency in args.tensor_concurrency:
                    plan["main"].append(
                        Point(case, payload, concurrency, 2, LARGE_TIMEOUT)
                    )
        elif case == "cpu":
            payload = cpu_payload()
            for concurrency in args.cpu_concurrency:
                plan["main"].append(Point(case, payload, concurrency, 2, SMALL_TIMEOUT))
                plan["one-worker"].append(
                    Point(case, payload, concurrency, 1, SMALL_TIMEOUT)
                )
    return plan


def runs_on(server: str, payload: Payload) -> bool:
    # Nothing in MLServer 1.7.1's mlserver/rest package reads
    # Inference-Header-Content-Length, so it gets no binary body.
    return not (server == "mlserver" and payload.encoding == "binary")


def point_key(point: Point) -> str:
    return (
        f"{point.case}/{point.payload.protocol}-{point.payload.encoding}"
        f"/workers={point.workers}/c={point.concurrency}"
    )


# Response checks, one request per payload before it is measured


def same_size(shape: list[int], expected: list[int]) -> bool:
    # MLServer returns the iris labels as [rows, 1], inferpool as [rows].
    return int(np.prod(shape)) == int(np.prod(expected))


def check_rest(server: Server, payload: Payload) -> None:
    url = f"http://{HOST}:{server.http_port}/v2/models/{payload.model}/infer"
    request = urllib.request.Request(url, data=payload.body, method="POST")
    request.add_header("Content-Type", payload.content_type)
    for header in payload.headers:
        name, _, value = header.partition(":")
        request.add_header(name.strip(), value.strip())
    with urllib.request.urlopen(request, timeout=LARGE_TIMEOUT) as response:
        body = response.read()
        header_length = response.headers.get("Inference-Header-Content-Length")
    if payload.encoding == "binary":
        if header_length is None:
            raise RuntimeError(
                f"{server.label}: the binary response has no JSON header length"
            )
        document = json.loads(body[: int(header_length)])
        binary_bytes = len(body) - int(header_length)
        if binary_bytes != 4 * int(np.prod(payload.output_shape)):
            raise RuntimeError(
                f"{server.label}: the binary response has {binary_bytes} data bytes"
            )
    else:
        document = json.loads(body)
    shape = document["outputs"][0]["shape"]
    if not same_size(shape, payload.output_shape):
        raise RuntimeError(
            f"{server.label}: {payload.model} returned output shape {shape}, "
            f"expected {payload.output_shape}"
        )


def check_grpc(server: Server, payload: Payload) -> None:
    options = [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ]
    with grpc.insecure_channel(
        f"{HOST}:{server.grpc_port}", options=options
    ) as channel:
        call = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=None,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        response = call(payload.body, timeout=LARGE_TIMEOUT)
    shape = list(response.outputs[0].shape)
    if not same_size(shape, payload.output_shape):
        raise RuntimeError(
            f"{server.label}: {payload.model} returned output shape {shape} over gRPC, "
            f"expected {payload.output_shape}"
        )
    if payload.encoding == "raw":
        raw_bytes = sum(len(contents) for contents in response.raw_output_contents)
        if raw_bytes != 4 * int(np.prod(payload.output_shape)):
            raise RuntimeError(
                f"{server.label}: the raw gRPC response has {raw_bytes} bytes"
            )


# Measurement


def machine_busy_seconds() -> float:
    """Return the CPU seconds of all cores spent out of idle and iowait, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal, in clock ticks.
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def run_point(
    server: Server, point: Point, args: argparse.Namespace, scratch: Path
) -> dict:
    payload = point.payload
    body_file = scratch / "body.bin"
    body_file.write_bytes(payload.body)
    common = [
        "--concurrency", str(point.concurrency),
        "--duration", str(args.duration),
        "--warmup", str(args.warmup),
        "--timeout", str(point.timeout),
    ]  # fmt: skip
    if payload.protocol == "rest":
        command = [
            sys.executable, str(HERE / "loadgen.py"),
            "--url", f"http://{HOST}:{server.http_port}/v2/models/{payload.model}/infer",
            "--body-file", str(body_file),
            "--content-type", payload.content_type,
            *[f"--header={header}" for header in payload.headers],
            *common,
        ]  # fmt: skip
    else:
        command = [
            sys.executable, str(HERE / "grpc_loadgen.py"),
            "--target", f"{HOST}:{server.grpc_port}",
            "--request-file", str(body_file),
            *common,
        ]  # fmt: skip

    assert server.process is not None
    front_end = server.process.pid
    workers = descendants(front_end)
    front_end_before = cpu_seconds(front_end)
    workers_before = sum(cpu_seconds(pid) for pid in workers)
    busy_before = machine_busy_seconds()
    own_before = cpu_seconds(os.getpid())
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        output, _ = process.communicate()
        wall = time.perf_counter() - started
        front_end_cpu = cpu_seconds(front_end) - front_end_before
        workers_cpu = sum(cpu_seconds(pid) for pid in workers) - workers_before
        busy = machine_busy_seconds() - busy_before
        own = cpu_seconds(os.getpid()) - own_before
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        raise RuntimeError(
            f"the load generator failed with exit code {process.returncode}"
        )
    result = json.loads(output)
    if not result["requests"]:
        raise RuntimeError(
            f"{server.label}: no request completed at {point_key(point)}"
        )

    # CPU use over the whole load, warm-up included, in percent of one core.
    # The load generator's time after it exits (its interpreter start and
    # exit) falls into "others".
    def percent(seconds: float) -> float:
        return round(100 * seconds / wall, 1)

    client_cpu = result["client_cpu_s"]
    result["front_end_cpu_percent"] = percent(front_end_cpu)
    result["workers_cpu_percent"] = percent(workers_cpu)
    result["machine_busy_percent"] = percent(busy)
    result["others_cpu_percent"] = percent(
        max(0.0, busy - front_end_cpu - workers_cpu - client_cpu - own)
    )
    log(
        f"{server.label}: {point_key(point)}: {result['requests_per_s']:.1f} requests/s, "
        f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, errors {result['errors']}; "
        f"CPU % of a core: front end {result['front_end_cpu_percent']}, "
        f"workers {result['workers_cpu_percent']}, load generator {result['client_cpu_percent']}, "
        f"others {result['others_cpu_percent']}"
    )
    return result


def prepare_repository(folder: Path, python: str) -> None:
    """Copy suite_models/ to `folder` and train the iris model with `python`."""
    shutil.copytree(
        SUITE_MODELS, folder, ignore=shutil.ignore_patterns("*.md", "*.joblib")
    )
    subprocess.run(
        [
            python, str(ROOT / "examples" / "train_iris.py"),
            "--output", str(folder / "iris" / "model.joblib"),
            "--force",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def make_server(side: str, workers: int, scratch: Path, python: str) -> Server:
    repository = scratch / f"{side}-workers-{workers}"
    prepare_repository(repository, sys.executable if side == "inferpool" else python)
    # bench_models lives in benchmarks/, the folder of this script.
    python_path = os.pathsep.join(
        filter(None, [str(HERE), os.environ.get("PYTHONPATH")])
    )
    extra_env = {"PYTHONPATH": python_path, "BENCH_MODELS_SERVER": side}
    if side == "inferpool":
        return inferpool_server(repository, workers, scratch, extra_env)
    return mlserver_server(
        repository,
        workers,
        python,
        scratch,
        extra_env,
        {"grpc_max_message_length": MAX_MESSAGE_BYTES},
    )


def measure_server(
    side: str, workers: int, points: list[Point], args, scratch: Path, python: str
) -> dict:
    points = [point for point in points if runs_on(side, point.payload)]
    results: dict[str, dict] = {}
    if not points:
        return results
    server = make_server(side, workers, scratch, python)
    server.start()
    try:
        server.wait_ready("iris", iris_payloads(1)[0].body)
        checked: set[int] = set()
        for point in points:
            if id(point.payload) not in checked:
                check = check_rest if point.payload.protocol == "rest" else check_grpc
                check(server, point.payload)
                checked.add(id(point.payload))
            results[point_key(point)] = run_point(server, point, args, scratch)
    finally:
        server.stop()
    return results


# Report


def compare(results: dict, ours_key: str, theirs_key: str) -> dict | None:
    ours = results["inferpool"].get(ours_key)
    theirs = results["mlserver"].get(theirs_key)
    if ours is None or theirs is None:
        return None
    return {
        "inferpool": ours_key,
        "mlserver": theirs_key,
        "requests_per_s_ratio": round(
            ours["requests_per_s"] / theirs["requests_per_s"], 2
        ),
        "p99_ratio": round(ours["p99_ms"] / theirs["p99_ms"], 2),
    }


def build_comparisons(results: dict) -> list[dict]:
    comparisons = []
    for key in results["inferpool"]:
        if "/rest-binary/" in key:
            # MLServer gets the same tensor as JSON.
            row = compare(results, key, key.replace("/rest-binary/", "/rest-json/"))
        else:
            row = compare(results, key, key)
        if row is not None:
            comparisons.append(row)
    return comparisons


def build_scaling(results: dict) -> list[dict]:
    """Return each server's 2-worker/1-worker throughput ratio in the cpu case."""
    rows = []
    for side in SERVERS:
        for key, two in results[side].items():
            if not key.startswith("cpu/") or "/workers=2/" not in key:
                continue
            one = results[side].get(key.replace("/workers=2/", "/workers=1/"))
            if one is not None:
                ratio = two["requests_per_s"] / one["requests_per_s"]
                rows.append(
                    {
                        "server": side,
                        "concurrency": two["concurrency"],
                        "one_worker_requests_per_s": one["requests_per_s"],
                        "two_workers_requests_per_s": two["requests_per_s"],
                        "ratio": round(ratio, 2),
                    }
                )
    return rows


def build_targets(comparisons: list[dict], scaling: list[dict]) -> list[dict]:
    targets = []
    for row in comparisons:
        case, variant, _, concurrency = row["inferpool"].split("/")
        concurrency = int(concurrency.removeprefix("c="))
        label = f"{case} {variant} vs MLServer {row['mlserver'].split('/')[1]}, c={concurrency}"
        if case == "iris" and variant == "rest-json" and concurrency == 16:
            targets.append(
                target(
                    f"{label}: requests/s",
                    row["requests_per_s_ratio"],
                    ">=",
                    THROUGHPUT_TARGETS[case],
                )
            )
            targets.append(
                target(f"{label}: p99", row["p99_ratio"], "<=", P99_TARGET_RATIO)
            )
        elif case == "iris" and variant.startswith("grpc") and concurrency == 16:
            targets.append(
                target(
                    f"{label}: requests/s",
                    row["requests_per_s_ratio"],
                    ">=",
                    GRPC_IRIS_TARGET,
                )
            )
        elif case == "rows1000" and concurrency == 16:
            targets.append(
                target(
                    f"{label}: requests/s",
                    row["requests_per_s_ratio"],
                    ">=",
                    THROUGHPUT_TARGETS[case],
                )
            )
        elif case == "tensor10mb" and variant != "rest-json":
            targets.append(
                target(
                    f"{label}: requests/s",
                    row["requests_per_s_ratio"],
                    ">=",
                    THROUGHPUT_TARGETS[case],
                )
            )
    for row in scaling:
        if row["server"] == "inferpool":
            label = f"cpu inferpool 2 workers / 1 worker, c={row['concurrency']}"
            targets.append(target(label, row["ratio"], ">=", CPU_SCALING_TARGET))
    return targets


def target(label: str, value: float, operator: str, limit: float) -> dict:
    met = value >= limit if operator == ">=" else value <= limit
    return {"target": f"{label} {operator} {limit:.2f}", "value": value, "met": met}


def print_report(report: dict) -> None:
    results = report["results"]
    print(
        f"\ninferpool vs MLServer 1.7.1, {report['duration_s']:g} s per point "
        f"after {report['warmup_s']:g} s warm-up"
    )
    header = (
        f"{'point':<44} | {'ip req/s':>9} {'p50':>7} {'p99':>7} {'lg%':>4} | "
        f"{'ML req/s':>9} {'p50':>7} {'p99':>7} {'lg%':>4} | {'req/s':>6} {'p99':>5} | {'oth%':>4}"
    )
    print(header)
    print("-" * len(header))

    def cells(point: dict | None) -> str:
        if point is None:
            return f"{'-':>9} {'-':>7} {'-':>7} {'-':>4}"
        return (
            f"{point['requests_per_s']:>9.1f} {point['p50_ms']:>7.2f} {point['p99_ms']:>7.2f} "
            f"{point['client_cpu_percent']:>4.0f}"
        )

    ratios = {row["inferpool"]: row for row in report["comparisons"]}
    for key in list(results["inferpool"]) + [
        key for key in results["mlserver"] if key not in results["inferpool"]
    ]:
        ours = results["inferpool"].get(key)
        theirs_key = ratios[key]["mlserver"] if key in ratios else key
        theirs = results["mlserver"].get(theirs_key)
        ratio = ratios.get(key)
        ratio_cells = (
            f"{ratio['requests_per_s_ratio']:>5.2f}x {ratio['p99_ratio']:>4.2f}x"
            if ratio
            else f"{'-':>6} {'-':>5}"
        )
        others = max(point["others_cpu_percent"] for point in (ours, theirs) if point)
        print(
            f"{key:<44} | {cells(ours)} | {cells(theirs)} | {ratio_cells} | {others:>4.0f}"
        )
    print(
        "ms are latencies; lg% is the load generator's CPU and oth% the most CPU that other "
        "processes used during either point, in % of one core; ratios are inferpool/MLServer. "
        "rest-binary rows are compared with MLServer's rest-json."
    )
    for row in report["scaling"]:
        print(
            f"cpu scaling {row['server']}, c={row['concurrency']}: 1 worker "
            f"{row['one_worker_requests_per_s']:.1f}, 2 workers "
            f"{row['two_workers_requests_per_s']:.1f} requests/s, ratio {row['ratio']:.2f}"
        )
    for row in report["targets"]:
        print(
            f"target {row['target']}: {row['value']:.2f} {'met' if row['met'] else 'NOT met'}"
        )


def describe_machine(python: str) -> dict:
    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    mlserver_version = subprocess.run(
        [python, "-c", "import mlserver; print(mlserver.__version__)"],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    ).stdout.strip()
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "inferpool": version("inferpool"),
        "grpcio": version("grpcio"),
        "uvloop": version("uvloop"),
        "mlserver": mlserver_version,
        "load_average_at_start": os.getloadavg(),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run inferpool and MLServer 1.7.1 side by side on REST and gRPC."
    )
    parser.add_argument(
        "--cases", nargs="+", choices=CASES, default=list(CASES),
        help="cases to run (default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--duration", type=float, default=10.0,
        help="seconds measured per point, after the warm-up (default: 10)",
    )  # fmt: skip
    parser.add_argument(
        "--warmup", type=float, default=2.0,
        help="seconds of load before each point, not counted (default: 2)",
    )  # fmt: skip
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 16, 64],
        help="concurrent requests of the iris and rows1000 cases (default: 1 16 64)",
    )  # fmt: skip
    parser.add_argument(
        "--tensor-concurrency", type=int, nargs="+", default=[1, 4],
        help="concurrent requests of the tensor10mb case (default: 1 4)",
    )  # fmt: skip
    parser.add_argument(
        "--cpu-concurrency", type=int, nargs="+", default=[16],
        help="concurrent requests of the cpu case (default: 16)",
    )  # fmt: skip
    parser.add_argument(
        "--servers", nargs="+", choices=SERVERS, default=list(SERVERS),
        help="servers to run (default: both)",
    )  # fmt: skip
    parser.add_argument(
        "--mlserver-python",
        help="python of an environment with MLServer 1.7.1 "
        "(default: the one mlserver_env.sh creates or reuses)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be above 0 and --warmup 0 or more")
    if min(args.concurrency + args.tensor_concurrency + args.cpu_concurrency) < 1:
        parser.error("every concurrency must be at least 1")
    args.cases = [case for case in CASES if case in args.cases]
    return args


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, raise_interrupted)
    python = mlserver_python(args.mlserver_python)
    report: dict = {
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "cases": args.cases,
        "machine": describe_machine(python),
        "source": source_state(),
        "results": {side: {} for side in SERVERS},
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="suite-bench-") as scratch_name:
        scratch = Path(scratch_name)
        plan = plan_points(args)
        try:
            for configuration, workers in (("main", 2), ("one-worker", 1)):
                for side in args.servers:
                    report["results"][side].update(
                        measure_server(
                            side, workers, plan[configuration], args, scratch, python
                        )
                    )
        except (KeyboardInterrupt, Interrupted) as error:
            sys.exit(
                f"suite.py: stopped ({error or 'Ctrl-C'}); every server it started has exited"
            )
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    report["comparisons"] = build_comparisons(report["results"])
    report["scaling"] = build_scaling(report["results"])
    report["targets"] = build_targets(report["comparisons"], report["scaling"])

    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_report(report)


if __name__ == "__main__":
    main()
