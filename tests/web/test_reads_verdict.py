"""GET /conversations/<id> serves the verdict and either quality report (v2, or v1 of
rows stored before it)."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import Engine

from chimera.quality.score import QualityV2Report
from tests.chimera.conversation.stored import add_conversation


def test_a_v2_row_comes_with_its_report_and_verdict(client: FlaskClient, db: Engine) -> None:
    add_conversation(
        db,
        "conv-dup",
        version="quality.v2",
        accepted=False,
        reasons=["near_duplicate"],
        duplicate_of="conv-first",
    )
    body = client.get("/conversations/conv-dup").get_json()
    assert body["accepted"] is False
    assert body["rejection_reasons"] == ["near_duplicate"]
    assert body["duplicate_of"] == "conv-first"
    report = QualityV2Report.model_validate(body["quality_breakdown"])
    assert report.version == "quality.v2" and report.score == body["quality_score"]


def test_a_v1_row_stored_before_verdicts_still_reads(client: FlaskClient, db: Engine) -> None:
    add_conversation(db, "conv-old", version="quality.v1", accepted=None)
    body = client.get("/conversations/conv-old").get_json()
    assert body["accepted"] is None and body["rejection_reasons"] == []
    assert body["duplicate_of"] is None
    assert body["quality_breakdown"]["version"] == "quality.v1"
    assert body["quality_breakdown"]["score"] == body["quality_score"]
