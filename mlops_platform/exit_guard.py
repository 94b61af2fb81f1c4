"""Protects finished work from delta-rs aborting at interpreter exit.

A process that used deltalake can abort during interpreter teardown ("terminate called without an
active exception", exit code 134; delta-rs issue 2184) after all of its work is done. The abort
happens while Python tears down native runtime threads, so the guard is to not tear down: flush what
Python would flush, then leave with the real exit code through ``os._exit``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys


def exit_now(code: int) -> None:
    """Flush stdio and logging, then end the process with ``code`` without interpreter teardown."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        # A closed stream has nothing left to flush.
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
