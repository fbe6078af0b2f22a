"""The models loaded in one process, by name and version.

Each worker process has one `ModelRegistry` of real model objects. With
`parallel_workers = 0` the front end has one itself. Both serve requests
through `ModelRegistry.call`, so a model behaves the same in either place.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import InferpoolError, InvalidRequest, ModelLoadError, ModelNotFound
from .model import MLModel
from .settings import ModelSettings

logger = logging.getLogger(__name__)

# MLServer's implementation names for its built-in runtimes select
# inferpool's own, so an MLServer model folder serves unchanged.
IMPLEMENTATION_ALIASES = {
    "mlserver_sklearn.SKLearnModel": "inferpool.runtimes.sklearn.SKLearnModel",
    "mlserver_xgboost.XGBoostModel": "inferpool.runtimes.xgboost.XGBoostModel",
    "mlserver_lightgbm.LightGBMModel": "inferpool.runtimes.lightgbm.LightGBMModel",
}

ProtocolMethod = Callable[..., Awaitable[Any]]

# Methods that inferpool runs around a model, such as decoding a REST body,
# calling `predict` and encoding the response, all inside the worker. Their
# names contain a colon, which no Python attribute name does, so they never
# collide with a model's own methods.
_protocol_methods: dict[str, ProtocolMethod] = {}


def protocol_method(name: str) -> Callable[[ProtocolMethod], ProtocolMethod]:
    """Register `fn(model, *args)` under `name`, which must contain a colon."""
    if ":" not in name:
        raise ValueError(f"Protocol method name {name!r} must contain a colon")

    def register(fn: ProtocolMethod) -> ProtocolMethod:
        _protocol_methods[name] = fn
        return fn

    return register


def import_implementation(settings: ModelSettings) -> type[MLModel]:
    """Import the model class that `settings.implementation` names.

    The model's own folder goes on `sys.path` first, so the class's module may
    live beside `model-settings.json`. Raises `ModelLoadError` if the name is
    malformed, the import fails or the object is not an `MLModel` subclass.
    """
    path = IMPLEMENTATION_ALIASES.get(settings.implementation, settings.implementation)
    module_name, _, class_name = path.rpartition(".")
    if not module_name or not class_name:
        raise ModelLoadError(
            f"Invalid implementation {settings.implementation!r} for model "
            f"{settings.name!r}: expected 'module.ClassName'"
        )
    if settings.source_dir and settings.source_dir not in sys.path:
        sys.path.insert(0, settings.source_dir)
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise ModelLoadError(
            f"Could not import implementation {path!r} of model "
            f"{settings.name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    if not (inspect.isclass(cls) and issubclass(cls, MLModel)):
        raise ModelLoadError(
            f"Implementation {path!r} of model {settings.name!r} is not a "
            "subclass of inferpool.MLModel"
        )
    return cls


class ModelRegistry:
    """Real model objects of this process, keyed by name and version.

    A request without a version goes to the model's default version: the
    version loaded last, as long as it is loaded.
    """

    def __init__(self) -> None:
        self._models: dict[str, dict[str | None, MLModel]] = {}
        self._default: dict[str, str | None] = {}

    def __len__(self) -> int:
        return sum(len(versions) for versions in self._models.values())

    def models(self) -> list[MLModel]:
        return [
            model for versions in self._models.values() for model in versions.values()
        ]

    def get(self, name: str, version: str | None = None) -> MLModel:
        """Return the model; raise `ModelNotFound` if it is not loaded here."""
        versions = self._models.get(name)
        if not versions:
            raise ModelNotFound(name, version)
        key = version if version else self._default.get(name)
        model = versions.get(key)
        if model is None:
            raise ModelNotFound(name, version)
        return model

    async def load(self, settings: ModelSettings) -> MLModel:
        """Import, build and load a model; a version already loaded is
        replaced once the new one has loaded.

        Raises `ModelLoadError` with the cause when anything fails; the
        registry is then unchanged.
        """
        cls = import_implementation(settings)
        try:
            model = cls(settings)
            loaded = await model.load()
        except InferpoolError:
            raise
        except Exception as exc:
            raise ModelLoadError(
                f"Model {settings.name!r} failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        if loaded is False:
            raise ModelLoadError(
                f"Model {settings.name!r} failed to load: load() returned False"
            )
        model.ready = True

        version = settings.version
        previous = self._models.setdefault(settings.name, {}).get(version)
        self._models[settings.name][version] = model
        self._default[settings.name] = version
        if previous is not None:
            await self._unload_instance(previous)
        logger.debug("Loaded model %r version %r", settings.name, version)
        return model

    async def unload(self, name: str, version: str | None = None) -> None:
        """Unload one version, or every version when `version` is None.

        Raises `ModelNotFound` if nothing matches.
        """
        versions = self._models.get(name)
        if not versions or (version is not None and version not in versions):
            raise ModelNotFound(name, version)
        targets = [version] if version is not None else list(versions)
        for key in targets:
            await self._unload_instance(versions.pop(key))
        if not versions:
            del self._models[name]
            self._default.pop(name, None)
        elif self._default.get(name) not in versions:
            self._default[name] = next(reversed(versions))

    async def unload_all(self) -> None:
        for name in list(self._models):
            await self.unload(name)

    async def _unload_instance(self, model: MLModel) -> None:
        model.ready = False
        try:
            await model.unload()
        except Exception:
            logger.exception(
                "Model %r version %r raised in unload()", model.name, model.version
            )

    async def call(
        self,
        name: str,
        version: str | None,
        method_name: str,
        args: tuple[Any, ...] | list[Any],
        kwargs: dict[str, Any],
    ) -> Any:
        """Run one method of a loaded model and return its result.

        `method_name` is a protocol method (see `protocol_method`) or a public
        method of the model. Raises `ModelNotFound`, `InvalidRequest` for a
        method that does not exist, or whatever the method raises.
        """
        model = self.get(name, version)
        handler = _protocol_methods.get(method_name)
        if handler is not None:
            return await handler(model, *args, **kwargs)
        if method_name.startswith("_"):
            raise InvalidRequest(f"Method {method_name!r} of model {name!r} is private")
        method = getattr(model, method_name, None)
        if method is None or not callable(method):
            raise InvalidRequest(f"Model {name!r} has no method {method_name!r}")
        result = method(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result
