"""Kill workers with SIGKILL under steady load and check that every request
gets exactly one response.

    .venv/bin/python benchmarks/faults.py [--duration 60] [--kill-every 5] [--json]

The script starts `inferpool start` with 2 worker processes on the `sleeper`
test model (tests/fault_repository/sleeper: predict blocks its worker for
5 ms), on free 127.0.0.1 ports. It drives a closed loop of REST clients on
keep-alive connections (aiohttp) and gRPC clients (grpc.aio, raw tensor
contents) for --duration seconds, and every --kill-every seconds it sends
SIGKILL to a random worker, a child of the server process read from /proc.

Just before each kill it scrapes `inferpool_worker_requests_in_flight` from
the server's Prometheus endpoint. A WorkerStop failure (REST 503 or gRPC
UNAVAILABLE whose message says "stopped unexpectedly") names the PID of the
worker that died, so the failures of each kill can be compared with what
was in flight on that worker. The comparison is racy by nature: between the
scrape and the kill, the worker may answer some requests and receive others.
The hard bound is the model's max_concurrency (8 by default), because the
dispatcher never has more requests of one model in flight on one worker.

It exits with status 1 when a criterion fails:

- every request is answered (lost = sent - answered = 0), none hangs past
  --deadline seconds, and none fails other than with WorkerStop;
- the WorkerStop failures of each kill do not exceed max_concurrency;
- the front end's RSS grows by less than 10% from after the warm-up to the
  end of the load;
- every killed worker is replaced, the server still answers, and it stops
  with exit status 0 leaving no worker behind.

`tests/test_faults.py` runs the same code in a short form.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
import grpc
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from server_helpers import ServerProcess, child_pids, rss_bytes  # noqa: E402

from inferpool.grpc import grpc_service_pb2 as pb  # noqa: E402
from inferpool.grpc import grpc_service_pb2_grpc as pb_grpc  # noqa: E402

MODEL_FOLDER = ROOT / "tests" / "fault_repository" / "sleeper"
MODEL_NAME = "sleeper"
ROWS = 2
REST_BODY = json.dumps(
    {
        "inputs": [
            {
                "name": "x",
                "shape": [ROWS, 4],
                "datatype": "FP32",
                "data": list(range(ROWS * 4)),
            }
        ]
    }
).encode()
WORKER_STOP_TEXT = "stopped unexpectedly"
WORKER_STOP_PID = re.compile(r"Worker with PID (\d+) stopped unexpectedly")
IN_FLIGHT_SAMPLE = re.compile(
    r'^inferpool_worker_requests_in_flight\{pid="(\d+)"\} ([0-9.e+]+)$', re.MULTILINE
)
# Requests of one model in flight on one worker, the server's default
# max_concurrency (the sleeper model does not override it).
MAX_CONCURRENCY = 8
MAX_RSS_GROWTH = 0.10
# Maximum number of failure descriptions kept as examples in the report.
MAX_EXAMPLES = 10


@dataclass
class Kill:
    """One SIGKILL sent to a worker, with what the metrics showed just before."""

    at_s: float
    pid: int
    in_flight_scraped: int
    worker_stop_failures: int = 0


@dataclass
class Tally:
    """Outcomes of the requests sent by the load clients."""

    sent: int = 0
    answered: int = 0
    succeeded: int = 0
    worker_stop: int = 0
    failed_other: int = 0
    hung: int = 0
    worker_stop_by_pid: collections.Counter[int] = field(
        default_factory=collections.Counter
    )
    failure_examples: list[str] = field(default_factory=list)

    def record_failure(self, description: str) -> None:
        self.failed_other += 1
        if len(self.failure_examples) < MAX_EXAMPLES:
            self.failure_examples.append(description)

    def record_worker_stop(self, message: str) -> None:
        self.worker_stop += 1
        match = WORKER_STOP_PID.search(message)
        if match:
            self.worker_stop_by_pid[int(match.group(1))] += 1


@dataclass
class FaultReport:
    duration_s: float
    kill_every_s: float
    rest_clients: int
    grpc_clients: int
    sent: int
    succeeded: int
    worker_stop: int
    failed_other: int
    hung: int
    lost: int
    requests_per_s: float
    kills: list[Kill]
    in_flight_scraped_total: int
    kills_with_more_failures_than_scraped: int
    restarts: int
    rss_start_bytes: int
    rss_before_bytes: int
    rss_after_bytes: int
    rss_growth: float
    server_exit_code: int | None
    failure_examples: list[str]
    problems: list[str]


def scrape_in_flight(metrics_port: int) -> dict[int, int]:
    """Return the requests in flight per worker PID from the metrics page."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        int(pid): int(float(value)) for pid, value in IN_FLIGHT_SAMPLE.findall(text)
    }


