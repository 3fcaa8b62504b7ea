"""Run ``python -m chimera ...`` in this process and write its peak RSS on exit.

``python -m bench.peak ARGS...`` is ``python -m chimera ARGS...`` that, on exit, writes the
process's ``VmHWM`` (peak resident set, KiB) to the file ``$CHIMERA_BENCH_PEAK_FILE``.
``VmHWM`` belongs to the process's own memory image, made at ``exec``; ``ru_maxrss`` from
``wait4`` would not do, as Linux carries over the parent's resident set at ``fork`` into it
(a bench process holding a large index would show as the child's peak).
"""

from __future__ import annotations

import atexit
import os
import runpy
import sys
from pathlib import Path


def _write_peak() -> None:
    target = os.environ.get("CHIMERA_BENCH_PEAK_FILE")
    if not target:
        return
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            Path(target).write_text(line.split()[1])


if __name__ == "__main__":
    atexit.register(_write_peak)
    sys.argv = ["chimera", *sys.argv[1:]]
    runpy.run_module("chimera", run_name="__main__", alter_sys=True)
