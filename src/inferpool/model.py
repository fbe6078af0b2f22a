"""The base class of every model that inferpool serves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import ModelSettings

if TYPE_CHECKING:
    from .types import InferenceRequest, InferenceResponse, MetadataModelResponse


class MLModel:
    """A model: subclass it, load weights in `load()` and implement `predict()`.

    The same instance serves every request that reaches its process, so
    `predict` must not keep per-request state on `self`. With
    `parallel_workers > 0`, each worker process holds its own instance.
    A method that is `async` runs on the worker's event loop; a slow
    synchronous step inside it blocks only that worker.
    """

    def __init__(self, settings: ModelSettings) -> None:
        self._settings = settings
        self.ready = False

    @property
    def settings(self) -> ModelSettings:
        return self._settings

    @property
    def name(self) -> str:
        return self._settings.name

    @property
    def version(self) -> str | None:
        return self._settings.parameters.version

    async def load(self) -> bool:
        """Load the model's weights. Returning False, or raising, marks the
        model as failed to load."""
        return True

    async def unload(self) -> bool:
        """Release what `load` acquired. Called once, before the instance is
        dropped."""
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        """Run inference on one request. Raise to fail it with a 500 whose
        message names the exception; raise an `inferpool.errors` class to
        choose the status code."""
        raise NotImplementedError(f"Model {self.name!r} does not implement predict()")

    async def metadata(self) -> MetadataModelResponse:
        """Describe the model: its versions, platform, inputs and outputs,
        taken from its settings unless overridden."""
        from .types import MetadataModelResponse, MetadataTensor

        settings = self._settings

        def tensors(declared: list[Any]) -> list[MetadataTensor]:
            return [
                MetadataTensor(name=t.name, datatype=t.datatype, shape=list(t.shape))
                for t in declared
            ]

        return MetadataModelResponse(
            name=settings.name,
            versions=list(settings.versions)
            or ([settings.version] if settings.version else []),
            platform=settings.platform,
            inputs=tensors(settings.inputs),
            outputs=tensors(settings.outputs),
        )
