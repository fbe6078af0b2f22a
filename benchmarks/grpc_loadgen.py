"""Closed-loop gRPC load generator for the V2 ModelInfer call, for local benchmarks.

Each of --concurrency callers sends one ModelInfer request, waits for the
response, and sends the next, for --duration seconds after a warm-up. The
callers share --channels grpc.aio channels (HTTP/2 connections), spread
evenly. The result is one JSON object on stdout: requests/s, latency
percentiles, error counts by gRPC status and the CPU time that the load
generator itself used.

    python benchmarks/grpc_loadgen.py --target 127.0.0.1:8081 \\
        --request-file request.bin --concurrency 16 --duration 10

The request file contains a serialized `inference.ModelInferRequest`, made once
by the caller (for example with `inferpool.grpc.grpc_service_pb2`). The
client sends those bytes as they are and does not parse the responses: the
call is a generic unary-unary call without serializers, so the client's CPU
per request is gRPC's own. It sends only to loopback addresses.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import resource
import socket
import sys
import time
from dataclasses import dataclass, field

import grpc

METHOD = "/inference.GRPCInferenceService/ModelInfer"
# Callers per channel when --channels is not given.
CALLERS_PER_CHANNEL = 16


@dataclass
class Stats:
    # Responses that arrived in the measured window, whenever they were sent.
    # The throughput counts these. Latencies count only requests sent in the
    # window too.
    completed: int = 0
    latencies: list[float] = field(default_factory=list)
    status_counts: dict[str, int] = field(default_factory=dict)
    empty_responses: int = 0


def check_loopback(target: str) -> None:
    host, colon, port = target.rpartition(":")
    if not colon or not port.isdigit():
        raise ValueError(f"invalid target {target!r}: expected HOST:PORT")
    host = host.strip("[]")
    for info in socket.getaddrinfo(host, int(port)):
        address = info[4][0]
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError(
                f"invalid target {target!r}: {host} resolves to {address}, "
                "but this load generator sends only to loopback addresses"
            )


async def run_caller(
    call: grpc.aio.UnaryUnaryMultiCallable,
    request: bytes,
    warmup_end: float,
    end: float,
    timeout: float,
    stats: Stats,
) -> None:
    """Send requests one after the other until `end`.

    Responses that complete before `warmup_end` are not counted.
    """
    while time.perf_counter() < end:
        started = time.perf_counter()
        try:
            response = await call(request, timeout=timeout)
            status = "OK"
        except grpc.aio.AioRpcError as error:
            response = None
            status = error.code().name
        finished = time.perf_counter()

        if warmup_end <= finished <= end:
            stats.completed += 1
        if started >= warmup_end and finished <= end:
            stats.latencies.append(finished - started)
            stats.status_counts[status] = stats.status_counts.get(status, 0) + 1
            if status == "OK" and not response:
                stats.empty_responses += 1
        if status == "UNAVAILABLE":
            # The server is down or restarting: do not hit it in a tight loop.
            await asyncio.sleep(0.1)


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Return the nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, round(fraction * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def process_cpu_seconds() -> float:
    """Return this process's user plus system CPU seconds, all threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(args: argparse.Namespace, request: bytes) -> dict:
    options = [
        ("grpc.max_send_message_length", args.max_message_bytes),
        ("grpc.max_receive_message_length", args.max_message_bytes),
        # Without this option gRPC may share one connection among channels
        # that have the same target and options.
        ("grpc.use_local_subchannel_pool", 1),
    ]
    channels = [
        grpc.aio.insecure_channel(args.target, options=options)
        for _ in range(args.channels)
    ]
    try:
        for channel in channels:
            await asyncio.wait_for(channel.channel_ready(), args.timeout)
        calls = [
            # No serializers: the request and the response stay raw bytes.
            channel.unary_unary(
                METHOD, request_serializer=None, response_deserializer=None
            )
            for channel in channels
        ]

        stats = Stats()
        cpu_before = process_cpu_seconds()
        start = time.perf_counter()
        warmup_end = start + args.warmup
        end = warmup_end + args.duration
        await asyncio.gather(
            *(
                run_caller(
                    calls[index % len(calls)],
                    request,
                    warmup_end,
                    end,
                    args.timeout,
                    stats,
                )
                for index in range(args.concurrency)
            )
        )
        wall = time.perf_counter() - start
        cpu = process_cpu_seconds() - cpu_before
    finally:
        for channel in channels:
            await channel.close()

    latencies = sorted(stats.latencies)
    ok = stats.status_counts.get("OK", 0)
    return {
        "target": args.target,
        "concurrency": args.concurrency,
        "channels": args.channels,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "request_bytes": len(request),
        "requests": len(latencies),
        "requests_per_s": round(stats.completed / args.duration, 1),
        "p50_ms": milliseconds(percentile(latencies, 0.50)),
        "p99_ms": milliseconds(percentile(latencies, 0.99)),
        "max_ms": milliseconds(latencies[-1] if latencies else None),
        "errors": len(latencies) - ok + stats.empty_responses,
        "empty_responses": stats.empty_responses,
        "status_counts": dict(sorted(stats.status_counts.items())),
        "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        # CPU time of this process over the whole run, warm-up included.
        "client_cpu_s": round(cpu, 3),
        "client_cpu_percent": round(100 * cpu / wall, 1),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Closed-loop gRPC ModelInfer load generator for loopback servers."
    )
    parser.add_argument(
        "--target", required=True, help="HOST:PORT on a loopback address"
    )
    parser.add_argument(
        "--request-file",
        required=True,
        help="file with a serialized inference.ModelInferRequest",
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="concurrent callers (default: 16)"
    )
    parser.add_argument(
        "--channels",
        type=int,
        help=f"channels shared by the callers (default: one per {CALLERS_PER_CHANNEL} callers)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="seconds measured after the warm-up (default: 10)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds of load before measuring, not counted (default: 2)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds one call may take before it fails with DEADLINE_EXCEEDED (default: 10)",
    )
    parser.add_argument(
        "--max-message-bytes",
        type=int,
        default=64 * 1024 * 1024,
        help="maximum size of a request or response message in bytes (default: 64 MiB)",
    )
    parser.add_argument(
        "--no-uvloop",
        action="store_true",
        help="use the standard asyncio event loop even if uvloop is installed",
    )
    args = parser.parse_args()

    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if args.channels is None:
        args.channels = -(-args.concurrency // CALLERS_PER_CHANNEL)
    if not 1 <= args.channels <= args.concurrency:
        parser.error("--channels must be between 1 and --concurrency")
    if args.duration <= 0:
        parser.error("--duration must be above 0 seconds")
    if args.warmup < 0:
        parser.error("--warmup must be 0 seconds or more")
    if args.timeout <= 0:
        parser.error("--timeout must be above 0 seconds")
    return args


def main() -> None:
    args = parse_args()
    try:
        check_loopback(args.target)
        with open(args.request_file, "rb") as request_file:
            request = request_file.read()
    except (ValueError, OSError) as error:
        sys.exit(f"grpc_loadgen: {error}")

    runner = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            runner = uvloop.run

    result = runner(run(args, request))
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
