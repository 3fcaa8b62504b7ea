"""Figures of each fault run, appended as JSON lines so that they can be quoted.

Default path ``.chimera/reliability/results.jsonl`` (git-ignored); the
``RELIABILITY_RESULTS`` environment variable names another file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from tests.reliability.harness.procs import PROJECT_ROOT


def results_path() -> Path:
    configured = os.environ.get("RELIABILITY_RESULTS")
    return Path(configured) if configured else PROJECT_ROOT / ".chimera/reliability/results.jsonl"


def record(fault: str, test: str, *, happened: str, **figures: Any) -> dict[str, Any]:
    """Append one line: which fault, what happened, and the numbers measured."""
    line = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "fault": fault}
    line |= {"test": test, "happened": happened} | figures
    path = results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(line, default=str) + "\n")
    return line
