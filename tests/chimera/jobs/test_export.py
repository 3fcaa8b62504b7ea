"""Exporting a job: its conversations with their lineage, a card whose figures are the rows'."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from chimera.jobs.export import export_job
from chimera.jobs.repository import JobRepository
from chimera.jobs.service import create_job, inline_topics
from chimera.settings import Settings, to_env
from tests.bridges import conftest as bridge_fixtures
from tests.bridges.conftest import CELERYCONFIG_DEPRECATION
from tests.chimera.jobs.test_create_and_run import PAIR, _run_to_end, producer
from tests.chimera.test_cli import chimera
from tests.tasks import conftest as task_fixtures
from tests.tasks.conftest import Flow

pytestmark = pytest.mark.filterwarnings(CELERYCONFIG_DEPRECATION)
run_bridge = bridge_fixtures.run_bridge
_keep_current_celery_app = bridge_fixtures._keep_current_celery_app
flow = task_fixtures.flow
session_topics = task_fixtures.session_topics
__all__ = ["producer"]


def _one(db: Any, sql: str, **params: Any) -> Any:
    with db.connect() as conn:
        return conn.execute(text(sql), params).one()


def _rows_figures(db: Any, jid: str) -> dict[str, Any]:
    """The card's figures, recomputed from the rows (every conversation accepted)."""
    where = "FROM conversations WHERE job_id = :j AND status = 'completed'"
    turns = _one(
        db,
        f"SELECT min(turn_count), percentile_cont(0.5) WITHIN GROUP (ORDER BY turn_count),"
        f" max(turn_count), count(*) {where}",
        j=jid,
    )
    scores = _one(
        db,
        "SELECT min(quality_score),"
        " percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY quality_score),"
        f" max(quality_score) {where}",
        j=jid,
    )
    tokens = _one(
        db,
        "SELECT avg(input_tokens), avg(output_tokens), count(*) FROM conversation_turns"
        f" WHERE conversation_id IN (SELECT id {where})",
        j=jid,
    )
    cost = _one(
        db,
        "SELECT coalesce(sum(cost_usd), 0) FROM llm_calls WHERE owner_type = 'conversation'"
        " AND owner_id IN (SELECT id FROM conversations WHERE job_id = :j)",
        j=jid,
    )[0]
    with db.connect() as conn:
        models = dict(
            conn.execute(
                text(
                    "SELECT provider || '/' || model, count(*) FROM conversation_turns"
                    f" WHERE conversation_id IN (SELECT id {where}) GROUP BY 1"
                ),
                {"j": jid},
            ).all()
        )
        per_conv = dict(
            conn.execute(
                text(
                    "SELECT owner_id, sum(cost_usd) FROM llm_calls"
                    " WHERE owner_type = 'conversation' GROUP BY owner_id"
                )
            ).all()
        )
    return {
        "turns": (turns[0], float(turns[1]), turns[2]),
        "count": turns[3],
        "scores": (scores[0], *scores[1], scores[2]),
        "tokens": (float(tokens[0]), float(tokens[1]), tokens[2]),
        "cost": Decimal(cost),
        "models": models,
        "per_conv": per_conv,
    }


