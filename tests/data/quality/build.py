"""Build the labelled conversation set from its plain-text source.

    .venv/bin/python tests/data/quality/build.py

reads ``source/*.txt`` and writes ``labelled.openai.jsonl`` and ``labelled.sharegpt.jsonl``
beside this file (see README.md for the source layout and the labels).  Lines with full
metadata go through the exporter (``chimera.conversation.formats``), so they are exactly
what an export holds; the others are written as data from elsewhere would be.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chimera.conversation.formats import ExportedConversation, openai_name, to_jsonl
from chimera.models.conversation import TopicSpec
from chimera.models.participants import Participant
from chimera.models.transcript import TranscriptTurn

HERE = Path(__file__).resolve().parent
DEFECTS = (
    "refusal",
    "leakage",
    "role_confusion",
    "truncation",
    "language_switch",
    "empty",
    "pleasantry_only",
    "sycophancy",
    "repetition",
    "echo",
    "word_salad",
    "off_topic",
)
_HEADER = re.compile(r"^### (\S+)\s*$")
_TURN = re.compile(r"^> (.+?)\s*$")
_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def parse(text: str) -> list[dict[str, Any]]:
    """The conversations of one source file."""
    items: list[dict[str, Any]] = []
    item: dict[str, Any] | None = None
    body: list[str] | None = None
    for line in text.splitlines():
        if m := _HEADER.match(line):
            item = {"key": m.group(1), "turns": [], "personas": {}}
            items.append(item)
            body = None
        elif item is None or line.startswith("#"):
            continue
        elif m := _TURN.match(line):
            body = []
            item["turns"].append((m.group(1), body))
        elif body is not None:
            body.append(line)
        elif ":" in line:
            field, value = (s.strip() for s in line.split(":", 1))
            if field.startswith("persona "):
                item["personas"][field.removeprefix("persona ")] = value
            else:
                item[field] = value
    for item in items:
        item["turns"] = [(who, "\n".join(lines).strip()) for who, lines in item["turns"]]
        if item.get("keep_blank") == "yes":  # whitespace-only turns written as "<ws>"
            item["turns"] = [(w, " \n " if t == "<ws>" else t) for w, t in item["turns"]]
    return items


def _speakers(item: dict[str, Any]) -> dict[str, Participant]:
    out: dict[str, Participant] = {}
    for entry in item["speakers"].split("|"):
        key, route = (s.strip() for s in entry.split("=", 1))
        provider, model = route.split("/", 1)
        name = None if key == model else key
        out[key] = Participant.model_validate(
            {
                "provider": provider,
                "model": model,
                "name": name,
                "persona": item["personas"].get(key),
            }
        )
    return out


def _label(item: dict[str, Any]) -> dict[str, Any]:
    score, defects, reason = (s.strip() for s in item["label"].split("|", 2))
    names = [d.strip() for d in defects.split(",") if d.strip()]
    unknown = set(names) - set(DEFECTS)
    if unknown:
        raise SystemExit(f"{item['key']}: unknown defects {sorted(unknown)}")
    return {"score": int(score), "reason": reason, "defects": names, "split": item["split"]}


def _topic(item: dict[str, Any]) -> TopicSpec:
    title, _, description = (s.strip() for s in item["topic"].partition("|"))
    return TopicSpec(id=f"t-{item['key']}", title=title, description=description or None)


def _full(item: dict[str, Any], n: int) -> str:
    speakers = _speakers(item)
    turns = []
    context = 120
    for i, (who, content) in enumerate(item["turns"]):
        p = speakers[who]
        out = max(1, round(len(content.split()) * 1.35))
        turns.append(
            TranscriptTurn(
                turn_index=i,
                speaker=p.speaker,
                provider=p.provider,
                model=p.model,
                content=content,
                input_tokens=context,
                output_tokens=out,
                latency_ms=float(700 + 37 * out % 900),
            )
        )
        context += out
    created = _START + timedelta(minutes=17 * n)
    record = ExportedConversation(
        id=f"conv-label-{item['key']}",
        topic=_topic(item),
        participants=tuple(speakers.values()),
        turns=tuple(turns),
        ended_reason=item.get("ended") or None,
        min_turns=2,
        max_turns=max(len(turns), int(item.get("max_turns", 0) or 0)),
        created_at=created,
        completed_at=created + timedelta(seconds=9 * len(turns)),
        metadata={"source": "labelled-set"},
    )
    obj = json.loads(to_jsonl(record, item["format"]))
    obj["metadata"]["label"] = _label(item)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _bare(item: dict[str, Any]) -> str:
    """Data from elsewhere: roles by turn order, no per-turn metadata."""
    first = item["turns"][0][0]
    answerer = next((w for w, _ in item["turns"] if w != first), first)
    topic = _topic(item)
    system = f"Topic: {topic.title}" + (f"\n\n{topic.description}" if topic.description else "")
    with_names = item["meta"] == "topic"
    metadata: dict[str, Any] = {"label": _label(item)}
    if item["meta"] == "topic":
        metadata = {"id": f"conv-label-{item['key']}", "topic": topic.model_dump(exclude_none=True)}
        metadata["label"] = _label(item)
    if item["format"] == "openai":
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for who, content in item["turns"]:
            msg = {"role": "assistant" if who == answerer else "user", "content": content}
            if with_names:
                msg["name"] = openai_name(who)
            messages.append(msg)
        obj: dict[str, Any] = {"messages": messages, "metadata": metadata}
    else:
        convs = [{"from": "system", "value": system}]
        convs += [
            {"from": "gpt" if w == answerer else "human", "value": c} for w, c in item["turns"]
        ]
        obj = {"conversations": convs, "metadata": metadata}
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def assign_splits(items: list[dict[str, Any]]) -> None:
    """Split tune/heldout so each label value and each defect is spread evenly over both
    halves: in source order, each conversation goes to the half that keeps its label and
    defects most balanced (ties alternate)."""
    counts: Counter[tuple[str, str]] = Counter()
    for n, item in enumerate(items):
        score, defects, _ = (s.strip() for s in item["label"].split("|", 2))
        keys = [f"score {score}", *(d.strip() for d in defects.split(",") if d.strip())]

        def cost(half: str, keys: list[str] = keys) -> int:
            other = "heldout" if half == "tune" else "tune"
            return sum(abs(counts[k, half] + 1 - counts[k, other]) for k in keys)

        costs = {half: cost(half) for half in ("tune", "heldout")}
        best = min(costs.values())
        choices = [half for half in ("tune", "heldout") if costs[half] == best]
        item.setdefault("split", choices[n % len(choices)])
        counts.update((k, item["split"]) for k in keys)


def check(items: list[dict[str, Any]]) -> list[str]:
    problems = []
    keys = Counter(i["key"] for i in items)
    problems += [f"duplicate key {k}" for k, n in keys.items() if n > 1]
    for item in items:
        n = len(item["turns"])
        if not 2 <= n <= 14:
            problems.append(f"{item['key']}: {n} turns")
    halves: dict[str, set[str]] = {}
    for item in items:
        label = _label(item)
        for name in [str(label["score"]), *label["defects"]]:
            halves.setdefault(name, set()).add(label["split"])
    problems += [f"{name} only in {s}" for name, s in halves.items() if len(s) < 2]
    return problems


def main() -> int:
    items = []
    for path in sorted((HERE / "source").glob("*.txt")):
        items += parse(path.read_text(encoding="utf-8"))
    assign_splits(items)
    problems = check(items)
    for problem in problems:
        print(problem, file=sys.stderr)
    out: dict[str, list[str]] = {"openai": [], "sharegpt": []}
    for n, item in enumerate(items):
        line = _full(item, n) if item["meta"] == "full" else _bare(item)
        out[item["format"]].append(line)
    for fmt, lines in out.items():
        (HERE / f"labelled.{fmt}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    scores = Counter(_label(i)["score"] for i in items)
    defects = Counter(d for i in items for d in _label(i)["defects"])
    print(f"{len(items)} conversations; labels {dict(sorted(scores.items()))}")
    print("defects " + ", ".join(f"{d} {defects[d]}" for d in DEFECTS))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
