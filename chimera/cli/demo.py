"""`chimera demo`: the local stack, sample work through Kafka, live progress, the results."""

from __future__ import annotations

import sys

import click

from chimera import stack
from chimera.cli.types import FiniteFloatRange
from chimera.db.engine import make_engine
from chimera.demo import Demo, bundle_lines, conversation_table, load_samples, transcript_lines
from chimera.errors import ChimeraError
from chimera.settings import Settings, get_settings
from chimera.stack import flower as flower_component
from chimera.stack import web as web_component
from chimera.stack.control import uses_simulator


@click.command("demo")
@click.option(
    "--timeout",
    type=FiniteFloatRange(min=10),
    default=300,
    show_default=True,
    help="Seconds to wait for the conversations and analyses.",
)
@click.option(
    "--keep-running", is_flag=True, help="Leave the stack running afterwards (`stack down`)."
)
def demo_command(timeout: float, keep_running: bool) -> None:
    """Bring the stack up, run sample conversations and analyses, show what came out."""
    settings = get_settings()
    _say_which_models(settings)
    already_running = all(s.healthy for s in stack.status(settings))
    click.echo("\n== starting the local stack ==")
    stack.up(settings, echo=click.echo)
    try:
        ok = _run(settings, timeout)
    finally:
        if keep_running or already_running:
            click.echo("\nthe stack keeps running: `python -m chimera stack down` stops it")
        else:
            click.echo("\n== stopping the local stack ==")
            stack.down(settings, echo=click.echo)
    sys.exit(0 if ok else 1)


def _say_which_models(settings: Settings) -> None:
    if uses_simulator(settings):
        click.echo(
            "No LLM provider key or base URL is set: the built-in simulator stands in for "
            "Claude, Gemini and OpenAI-compatible models (same SDKs, same wire formats, "
            f"{settings.sim_ttft_ms:.0f} ms to the first token). Set ANTHROPIC_API_KEY and "
            "GOOGLE_API_KEY to run the demo on the real models."
        )
    else:
        click.echo(f"LLM providers: {', '.join(settings.configured_providers)} (real APIs)")


def _run(settings: Settings, timeout: float) -> bool:
    engine = make_engine(settings)
    try:
        demo = Demo(settings, engine, echo=click.echo)
        topics, texts = load_samples()
        demo.submit(topics, texts)
        click.echo(
            f"\n== submitted {len(topics)} conversations to {settings.topic_conversation_new} "
            f"and {len(texts)} analyses to {settings.topic_analysis_tasks} =="
        )
        progress = demo.wait(
            lambda p: p.finished == p.total and p.analyses == p.analyses_total,
            timeout_s=timeout,
        )
        rows = demo.conversations()
        completed = [r for r in rows if r.status == "completed"]
        context_run = None
        if completed:
            best = max(completed, key=lambda r: r.quality_score or 0)
            context_run = demo.submit_context_analysis(best.id)
            click.echo(f"\n== analysing the stored conversation {best.id} by its id ==")
            progress = demo.wait(lambda p: p.analyses == p.analyses_total, timeout_s=90)

        click.echo("\n== conversations ==")
        for line in conversation_table(rows):
            click.echo(line)
        if completed:
            best = max(completed, key=lambda r: r.quality_score or 0)
            click.echo(f"\n== transcript of {best.id}: {best.topic_title} ==")
            for line in transcript_lines(demo.transcript(best.id)):
                click.echo(line)
        run = demo.run(context_run) if context_run else None
        if run is None and demo.submitted.runs:
            run = demo.run(next(iter(demo.submitted.runs)))
        if run is not None:
            click.echo("\n== analysis bundle ==")
            for line in bundle_lines(run):
                click.echo(line)
        path, count = demo.export(settings.state_dir / "demo")
        rejected = sum(1 for r in completed if r.accepted is False)
        click.echo(
            f"\n== exported {count} accepted conversations (OpenAI messages JSONL) to {path} "
            f"({rejected} rejected, not exported) =="
        )
        # Run again on the same stores, the demo's topics make the same conversations, which
        # the corpus-wide check rejects as near-duplicates of the first run's: that is the
        # check working, not the demo failing.
        repeats = [r for r in completed if "near_duplicate" in (r.rejection_reasons or [])]
        if completed and len(repeats) == len(completed):
            click.echo(
                f"\n(all {len(repeats)} conversations are near-duplicates of an earlier demo "
                "run's, kept in the corpus-wide index: docs/near-duplicates.md)"
            )
        click.echo(f"\n{progress.line()}")
        _urls(settings)
        produced = count > 0 or (bool(completed) and len(repeats) == len(completed))
        return bool(completed) and run is not None and produced
    except ChimeraError as exc:
        click.echo(f"demo failed: {exc}", err=True)
        return False
    finally:
        engine.dispose()


def _urls(settings: Settings) -> None:
    api = web_component.base_url(settings)
    click.echo("\n== where to look ==")
    click.echo(f"  Flower (workers, tasks): {flower_component.base_url(settings)}")
    click.echo(f"  Prometheus metrics:      {api}/metrics")
    click.echo(f"  API:                     {api}/readyz, {api}/conversations/<id>,")
    click.echo(
        f"                           {api}/analysis-runs/<id>, POST {api}/orchestrator/analyze"
    )