def test_export_writes_lineage_and_a_card_equal_to_the_rows(
    flow: Flow, kafka_topics: Settings, run_bridge: Any, producer: Any, tmp_path: Path
) -> None:
    s = kafka_topics.model_copy(
        update={"kafka_consumer_group_id": f"jobs-{kafka_topics.topic_conversation_new}"}
    )
    repo = JobRepository(flow.engine)
    participants = [dict(PAIR[0], persona="A careful engineer."), PAIR[1]]
    spec = {"name": "export", "min_turns": 2, "max_turns": 3, "participants": participants}
    made = create_job(repo, producer, s, spec, inline_topics(["Cars", "Bikes", "Trains", "Boats"]))
    run_bridge(s)
    jid = _run_to_end(repo, producer, s, made.job.id).id
    env = to_env(s)

    out = tmp_path / "set.jsonl"
    done = chimera("export", "--job", jid, "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert "wrote 4 conversations (openai)" in done.stderr and "skipped" not in done.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    rows = _rows_figures(flow.engine, jid)
    assert len(lines) == 4 == rows["count"]
    for line in lines:
        lin = line["metadata"]["lineage"]
        assert lin["job_id"] == jid and lin["accepted"] is True and lin["status"] == "completed"
        assert lin["conversation_id"] == line["metadata"]["id"]
        assert Decimal(str(lin["cost_usd"])) == rows["per_conv"][lin["conversation_id"]] > 0
        assert lin["prompt_versions"] == ["conversation.turn.v2"]
        assert lin["quality_score"] == line["metadata"]["quality_score"]
        assert sorted(lin["models"]) == ["anthropic/claude-sonnet-5-5", "google/gemini-3.5-flash"]
        assert "A careful engineer." in lin["personas"]
        assert lin["position"] in range(4) and lin["cycle"] == 0

    # The card: the same figures as the rows.
    card = (tmp_path / "set.card.md").read_text()
    report = export_job(flow.engine, jid, io.StringIO(), fmt="openai")
    st = report.stats
    turn = st.turn_summary()
    assert (turn["min"], float(turn["median"]), turn["max"]) == rows["turns"]
    assert (turn["in_per_turn"], turn["out_per_turn"], st.turns) == pytest.approx(rows["tokens"])
    sc = st.score_summary()
    assert tuple(sc[k] for k in ("min", "q1", "median", "q3", "max")) == pytest.approx(
        rows["scores"]
    )
    assert dict(st.models) == rows["models"] and st.cost_usd == rows["cost"]
    assert report.job.figures.cost_usd == rows["cost"] and report.job.figures.accepted == 4
    assert sum(st.histogram()) == 4 and st.personas["A careful engineer."] == 4
    assert "| conversations exported | 4 |" in card and "| accepted | 4 |" in card
    assert f"| spend, whole job (USD) | {rows['cost']:.6f} |" in card
    assert f"| USD per accepted conversation | {rows['cost'] / 4:.6f} |" in card
    assert "| yield (accepted / finished) | 1.0000 |" in card
    assert f"| {rows['turns'][0]} / {turn['median']} / {rows['turns'][2]} |" in card
    assert "| conversation.turn.v2 | 4 |" in card and "| A careful engineer. | 4 |" in card
    assert f"| {rows['scores'][0]:.4f} | {rows['scores'][1]:.4f} |" in card

    # Rejected ones (as finalise stores a verdict): the acceptance filter's skips, exit 0.
    best = rows["scores"][-1]
    with flow.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE conversations SET accepted = false, rejection_reasons = '[\"low_score\"]'"
                " WHERE job_id = :j AND quality_score < :q"
            ),
            {"q": best, "j": jid},
        )
    below = _one(
        flow.engine,
        "SELECT count(*) FROM conversations WHERE job_id = :j AND NOT accepted",
        j=jid,
    )[0]
    assert below >= 1
    bar = chimera("export", "--job", jid, "--out", str(out), env=env)
    assert bar.returncode == 0, bar.stderr
    assert f"skipped {below} (rejected)" in bar.stderr
    assert len(out.read_text().splitlines()) == 4 - below
    every = chimera(
        "export", "--job", jid, "--all", "--format", "sharegpt", "--out", str(out), env=env
    )
    assert every.returncode == 0 and len(out.read_text().splitlines()) == 4
    lineage = [json.loads(x)["metadata"]["lineage"] for x in out.read_text().splitlines()]
    assert (
        sorted(lin["rejection_reasons"] for lin in lineage if not lin["accepted"])
        == [["low_score"]] * below
    )
    card = (tmp_path / "set.card.md").read_text()
    assert f"| rejected (low_score) | {below} |" in card
    assert f"| yield (accepted / finished) | {(4 - below) / 4:.4f} |" in card

    # A conversation still running: the export is incomplete, exit 1.
    with flow.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO conversations (id, event_id, topic_title, topic, participants,"
                " min_turns, max_turns, status, job_id) VALUES ('conv-x', 'evt-x', 'X',"
                " '{\"title\": \"X\"}', '[]', 1, 2, 'running', :j)"
            ),
            {"j": jid},
        )
    gap = chimera("export", "--job", jid, "--all", "--out", str(out), env=env)
    assert gap.returncode == 1 and "skipped 1 (not_finished)" in gap.stderr
    assert len(out.read_text().splitlines()) == 4


def test_export_job_refuses_bad_arguments(kafka_topics: Settings, db: Any, tmp_path: Path) -> None:
    env = to_env(kafka_topics)
    unknown = chimera("export", "--job", "job-none", "--out", str(tmp_path / "n.jsonl"), env=env)
    assert unknown.returncode == 1 and "no such job" in unknown.stderr
    stdout = chimera("export", "--job", "job-none", env=env)
    assert stdout.returncode == 2 and "--out FILE" in stdout.stderr
    mixed = chimera("export", "--job", "j", "--limit", "3", "--out", "x.jsonl", env=env)
    assert mixed.returncode == 2 and "--limit" in mixed.stderr
    assert chimera("export", "--all", env=env).returncode == 2
