"""A trained platform shared by the serving tests: both reference specs, each with a champion.

Built once per session on a temporary home (churn needs 15+ days: its labels land 14 days late).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import dagster as dg
import httpx
import pytest

from mlops_platform.settings import Settings
from tests.conftest import Platform

CHURN_DAYS = 17
DELIVERY_DAYS = 3
TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="session")
def trained(tmp_path_factory, churn, delivery) -> Iterator[Platform]:
    home = tmp_path_factory.mktemp("serving")
    (home / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
        platform = Platform(Settings(home=home / "home"), instance)
        platform.land(churn, days=CHURN_DAYS, rows=300)
        platform.land(delivery, days=DELIVERY_DAYS, rows=300)
        platform.ingest(churn, CHURN_DAYS)
        platform.train(churn)
        platform.ingest(delivery, DELIVERY_DAYS)
        platform.train(delivery)
        yield platform


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class ServerThread:
    """A uvicorn server for an app on a free loopback port, in a thread of the test process."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False, lifespan="on")
        )
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()

        def up() -> bool:
            try:
                return httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, what="the serving app to be ready")
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def training_frame(spec, days: int = 2, rows: int = 150, seed: int = 3):
    """A small training set of ``spec`` made from its synthetic generator, no Dagster run: the
    features are computed by ``compute_features``, the labels joined on entity and event time."""
    import datetime as dt

    import pandas as pd

    from mlops_platform.ml.features import compute_features

    frames = []
    for offset in range(days):
        day = dt.date(2026, 10, 1) + dt.timedelta(days=offset)
        events, _ = spec.source.generator(day, seed, 0.0, rows)
        features = compute_features(events, spec)
        if spec.task == "classification":
            import numpy as np

            rng = np.random.default_rng(offset)
            features[spec.label] = (rng.random(len(features)) < 0.3 + 0.4 * (events["support_calls_30d"] > 1)).astype(
                "int64"
            )
        else:
            features[spec.label] = events["distance_km"].to_numpy() * 3.5 + events["prep_minutes"].to_numpy()
        frames.append((events, features))
    events = pd.concat([e for e, _ in frames], ignore_index=True)
    data = pd.concat([f for _, f in frames], ignore_index=True)
    data["split"] = ["train" if i % 5 else "test" for i in range(len(data))]
    return events, data


class Models:
    """Versions of both reference specs registered in a real MLflow sqlite store on a temp folder."""

    def __init__(self, tmp, churn, delivery):
        from mlops_platform.ml.training import train
        from mlops_platform.serving.signature import landed_input_example
        from mlops_platform.tracking.registry import MlflowRegistry

        self.registry = MlflowRegistry(
            tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}", artifact_root=(tmp / "artifacts").as_uri()
        )
        self.events, self.frames, self.pipelines = {}, {}, {}
        for spec in (churn, delivery):
            events, frame = training_frame(spec)
            self.events[spec.name], self.frames[spec.name] = events, frame
            for seed in (0, 1) if spec.name == "churn" else (0,):  # churn: two versions, to swap between
                rows = frame if seed == 0 else frame.iloc[: len(frame) * 3 // 4]
                pipeline = train(rows, spec)
                record = self.registry.log_model(
                    model_name=spec.name,
                    experiment=f"serving-tests/{spec.name}",
                    pipeline=pipeline,
                    input_example=landed_input_example(rows, spec),
                    metrics={"m": 1.0},
                    params={},
                    tags={},
                    training_set_version=0,
                    skops_trusted_types=list(spec.skops_trusted_types),
                )
                self.pipelines[(spec.name, record.version)] = pipeline

    def source(self):
        from mlops_platform.serving.model import RegistrySource

        return RegistrySource(self.registry.tracking_uri, self.registry.artifact_root)


@pytest.fixture(scope="session")
def models(tmp_path_factory, churn, delivery) -> Models:
    return Models(tmp_path_factory.mktemp("serving-models"), churn, delivery)
