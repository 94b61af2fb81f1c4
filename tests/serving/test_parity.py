"""No training/serving skew: a landed row sent to the endpoint as it landed gets the prediction the
predictions asset wrote for the same row (same feature functions, same champion). A whole platform
run (ingest, train, promote, score), so slow."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest

from mlops_platform.serving.app import ServeConfig, create_app
from mlops_platform.serving.model import RegistrySource
from mlops_platform.storage.delta import read_table
from tests.conftest import day
from tests.serving.conftest import CHURN_DAYS, TOKEN, ServerThread

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_endpoint_prediction_for_a_landed_row_equals_the_predictions_asset(trained, churn) -> None:
    partition = day(CHURN_DAYS - 1)
    trained.run(churn, ["predictions"], partition_key=partition)
    predictions_meta = trained.latest_metadata(churn, "predictions", partition)
    the_day = [pd.Timestamp(partition).date()]
    predictions = read_table(str(predictions_meta["delta_uri"]), int(predictions_meta["delta_version"]), days=the_day)
    raw_meta = trained.latest_metadata(churn, "raw", partition)
    raw = read_table(str(raw_meta["delta_uri"]), int(raw_meta["delta_version"]), days=the_day)
    landed = raw[list(churn.source.events)].head(25)
    settings = trained.settings
    config = ServeConfig(models={"churn": churn}, token=TOKEN)
    with ServerThread(create_app(config, RegistrySource(settings.tracking_uri, settings.artifact_root))) as server:
        version = str(predictions_meta["champion_version"])
        assert (
            httpx.put(
                f"{server.url}/admin/models/churn", json={"version": version}, headers=AUTH, timeout=120
            ).status_code
            == 200
        )
        records = json.loads(landed.to_json(orient="records", date_format="iso", date_unit="us"))
        response = httpx.post(
            f"{server.url}/models/churn/invocations", json={"dataframe_records": records}, headers=AUTH
        )
    assert response.status_code == 200, response.text
    served = pd.DataFrame(response.json()["predictions"])
    served[churn.entity_key] = landed[churn.entity_key].to_numpy()
    served[churn.event_timestamp] = landed[churn.event_timestamp].to_numpy()
    joined = served.merge(predictions, on=[churn.entity_key, churn.event_timestamp], suffixes=("_endpoint", "_asset"))
    assert len(joined) == len(landed)
    assert np.max(np.abs(joined["probability_endpoint"] - joined["probability_asset"])) <= 1e-9
    assert (joined["prediction_endpoint"].astype(float) == joined["prediction_asset"].astype(float)).all()


@pytest.mark.parametrize("name", ["churn", "delivery_eta"])
def test_the_fast_path_equals_the_pipeline_on_the_models_test_split(trained, name, churn, delivery) -> None:
    from mlops_platform.serving.model import COMPILED, build_served

    spec = {"churn": churn, "delivery_eta": delivery}[name]
    meta = trained.latest_metadata(spec, "training_set")
    data = read_table(str(meta["delta_uri"]), int(meta["delta_version"]))
    test = data[data["split"] == "test"]
    assert len(test) > 50
    settings = trained.settings
    version = trained.resources["registry"].alias_version(spec.registered_model_name, "champion")
    served = build_served(name, version, spec, RegistrySource(settings.tracking_uri, settings.artifact_root))
    assert served.path == COMPILED, served.fallback_reason
    # The estimator is compiled too: churn's logistic head, delivery_eta's trees (walked for small batches).
    assert served.compiled.head == {"churn": "logistic", "delivery_eta": "trees"}[name]
    columns = {f: test[f].tolist() for f in spec.feature_names}
    frame = test[list(spec.feature_names)]
    want = served.pipeline.predict_proba(frame) if spec.task == "classification" else served.pipeline.predict(frame)
    # The whole split at once, and one row at a time as most requests come.
    got = served.compiled.predict(columns, len(test))
    assert np.max(np.abs(np.asarray(got) - np.asarray(want))) <= 1e-9
    one_by_one = [served.compiled.predict({f: [v[i]] for f, v in columns.items()}, 1) for i in range(len(test))]
    rows = np.concatenate(one_by_one)
    assert np.max(np.abs(rows - np.asarray(want))) <= 1e-9
