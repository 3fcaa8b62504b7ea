"""An analysis from inbox to Postgres and Kafka: the chord of four on the real worker."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import text

from chimera.events.ids import run_id
from chimera.models import ANALYSIS_KINDS
from tests.bridges.conftest import read_topic
from tests.helpers import wait_for
from tests.tasks.conftest import Flow

#: The models tests/conftest.py gives each analysis.
MODELS = {
    "summary": "claude-haiku-5-5",
    "argument": "gemini-3.1-flash-lite",
    "implication_sentiment": "claude-opus-5-5",
    "logic_bias": "gemini-3.5-flash",
}


def calls_by_model(flow: Flow, rid: str) -> dict[str, int]:
    with flow.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT model, count(*) FROM llm_calls WHERE owner_id = :r GROUP BY model"),
            {"r": rid},
        )
        return {r[0]: r[1] for r in rows}


def test_an_analysis_runs_all_four_and_is_recorded_once(flow: Flow, sim_calls: Any) -> None:
    event = flow.analysis_event()
    rid = flow.submit_analysis(event)
    row = flow.wait_run(rid)
    assert row.status == "ok" and row.source == "kafka" and row.event_id == event["event_id"]
    bundle = row.bundle
    assert bundle["worker_statuses"] == dict.fromkeys(ANALYSIS_KINDS, "ok")
    assert bundle["summary"]["summary"] and isinstance(bundle["summary"]["key_points"], list)
    assert bundle["arguments"] and {c["speaker"] for c in bundle["arguments"]} <= {"Ana", "Ben"}
    assert isinstance(bundle["implications"], list)
    assert bundle["sentiment"]["overall_label"] in ("positive", "negative", "neutral", "mixed")
    # Every quoted span that survived is in the text.
    texts = " ".join(s["text"] for s in event["segments"]).casefold()
    for finding in bundle["logic_bias"]["fallacies"] + bundle["logic_bias"]["biases"]:
        assert finding["quote"].casefold().strip(" .") in texts
    assert bundle["input"] == {
        "source": "segments",
        "segments": 2,
        "chars": sum(len(s["text"]) for s in event["segments"]),
        "chars_sent": sum(len(s["text"]) for s in event["segments"]),
        "truncated": False,
        "budget_tokens": flow.settings.analysis_input_token_budget,
    }
    assert row.worker_statuses == {k: {"status": "ok"} for k in ANALYSIS_KINDS}
    assert row.latency_ms > 0
    flow.wait_event(event["event_id"], "done")

    # One call per analysis, each on its own model, each accounted.
    assert sim_calls.calls().total == 4
    # (llm_calls rows are written in batches, just after the calls)
    wait_for(
        lambda: calls_by_model(flow, rid) == {m: 1 for m in MODELS.values()},
        what="one llm_calls row per analysis model",
    )

    (done,) = flow.values(
        flow.messages(flow.settings.topic_analysis_completed, event["context_id"], count=1)
    )
    assert done["event_type"] == "analysis.completed"
    assert done["run_id"] == rid and done["status"] == "ok"
    assert done["bundle"]["worker_statuses"] == bundle["worker_statuses"]


def test_the_same_event_handed_off_twice_is_one_run(flow: Flow, sim_calls: Any) -> None:
    event = flow.analysis_event()
    rid = flow.submit_analysis(event, handoffs=2)
    flow.wait_run(rid)
    flow.wait_event(event["event_id"], "done")
    assert len(flow.runs_of(event["event_id"])) == 1
    assert sim_calls.calls().total == 4
    published = flow.messages(flow.settings.topic_analysis_completed, event["context_id"], count=1)
    assert len(published) == 1


def test_one_analysis_failing_permanently_is_a_partial_run(flow: Flow, sim_calls: Any) -> None:
    sim_calls.add_fault("bad_request", count=5, model=MODELS["argument"])
    event = flow.analysis_event()
    row = flow.wait_run(flow.submit_analysis(event))
    assert row.status == "partial"
    assert row.bundle["worker_statuses"] == dict.fromkeys(ANALYSIS_KINDS, "ok") | {
        "argument": "error"
    }
    assert row.worker_statuses["argument"] == {"status": "error", "error_class": "LLMBadRequest"}
    assert row.bundle["arguments"] is None and row.bundle["summary"] is not None
    assert row.bundle["errors"]["argument"]["error_class"] == "LLMBadRequest"
    flow.wait_event(event["event_id"], "done")
    # Permanent: called once, not retried.
    assert sim_calls.calls().count(model=MODELS["argument"]) == 1


def test_all_four_failing_is_a_failed_run_and_a_dead_letter(flow: Flow, sim_calls: Any) -> None:
    sim_calls.add_fault("bad_request", count=20)
    event = flow.analysis_event()
    row = flow.wait_run(flow.submit_analysis(event))
    assert row.status == "failed"
    assert set(row.bundle["worker_statuses"].values()) == {"error"}
    flow.wait_event(event["event_id"], "dead_lettered")
    dead = [
        r
        for r in read_topic(flow.settings, flow.settings.topic_analysis_dlq, at_least=1)
        if dict(r.headers).get("x-event-id") == event["event_id"].encode()
    ]
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["x-dlq-reason"] == "all_analyses_failed"
    assert dead[0].key == event["context_id"].encode()
    assert json.loads(dead[0].value) == event
    (done,) = flow.values(
        flow.messages(flow.settings.topic_analysis_completed, event["context_id"], count=1)
    )
    assert done["status"] == "failed"


def test_a_retryable_failure_is_retried_and_paid_once_per_success(
    flow: Flow, sim_calls: Any
) -> None:
    sim_calls.add_fault("server_error", count=1, model=MODELS["summary"])
    event = flow.analysis_event()
    row = flow.wait_run(flow.submit_analysis(event))
    assert row.status == "ok"
    assert row.bundle["analyses"]["summary"]["attempts"] == 2
    assert sim_calls.calls().count(model=MODELS["summary"]) == 2
    assert sim_calls.calls().total == 5


def test_a_stored_conversation_is_analysed_by_its_context_id(flow: Flow, sim_calls: Any) -> None:
    cid = flow.submit(flow.event(min_turns=5, max_turns=6))
    flow.wait(cid)
    event = {"event_id": f"evt-ctx-{cid}", "context_id": cid}
    row = flow.wait_run(flow.submit_analysis(event))
    assert row.status == "ok" and row.context_id == cid
    assert row.bundle["input"]["source"] == "conversation"
    assert row.bundle["input"]["segments"] == len(flow.turns(cid))
    # Claims attributed to someone who is not a speaker are kept, and named in the notes.
    speakers = {t.speaker for t in flow.turns(cid)}
    strangers = {c["speaker"] for c in row.bundle["arguments"]} - speakers
    notes = row.bundle["analyses"]["argument"].get("notes", {})
    assert set(notes.get("unknown_speakers", [])) == strangers


def test_a_missing_context_or_unknown_prompt_is_dead_lettered_unpaid(
    flow: Flow, sim_calls: Any
) -> None:
    missing = {"event_id": f"evt-missing-{uuid.uuid4().hex[:8]}", "context_id": "conv-nowhere"}
    unknown = flow.analysis_event(prompt_ids={"summary": "summary.v9"})
    flow.submit_analysis(missing)
    flow.submit_analysis(unknown)
    flow.wait_event(missing["event_id"], "dead_lettered")
    flow.wait_event(unknown["event_id"], "dead_lettered")
    assert sim_calls.calls().total == 0
    assert not flow.runs_of(missing["event_id"]) and not flow.runs_of(unknown["event_id"])
    wanted = {missing["event_id"], unknown["event_id"]}
    reasons = {
        headers["x-event-id"]: headers["x-dlq-reason"]
        for headers in (
            {k: v.decode() for k, v in r.headers}
            for r in read_topic(flow.settings, flow.settings.topic_analysis_dlq, at_least=2)
        )
        if headers.get("x-event-id") in wanted
    }
    assert reasons == {
        missing["event_id"]: "context_not_found",
        unknown["event_id"]: "unknown_prompt",
    }


def test_ids_are_derived_from_the_event() -> None:
    assert run_id("evt-1") == run_id("evt-1") != run_id("evt-2")


def test_analyses_whose_answers_hold_nul_characters_are_stored_without_them(
    flow: Flow, sim_calls: Any
) -> None:
    sim_calls.add_fault("nul", count=4)  # every string of every structured answer
    event = flow.analysis_event()
    row = flow.wait_run(flow.submit_analysis(event), timeout_s=60)
    assert row.status == "ok"
    assert row.bundle["summary"]["summary"]
    assert "\\u0000" not in json.dumps(row.bundle)
    assert sim_calls.calls().total == 4  # stored at once, not retried
    flow.wait_event(event["event_id"], "done")
