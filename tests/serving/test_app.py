"""The serving app over real HTTP: protocols, validation, auth, metrics, swaps, and the fast path."""

from __future__ import annotations

import json
import logging
import math
import shutil
import threading
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from mlops_platform.ml.training import predict
from mlops_platform.serving.app import ConfigError, ServeConfig, create_app
from tests.serving.conftest import TOKEN, ServerThread

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(models, churn, delivery, tmp_path_factory):
    state = tmp_path_factory.mktemp("state") / "deployed.json"
    config = ServeConfig(models={churn.name: churn, delivery.name: delivery}, token=TOKEN, state_file=state)
    app = create_app(config, models.source())
    with ServerThread(app) as running:
        running.app = app
        for name in (churn.name, delivery.name):
            response = httpx.put(f"{running.url}/admin/models/{name}", json={"version": "1"}, headers=AUTH, timeout=120)
            assert response.status_code == 200, response.text
        yield running


def _rows(models, spec, n=5):
    return models.frames[spec.name][spec.feature_names].head(n)


def _records(frame):
    return json.loads(frame.to_json(orient="records"))


def test_every_protocol_answers_the_pipeline_prediction_and_names_the_version(server, models, churn) -> None:
    rows = _rows(models, churn)
    expected = predict(models.pipelines[("churn", "1")], rows, churn)
    split = json.loads(rows.to_json(orient="split", index=False))
    for body in ({"dataframe_split": split}, {"dataframe_records": _records(rows)}, {"instances": _records(rows)}):
        response = httpx.post(f"{server.url}/models/churn/invocations", json=body, headers=AUTH)
        assert response.status_code == 200, response.text
        assert response.headers["X-Model-Version"] == "1"
        payload = response.json()
        assert payload["model_version"] == "1"
        assert [p["prediction"] for p in payload["predictions"]] == expected["prediction"].tolist()
        got = [p["probability"] for p in payload["predictions"]]
        assert np.max(np.abs(np.array(got) - expected["probability"].to_numpy())) <= 1e-9
    tensors = [
        {
            "name": c,
            "shape": [len(rows)],
            "datatype": "FP64" if pd.api.types.is_numeric_dtype(rows[c]) else "BYTES",
            "data": rows[c].tolist(),
        }
        for c in rows.columns
    ]
    response = httpx.post(f"{server.url}/v2/models/churn/infer", json={"id": "r1", "inputs": tensors}, headers=AUTH)
    assert response.status_code == 200, response.text
    out = {t["name"]: t for t in response.json()["outputs"]}
    assert response.json()["model_version"] == "1" and response.json()["id"] == "r1"
    assert out["prediction"]["data"] == expected["prediction"].tolist()
    assert out["probability"]["data"] == pytest.approx(expected["probability"].tolist(), abs=1e-9)
    meta = httpx.get(f"{server.url}/v2/models/churn", headers=AUTH).json()
    assert meta["versions"] == ["1"] and meta["parameters"]["inference_path"] == "compiled"
    assert [i["name"] for i in meta["inputs"]] == churn.feature_names
    assert httpx.get(f"{server.url}/v2/models/churn/ready").status_code == 200
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200


def test_events_as_they_land_get_the_features_the_features_asset_computes(server, models, churn, delivery) -> None:
    for spec in (churn, delivery):
        events = models.events[spec.name].head(7)
        records = json.loads(events.to_json(orient="records", date_format="iso", date_unit="us"))
        response = httpx.post(
            f"{server.url}/models/{spec.name}/invocations", json={"dataframe_records": records}, headers=AUTH
        )
        assert response.status_code == 200, response.text
        expected = predict(models.pipelines[(spec.name, "1")], models.frames[spec.name].head(7), spec)
        got = response.json()["predictions"]
        if spec.task == "classification":
            got = [p["probability"] for p in got]
            want = expected["probability"].to_numpy()
        else:
            want = expected["prediction"].to_numpy()
        assert np.max(np.abs(np.array(got) - want)) <= 1e-9


