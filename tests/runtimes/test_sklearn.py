"""SKLearnModel: real scikit-learn estimators saved with joblib or pickle."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from inferpool.codecs import NumpyCodec, PandasCodec
from inferpool.errors import InvalidRequest, ModelLoadError
from inferpool.registry import ModelRegistry
from inferpool.runtimes.common import is_dataframe
from inferpool.runtimes.sklearn import SKLearnModel
from inferpool.types import InferenceRequest, Parameters, RequestInput

IMPLEMENTATION = "inferpool.runtimes.sklearn.SKLearnModel"
ROWS = [0, 1, 50, 51, 100, 149]

RequestFor = Callable[..., InferenceRequest]


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    features, labels = load_iris(return_X_y=True)
    return features, labels


@pytest.fixture(scope="module")
def classifier(iris: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]) -> Any:
    features, labels = iris
    return LogisticRegression(max_iter=1000).fit(features, labels)


async def load_saved(
    estimator: Any, folder: Path, write_settings: Any, filename: str = "model.joblib"
) -> SKLearnModel:
    folder.mkdir(parents=True)
    joblib.dump(estimator, folder / filename)
    settings = write_settings(folder, IMPLEMENTATION, uri=f"./{filename}")
    model = await ModelRegistry().load(settings)
    assert isinstance(model, SKLearnModel)
    return model


async def test_predict_matches_sklearn(
    classifier: Any,
    iris: Any,
    tmp_path: Path,
    write_settings: Any,
    request_for: RequestFor,
) -> None:
    features = iris[0][ROWS]
    model = await load_saved(classifier, tmp_path / "iris", write_settings)

    response = await model.predict(request_for(features))

    assert response.model_name == "iris"
    assert [output.name for output in response.outputs] == ["predict"]
    output = response.outputs[0]
    assert output.datatype == "INT64"
    assert output.shape == [len(ROWS)]
    np.testing.assert_array_equal(output.data, classifier.predict(features))
    np.testing.assert_array_equal(output.data, [0, 0, 1, 1, 2, 2])


async def test_predict_proba_when_requested(
    classifier: Any,
    iris: Any,
    tmp_path: Path,
    write_settings: Any,
    request_for: RequestFor,
) -> None:
    features = iris[0][ROWS]
    model = await load_saved(classifier, tmp_path / "iris", write_settings)

    response = await model.predict(request_for(features, outputs=["predict_proba"]))

    assert [output.name for output in response.outputs] == ["predict_proba"]
    output = response.outputs[0]
    assert output.datatype == "FP64"
    assert output.shape == [len(ROWS), 3]
    np.testing.assert_array_equal(output.data, classifier.predict_proba(features))


async def test_outputs_in_requested_order(
    classifier: Any,
    iris: Any,
    tmp_path: Path,
    write_settings: Any,
    request_for: RequestFor,
) -> None:
    features = iris[0][ROWS]
    model = await load_saved(classifier, tmp_path / "iris", write_settings)

    request = request_for(features, outputs=["predict_proba", "predict", "predict"])
    response = await model.predict(request)

    assert [output.name for output in response.outputs] == ["predict_proba", "predict"]
    np.testing.assert_array_equal(
        response.outputs[1].data, classifier.predict(features)
    )


async def test_unknown_output_is_invalid_request(
    classifier: Any,
    iris: Any,
    tmp_path: Path,
    write_settings: Any,
    request_for: RequestFor,
) -> None:
    model = await load_saved(classifier, tmp_path / "iris", write_settings)

    with pytest.raises(InvalidRequest) as caught:
        await model.predict(request_for(iris[0][:2], outputs=["predict", "scores"]))

    message = str(caught.value)
    assert "'scores'" in message
    assert "'iris'" in message
    assert "predict, predict_proba" in message


async def test_regressor_has_no_predict_proba(
    iris: Any, tmp_path: Path, write_settings: Any, request_for: RequestFor
) -> None:
    features, labels = iris
    regressor = LinearRegression().fit(features, labels.astype(np.float64))
    model = await load_saved(regressor, tmp_path / "linear", write_settings)

    response = await model.predict(request_for(features[ROWS]))
    assert response.outputs[0].datatype == "FP64"
    np.testing.assert_array_equal(
        response.outputs[0].data, regressor.predict(features[ROWS])
    )

    with pytest.raises(InvalidRequest, match="Valid outputs: predict$"):
        await model.predict(request_for(features[:1], outputs=["predict_proba"]))


async def test_transformer_defaults_to_transform(
    iris: Any, tmp_path: Path, write_settings: Any, request_for: RequestFor
) -> None:
    features = iris[0]
    scaler = StandardScaler().fit(features)
    model = await load_saved(scaler, tmp_path / "scaler", write_settings)

    response = await model.predict(request_for(features[ROWS]))

    assert [output.name for output in response.outputs] == ["transform"]
    assert response.outputs[0].shape == [len(ROWS), 4]
    np.testing.assert_array_equal(
        response.outputs[0].data, scaler.transform(features[ROWS])
    )


async def test_pipeline_outputs(
    iris: Any, tmp_path: Path, write_settings: Any, request_for: RequestFor
) -> None:
    features, labels = iris
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    pipeline.fit(features, labels)
    model = await load_saved(pipeline, tmp_path / "pipeline", write_settings)

    assert list(model.methods) == ["predict", "predict_proba"]
    response = await model.predict(
        request_for(features[ROWS], outputs=["predict", "predict_proba"])
    )
    np.testing.assert_array_equal(
        response.outputs[0].data, pipeline.predict(features[ROWS])
    )
    np.testing.assert_array_equal(
        response.outputs[1].data, pipeline.predict_proba(features[ROWS])
    )


async def test_string_labels_are_bytes(
    iris: Any, tmp_path: Path, write_settings: Any, request_for: RequestFor
) -> None:
    features, labels = iris
    names = np.array(["setosa", "versicolor", "virginica"])[labels]
    classifier = LogisticRegression(max_iter=1000).fit(features, names)
    model = await load_saved(classifier, tmp_path / "named", write_settings)

    response = await model.predict(request_for(features[[0, 50, 149]]))

    output = response.outputs[0]
    assert output.datatype == "BYTES"
    assert output.data.tolist() == [b"setosa", b"versicolor", b"virginica"]


async def test_pickle_file_found_in_folder(
    classifier: Any,
    iris: Any,
    tmp_path: Path,
    write_settings: Any,
    request_for: RequestFor,
) -> None:
    folder = tmp_path / "pickled"
    (folder / "artifacts").mkdir(parents=True)
    (folder / "artifacts" / "model.pkl").write_bytes(pickle.dumps(classifier))
    settings = write_settings(folder, IMPLEMENTATION, uri="./artifacts")

    model = await ModelRegistry().load(settings)

    response = await model.predict(request_for(iris[0][ROWS]))
    np.testing.assert_array_equal(
        response.outputs[0].data, classifier.predict(iris[0][ROWS])
    )


async def test_model_folder_searched_without_uri(
    classifier: Any, tmp_path: Path, write_settings: Any
) -> None:
    folder = tmp_path / "no-uri"
    folder.mkdir()
    joblib.dump(classifier, folder / "model.pickle")
    settings = write_settings(folder, IMPLEMENTATION)

    model = await ModelRegistry().load(settings)

    assert isinstance(model, SKLearnModel)


async def test_missing_file_names_path(tmp_path: Path, write_settings: Any) -> None:
    folder = tmp_path / "missing"
    settings = write_settings(folder, IMPLEMENTATION, uri="./absent.joblib")

    with pytest.raises(ModelLoadError) as caught:
        await ModelRegistry().load(settings)

    message = str(caught.value)
    assert str(folder / "absent.joblib") in message
    assert "'missing'" in message


async def test_folder_without_model_file(tmp_path: Path, write_settings: Any) -> None:
    folder = tmp_path / "empty"
    settings = write_settings(folder, IMPLEMENTATION)

    with pytest.raises(ModelLoadError) as caught:
        await ModelRegistry().load(settings)

    message = str(caught.value)
    assert str(folder) in message
    assert "model.joblib, model.pkl, model.pickle" in message


async def test_unreadable_file_is_load_error(
    tmp_path: Path, write_settings: Any
) -> None:
    folder = tmp_path / "corrupt"
    folder.mkdir()
    (folder / "model.joblib").write_bytes(b"not a pickle")
    settings = write_settings(folder, IMPLEMENTATION, uri="./model.joblib")

    with pytest.raises(ModelLoadError, match="failed to read model file") as caught:
        await ModelRegistry().load(settings)

    assert str(folder / "model.joblib") in str(caught.value)


async def test_object_without_methods_is_load_error(
    tmp_path: Path, write_settings: Any
) -> None:
    folder = tmp_path / "dict"
    folder.mkdir()
    joblib.dump({"weights": [1, 2]}, folder / "model.joblib")
    settings = write_settings(folder, IMPLEMENTATION)

    with pytest.raises(ModelLoadError, match="is a dict, which has none"):
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
    joblib.dump(classifier, folder / "model.joblib")
    settings = write_settings(
        folder, "mlserver_sklearn.SKLearnModel", uri="./model.joblib"
    )

    model = await ModelRegistry().load(settings)

    assert type(model) is SKLearnModel
    response = await model.predict(request_for(iris[0][ROWS]))
    np.testing.assert_array_equal(
        response.outputs[0].data, classifier.predict(iris[0][ROWS])
    )


async def test_wrong_feature_count_is_invalid_request(
    classifier: Any,
    iris: Any,
    tmp_path: Path,
    write_settings: Any,
    request_for: RequestFor,
) -> None:
    model = await load_saved(classifier, tmp_path / "iris", write_settings)

    with pytest.raises(InvalidRequest, match="3 features"):
        await model.predict(request_for(iris[0][:2, :3]))


async def test_two_inputs_without_content_type(
    classifier: Any, tmp_path: Path, write_settings: Any
) -> None:
    model = await load_saved(classifier, tmp_path / "iris", write_settings)
    column = np.zeros((2, 1))
    request = InferenceRequest(
        inputs=[
            NumpyCodec.encode_input("a", column),
            NumpyCodec.encode_input("b", column),
        ]
    )

    with pytest.raises(InvalidRequest, match=r"received 2 \('a', 'b'\)"):
        await model.predict(request)


async def test_dataframe_model_accepts_array(
    tmp_path: Path, write_settings: Any, request_for: RequestFor
) -> None:
    frame, labels = load_iris(return_X_y=True, as_frame=True)
    classifier = LogisticRegression(max_iter=1000).fit(frame, labels)
    model = await load_saved(classifier, tmp_path / "framed", write_settings)

    # pytest turns scikit-learn's "X does not have valid feature names"
    # warning into an error, so this also checks that none is raised.
    response = await model.predict(request_for(frame.to_numpy()[ROWS]))

    np.testing.assert_array_equal(
        response.outputs[0].data, classifier.predict(frame.iloc[ROWS])
    )


async def test_pandas_content_type_columns(tmp_path: Path, write_settings: Any) -> None:
    frame, labels = load_iris(return_X_y=True, as_frame=True)
    classifier = LogisticRegression(max_iter=1000).fit(frame, labels)
    model = await load_saved(classifier, tmp_path / "framed", write_settings)
    request = PandasCodec.encode_request(frame.iloc[ROWS])
    assert request.parameters == Parameters(content_type="pd")

    response = await model.predict(request)

    np.testing.assert_array_equal(
        response.outputs[0].data, classifier.predict(frame.iloc[ROWS])
    )


async def test_pandas_columns_for_array_model(
    classifier: Any, iris: Any, tmp_path: Path, write_settings: Any
) -> None:
    features = iris[0][ROWS]
    model = await load_saved(classifier, tmp_path / "iris", write_settings)
    inputs = [
        RequestInput(
            name=f"column-{index}", shape=[len(ROWS)], datatype="FP64", data=column
        )
        for index, column in enumerate(features.T)
    ]
    request = InferenceRequest(parameters=Parameters(content_type="pd"), inputs=inputs)

    response = await model.predict(request)

    np.testing.assert_array_equal(
        response.outputs[0].data, classifier.predict(features)
    )


async def test_unknown_content_type_is_invalid_request(
    classifier: Any,
    iris: Any,
    tmp_path: Path,
    write_settings: Any,
    request_for: RequestFor,
) -> None:
    model = await load_saved(classifier, tmp_path / "iris", write_settings)
    request = request_for(iris[0][:1])
    request.parameters = Parameters(content_type="parquet")

    with pytest.raises(InvalidRequest, match="unknown request content type 'parquet'"):
        await model.predict(request)


def test_is_dataframe_without_pandas_import() -> None:
    # The runtime detects DataFrames by type name, so that it need not import
    # pandas. This pins that name to the one pandas uses.
    assert is_dataframe(pd.DataFrame())
    assert not is_dataframe(np.zeros((2, 2)))
    assert not is_dataframe(pd.Series([1.0]))
