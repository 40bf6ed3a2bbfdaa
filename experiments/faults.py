"""Fault-injection points for crash-safety tests: pause a writer where a crash hurts most.

The runner calls :func:`pause_point` at the moments a crash could corrupt its files (inside a
results write, between a checkpoint's temporary file and its ``os.replace``). Normally this is one
environment lookup. With ``NEUROSIM_PAUSE_AT=<point>`` (or ``<point>@<step>``) in the
environment, the process writes its PID to ``$NEUROSIM_PAUSE_FILE`` (when set) and sleeps there
forever, so a test can SIGKILL it at exactly that point and check that the run resumes
bit-identical. Points:

* ``results.write``: inside the HDF5 edit of a metrics flush, after the rows are written and
  flushed to the file being edited (the in-memory copy) and before it replaces ``results.h5``
  (step = the last row's step);
* ``checkpoint.replace``: after the checkpoint's temporary file is written and synced, before it
  is renamed into place (step = the checkpoint's step).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

PAUSE_ENV = "NEUROSIM_PAUSE_AT"
PAUSE_FILE_ENV = "NEUROSIM_PAUSE_FILE"


def pause_point(
    point: str, step: int | None = None, prepare: Callable[[], object] | None = None
) -> None:
    """Sleep forever here if ``$NEUROSIM_PAUSE_AT`` names this point (and step).

    ``prepare`` runs first when pausing (e.g. flushing an open HDF5 file, so that whatever the
    writer has written so far really is in its file when the process is killed).
    """
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return
    name, _, at = spec.partition("@")
    if name != point or (at and (step is None or int(at) != step)):
        return
    if prepare is not None:
        prepare()
    marker = os.environ.get(PAUSE_FILE_ENV)
    if marker:
        tmp = Path(marker + ".tmp")
        tmp.write_text(str(os.getpid()))
        os.replace(tmp, marker)
    while True:  # pragma: no cover - ended by the test's SIGKILL
        time.sleep(1.0)