def test_regressor_with_trees_is_served_through_the_compiled_preprocessing(server, models, delivery) -> None:
    rows = _rows(models, delivery, 50)
    expected = predict(models.pipelines[("delivery_eta", "1")], rows, delivery)["prediction"].to_numpy()
    response = httpx.post(
        f"{server.url}/models/delivery_eta/invocations", json={"dataframe_records": _records(rows)}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    assert np.max(np.abs(np.array(response.json()["predictions"]) - expected)) <= 1e-9
    meta = httpx.get(f"{server.url}/admin/models/delivery_eta", headers=AUTH).json()
    assert meta["inference_path"] == "compiled" and meta["max_abs_diff_vs_sklearn"] <= 1e-9


SECRET = "SECRET-VALUE-9d1f"


def _row(churn, **changes):
    row = {name: None for name in churn.feature_names}
    row.update(changes)
    return row


@pytest.mark.parametrize(
    ("content", "content_type", "status", "says"),
    [
        (b'{"dataframe_records": [', "application/json", 400, "not valid JSON"),
        (b'{"dataframe_records": [{"tenure_months": NaN}]}', "application/json", 400, "NaN"),
        (b"tenure_months=3", "application/x-www-form-urlencoded", 415, "content type"),
        (None, "application/json", 422, "missing field(s) 'plan'"),
        ("extra", "application/json", 422, "unknown field(s) 'SECRET-FIELD'"),
        ("wrong_type", "application/json", 422, "field 'monthly_charges': expected a number, got a string"),
        ("fraction", "application/json", 422, "field 'tenure_months': expected an integer"),
        ("null_key", "application/json", 422, "field 'customer_id': null is not allowed"),
        ("empty", "application/json", 422, "the batch is empty"),
        ("huge_number", "application/json", 400, "not valid JSON"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_field_never_the_value(
    server, churn, models, content, content_type, status, says
) -> None:
    row = _row(churn, plan=SECRET)
    if content is None:
        body = {"dataframe_records": [{k: v for k, v in row.items() if k != "plan"}]}
    elif content == "extra":
        body = {"dataframe_records": [{**row, "SECRET-FIELD": SECRET}]}
    elif content == "wrong_type":
        body = {"dataframe_records": [_row(churn, monthly_charges=SECRET)]}
    elif content == "fraction":
        body = {"dataframe_records": [_row(churn, tenure_months=2.5)]}
    elif content == "null_key":
        events = json.loads(models.events["churn"].head(1).to_json(orient="records", date_format="iso"))
        body = {"dataframe_records": [{**events[0], "customer_id": None, "plan": SECRET}]}
    elif content == "empty":
        body = {"dataframe_records": []}
    elif content == "huge_number":
        content = (
            b'{"dataframe_records": [{"tenure_months": 1e999'
            + b"".join(f', "{n}": null'.encode() for n in churn.feature_names if n != "tenure_months")
            + b"}]}"
        )
    if not isinstance(content, bytes):
        content = json.dumps(body).encode()
    response = httpx.post(
        f"{server.url}/models/churn/invocations", content=content, headers={**AUTH, "Content-Type": content_type}
    )
    assert response.status_code == status, response.text
    assert says in response.json()["error"]
    assert SECRET not in response.text.replace("SECRET-FIELD", "")
    assert httpx.get(f"{server.url}/v2/models/churn/ready").status_code == 200  # still serving


def test_limits_unknown_models_and_tokens(server, churn) -> None:
    url = f"{server.url}/models/churn/invocations"
    big = {"dataframe_records": [_row(churn)] * 20_000}
    assert httpx.post(url, json=big, headers=AUTH).status_code == 413
    assert httpx.post(f"{server.url}/models/nope/invocations", json=big, headers=AUTH).status_code == 404
    assert httpx.post(url, json={"instances": [_row(churn)]}).status_code == 401
    wrong = httpx.post(url, json={"instances": [_row(churn)]}, headers={"Authorization": "Bearer wrong-token-xxxxxxxx"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "wrong bearer token"
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    assert httpx.put(f"{server.url}/admin/models/churn", json={"version": "2"}).status_code == 401


def test_binding_beyond_loopback_without_a_token_is_refused(churn) -> None:
    with pytest.raises(ConfigError, match="MLOPS_SERVING_TOKEN"):
        ServeConfig(models={"churn": churn}, host="0.0.0.0").check()
    ServeConfig(models={"churn": churn}, host="0.0.0.0", token=TOKEN).check()


def test_swap_under_load_drops_nothing_and_a_broken_version_never_takes_traffic(server, churn, models) -> None:
    url = f"{server.url}/models/churn/invocations"
    body = {"instances": [_row(churn, tenure_months=3, plan="basic")]}
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(headers=AUTH, timeout=30) as client:
            while not stop.is_set():
                response = client.post(url, json=body)
                seen.append((response.status_code, response.headers.get("X-Model-Version", "")))

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        swapped = httpx.put(f"{server.url}/admin/models/churn", json={"version": "2"}, headers=AUTH, timeout=120)
        assert swapped.status_code == 200, swapped.text
        after = len(seen)
        from tests.serving.conftest import wait_for

        wait_for(lambda: len(seen) > after + 20, what="requests after the swap")
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert {status for status, _ in seen} == {200}
    assert {version for _, version in seen} <= {"1", "2"}
    assert seen[-1][1] == "2" and seen[0][1] == "1"

    # Version 3's artifacts vanish before the swap: the swap fails, version 2 keeps serving, it is reported.
    from mlops_platform.ml.training import train

    record = models.registry.log_model(
        model_name="churn",
        experiment="serving-tests/churn",
        pipeline=train(models.frames["churn"], churn),
        input_example=models.frames["churn"][churn.feature_names].head(2),
        metrics={},
        params={},
        tags={},
        training_set_version=0,
    )
    location = models.registry.client().get_model_version_download_uri("churn", record.version)
    folder = Path(str(location).removeprefix("file://"))
    assert (folder / "MLmodel").is_file(), folder
    shutil.rmtree(folder)
    failed = httpx.put(f"{server.url}/admin/models/churn", json={"version": record.version}, headers=AUTH, timeout=120)
    assert failed.status_code == 422
    assert failed.json()["version"] == "2"
    assert failed.json()["last_failed_swap"]["version"] == record.version
    response = httpx.post(url, json=body, headers=AUTH)
    assert response.status_code == 200 and response.headers["X-Model-Version"] == "2"
    metrics = httpx.get(f"{server.url}/metrics", headers=AUTH).text
    assert 'mlops_serving_failed_swaps_total{model="churn"} 1.0' in metrics
    assert 'mlops_serving_model_version{model="churn"} 2.0' in metrics
    assert 'mlops_serving_inference_path{model="churn",path="compiled",version="2"} 1.0' in metrics
    assert 'mlops_serving_requests_total{code="200",model="churn",version="2"}' in metrics
    assert 'mlops_serving_request_seconds_bucket{le="0.005",model="churn",version="2"}' in metrics
    # Idempotent: deploying the served version changes nothing.
    again = httpx.put(f"{server.url}/admin/models/churn", json={"version": "2"}, headers=AUTH, timeout=60)
    assert again.json()["changed"] is False
    # The state file remembers what was deployed, for a restart.
    assert json.loads(server.app.app.state.catalog.config.state_file.read_text())["deployed"]["churn"] == "2"


def test_one_structured_access_log_line_per_request(server, churn, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="mlops_platform.serving.access"):
        httpx.post(f"{server.url}/models/churn/invocations", json={"instances": [_row(churn)]}, headers=AUTH)
        httpx.post(f"{server.url}/models/churn/invocations", json={"instances": [{"x": 1}]}, headers=AUTH)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "mlops_platform.serving.access"]
    assert [line["status"] for line in lines] == [200, 422]
    assert lines[0]["model"] == "churn" and lines[0]["rows"] == 1 and lines[0]["ms"] > 0
    assert "unknown field(s) 'x'" in lines[1]["error"]


def test_an_unsupported_step_falls_back_to_the_sklearn_pipeline(models, churn) -> None:
    from sklearn.preprocessing import MinMaxScaler

    from mlops_platform.serving.model import build_served

    class Source:
        def load(self, name, version):
            pipeline = models.pipelines[("churn", "1")]
            import copy

            changed = copy.deepcopy(pipeline)
            numeric = changed.steps[0][1].transformers_[0][1]
            numeric.steps[1] = (
                "scale",
                MinMaxScaler().fit(
                    numeric.steps[0][1].transform(
                        models.frames["churn"][[f.name for f in churn.features if f.kind == "numeric"]]
                    )
                ),
            )
            return changed, None

    served = build_served("churn", "9", churn, Source())
    assert served.path == "sklearn" and "MinMaxScaler" in served.fallback_reason
    rows = _rows(models, churn)
    got = served.predict({c: rows[c].tolist() for c in rows.columns}, len(rows))["probability"]
    assert not math.isnan(float(got[0]))


def test_inference_routes_refuse_other_methods_and_stream_bodies_up_to_the_limit(server, churn) -> None:
    url = f"{server.url}/models/churn/invocations"
    wrong = httpx.get(url, headers=AUTH)
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST" and "POST" in wrong.json()["error"]
    assert httpx.get(f"{server.url}/v2/models/churn/infer", headers=AUTH).status_code == 405
    assert httpx.post(f"{server.url}/models/churn/invocations/more", json={}, headers=AUTH).status_code == 404

    def chunks(body: bytes, size: int = 4096):
        for start in range(0, len(body), size):
            yield body[start : start + size]

    small = json.dumps({"instances": [_row(churn, tenure_months=3)] * 3}).encode()
    streamed = httpx.post(url, content=chunks(small), headers={**AUTH, "Content-Type": "application/json"})
    assert "content-length" not in streamed.request.headers  # sent chunked: the limit is counted as it arrives
    assert streamed.status_code == 200 and len(streamed.json()["predictions"]) == 3
    big = json.dumps({"instances": [_row(churn)] * 20_000}).encode()
    assert len(big) > 1_048_576
    refused = httpx.post(url, content=chunks(big), headers={**AUTH, "Content-Type": "application/json"})
    assert refused.status_code == 413 and "over the limit" in refused.json()["error"]
    assert httpx.post(url, json={"instances": [_row(churn)]}, headers=AUTH).status_code == 200  # still serving


def _tree_pipeline(estimator, rng):
    """A numeric-only pipeline without an imputer, so NaN reaches the trees (the missing-value branches)."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    x = pd.DataFrame(rng.normal(size=(600, 4)), columns=["a", "b", "c", "d"])
    x.loc[rng.random(600) < 0.15, "b"] = np.nan
    x.loc[rng.random(600) < 0.05, "d"] = np.nan
    signal = x["a"].to_numpy() + np.nan_to_num(x["b"].to_numpy(), nan=2.0) * x["c"].to_numpy()
    pipeline = Pipeline(
        [("preprocess", ColumnTransformer([("numeric", StandardScaler(), list(x.columns))])), ("model", estimator)]
    )
    return pipeline, x, signal


@pytest.mark.parametrize("kind", ["regressor", "binary", "three_classes"])
def test_compiled_trees_equal_sklearn_with_missing_values_at_every_batch_size(kind) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from mlops_platform.serving.compiled import compile_pipeline

    rng = np.random.default_rng(7)
    if kind == "regressor":
        pipeline, x, signal = _tree_pipeline(HistGradientBoostingRegressor(max_iter=40, random_state=0), rng)
        pipeline.fit(x, signal)
        want = pipeline.predict(x)
    else:
        pipeline, x, signal = _tree_pipeline(HistGradientBoostingClassifier(max_iter=40, random_state=0), rng)
        y = (signal > 0).astype(int) if kind == "binary" else np.digitize(signal, [-0.5, 0.5])
        pipeline.fit(x, y)
        want = pipeline.predict_proba(x)
    compiled = compile_pipeline(pipeline, list(x.columns), [])
    assert compiled.trees is not None and compiled.head == "trees"
    data = {c: x[c].tolist() for c in x.columns}
    for size in (1, 7, len(x)):
        for start in range(0, len(x), size):
            part = {c: v[start : start + size] for c, v in data.items()}
            got = compiled.predict(part, len(part["a"]))
            # The leaves are added in sklearn's order, so the sums are sklearn's to the last bit.
            assert np.array_equal(got, want[start : start + size]), (kind, size, start)
            if size >= 7:
                break


def test_compiled_trees_refuse_a_tree_whose_walk_would_not_end() -> None:
    """A damaged artifact whose split points back at an earlier node is refused (the sklearn pipeline
    serves it), never walked: the compiled loop would not end on it."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from mlops_platform.serving.compiled import Unsupported, compile_pipeline

    pipeline, x, signal = _tree_pipeline(
        HistGradientBoostingRegressor(max_iter=3, random_state=0), np.random.default_rng(1)
    )
    pipeline.fit(x, signal)
    nodes = pipeline[-1]._predictors[1][0].nodes
    inner = np.flatnonzero(~nodes["is_leaf"].astype(bool))
    nodes["right"][inner[-1]] = 0  # back to the root
    with pytest.raises(Unsupported, match="before its parent"):
        compile_pipeline(pipeline, list(x.columns), [])


def test_compiled_trees_refuse_native_categorical_splits() -> None:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from mlops_platform.serving.compiled import Unsupported, compile_pipeline

    x = pd.DataFrame({"a": np.arange(200.0) % 7, "b": np.arange(200.0)})
    model = HistGradientBoostingRegressor(max_iter=5, categorical_features=[0])
    scale = StandardScaler(with_mean=False, with_std=False)  # column "a" stays the codes 0..6
    pipeline = Pipeline([("preprocess", ColumnTransformer([("numeric", scale, ["a", "b"])])), ("m", model)])
    pipeline.fit(x, x["a"] * 2 + x["b"])
    with pytest.raises(Unsupported, match="categorical"):
        compile_pipeline(pipeline, ["a", "b"], [])


def test_validation_fast_path_types_like_the_per_value_converters() -> None:
    from mlops_platform.serving.schema import Field, InputError, InputSchema, mlflow_columns

    schema = InputSchema([Field("x", "double"), Field("n", "long"), Field("s", "string"), Field("k", "string", False)])
    typed = schema.convert({"x": [1.5, 2], "n": [3, 4.0], "s": ["a", None], "k": ["b", "c"]})
    assert typed == {"x": [1.5, 2.0], "n": [3, 4], "s": ["a", None], "k": ["b", "c"]}
    assert [type(v) for v in typed["x"]] == [float, float] and [type(v) for v in typed["n"]] == [int, int]
    assert schema.convert({"x": [1.0], "n": [2], "s": ["a"], "k": ["b"]}) == {
        "x": [1.0],
        "n": [2],
        "s": ["a"],
        "k": ["b"],
    }
    for column, values, says in [
        ("x", [1.0, math.nan], "field 'x': not a finite number"),
        ("x", [math.inf, 1.0], "field 'x': not a finite number"),
        ("x", [True, False], "field 'x': expected a number, got a boolean"),
        ("n", [True], "field 'n': expected an integer, got a boolean"),
        ("k", ["b", None], "field 'k': null is not allowed"),
    ]:
        columns = {"x": [1.0] * len(values), "n": [1] * len(values), "s": ["a"] * len(values), "k": ["b"] * len(values)}
        with pytest.raises(InputError, match=says):
            schema.convert({**columns, column: values})
    # Rows of the same size with another field: the row and the fields are named.
    with pytest.raises(InputError, match=r"row 1 has other fields than row 0 \('b', 'y'\)"):
        mlflow_columns({"dataframe_records": [{"a": 1, "b": 2}, {"a": 1, "y": 2}]})
    with pytest.raises(InputError, match="row 1 is not an object"):
        mlflow_columns({"dataframe_records": [{"a": 1}, [1]]})


def test_thread_pools_are_capped_at_startup_never_raised() -> None:
    import sklearn.ensemble  # noqa: F401  (loads OpenMP and BLAS, as a served model does)
    from threadpoolctl import threadpool_info

    from mlops_platform.serving.app import limit_threads

    seen: dict[str, object] = {}

    def in_a_thread() -> None:  # OpenMP's limit is per thread: a thread of its own, as the event loop's
        before = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()}
        limiter = limit_threads(1)
        seen["limited"] = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()}
        if limiter is not None:
            limiter.restore_original_limits()
        seen["restored"] = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()}
        seen["before"] = before
        seen["raised"] = limit_threads(10_000)

    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join()
    assert seen["before"], "no BLAS/OpenMP library loaded"
    assert set(seen["limited"].values()) == {1}
    assert seen["restored"] == seen["before"]
    assert seen["raised"] is None  # a cap above the CPUs the process may use changes nothing


def test_landed_columns_reach_the_feature_functions_with_the_dtypes_ingestion_gives() -> None:
    """No skew in what a spec's ``compute`` sees: a row sent as it landed is typed as ``conform`` types it
    (a bool column as bools: ``~`` on Python bools in an object column gives -1 and -2)."""
    import datetime as dt

    from mlops_platform.ml.validation import conform
    from mlops_platform.serving.model import _landed_series
    from mlops_platform.serving.schema import LANDED_TYPES

    schema = {"id": "string", "ts": "timestamp", "n": "int64", "x": "float64", "flag": "bool"}
    values = {"id": ["a", "b"], "ts": ["2026-10-01T01:00:00", "2026-10-01T02:00:00"], "n": [1, 2], "x": [0.5, 1.5]}
    values["flag"] = [True, False]
    landed = pd.DataFrame({name: [str(v) for v in column] for name, column in values.items()})
    ingested = conform(landed, schema, day=dt.date(2026, 10, 1), day_column="ts", key_columns=("id",))
    served = pd.DataFrame({name: _landed_series(values[name], LANDED_TYPES[kind]) for name, kind in schema.items()})
    assert served.dtypes.to_dict() == ingested.dtypes.to_dict()
    assert (~served["flag"]).tolist() == [False, True]
