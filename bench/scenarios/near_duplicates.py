"""The fleet's near-duplicate index at 100,000 conversations: recall, false positives, cost.

Synthetic conversations (8 turns of 40-80 words drawn Zipf-like from 6,000 made-up words
with a seeded RNG, so common words and their trigrams recur across conversations as in
real text) are added to the index with ``check_and_add``, as finalise will.  Then, in
rounds, planted duplicates (an indexed conversation with 2 % of its words replaced,
deleted or doubled) and fresh conversations are checked against the full index.

* **recall**: planted duplicates reported with their original; baseline, the share of
  planted pairs whose exact shingle Jaccard reaches the threshold (what an exact search
  would find); target >= 0.95 on the figure.
* **false positives**: fresh conversations reported as duplicates, of the number checked;
  target at most 1 % of them.
* **lookup**: ms per ``check_and_add`` on the full index (signature, one Lua script, one
  round trip); baseline, the bare signature (shingles + MinHash) of the same texts measured
  in the same round; CPU (this thread's, and Redis's own from ``INFO cpu``) in details.
* **memory**: bytes of Redis per indexed conversation (``MEMORY USAGE`` of the index's
  keys); baseline, the record's own bytes (band digests + signature).

Only Redis is used (the stack's scratch key prefix); the index's keys are deleted after.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from bench.results import Outcome, Row, Target, paired
from bench.stack import Stack

NAME = "near_duplicates"
_EDIT_RATE = 0.02


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ou")]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choices(syllables, k=rng.choice((1, 2, 2, 3, 3, 4)))))
    return sorted(words)


class _Corpus:
    """Seeded conversations: turns of Zipf-distributed words, each turn a sentence or three."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words = _vocabulary(self.rng, 6_000)
        weights = [1 / (rank + 10) for rank in range(len(self.words))]
        self.cum = list(_accumulate(weights))

    def conversation(self) -> str:
        rng = self.rng
        turns = []
        for _ in range(8):
            ws = rng.choices(self.words, cum_weights=self.cum, k=rng.randint(40, 80))
            for cut in sorted(rng.sample(range(5, len(ws)), k=2)):
                ws[cut - 1] += "."
            turns.append(" ".join(ws).capitalize() + ".")
        return "\n".join(turns)

    def edited(self, text: str, rate: float = _EDIT_RATE) -> str:
        rng = self.rng
        ws = text.split(" ")
        for i in rng.sample(range(len(ws)), k=max(1, round(rate * len(ws)))):
            edit = rng.choice(("replace", "delete", "double"))
            if edit == "replace":
                ws[i] = rng.choices(self.words, cum_weights=self.cum)[0]
            elif edit == "delete":
                ws[i] = ""
            else:
                ws[i] = f"{ws[i]} {ws[i]}"
        return " ".join(w for w in ws if w)


def _accumulate(values: list[float]) -> list[float]:
    total, out = 0.0, []
    for v in values:
        total += v
        out.append(total)
    return out


def _redis_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@dataclass
class _Tally:
    """What the query rounds measured."""

    lookup_ms: list[float] = field(default_factory=list)
    bare_ms: list[float] = field(default_factory=list)
    lookup_cpu_ms: list[float] = field(default_factory=list)
    bare_cpu_ms: list[float] = field(default_factory=list)
    redis_cpu_ms: list[float] = field(default_factory=list)
    similarities: list[float] = field(default_factory=list)
    planted: int = 0
    found: int = 0
    exact: int = 0
    fresh: int = 0
    flagged: int = 0


