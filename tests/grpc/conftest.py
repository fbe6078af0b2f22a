"""Fixtures of the gRPC front-end tests: real servers on the test models."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).parent.parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from server_helpers import ServerProcess  # noqa: E402

REPOSITORY = Path(__file__).parent / "repository"

# Max gRPC message size of the `small_server` fixture, in bytes.
SMALL_MAX_MESSAGE = 64 * 1024


def copy_repository(target: Path) -> Path:
    """Copy the test models into `target`, leaving out bytecode caches."""
    shutil.copytree(
        REPOSITORY, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    return target


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with a worker process on the test models, for the module.

    NOTE: one worker, because with two the pool at times never answers the
    first model loads at startup; that belongs to the pool's own tests.
    """
    folder = copy_repository(tmp_path_factory.mktemp("repository"))
    process = ServerProcess(folder, "--parallel-workers", "1").start()
    yield process
    assert process.stop() == 0


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose max gRPC message size is `SMALL_MAX_MESSAGE` bytes."""
    folder = copy_repository(tmp_path_factory.mktemp("small_repository"))
    process = ServerProcess(
        folder,
        "--parallel-workers",
        "1",
        env={"INFERPOOL_GRPC_MAX_MESSAGE_LENGTH": str(SMALL_MAX_MESSAGE)},
    ).start()
    yield process
    assert process.stop() == 0
