"""The platform's MLflow resource: training runs, registered versions and champion/challenger aliases.

mlflow is imported inside the methods: the code location must load without it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import dagster as dg

if TYPE_CHECKING:
    import pandas as pd

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION_TAG = "mlops.previous_champion"
# Written on a version by its evaluation: "passed" or "failed" (the promotion gates).
GATES_TAG = "mlops.gates"
# A person's decision on a version of a spec that requires approval: "approved" or "rejected", by whom, when.
APPROVAL_TAG = "mlops.approval"
APPROVAL_BY_TAG = "mlops.approval_by"
APPROVAL_AT_TAG = "mlops.approval_at"
APPROVAL_DECISIONS = {"approve": "approved", "reject": "rejected"}
# The trusted-type list a version is loaded with, written by the platform (log_model, import), never
# read from the model's own MLmodel file: a crafted MLmodel could trust any type it likes.
TRUSTED_TYPES_TAG = "mlops.skops_trusted_types"
# Types the platform's own preprocessing (OneHotEncoder's dtype) stores; skops refuses them unless trusted.
PIPELINE_TRUSTED_TYPES = ("numpy.dtype",)
# The only serialization the platform writes and accepts: skops refuses types nobody trusted.
SKOPS_FORMAT = "skops"

T = TypeVar("T")


class RegistryError(ValueError):
    """A registry operation cannot proceed; the message names the model, version or alias."""


class ChampionMovedError(RegistryError):
    """The champion is no longer the version the caller's decision compared against."""


class _Unchecked(enum.Enum):
    UNCHECKED = "unchecked"


UNCHECKED = _Unchecked.UNCHECKED

# scheme://user:password@host -> scheme://user:***@host (the password runs to the last @ before the path).
_USERINFO = re.compile(r"(?P<prefix>\b[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*):[^/\s]*@")
# ?password=..., &token=..., Azure SAS sig=..., AWS X-Amz-Signature / X-Amz-Credential, api keys.
_SECRET_PARAM = re.compile(
    r"(?P<name>[?&;][^=&#\s]*?(?:password|passwd|pwd|secret|token|sig|signature|credential|api[_-]?key|access[_-]?key)=)"
    r"[^&#\s]*",
    re.IGNORECASE,
)
REDACTED = "***"


def redact_uri(uri: str) -> str:
    """``uri`` with its credentials replaced by ``***``: the password of ``user:password@`` and the
    values of secret-looking query parameters (password, token, sig, signature, credential, key).

    Pure and total: any string is accepted, and text that holds URIs (an error message) is redacted
    wherever a URI appears in it. The user name and everything else are kept, so the result still
    says which server and database it is.
    """
    redacted = _USERINFO.sub(lambda m: f"{m.group('prefix')}:{REDACTED}@", uri)
    return _SECRET_PARAM.sub(lambda m: f"{m.group('name')}{REDACTED}", redacted)


def search_all(search: Callable[..., Any], *args: Any, **kwargs: Any) -> Iterator[Any]:
    """Every result of an MLflow ``search_*`` call, following its page tokens to the last page.

    MLflow returns one page (100 registered models, 1000 runs, ...) and a token for the next one;
    a caller that reads only the first page silently misses the rest.
    """
    token = None
    while True:
        page = search(*args, page_token=token, **kwargs)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def model_versions(client: Any, name: str) -> list[Any]:
    """Every version of registered model ``name``, sorted by number, through every page.

    MLflow's filter strings have no escape for quotes (``'o\\'brien'`` silently matches nothing), so
    the value is quoted with the quote it does not contain; a name holding both kinds of quote is
    found by listing every version. Results are checked by name either way.
    """
    if '"' not in name:
        found = search_all(client.search_model_versions, f'name = "{name}"')
    elif "'" not in name:
        found = search_all(client.search_model_versions, f"name = '{name}'")
    else:
        found = search_all(client.search_model_versions)
    return sorted((v for v in found if v.name == name), key=lambda v: int(v.version))


def check_experiment_name(name: str) -> str:
    """``name``, when it is safe as a folder under the artifact root; RegistryError naming it otherwise.

    The artifact location is ``<root>/<name with / as _>``: ``..``, ``.``, a backslash, a percent sign
    (``%2e%2e`` decodes to ``..`` in a file URI) or a control character would put it elsewhere.
    """
    segment = name.replace("/", "_")
    if (
        not name.strip()
        or segment.strip() in (".", "..")
        or any(c in name for c in "\\%")
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
    ):
        raise RegistryError(
            f"experiment name {name!r} would not stay inside the artifact root: use a name without "
            "'..', '.', backslashes, '%' or control characters"
        )
    return segment