def _query_round(
    index: Any,
    client: Any,
    corpus: _Corpus,
    texts: list[str],
    *,
    r: int,
    per_round: int,
    tally: _Tally,
) -> None:
    """``per_round`` planted duplicates and as many fresh conversations, shuffled, checked
    against the full index; the same texts' bare signatures first, as the baseline."""
    from chimera.quality.near_duplicates import shingles, signature

    originals = corpus.rng.sample(range(len(texts)), k=per_round)
    queries: list[tuple[str, str, int | None]] = [
        (f"dup-{r}-{n}", corpus.edited(texts[n]), n) for n in originals
    ]
    queries += [(f"new-{r}-{i}", corpus.conversation(), None) for i in range(per_round)]
    corpus.rng.shuffle(queries)

    t0, c0 = time.perf_counter(), time.thread_time()
    for _, text, _ in queries:
        signature(text, index.num_perm)
    tally.bare_ms.append((time.perf_counter() - t0) * 1000 / len(queries))
    tally.bare_cpu_ms.append((time.thread_time() - c0) * 1000 / len(queries))

    s0 = _redis_cpu(client)
    t0, c0 = time.perf_counter(), time.thread_time()
    answers = [index.check_and_add(cid, text) for cid, text, _ in queries]
    tally.lookup_ms.append((time.perf_counter() - t0) * 1000 / len(queries))
    tally.lookup_cpu_ms.append((time.thread_time() - c0) * 1000 / len(queries))
    tally.redis_cpu_ms.append((_redis_cpu(client) - s0) * 1000 / len(queries))

    for (_, text, original), answer in zip(queries, answers, strict=True):
        if original is None:
            tally.fresh += 1
            tally.flagged += answer is not None
            continue
        tally.planted += 1
        true = _jaccard(shingles(texts[original]), shingles(text))
        tally.exact += true >= index.threshold
        tally.similarities.append(true)
        tally.found += answer is not None and answer.original_id == _cid(original)


def _cid(n: int) -> str:
    return f"conv-{n:06d}"


def run(stack: Stack, quick: bool) -> Outcome:
    from chimera.quality.near_duplicates import NearDuplicateIndex
    from chimera.redis_client import make_redis

    size, rounds, per_round = (10_000, 3, 50) if quick else (100_000, 5, 100)
    client = make_redis(stack.settings)
    index = NearDuplicateIndex(client, stack.settings)
    corpus = _Corpus(seed=17)
    tally = _Tally()
    try:
        texts = [corpus.conversation() for _ in range(size)]
        loaded = time.perf_counter()
        for n, text in enumerate(texts):
            index.check_and_add(_cid(n), text)
        load_s = time.perf_counter() - loaded
        indexed = client.hlen(index.records_key)
        for r in range(rounds):
            _query_round(index, client, corpus, texts, r=r, per_round=per_round, tally=tally)
        keys = [index.records_key, *index.band_keys]
        memory = sum(int(client.memory_usage(k, samples=0) or 0) for k in keys)
        total = client.hlen(index.records_key)
        record_bytes = len(index.record(texts[0]) or b"") + len(_cid(0))
    finally:
        client.unlink(index.records_key, *index.band_keys)
        client.close()

    details = {
        "indexed_before_queries": indexed,
        "load_seconds": round(load_s, 1),
        "load_ms_per_conversation": round(load_s * 1000 / size, 3),
        "planted": tally.planted,
        "planted_exact_jaccard_median": round(statistics.median(tally.similarities), 3),
        "planted_exact_jaccard_min": round(min(tally.similarities), 3),
        "threshold": index.threshold,
        "num_perm": index.num_perm,
        "bands": index.bands,
    }
    rows: list[Row] = [
        paired(
            NAME,
            f"recall, 2 % edits, {indexed:,} indexed",
            "",
            [tally.found / tally.planted],
            baseline=("exact Jaccard >= threshold", "", [tally.exact / tally.planted]),
            target=Target(">=", 0.95, on="figure"),
            details=details,
        ),
        paired(
            NAME,
            f"false positives among {tally.fresh} fresh conversations",
            "conversations",
            [float(tally.flagged)],
            baseline=("fresh conversations checked", "conversations", [float(tally.fresh)]),
            target=Target("<=", 0.01 * tally.fresh, on="figure"),
        ),
        paired(
            NAME,
            "lookup (check_and_add) per conversation",
            "ms",
            tally.lookup_ms,
            baseline=("bare MinHash signature", "ms", tally.bare_ms),
            target=None,
            details={
                "client_cpu_ms": round(statistics.median(tally.lookup_cpu_ms), 4),
                "bare_signature_cpu_ms": round(statistics.median(tally.bare_cpu_ms), 4),
                "redis_cpu_ms_incl_other_clients": round(statistics.median(tally.redis_cpu_ms), 4),
            },
        ),
        paired(
            NAME,
            "Redis memory per indexed conversation",
            "bytes",
            [memory / total],
            baseline=("the record itself (digests, signature, id)", "bytes", [record_bytes]),
            target=None,
            details={"index_bytes": memory, "conversations": total},
        ),
    ]
    return Outcome(rows, rounds)