def scrape_metric(metrics_port: int, name: str) -> float:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"metric {name} not found on the metrics page")
    return float(match.group(1))


async def rest_client(
    session: aiohttp.ClientSession, url: str, end: float, deadline: float, tally: Tally
) -> None:
    """Send requests one after another until `end`, on one keep-alive connection."""
    headers = {"Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=deadline)
    while time.monotonic() < end:
        tally.sent += 1
        try:
            async with session.post(
                url, data=REST_BODY, headers=headers, timeout=timeout
            ) as response:
                text = await response.text()
                status = response.status
        except asyncio.TimeoutError:
            tally.hung += 1
            continue
        except aiohttp.ClientError as error:
            tally.record_failure(f"REST connection error: {error!r}")
            continue
        tally.answered += 1
        if status == 200:
            tally.succeeded += 1
        elif status == 503 and WORKER_STOP_TEXT in text:
            tally.record_worker_stop(text)
        else:
            tally.record_failure(f"REST {status}: {text[:300]}")


def grpc_request() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=MODEL_NAME)
    request.inputs.add(name="x", datatype="FP32", shape=[ROWS, 4])
    request.raw_input_contents.append(np.arange(ROWS * 4, dtype="<f4").tobytes())
    return request


async def grpc_client(
    stub: pb_grpc.GRPCInferenceServiceStub, end: float, deadline: float, tally: Tally
) -> None:
    """Send ModelInfer calls one after another until `end`."""
    request = grpc_request()
    while time.monotonic() < end:
        tally.sent += 1
        try:
            await stub.ModelInfer(request, timeout=deadline)
        except grpc.aio.AioRpcError as error:
            code = error.code()
            details = error.details() or ""
            if code is grpc.StatusCode.DEADLINE_EXCEEDED:
                tally.hung += 1
                continue
            tally.answered += 1
            if code is grpc.StatusCode.UNAVAILABLE and WORKER_STOP_TEXT in details:
                tally.record_worker_stop(details)
            else:
                tally.record_failure(f"gRPC {code.name}: {details[:300]}")
            continue
        tally.answered += 1
        tally.succeeded += 1


async def kill_workers(
    server: ServerProcess,
    start: float,
    end: float,
    kill_every: float,
    rng: random.Random,
    kills: list[Kill],
) -> None:
    """SIGKILL a random registered worker every `kill_every` seconds until `end`."""
    assert server.process is not None
    loop = asyncio.get_running_loop()
    next_kill = start + kill_every
    while next_kill < end:
        await asyncio.sleep(max(0.0, next_kill - time.monotonic()))
        next_kill += kill_every
        in_flight = await loop.run_in_executor(
            None, scrape_in_flight, server.metrics_port
        )
        children = set(child_pids(server.process.pid))
        candidates = sorted(pid for pid in in_flight if pid in children)
        if not candidates:
            # Every worker is being replaced: nothing registered to kill now.
            continue
        pid = rng.choice(candidates)
        os.kill(pid, signal.SIGKILL)
        kills.append(Kill(round(time.monotonic() - start, 3), pid, in_flight[pid]))


