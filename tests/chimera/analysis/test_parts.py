"""The analysis pieces that need no service: prompts, input budget, quoted spans, bundle."""

from __future__ import annotations

import pytest

from chimera.analysis.bundle import aggregate
from chimera.analysis.inputs import AnalysisInput, fit, resolve_input
from chimera.analysis.prompts import PROMPTS, resolve, resolve_all
from chimera.analysis.runner import PartResult, shape
from chimera.analysis.schemas import LogicBiasV1
from chimera.analysis.spans import SpanChecker
from chimera.errors import ContextNotFound, UnknownPrompt
from chimera.models import ANALYSIS_KINDS, AnalyzeRequest, Segment


def seg(speaker: str, text: str) -> Segment:
    return Segment(speaker=speaker, text=text)


# --- prompts ---------------------------------------------------------------------------------


def test_every_analysis_has_a_default_prompt_with_its_schema() -> None:
    specs = resolve_all()
    assert {k: s.id for k, s in specs.items()} == {k: f"{k}.v1" for k in ANALYSIS_KINDS}
    assert all(s.kind == k for k, s in specs.items())
    assert "Answer in de." in specs["summary"].system("de")


@pytest.mark.parametrize(
    ("kind", "prompt_id"),
    [("summary", "summary.v9"), ("summary", "argument.v1"), ("logic_bias", "")],
)
def test_an_unknown_or_foreign_prompt_id_is_refused_naming_the_known_ones(
    kind: str, prompt_id: str
) -> None:
    if not prompt_id:  # empty means "the default"
        assert resolve(kind, {kind: prompt_id}) is PROMPTS[f"{kind}.v1"]  # type: ignore[arg-type]
        return
    with pytest.raises(UnknownPrompt, match=rf"{prompt_id!r}.*known: {kind}\.v1"):
        resolve(kind, {kind: prompt_id})  # type: ignore[arg-type]


# --- the input budget ------------------------------------------------------------------------


def test_input_within_the_budget_is_sent_whole() -> None:
    segments = (seg("A", "one two three"), seg("B", "four five"))
    assert fit(segments, 10_000) == (segments, False)


def test_input_past_the_budget_keeps_whole_leading_segments_then_cuts_at_a_word() -> None:
    segments = tuple(seg(s, "word " * 400) for s in "ABC")  # 2,000 chars each
    kept, truncated = fit(segments, 1_500 + 1_000)  # 1,000 tokens of room = 3,000 chars
    assert truncated
    assert [s.speaker for s in kept] == ["A", "B"]
    assert kept[0] == segments[0]
    assert kept[1].text.endswith(" …") and kept[1].text.startswith("word word")
    assert len(kept[1].text) < 1_000
    assert "wor …" not in kept[1].text  # cut between words


def test_a_first_segment_larger_than_the_budget_is_cut_not_dropped() -> None:
    kept, truncated = fit((seg("A", "x " * 50_000),), 256)
    assert truncated and len(kept) == 1 and 0 < len(kept[0].text) < 256 * 3


def test_segments_are_required_without_a_database() -> None:
    with pytest.raises(ContextNotFound, match="conv-1"):
        resolve_input(AnalyzeRequest(context_id="conv-1"), None, budget_tokens=1_000)


def test_the_input_describes_itself() -> None:
    request = AnalyzeRequest(context_id="d", segments=(seg("A", "Hello there."), seg("B", "Hi.")))
    source = resolve_input(request, None, budget_tokens=5_000)
    assert source.text == "A: Hello there.\n\nB: Hi."
    assert source.speakers == ["A", "B"]
    assert source.describe() == {
        "source": "segments",
        "segments": 2,
        "chars": 15,
        "chars_sent": 15,
        "truncated": False,
        "budget_tokens": 5_000,
    }


