"""Text columns are pandas' Arrow-backed ``str`` dtype, from the landed file to the Delta table and back.

The dtype pandas 3 gives every text column by default (``pd.StringDtype("pyarrow", na_value=np.nan)``:
missing values are NaN, comparisons give plain bools). Held as Arrow strings, a text column crosses
between pandas and Arrow without building or reading one Python object per value: a Delta write of a
million-row frame converted its object text columns for about 0.15 s, a read back for 0.08 s, and the
family writes and reads five such tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

TEXT = pd.StringDtype("pyarrow", na_value=np.nan)


def pandas_type(arrow_type: Any) -> Any:
    """``types_mapper`` for ``pyarrow.Table.to_pandas``: Arrow text as TEXT, every other type as pyarrow does."""
    import pyarrow as pa

    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type):
        return TEXT
    return None


def as_text(values: pd.Series) -> pd.Series:
    """``values`` as TEXT when they are text (or all missing); anything else unchanged.

    For a column computed by a user's function, which may return object text or, say, integer codes.
    """
    if values.dtype == TEXT:
        return values
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values.astype(TEXT)
    return values


def column_values(values: pd.Series) -> Any:
    """The values of ``values`` without its index, for a new frame: Arrow text stays Arrow text."""
    return values.array if values.dtype == TEXT else values.to_numpy()


def objects(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its TEXT columns as Python strings (object), for code that works on those: scikit-
    learn's imputers and encoders turn Arrow text into objects value by value, several times over.

    Converted by Arrow, which builds each distinct string once (a low-cardinality column of a million
    rows in about 7 ms; pandas' ``astype(object)`` takes 40).
    """
    text = [name for name, dtype in frame.dtypes.items() if dtype == TEXT]
    if not text:
        return frame
    return frame.assign(**{str(name): object_values(frame[name]) for name in text})


def object_values(values: pd.Series) -> pd.Series:
    """A TEXT series as Python strings (object), missing values as NaN; any other series unchanged."""
    import pyarrow as pa

    if values.dtype != TEXT:
        return values
    converted = pa.array(values.array).to_pandas().to_numpy()
    missing = values.isna().to_numpy()
    if missing.any():  # Arrow gives None; NaN is what scikit-learn's imputers take as missing
        converted[missing] = np.nan
    return pd.Series(converted, index=values.index, name=values.name, dtype=object)
