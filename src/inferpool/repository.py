"""The front end's view of its models: settings, versions and states.

`ModelRepository` finds model folders on disk, loads them through the pool
(`InferencePool` or `LocalPool`), and tracks each version's state so that
readiness and the repository index report what can serve now. The model
objects themselves live in the pool's workers.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .batching import AdaptiveBatcher
from .errors import (
    InferpoolError,
    InvalidRequest,
    ModelLoadError,
    ModelNotFound,
    ModelNotReady,
)
from .protocol import INFER
from .settings import ModelSettings, Settings, find_model_settings

logger = logging.getLogger(__name__)


class Pool(Protocol):
    async def start(self) -> None: ...
    async def load_model(self, settings: ModelSettings) -> None: ...
    async def unload_model(self, settings: ModelSettings) -> None: ...
    async def call(
        self,
        model_name: str,
        model_version: str | None,
        method_name: str,
        *args: Any,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any: ...
    async def close(self, drain_timeout: float | None = None) -> None: ...


# State names of the repository extension (Triton and KServe).
READY = "READY"
LOADING = "LOADING"
UNLOADING = "UNLOADING"
UNAVAILABLE = "UNAVAILABLE"


@dataclass
class ModelVersion:
    """One version of a model as the front end tracks it."""

    settings: ModelSettings
    state: str = LOADING
    reason: str = ""
    load_seconds: float | None = None
    metadata: Any = None
    # Whether the pool has loaded this version, so unloading must reach it.
    loaded: bool = False
    # The adaptive batcher, for a model with max_batch_size above 1.
    batcher: AdaptiveBatcher | None = None

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def version(self) -> str | None:
        return self.settings.version


@dataclass
class _Model:
    versions: dict[str | None, ModelVersion] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _version_key(version: str | None) -> tuple[tuple[int, int | str], ...]:
    if version is None:
        return ()
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part)
        for part in re.split(r"(\d+)", version)
        if part
    )


class ModelRepository:
    """Models by name and version, with their states, backed by a pool.

    `pool_problem` is a callable that returns None while the pool has a
    worker able to serve, and otherwise the reason it has none.
    """

    def __init__(
        self,
        settings: Settings,
        pool: Pool,
        pool_problem: Callable[[], str | None] | None = None,
        on_load: Callable[[str, float], None] | None = None,
        on_batch: Callable[[str, int], None] | None = None,
    ) -> None:
        self._settings = settings
        self._on_load = on_load
        self._on_batch = on_batch
        self._pool = pool
        self._pool_problem = pool_problem or (lambda: None)
        self._models: dict[str, _Model] = {}
        self.root = Path(settings.model_repository_root)
        # Parse errors of the settings files seen by the last `discover`, by
        # model folder name.
        self._broken: dict[str, str] = {}
        # False until the models found at start have been tried, so that an
        # empty repository does not look ready before loading has begun.
        self.startup_complete = False

    @property
    def pool(self) -> Pool:
        return self._pool

    # -- discovery -------------------------------------------------------------

    def discover(self) -> list[ModelSettings]:
        """Read every `model-settings.json` under the repository root.

        A file that does not parse is logged and remembered with its error
        (see `find_on_disk`), and the other models are still returned.
        """
        found: list[ModelSettings] = []
        self._broken = {}
        if not self.root.is_dir():
            return found
        for path in find_model_settings(self.root):
            try:
                found.append(ModelSettings.from_file(path))
            except InvalidRequest as exc:
                logger.error("Skipping %s: %s", path, exc)
                self._broken[path.parent.name] = str(exc)
        return found

    async def load_all(self) -> None:
        """Load every model found on disk, concurrently; a model that fails is
        reported UNAVAILABLE with its error and does not stop the others."""
        try:
            found = self.discover()
            for name, reason in self._broken.items():
                if name not in self._models:
                    broken = ModelSettings(name=name)
                    entry = self._models.setdefault(name, _Model())
                    entry.versions[None] = ModelVersion(broken, UNAVAILABLE, reason)
            await asyncio.gather(*(self._load_logged(s) for s in found))
        finally:
            self.startup_complete = True

    async def _load_logged(self, settings: ModelSettings) -> None:
        try:
            await self.load(settings)
        except InferpoolError as exc:
            logger.error("%s", exc)

    def find_on_disk(self, name: str) -> list[ModelSettings]:
        """Return the settings of every version of `name` on disk.

        Raises `InvalidRequest` with the parse error when the model's
        settings file is invalid.
        """
        found = [s for s in self.discover() if s.name == name]
        if not found and name in self._broken:
            raise InvalidRequest(self._broken[name])
        return found

    # -- load and unload -------------------------------------------------------

    async def load(self, settings: ModelSettings) -> ModelVersion:
        """Load one model version through the pool.

        A loaded version of the same name and version is replaced only after
        the new one has loaded everywhere, so requests keep succeeding during
        a reload.

        Raises `ModelLoadError` (the version is then UNAVAILABLE).
        """
        entry = self._models.setdefault(settings.name, _Model())
        async with entry.lock:
            previous = entry.versions.get(settings.version)
            candidate = ModelVersion(settings, LOADING)
            if previous is None or previous.state != READY:
                entry.versions[settings.version] = candidate
            logger.info("Loading model %r version %r", settings.name, settings.version)
            started = time.perf_counter()
            try:
                await self._pool.load_model(settings)
            except InferpoolError as exc:
                candidate.state = UNAVAILABLE
                candidate.reason = str(exc)
                if previous is None or previous.state != READY:
                    entry.versions[settings.version] = candidate
                raise (
                    exc if isinstance(exc, ModelLoadError) else ModelLoadError(str(exc))
                ) from exc
            except Exception as exc:
                candidate.state = UNAVAILABLE
                candidate.reason = f"{type(exc).__name__}: {exc}"
                entry.versions[settings.version] = candidate
                raise ModelLoadError(
                    f"Model {settings.name!r} failed to load: {candidate.reason}"
                ) from exc
            candidate.state = READY
            candidate.loaded = True
            candidate.batcher = self._make_batcher(settings)
            candidate.load_seconds = time.perf_counter() - started
            entry.versions[settings.version] = candidate
            if self._on_load is not None:
                self._on_load(settings.name, candidate.load_seconds)
            logger.info(
                "Loaded model %r version %r in %.3fs",
                settings.name,
                settings.version,
                candidate.load_seconds,
            )
            return candidate

    def _make_batcher(self, settings: ModelSettings) -> AdaptiveBatcher | None:
        if settings.max_batch_size <= 1:
            return None
        pool = self._pool
        name, version = settings.name, settings.version

        async def call(request: Any) -> Any:
            return await pool.call(name, version, INFER, request)

        def on_batch(size: int) -> None:
            if self._on_batch is not None:
                self._on_batch(name, size)

        return AdaptiveBatcher(
            settings.max_batch_size, settings.max_batch_time, call, on_batch
        )

    async def unload(self, name: str, version: str | None = None) -> None:
        """Unload a model (every version when `version` is None).

        Raises `ModelNotFound` if no such model is loaded.
        """
        entry = self._models.get(name)
        if entry is None or not entry.versions:
            raise ModelNotFound(name, version)
        async with entry.lock:
            if version is not None and version not in entry.versions:
                raise ModelNotFound(name, version)
            targets = [version] if version is not None else list(entry.versions)
            for key in targets:
                model_version = entry.versions[key]
                model_version.state = UNLOADING
                try:
                    if model_version.loaded:
                        await self._pool.unload_model(model_version.settings)
                finally:
                    del entry.versions[key]
                logger.info("Unloaded model %r version %r", name, key)
            if not entry.versions:
                self._models.pop(name, None)

    # -- lookups ---------------------------------------------------------------

    def get(self, name: str, version: str | None = None) -> ModelVersion:
        """Return a known model version, whatever its state.

        Without a version, the default: the highest version that is ready,
        comparing the numbers inside version names as numbers (`v10` is
        above `v9`), as Triton's "latest" policy does. Raises
        `ModelNotFound`.
        """
        entry = self._models.get(name)
        if entry is None or not entry.versions:
            raise ModelNotFound(name, version)
        if version:
            model_version = entry.versions.get(version)
            if model_version is None:
                raise ModelNotFound(name, version)
            return model_version
        candidates = [v for v in entry.versions.values() if v.state == READY]
        return max(
            candidates or entry.versions.values(), key=lambda v: _version_key(v.version)
        )

    def get_ready(self, name: str, version: str | None = None) -> ModelVersion:
        """Return a model version that can serve now.

        Raises `ModelNotFound`, or `ModelNotReady` while it loads, unloads or
        after it failed to load.
        """
        model_version = self.get(name, version)
        if model_version.state != READY:
            detail = f": {model_version.reason}" if model_version.reason else ""
            raise ModelNotReady(
                f"Model {name!r} is not ready (state {model_version.state}){detail}"
            )
        return model_version

    def is_model_ready(self, name: str, version: str | None = None) -> bool:
        """Whether the version is loaded and a worker can serve it. Raises
        `ModelNotFound` for an unknown model."""
        return self.get(name, version).state == READY and self._pool_problem() is None

    def not_ready_reason(self, name: str, version: str | None = None) -> str:
        """Return why a model version cannot serve now, or "" if it can.

        Raises `ModelNotFound` for an unknown model."""
        model_version = self.get(name, version)
        if model_version.state != READY:
            detail = f": {model_version.reason}" if model_version.reason else ""
            return f"Model {name!r} is not ready (state {model_version.state}){detail}"
        problem = self._pool_problem()
        if problem is not None:
            return f"Model {name!r} is not ready: {problem}"
        return ""

    def is_ready(self) -> bool:
        """Return whether startup loading is over, every known model is loaded
        and a worker can serve."""
        if not self.startup_complete or self._pool_problem() is not None:
            return False
        return all(
            v.state == READY
            for entry in self._models.values()
            for v in entry.versions.values()
        )

    def versions(self) -> list[ModelVersion]:
        return [v for entry in self._models.values() for v in entry.versions.values()]

    def index(self, ready_only: bool = False) -> list[ModelVersion]:
        """Every model version known in memory plus those on disk not loaded
        yet, for the repository index."""
        known = {(v.name, v.version) for v in self.versions()}
        listed = [v for v in self.versions() if not ready_only or v.state == READY]
        if not ready_only:
            for settings in self.discover():
                if (settings.name, settings.version) not in known:
                    listed.append(ModelVersion(settings, UNAVAILABLE, "not loaded"))
            known_names = {name for name, _ in known}
            for name, reason in self._broken.items():
                if name not in known_names:
                    listed.append(
                        ModelVersion(ModelSettings(name=name), UNAVAILABLE, reason)
                    )
        return sorted(listed, key=lambda v: (v.name, v.version or ""))
