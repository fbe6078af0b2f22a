"""Workers killed with SIGKILL under load: every request gets one response.

A short form of benchmarks/faults.py (12 s of REST and gRPC load on 2
workers, a SIGKILL every 3 s), with each criterion asserted on its own."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = str(Path(__file__).resolve().parent.parent / "benchmarks")
if BENCHMARKS not in sys.path:
    sys.path.insert(0, BENCHMARKS)

from faults import MAX_CONCURRENCY, MAX_RSS_GROWTH, FaultReport, run_faults  # noqa: E402


@pytest.fixture(scope="module")
def report() -> FaultReport:
    return run_faults(
        duration=12.0,
        kill_every=3.0,
        rest_clients=16,
        grpc_clients=2,
        warmup=1.0,
        deadline=30.0,
    )


def test_kills_lose_no_request(report: FaultReport) -> None:
    assert report.sent > 0
    assert report.lost == 0
    assert report.hung == 0


def test_kills_fail_only_with_worker_stop(report: FaultReport) -> None:
    assert report.failed_other == 0, report.failure_examples
    assert report.succeeded + report.worker_stop == report.sent


def test_kills_fail_only_in_flight_requests(report: FaultReport) -> None:
    # A kill is skipped when no worker is registered at that moment.
    assert len(report.kills) >= 2
    for kill in report.kills:
        assert kill.worker_stop_failures <= MAX_CONCURRENCY, kill
    assert report.worker_stop == sum(kill.worker_stop_failures for kill in report.kills)


def test_kills_replace_every_worker(report: FaultReport) -> None:
    assert report.restarts >= len(report.kills)
    assert report.server_exit_code == 0


def test_kills_front_end_memory_stable(report: FaultReport) -> None:
    assert report.rss_growth < MAX_RSS_GROWTH


def test_kills_meet_every_criterion(report: FaultReport) -> None:
    assert report.problems == []
