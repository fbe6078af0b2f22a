"""The example model repository: train iris into a copy and serve both models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris

from inferpool.codecs import NumpyCodec
from inferpool.errors import InvalidRequest
from inferpool.model import MLModel
from inferpool.registry import ModelRegistry
from inferpool.settings import ModelSettings, find_model_settings
from inferpool.types import InferenceRequest, RequestInput

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from server_helpers import ServerProcess  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TRAIN_SCRIPT = EXAMPLES / "train_iris.py"

# Rows of the iris data with their species index: the first setosa,
# versicolor and virginica rows, and the last row (virginica).
KNOWN_ROWS = {0: 0, 50: 1, 100: 2, 149: 2}


def run_training(output: Path, *flags: str) -> str:
    """Run the training script to write `output` and return what it printed."""
    completed = subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), "--output", str(output), *flags],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return completed.stdout


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a copy of examples/models with a freshly trained iris model."""
    root = tmp_path_factory.mktemp("examples") / "models"
    shutil.copytree(
        EXAMPLES / "models",
        root,
        ignore=shutil.ignore_patterns("model.joblib", "__pycache__"),
    )
    run_training(root / "iris" / "model.joblib")
    return root


@pytest.fixture
def isolated_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo the registry's changes to the import path after a test.

    Loading a custom model puts its folder on `sys.path` and its module in
    `sys.modules`. Both are restored, so other tests import their own copy.
    """
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "doubler_model", raising=False)
    yield
    sys.modules.pop("doubler_model", None)


async def load_example(repository: Path, name: str) -> MLModel:
    settings = ModelSettings.from_file(repository / name / "model-settings.json")
    return await ModelRegistry().load(settings)


def test_repository_has_both_models(repository: Path) -> None:
    folders = [path.parent.name for path in find_model_settings(repository)]

    assert folders == ["doubler", "iris"]


def test_iris_settings_match_contract() -> None:
    raw = json.loads((EXAMPLES / "models" / "iris" / "model-settings.json").read_text())

    assert raw["name"] == "iris"
    assert raw["implementation"] == "inferpool.runtimes.sklearn.SKLearnModel"
    assert raw["parameters"]["uri"] == "./model.joblib"
    assert [(t["datatype"], t["shape"]) for t in raw["inputs"]] == [("FP32", [-1, 4])]
    assert [(t["name"], t["datatype"], t["shape"]) for t in raw["outputs"]] == [
        ("predict", "INT64", [-1])
    ]


async def test_iris_predicts_known_rows(repository: Path) -> None:
    features, _ = load_iris(return_X_y=True)
    rows = list(KNOWN_ROWS)
    model = await load_example(repository, "iris")
    request = InferenceRequest(
        inputs=[NumpyCodec.encode_input("input-0", features[rows].astype(np.float32))]
    )

    response = await model.predict(request)

    output = response.outputs[0]
    assert output.name == "predict"
    assert output.datatype == "INT64"
    assert output.shape == [len(rows)]
    assert output.data.tolist() == list(KNOWN_ROWS.values())


async def test_iris_accuracy_on_all_rows(repository: Path) -> None:
    features, labels = load_iris(return_X_y=True)
    model = await load_example(repository, "iris")
    request = InferenceRequest(
        inputs=[NumpyCodec.encode_input("input-0", features.astype(np.float32))]
    )

    response = await model.predict(request)

    accuracy = float(np.mean(response.outputs[0].data == labels))
    assert accuracy >= 0.95


async def test_iris_json_style_request(repository: Path) -> None:
    # The body of the README's first curl example, with the data flattened.
    model = await load_example(repository, "iris")
    request = InferenceRequest(
        inputs=[
            RequestInput(
                name="input-0",
                shape=[2, 4],
                datatype="FP32",
                data=[5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3],
            )
        ]
    )

    response = await model.predict(request)

    assert response.outputs[0].data.tolist() == [0, 2]


async def test_iris_metadata_from_settings(repository: Path) -> None:
    model = await load_example(repository, "iris")

    metadata = await model.metadata()

    assert metadata.name == "iris"
    assert metadata.inputs is not None
    assert metadata.inputs[0].shape == [-1, 4]


def test_training_skips_up_to_date_file(tmp_path: Path) -> None:
    output = tmp_path / "model.joblib"
    run_training(output)
    written = output.stat().st_mtime_ns

    printed = run_training(output)

    assert "up to date" in printed
    assert output.stat().st_mtime_ns == written


def test_training_retrains_stale_file(tmp_path: Path) -> None:
    output = tmp_path / "model.joblib"
    output.write_bytes(b"stale")
    older = TRAIN_SCRIPT.stat().st_mtime - 60
    os.utime(output, (older, older))

    printed = run_training(output)

    assert "Wrote" in printed
    assert output.read_bytes() != b"stale"


def test_training_is_deterministic(tmp_path: Path) -> None:
    first = tmp_path / "first.joblib"
    second = tmp_path / "second.joblib"

    run_training(first)
    run_training(second, "--force")

    assert first.read_bytes() == second.read_bytes()


async def test_doubler_outputs(repository: Path, isolated_imports: None) -> None:
    model = await load_example(repository, "doubler")
    request = InferenceRequest(
        inputs=[
            RequestInput(name="x", shape=[3], datatype="FP32", data=[1.5, -2.0, 0.0])
        ]
    )

    response = await model.predict(request)

    doubled, summary = response.outputs
    assert doubled.name == "doubled"
    assert doubled.datatype == "FP32"
    assert doubled.shape == [3]
    assert doubled.data.tolist() == [3.0, -4.0, 0.0]
    assert summary.name == "summary"
    assert summary.datatype == "BYTES"
    assert summary.shape == [1, 1]
    assert summary.data.ravel().tolist() == [b"doubled 3 values of input 'x'"]


async def test_doubler_keeps_integer_dtype(
    repository: Path, isolated_imports: None
) -> None:
    model = await load_example(repository, "doubler")
    numbers = np.array([[1, 2], [3, 4]], dtype=np.int64)
    request = InferenceRequest(inputs=[NumpyCodec.encode_input("numbers", numbers)])

    response = await model.predict(request)

    doubled = response.outputs[0]
    assert doubled.datatype == "INT64"
    assert doubled.shape == [2, 2]
    assert doubled.data.tolist() == [[2, 4], [6, 8]]


async def test_doubler_rejects_strings(
    repository: Path, isolated_imports: None
) -> None:
    model = await load_example(repository, "doubler")
    request = InferenceRequest(
        inputs=[RequestInput(name="words", shape=[1], datatype="BYTES", data=["hi"])]
    )

    with pytest.raises(InvalidRequest, match="'words' must be numeric"):
        await model.predict(request)


@pytest.fixture(scope="module")
def server(repository: Path) -> Iterator[ServerProcess]:
    """`inferpool start` on the example repository copy, with one worker."""
    process = ServerProcess(repository).start()
    yield process
    assert process.stop() == 0


def test_served_iris_curl_body(server: ServerProcess) -> None:
    body = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [2, 4],
                "datatype": "FP32",
                "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]],
            }
        ]
    }

    status, response = server.json("POST", "/v2/models/iris/infer", body)

    assert status == 200
    assert response["outputs"] == [
        {
            "name": "predict",
            "shape": [2],
            "datatype": "INT64",
            "data": [0, 2],
            "parameters": {"content_type": "np"},
        }
    ]


def test_served_unknown_output_is_400(server: ServerProcess) -> None:
    body = {
        "inputs": [
            {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [1] * 4}
        ],
        "outputs": [{"name": "scores"}],
    }

    status, response = server.json("POST", "/v2/models/iris/infer", body)

    assert status == 400
    assert response == {
        "error": "Model 'iris' has no output 'scores'. Valid outputs: predict, "
        "predict_proba"
    }


def test_served_iris_tritonclient_http(server: ServerProcess) -> None:
    import tritonclient.http as httpclient

    features = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], np.float32)
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.http_port}")
    iris_input = httpclient.InferInput("input-0", list(features.shape), "FP32")
    iris_input.set_data_from_numpy(features)
    outputs = [
        httpclient.InferRequestedOutput("predict"),
        httpclient.InferRequestedOutput("predict_proba"),
    ]

    try:
        result = client.infer("iris", [iris_input], outputs=outputs)
    finally:
        client.close()

    assert result.as_numpy("predict").tolist() == [0, 2]
    probabilities = result.as_numpy("predict_proba")
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_served_doubler_tritonclient_grpc(server: ServerProcess) -> None:
    import tritonclient.grpc as grpcclient

    numbers = np.array([1.5, -2.0, 0.0], dtype=np.float32)
    client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{server.grpc_port}")
    doubler_input = grpcclient.InferInput("x", list(numbers.shape), "FP32")
    doubler_input.set_data_from_numpy(numbers)

    try:
        result = client.infer("doubler", [doubler_input])
    finally:
        client.close()

    assert result.as_numpy("doubled").tolist() == [3.0, -4.0, 0.0]
    assert result.as_numpy("summary").tolist() == [[b"doubled 3 values of input 'x'"]]
