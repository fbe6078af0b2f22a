"""Runtime for LightGBM models saved as text model files."""

from __future__ import annotations

from typing import Any

from inferpool.errors import ModelLoadError
from inferpool.runtimes.common import ModelFileRuntime, find_model_file, import_library

__all__ = ["WELL_KNOWN_FILENAMES", "LightGBMModel"]

# Files looked for, in this order, when parameters.uri is a folder or unset.
# Both contain LightGBM's text format, as written by `Booster.save_model`.
WELL_KNOWN_FILENAMES = ("model.txt", "model.bst")


class LightGBMModel(ModelFileRuntime):
    """Serves a LightGBM model from a text model file.

    `parameters.uri` names the file, or a folder that contains `model.txt`
    or `model.bst`. Without a URI, the model's own folder is searched. The
    one output, `predict`, is what `Booster.predict` returns: values for a
    regressor, probabilities of the positive class for a binary classifier,
    and one probability per class for a multiclass classifier.

    `load()` raises `ModelLoadError` when lightgbm is not installed or the
    file is missing or cannot be read.
    """

    async def load(self) -> bool:
        lightgbm = import_library(self, "lightgbm", "lightgbm")
        path = find_model_file(self, WELL_KNOWN_FILENAMES)
        try:
            booster = lightgbm.Booster(model_file=str(path))
        except lightgbm.basic.LightGBMError as exc:
            raise ModelLoadError(
                f"Model {self.name!r}: failed to read LightGBM model file "
                f"{str(path)!r}: {exc}"
            ) from exc

        # LightGBM reports features that do not fit the model, such as a
        # wrong number of columns, with its own error class.
        self.request_errors = (ValueError, TypeError, lightgbm.basic.LightGBMError)
        self.booster = booster
        self.methods = {"predict": self._predict}
        return True

    def _predict(self, features: Any) -> Any:
        # NOTE: LightGBM predicts with every core by default, so several
        # workers predicting large batches at once oversubscribe the CPU.
        return self.booster.predict(features)
