"""Closed-loop HTTP/1.1 load generator for local benchmarks.

Each of --concurrency connections sends one request, reads the whole
response, and sends the next, for --duration seconds after a warm-up. The
result is one JSON object on stdout: requests/s, latency percentiles, error
counts and the CPU time that the load generator itself used.

    python benchmarks/loadgen.py --url http://127.0.0.1:8080/v2/models/iris/infer \\
        --body '{"inputs": [...]}' --concurrency 16 --duration 20

The client is a small keep-alive HTTP/1.1 client on asyncio streams, and it
uses uvloop when that is installed. On a small machine the load generator
shares the cores with the server under test, so its own CPU time per request
must stay low: about 0.12 ms (1.0 s of CPU for 8,400 requests to MLServer
1.7.1 at concurrency 16, on a 2-core Xeon with uvloop). It sends only to
loopback addresses.

Only the Python standard library is required.
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
from urllib.parse import urlsplit

# Seconds to wait before reconnecting after a connection error, so that a
# server that is down is not hit in a tight loop.
RECONNECT_DELAY = 0.1


class ResponseError(Exception):
    """Response that is not valid HTTP/1.1 or ends before its body does."""


@dataclass
class Stats:
    # Responses that arrived in the measured window, whenever they were sent.
    # The throughput counts these. Latencies count only requests sent in the
    # window too.
    completed: int = 0
    latencies: list[float] = field(default_factory=list)
    status_counts: dict[int, int] = field(default_factory=dict)
    connection_errors: int = 0
    timeouts: int = 0


@dataclass
class Target:
    host: str
    port: int
    request: bytes


def build_target(
    url: str,
    method: str,
    body: bytes | None,
    content_type: str,
    extra_headers: tuple[str, ...] | list[str] = (),
) -> Target:
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"invalid URL {url!r}: only http:// is supported")
    if parts.hostname is None:
        raise ValueError(f"invalid URL {url!r}: the host is missing")

    host = parts.hostname
    port = parts.port or 80
    addresses = {info[4][0] for info in socket.getaddrinfo(host, port)}
    for address in addresses:
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError(
                f"invalid URL {url!r}: {host} resolves to {address}, "
                "but this load generator sends only to loopback addresses"
            )

    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"

    host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}"]
    if body is not None:
        lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
    for header in extra_headers:
        name, colon, value = header.partition(":")
        if not colon or not name.strip():
            raise ValueError(f"invalid header {header!r}: expected 'Name: value'")
        lines.append(f"{name.strip()}: {value.strip()}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return Target(host=host, port=port, request=head + (body or b""))


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response and return its status code and whether to reconnect."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    try:
        version, status_text = status_line.split(" ", 2)[:2]
        status = int(status_text)
    except ValueError:
        raise ResponseError(f"invalid status line {status_line!r}") from None

    headers = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()

    close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"

    if "chunked" in headers.get("transfer-encoding", "").lower():
        await read_chunked_body(reader)
    elif "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif status not in (204, 304) and not 100 <= status < 200:
        # Without a length the body runs to the end of the connection.
        await reader.read()
        close = True

    return status, close


async def read_chunked_body(reader: asyncio.StreamReader) -> None:
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            break
        await reader.readexactly(size + 2)

    # Trailer fields, if any, end with an empty line.
    while await reader.readuntil(b"\r\n") != b"\r\n":
        pass


async def run_connection(
    target: Target,
    warmup_end: float,
    end: float,
    timeout: float,
    stats: Stats,
) -> None:
    """Send requests on one keep-alive connection until `end`.

    Responses that complete before `warmup_end` are not counted.
    """
    reader = writer = None
    try:
        while time.perf_counter() < end:
            if writer is None:
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(target.host, target.port), timeout
                    )
                except (OSError, asyncio.TimeoutError):
                    stats.connection_errors += 1
                    await asyncio.sleep(RECONNECT_DELAY)
                    continue

            started = time.perf_counter()
            try:
                writer.write(target.request)
                status, close = await asyncio.wait_for(read_response(reader), timeout)
            except asyncio.TimeoutError:
                stats.timeouts += 1
                close = True
                status = None
            except (OSError, asyncio.IncompleteReadError, ResponseError):
                stats.connection_errors += 1
                close = True
                status = None
            finished = time.perf_counter()

            if status is not None and warmup_end <= finished <= end:
                stats.completed += 1
            if status is not None and started >= warmup_end and finished <= end:
                stats.latencies.append(finished - started)
                stats.status_counts[status] = stats.status_counts.get(status, 0) + 1

            if close:
                writer.close()
                reader = writer = None
                if status is None:
                    await asyncio.sleep(RECONNECT_DELAY)
    finally:
        if writer is not None:
            writer.close()


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Return the nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, round(fraction * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(args: argparse.Namespace, target: Target) -> dict:
    stats = Stats()
    cpu_before = process_cpu_seconds()
    start = time.perf_counter()
    warmup_end = start + args.warmup
    end = warmup_end + args.duration

    await asyncio.gather(
        *(
            run_connection(target, warmup_end, end, args.timeout, stats)
            for _ in range(args.concurrency)
        )
    )

    wall = time.perf_counter() - start
    cpu = process_cpu_seconds() - cpu_before
    latencies = sorted(stats.latencies)
    ok = sum(count for status, count in stats.status_counts.items() if status < 400)
    http_errors = sum(stats.status_counts.values()) - ok
    return {
        "url": args.url,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "requests": len(latencies),
        "requests_per_s": round(stats.completed / args.duration, 1),
        "p50_ms": milliseconds(percentile(latencies, 0.50)),
        "p99_ms": milliseconds(percentile(latencies, 0.99)),
        "max_ms": milliseconds(latencies[-1] if latencies else None),
        "errors": http_errors + stats.connection_errors + stats.timeouts,
        "http_errors": http_errors,
        "connection_errors": stats.connection_errors,
        "timeouts": stats.timeouts,
        "status_counts": {str(k): v for k, v in sorted(stats.status_counts.items())},
        "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        # CPU time of this process over the whole run, warm-up included.
        "client_cpu_s": round(cpu, 3),
        "client_cpu_percent": round(100 * cpu / wall, 1),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Closed-loop HTTP/1.1 load generator for loopback servers."
    )
    parser.add_argument(
        "--url", required=True, help="http:// URL on a loopback address"
    )
    body = parser.add_mutually_exclusive_group()
    body.add_argument("--body", help="request body, sent as given")
    body.add_argument("--body-file", help="file whose bytes are the request body")
    parser.add_argument(
        "--method", help="HTTP method (default: POST with a body, else GET)"
    )
    parser.add_argument(
        "--content-type",
        default="application/json",
        help="Content-Type of the body (default: %(default)s)",
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        help="extra request header 'Name: value'; repeat for more",
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="open connections (default: 16)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=20.0,
        help="seconds measured after the warm-up (default: 20)",
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
        help="seconds one request may take before it counts as an error (default: 10)",
    )
    parser.add_argument(
        "--no-uvloop",
        action="store_true",
        help="use the standard asyncio event loop even if uvloop is installed",
    )
    args = parser.parse_args()

    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if args.duration <= 0:
        parser.error("--duration must be above 0 seconds")
    if args.warmup < 0:
        parser.error("--warmup must be 0 seconds or more")
    if args.timeout <= 0:
        parser.error("--timeout must be above 0 seconds")
    return args


def main() -> None:
    args = parse_args()

    body = None
    if args.body is not None:
        body = args.body.encode("utf-8")
    elif args.body_file is not None:
        with open(args.body_file, "rb") as body_file:
            body = body_file.read()
    method = args.method or ("POST" if body is not None else "GET")

    try:
        target = build_target(args.url, method, body, args.content_type, args.header)
    except (ValueError, OSError) as error:
        sys.exit(f"loadgen: {error}")

    runner = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            runner = uvloop.run

    result = runner(run(args, target))
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
