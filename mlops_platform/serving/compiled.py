"""The fitted preprocessing of a platform pipeline compiled into numpy array operations.

The platform builds every pipeline itself (``ml.training.build_pipeline``): a ColumnTransformer of
(median imputer -> standard scaler) on the numeric features and (constant imputer -> one-hot encoder)
on the categorical ones, in front of the estimator. Those fitted steps are a few arrays each, so a
request can skip pandas and the ColumnTransformer entirely. ``compile_pipeline`` refuses (raises
``Unsupported``) any step or setting it does not reproduce exactly; ``verify`` compares the compiled
path with the sklearn pipeline on a sample, and the loader falls back to the pipeline when either fails.

The estimator is compiled too where sklearn's own predict costs more than the arithmetic: a
logistic or linear head is one dot product, and a HistGradientBoosting model's trees become flat node
arrays walked level by level for every tree at once (``TreeEnsemble``). sklearn walks its 150 trees
one Cython call each, about 6 us per tree whatever the batch size (0.9 ms for one row); the level walk
takes 0.07 ms for one row and 0.8 ms for 100 (sklearn: 0.9 and 1.8 ms); from a few hundred rows sklearn's
walk wins, so batches over 256 rows use it.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

TOLERANCE = 1e-9


class Unsupported(ValueError):
    """A pipeline step or setting the compiled path does not reproduce; the message names it."""


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
class TreeEnsemble:
    """A fitted HistGradientBoosting model's trees as flat node arrays.

    Node ``i`` of tree ``t`` has the id ``2 * (t * width + i)``: ``children[id + 1]`` is its right child's
    id and ``children[id]`` its left one's (a leaf's are its own), so a step is ``children[id + right]``.
    A split sends a row right when its value is above the threshold (NaN: right when the split's missing
    values go right), as sklearn's ``_predict_from_raw_data`` does. The trees are held shallowest first,
    so a level only walks the trees deeper than it (the suffix from ``finished[level]`` on): 150 trees of
    depth 19 at most and 11 on average walk 57% of the nodes a full walk would. Leaf values are then put
    back in boosting order and summed from the baseline, as ``_raw_predict`` adds them, so the sum is
    sklearn's to the last bit. ``ndarray.take`` gathers: for 100 rows it is twice as fast as indexing.
    """

    feature: np.ndarray  # by id: the feature index of each split (0 on leaves)
    threshold: np.ndarray  # by id, float64
    children: np.ndarray  # by id + (0 left, 1 right): the child's id
    nan_right: np.ndarray  # by id, bool
    value: np.ndarray  # by id: leaf values
    roots: np.ndarray  # (trees,) root ids, shallowest tree first
    finished: tuple[int, ...]  # per level: how many trees (of the shallowest first) have no split there
    boosting_order: np.ndarray  # (trees,) position in ``roots`` of each tree, in boosting order
    per_output: tuple[np.ndarray, ...]  # the boosting-order trees of each output column
    baseline: np.ndarray  # (outputs,)
    # Batches above this many rows go through the estimator's own predict (faster there, see above).
    max_rows: int = 256

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The raw predictions (n, outputs): baseline plus the leaf values, as ``_raw_predict``."""
        n, width = x.shape
        trees = len(self.roots)
        flat = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
        row_start = (np.arange(n, dtype=np.intp) * width)[:, None] if n > 1 else None
        has_nan = bool(np.isnan(flat).any())
        feature, threshold, children, value = self.feature, self.threshold, self.children, self.value
        leaves = np.empty((n, trees), dtype=np.float64)
        node = np.broadcast_to(self.roots, (n, trees))
        done = 0
        for finished in self.finished:
            if finished > done:
                leaves[:, done:finished] = value.take(node[:, : finished - done])
                node, done = node[:, finished - done :], finished
            where = feature.take(node)
            if row_start is not None:
                where += row_start
            values = flat.take(where)
            right = values > threshold.take(node)
            if has_nan:
                right |= np.isnan(values) & self.nan_right.take(node)
            node = children.take(node + right)
        leaves[:, done:] = value.take(node)
        leaves = leaves[:, self.boosting_order]
        out = np.empty((n, len(self.per_output)), dtype=np.float64)
        for k, columns in enumerate(self.per_output):
            terms = np.empty((n, len(columns) + 1), dtype=np.float64)
            terms[:, 0] = self.baseline[k]
            terms[:, 1:] = leaves[:, columns]
            # cumsum adds left to right, in the order sklearn's loop adds the trees.
            out[:, k] = np.cumsum(terms, axis=1)[:, -1]
        return out


