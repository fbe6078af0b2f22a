"""XGBoostModel: real XGBoost models saved with `save_model`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost
from sklearn.datasets import load_iris

from inferpool.errors import InvalidRequest, ModelLoadError
from inferpool.registry import ModelRegistry
from inferpool.runtimes.xgboost import XGBoostModel
from inferpool.types import InferenceRequest

IMPLEMENTATION = "inferpool.runtimes.xgboost.XGBoostModel"
ROWS = [0, 1, 50, 51, 100, 149]

RequestFor = Callable[..., InferenceRequest]


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    features, labels = load_iris(return_X_y=True)
    return features.astype(np.float32), labels


@pytest.fixture(scope="module")
def classifier(iris: Any) -> xgboost.XGBClassifier:
    features, labels = iris
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1)
    return model.fit(features, labels)


async def load_file(
    folder: Path,
    write_settings: Any,
    uri: str | None,
    implementation: str = IMPLEMENTATION,
) -> XGBoostModel:
    settings = write_settings(folder, implementation, uri=uri)
    model = await ModelRegistry().load(settings)
    assert isinstance(model, XGBoostModel)
    return model


async def test_classifier_predict_matches_xgboost(
    classifier: Any,
    iris: Any,
    tmp_path: Path,
    write_settings: Any,
    request_for: RequestFor,
) -> None:
    features = iris[0][ROWS]
    folder = tmp_path / "iris"
    folder.mkdir()
    classifier.save_model(folder / "model.json")
    model = await load_file(folder, write_settings, "./model.json")

    response = await model.predict(request_for(features))

    assert [output.name for output in response.outputs] == ["predict"]
    output = response.outputs[0]
    assert output.datatype == "INT64"
    assert output.shape == [len(ROWS)]
    np.testing.assert_array_equal(output.data, classifier.predict(features))
    np.testing.assert_array_equal(output.data, [0, 0, 1, 1, 2, 2])


async def test_classifier_predict_proba(
    classifier: Any,
    iris: Any,
    tmp_path: Path,
    write_settings: Any,
    request_for: RequestFor,
) -> None:
    features = iris[0][ROWS]
    folder = tmp_path / "iris"
    folder.mkdir()
    classifier.save_model(folder / "model.ubj")
    model = await load_file(folder, write_settings, None)

    request = request_for(features, outputs=["predict", "predict_proba"])
    response = await model.predict(request)

    assert [output.name for output in response.outputs] == ["predict", "predict_proba"]
    probabilities = response.outputs[1]
    assert probabilities.datatype == "FP32"
    assert probabilities.shape == [len(ROWS), 3]
    np.testing.assert_array_equal(
        probabilities.data, classifier.predict_proba(features)
    )


async def test_booster_binary_objective_is_classifier(
    iris: Any, tmp_path: Path, write_settings: Any, request_for: RequestFor
) -> None:
    features, labels = iris
    is_virginica = (labels == 2).astype(np.float32)
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
        xgboost.DMatrix(features, label=is_virginica),
        num_boost_round=4,
    )
    folder = tmp_path / "binary"
    folder.mkdir()
    booster.save_model(folder / "model.json")
    model = await load_file(folder, write_settings, "./model.json")

    request = request_for(features[ROWS], outputs=["predict", "predict_proba"])
    response = await model.predict(request)

    probability = booster.predict(xgboost.DMatrix(features[ROWS]))
    np.testing.assert_array_equal(response.outputs[0].data, probability > 0.5)
    assert response.outputs[1].shape == [len(ROWS), 2]
    np.testing.assert_allclose(response.outputs[1].data[:, 1], probability)


async def test_regressor_predict_from_bst(
    iris: Any, tmp_path: Path, write_settings: Any, request_for: RequestFor
) -> None:
    features, labels = iris
    regressor = xgboost.XGBRegressor(n_estimators=5, max_depth=2, n_jobs=1)
    regressor.fit(features, labels.astype(np.float32))
    folder = tmp_path / "regressor"
    folder.mkdir()
    regressor.save_model(folder / "model.ubj")
    # XGBoost 3.2 warns when it writes a .bst file, so the UBJSON file is
    # renamed to the name that MLServer's examples use.
    (folder / "model.ubj").rename(folder / "model.bst")
    model = await load_file(folder, write_settings, "./model.bst")

    response = await model.predict(request_for(features[ROWS]))

    output = response.outputs[0]
    assert output.datatype == "FP32"
    assert output.shape == [len(ROWS)]
    np.testing.assert_array_equal(output.data, regressor.predict(features[ROWS]))


async def test_regressor_has_only_predict(
    iris: Any, tmp_path: Path, write_settings: Any, request_for: RequestFor
) -> None:
    features, labels = iris
    regressor = xgboost.XGBRegressor(n_estimators=2, max_depth=2, n_jobs=1)
    regressor.fit(features, labels.astype(np.float32))
    folder = tmp_path / "regressor"
    folder.mkdir()
    regressor.save_model(folder / "model.json")
    model = await load_file(folder, write_settings, "./model.json")

    with pytest.raises(InvalidRequest) as caught:
        await model.predict(request_for(features[:1], outputs=["predict_proba"]))

    message = str(caught.value)
    assert "'predict_proba'" in message
    assert message.endswith("Valid outputs: predict")


async def test_unknown_output_is_invalid_request(
    classifier: Any,
    iris: Any,
    tmp_path: Path,
    write_settings: Any,
    request_for: RequestFor,
) -> None:
    folder = tmp_path / "iris"
    folder.mkdir()
    classifier.save_model(folder / "model.json")
    model = await load_file(folder, write_settings, "./model.json")

    with pytest.raises(InvalidRequest) as caught:
        await model.predict(request_for(iris[0][:1], outputs=["margin"]))

    message = str(caught.value)
    assert "'margin'" in message
    assert "predict, predict_proba" in message


async def test_wrong_feature_count_is_invalid_request(
    classifier: Any,
    iris: Any,
    tmp_path: Path,
    write_settings: Any,
    request_for: RequestFor,
) -> None:
    folder = tmp_path / "iris"
    folder.mkdir()
    classifier.save_model(folder / "model.json")
    model = await load_file(folder, write_settings, "./model.json")

    with pytest.raises(
        InvalidRequest, match="'iris' failed to compute output 'predict'"
    ):
        await model.predict(request_for(iris[0][:2, :3]))


async def test_missing_file_names_path(tmp_path: Path, write_settings: Any) -> None:
    folder = tmp_path / "missing"
    settings = write_settings(folder, IMPLEMENTATION, uri="./absent.json")

    with pytest.raises(ModelLoadError) as caught:
        await ModelRegistry().load(settings)

    assert str(folder / "absent.json") in str(caught.value)


async def test_folder_without_model_file(tmp_path: Path, write_settings: Any) -> None:
    folder = tmp_path / "empty"
    settings = write_settings(folder, IMPLEMENTATION)

    with pytest.raises(ModelLoadError) as caught:
        await ModelRegistry().load(settings)

    message = str(caught.value)
    assert str(folder) in message
    assert "model.json, model.ubj, model.bst" in message


async def test_unreadable_file_is_load_error(
    tmp_path: Path, write_settings: Any
) -> None:
    folder = tmp_path / "corrupt"
    folder.mkdir()
    (folder / "model.json").write_text('{"learner": ')
    settings = write_settings(folder, IMPLEMENTATION, uri="./model.json")

    with pytest.raises(ModelLoadError, match="failed to read XGBoost model file"):
        await ModelRegistry().load(settings)


async def test_mlserver_alias_selects_runtime(
    classifier: Any,
    iris: Any,
    tmp_path: Path,
    write_settings: Any,
    request_for: RequestFor,
) -> None:
    folder = tmp_path / "mlserver"
    folder.mkdir()
    classifier.save_model(folder / "model.json")
    model = await load_file(
        folder, write_settings, "./model.json", "mlserver_xgboost.XGBoostModel"
    )

    response = await model.predict(request_for(iris[0][ROWS]))

    assert type(model) is XGBoostModel
    np.testing.assert_array_equal(
        response.outputs[0].data, classifier.predict(iris[0][ROWS])
    )
