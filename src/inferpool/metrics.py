"""Prometheus metrics, served on the metrics port at `/metrics`.

Request counts and latencies are recorded by the front ends as requests
finish. Pool figures (workers, requests in flight per worker, queue depth,
restarts) are read from the pool's `statistics()` when Prometheus scrapes,
so the hot path pays nothing for them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class _PoolCollector(Collector):
    def __init__(self, statistics: Callable[[], Any]) -> None:
        self._statistics = statistics

    def collect(self) -> Iterator[Any]:
        stats = self._statistics()
        if stats is None:
            return
        workers = GaugeMetricFamily(
            "inferpool_workers", "Worker processes started", value=stats.workers
        )
        ready = GaugeMetricFamily(
            "inferpool_workers_ready",
            "Worker processes receiving requests",
            value=stats.ready_workers,
        )
        restarts = CounterMetricFamily(
            "inferpool_worker_restarts",
            "Workers started to replace one that died",
            value=stats.restarts,
        )
        in_flight = GaugeMetricFamily(
            "inferpool_worker_requests_in_flight",
            "Requests sent to a worker and not answered yet",
            labels=["pid"],
        )
        for pid, count in stats.dispatcher.in_flight.items():
            in_flight.add_metric([str(pid)], count)
        queued = GaugeMetricFamily(
            "inferpool_queue_depth",
            "Requests waiting in the dispatcher's queue for a worker",
            labels=["model"],
        )
        for model, count in stats.dispatcher.queued.items():
            queued.add_metric([model], count)
        yield from (workers, ready, restarts, in_flight, queued)


class ServerMetrics:
    """The server's Prometheus metrics, in a registry of their own."""

    def __init__(self, pool_statistics: Callable[[], Any] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "inferpool_requests",
            "Inference requests answered, by model, protocol and status",
            ["model", "protocol", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "inferpool_request_duration_seconds",
            "Time from receiving an inference request to answering it",
            ["model", "protocol", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "inferpool_batch_size",
            "Requests merged into one call of the model by the adaptive batcher",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.model_load_seconds = Histogram(
            "inferpool_model_load_duration_seconds",
            "Time to load a model on every worker",
            ["model"],
            buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0),
            registry=self.registry,
        )
        if pool_statistics is not None:
            self.registry.register(_PoolCollector(pool_statistics))
        # Children of labelled metrics, cached: `labels()` costs several
        # microseconds per call, which the hot path should not pay.
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def observe_request(
        self, model: str, protocol: str, status: str, seconds: float
    ) -> None:
        key = (model, protocol, status)
        children = self._children.get(key)
        if children is None:
            if len(self._children) > 10_000:
                # Unknown model names come from clients; do not let them
                # grow the cache without bound.
                self._children.clear()
            children = (self.requests.labels(*key), self.latency.labels(*key))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        rendered: bytes = generate_latest(self.registry)
        return rendered


class MetricsServer:
    """A minimal HTTP server for `GET /metrics` on its own port."""

    def __init__(
        self, metrics: ServerMetrics, server: asyncio.base_events.Server, port: int
    ) -> None:
        self._metrics = metrics
        self._server = server
        self.port = port

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()


async def start_metrics_server(
    metrics: ServerMetrics, host: str, port: int
) -> MetricsServer:
    """Serve `metrics` at `http://host:port/metrics`."""

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 10)
            # Read and drop the headers; the request has no body.
            while True:
                line = await asyncio.wait_for(reader.readline(), 10)
                if line in (b"\r\n", b"\n", b""):
                    break
            parts = request_line.decode("latin-1").split()
            if (
                len(parts) >= 2
                and parts[0] == "GET"
                and parts[1].split("?")[0] == "/metrics"
            ):
                body, status, content_type = (
                    metrics.render(),
                    "200 OK",
                    CONTENT_TYPE_LATEST,
                )
            else:
                body, status, content_type = (
                    b'{"error":"Not found"}',
                    "404 Not Found",
                    "application/json",
                )
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    bound = server.sockets[0].getsockname()[1]
    logger.info("Metrics server listening on http://%s:%d/metrics", host, bound)
    return MetricsServer(metrics, server, bound)
