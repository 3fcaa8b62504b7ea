"""The soak: the local stack under a steady stream of events, with a fault every few minutes.

    make soak                                     # defaults: 3000 events over 30 minutes
    make soak SOAK_ARGS="--events 300 --minutes 3 --fault-every-s 40"
    .venv/bin/python -m soak.run --help

It runs in a world of its own (``.chimera/soak``): a private ``redis-server`` on a free
port (so it may be killed and wiped), the database ``chimera_soak`` on the machine's
Postgres (dropped and migrated at the start, kept afterwards for inspection), its own key
prefix and Celery queue, and the local stack (``chimera.stack``: simulator, Kafka broker,
worker, Flower, beat, bridge, web) on free ports.  Provider keys are ignored: the
simulator answers every LLM call.

It publishes ``--events`` records to ``conversation.new`` and ``analysis.tasks`` at a
steady rate over ``--minutes``: conversations of ``--min-turns``..``--max-turns`` turns,
a share of analyses, of exact duplicates and of poison records.  Every
``--fault-every-s`` seconds it injects the next fault of ``--faults`` (``soak/faults.py``).
Then it waits (at most ``--drain-timeout-s``) until every event is done or dead-lettered,
prints the report and writes it as JSON to ``--out``.  One progress line every
``--progress-every-s`` seconds.

The exit status is 1 if an event was lost or duplicated, 0 otherwise.  Everything it
started is stopped at the end, on Ctrl-C and on errors.  Settings not fixed by the soak
can be given in the environment as usual (e.g. ``CHIMERA_RECONCILE_AFTER_S``, whose soak
default is 60 s so that work lost to a fault is re-driven within the run).
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from chimera.db import admin
from chimera.db.engine import make_engine
from chimera.errors import ChimeraError
from chimera.settings import Settings
from chimera.settings_values import redact_url
from soak import report, table
from soak.environment import DEFAULT_STATE_DIR, SoakStack, apply_environment, free_ports
from soak.faults import ROTATION, FaultOptions, Faults, sim_calls
from soak.monitor import Monitor
from soak.workload import Mix, Publisher, plan


def echo(line: str) -> None:
    click.echo(f"{time.strftime('%H:%M:%S')} {line}")


@click.command()
@click.option("--events", type=click.IntRange(min=1), default=3000, show_default=True)
@click.option(
    "--minutes",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Publishing time; events go out at a steady rate over it.",
)
@click.option("--fault-every-s", type=click.FloatRange(min=5), default=180.0, show_default=True)
@click.option(
    "--faults",
    default=",".join(ROTATION),
    show_default=True,
    help="The rotation, comma-separated (redis_restart_empty runs once).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON report  [default: <state dir>/results.json]",
)
@click.option("--analysis-share", type=click.FloatRange(0, 1), default=0.1, show_default=True)
@click.option("--poison-share", type=click.FloatRange(0, 1), default=0.02, show_default=True)
@click.option("--duplicate-share", type=click.FloatRange(0, 1), default=0.01, show_default=True)
@click.option("--min-turns", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--max-turns", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--sim-ttft-ms", type=click.FloatRange(min=0), default=150.0, show_default=True)
@click.option("--sim-ms-per-token", type=click.FloatRange(min=0), default=2.0, show_default=True)
@click.option("--drain-timeout-s", type=click.FloatRange(min=10), default=900.0, show_default=True)
@click.option("--progress-every-s", type=click.FloatRange(min=1), default=15.0, show_default=True)
@click.option("--sample-every-s", type=click.FloatRange(min=1), default=5.0, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE_DIR,
    show_default=True,
)
def main(**opts: Any) -> None:
    """Soak the local stack: thousands of events, a fault every few minutes, a report."""
    if opts["min_turns"] > opts["max_turns"]:
        raise click.BadParameter("must be <= --max-turns", param_hint="--min-turns")
    if opts["analysis_share"] + opts["poison_share"] + opts["duplicate_share"] > 1:
        raise click.BadParameter("the shares add up to more than 1")
    rotation = tuple(f.strip() for f in opts["faults"].split(",") if f.strip())
    unknown = set(rotation) - set(ROTATION)
    if unknown:
        raise click.BadParameter(
            f"unknown {sorted(unknown)}; known: {', '.join(ROTATION)}", param_hint="--faults"
        )
    state_dir: Path = opts["state_dir"].resolve()
    out: Path = opts["out"] or state_dir / "results.json"
    settings = apply_environment(
        state_dir,
        free_ports(),
        sim_ttft_ms=opts["sim_ttft_ms"],
        sim_ms_per_token=opts["sim_ms_per_token"],
    )
    _terminate_as_interrupt()
    soak = SoakStack(settings)
    try:
        result = _run(soak, settings, opts, rotation)
    except KeyboardInterrupt:
        echo("interrupted: stopping everything the soak started")
        sys.exit(130)
    except ChimeraError as exc:
        echo(f"soak failed: {exc}")
        sys.exit(1)
    finally:
        # A second Ctrl-C must not leave half the stack running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        echo("stopping the soak's stack and Redis")
        for line in soak.down():
            echo(f"  {line}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    click.echo("")
    for line in table.table(result):
        click.echo(line)
    database = redact_url(settings.database_url.get_secret_value())
    click.echo(f"\nreport written to {out}; logs in {settings.log_dir}; database {database}")
    sys.exit(0 if result["verdict"]["ok"] else 1)


def _terminate_as_interrupt() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _run(
    soak: SoakStack, settings: Settings, opts: dict[str, Any], rotation: tuple[str, ...]
) -> dict[str, Any]:
    echo(f"soak state in {settings.state_dir}; logs in {settings.log_dir}")
    # Leftovers of an earlier soak that did not get to clean up (pid records of its own).
    soak.down()
    soak.redis.wipe()
    shutil.rmtree(settings.log_dir, ignore_errors=True)  # this run's logs only
    soak.redis.start()
    echo(f"redis     started    private redis-server on 127.0.0.1:{settings.redis_port}")
    url = settings.database_url.get_secret_value()
    admin.drop_database(url)
    admin.upgrade(settings)
    for line in soak.up():
        echo(line)
    sim_url = f"http://{settings.sim_host}:{settings.sim_port}"
    engine = make_engine(settings)
    run_tag = time.strftime("%H%M%S")
    mix = Mix(
        events=opts["events"],
        analysis_share=opts["analysis_share"],
        poison_share=opts["poison_share"],
        duplicate_share=opts["duplicate_share"],
        min_turns=opts["min_turns"],
        max_turns=opts["max_turns"],
        seed=opts["seed"],
    )
    records = plan(settings, mix, run_tag)
    rate = len(records) / (opts["minutes"] * 60)
    publisher = Publisher(settings, records, rate)
    faults = Faults(soak, rotation, FaultOptions(), sim_url)
    monitor = Monitor(
        soak,
        engine,
        published=publisher.log,
        planned=len(records),
        faults=faults.done,
        echo=echo,
        sample_every_s=opts["sample_every_s"],
        progress_every_s=opts["progress_every_s"],
    )
    echo(
        f"publishing {len(records)} records over {opts['minutes']:g} min ({rate:.2f}/s);"
        f" a fault every {opts['fault_every_s']:g}s: {', '.join(rotation) or 'none'}"
    )
    started = time.time()
    try:
        publisher.start()
        monitor.start()
        _inject_while_publishing(publisher, faults, opts["fault_every_s"])
        published_at = time.time()
        if publisher.error is not None:
            raise SoakError(f"the publisher stopped: {publisher.error}")
        echo(f"published {publisher.log.count()} records; waiting for every event to settle")
        quiet = _wait_quiet(engine, publisher, monitor, opts["drain_timeout_s"])
        drained_at = time.time()
        echo("quiet" if quiet else "not quiet before --drain-timeout-s; reporting what settled")
    finally:
        publisher.stopping.set()
        monitor.stopping.set()
        monitor.join(timeout=30)
    try:
        sim: dict[str, Any] | None = sim_calls(sim_url)
    except OSError:
        sim = None
    echo("collecting the report (Postgres, Kafka, simulator, Redis)")
    try:
        return report.build(
            settings,
            engine,
            published=publisher.log.records(),
            placed=publisher.log.placements(),
            publish_failed=publisher.log.failed,
            planned=len(records),
            faults=faults.done,
            exits=monitor.exits,
            samples=monitor.samples,
            sim=sim,
            options={k: str(v) for k, v in opts.items()} | {"faults": list(rotation)},
            timing={
                "started_at": started,
                "publish_s": published_at - started,
                "drain_s": drained_at - published_at,
                "quiesced": quiet,
                "samples": len(monitor.samples),
            },
        ) | {"samples": [s.to_json() for s in monitor.samples], "measured_at": report.stamp()}
    finally:
        engine.dispose()


class SoakError(ChimeraError):
    """Raised when the soak itself cannot go on (not a finding about the system)."""


def _inject_while_publishing(publisher: Publisher, faults: Faults, every_s: float) -> None:
    next_at = time.monotonic() + every_s
    while publisher.is_alive():
        publisher.join(timeout=max(0.0, min(1.0, next_at - time.monotonic())))
        if publisher.is_alive() and time.monotonic() >= next_at:
            echo(f"fault: injecting {faults.peek()}")
            record = faults.inject_next()
            if record is not None:
                detail = ", ".join(f"{k} {v}" for k, v in record.detail.items())
                state = "" if record.ok else " (NEEDED HELP)"
                echo(f"fault: {record.kind} done in {record.duration_s:.1f}s{state}; {detail}")
            next_at = time.monotonic() + every_s


def _wait_quiet(engine: Engine, publisher: Publisher, monitor: Monitor, timeout_s: float) -> bool:
    """Until every valid event published is done or dead-lettered (and a little longer,
    so late duplicates would show), or ``timeout_s``."""
    ids = [
        r.event_id
        for r in publisher.log.records()
        if r.kind in ("conversation", "analysis") and r.event_id
    ]
    query = text(
        "SELECT count(*) FROM events WHERE event_id = ANY(:ids)"
        " AND status IN ('done', 'dead_lettered')"
    )
    deadline = time.monotonic() + timeout_s
    tick = threading.Event()
    while time.monotonic() < deadline:
        try:
            with engine.connect() as conn:
                settled = int(conn.execute(query, {"ids": ids}).scalar_one())
        except SQLAlchemyError:  # Postgres is not under test, but do not die on a blip
            settled = -1
        if settled == len(set(ids)):
            tick.wait(10)
            return True
        tick.wait(5)
    return False


if __name__ == "__main__":
    main()
