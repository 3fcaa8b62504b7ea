"""Run every benchmark scenario and write ``bench/results.json`` and ``docs/performance.md``.

Every scenario runs on one scratch stack (its own database, Redis key prefix, Celery queue,
Kafka broker and simulator; see ``bench/stack.py``) and reports each figure as the median of
its repetitions with their spread, beside a baseline measured in the same run, and the ratio
of the two.  Missing a target is reported, not an error: the exit status is non-zero only
when a scenario crashes.

``bench/results.json`` is the committed record the table is generated from: each scenario
run replaces its own entry (saved as soon as it finishes), the others keep theirs, so
``--only`` updates one scenario's rows and an interrupted run keeps what it finished.

    PYTHONPATH=. .venv/bin/python bench/run.py [--quick] [--only SCENARIO]...
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from bench import results
from bench.common import scratch_environment
from bench.stack import Stack

#: Run order: cheap scenarios first, the long LLM-bound ones after.
SCENARIOS = (
    "llm_layer",
    "linear_time",
    "near_duplicates",
    "turns",
    "scale_out",
    "bridge",
    "analysis_kafka",
    "analysis_sync",
    "throughput",
    "provider_limit",
    "backlog_limit",
    "budget_overshoot",
    "quality_cpu",
    "job_stream",  # last: its jobs' first events stay on conversation.new, for no bridge
)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def run_scenario(module: ModuleType, stack: Stack, quick: bool, command: str) -> dict[str, Any]:
    """One scenario, timed, with the machine's load around it; a crash is recorded."""
    entry: dict[str, Any] = {
        "command": command,
        "started_at": _now(),
        "quick": quick,
        "cpus": os.cpu_count(),
        "load_average_1m": [_load()],
    }
    t0 = time.monotonic()
    print(f"-- {module.NAME}: started {entry['started_at']}", flush=True)
    try:
        outcome: results.Outcome = module.run(stack, quick)
        entry |= {"repetitions": outcome.repetitions, "rows": [r.to_json() for r in outcome.rows]}
    except Exception as exc:
        traceback.print_exc()
        entry |= {"error": f"{type(exc).__name__}: {exc}", "rows": []}
    finally:
        with contextlib.suppress(Exception):
            stack.purge()
    entry["seconds"] = round(time.monotonic() - t0, 1)
    entry["load_average_1m"].append(_load())
    print(f"-- {module.NAME}: {entry['seconds']:.0f}s", flush=True)
    return entry


def _record(data: dict[str, Any], command: str, started: str, t0: float, names: list[str]) -> None:
    """Write ``bench/results.json`` and the table of ``docs/performance.md`` as they stand."""
    data["scenarios"] = {n: data["scenarios"][n] for n in SCENARIOS if n in data["scenarios"]}
    data["run"] = {
        "command": command,
        "started_at": started,
        "seconds": round(time.monotonic() - t0, 1),
        "cpus": os.cpu_count(),
        "scenarios": names,
    }
    results.save(data)
    results.write_doc(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and events")
    parser.add_argument(
        "--only",
        action="append",
        choices=SCENARIOS,
        metavar="SCENARIO",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    args = parser.parse_args(argv)
    names = [n for n in SCENARIOS if not args.only or n in args.only]
    command = shlex.join(["bench/run.py", *(argv if argv is not None else sys.argv[1:])])

    started, t0 = _now(), time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="chimera-bench-"))
    # The committed record: each scenario run replaces its own entry, the others are kept
    # (with the date and command of the run they come from).
    data = results.load()
    crashed = False
    try:
        with scratch_environment(), contextlib.ExitStack() as exits:
            stack = Stack(logs, exits)
            for name in names:
                module = importlib.import_module(f"bench.scenarios.{name}")
                entry = run_scenario(module, stack, args.quick, command)
                entry["run_started_at"] = started
                crashed |= "error" in entry
                data["scenarios"][name] = entry
                _record(data, command, started, t0, names)  # an interrupted run keeps it
    except BaseException:
        print(f"logs kept in {logs}", file=sys.stderr)
        raise
    _record(data, command, started, t0, names)
    if crashed:
        print(f"logs kept in {logs}", file=sys.stderr)
    else:
        shutil.rmtree(logs, ignore_errors=True)
    print()
    print(results.summary(data))
    print(f"\n{data['run']['seconds']:.0f}s; wrote bench/results.json and docs/performance.md")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