async def drive(
    server: ServerProcess,
    duration: float,
    warmup: float,
    kill_every: float,
    rest_clients: int,
    grpc_clients: int,
    deadline: float,
    rng: random.Random,
) -> tuple[Tally, list[Kill], int, float]:
    """Run the load and the kills; return the tally, the kills, the front
    end's RSS after the warm-up, and the measured seconds."""
    assert server.process is not None
    tally = Tally()
    kills: list[Kill] = []
    url = f"{server.url}/v2/models/{MODEL_NAME}/infer"
    connector = aiohttp.TCPConnector(limit=rest_clients)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            # Warm-up without kills, so that buffers and caches that the first
            # requests allocate are in the RSS baseline.
            warm = Tally()
            warmup_end = time.monotonic() + warmup
            await asyncio.gather(
                *(
                    rest_client(session, url, warmup_end, deadline, warm)
                    for _ in range(rest_clients)
                ),
                *(
                    grpc_client(stub, warmup_end, deadline, warm)
                    for _ in range(grpc_clients)
                ),
            )
            if warm.failed_other or warm.hung or warm.worker_stop:
                raise RuntimeError(f"warm-up requests failed: {warm.failure_examples}")
            rss_before = rss_bytes(server.process.pid)

            start = time.monotonic()
            end = start + duration
            await asyncio.gather(
                *(
                    rest_client(session, url, end, deadline, tally)
                    for _ in range(rest_clients)
                ),
                *(grpc_client(stub, end, deadline, tally) for _ in range(grpc_clients)),
                kill_workers(server, start, end, kill_every, rng, kills),
            )
            elapsed = time.monotonic() - start
        finally:
            await channel.close()
    for kill in kills:
        kill.worker_stop_failures = tally.worker_stop_by_pid.get(kill.pid, 0)
    return tally, kills, rss_before, elapsed


