"""Runtime for XGBoost models saved with `save_model`."""

from __future__ import annotations

import json
from typing import Any

from inferpool.errors import ModelLoadError
from inferpool.runtimes.common import (
    ModelFileRuntime,
    find_model_file,
    import_library,
    is_dataframe,
)

__all__ = ["WELL_KNOWN_FILENAMES", "XGBoostModel"]

# Files looked for, in this order, when parameters.uri is a folder or unset:
# XGBoost's JSON, Universal Binary JSON and legacy binary formats.
WELL_KNOWN_FILENAMES = ("model.json", "model.ubj", "model.bst")

# Objective prefixes of classifiers, whose predictions are class indices.
CLASSIFIER_OBJECTIVES = ("binary:", "multi:")


class XGBoostModel(ModelFileRuntime):
    """Serves an XGBoost model from a `.json`, `.ubj` or `.bst` file.

    `parameters.uri` names the file, or a folder that contains `model.json`,
    `model.ubj` or `model.bst`. Without a URI, the model's own folder is
    searched. A classifier (saved from `XGBClassifier`, or trained with a
    `binary:` or `multi:` objective) is loaded into `XGBClassifier` and has
    the outputs `predict` (class index) and `predict_proba`. Any other model
    is served by its `Booster` and has the output `predict`.

    `load()` raises `ModelLoadError` when xgboost is not installed, when
    scikit-learn is not installed for a classifier, or when the file is
    missing or cannot be read.
    """

    async def load(self) -> bool:
        xgboost = import_library(self, "xgboost", "xgboost")
        path = find_model_file(self, WELL_KNOWN_FILENAMES)
        # XGBoost 3.2 picks a file's format from its extension and warns for
        # any extension but .json and .ubj, reading .bst as UBJSON. From a
        # buffer it detects the format by content, without a warning.
        try:
            content = bytearray(path.read_bytes())
        except OSError as exc:
            raise ModelLoadError(
                f"Model {self.name!r}: failed to read model file {str(path)!r}: {exc}"
            ) from exc
        # NOTE: the booster predicts with every core by default, so several
        # workers predicting large batches at once oversubscribe the CPU.
        booster = xgboost.Booster()
        try:
            booster.load_model(content)
        except xgboost.core.XGBoostError as exc:
            raise ModelLoadError(
                f"Model {self.name!r}: failed to read XGBoost model file "
                f"{str(path)!r}: {exc}"
            ) from exc

        if _is_classifier(booster):
            # XGBClassifier turns probabilities into class indices the same
            # way as when the model was trained. It needs scikit-learn.
            import_library(self, "sklearn", "sklearn")
            classifier = xgboost.XGBClassifier()
            classifier.load_model(content)
            self.methods = {
                "predict": classifier.predict,
                "predict_proba": classifier.predict_proba,
            }
        else:
            self.methods = {"predict": booster.inplace_predict}
        self.booster = booster
        return True

    def prepare_features(self, features: Any) -> Any:
        """Turn a DataFrame into an array for a model trained without
        feature names, which XGBoost would reject as a name mismatch."""
        if self.booster.feature_names is None and is_dataframe(features):
            return features.to_numpy()
        return features


def _is_classifier(booster: Any) -> bool:
    # XGBClassifier and XGBRegressor store their type in the "scikit_learn"
    # attribute of the saved model. A model trained with xgboost.train() has
    # none, so its objective decides.
    scikit_learn = booster.attr("scikit_learn")
    if scikit_learn:
        estimator_type = json.loads(scikit_learn).get("_estimator_type")
        if estimator_type is not None:
            return bool(estimator_type == "classifier")
    config = json.loads(booster.save_config())
    objective: str = config["learner"]["objective"]["name"]
    return objective.startswith(CLASSIFIER_OBJECTIVES)
