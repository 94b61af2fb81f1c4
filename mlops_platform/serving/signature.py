"""The model signature as the data lands: integer columns stay integers.

``compute_features`` casts every numeric feature to float64 (the features table is float), so an
input example taken from the training set makes MLflow record ``double`` for landed ``int64``
columns; MLflow's pyfunc then refuses int64 rows ("can not safely convert int64 to float64").
"""

from __future__ import annotations

from typing import Any


def landed_input_example(frame: Any, spec: Any, rows: int = 5) -> Any:
    """``rows`` feature rows of ``frame`` with every pass-through feature in its landed dtype.

    A pass-through feature (no ``compute``) of a landed ``int64`` column is cast back to int64, from
    rows where those columns are not null (an integer column cannot hold a null). Computed features
    keep the dtype their function gives.
    """
    import pandas as pd

    from mlops_platform.text import objects

    names = list(spec.feature_names)
    integer = [f.name for f in spec.features if f.compute is None and spec.source.events.get(f.name) == "int64"]
    example = frame[names]
    if integer:
        complete = example.dropna(subset=integer)
        example = complete if len(complete) else example
    example = example.head(rows).copy()
    for name in integer:
        if example[name].notna().all() and (example[name] % 1 == 0).all():
            example[name] = example[name].astype("int64")
    # Text as Python strings, the way a client's JSON arrives (MLflow infers the same string type).
    return objects(pd.DataFrame(example).reset_index(drop=True))
