"""XGBoost and LightGBM models trained here on generated data, served by a
real server and queried over REST and gRPC."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import xgboost

sys.path.insert(0, str(Path(__file__).parent))
from server_helpers import ServerProcess

ROWS = np.random.default_rng(7).normal(size=(6, 5)).astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("runtimes") / "models"
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 5)).astype(np.float32)
    labels = (features[:, 0] + features[:, 1] * features[:, 2] > 0).astype(np.int64)
    targets = features @ np.array([1.0, -2.0, 0.5, 0.0, 3.0], dtype=np.float32)

    classifier = xgboost.XGBClassifier(n_estimators=20, max_depth=3)
    classifier.fit(features, labels)
    (folder / "xgb").mkdir(parents=True)
    classifier.save_model(folder / "xgb" / "model.json")
    (folder / "xgb" / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "xgb",
                "implementation": "mlserver_xgboost.XGBoostModel",
                "parameters": {"uri": "./model.json"},
            }
        )
    )

    regressor = lightgbm.train(
        {"objective": "regression", "verbose": -1, "num_leaves": 8},
        lightgbm.Dataset(features, targets),
        num_boost_round=20,
    )
    (folder / "lgbm").mkdir()
    regressor.save_model(str(folder / "lgbm" / "model.txt"))
    (folder / "lgbm" / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "lgbm",
                "implementation": "mlserver_lightgbm.LightGBMModel",
                "parameters": {"uri": "./model.txt"},
            }
        )
    )

    server = ServerProcess(folder, "--parallel-workers", "2").start()
    yield {
        "server": server,
        "xgb_predict": classifier.predict(ROWS),
        "xgb_proba": classifier.predict_proba(ROWS),
        "lgbm_predict": regressor.predict(ROWS),
    }
    assert server.stop() == 0


def _rest(
    server: ServerProcess, model: str, outputs: list[str]
) -> dict[str, np.ndarray]:  # type: ignore[type-arg]
    payload = {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(ROWS.shape),
                "datatype": "FP32",
                "data": ROWS.ravel().tolist(),
            }
        ],
        "outputs": [{"name": name} for name in outputs],
    }
    status, body = server.json("POST", f"/v2/models/{model}/infer", payload)
    assert status == 200, body
    return {o["name"]: np.array(o["data"]).reshape(o["shape"]) for o in body["outputs"]}


def _grpc(
    server: ServerProcess, model: str, outputs: list[str]
) -> dict[str, np.ndarray]:  # type: ignore[type-arg]
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    try:
        infer_input = grpcclient.InferInput("input-0", list(ROWS.shape), "FP32")
        infer_input.set_data_from_numpy(ROWS)
        requested = [grpcclient.InferRequestedOutput(name) for name in outputs]
        result = client.infer(model, [infer_input], outputs=requested)
        return {name: result.as_numpy(name) for name in outputs}
    finally:
        client.close()


@pytest.mark.parametrize("protocol", [_rest, _grpc], ids=["rest", "grpc"])
def test_xgboost_classifier_served(trained: dict[str, Any], protocol: Any) -> None:
    outputs = protocol(trained["server"], "xgb", ["predict", "predict_proba"])

    np.testing.assert_array_equal(outputs["predict"], trained["xgb_predict"])
    np.testing.assert_allclose(
        outputs["predict_proba"], trained["xgb_proba"], rtol=1e-6
    )


@pytest.mark.parametrize("protocol", [_rest, _grpc], ids=["rest", "grpc"])
def test_lightgbm_regressor_served(trained: dict[str, Any], protocol: Any) -> None:
    outputs = protocol(trained["server"], "lgbm", ["predict"])

    np.testing.assert_allclose(outputs["predict"], trained["lgbm_predict"], rtol=1e-12)
