"""The fitted preprocessing of a platform pipeline compiled into numpy array operations.

The platform builds every pipeline itself (``ml.training.build_pipeline``): a ColumnTransformer of
(median imputer -> standard scaler) on the numeric features and (constant imputer -> one-hot encoder)
on the categorical ones, in front of the estimator. Those fitted steps are a few arrays each, so a
request can skip pandas and the ColumnTransformer entirely. ``compile_pipeline`` refuses (raises
``Unsupported``) any step or setting it does not reproduce exactly; ``verify`` compares the compiled
path with the sklearn pipeline on a sample, and the loader falls back to the pipeline when either fails.

The estimator is compiled too where sklearn's own predict costs more than the arithmetic: a
logistic or linear head is one dot product, and a HistGradientBoosting model's trees are walked by
one compiled loop over flat node arrays (``serving.trees``).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_platform.serving.trees import TreeEnsemble, Unsupported, tree_ensemble

TOLERANCE = 1e-9


@dataclass(frozen=True)
class NumericBlock:
    """Columns -> float matrix: NaN replaced by the fitted statistics, then centred and scaled."""

    columns: tuple[str, ...]
    fill: np.ndarray | None
    mean: np.ndarray | None
    scale: np.ndarray | None

    @property
    def width(self) -> int:
        return len(self.columns)

    def transform(self, data: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        x = np.array([data[c] for c in self.columns], dtype=np.float64).T.reshape(n, len(self.columns))
        if self.fill is not None:
            mask = np.isnan(x)
            if mask.any():
                x = np.where(mask, self.fill, x)
        if self.mean is not None:
            x = x - self.mean
        if self.scale is not None:
            x = x / self.scale
        return x


@dataclass(frozen=True)
class CategoricalBlock:
    """Columns -> one-hot matrix: NaN replaced by the constant, each value looked up in its categories."""

    columns: tuple[str, ...]
    fill: Any
    lookups: tuple[dict[Any, int], ...]
    offsets: tuple[int, ...]
    width: int
    ignore_unknown: bool

    def transform(self, data: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        out = np.zeros(n * self.width, dtype=np.float64)
        fill, has_fill = self.fill, self.fill is not _NO_FILL
        ones: list[int] = []
        for column, lookup, offset in zip(self.columns, self.lookups, self.offsets, strict=True):
            values = data[column]
            if has_fill and set(map(type, values)) != {str}:
                values = [fill if isinstance(v, float) and v != v else v for v in values]  # v != v: NaN
            indices = list(map(lookup.get, values))
            positions = range(offset, n * self.width, self.width)  # each row's first column of this field
            if None in indices:
                if not self.ignore_unknown:
                    raise ValueError(f"field {column!r}: a category the model was not fitted on")
                ones += [p + i for p, i in zip(positions, indices, strict=True) if i is not None]
            else:
                ones += map(operator.add, positions, indices)
        out[ones] = 1.0
        return out.reshape(n, self.width)


_NO_FILL = object()


@dataclass(frozen=True)
class CompiledModel:
    """The preprocessing as array blocks, and the estimator's own prediction on the resulting matrix."""

    blocks: tuple[NumericBlock | CategoricalBlock, ...]
    estimator: Any
    head: str  # how the estimator is evaluated: "logistic", "linear", "trees" or "estimator"
    classifier: bool
    trees: TreeEnsemble | None = None

    def matrix(self, data: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        parts = [block.transform(data, n) for block in self.blocks]
        return parts[0] if len(parts) == 1 else np.hstack(parts)

    def predict(self, data: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        """Probabilities (n, classes) for a classifier, predictions (n,) for a regressor."""
        x = self.matrix(data, n)
        est = self.estimator
        if self.head == "logistic":
            z = x @ est.coef_[0] + est.intercept_[0]
            p = 1.0 / (1.0 + np.exp(-z))
            return np.column_stack([1.0 - p, p])
        if self.head == "linear":
            return x @ est.coef_ + est.intercept_
        if self.trees is not None:
            raw = self.trees.raw(x)
            # The estimator's own link: identity, exp, logistic or softmax, as its predict applies it.
            if self.classifier:
                return est._loss.predict_proba(raw)
            return est._loss.link.inverse(raw.ravel())
        if self.classifier:
            return est.predict_proba(x)
        return est.predict(x)


def _steps(transformer: Any) -> list[Any]:
    from sklearn.pipeline import Pipeline

    if isinstance(transformer, Pipeline):
        return [step for _, step in transformer.steps if step not in (None, "passthrough")]
    if transformer == "passthrough":
        return []
    return [transformer]


def _imputer(step: Any, where: str) -> Any:
    missing = step.missing_values
    if not (isinstance(missing, float) and math.isnan(missing)):
        raise Unsupported(f"{where}: SimpleImputer(missing_values={missing!r}) (only NaN is compiled)")
    if step.add_indicator:
        raise Unsupported(f"{where}: SimpleImputer(add_indicator=True)")
    return step.statistics_


def _numeric_block(columns: tuple[str, ...], steps: list[Any], where: str) -> NumericBlock:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    fill = mean = scale = None
    seen_scaler = False
    for step in steps:
        if isinstance(step, SimpleImputer) and not seen_scaler and fill is None:
            stats = np.asarray(_imputer(step, where), dtype=np.float64)
            if np.isnan(stats).any():
                # sklearn drops a column whose statistic is NaN (all-missing at fit): not reproduced.
                raise Unsupported(f"{where}: an imputer statistic is NaN (a column was empty at fit)")
            fill = stats
        elif isinstance(step, StandardScaler) and not seen_scaler:
            seen_scaler = True
            mean = np.asarray(step.mean_, dtype=np.float64) if step.with_mean else None
            scale = np.asarray(step.scale_, dtype=np.float64) if step.with_std else None
        else:
            raise Unsupported(f"{where}: step {type(step).__name__} on numeric columns")
    if fill is None:
        # Without an imputer, NaN reaches the estimator exactly as in the pipeline.
        fill = None
    return NumericBlock(columns=columns, fill=fill, mean=mean, scale=scale)


def _categorical_block(columns: tuple[str, ...], steps: list[Any], where: str) -> CategoricalBlock:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    fill: Any = _NO_FILL
    encoder = None
    for step in steps:
        if isinstance(step, SimpleImputer) and encoder is None and fill is _NO_FILL:
            if step.strategy != "constant":
                raise Unsupported(f"{where}: SimpleImputer(strategy={step.strategy!r}) on categorical columns")
            stats = _imputer(step, where)
            values = set(stats.tolist())
            if len(values) != 1:
                raise Unsupported(f"{where}: imputer fills differ per column")
            fill = values.pop()
        elif isinstance(step, OneHotEncoder) and encoder is None:
            encoder = step
        else:
            raise Unsupported(f"{where}: step {type(step).__name__} on categorical columns")
    if encoder is None:
        raise Unsupported(f"{where}: categorical columns without a OneHotEncoder")
    if encoder.drop is not None:
        raise Unsupported(f"{where}: OneHotEncoder(drop={encoder.drop!r})")
    if getattr(encoder, "_infrequent_enabled", False):
        raise Unsupported(f"{where}: OneHotEncoder with infrequent categories")
    if encoder.handle_unknown not in ("ignore", "error"):
        raise Unsupported(f"{where}: OneHotEncoder(handle_unknown={encoder.handle_unknown!r})")
    lookups, offsets, offset = [], [], 0
    for categories in encoder.categories_:
        values = categories.tolist()
        if any(isinstance(v, float) and math.isnan(v) for v in values):
            raise Unsupported(f"{where}: NaN is a fitted category")
        lookups.append({value: i for i, value in enumerate(values)})
        offsets.append(offset)
        offset += len(values)
    return CategoricalBlock(
        columns=columns,
        fill=fill,
        lookups=tuple(lookups),
        offsets=tuple(offsets),
        width=offset,
        ignore_unknown=encoder.handle_unknown == "ignore",
    )


def _head(estimator: Any, classifier: bool) -> str:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression

    if isinstance(estimator, LogisticRegression) and classifier and len(estimator.classes_) == 2:
        return "logistic"
    if isinstance(estimator, LinearRegression) and not classifier and np.ndim(estimator.coef_) == 1:
        return "linear"
    if isinstance(estimator, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        return "trees"
    return "estimator"


def compile_pipeline(pipeline: Any, numeric: Sequence[str], categorical: Sequence[str]) -> CompiledModel:
    """The compiled form of a fitted ``Pipeline([("preprocess", ColumnTransformer), ..., estimator])``.

    ``numeric`` / ``categorical`` are the spec's feature kinds: a block is numeric when all its
    columns are. Raises ``Unsupported`` naming the first step or setting it cannot reproduce.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        raise Unsupported(f"{type(pipeline).__name__}: not a two-step Pipeline (preprocess, estimator)")
    preprocess, estimator = pipeline.steps[0][1], pipeline.steps[-1][1]
    if not isinstance(preprocess, ColumnTransformer):
        raise Unsupported(f"first step {type(preprocess).__name__} is not a ColumnTransformer")
    numeric_set, categorical_set = set(numeric), set(categorical)
    blocks: list[NumericBlock | CategoricalBlock] = []
    for name, transformer, columns in preprocess.transformers_:
        if transformer == "drop":
            continue
        if isinstance(columns, slice) or not all(isinstance(c, str) for c in columns):
            raise Unsupported(f"transformer {name!r}: columns not selected by name")
        cols = tuple(columns)
        if not cols:
            continue
        where = f"transformer {name!r}"
        if name == "remainder":
            raise Unsupported(f"{where}: remainder={transformer!r}")
        steps = _steps(transformer)
        if set(cols) <= numeric_set:
            blocks.append(_numeric_block(cols, steps, where))
        elif set(cols) <= categorical_set:
            blocks.append(_categorical_block(cols, steps, where))
        else:
            raise Unsupported(f"{where}: mixes numeric and categorical columns")
    if not blocks:
        raise Unsupported("the ColumnTransformer selects no column")
    classifier = hasattr(estimator, "predict_proba")
    head = _head(estimator, classifier)
    trees = tree_ensemble(estimator, sum(block.width for block in blocks)) if head == "trees" else None
    return CompiledModel(blocks=tuple(blocks), estimator=estimator, head=head, classifier=classifier, trees=trees)


def sample(
    compiled_or_pipeline: Any, numeric: Sequence[str], categorical: Sequence[str], rows: int = 48
) -> dict[str, list[Any]]:
    """Rows exercising every branch of the preprocessing: values around each fitted mean, NaN,
    every fitted category, an unknown category, NaN and None for categoricals. Deterministic."""
    rng = np.random.default_rng(0)
    data: dict[str, list[Any]] = {}
    categories: dict[str, list[Any]] = {}
    try:
        for _, transformer, columns in compiled_or_pipeline.steps[0][1].transformers_:
            for step in _steps(transformer):
                if hasattr(step, "categories_"):
                    for column, cats in zip(columns, step.categories_, strict=False):
                        categories[column] = cats.tolist()
    except (AttributeError, TypeError, IndexError):
        pass
    for column in numeric:
        values = list(rng.normal(0.0, 50.0, rows))
        values[::7] = [math.nan] * len(values[::7])
        data[column] = [float(v) for v in values]
    for column in categorical:
        pool = [*categories.get(column, ["a", "b"]), "__never_seen__", math.nan, None]
        data[column] = [pool[i % len(pool)] for i in range(rows)]
    return data


def verify(
    compiled: CompiledModel,
    reference: Callable[[dict[str, list[Any]], int], np.ndarray],
    data: dict[str, list[Any]],
    n: int,
) -> float:
    """The largest absolute difference between the compiled path and ``reference`` on ``data``: the
    whole sample, and each row alone (the request path's usual batch)."""
    want = np.asarray(reference(data, n), dtype=np.float64)
    worst = _difference(compiled.predict(data, n), want)
    for i in range(n):
        row = {name: values[i : i + 1] for name, values in data.items()}
        worst = max(worst, _difference(compiled.predict(row, 1), want[i : i + 1]))
    return worst


def _difference(got: Any, want: np.ndarray) -> float:
    got = np.asarray(got, dtype=np.float64)
    if got.shape != want.shape:
        raise Unsupported(f"compiled output has shape {got.shape}, the pipeline's {want.shape}")
    if not np.isfinite(got).all() or not np.isfinite(want).all():
        return math.inf
    return float(np.max(np.abs(got - want))) if got.size else 0.0