# --- quoted spans ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quote", "found"),
    [
        ("Bans always work", True),
        ("\u201cbans   ALWAYS work.\u201d", True),
        ("it\u2019s loud", True),
        ("bans never work", False),
        ("   ", False),
        ("...", False),
    ],
)
def test_a_quote_is_found_whatever_its_case_spacing_and_quote_marks(
    quote: str, found: bool
) -> None:
    checker = SpanChecker("Ana: Cars? It's loud. Everyone knows bans\nalways work!")
    assert checker.contains(quote) is found


def test_findings_whose_quote_is_not_in_the_text_are_dropped_and_counted() -> None:
    source = AnalysisInput(
        context_id="d",
        language="en",
        segments=(seg("Ana", "Everyone knows bans always work."),),
        source="segments",
        total_chars=31,
        budget_tokens=1_000,
        truncated=False,
    )
    answer = LogicBiasV1.model_validate(
        {
            "fallacies": [
                {"type": "hasty_generalization", "quote": "bans always work", "explanation": "x"},
                {"type": "straw_man", "quote": "an invented line", "explanation": "y"},
            ],
            "biases": [{"type": "framing", "quote": "Everyone knows", "explanation": "z"}],
        }
    )
    output, notes = shape(PROMPTS["logic_bias.v1"], answer, source)
    assert [f["quote"] for f in output["fallacies"]] == ["bans always work"]
    assert [b["quote"] for b in output["biases"]] == ["Everyone knows"]
    assert notes == {"fallacies_dropped_unquoted": 1}


# --- the bundle ------------------------------------------------------------------------------


def ok(kind: str, output: dict[str, object]) -> PartResult:
    return PartResult(kind, "ok", f"{kind}.v1", output=output, provider="p", model="m")


def failed(kind: str) -> PartResult:
    return PartResult(kind, "error", f"{kind}.v1", error_class="LLMBadRequest", error="400")


OUTPUTS: dict[str, dict[str, object]] = {
    "summary": {"summary": "s", "key_points": ["k"]},
    "argument": {"claims": [{"claim": "c"}]},
    "implication_sentiment": {"implications": ["i"], "sentiment": {"overall_label": "neutral"}},
    "logic_bias": {"fallacies": [], "biases": []},
}


def test_four_ok_results_make_an_ok_bundle_in_the_documented_shape() -> None:
    result = aggregate({k: ok(k, v) for k, v in OUTPUTS.items()}, {"source": "segments"})
    assert result.status == "ok"
    b = result.bundle
    assert b["summary"] == OUTPUTS["summary"]
    assert b["arguments"] == [{"claim": "c"}]
    assert b["implications"] == ["i"] and b["sentiment"] == {"overall_label": "neutral"}
    assert b["logic_bias"] == OUTPUTS["logic_bias"]
    assert b["worker_statuses"] == dict.fromkeys(ANALYSIS_KINDS, "ok")
    assert b["errors"] == {} and b["input"] == {"source": "segments"}
    assert result.worker_statuses == {k: {"status": "ok"} for k in ANALYSIS_KINDS}


def test_some_failures_make_a_partial_bundle_and_all_of_them_a_failed_one() -> None:
    parts = {k: ok(k, v) for k, v in OUTPUTS.items()} | {"argument": failed("argument")}
    partial = aggregate(parts, {})
    assert partial.status == "partial"
    assert partial.bundle["arguments"] is None
    assert partial.worker_statuses["argument"] == {
        "status": "error",
        "error_class": "LLMBadRequest",
    }
    assert partial.bundle["errors"] == {
        "argument": {"error_class": "LLMBadRequest", "message": "400"}
    }
    assert aggregate({k: failed(k) for k in ANALYSIS_KINDS}, {}).status == "failed"


def test_a_missing_result_counts_as_failed() -> None:
    result = aggregate({"summary": ok("summary", OUTPUTS["summary"])}, {})
    assert result.status == "partial"
    assert result.worker_statuses["logic_bias"] == {"status": "error", "error_class": "Missing"}
    assert aggregate({}, {}).status == "failed"


def test_a_result_survives_its_json_round_trip() -> None:
    part = ok("summary", OUTPUTS["summary"])
    assert PartResult.from_dict(part.to_dict() | {"unknown": 1}) == part
