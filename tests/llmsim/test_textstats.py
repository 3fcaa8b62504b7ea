"""Keywords, sentences with exact offsets, speakers, sentiment and the token approximation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from llmsim.source import SourceText, pick_source
from llmsim.textstats import (
    clauses,
    count_tokens,
    key_phrases,
    keywords,
    polarity_label,
    sentences,
    sentiment,
    speakers,
)

TRANSCRIPT = (
    "Alice: Remote work has boosted productivity for knowledge workers. Commuting costs dropped.\n"
    "Bob: Managers worry about mentoring junior staff, and office culture is eroding.\n"
    "Speaker 3: Hybrid schedules could be a fair compromise.\n"
)


def test_tokens_are_four_characters_each_rounded_up() -> None:
    assert count_tokens("") == 0
    assert count_tokens("abc") == 1
    assert count_tokens("abcd") == 1
    assert count_tokens("abcde") == 2
    assert count_tokens("x" * 400) == 100


def test_keywords_skip_stop_and_prompt_words_and_keep_names() -> None:
    text = "Please summarize the text. The EU and Brussels debate tariffs; tariffs hurt exporters in the EU."
    found = keywords(text, 5)
    assert found[:2] == ["EU", "tariffs"]
    assert "Brussels" in found
    assert "summarize" not in found and "the" not in found
    # Capitalised only because it starts a sentence: lower-cased.
    assert keywords("Tariffs rose. Tariffs fell.", 1) == ["tariffs"]


def test_key_phrases_are_noun_like_pairs() -> None:
    assert key_phrases("Remote work changed commuting costs; remote work is here.")[:2] == [
        "remote work",
        "commuting costs",
    ]
    assert "dropped sharply" not in key_phrases("Prices dropped sharply.")


def test_sentences_carry_speakers_and_exact_offsets() -> None:
    found = sentences(TRANSCRIPT)
    assert [s.speaker for s in found] == ["Alice", "Alice", "Bob", "Speaker 3"]
    for sentence in found:
        assert TRANSCRIPT[sentence.start : sentence.end] == sentence.text
    assert speakers(TRANSCRIPT) == ["Alice", "Bob", "Speaker 3"]
    assert speakers("Summary: this is not a speaker line.") == []


@given(st.text(alphabet=st.sampled_from("ab cD.!?,;:\n'\u2019-"), max_size=200))
def test_every_sentence_and_clause_is_an_exact_substring(text: str) -> None:
    for sentence in sentences(text):
        assert text[sentence.start : sentence.end] == sentence.text
        for clause in clauses(sentence, 1, 50):
            assert text[clause.start : clause.end] == clause.text


def test_sentiment_counts_words_and_flips_negations() -> None:
    assert sentiment("This is a great, successful plan.")[0] > 0.5
    assert sentiment("This is a terrible failure.")[0] < -0.5
    assert sentiment("This is not good.")[0] < 0
    assert polarity_label("The weather report lists temperatures.") == "neutral"
    assert polarity_label("Good gains, strong growth, but risks and losses and fears.") in {
        "mixed",
        "negative",
    }


def test_pick_source_prefers_the_fenced_block() -> None:
    message = "Analyse the text below and respond with JSON.\n```\nFirst point here. Second point here.\n```"
    assert pick_source([message]) == "First point here. Second point here.\n"
    tagged = "Instructions first.\n<text>One sentence here. Another one here.</text>"
    assert pick_source([tagged]) == "One sentence here. Another one here."
    assert pick_source(["short", "x" * 10]) == "x" * 10
    assert pick_source([]) == ""


def test_source_text_spans_fit_length_bounds_and_stay_substrings() -> None:
    source = SourceText(TRANSCRIPT)
    first = source.ranked[0]
    wide = source.span(first, 120, None)
    assert len(wide) >= 120 and wide in TRANSCRIPT
    narrow = source.span(first, 0, 20)
    assert len(narrow) <= 20 and narrow in TRANSCRIPT
