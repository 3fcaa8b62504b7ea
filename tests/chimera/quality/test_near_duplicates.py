"""The fleet's near-duplicate index, against real Redis (each test under its own key prefix)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from chimera.errors import ConfigError
from chimera.quality.near_duplicates import Match, NearDuplicateIndex, shingles, signature
from chimera.redis_client import make_redis
from chimera.settings import load_settings

_FUNCTION_WORDS = ["the", "a", "of", "to", "and", "in", "that", "is", "it", "for", "on", "with"]
_TOPIC_WORDS = [
    "cities", "cars", "ban", "streets", "buses", "trains", "cyclists", "shops", "rents", "noise",
    "air", "parking", "lanes", "transit", "commuters", "councils", "budgets", "evidence", "trial",
    "pilot", "charge", "tolls", "delivery", "vans", "suburbs", "centres", "children", "schools",
    "health", "costs", "benefits", "people", "habits", "traffic", "pollution", "walking",
    "policy", "residents", "drivers", "congestion", "emissions", "safety", "retail", "zones",
]  # fmt: skip


def _conversation(rng: random.Random, opening: str = "", turns: int = 8, words: int = 60) -> str:
    """Turns of sentences drawn from one topic's words (the same topic in every call)."""
    vocabulary = _FUNCTION_WORDS + _TOPIC_WORDS
    out = [opening] if opening else []
    for _ in range(turns - len(out)):
        turn = rng.choices(vocabulary, k=words)
        out.append(" ".join(turn).capitalize() + ".")
    return "\n".join(out)


def _edited(text: str, rng: random.Random, rate: float = 0.02) -> str:
    """``text`` with ``rate`` of its words replaced, deleted or doubled."""
    ws = text.split(" ")
    for i in rng.sample(range(len(ws)), k=max(1, round(rate * len(ws)))):
        edit = rng.choice(("replace", "delete", "double"))
        if edit == "replace":
            ws[i] = rng.choice(["perhaps", "really", "indeed", "frankly", "surely"])
        elif edit == "delete":
            ws[i] = ""
        else:
            ws[i] = f"{ws[i]} {ws[i]}"
    return " ".join(w for w in ws if w)


@pytest.fixture
def index(redis_ns: Any, redis_client: Any) -> NearDuplicateIndex:
    return NearDuplicateIndex(redis_client, redis_ns)


def test_exact_duplicate_points_at_the_original(index: NearDuplicateIndex) -> None:
    text = _conversation(random.Random(1))
    assert index.check_and_add("conv-a", text) is None
    assert index.check_and_add("conv-b", text) == Match("conv-a", 1.0)
    # The duplicate was not indexed: the original stays the one pointer.
    assert index.check_and_add("conv-c", text) == Match("conv-a", 1.0)


def test_two_percent_edits_are_found(index: NearDuplicateIndex) -> None:
    rng = random.Random(2)
    originals = [_conversation(rng) for _ in range(20)]
    for n, text in enumerate(originals):
        assert index.check_and_add(f"conv-{n}", text) is None
    for n, text in enumerate(originals):
        match = index.check_and_add(f"copy-{n}", _edited(text, rng))
        assert match is not None
        assert match.original_id == f"conv-{n}"
        assert match.similarity >= 0.8


def test_case_and_whitespace_do_not_hide_a_duplicate(index: NearDuplicateIndex) -> None:
    text = _conversation(random.Random(3))
    assert index.check_and_add("conv-a", text) is None
    shouted = "  ".join(text.upper().split())
    assert index.check_and_add("conv-b", shouted) == Match("conv-a", 1.0)


def test_another_conversation_on_the_same_topic_is_not_flagged(
    index: NearDuplicateIndex,
) -> None:
    opening = "Should cities ban cars from their centres? Let us weigh the evidence."
    rng = random.Random(4)
    first = [_conversation(rng, opening) for _ in range(20)]
    for n, text in enumerate(first):
        assert index.check_and_add(f"conv-{n}", text) is None
    for n in range(20):
        other = _conversation(rng, opening)
        assert index.check_and_add(f"other-{n}", other) is None
    # The same opening turn alone is shared, far from the threshold.
    a, b = shingles(first[0]), shingles(first[1])
    assert len(a & b) / len(a | b) < 0.2


