"""Runtime for scikit-learn models saved with joblib or pickle."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np

from inferpool.errors import ModelLoadError
from inferpool.runtimes.common import (
    ModelFileRuntime,
    find_model_file,
    import_library,
    is_dataframe,
)

__all__ = ["OUTPUT_METHODS", "WELL_KNOWN_FILENAMES", "SKLearnModel"]

# Files looked for, in this order, when parameters.uri is a folder or unset.
WELL_KNOWN_FILENAMES = ("model.joblib", "model.pkl", "model.pickle")

# Estimator methods served as outputs of the same name, in this order. The
# first one that an estimator has is the default output.
OUTPUT_METHODS = ("predict", "predict_proba", "transform")


class SKLearnModel(ModelFileRuntime):
    """Serves a scikit-learn estimator or pipeline from a joblib or pickle file.

    `parameters.uri` names the file, or a folder that contains
    `model.joblib`, `model.pkl` or `model.pickle`. Without a URI, the model's
    own folder is searched. The outputs are `predict`, `predict_proba` and
    `transform`, each where the estimator has that method. A request gets
    `predict` (or `transform` for a pure transformer) unless it names its
    outputs.

    The request's single input is decoded as a numpy array, or every input
    becomes a DataFrame column when the content type is "pd". An estimator
    fitted on a DataFrame gets its feature names back, so a numpy input
    predicts without a warning.

    `load()` raises `ModelLoadError` when scikit-learn or joblib is not
    installed, the file is missing or cannot be read, or the object has none
    of the output methods. Loading unpickles the file, which runs code that
    the file contains: serve only files that you trust.
    """

    async def load(self) -> bool:
        import_library(self, "sklearn", "sklearn")
        joblib = import_library(self, "joblib", "sklearn")
        path = find_model_file(self, WELL_KNOWN_FILENAMES)
        try:
            estimator = joblib.load(path)
        except Exception as exc:
            raise ModelLoadError(
                f"Model {self.name!r}: failed to read model file {str(path)!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

        self.methods = {
            name: getattr(estimator, name)
            for name in OUTPUT_METHODS
            if callable(getattr(estimator, name, None))
        }
        if not self.methods:
            raise ModelLoadError(
                f"Model {self.name!r}: the object in {str(path)!r} is a "
                f"{type(estimator).__name__}, which has none of the methods "
                f"{', '.join(OUTPUT_METHODS)}"
            )
        self.estimator = estimator
        self._feature_names = getattr(estimator, "feature_names_in_", None)
        self._pandas: ModuleType | None = None
        if self._feature_names is not None:
            try:
                self._pandas = importlib.import_module("pandas")
            except ImportError:
                # Without pandas, arrays go to the estimator as they are and
                # scikit-learn warns that they have no feature names.
                pass
        return True

    def prepare_features(self, features: Any) -> Any:
        """Match the estimator's feature names, so that scikit-learn checks
        the columns without warning.

        A 2-D array with as many columns as the estimator has feature names
        becomes a DataFrame with those names (when pandas is installed). A
        DataFrame sent to an estimator fitted without names becomes an array.
        """
        names = self._feature_names
        if names is None:
            if is_dataframe(features):
                return features.to_numpy()
            return features
        if (
            self._pandas is not None
            and isinstance(features, np.ndarray)
            and features.ndim == 2
            and features.shape[1] == len(names)
        ):
            return self._pandas.DataFrame(features, columns=names, copy=False)
        return features
