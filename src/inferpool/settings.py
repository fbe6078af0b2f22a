"""Server and model settings, with MLServer's field names.

`Settings` is the server's configuration: `settings.json` in the model
repository, then `INFERPOOL_` environment variables, then command-line
flags, each overriding the one before. `ModelSettings` is one model's
`model-settings.json`. Both are pydantic models, so they validate on load
and pickle to the worker processes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import InvalidRequest

MODEL_SETTINGS_FILENAME = "model-settings.json"
SETTINGS_FILENAME = "settings.json"

DispatchPolicy = Literal["least_loaded", "round_robin"]


class ModelParameters(BaseModel):
    """The `parameters` block of a model's settings."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    uri: str | None = None
    version: str | None = None
    format: str | None = None
    content_type: str | None = None
    environment_tarball: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class MetadataTensorSettings(BaseModel):
    """One input or output tensor declared in a model's settings."""

    model_config = ConfigDict(extra="allow")

    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = None


class ModelSettings(BaseModel):
    """One model's settings, as in MLServer's `model-settings.json`.

    Fields beyond MLServer's: `timeout`, `max_concurrency` and
    `max_queue_size`; each falls back to the server default in `Settings`
    when unset.
    """

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    name: str = ""
    implementation: str = ""
    parameters: ModelParameters = Field(default_factory=ModelParameters)
    platform: str = ""
    versions: list[str] = Field(default_factory=list)
    inputs: list[MetadataTensorSettings] = Field(default_factory=list)
    outputs: list[MetadataTensorSettings] = Field(default_factory=list)
    max_batch_size: int = 0
    max_batch_time: float = 0.0
    warm_workers: bool = False

    timeout: float | None = Field(default=None, gt=0)
    max_concurrency: int | None = Field(default=None, ge=1)
    max_queue_size: int | None = Field(default=None, ge=0)

    # The folder that contained the settings file. Relative URIs resolve
    # against it and it goes on the import path of every process that loads
    # the model, so a custom model's module may live beside its settings.
    source_dir: str | None = None

    @property
    def version(self) -> str | None:
        return self.parameters.version

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ModelSettings:
        """Read a `model-settings.json`; the model's name defaults to the
        name of its folder, as in MLServer.

        Raises `InvalidRequest` if the file is not valid JSON or does not
        match the schema.
        """
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidRequest(
                f"Invalid model settings file {str(path)!r}: {exc}"
            ) from None
        if not isinstance(raw, dict):
            raise InvalidRequest(
                f"Invalid model settings file {str(path)!r}: expected a JSON object, got {type(raw).__name__}"
            )
        raw.setdefault("name", path.parent.name)
        raw["source_dir"] = str(path.parent.resolve())
        try:
            return cls.model_validate(raw)
        except ValueError as exc:
            raise InvalidRequest(
                f"Invalid model settings file {str(path)!r}: {exc}"
            ) from None

    def resolve_uri(self) -> str | None:
        """Return `parameters.uri` made absolute against the model's folder."""
        uri = self.parameters.uri
        if uri is None or self.source_dir is None or os.path.isabs(uri):
            return uri
        return os.path.normpath(os.path.join(self.source_dir, uri))


class Settings(BaseSettings):
    """The server's settings. Environment variables use the `INFERPOOL_`
    prefix: `INFERPOOL_HTTP_PORT=9000`.
    """

    model_config = SettingsConfigDict(
        env_prefix="INFERPOOL_", extra="ignore", protected_namespaces=()
    )

    host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    grpc_port: int = Field(default=8081, ge=0, le=65535)
    metrics_port: int = Field(default=8082, ge=0, le=65535)
    parallel_workers: int = Field(default=1, ge=0)
    model_repository_root: str = "."
    load_models_at_startup: bool = True
    server_name: str = "inferpool"
    server_version: str = "0.1.0"

    # Dispatch and overload protection; per-model settings override these.
    dispatch_policy: DispatchPolicy = "least_loaded"
    # Requests of one model in flight on one worker at once. A few keep a
    # CPU-bound worker busy across the round trip to the front end, and few
    # means little work is lost if the worker dies. Async models that wait
    # on I/O may want more.
    max_concurrency: int = Field(default=8, ge=1)
    # Requests of one model waiting in the dispatcher's queue; past it they
    # get 503 at once, which bounds the front end's memory.
    max_queue_size: int = Field(default=1024, ge=0)
    # Seconds a request may take before 504; None waits forever.
    timeout: float | None = Field(default=None, gt=0)
    # Seconds a request waits in the queue while no worker is ready (all
    # are starting or restarting) before it gets 503.
    no_worker_timeout: float = Field(default=10.0, gt=0)
    # Seconds a worker has to reply to a request whose caller gave up
    # (timeout or disconnect) before it counts as stuck and is replaced.
    # A model that blocks forever would otherwise keep its worker, and the
    # requests sent to it, forever.
    stuck_worker_timeout: float = Field(default=5.0, gt=0)

    # Pool lifecycle, in seconds.
    worker_start_timeout: float = Field(default=60.0, gt=0)
    model_load_timeout: float = Field(default=300.0, gt=0)
    model_unload_timeout: float = Field(default=60.0, gt=0)
    drain_timeout: float = Field(default=30.0, ge=0)
    restart_backoff_max: float = Field(default=30.0, ge=0)

    # Front ends.
    max_body_size: int = Field(default=64 * 1024 * 1024, ge=1)
    # Seconds a REST client has to send a request body in full, then 408.
    body_timeout: float = Field(default=30.0, gt=0)
    grpc_max_message_length: int = Field(default=64 * 1024 * 1024, ge=1)
    log_level: str = "INFO"

    @classmethod
    def from_repository(
        cls, folder: str | os.PathLike[str] | None, **overrides: Any
    ) -> Settings:
        """Build settings from `FOLDER/settings.json`, then the environment,
        then `overrides` (the command-line flags that were given).

        Raises `InvalidRequest` when `settings.json` is not valid JSON.
        """
        file_values: dict[str, Any] = {}
        if folder is not None:
            path = Path(folder) / SETTINGS_FILENAME
            if path.is_file():
                try:
                    file_values = json.loads(path.read_text())
                except ValueError as exc:
                    raise InvalidRequest(
                        f"Invalid settings file {str(path)!r}: {exc}"
                    ) from None
            file_values.setdefault("model_repository_root", str(folder))

        # Environment variables override the file: pass the file's values as
        # the lowest-priority source by filling in only keys the environment
        # does not set.
        from_env = cls()
        env_keys = {
            name
            for name in cls.model_fields
            if f"INFERPOOL_{name.upper()}" in os.environ
        }
        values = {k: v for k, v in file_values.items() if k not in env_keys}
        merged = from_env.model_dump()
        merged.update(values)
        merged.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(merged)


def find_model_settings(folder: str | os.PathLike[str]) -> list[Path]:
    """Return every `model-settings.json` under `folder`, sorted by path."""
    return sorted(Path(folder).rglob(MODEL_SETTINGS_FILENAME))
