"""LightGBMModel: real LightGBM models saved as text model files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pytest
from sklearn.datasets import load_iris

from inferpool.errors import InvalidRequest, ModelLoadError
from inferpool.registry import ModelRegistry
from inferpool.runtimes.lightgbm import LightGBMModel
from inferpool.types import InferenceRequest

IMPLEMENTATION = "inferpool.runtimes.lightgbm.LightGBMModel"
ROWS = [0, 1, 50, 51, 100, 149]
# Quiet, single-threaded training, so tests print nothing and repeat exactly.
PARAMS = {"verbose": -1, "num_threads": 1, "deterministic": True}

RequestFor = Callable[..., InferenceRequest]


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    features, labels = load_iris(return_X_y=True)
    return features, labels


@pytest.fixture(scope="module")
def multiclass(iris: Any) -> lightgbm.Booster:
    features, labels = iris
    params = {**PARAMS, "objective": "multiclass", "num_class": 3}
    return lightgbm.train(params, lightgbm.Dataset(features, labels), num_boost_round=5)


async def load_file(
    folder: Path,
    write_settings: Any,
    uri: str | None,
    implementation: str = IMPLEMENTATION,
) -> LightGBMModel:
    settings = write_settings(folder, implementation, uri=uri)
    model = await ModelRegistry().load(settings)
    assert isinstance(model, LightGBMModel)
    return model


async def test_multiclass_predict_matches_lightgbm(
    multiclass: Any,
    iris: Any,
    tmp_path: Path,
    write_settings: Any,
    request_for: RequestFor,
) -> None:
    features = iris[0][ROWS]
    folder = tmp_path / "iris"
    folder.mkdir()
    multiclass.save_model(folder / "model.txt")
    model = await load_file(folder, write_settings, "./model.txt")

    response = await model.predict(request_for(features))

    assert [output.name for output in response.outputs] == ["predict"]
    output = response.outputs[0]
    assert output.datatype == "FP64"
    assert output.shape == [len(ROWS), 3]
    np.testing.assert_array_equal(output.data, multiclass.predict(features))
    np.testing.assert_array_equal(output.data.argmax(axis=1), [0, 0, 1, 1, 2, 2])


async def test_regressor_bst_found_in_folder(
    iris: Any, tmp_path: Path, write_settings: Any, request_for: RequestFor
) -> None:
    features, labels = iris
    regressor = lightgbm.LGBMRegressor(n_estimators=5, **PARAMS)
    regressor.fit(features, labels.astype(np.float64))
    folder = tmp_path / "regressor"
    folder.mkdir()
    regressor.booster_.save_model(folder / "model.bst")
    model = await load_file(folder, write_settings, None)

    response = await model.predict(request_for(features[ROWS]))

    output = response.outputs[0]
    assert output.shape == [len(ROWS)]
    np.testing.assert_array_equal(output.data, regressor.predict(features[ROWS]))


async def test_unknown_output_is_invalid_request(
    multiclass: Any,
    iris: Any,
    tmp_path: Path,
    write_settings: Any,
    request_for: RequestFor,
) -> None:
    folder = tmp_path / "iris"
    folder.mkdir()
    multiclass.save_model(folder / "model.txt")
    model = await load_file(folder, write_settings, "./model.txt")

    with pytest.raises(InvalidRequest) as caught:
        await model.predict(request_for(iris[0][:1], outputs=["predict_proba"]))

    message = str(caught.value)
    assert "'predict_proba'" in message
    assert message.endswith("Valid outputs: predict")


async def test_wrong_feature_count_is_invalid_request(
    multiclass: Any,
    iris: Any,
    tmp_path: Path,
    write_settings: Any,
    request_for: RequestFor,
) -> None:
    folder = tmp_path / "iris"
    folder.mkdir()
    multiclass.save_model(folder / "model.txt")
    model = await load_file(folder, write_settings, "./model.txt")

    with pytest.raises(InvalidRequest, match="number of features"):
        await model.predict(request_for(iris[0][:2, :3]))


async def test_missing_file_names_path(tmp_path: Path, write_settings: Any) -> None:
    folder = tmp_path / "missing"
    settings = write_settings(folder, IMPLEMENTATION, uri="./absent.txt")

    with pytest.raises(ModelLoadError) as caught:
        await ModelRegistry().load(settings)

    assert str(folder / "absent.txt") in str(caught.value)


async def test_folder_without_model_file(tmp_path: Path, write_settings: Any) -> None:
    folder = tmp_path / "empty"
    settings = write_settings(folder, IMPLEMENTATION, uri=".")

    with pytest.raises(ModelLoadError) as caught:
        await ModelRegistry().load(settings)

    message = str(caught.value)
    assert str(folder) in message
    assert "model.txt, model.bst" in message


async def test_unreadable_file_is_load_error(
    tmp_path: Path, write_settings: Any
) -> None:
    folder = tmp_path / "corrupt"
    folder.mkdir()
    (folder / "model.txt").write_text("not a model\n")
    settings = write_settings(folder, IMPLEMENTATION, uri="./model.txt")

    with pytest.raises(ModelLoadError) as caught:
        await ModelRegistry().load(settings)

    message = str(caught.value)
    assert "failed to read LightGBM model file" in message
    assert str(folder / "model.txt") in message


async def test_mlserver_alias_selects_runtime(
    multiclass: Any,
    iris: Any,
    tmp_path: Path,
    write_settings: Any,
    request_for: RequestFor,
) -> None:
    folder = tmp_path / "mlserver"
    folder.mkdir()
    multiclass.save_model(folder / "model.bst")
    model = await load_file(
        folder, write_settings, "./model.bst", "mlserver_lightgbm.LightGBMModel"
    )

    response = await model.predict(request_for(iris[0][ROWS]))

    assert type(model) is LightGBMModel
    np.testing.assert_array_equal(
        response.outputs[0].data, multiclass.predict(iris[0][ROWS])
    )