def _tree_ensemble(estimator: Any, width: int) -> TreeEnsemble:
    """The trees of a fitted HistGradientBoosting{Regressor,Classifier}; Unsupported for what the
    level walk does not reproduce (native categorical splits, a feature count that does not match)."""
    if getattr(estimator, "_preprocessor", None) is not None or getattr(estimator, "is_categorical_", None) is not None:
        raise Unsupported(f"{type(estimator).__name__} with native categorical features")
    if int(estimator.n_features_in_) != width:
        raise Unsupported(
            f"{type(estimator).__name__} expects {estimator.n_features_in_} features, the preprocessing makes {width}"
        )
    outputs = int(estimator.n_trees_per_iteration_)
    predictors = [tree for iteration in estimator._predictors for tree in iteration]
    if not predictors:
        raise Unsupported(f"{type(estimator).__name__} has no trees")
    size = max(len(tree.nodes) for tree in predictors)
    ids = 2 * size * len(predictors)
    feature = np.zeros(ids, dtype=np.intp)
    threshold = np.zeros(ids, dtype=np.float64)
    children = np.zeros(ids, dtype=np.intp)
    nan_right = np.zeros(ids, dtype=bool)
    value = np.zeros(ids, dtype=np.float64)
    depths = np.zeros(len(predictors), dtype=np.intp)
    for t, tree in enumerate(predictors):
        nodes = tree.nodes
        if nodes["is_categorical"].any():
            raise Unsupported(f"{type(estimator).__name__}: a categorical split")
        base = t * size
        node_id = 2 * (base + np.arange(len(nodes), dtype=np.intp))
        leaf = nodes["is_leaf"].astype(bool)
        split_feature = nodes["feature_idx"].astype(np.intp)
        if (split_feature[~leaf] >= width).any() or (split_feature[~leaf] < 0).any():
            raise Unsupported(f"{type(estimator).__name__}: a split on a feature outside the matrix")
        feature[node_id] = np.where(leaf, 0, split_feature)
        threshold[node_id] = nodes["num_threshold"]
        children[node_id] = np.where(leaf, node_id, 2 * (base + nodes["left"].astype(np.intp)))
        children[node_id + 1] = np.where(leaf, node_id, 2 * (base + nodes["right"].astype(np.intp)))
        nan_right[node_id] = ~nodes["missing_go_to_left"].astype(bool)
        value[node_id] = nodes["value"]
        depths[t] = int(nodes["depth"].max())
    baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).reshape(-1)
    if baseline.shape != (outputs,):
        raise Unsupported(f"{type(estimator).__name__}: baseline of shape {baseline.shape} for {outputs} outputs")
    shallow_first = np.argsort(depths, kind="stable")
    return TreeEnsemble(
        feature=feature,
        threshold=threshold,
        children=children,
        nan_right=nan_right,
        value=value,
        roots=shallow_first.astype(np.intp) * (2 * size),
        finished=tuple(int((depths <= level).sum()) for level in range(int(depths.max()))),
        boosting_order=np.argsort(shallow_first, kind="stable").astype(np.intp),
        per_output=tuple(np.arange(k, len(predictors), outputs, dtype=np.intp) for k in range(outputs)),
        baseline=baseline,
    )


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
        if self.trees is not None and n <= self.trees.max_rows:
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
    trees = _tree_ensemble(estimator, sum(block.width for block in blocks)) if head == "trees" else None
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
    whole sample, each row alone (the request path's usual batch), and the sample repeated past the
    batch size where a compiled estimator hands over to its own predict."""
    want = np.asarray(reference(data, n), dtype=np.float64)
    worst = _difference(compiled.predict(data, n), want)
    for i in range(n):
        row = {name: values[i : i + 1] for name, values in data.items()}
        worst = max(worst, _difference(compiled.predict(row, 1), want[i : i + 1]))
    if compiled.trees is not None:
        times = compiled.trees.max_rows // max(n, 1) + 1
        tiled = {name: list(values) * times for name, values in data.items()}
        worst = max(worst, _difference(compiled.predict(tiled, n * times), np.concatenate([want] * times)))
    return worst


def _difference(got: Any, want: np.ndarray) -> float:
    got = np.asarray(got, dtype=np.float64)
    if got.shape != want.shape:
        raise Unsupported(f"compiled output has shape {got.shape}, the pipeline's {want.shape}")
    if not np.isfinite(got).all() or not np.isfinite(want).all():
        return math.inf
    return float(np.max(np.abs(got - want))) if got.size else 0.0