def test_the_same_id_again_is_not_its_own_duplicate(index: NearDuplicateIndex) -> None:
    text = _conversation(random.Random(5))
    assert index.check_and_add("conv-a", text) is None
    assert index.check_and_add("conv-a", text) is None  # a retried finalise
    assert index.check_and_add("conv-a", _edited(text, random.Random(6))) is None
    assert index.check_and_add("conv-b", text) is not None


def test_an_id_added_with_another_text_is_replaced(index: NearDuplicateIndex) -> None:
    rng = random.Random(7)
    before, after = _conversation(rng), _conversation(rng)
    assert index.check_and_add("conv-a", before) is None
    assert index.check_and_add("conv-a", after) is None  # replayed with a new transcript
    assert index.check_and_add("conv-b", before) is None
    assert index.check_and_add("conv-c", after) == Match("conv-a", 1.0)


def test_remove_takes_a_conversation_out(index: NearDuplicateIndex, redis_client: Any) -> None:
    text = _conversation(random.Random(8))
    assert index.check_and_add("conv-a", text) is None
    assert index.remove("conv-a") is True
    assert index.remove("conv-a") is False
    assert redis_client.hlen(index.records_key) == 0
    assert all(redis_client.hlen(key) == 0 for key in index.band_keys)
    assert index.check_and_add("conv-b", text) is None


def test_find_adds_nothing(index: NearDuplicateIndex, redis_client: Any) -> None:
    text = _conversation(random.Random(9))
    assert index.find(text) is None
    assert redis_client.hlen(index.records_key) == 0
    index.check_and_add("conv-a", text)
    assert index.find(text) == Match("conv-a", 1.0)


def test_a_text_without_words_is_neither_matched_nor_added(
    index: NearDuplicateIndex, redis_client: Any
) -> None:
    assert index.check_and_add("conv-a", " ... !! ") is None
    assert index.check_and_add("conv-b", " ... !! ") is None
    assert redis_client.hlen(index.records_key) == 0
    with pytest.raises(ValueError):
        index.check_and_add("conv\nx", "some words here")


@pytest.fixture
def two_indexes(redis_ns: Any) -> Iterator[list[NearDuplicateIndex]]:
    clients = [make_redis(redis_ns) for _ in range(2)]
    yield [NearDuplicateIndex(client, redis_ns) for client in clients]
    for client in clients:
        client.close()


def test_concurrent_near_duplicates_flag_exactly_one(
    two_indexes: list[NearDuplicateIndex],
) -> None:
    """Two workers finalising near-duplicates at the same moment: one passes, one is flagged."""
    rng = random.Random(10)
    for round_ in range(25):
        text = _conversation(rng)
        ids = [f"conv-{round_}-a", f"conv-{round_}-b"]
        answers = _race(two_indexes, ids, [text, _edited(text, rng)])
        flagged = [(i, a) for i, a in enumerate(answers) if a is not None]
        assert len(flagged) == 1, answers
        i, match = flagged[0]
        assert match is not None and match.original_id == ids[1 - i]


def _race(
    indexes: list[NearDuplicateIndex], ids: list[str], texts: list[str]
) -> list[Match | None]:
    """``check_and_add`` of each id and text on its own index and thread, released together."""
    answers: list[Match | None] = [None] * len(ids)
    start = threading.Barrier(len(ids))

    def finalise(i: int) -> None:
        start.wait()
        answers[i] = indexes[i].check_and_add(ids[i], texts[i])

    threads = [threading.Thread(target=finalise, args=(i,)) for i in range(len(ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_signatures_are_stable() -> None:
    """A library upgrade or a tokeniser change that alters signatures must bump SCHEME (a new
    index), not silently miss the conversations already indexed."""
    values = signature("The quick brown fox jumps over the lazy dog", 128)
    assert values is not None
    assert values[:4] == [3404766237, 3232729786, 3394313050, 3248994886]
    assert signature("THE quick  brown\tfox jumps over the lazy dog!", 128) == values


def test_bands_must_divide_the_permutations() -> None:
    with pytest.raises(ConfigError, match="NEAR_DUPLICATE_BANDS"):
        load_settings(near_duplicate_num_perm=128, near_duplicate_bands=12)