@dataclass(frozen=True)
class ModelRecord:
    """A registered model version and the lineage it was trained on."""

    name: str
    version: str
    run_id: str
    run_url: str
    model_uri: str
    training_set_version: int
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MlflowRegistry(dg.ConfigurableResource):
    """Tracking store, artifact root and registry of one profile."""

    tracking_uri: str
    artifact_root: str
    ui_url: str = "http://127.0.0.1:5000"

    def _mlflow(self):
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return mlflow

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self, name: str) -> str:
        """Id of experiment ``name``, created with its artifacts under the profile's artifact root."""
        client = self.client()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = f"{self.artifact_root.rstrip('/')}/{check_experiment_name(name)}"
        try:
            return client.create_experiment(name, artifact_location=location)
        except Exception:
            # Another process created it between our lookup and create.
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return redact_uri(f"{self.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}")

    @property
    def redacted_tracking_uri(self) -> str:
        """The tracking URI without its credentials: for exports, logs and metadata."""
        return redact_uri(self.tracking_uri)

    def log_model(
        self,
        *,
        model_name: str,
        experiment: str,
        pipeline: Any,
        input_example: pd.DataFrame,
        metrics: dict[str, float],
        params: dict[str, Any],
        tags: dict[str, str],
        training_set_version: int,
        skops_trusted_types: list[str] | None = None,
    ) -> ModelRecord:
        """One MLflow run holding the fitted pipeline, registered as a new version aliased challenger."""
        mlflow = self._mlflow()
        from mlflow.models import infer_signature

        experiment_id = self.experiment_id(experiment)
        with mlflow.start_run(experiment_id=experiment_id, tags=tags) as run:
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
            prediction = _predict_for_signature(pipeline, input_example)
            info = mlflow.sklearn.log_model(
                pipeline,
                name="model",
                signature=infer_signature(input_example, prediction),
                input_example=input_example,
                skops_trusted_types=[*PIPELINE_TRUSTED_TYPES, *(skops_trusted_types or [])],
                # Stated, not inferred: inference loads the model in a subprocess and costs seconds.
                pip_requirements=_serving_requirements(),
                pyfunc_predict_fn="predict_proba" if hasattr(pipeline, "predict_proba") else "predict",
            )
            run_id = run.info.run_id
        # The version is created with its tags (lineage, the trusted types serving loads with) in one
        # call: no reader ever sees it without them, and it costs one round trip instead of one a tag.
        trusted = ",".join(trusted_types(skops_trusted_types))
        registered = mlflow.register_model(info.model_uri, model_name, tags={**tags, TRUSTED_TYPES_TAG: trusted})
        version = str(registered.version)
        self.client().set_registered_model_alias(model_name, CHALLENGER, version)
        return ModelRecord(
            name=model_name,
            version=version,
            run_id=run_id,
            run_url=self.run_url(experiment_id, run_id),
            model_uri=f"models:/{model_name}/{version}",
            training_set_version=training_set_version,
            metrics=metrics,
        )

    def alias_version(self, model_name: str, alias: str) -> str | None:
        """The version an alias points to, or None when the alias (or the model) does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client().get_model_version_by_alias(model_name, alias).version)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def version_exists(self, model_name: str, version: str) -> bool:
        """Whether ``version`` of ``model_name`` is registered (deleted versions are not)."""
        from mlflow.exceptions import MlflowException

        try:
            self.client().get_model_version(model_name, version)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return False
            raise
        return True

    def version_tags(self, model_name: str, version: str) -> dict[str, str]:
        return dict(self.client().get_model_version(model_name, version).tags)

    def set_version_tag(self, model_name: str, version: str, key: str, value: str) -> None:
        self.client().set_model_version_tag(model_name, version, key, value)

    def decide_approval(self, model_name: str, version: str, action: str, by: str, at: str) -> tuple[str, bool]:
        """Record a person's ``action`` (``approve`` or ``reject``) on ``version``: (what happened, changed).

        Idempotent: the same decision again changes nothing and says who decided when. Refused
        (RegistryError) for a version that does not exist, has not been evaluated, failed its gates
        (approve), is not the challenger (approve: the champion only moves to the version the latest
        evaluation judged), or already carries the other decision (a decision is final: train a new version).
        """
        decision = APPROVAL_DECISIONS[action]
        who = by.strip()
        if not who or len(who) > 100 or not who.isprintable():
            raise RegistryError("--by must name the person deciding (1-100 printable characters)")
        if not self.version_exists(model_name, version):
            raise RegistryError(f"model {model_name!r} has no version {version} in the registry")
        tags = self.version_tags(model_name, version)
        earlier = tags.get(APPROVAL_TAG)
        if earlier == decision:
            return (
                f"{model_name} version {version} was already {decision} by {tags.get(APPROVAL_BY_TAG)} "
                f"at {tags.get(APPROVAL_AT_TAG)}; nothing changed",
                False,
            )
        if earlier is not None:
            raise RegistryError(
                f"{model_name} version {version} was already {earlier} by {tags.get(APPROVAL_BY_TAG)} at "
                f"{tags.get(APPROVAL_AT_TAG)}; a decision is final: train a new version to decide again"
            )
        if action == "approve":
            gates = tags.get(GATES_TAG)
            if gates is None:
                raise RegistryError(
                    f"{model_name} version {version} has not been evaluated: its promotion gates decide before a person"
                )
            if gates != "passed":
                raise RegistryError(
                    f"{model_name} version {version} failed its promotion gates; there is nothing to approve"
                )
            challenger = self.alias_version(model_name, CHALLENGER)
            if challenger != version:
                raise RegistryError(
                    f"{model_name} version {version} is no longer the challenger (version {challenger or 'none'} is): "
                    "the champion only moves to the version the latest evaluation judged"
                )
        client = self.client()
        for key, value in ((APPROVAL_BY_TAG, who), (APPROVAL_AT_TAG, at), (APPROVAL_TAG, decision)):
            client.set_model_version_tag(model_name, version, key, value)
        return f"{model_name} version {version} {decision} by {who} at {at}", True

    def load_model(self, model_name: str, version: str, extra_trusted_types: Sequence[str] | None = None) -> Any:
        """The fitted pipeline of a version, deserialized by skops with the platform's trusted types.

        The trusted types are the platform's own, the version's ``mlops.skops_trusted_types`` tag
        (written by log_model and by the import from the platform's spec) and ``extra_trusted_types``;
        never the list in the model's MLmodel file. Other formats (pickle, cloudpickle) are refused:
        loading them runs whatever code the file holds. Versions logged before the tag existed are
        loaded with the list their MLmodel records, which this platform wrote.
        """
        import tempfile

        from mlflow.artifacts import download_artifacts

        self._mlflow()
        tags = self.version_tags(model_name, version)
        with tempfile.TemporaryDirectory(prefix="mlops-model-") as tmp:
            local = download_artifacts(f"models:/{model_name}/{version}", dst_path=tmp)
            flavor = sklearn_flavor(local, f"{model_name} version {version}")
            if TRUSTED_TYPES_TAG in tags:
                recorded = [t for t in tags[TRUSTED_TYPES_TAG].split(",") if t]
            else:
                recorded = list(flavor.get("skops_trusted_types") or [])
            import skops.io

            path = Path(local) / str(flavor["pickled_model"])
            return skops.io.load(path, trusted=trusted_types([*recorded, *(extra_trusted_types or [])]))

    def promote(
        self, model_name: str, version: str, expected_current: str | _Unchecked | None = UNCHECKED
    ) -> str | None:
        """Point champion at ``version``; the version remembers the champion it replaced.

        Compare-and-set when ``expected_current`` is given: the champion must still be that version
        (None: there must be no champion), the one the evaluation compared the challenger against;
        otherwise ChampionMovedError, and nothing changes. MLflow has no atomic alias update, so two
        promotions racing within the same few milliseconds can still both pass the check; the
        champion asset's ``mlflow`` pool serializes them when its limit is 1. Returns the champion
        replaced (None when there was none).
        """
        if not self.version_exists(model_name, version):
            raise RegistryError(f"cannot promote {model_name!r} version {version}: no such version in the registry")
        previous = self.alias_version(model_name, CHAMPION)
        # Promoting the version that is already champion is a no-op (a re-run of the same decision).
        if expected_current is not UNCHECKED and previous not in (expected_current, version):
            raise ChampionMovedError(
                f"{model_name!r}: the champion is version {previous or 'none'}, not version "
                f"{expected_current or 'none'} that the evaluation of version {version} compared against; "
                "the champion moved since (another run promoted or rolled back), so version "
                f"{version} was not promoted: evaluate it again against the current champion"
            )
        client = self.client()
        if previous is not None and previous != version:
            client.set_model_version_tag(model_name, version, PREVIOUS_CHAMPION_TAG, previous)
        client.set_registered_model_alias(model_name, CHAMPION, version)
        return previous

    def rollback_target(self, model_name: str) -> tuple[str, str]:
        """(current champion, the champion it replaced), or RegistryError saying why there is none."""
        current = self.alias_version(model_name, CHAMPION)
        if current is None:
            raise RegistryError(f"model {model_name!r} has no champion to roll back")
        previous = self.version_tags(model_name, current).get(PREVIOUS_CHAMPION_TAG)
        if previous is None:
            raise RegistryError(
                f"champion version {current} of {model_name!r} replaced no earlier champion; nothing to roll back to"
            )
        if previous == current:
            raise RegistryError(
                f"champion version {current} of {model_name!r} records itself as the champion it replaced "
                f"({PREVIOUS_CHAMPION_TAG}={previous}); nothing to roll back to"
            )
        if not self.version_exists(model_name, previous):
            raise RegistryError(
                f"champion version {current} of {model_name!r} replaced version {previous}, which is no longer "
                "in the registry (deleted); promote a version that exists instead"
            )
        return current, previous

    def rollback(self, model_name: str) -> tuple[str, str]:
        """Point champion back at the champion before the current one; return (from, to).

        Refuses (RegistryError, a ValueError) when there is no champion, it replaced none, or the
        version it replaced no longer exists; the champion is then left where it is.
        """
        current, previous = self.rollback_target(model_name)
        self.client().set_registered_model_alias(model_name, CHAMPION, previous)
        return current, previous


def trusted_types(extra: Sequence[str] | None = None) -> list[str]:
    """The platform's trusted types plus ``extra`` (a spec's), sorted and without duplicates."""
    return sorted({*PIPELINE_TRUSTED_TYPES, *(extra or [])})


def sklearn_flavor(model_dir: str | Any, where: str) -> dict[str, Any]:
    """The sklearn flavor of the MLflow model in ``model_dir``, when it is in the platform's format.

    The platform's format: an MLmodel with a ``sklearn`` flavor serialized with skops into a file
    inside the folder, no ``code`` paths (they are put on sys.path when loading), and a
    ``python_function`` flavor, if any, that loads through mlflow.sklearn. RegistryError otherwise.
    """
    import yaml

    root = Path(model_dir).resolve()
    mlmodel = root / "MLmodel"
    if not mlmodel.is_file():
        raise RegistryError(f"{where}: no MLmodel file, not an MLflow model")
    try:
        conf = yaml.safe_load(mlmodel.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RegistryError(f"{where}: MLmodel is not valid YAML ({exc.__class__.__name__})") from exc
    flavors = conf.get("flavors") if isinstance(conf, dict) else None
    if not isinstance(flavors, dict) or not isinstance(flavors.get("sklearn"), dict):
        raise RegistryError(f"{where}: not a scikit-learn model (MLmodel has no sklearn flavor)")
    unknown = sorted(set(flavors) - {"sklearn", "python_function"})
    if unknown:
        raise RegistryError(f"{where}: MLmodel has flavors {unknown}; the platform only writes sklearn models")
    flavor = flavors["sklearn"]
    fmt = flavor.get("serialization_format")
    if fmt != SKOPS_FORMAT:
        raise RegistryError(
            f"{where}: serialization format {fmt!r} refused; only {SKOPS_FORMAT!r} is accepted "
            "(pickle and cloudpickle run code from the file when loaded)"
        )
    pyfunc = flavors.get("python_function")
    if pyfunc is not None and (not isinstance(pyfunc, dict) or pyfunc.get("loader_module") != "mlflow.sklearn"):
        raise RegistryError(f"{where}: its python_function flavor does not load through mlflow.sklearn")
    for name, conf_ in flavors.items():
        if isinstance(conf_, dict) and conf_.get("code"):
            raise RegistryError(f"{where}: the {name} flavor ships code paths ({conf_['code']!r}); refused")
    pickled = flavor.get("pickled_model")
    path = (root / str(pickled)).resolve() if isinstance(pickled, str) else None
    if path is None or not path.is_relative_to(root) or not path.is_file():
        raise RegistryError(f"{where}: sklearn flavor's model file {pickled!r} is not a file inside the model folder")
    return dict(flavor)


def _serving_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "pandas", "numpy", "skops")]


def _predict_for_signature(pipeline: Any, frame: pd.DataFrame) -> Any:
    if hasattr(pipeline, "predict_proba"):
        return pipeline.predict_proba(frame)
    return pipeline.predict(frame)
