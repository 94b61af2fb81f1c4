"""A real serving app for a test platform, so runs that materialize the endpoint (automation, whole
families) deploy to it through the profile's own local deployer.

In a test: ``settings = start_serving(settings, request)`` before building the ``Platform``; the
platform built from those settings deploys to an app on a free loopback port, with the token generated
under the home as ``mlops-platform serve`` does. The app stops when the test ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_platform.settings import ServingSettings, Settings


@contextlib.contextmanager
def serving_app(settings: Settings, specs: list[Any] | None = None) -> Iterator[Settings]:
    """Start the serving app for ``settings`` (its registry, its home); yield the settings with
    MLOPS_SERVING_URL pointing at it. Stops the app on exit."""
    from mlops_platform.serving.app import ServeConfig, create_app
    from mlops_platform.serving.model import RegistrySource
    from mlops_platform.serving.token import ensure_token, token_file
    from mlops_platform.specs import discover_specs
    from tests.serving.conftest import ServerThread

    models = {spec.name: spec for spec in (specs or discover_specs(settings.spec_modules))}
    config = ServeConfig(
        models=models,
        token=ensure_token(token_file(settings.home)),
        state_file=Path(settings.home) / "serving" / "deployed.json",
    )
    with ServerThread(create_app(config, RegistrySource(settings.tracking_uri, settings.artifact_root))) as server:
        yield settings.model_copy(update={"serving": ServingSettings(url=server.url)})


def start_serving(settings: Settings, request: pytest.FixtureRequest, specs: list[Any] | None = None) -> Settings:
    """``serving_app`` for the rest of the test (stopped at its teardown); returns the settings to use."""
    stack = contextlib.ExitStack()
    request.addfinalizer(stack.close)
    return stack.enter_context(serving_app(settings, specs))
