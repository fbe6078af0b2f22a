from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).parent.parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from server_helpers import ServerProcess  # noqa: E402

REPOSITORY = Path(__file__).parent / "repository"
MAX_BODY_SIZE = 1024 * 1024
LIFECYCLE_REPOSITORY = Path(__file__).parent / "lifecycle_repository"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with 2 workers on the REST test models, for the module."""
    folder = tmp_path_factory.mktemp("repository")
    for model in REPOSITORY.iterdir():
        target = folder / model.name
        target.mkdir()
        for file in model.iterdir():
            if file.is_file():
                (target / file.name).write_bytes(file.read_bytes())
    process = ServerProcess(
        folder,
        "--parallel-workers",
        "2",
        env={"INFERPOOL_MAX_BODY_SIZE": str(MAX_BODY_SIZE)},
    ).start()
    yield process
    assert process.stop() == 0
