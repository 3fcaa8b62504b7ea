"""Export keeps the accepted conversations; ``--include-rejected`` writes every completed
one with its verdict; old quality.v1 rows stay readable."""

from __future__ import annotations

import io
import json
from typing import Any

from click.testing import CliRunner
from sqlalchemy import Engine, text

from chimera.cli.data import export_command
from chimera.conversation.export import export_conversations
from chimera.quality.score import QualityV2Report
from tests.chimera.conversation import transcripts as tx
from tests.chimera.conversation.stored import add_conversation

V2 = "quality.v2"


def _stock(db: Engine) -> None:
    add_conversation(db, "c-good", version=V2)
    add_conversation(
        db, "c-dup", version=V2, accepted=False, reasons=["near_duplicate"], duplicate_of="c-good"
    )
    add_conversation(
        db,
        "c-loop",
        texts=tx.LOOPING,
        ended_reason="repetition",
        version=V2,
        accepted=False,
        reasons=["low_score", "defect:repetition"],
    )
    add_conversation(
        db, "c-old", version="quality.v1", accepted=None
    )  # quality.v1, finished before verdicts
    add_conversation(db, "c-failed", status="failed", version=V2)


def _rows(db: Engine, where: str) -> list[Any]:
    with db.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT id, accepted, rejection_reasons, duplicate_of, quality_score"
                    f" FROM conversations WHERE status = 'completed' {where} ORDER BY id"
                )
            )
        )


def _export(db: Engine, **kwargs: Any) -> list[dict[str, Any]]:
    out = io.StringIO()
    count = export_conversations(db, out, fmt="openai", **kwargs)
    lines = [json.loads(x)["metadata"] for x in out.getvalue().splitlines()]
    assert len(lines) == count
    return sorted(lines, key=lambda m: m["id"])


def test_accepted_only_by_default_all_with_their_verdict_on_request(db: Engine) -> None:
    _stock(db)
    accepted = _rows(db, "AND accepted")
    default = _export(db)
    assert [m["id"] for m in default] == [r.id for r in accepted] == ["c-good"]
    assert "rejection_reasons" not in default[0]
    assert default[0]["quality_version"] == V2

    completed = _rows(db, "")
    every = _export(db, include_rejected=True)
    assert [m["id"] for m in every] == [r.id for r in completed]
    assert len(every) == 4
    for meta, r in zip(every, completed, strict=True):
        assert meta["accepted"] is r.accepted
        assert meta["rejection_reasons"] == r.rejection_reasons
        assert meta["duplicate_of"] == r.duplicate_of
    old = next(m for m in every if m["id"] == "c-old")
    assert old["quality_version"] == "quality.v1" and "flow" in old["quality_breakdown"]
    dup = next(m for m in every if m["id"] == "c-dup")
    assert dup["duplicate_of"] == "c-good" and set(dup["quality_breakdown"]) >= {"uptake"}


def test_min_quality_filters_on_the_v2_score(db: Engine) -> None:
    _stock(db)
    good = _rows(db, "AND id = 'c-good'")[0].quality_score
    loop = _rows(db, "AND id = 'c-loop'")[0].quality_score
    assert loop < good
    with db.connect() as conn:
        stored = conn.execute(
            text("SELECT quality_breakdown FROM conversations WHERE id = 'c-good'")
        ).scalar_one()
    assert QualityV2Report.model_validate(stored).score == good
    mid = (good + loop) / 2
    kept = _export(db, include_rejected=True, min_quality=mid)
    assert "c-good" in [m["id"] for m in kept] and "c-loop" not in [m["id"] for m in kept]
    assert [m["id"] for m in _export(db, min_quality=good)] == ["c-good"]


def test_the_command_line_flag(db: Engine, tmp_path: Any) -> None:
    _stock(db)
    runner = CliRunner()
    out = tmp_path / "all.jsonl"
    result = runner.invoke(export_command, ["--include-rejected", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stderr == f"wrote 4 conversations (openai) to {out}\n"
    metas = [json.loads(x)["metadata"] for x in out.read_text().splitlines()]
    assert {m["id"]: m["rejection_reasons"] for m in metas} == {
        r.id: r.rejection_reasons for r in _rows(db, "")
    }
    result = runner.invoke(export_command, ["--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stderr == f"wrote 1 conversation (openai) to {out}\n"
