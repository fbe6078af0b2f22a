"""Fixtures of the gRPC front-end tests: real servers on the test models."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).parent.parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from server_helpers import ServerProcess  # noqa: E402

REPOSITORY = Path(__file__).parent / "repository"

StartServer = Callable[[dict[str, str]], ServerProcess]


@pytest.fixture(scope="module")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """Start servers with 2 worker processes on copies of the test models,
    with extra environment variables; stop them all after the module."""
    started: list[ServerProcess] = []

    def start(env: dict[str, str]) -> ServerProcess:
        folder = tmp_path_factory.mktemp("repository")
        shutil.copytree(
            REPOSITORY,
            folder,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        process = ServerProcess(folder, "--parallel-workers", "2", env=env)
        started.append(process.start())
        return process

    yield start
    exit_codes = [process.stop() for process in started]
    assert exit_codes == [0] * len(started)


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> ServerProcess:
    """One server on the test models with the default settings."""
    return start_server({})
