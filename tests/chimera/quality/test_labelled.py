"""quality.v2 against the hand-labelled conversations of tests/data/quality.

Weights and the threshold were chosen on the ``tune`` half; each half, and the whole set,
must rank like the labels (Spearman >= 0.8) and, at DEFAULT_MIN_QUALITY, keep none of the
conversations labelled 1-2 and at least two thirds of those labelled 4-5.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chimera.quality.report import Scored, figures, load, recall, render, spearman

DATA = Path(__file__).parents[2] / "data" / "quality"
FILES = (DATA / "labelled.openai.jsonl", DATA / "labelled.sharegpt.jsonl")


@pytest.fixture(scope="module")
def scored() -> list[Scored]:
    return load(FILES)


def test_the_set_is_all_read(scored: list[Scored]) -> None:
    assert len(scored) == 77
    assert {s.split for s in scored} == {"tune", "heldout"}


@pytest.mark.parametrize("split", ["tune", "heldout", "all"])
def test_scores_rank_like_the_labels_and_the_threshold_separates(
    scored: list[Scored], split: str
) -> None:
    part = [s for s in scored if split in ("all", s.split)]
    f = figures(part)
    assert f.spearman >= 0.8, render(scored)
    assert f.low and f.low_kept == 0, [s.key for s in part if s.label <= 2 and s.report.accepted]
    assert f.high and f.high_kept * 3 >= 2 * f.high, render(scored)


def test_each_labelled_defect_is_flagged_on_its_conversation(scored: list[Scored]) -> None:
    per_defect = recall(scored)
    hits = sum(h for h, _ in per_defect.values())
    total = sum(t for _, t in per_defect.values())
    print(render(scored))
    # Two known misses: a drift to a neighbouring subject (tidal -> wave energy) that shares
    # the topic's words, and closing small talk after praise (flagged as sycophancy).
    assert hits >= total - 2, per_defect
    assert all(h * 4 >= 3 * t for h, t in per_defect.values()), per_defect


def test_clean_conversations_carry_no_defect(scored: list[Scored]) -> None:
    clean = [s for s in scored if not s.defects]
    flagged = {s.key: s.report.defects for s in clean if s.report.defects}
    assert not flagged


def test_unsupported_languages_are_flagged_not_judged(scored: list[Scored]) -> None:
    other = [s for s in scored if s.report.language == "unsupported"]
    assert len(other) == 2  # the Italian and the Polish conversation
    for s in other:
        assert s.report.flags == ["unsupported_language"]
        assert "refusal" in s.report.not_judged
        assert s.report.accepted  # labelled 4: judged on what does not need the language


def test_spearman_averages_ties() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks of [1, 1, 2] are [1.5, 1.5, 3]
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(0.8660254)
