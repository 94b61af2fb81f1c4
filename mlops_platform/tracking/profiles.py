"""Reference profiles stored with model versions: an MLflow artifact of the version's run, its hash a tag.

mlflow is imported inside the functions: the code location must load without it.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_platform.tracking.registry import MlflowRegistry, RegistryError

if TYPE_CHECKING:
    from mlops_platform.ml.profile import ReferenceProfile

PROFILE_ARTIFACT = "monitoring/reference_profile.json"
PROFILE_TAG = "mlops.reference_profile_sha256"
# A guard against a runaway profile (long category names, say), never against a wide spec: 200 KB, or
# 16 KB per profiled column when that is more (a numeric column's 1,000 quantiles and noise take ~9 KB).
MAX_PROFILE_BYTES = 200_000
MAX_BYTES_PER_COLUMN = 16_000


class MissingProfileError(RegistryError):
    """The model version carries no reference profile (or a damaged one); the message says which and why."""


def log_profile(registry: MlflowRegistry, model_name: str, version: str, run_id: str, profile: ReferenceProfile) -> str:
    """Store ``profile`` as the run's artifact and its sha256 as the version's tag; returns the hash.

    Idempotent: the same profile writes the same bytes and tag. A profile over
    max(MAX_PROFILE_BYTES, MAX_BYTES_PER_COLUMN x columns) is refused.
    """
    data = profile.to_json()
    limit = max(MAX_PROFILE_BYTES, MAX_BYTES_PER_COLUMN * len(profile.columns))
    if len(data) > limit:
        raise ValueError(
            f"reference profile of {model_name} version {version} is {len(data)} bytes, over {limit} "
            f"for {len(profile.columns)} columns: shorten the categories' names or profile fewer columns"
        )
    digest = hashlib.sha256(data).hexdigest()
    client = registry.client()
    with tempfile.TemporaryDirectory(prefix="mlops-profile-") as tmp:
        path = Path(tmp) / Path(PROFILE_ARTIFACT).name
        path.write_bytes(data)
        client.log_artifact(run_id, str(path), artifact_path=str(Path(PROFILE_ARTIFACT).parent))
    client.set_model_version_tag(model_name, version, PROFILE_TAG, digest)
    return digest


def load_profile(registry: MlflowRegistry, model_name: str, version: str) -> ReferenceProfile:
    """The version's profile, checked against its tag; MissingProfileError naming the version otherwise."""
    from mlflow.artifacts import download_artifacts

    from mlops_platform.ml.profile import ProfileError, ReferenceProfile

    where = f"{model_name!r} version {version}"
    client = registry.client()
    model_version = client.get_model_version(model_name, version)
    expected = model_version.tags.get(PROFILE_TAG)
    if not expected:
        raise MissingProfileError(
            f"{where} has no reference profile (no {PROFILE_TAG} tag): it was trained before monitoring "
            "existed; retrain it (materialize the model) so drift can be measured against it"
        )
    with tempfile.TemporaryDirectory(prefix="mlops-profile-") as tmp:
        try:
            local = download_artifacts(
                run_id=model_version.run_id,
                artifact_path=PROFILE_ARTIFACT,
                dst_path=tmp,
                tracking_uri=registry.tracking_uri,
            )
        except Exception as exc:
            raise MissingProfileError(
                f"{where}: tag {PROFILE_TAG} is set but artifact {PROFILE_ARTIFACT} of run {model_version.run_id} "
                f"cannot be read ({type(exc).__name__}: {exc})"
            ) from exc
        data = Path(local).read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if found != expected:
        raise MissingProfileError(f"{where}: profile artifact has sha256 {found}, the version's tag says {expected}")
    try:
        return ReferenceProfile.from_json(data, where=f"profile of {where}")
    except ProfileError as exc:
        raise MissingProfileError(str(exc)) from exc
