"""Estimating a job before it spends: compared with what it then costs on the simulator."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from chimera.errors import SchemaInvalid
from chimera.jobs.estimate import estimate_job
from chimera.jobs.repository import JobRepository
from chimera.jobs.service import create_job, inline_topics
from chimera.jobs.spec import job_topic
from chimera.settings import Settings
from tests.bridges import conftest as bridge_fixtures
from tests.bridges.conftest import CELERYCONFIG_DEPRECATION
from tests.chimera.jobs.test_create_and_run import PAIR, _run_to_end, producer
from tests.tasks import conftest as task_fixtures
from tests.tasks.conftest import Flow

pytestmark = pytest.mark.filterwarnings(CELERYCONFIG_DEPRECATION)
run_bridge = bridge_fixtures.run_bridge
_keep_current_celery_app = bridge_fixtures._keep_current_celery_app
flow = task_fixtures.flow
session_topics = task_fixtures.session_topics
__all__ = ["producer"]

TOPICS = ["Should cities ban cars?", "Are bikes the future?", "Trains or planes?", "Boats"]


def test_the_estimate_is_within_a_quarter_of_the_actual_cost(
    flow: Flow, kafka_topics: Settings, run_bridge: Any, producer: Any
) -> None:
    s = kafka_topics.model_copy(
        update={"kafka_consumer_group_id": f"jobs-{kafka_topics.topic_conversation_new}"}
    )
    spec = {"name": "estimated", "min_turns": 2, "max_turns": 4, "participants": PAIR}
    est = estimate_job(flow.engine, s, dict(spec), (job_topic(t) for t in TOPICS))
    assert est.conversations == 4 and est.low_usd < est.cost_usd < est.high_usd
    assert all(m.source == "default" for m in est.models)  # no history yet
    repo = JobRepository(flow.engine)
    made = create_job(repo, producer, s, spec, inline_topics(TOPICS))
    run_bridge(s)
    jid = _run_to_end(repo, producer, s, made.job.id).id
    with flow.engine.connect() as conn:
        actual, out_mean, turns = conn.execute(
            text(
                "SELECT sum(cost_usd), avg(output_tokens), count(*) FROM llm_calls"
                " WHERE owner_id IN (SELECT id FROM conversations WHERE job_id = :j)"
            ),
            {"j": jid},
        ).one()
    ratio = est.cost_usd / Decimal(actual)
    print(
        f"estimate {est.cost_usd:.6f} USD, actual {Decimal(actual):.6f} USD, ratio {ratio:.3f}"
        f" ({turns} turns, {float(out_mean):.1f} output tokens a turn)"
    )
    assert Decimal("0.75") <= ratio <= Decimal("1.25")

    # Now there is history: the models' own mean output tokens are used.
    again = estimate_job(flow.engine, s, dict(spec), (job_topic(t) for t in TOPICS))
    assert all(m.source.startswith("history") for m in again.models)


def test_an_unknown_model_is_an_error_as_for_create(kafka_topics: Settings) -> None:
    bad = [{"provider": "anthropic", "model": "nope"}, PAIR[1]]
    with pytest.raises(SchemaInvalid, match=r"participants\.0\.model"):
        estimate_job(None, kafka_topics, {"name": "x", "participants": bad}, iter([]))


def test_a_target_divides_by_the_expected_yield(kafka_topics: Settings) -> None:
    spec = {"name": "x", "participants": PAIR, "target": 8, "min_quality": 0.5}
    est = estimate_job(None, kafka_topics, spec, (job_topic(t) for t in TOPICS))
    assert est.expected_yield == 0.8 and est.conversations == 10
