"""End to end: `inferpool start examples/models` with 2 workers, queried
with tritonclient and plain JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient

sys.path.insert(0, str(Path(__file__).parent))
from server_helpers import ServerProcess

EXAMPLES = Path(__file__).parent.parent / "examples"

# Rows of scikit-learn's iris data set with their classes.
IRIS_ROWS = np.array(
    [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5]], dtype=np.float32
)
IRIS_CLASSES = [0, 1, 2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("examples") / "models"
    shutil.copytree(
        EXAMPLES / "models", folder, ignore=shutil.ignore_patterns("model.joblib")
    )
    subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "train_iris.py"),
            "--output",
            str(folder / "iris" / "model.joblib"),
        ],
        check=True,
    )
    # A model folder exactly as MLServer's documentation writes one.
    mlserver_folder = folder / "mlserver-iris"
    mlserver_folder.mkdir()
    shutil.copy(folder / "iris" / "model.joblib", mlserver_folder / "model.joblib")
    (mlserver_folder / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "mlserver-iris",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v0.1.0"},
            }
        )
    )
    process = ServerProcess(folder, "--parallel-workers", "2").start()
    assert len(process.worker_pids) == 2
    yield process
    assert process.stop() == 0


def test_iris_with_tritonclient(server: ServerProcess) -> None:
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    try:
        infer_input = httpclient.InferInput("input-0", list(IRIS_ROWS.shape), "FP32")
        infer_input.set_data_from_numpy(IRIS_ROWS)

        result = client.infer("iris", [infer_input])

        predictions = result.as_numpy("predict")
        assert predictions.dtype == np.int64
        assert predictions.tolist() == IRIS_CLASSES
    finally:
        client.close()


def test_iris_with_plain_json(server: ServerProcess) -> None:
    payload = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [3, 4],
                "datatype": "FP32",
                "data": IRIS_ROWS.tolist(),
            }
        ]
    }

    status, body = server.json("POST", "/v2/models/iris/infer", payload)

    assert status == 200
    assert body["model_name"] == "iris"
    (output,) = body["outputs"]
    assert output["name"] == "predict"
    assert output["datatype"] == "INT64"
    assert output["shape"] == [3]
    assert output["data"] == IRIS_CLASSES


def test_mlserver_model_folder_serves_unchanged(server: ServerProcess) -> None:
    payload = {
        "inputs": [
            {
                "name": "predict",
                "shape": [3, 4],
                "datatype": "FP32",
                "data": IRIS_ROWS.tolist(),
            }
        ]
    }

    status, body = server.json(
        "POST", "/v2/models/mlserver-iris/versions/v0.1.0/infer", payload
    )

    assert status == 200
    assert body["model_name"] == "mlserver-iris"
    assert body["model_version"] == "v0.1.0"
    assert body["outputs"][0]["data"] == IRIS_CLASSES