def wait_for_workers(server: ServerProcess, workers: int, timeout: float) -> bool:
    """Wait until the pool reports `workers` ready workers again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if scrape_metric(server.metrics_port, "inferpool_workers_ready") >= workers:
            return True
        time.sleep(0.1)
    return False


def run_faults(
    duration: float = 60.0,
    kill_every: float = 5.0,
    rest_clients: int = 32,
    grpc_clients: int = 4,
    workers: int = 2,
    warmup: float = 2.0,
    deadline: float = 60.0,
    seed: int | None = None,
) -> FaultReport:
    """Start a server, run the load with kills, stop the server and check
    the criteria. The report's `problems` lists each criterion that failed."""
    rng = random.Random(seed)
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="inferpool-faults-") as scratch:
        folder = Path(scratch) / "models"
        shutil.copytree(
            MODEL_FOLDER,
            folder / MODEL_FOLDER.name,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        server = ServerProcess(folder, "--parallel-workers", str(workers))
        server.start()
        assert server.process is not None
        exit_code: int | None = None
        try:
            rss_start = rss_bytes(server.process.pid)
            tally, kills, rss_before, elapsed = asyncio.run(
                drive(
                    server,
                    duration,
                    warmup,
                    kill_every,
                    rest_clients,
                    grpc_clients,
                    deadline,
                    rng,
                )
            )
            rss_after = rss_bytes(server.process.pid)
            if not wait_for_workers(server, workers, timeout=60.0):
                problems.append(
                    f"the pool did not get back to {workers} ready workers within 60s"
                )
            restarts = int(
                scrape_metric(server.metrics_port, "inferpool_worker_restarts_total")
            )
            live, _, _ = server.request("GET", "/v2/health/live")
            if live != 200:
                problems.append(f"/v2/health/live returned {live} after the run")
        finally:
            try:
                exit_code = server.stop()
            except AssertionError as error:
                problems.append(str(error))
            log = server.log()

    lost = tally.sent - tally.answered
    growth = (rss_after - rss_before) / rss_before
    over_scraped = sum(
        1 for kill in kills if kill.worker_stop_failures > kill.in_flight_scraped
    )
    if lost:
        problems.append(f"{lost} requests were sent but not answered")
    if tally.hung:
        problems.append(f"{tally.hung} requests had no answer within {deadline:g}s")
    if tally.failed_other:
        problems.append(
            f"{tally.failed_other} requests failed other than with WorkerStop: {tally.failure_examples}"
        )
    for kill in kills:
        if kill.worker_stop_failures > MAX_CONCURRENCY:
            problems.append(
                f"worker {kill.pid} failed {kill.worker_stop_failures} requests, more than "
                f"max_concurrency {MAX_CONCURRENCY}"
            )
    unattributed = tally.worker_stop - sum(
        tally.worker_stop_by_pid[k.pid] for k in kills
    )
    if unattributed:
        problems.append(
            f"{unattributed} WorkerStop failures name a worker that this script did not kill"
        )
    if not kills:
        problems.append("no worker was killed")
    if restarts < len(kills):
        problems.append(f"{len(kills)} workers killed but only {restarts} restarts")
    if growth >= MAX_RSS_GROWTH:
        problems.append(
            f"front-end RSS grew by {growth:.1%}, from {rss_before} to {rss_after} bytes"
        )
    if exit_code != 0:
        problems.append(f"server exited with {exit_code}")
    if "Traceback" in log:
        problems.append(
            "the server log contains a traceback:\n"
            + log[log.index("Traceback") :][:2000]
        )

    return FaultReport(
        duration_s=duration,
        kill_every_s=kill_every,
        rest_clients=rest_clients,
        grpc_clients=grpc_clients,
        sent=tally.sent,
        succeeded=tally.succeeded,
        worker_stop=tally.worker_stop,
        failed_other=tally.failed_other,
        hung=tally.hung,
        lost=lost,
        requests_per_s=round(tally.answered / elapsed, 1),
        kills=kills,
        in_flight_scraped_total=sum(kill.in_flight_scraped for kill in kills),
        kills_with_more_failures_than_scraped=over_scraped,
        restarts=restarts,
        rss_start_bytes=rss_start,
        rss_before_bytes=rss_before,
        rss_after_bytes=rss_after,
        rss_growth=round(growth, 4),
        server_exit_code=exit_code,
        failure_examples=tally.failure_examples,
        problems=problems,
    )


def format_report(report: FaultReport) -> str:
    mib = 1024 * 1024
    lines = [
        f"duration {report.duration_s:g}s, a SIGKILL every {report.kill_every_s:g}s, "
        f"{report.rest_clients} REST + {report.grpc_clients} gRPC clients",
        f"sent {report.sent}, succeeded {report.succeeded}, WorkerStop {report.worker_stop}, "
        f"failed otherwise {report.failed_other}, hung {report.hung}, lost {report.lost} "
        f"({report.requests_per_s:g} answers/s)",
        f"kills {len(report.kills)}, restarts {report.restarts}; in flight at the scrape "
        f"{report.in_flight_scraped_total} vs WorkerStop {report.worker_stop}; kills with "
        f"more failures than scraped: {report.kills_with_more_failures_than_scraped}",
    ]
    for kill in report.kills:
        lines.append(
            f"  t={kill.at_s:7.3f}s pid {kill.pid}: in flight {kill.in_flight_scraped}, "
            f"WorkerStop {kill.worker_stop_failures}"
        )
    lines.append(
        f"front-end RSS: {report.rss_start_bytes / mib:.1f} MiB at start, "
        f"{report.rss_before_bytes / mib:.1f} MiB after the warm-up, "
        f"{report.rss_after_bytes / mib:.1f} MiB after the load ({report.rss_growth:+.1%})"
    )
    lines.append(f"server exit status {report.server_exit_code}")
    if report.problems:
        lines.append("FAILED:")
        lines.extend(f"  - {problem}" for problem in report.problems)
    else:
        lines.append("all criteria met")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration",
        type=float,
        default=60.0,
        help="seconds of load with kills (default: 60)",
    )
    parser.add_argument(
        "--kill-every",
        type=float,
        default=5.0,
        help="seconds between two SIGKILLs (default: 5)",
    )
    parser.add_argument(
        "--rest-clients",
        type=int,
        default=32,
        help="concurrent REST clients (default: 32)",
    )
    parser.add_argument(
        "--grpc-clients",
        type=int,
        default=4,
        help="concurrent gRPC clients (default: 4)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes of the server (default: 2)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds of load without kills before the RSS baseline (default: 2)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=60.0,
        help="seconds after which a request without a response counts as hung (default: 60)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="seed of the choice of worker to kill (default: random)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    report = run_faults(
        duration=args.duration,
        kill_every=args.kill_every,
        rest_clients=args.rest_clients,
        grpc_clients=args.grpc_clients,
        workers=args.workers,
        warmup=args.warmup,
        deadline=args.deadline,
        seed=args.seed,
    )
    print(json.dumps(asdict(report), indent=2) if args.json else format_report(report))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
