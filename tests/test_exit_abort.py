"""delta-rs issue 2184: a process that read Delta through pyarrow's threads could abort at exit (134).

The platform reads through delta-rs's own engine instead. Each process here writes, pins and reads
tables the way the IO manager does, then exits normally; before the change about half aborted.
"""

import subprocess
import sys

SCRIPT = """
import datetime as dt, sys, pandas as pd
from mlops_platform.storage.delta import write_table, read_table, read_days_at_versions
uri = sys.argv[1]
days = [dt.date(2026, 10, d) for d in (1, 2, 3)]
versions = {}
for d in days:
    frame = pd.DataFrame({"x": range(2000), "ts": pd.Timestamp(d), "day": d})
    versions[d] = write_table(uri, frame, days=[d]).version
assert len(read_days_at_versions(uri, versions)) == 6000
assert len(read_table(uri, versions[days[-1]], days=days[:1])) == 2000
"""


def test_processes_that_use_delta_exit_cleanly(tmp_path) -> None:
    runs = 16
    procs = [
        subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path / f"t{i}")], stderr=subprocess.PIPE, text=True)
        for i in range(runs)
    ]
    codes = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in codes] == [0] * runs, [err[-300:] for code, err in codes if code]
